// Package guestpkg reads and writes the sevshim guest package (docs/formats.md section 8):
// what `hostctl export` produces from a stopped SEV guest and `hostctl receive` consumes.
//
// A package is written and read front to back in one pass, so neither side ever holds the
// whole guest in memory or needs a temporary plaintext file:
//
//	header (64)             magic, version, SEV policy, the VM shape QEMU B must have
//	sender PDH (0x824)      the exporting platform's PDH certificate (RECEIVE_START input)
//	session (0x80)          SEND_START's session blob (wrapped TEK/TIK, POLICY_MAC)
//	stream header           the QEMU stream header, "ram" section id, RAM block list
//	records                 one 8-byte migrate.Entry per page record or section boundary;
//	                        a data page entry is followed by its SEV packet (52-byte header
//	                        and 4096 bytes of ciphertext); zero pages carry only a fill byte
//	end of records          8 x 0xFF, then u64 record count and u64 data page count
//	device state            u32 length and the verbatim non-RAM part of the stream
//	trailer                 "SEVSHEND" and SHA-256 over every byte before the digest
//	                        (format version 1, still read: SHA-384)
//
// What protects what: the page contents are encrypted and MAC'd by the sending PSP under
// the transport keys (TEK/TIK) that only the two PSPs know; the receiving PSP verifies every
// MAC. Everything else (page map, zero pages, device state, shape) is host data: the trailer
// digest detects corruption, but anyone who can change the file can recompute it. See the
// spec for the consequences.
package guestpkg

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/sevshim/sevshim/pkg/migrate"
	"github.com/sevshim/sevshim/pkg/sev"
)

// Format constants.
const (
	Magic        = "SEVSHPKG"
	TrailerMagic = "SEVSHEND"
	// FormatVersion is what the Writer writes. Version 2 changed only the trailer digest,
	// from SHA-384 (version 1, still read) to SHA-256, which the CPUs of SEV hosts compute
	// in hardware: about 1.7 GB/s against 0.6 GB/s here, on every byte of a package on both
	// sides (docs/formats.md section 8).
	FormatVersion = 2
	HeaderSize    = 64
	MachineMax    = 24          // bytes of the machine type field
	DigestSize    = sha256.Size // of FormatVersion
	TrailerSize   = 8 + DigestSize
	// PacketSize is one data page on disk: SEV packet header + ciphertext.
	PacketSize = sev.PacketHeaderSize + migrate.PageSize

	maxStreamHeader = 4096
	maxBlocks       = 256
	maxRAM          = 1 << 40
)

// endOfRecords marks the end of the record list (no valid entry encodes like this).
var endOfRecords = [8]byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}

// Shape is the QEMU VM shape the receiving QEMU must be started with.
type Shape struct {
	Machine  string // resolved machine type of the source, e.g. "pc-q35-7.2"
	RAMSize  uint64 // bytes (-m)
	CodeSize uint32 // pflash unit 0 bytes
	VarsSize uint32 // pflash unit 1 bytes
	LayoutID uint32 // sevshim BIOS layout (docs/formats.md section 1)
	CPUs     uint16 // -smp
	// TPM: the VM has a TPM (QEMU `-tpmdev emulator` + `-device tpm-crb`, its state in the
	// stream's tpm-emulator section); the receiver must give QEMU B the same device. Header
	// byte 0x27 (devices), bit 0. Packages without a TPM are byte-identical to before the
	// field existed; older readers refuse a TPM package (non-zero reserved byte), as they must.
	TPM bool
}

// Header byte 0x27: optional devices of the VM shape.
const (
	DeviceTPM   = 0x01
	knownDevice = DeviceTPM
)

// Header is everything before the stream header.
type Header struct {
	Policy  sev.Policy
	Shape   Shape
	PDH     []byte // sender's PDH certificate, sev.CertSize bytes
	Session []byte // SEND_START session, sev.SessionSize bytes
}

// Stream is the part of the migration stream before the first record.
type Stream struct {
	Header       []byte // QEMU's magic, version, configuration section
	RAMSectionID uint32
	Blocks       []migrate.Block
}

// Packet is one SEV transport packet: SEND_UPDATE_DATA's output for one page.
type Packet struct {
	Header [sev.PacketHeaderSize]byte
	Data   [migrate.PageSize]byte
}

// FormatError is a package that does not parse; Offset is the byte position.
type FormatError struct {
	Offset int64
	Where  string
	Msg    string
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("guest package: byte %d (%s): %s", e.Offset, e.Where, e.Msg)
}

// ErrDigest is returned when the trailer digest does not match the content.
var ErrDigest = errors.New("guest package: trailer digest does not match the content (the file was corrupted or changed after export)")

// ErrTruncated is matched (errors.Is) by errors of packages that end early.
var ErrTruncated = errors.New("guest package is truncated")

type truncError struct{ FormatError }

func (e *truncError) Is(t error) bool { return t == ErrTruncated }

func (h *Header) check() error {
	if len(h.PDH) != sev.CertSize {
		return fmt.Errorf("sender PDH is %d bytes, want %d", len(h.PDH), sev.CertSize)
	}
	if len(h.Session) != sev.SessionSize {
		return fmt.Errorf("session is %d bytes, want %d", len(h.Session), sev.SessionSize)
	}
	s := h.Shape
	if len(s.Machine) == 0 || len(s.Machine) > MachineMax {
		return fmt.Errorf("machine type %q must have 1..%d characters", s.Machine, MachineMax)
	}
	for i := 0; i < len(s.Machine); i++ {
		if c := s.Machine[i]; c <= 0x20 || c >= 0x7F {
			return fmt.Errorf("machine type %q is not printable ASCII without spaces", s.Machine)
		}
	}
	if s.RAMSize == 0 || s.RAMSize%migrate.PageSize != 0 || s.RAMSize > maxRAM {
		return fmt.Errorf("RAM size 0x%x must be a non-zero page multiple up to 1 TiB", s.RAMSize)
	}
	if s.CodeSize == 0 || s.CodeSize%migrate.PageSize != 0 || s.VarsSize%migrate.PageSize != 0 {
		return fmt.Errorf("pflash sizes 0x%x/0x%x must be page multiples (code non-zero)", s.CodeSize, s.VarsSize)
	}
	if s.CPUs == 0 {
		return errors.New("CPU count is 0")
	}
	return nil
}

func (h *Header) marshal() []byte {
	b := make([]byte, HeaderSize)
	copy(b, Magic)
	binary.LittleEndian.PutUint16(b[0x08:], FormatVersion)
	binary.LittleEndian.PutUint16(b[0x0A:], HeaderSize)
	binary.LittleEndian.PutUint32(b[0x0C:], uint32(h.Policy))
	binary.LittleEndian.PutUint64(b[0x10:], h.Shape.RAMSize)
	binary.LittleEndian.PutUint32(b[0x18:], h.Shape.CodeSize)
	binary.LittleEndian.PutUint32(b[0x1C:], h.Shape.VarsSize)
	binary.LittleEndian.PutUint32(b[0x20:], h.Shape.LayoutID)
	binary.LittleEndian.PutUint16(b[0x24:], h.Shape.CPUs)
	b[0x26] = byte(len(h.Shape.Machine))
	if h.Shape.TPM {
		b[0x27] |= DeviceTPM
	}
	copy(b[0x28:], h.Shape.Machine)
	return b
}

func (s *Stream) check() error {
	if len(s.Header) == 0 || len(s.Header) > maxStreamHeader {
		return fmt.Errorf("stream header is %d bytes, want 1..%d", len(s.Header), maxStreamHeader)
	}
	if len(s.Blocks) == 0 || len(s.Blocks) > maxBlocks {
		return fmt.Errorf("%d RAM blocks, want 1..%d", len(s.Blocks), maxBlocks)
	}
	var total uint64
	seen := map[string]bool{}
	for i, b := range s.Blocks {
		if len(b.ID) == 0 || len(b.ID) > 255 {
			return fmt.Errorf("RAM block %d has an id of %d bytes, want 1..255", i, len(b.ID))
		}
		if seen[b.ID] {
			return fmt.Errorf("RAM block %q listed twice", b.ID)
		}
		seen[b.ID] = true
		if b.Size == 0 || b.Size%migrate.PageSize != 0 || b.Size > maxRAM || b.Size/migrate.PageSize > 1<<32 {
			return fmt.Errorf("RAM block %q has size 0x%x, want a non-zero page multiple", b.ID, b.Size)
		}
		total += b.Size
		if total > maxRAM {
			return errors.New("RAM blocks add up to more than 1 TiB")
		}
	}
	return nil
}

// Block looks up a RAM block by id.
func (s *Stream) Block(id string) (migrate.Block, bool) {
	for _, b := range s.Blocks {
		if b.ID == id {
			return b, true
		}
	}
	return migrate.Block{}, false
}

// TotalPages is the number of pages of all RAM blocks.
func (s *Stream) TotalPages() uint64 {
	var n uint64
	for _, b := range s.Blocks {
		n += b.Pages()
	}
	return n
}

// Writer writes a package in one pass. Call WriteStream once, Record for every entry in
// stream order, then Finish. The first error sticks.
type Writer struct {
	bw      *bufio.Writer
	h       *bgHash
	mw      io.Writer
	stream  *Stream
	records uint64
	data    uint64
	n       int64
	err     error
	done    bool
}

// NewWriter writes the header, the sender PDH and the session to w.
func NewWriter(w io.Writer, h *Header) (*Writer, error) {
	if err := h.check(); err != nil {
		return nil, fmt.Errorf("guest package: %w", err)
	}
	pw := &Writer{bw: bufio.NewWriterSize(w, 256<<10), h: newBGHash(newDigest(FormatVersion))}
	pw.mw = io.MultiWriter(pw.bw, pw.h)
	pw.write(h.marshal())
	pw.write(h.PDH)
	pw.write(h.Session)
	return pw, pw.err
}

func (w *Writer) write(b []byte) {
	if w.err != nil {
		return
	}
	n, err := w.mw.Write(b)
	w.n += int64(n)
	if err != nil {
		w.err = fmt.Errorf("guest package: writing at byte %d: %w", w.n, err)
	}
}

// Written is the number of bytes produced so far.
func (w *Writer) Written() int64 { return w.n }

// WriteStream writes the stream header and the RAM block list.
func (w *Writer) WriteStream(s *Stream) error {
	if w.err != nil {
		return w.err
	}
	if w.stream != nil {
		return errors.New("guest package: WriteStream called twice")
	}
	if err := s.check(); err != nil {
		w.err = fmt.Errorf("guest package: %w", err)
		return w.err
	}
	w.stream = s
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(s.Header)))
	b = append(b, s.Header...)
	b = binary.LittleEndian.AppendUint32(b, s.RAMSectionID)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(s.Blocks)))
	for _, bl := range s.Blocks {
		b = append(b, byte(len(bl.ID)))
		b = append(b, bl.ID...)
		b = binary.LittleEndian.AppendUint64(b, bl.Size)
	}
	w.write(b)
	return w.err
}

// Record writes one entry; data entries need their packet, other entries none.
func (w *Writer) Record(e migrate.Entry, p *Packet) error {
	if w.err != nil {
		return w.err
	}
	if w.stream == nil {
		return errors.New("guest package: Record before WriteStream")
	}
	enc := e.AppendBinary(make([]byte, 0, migrate.EntrySize))
	if _, err := checkEntry(enc, w.stream); err != nil {
		w.err = fmt.Errorf("guest package: record %d: %w", w.records, err)
		return w.err
	}
	if (e.Kind == migrate.EntryData) != (p != nil) {
		w.err = fmt.Errorf("guest package: record %d: a packet goes with data entries and only with them", w.records)
		return w.err
	}
	w.write(enc)
	if p != nil {
		if _, err := sev.ParsePacketHeader(p.Header[:]); err != nil {
			w.err = fmt.Errorf("guest package: record %d: %w", w.records, err)
			return w.err
		}
		w.write(p.Header[:])
		w.write(p.Data[:])
		w.data++
	}
	w.records++
	return w.err
}

// Finish writes the end of the records, the device state and the trailer, and flushes.
// It does not sync or close the underlying writer.
func (w *Writer) Finish(devices []byte) error {
	if w.err != nil {
		return w.err
	}
	if w.stream == nil || w.done {
		return errors.New("guest package: Finish out of order")
	}
	if len(devices) == 0 || len(devices) > migrate.MaxDeviceState {
		w.err = fmt.Errorf("guest package: device state is %d bytes, want 1..%d", len(devices), migrate.MaxDeviceState)
		return w.err
	}
	b := append([]byte(nil), endOfRecords[:]...)
	b = binary.LittleEndian.AppendUint64(b, w.records)
	b = binary.LittleEndian.AppendUint64(b, w.data)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(devices)))
	w.write(b)
	w.write(devices)
	w.write([]byte(TrailerMagic))
	if w.err != nil {
		return w.err
	}
	sum := w.h.Sum(nil)
	if _, err := w.bw.Write(sum); err != nil {
		w.err = err
		return err
	}
	w.n += int64(len(sum))
	if err := w.bw.Flush(); err != nil {
		w.err = fmt.Errorf("guest package: flushing: %w", err)
		return w.err
	}
	w.done = true
	return nil
}

// checkEntry decodes an entry and checks its block and page against the stream.
func checkEntry(b []byte, s *Stream) (migrate.Entry, error) {
	e, err := migrate.DecodeEntry(b)
	if err != nil {
		return e, err
	}
	if e.Kind == migrate.EntryData || e.Kind == migrate.EntryZero {
		if int(e.Block) >= len(s.Blocks) {
			return e, fmt.Errorf("entry names RAM block %d of %d", e.Block, len(s.Blocks))
		}
		if uint64(e.Page) >= s.Blocks[e.Block].Pages() {
			return e, fmt.Errorf("page %d is outside RAM block %q (%d pages)", e.Page, s.Blocks[e.Block].ID, s.Blocks[e.Block].Pages())
		}
	}
	return e, nil
}

// Reader reads a package in one pass: NewReader (header, PDH, session), ReadStream, Next
// until io.EOF, then Finish, which checks the trailer digest. Nothing a Reader returns may
// be trusted before Finish returned nil.
type Reader struct {
	r       *bufio.Reader
	h       *bgHash // the trailer digest of the package's format version (newDigest)
	off     int64
	hdr     Header
	stream  *Stream
	records uint64
	data    uint64
	ended   bool
	entBuf  [migrate.EntrySize]byte
	// Memory and work are bounded by the listed RAM blocks before the trailer is checked:
	// seen has one bit per page (allocated per block at its first page), and section
	// records (not pages) are at most sectionSlack more than the pages.
	seen     [][]uint64
	sections uint64
	pages    uint64 // TotalPages of the stream
}

// NewReader reads and checks the fixed header, the sender PDH and the session.
func NewReader(r io.Reader) (*Reader, error) {
	pr := &Reader{r: bufio.NewReaderSize(r, 256<<10)}
	// The version picks the trailer digest, which covers the header itself: look at it
	// before reading (a short file is reported by the read below).
	version := uint16(FormatVersion)
	if b, err := pr.r.Peek(HeaderSize); err == nil && string(b[:8]) == Magic {
		version = binary.LittleEndian.Uint16(b[0x08:])
	}
	if version != 1 && version != 2 {
		return nil, pr.fail(8, "header", "format version %d is not supported (this build reads 1 and 2; a newer hostctl wrote it)", version)
	}
	pr.h = newBGHash(newDigest(version))
	b := make([]byte, HeaderSize)
	if err := pr.full(b, "header"); err != nil {
		return nil, err
	}
	if string(b[:8]) != Magic {
		return nil, pr.fail(0, "header", "magic %q is not %q: not a sevshim guest package", b[:8], Magic)
	}
	if v := binary.LittleEndian.Uint16(b[0x0A:]); v != HeaderSize {
		return nil, pr.fail(10, "header", "header size %d, want %d", v, HeaderSize)
	}
	h := &pr.hdr
	h.Policy = sev.Policy(binary.LittleEndian.Uint32(b[0x0C:]))
	h.Shape.RAMSize = binary.LittleEndian.Uint64(b[0x10:])
	h.Shape.CodeSize = binary.LittleEndian.Uint32(b[0x18:])
	h.Shape.VarsSize = binary.LittleEndian.Uint32(b[0x1C:])
	h.Shape.LayoutID = binary.LittleEndian.Uint32(b[0x20:])
	h.Shape.CPUs = binary.LittleEndian.Uint16(b[0x24:])
	ml := int(b[0x26])
	if b[0x27]&^knownDevice != 0 {
		return nil, pr.fail(0x27, "header", "devices byte is 0x%02x: unknown device bits 0x%02x (this build knows 0x%02x = TPM)", b[0x27], b[0x27]&^knownDevice, knownDevice)
	}
	h.Shape.TPM = b[0x27]&DeviceTPM != 0
	if ml == 0 || ml > MachineMax {
		return nil, pr.fail(0x26, "header", "machine type length %d, want 1..%d", ml, MachineMax)
	}
	h.Shape.Machine = string(b[0x28 : 0x28+ml])
	if !allZero(b[0x28+ml:]) {
		return nil, pr.fail(int64(0x28+ml), "header", "bytes after the machine type must be zero")
	}
	h.PDH = make([]byte, sev.CertSize)
	if err := pr.full(h.PDH, "sender PDH"); err != nil {
		return nil, err
	}
	h.Session = make([]byte, sev.SessionSize)
	if err := pr.full(h.Session, "session"); err != nil {
		return nil, err
	}
	if err := h.check(); err != nil {
		return nil, pr.fail(0, "header", "%v", err)
	}
	return pr, nil
}

func allZero(b []byte) bool { return bytes.Count(b, []byte{0}) == len(b) }

func (r *Reader) fail(at int64, where, format string, args ...any) error {
	return &FormatError{Offset: at, Where: where, Msg: fmt.Sprintf(format, args...)}
}

// full reads exactly len(b) bytes into b and hashes them.
func (r *Reader) full(b []byte, where string) error {
	n, err := io.ReadFull(r.r, b)
	r.h.Write(b[:n])
	r.off += int64(n)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return &truncError{FormatError{Offset: r.off, Where: where, Msg: fmt.Sprintf("the file ends here, %d bytes short", len(b)-n)}}
		}
		return fmt.Errorf("guest package: reading %s at byte %d: %w", where, r.off, err)
	}
	return nil
}

func (r *Reader) u32(where string) (uint32, error) {
	var b [4]byte
	err := r.full(b[:], where)
	return binary.LittleEndian.Uint32(b[:]), err
}

func (r *Reader) u64(where string) (uint64, error) {
	var b [8]byte
	err := r.full(b[:], where)
	return binary.LittleEndian.Uint64(b[:]), err
}

// Header returns the header (valid once NewReader returned).
func (r *Reader) Header() *Header { return &r.hdr }

// Offset is the number of bytes consumed so far.
func (r *Reader) Offset() int64 { return r.off }

// ReadStream reads the stream header and the RAM block list.
func (r *Reader) ReadStream() (*Stream, error) {
	if r.stream != nil {
		return nil, errors.New("guest package: ReadStream called twice")
	}
	at := r.off
	n, err := r.u32("stream header length")
	if err != nil {
		return nil, err
	}
	if n == 0 || n > maxStreamHeader {
		return nil, r.fail(at, "stream header", "length %d, want 1..%d", n, maxStreamHeader)
	}
	s := &Stream{Header: make([]byte, n)}
	if err := r.full(s.Header, "stream header"); err != nil {
		return nil, err
	}
	if s.RAMSectionID, err = r.u32("ram section id"); err != nil {
		return nil, err
	}
	at = r.off
	nb, err := r.u32("RAM block count")
	if err != nil {
		return nil, err
	}
	if nb == 0 || nb > maxBlocks {
		return nil, r.fail(at, "RAM blocks", "%d blocks, want 1..%d", nb, maxBlocks)
	}
	for i := uint32(0); i < nb; i++ {
		at = r.off
		var l [1]byte
		if err := r.full(l[:], "RAM block id length"); err != nil {
			return nil, err
		}
		id := make([]byte, l[0])
		if err := r.full(id, "RAM block id"); err != nil {
			return nil, err
		}
		size, err := r.u64("RAM block size")
		if err != nil {
			return nil, err
		}
		s.Blocks = append(s.Blocks, migrate.Block{ID: string(id), Size: size})
	}
	if err := s.check(); err != nil {
		return nil, r.fail(at, "RAM blocks", "%v", err)
	}
	r.stream = s
	r.seen = make([][]uint64, len(s.Blocks))
	r.pages = s.TotalPages()
	return s, nil
}

// sectionSlack is how many more section records (kinds 3 and 4) than pages a package may
// have: QEMU writes a ram section per iteration, and an iteration may find no dirty page.
const sectionSlack = 1024

// MaxRecords is the most records a package with these RAM blocks can have: every page once
// (data or zero) and at most pages + sectionSlack section boundaries.
func (s *Stream) MaxRecords() uint64 { return 2*s.TotalPages() + sectionSlack }

// count refuses a page seen before and more section records than the blocks allow.
func (r *Reader) count(e migrate.Entry) error {
	if e.Kind != migrate.EntryData && e.Kind != migrate.EntryZero {
		r.sections++
		if r.sections > r.pages+sectionSlack {
			return fmt.Errorf("more than %d section records for %d pages of RAM blocks (at most pages + %d)", r.pages+sectionSlack, r.pages, sectionSlack)
		}
		return nil
	}
	bm := r.seen[e.Block]
	if bm == nil {
		bm = make([]uint64, (r.stream.Blocks[e.Block].Pages()+63)/64)
		r.seen[e.Block] = bm
	}
	w, bit := e.Page/64, uint64(1)<<(e.Page%64)
	if bm[w]&bit != 0 {
		return fmt.Errorf("page %d of RAM block %q appears twice (every page is sent once)", e.Page, r.stream.Blocks[e.Block].ID)
	}
	bm[w] |= bit
	return nil
}

// Each calls f for every remaining record, as Next returns them (p is filled for data
// entries), until the end of the records (Each returns nil) or the first error of Next or f.
func (r *Reader) Each(p *Packet, f func(e migrate.Entry, has bool) error) error {
	for {
		e, has, err := r.Next(p)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := f(e, has); err != nil {
			return err
		}
	}
}

// Next returns the next record. p is filled for data entries (and untouched otherwise);
// the bool says whether it was. At the end of the records Next returns io.EOF.
func (r *Reader) Next(p *Packet) (migrate.Entry, bool, error) {
	if r.stream == nil {
		return migrate.Entry{}, false, errors.New("guest package: Next before ReadStream")
	}
	if r.ended {
		return migrate.Entry{}, false, io.EOF
	}
	at := r.off
	if err := r.full(r.entBuf[:], "record"); err != nil {
		return migrate.Entry{}, false, err
	}
	if r.entBuf == endOfRecords {
		r.ended = true
		at = r.off
		nrec, err := r.u64("record count")
		if err != nil {
			return migrate.Entry{}, false, err
		}
		ndata, err := r.u64("data page count")
		if err != nil {
			return migrate.Entry{}, false, err
		}
		if nrec != r.records || ndata != r.data {
			return migrate.Entry{}, false, r.fail(at, "end of records", "counts say %d records / %d data pages, the file has %d / %d", nrec, ndata, r.records, r.data)
		}
		return migrate.Entry{}, false, io.EOF
	}
	e, err := checkEntry(r.entBuf[:], r.stream)
	if err == nil {
		err = r.count(e)
	}
	if err != nil {
		return e, false, r.fail(at, fmt.Sprintf("record %d", r.records), "%v", err)
	}
	r.records++
	if e.Kind != migrate.EntryData {
		return e, false, nil
	}
	at = r.off
	if err := r.full(p.Header[:], "SEV packet header"); err != nil {
		return e, false, err
	}
	if _, err := sev.ParsePacketHeader(p.Header[:]); err != nil {
		return e, false, r.fail(at, fmt.Sprintf("record %d", r.records-1), "%v", err)
	}
	if err := r.full(p.Data[:], "SEV packet data"); err != nil {
		return e, false, err
	}
	r.data++
	return e, true, nil
}

// Counts returns the records and data pages read so far.
func (r *Reader) Counts() (records, dataPages uint64) { return r.records, r.data }

// Finish reads the device state and the trailer, checks the digest and that nothing follows.
// It returns the device state. Call it after Next returned io.EOF.
func (r *Reader) Finish() ([]byte, error) {
	if !r.ended {
		return nil, errors.New("guest package: Finish before the end of the records")
	}
	at := r.off
	n, err := r.u32("device state length")
	if err != nil {
		return nil, err
	}
	if n == 0 || n > migrate.MaxDeviceState {
		return nil, r.fail(at, "device state", "length %d, want 1..%d", n, migrate.MaxDeviceState)
	}
	// Grow with the data actually present, so a hostile length cannot make us allocate.
	var dev []byte
	for rem := int(n); rem > 0; {
		c := min(rem, 1<<20)
		dev = append(dev, make([]byte, c)...)
		if err := r.full(dev[len(dev)-c:], "device state"); err != nil {
			return nil, err
		}
		rem -= c
	}
	at = r.off
	var m [8]byte
	if err := r.full(m[:], "trailer"); err != nil {
		return nil, err
	}
	if string(m[:]) != TrailerMagic {
		return nil, r.fail(at, "trailer", "magic %q, want %q", m[:], TrailerMagic)
	}
	want := r.h.Sum(nil)
	got := make([]byte, len(want))
	if n, err := io.ReadFull(r.r, got); err != nil {
		r.off += int64(n)
		return nil, &truncError{FormatError{Offset: r.off, Where: "trailer digest", Msg: "the file ends inside the digest"}}
	}
	r.off += int64(len(got))
	if !bytes.Equal(want, got) {
		return nil, ErrDigest
	}
	var one [1]byte
	if k, _ := r.r.Read(one[:]); k != 0 {
		return nil, r.fail(r.off, "trailer", "bytes follow the trailer")
	}
	return dev, nil
}

// Summary describes a package that verified.
type Summary struct {
	Header    Header
	Stream    Stream
	Records   uint64
	DataPages uint64
	ZeroPages uint64
	Devices   []migrate.DeviceSection
	Bytes     int64
}

// Verify reads a whole package, checks its structure, the device state and the trailer
// digest (not the SEV packets: only the receiving PSP can). It keeps no page data.
func Verify(rd io.Reader) (*Summary, error) {
	r, err := NewReader(rd)
	if err != nil {
		return nil, err
	}
	st, err := r.ReadStream()
	if err != nil {
		return nil, err
	}
	sum := &Summary{Header: *r.Header(), Stream: *st}
	var p Packet
	if err := r.Each(&p, func(e migrate.Entry, _ bool) error {
		if e.Kind == migrate.EntryZero {
			sum.ZeroPages++
		}
		return nil
	}); err != nil {
		return nil, err
	}
	dev, err := r.Finish()
	if err != nil {
		return nil, err
	}
	if sum.Devices, err = migrate.CheckDeviceState(dev); err != nil {
		return nil, fmt.Errorf("guest package: device state: %w", err)
	}
	sum.Records, sum.DataPages = r.Counts()
	sum.Bytes = r.Offset()
	return sum, nil
}

// newDigest is the trailer digest of a format version: SHA-384 for 1, SHA-256 for 2.
func newDigest(version uint16) hash.Hash {
	if version == 1 {
		return sha512.New384()
	}
	return sha256.New()
}

// MachineFromStreamHeader extracts the machine type from the start of a QEMU stream
// (magic, version, configuration section: 0x07, u32 BE length, name). ok is false until
// enough bytes are there or if they do not have that shape.
func MachineFromStreamHeader(b []byte) (string, bool) {
	if len(b) < 13 || string(b[:4]) != "QEVM" || b[8] != 0x07 {
		return "", false
	}
	n := int(binary.BigEndian.Uint32(b[9:13]))
	if n == 0 || n > 255 || len(b) < 13+n {
		return "", false
	}
	return string(b[13 : 13+n]), true
}

// Counts returns the records and data pages written so far.
func (w *Writer) Counts() (records, dataPages uint64) { return w.records, w.data }
