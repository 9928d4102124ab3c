package migrate

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// posReader reads big-endian fields and knows its byte position for error messages.
type posReader struct {
	r     *bufio.Reader
	pos   int64
	where string
	rec   []byte // when non-nil, every byte read is appended here (header capture)
	buf   [8]byte
}

func (p *posReader) fail(at int64, format string, args ...any) error {
	return &FormatError{Offset: at, Where: p.where, Msg: fmt.Sprintf(format, args...)}
}

func (p *posReader) full(b []byte, what string) error {
	n, err := io.ReadFull(p.r, b)
	if p.rec != nil {
		p.rec = append(p.rec, b[:n]...)
	}
	at := p.pos
	p.pos += int64(n)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return &truncErr{FormatError{Offset: at + int64(n), Where: p.where,
				Msg: fmt.Sprintf("stream ends while reading %s (%d of %d bytes present); the capture was cut short", what, n, len(b))}}
		}
		return fmt.Errorf("migration stream: reading %s at byte %d: %w", what, at+int64(n), err)
	}
	return nil
}

// truncErr is a FormatError that also matches ErrTruncated.
type truncErr struct{ FormatError }

func (e *truncErr) Is(target error) bool { return target == ErrTruncated }
func (e *truncErr) As(target any) bool {
	if fe, ok := target.(**FormatError); ok {
		*fe = &e.FormatError
		return true
	}
	return false
}

func (p *posReader) u8(what string) (byte, error) {
	if err := p.full(p.buf[:1], what); err != nil {
		return 0, err
	}
	return p.buf[0], nil
}

func (p *posReader) u32(what string) (uint32, error) {
	if err := p.full(p.buf[:4], what); err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint32(p.buf[:4]), nil
}

func (p *posReader) u64(what string) (uint64, error) {
	if err := p.full(p.buf[:8], what); err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint64(p.buf[:8]), nil
}

// str8 reads a u8 length and that many bytes.
func (p *posReader) str8(what string) (string, error) {
	n, err := p.u8(what + " length")
	if err != nil {
		return "", err
	}
	b := make([]byte, n)
	if err := p.full(b, what); err != nil {
		return "", err
	}
	return string(b), nil
}

// Stats summarises a parsed stream.
type Stats struct {
	Bytes        int64  // whole stream
	HeaderBytes  int64  // magic, version, configuration
	DeviceBytes  int64  // everything after the "ram" END footer
	Machine      string // machine type from the configuration section, e.g. "pc-q35-7.2"
	RAMSectionID uint32
	Sections     int    // PART + END sections of "ram"
	DataPages    uint64 // PAGE records
	ZeroPages    uint64 // ZERO records
	Resent       uint64 // records for pages already sent (Options.AllowResend)
	Devices      []DeviceSection
}

// Parse reads a QEMU 7.2 precopy migration stream (q35, default capabilities) from r
// and hands its parts to h in order, holding at most one page in memory plus the
// device state (bounded by MaxDeviceState). It refuses anything outside the format
// documented in doc.go with a *FormatError naming the byte position and the problem.
func Parse(r io.Reader, h Handler) (*Stats, error) {
	return ParseOptions(r, h, Options{})
}

// ParseOptions is Parse with non-default acceptance options.
func ParseOptions(r io.Reader, h Handler, opt Options) (*Stats, error) {
	br, ok := r.(*bufio.Reader)
	if !ok || br.Size() < 1<<16 {
		br = bufio.NewReaderSize(r, 1<<16)
	}
	p := &posReader{r: br}
	st := &Stats{}
	err := parse(p, h, opt, st)
	st.Bytes = p.pos
	return st, err
}

// headerInfo is what parseHeader learns from the configuration section.
type headerInfo struct {
	machine string
}

func parseHeader(p *posReader) (headerInfo, error) {
	var hi headerInfo
	p.where = "file header"
	start := p.pos
	magic, err := p.u32("file magic")
	if err != nil {
		return hi, err
	}
	if magic != fileMagic {
		return hi, p.fail(start, "magic is 0x%08x, not \"QEVM\" (0x%08x): this is not a QEMU migration stream", magic, uint32(fileMagic))
	}
	at := p.pos
	ver, err := p.u32("file version")
	if err != nil {
		return hi, err
	}
	if ver != fileVersion {
		return hi, p.fail(at, "stream version %d; only version 3 (QEMU 2.x-8.x) is supported", ver)
	}
	p.where = "configuration section"
	at = p.pos
	m, err := p.u8("section type")
	if err != nil {
		return hi, err
	}
	if m != markConfiguration {
		return hi, p.fail(at, "section type 0x%02x where the configuration section (0x07) must be; the source machine must be pc-q35-7.2 or similar", m)
	}
	at = p.pos
	n, err := p.u32("machine name length")
	if err != nil {
		return hi, err
	}
	if n == 0 || n > maxMachineName {
		return hi, p.fail(at, "machine name length %d is not within 1..%d", n, maxMachineName)
	}
	name := make([]byte, n)
	if err := p.full(name, "machine name"); err != nil {
		return hi, err
	}
	for _, c := range name {
		if c < 0x20 || c > 0x7E {
			return hi, p.fail(at+4, "machine name %q has a non-printable byte", name)
		}
	}
	hi.machine = string(name)
	// Optional subsections of the configuration vmstate.
	for {
		b, err := p.r.Peek(1)
		if err != nil || b[0] != markSubsection {
			break
		}
		at = p.pos
		if _, err := p.u8("subsection marker"); err != nil {
			return hi, err
		}
		sub, err := p.str8("subsection name")
		if err != nil {
			return hi, err
		}
		if _, err := p.u32("subsection version"); err != nil {
			return hi, err
		}
		switch sub {
		case "configuration/target-page-bits":
			bits, err := p.u32("target page bits")
			if err != nil {
				return hi, err
			}
			if bits != 12 {
				return hi, p.fail(at, "target page bits %d; only 4 KiB pages (12) are supported", bits)
			}
		case "configuration/uuid":
			var u [16]byte
			if err := p.full(u[:], "VM UUID"); err != nil {
				return hi, err
			}
		case "configuration/capabilities":
			return hi, p.fail(at, "the stream declares migration capabilities (x-ignore-shared or similar); leave every capability at its default (off) on the source")
		default:
			return hi, p.fail(at, "unknown configuration subsection %q; the source is not QEMU 7.2 with default settings", sub)
		}
	}
	return hi, nil
}

// sectionHeader reads the u32 id, str8 idstr, u32 instance and u32 version of a
// START/FULL section (the type byte was already read).
func (p *posReader) sectionHeader() (id uint32, idstr string, inst, ver uint32, err error) {
	if id, err = p.u32("section id"); err != nil {
		return
	}
	if idstr, err = p.str8("section name"); err != nil {
		return
	}
	if inst, err = p.u32("instance id"); err != nil {
		return
	}
	ver, err = p.u32("section version")
	return
}

func (p *posReader) footer(id uint32) error {
	at := p.pos
	m, err := p.u8("section footer")
	if err != nil {
		return err
	}
	if m != markFooter {
		return p.fail(at, "byte 0x%02x where the section footer (0x7E) must follow EOS; QEMU would say \"Missing section footer for ram\"", m)
	}
	got, err := p.u32("footer section id")
	if err != nil {
		return err
	}
	if got != id {
		return p.fail(at, "section footer carries id %d, expected %d", got, id)
	}
	return nil
}

func markName(m byte) string {
	switch m {
	case markEOF:
		return "EOF (0x00)"
	case markSectionStart:
		return "SECTION_START (0x01)"
	case markSectionPart:
		return "SECTION_PART (0x02)"
	case markSectionEnd:
		return "SECTION_END (0x03)"
	case markSectionFull:
		return "SECTION_FULL (0x04)"
	case markSubsection:
		return "SUBSECTION (0x05)"
	case markVMDescription:
		return "VMDESCRIPTION (0x06)"
	case markConfiguration:
		return "CONFIGURATION (0x07)"
	case markCommand:
		return "COMMAND (0x08)"
	}
	return fmt.Sprintf("unknown type 0x%02x", m)
}

func parse(p *posReader, h Handler, opt Options, st *Stats) error {
	p.rec = make([]byte, 0, 64)
	hi, err := parseHeader(p)
	if err != nil {
		return err
	}
	st.Machine = hi.machine
	raw := p.rec
	p.rec = nil
	st.HeaderBytes = p.pos
	if err := h.Header(raw); err != nil {
		return err
	}

	// The "ram" START section.
	p.where = "first section"
	at := p.pos
	m, err := p.u8("section type")
	if err != nil {
		return err
	}
	if m != markSectionStart {
		return p.fail(at, "%s where the START section of \"ram\" must be; the source used non-default capabilities or is not QEMU 7.2", markName(m))
	}
	id, idstr, inst, ver, err := p.sectionHeader()
	if err != nil {
		return err
	}
	if idstr != ramIDStr {
		return p.fail(at, "first section is %q, not \"ram\"; block or dirty-bitmap migration must be off", idstr)
	}
	if inst != ramInstanceID || ver != ramVersion {
		return p.fail(at, "\"ram\" section has instance %d version %d; only instance 0 version 4 (QEMU 7.2) is supported", inst, ver)
	}
	st.RAMSectionID = id
	p.where = "ram START section"
	at = p.pos
	word, err := p.u64("MEM_SIZE record")
	if err != nil {
		return err
	}
	if word&flagMask != flagMemSize {
		return p.fail(at, "first record has flags 0x%03x, expected MEM_SIZE (0x004) alone", word&flagMask)
	}
	total := word &^ flagMask
	var blocks []Block
	var sum uint64
	for sum < total {
		at = p.pos
		name, err := p.str8("block idstr")
		if err != nil {
			return err
		}
		size, err := p.u64("block length")
		if err != nil {
			return err
		}
		if size == 0 || size%PageSize != 0 || size > maxRAM {
			return p.fail(at, "block %q has length 0x%x, not a non-zero multiple of 4 KiB up to 1 TiB", name, size)
		}
		if len(blocks) >= maxBlocks {
			return p.fail(at, "more than %d RAM blocks", maxBlocks)
		}
		sum += size
		blocks = append(blocks, Block{ID: name, Size: size})
	}
	if sum != total {
		return p.fail(at, "block lengths add up to 0x%x, more than the MEM_SIZE total 0x%x", sum, total)
	}
	rs, err := newRAMState(blocks, opt)
	if err != nil {
		return p.fail(at, "%v", err)
	}
	at = p.pos
	word, err = p.u64("end of START section")
	if err != nil {
		return err
	}
	if word != flagEOS {
		return p.fail(at, "record 0x%016x after the MEM_SIZE list; the START section must end with EOS (0x10)", word)
	}
	if err := p.footer(id); err != nil {
		return err
	}
	if err := h.RAMBlocks(id, blocks); err != nil {
		return err
	}

	// PART and END sections of "ram".
	page := Page{Data: make([]byte, PageSize)}
	for {
		p.where = "section after ram START"
		at = p.pos
		m, err := p.u8("section type")
		if err != nil {
			return err
		}
		var end bool
		switch m {
		case markSectionPart:
			p.where = "ram PART section"
		case markSectionEnd:
			p.where = "ram END section"
			end = true
		default:
			return p.fail(at, "%s before the END section of \"ram\"; only PART and END sections of \"ram\" may come here (non-default capabilities?)", markName(m))
		}
		sid, err := p.u32("section id")
		if err != nil {
			return err
		}
		if sid != id {
			return p.fail(at, "section id %d, but \"ram\" has id %d and is the only iterative section allowed", sid, id)
		}
		st.Sections++
		if err := h.RAMSection(end); err != nil {
			return err
		}
		for {
			at = p.pos
			word, err := p.u64("RAM record")
			if err != nil {
				return err
			}
			flags := word & flagMask
			if flags == flagEOS {
				if word != flagEOS {
					return p.fail(at, "EOS record carries offset bits 0x%x", word&^flagMask)
				}
				break
			}
			var kind PageKind
			switch flags &^ flagContinue {
			case flagZero:
				kind = PageZero
			case flagPage:
				kind = PageData
			default:
				return p.fail(at, "RAM record flags 0x%03x are not ZERO (0x002) or PAGE (0x008) with optional CONTINUE (0x020); %s", flags, flagHint(flags))
			}
			cont := flags&flagContinue != 0
			name := ""
			if !cont {
				if name, err = p.str8("block idstr"); err != nil {
					return err
				}
			}
			offset := word &^ flagMask
			bi, err := rs.page(name, cont, offset)
			if err != nil {
				return p.fail(at, "%v", err)
			}
			page.Block, page.Offset, page.Kind, page.Continue, page.Pos = bi, offset, kind, cont, at
			page.Fill = 0
			if kind == PageZero {
				if page.Fill, err = p.u8("zero page fill byte"); err != nil {
					return err
				}
				st.ZeroPages++
				page.Data = page.Data[:0]
			} else {
				page.Data = page.Data[:PageSize]
				if err := p.full(page.Data, "page data"); err != nil {
					return err
				}
				st.DataPages++
			}
			if err := h.Page(&page); err != nil {
				return err
			}
		}
		if err := p.footer(id); err != nil {
			return err
		}
		if end {
			break
		}
	}
	st.Resent = rs.resent
	p.where = "ram END section"
	if err := rs.complete(); err != nil {
		return p.fail(p.pos, "%v", err)
	}

	// Device state: verbatim to the end, checked as a whole at the end.
	p.where = "device sections"
	tailStart := p.pos
	tail := make([]byte, 0, 16<<10)
	chunk := make([]byte, 32<<10)
	for {
		n, err := p.r.Read(chunk)
		if n > 0 {
			p.pos += int64(n)
			if len(tail)+n > MaxDeviceState {
				return p.fail(tailStart, "more than %d bytes of device state after the RAM sections", MaxDeviceState)
			}
			tail = append(tail, chunk[:n]...)
			if herr := h.Device(chunk[:n]); herr != nil {
				return herr
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("migration stream: reading device state at byte %d: %w", p.pos, err)
		}
	}
	st.DeviceBytes = int64(len(tail))
	devs, err := CheckDeviceState(tail)
	if err != nil {
		var fe *FormatError
		if errors.As(err, &fe) {
			fe.Offset += tailStart
		}
		return err
	}
	st.Devices = devs
	return h.Done()
}

func flagHint(flags uint64) string {
	switch {
	case flags&flagXBZRLE != 0:
		return "XBZRLE pages need the xbzrle capability, which must stay off"
	case flags&flagCompressPage != 0:
		return "compressed pages need the compress capability, which must stay off"
	case flags&flagHook != 0:
		return "the HOOK flag is only used by RDMA migration"
	case flags&flagMemSize != 0:
		return "MEM_SIZE may only open the START section"
	case flags&flagFull != 0:
		return "the FULL flag is obsolete; QEMU says \"Unknown combination of migration flags\""
	case flags&flagEOS != 0:
		return "EOS must stand alone"
	}
	return "unknown flag combination"
}
