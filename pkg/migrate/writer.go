package migrate

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
)

type writerState int

const (
	wsHeader    writerState = iota // expecting Header
	wsBlocks                       // expecting RAMBlocks
	wsSections                     // START written, expecting RAMSection
	wsInSection                    // inside PART/END, pages allowed
	wsDevices                      // END closed, device bytes
	wsDone
)

// Writer rebuilds a migration stream from the calls a Handler receives. It is the
// mirror of Parse: Parse(r, NewWriter(w)) writes to w exactly the bytes read from r.
// It applies the same checks as Parse, so a rebuilt stream is one Parse accepts;
// the first error sticks and is returned by every later call.
//
// Writes are buffered; Done flushes. A Writer may also be driven by hand (e.g. from
// a package's page list), in the order documented on Handler.
type Writer struct {
	w        *bufio.Writer
	opt      Options
	state    writerState
	id       uint32
	ram      *ramState
	inEnd    bool
	devices  []byte
	n        int64
	err      error
	scratch  []byte
	ramStats Stats
}

// NewWriter returns a Writer that writes the stream to w.
func NewWriter(w io.Writer) *Writer { return NewWriterOptions(w, Options{}) }

// NewWriterOptions is NewWriter with non-default acceptance options.
func NewWriterOptions(w io.Writer, opt Options) *Writer {
	return &Writer{w: bufio.NewWriterSize(w, 64<<10), opt: opt, scratch: make([]byte, 0, 16)}
}

// Stats returns what was written so far: bytes, RAM sections, page counts and, after
// Done, the device sections.
func (w *Writer) Stats() Stats {
	st := w.ramStats
	st.Bytes = w.n
	st.RAMSectionID = w.id
	st.DeviceBytes = int64(len(w.devices))
	if w.ram != nil {
		st.Resent = w.ram.resent
	}
	return st
}

// Written returns the number of stream bytes produced so far (buffered or not).
func (w *Writer) Written() int64 { return w.n }

func (w *Writer) write(b []byte) {
	if w.err != nil {
		return
	}
	n, err := w.w.Write(b)
	w.n += int64(n)
	if err != nil {
		w.err = fmt.Errorf("migration stream: writing at byte %d: %w", w.n, err)
	}
}

func (w *Writer) setErr(format string, args ...any) error {
	if w.err == nil {
		w.err = &FormatError{Offset: w.n, Where: "rebuilding", Msg: fmt.Sprintf(format, args...)}
	}
	return w.err
}

func (w *Writer) order(want writerState, call string) error {
	if w.err != nil {
		return w.err
	}
	if w.state != want {
		return w.setErr("%s called out of order", call)
	}
	return nil
}

// Header writes the magic, version and configuration section. raw must be exactly
// what Parse handed to Handler.Header; it is checked with the same rules.
func (w *Writer) Header(raw []byte) error {
	if err := w.order(wsHeader, "Header"); err != nil {
		return err
	}
	p := &posReader{r: bufio.NewReader(bytes.NewReader(raw))}
	if _, err := parseHeader(p); err != nil {
		w.err = fmt.Errorf("header to rebuild is invalid: %w", err)
		return w.err
	}
	if p.pos != int64(len(raw)) {
		return w.setErr("header to rebuild has %d stray bytes after the configuration section", int64(len(raw))-p.pos)
	}
	w.write(raw)
	w.state = wsBlocks
	return w.err
}

// RAMBlocks writes the "ram" START section: header, MEM_SIZE list, EOS, footer.
func (w *Writer) RAMBlocks(sectionID uint32, blocks []Block) error {
	if err := w.order(wsBlocks, "RAMBlocks"); err != nil {
		return err
	}
	bl := append([]Block(nil), blocks...)
	rs, err := newRAMState(bl, w.opt)
	if err != nil {
		return w.setErr("%v", err)
	}
	var total uint64
	for _, b := range bl {
		total += b.Size
	}
	if total&flagMask != 0 {
		return w.setErr("total RAM size 0x%x is not page aligned", total)
	}
	w.ram, w.id = rs, sectionID
	b := w.scratch[:0]
	b = append(b, markSectionStart)
	b = binary.BigEndian.AppendUint32(b, sectionID)
	b = append(b, byte(len(ramIDStr)))
	b = append(b, ramIDStr...)
	b = binary.BigEndian.AppendUint32(b, ramInstanceID)
	b = binary.BigEndian.AppendUint32(b, ramVersion)
	b = binary.BigEndian.AppendUint64(b, total|flagMemSize)
	for _, blk := range bl {
		b = append(b, byte(len(blk.ID)))
		b = append(b, blk.ID...)
		b = binary.BigEndian.AppendUint64(b, blk.Size)
	}
	b = w.appendClose(b)
	w.write(b)
	w.scratch = b[:0]
	w.state = wsSections
	return w.err
}

func (w *Writer) appendClose(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, flagEOS)
	b = append(b, markFooter)
	return binary.BigEndian.AppendUint32(b, w.id)
}

// RAMSection closes the open PART section, if any, and opens a PART or END section.
func (w *Writer) RAMSection(end bool) error {
	if w.err != nil {
		return w.err
	}
	if w.state != wsSections && w.state != wsInSection {
		return w.setErr("RAMSection called out of order")
	}
	b := w.scratch[:0]
	if w.state == wsInSection {
		b = w.appendClose(b)
	}
	if end {
		b = append(b, markSectionEnd)
	} else {
		b = append(b, markSectionPart)
	}
	b = binary.BigEndian.AppendUint32(b, w.id)
	w.write(b)
	w.scratch = b[:0]
	w.state, w.inEnd = wsInSection, end
	w.ramStats.Sections++
	return w.err
}

// Page writes one page record. With p.Continue the block must be the one of the
// previous page; without it the record carries the block's idstr.
func (w *Writer) Page(p *Page) error {
	if err := w.order(wsInSection, "Page"); err != nil {
		return err
	}
	if p.Block < 0 || p.Block >= len(w.ram.blocks) {
		return w.setErr("page names block index %d; there are %d blocks", p.Block, len(w.ram.blocks))
	}
	if p.Continue && p.Block != w.ram.last {
		return w.setErr("page at block %q offset 0x%x has CONTINUE but the previous page was in another block", w.ram.blocks[p.Block].ID, p.Offset)
	}
	var flags uint64
	switch p.Kind {
	case PageZero:
		flags = flagZero
	case PageData:
		flags = flagPage
		if len(p.Data) != PageSize {
			return w.setErr("data page at block %q offset 0x%x has %d bytes, not %d", w.ram.blocks[p.Block].ID, p.Offset, len(p.Data), PageSize)
		}
	default:
		return w.setErr("page kind %d is neither data nor zero", p.Kind)
	}
	name := ""
	if !p.Continue {
		name = w.ram.blocks[p.Block].ID
	} else {
		flags |= flagContinue
	}
	if _, err := w.ram.page(name, p.Continue, p.Offset); err != nil {
		return w.setErr("%v", err)
	}
	b := w.scratch[:0]
	b = binary.BigEndian.AppendUint64(b, p.Offset|flags)
	if !p.Continue {
		b = append(b, byte(len(name)))
		b = append(b, name...)
	}
	if p.Kind == PageZero {
		b = append(b, p.Fill)
		w.ramStats.ZeroPages++
	} else {
		w.ramStats.DataPages++
	}
	w.write(b)
	w.scratch = b[:0]
	if p.Kind == PageData {
		w.write(p.Data)
	}
	return w.err
}

// Device writes verbatim device-state bytes. The first call closes the END section.
func (w *Writer) Device(chunk []byte) error {
	if w.err != nil {
		return w.err
	}
	if w.state == wsInSection {
		if !w.inEnd {
			return w.setErr("device state must follow the END section of \"ram\", but the open section is a PART")
		}
		if err := w.ram.complete(); err != nil {
			return w.setErr("%v", err)
		}
		w.write(w.appendClose(w.scratch[:0]))
		w.state = wsDevices
	}
	if w.state != wsDevices {
		return w.setErr("Device called out of order")
	}
	if len(w.devices)+len(chunk) > MaxDeviceState {
		return w.setErr("more than %d bytes of device state", MaxDeviceState)
	}
	w.devices = append(w.devices, chunk...)
	w.write(chunk)
	return w.err
}

// Done checks the device state as a whole and flushes the stream. The device state
// check runs after its bytes were passed to the underlying writer; a caller that must
// not emit a bad stream at all checks it first with CheckDeviceState.
func (w *Writer) Done() error {
	if w.err != nil {
		return w.err
	}
	if w.state != wsDevices {
		return w.setErr("Done called before the device state was written")
	}
	devs, err := CheckDeviceState(w.devices)
	if err != nil {
		w.err = fmt.Errorf("rebuilt device state: %w", err)
		return w.err
	}
	w.ramStats.Devices = devs
	if err := w.w.Flush(); err != nil {
		w.err = fmt.Errorf("migration stream: flushing at byte %d: %w", w.n, err)
		return w.err
	}
	w.state = wsDone
	return nil
}

// Flush pushes buffered bytes to the underlying writer without finishing the stream
// (useful when a consumer should start loading early).
func (w *Writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	if err := w.w.Flush(); err != nil {
		w.err = fmt.Errorf("migration stream: flushing at byte %d: %w", w.n, err)
	}
	return w.err
}

var _ Handler = (*Writer)(nil)
