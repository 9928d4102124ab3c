package migrate

import (
	"encoding/binary"
	"fmt"
	"io"
)

// EntryKind is the kind of one element of the compact page stream.
type EntryKind uint8

const (
	EntryData EntryKind = 1 // a PAGE record; its 4096 bytes travel separately (encrypted by export)
	EntryZero EntryKind = 2 // a ZERO record; Fill is its fill byte
	EntryPart EntryKind = 3 // a PART section of "ram" begins
	EntryEnd  EntryKind = 4 // the END section of "ram" begins
)

// EntrySize is the encoded size of an Entry.
const EntrySize = 8

// Entry is one element of the compact page stream: a section boundary or a page
// record without its data. See doc.go for the encoding.
type Entry struct {
	Kind     EntryKind
	Continue bool   // page record omitted the idstr
	Fill     byte   // EntryZero only
	Block    uint16 // page entries: index into the block list
	Page     uint32 // page entries: offset in the block / PageSize
}

// Offset returns the byte offset of a page entry inside its block.
func (e Entry) Offset() uint64 { return uint64(e.Page) * PageSize }

// AppendBinary appends the 8-byte encoding of e.
func (e Entry) AppendBinary(b []byte) []byte {
	k := byte(e.Kind)
	if e.Continue {
		k |= 0x80
	}
	b = append(b, k, e.Fill)
	b = binary.BigEndian.AppendUint16(b, e.Block)
	return binary.BigEndian.AppendUint32(b, e.Page)
}

// DecodeEntry decodes one 8-byte entry and checks that its fields are consistent
// (section entries carry no page fields, data entries no fill byte).
func DecodeEntry(b []byte) (Entry, error) {
	if len(b) < EntrySize {
		return Entry{}, fmt.Errorf("page stream entry has %d bytes, needs %d", len(b), EntrySize)
	}
	e := Entry{Kind: EntryKind(b[0] & 0x7F), Continue: b[0]&0x80 != 0, Fill: b[1],
		Block: binary.BigEndian.Uint16(b[2:]), Page: binary.BigEndian.Uint32(b[4:])}
	switch e.Kind {
	case EntryData:
		if e.Fill != 0 {
			return e, fmt.Errorf("data page entry has fill byte 0x%02x; only zero entries carry one", e.Fill)
		}
	case EntryZero:
	case EntryPart, EntryEnd:
		if e.Continue || e.Fill != 0 || e.Block != 0 || e.Page != 0 {
			return e, fmt.Errorf("section entry %x carries page fields", b[:EntrySize])
		}
	default:
		return e, fmt.Errorf("page stream entry kind %d is unknown", b[0]&0x7F)
	}
	return e, nil
}

// Skeleton is a whole stream minus the contents of its data pages: everything
// needed, together with the data pages in order, to rebuild the stream exactly.
type Skeleton struct {
	Header       []byte  // magic, version, configuration section, verbatim
	RAMSectionID uint32  // id of the "ram" section
	Blocks       []Block // MEM_SIZE list, in order
	Entries      []Entry // section boundaries and page records, in stream order
	Devices      []byte  // everything after the "ram" END section, verbatim
}

// DataPages returns how many entries are data pages.
func (s *Skeleton) DataPages() int {
	n := 0
	for _, e := range s.Entries {
		if e.Kind == EntryData {
			n++
		}
	}
	return n
}

// Recorder is a Handler that builds a Skeleton and passes each data page to OnData
// (in stream order, with the index of its entry) so the caller can encrypt or store
// it. The data slice is only valid during the call.
type Recorder struct {
	Skeleton Skeleton
	OnData   func(entry int, block Block, offset uint64, data []byte) error
}

func (r *Recorder) Header(raw []byte) error {
	r.Skeleton.Header = append([]byte(nil), raw...)
	return nil
}

func (r *Recorder) RAMBlocks(id uint32, blocks []Block) error {
	if len(blocks) > 1<<16 {
		return fmt.Errorf("%d RAM blocks do not fit the compact page stream", len(blocks))
	}
	r.Skeleton.RAMSectionID = id
	r.Skeleton.Blocks = append([]Block(nil), blocks...)
	return nil
}

func (r *Recorder) RAMSection(end bool) error {
	k := EntryPart
	if end {
		k = EntryEnd
	}
	r.Skeleton.Entries = append(r.Skeleton.Entries, Entry{Kind: k})
	return nil
}

func (r *Recorder) Page(p *Page) error {
	if p.Offset/PageSize > 0xFFFFFFFF {
		return fmt.Errorf("page offset 0x%x does not fit the compact page stream", p.Offset)
	}
	e := Entry{Continue: p.Continue, Block: uint16(p.Block), Page: uint32(p.Offset / PageSize)}
	if p.Kind == PageZero {
		e.Kind, e.Fill = EntryZero, p.Fill
	} else {
		e.Kind = EntryData
	}
	r.Skeleton.Entries = append(r.Skeleton.Entries, e)
	if e.Kind == EntryData && r.OnData != nil {
		return r.OnData(len(r.Skeleton.Entries)-1, r.Skeleton.Blocks[p.Block], p.Offset, p.Data)
	}
	return nil
}

func (r *Recorder) Device(chunk []byte) error {
	r.Skeleton.Devices = append(r.Skeleton.Devices, chunk...)
	return nil
}

func (r *Recorder) Done() error { return nil }

// Check validates the skeleton without any page data: header, block list, section
// order, CONTINUE use, offsets, that every page is present exactly once, and the device
// state. A skeleton that passes rebuilds into a stream Parse accepts for any 4 KiB
// contents of its data pages, so receive can refuse a bad package before it starts QEMU.
func (s *Skeleton) Check() error {
	zero := make([]byte, PageSize)
	return s.Replay(NewWriter(io.Discard), func(int, Entry) ([]byte, error) { return zero, nil })
}

// Replay drives h (usually a Writer) with the skeleton, asking data for the 4096
// bytes of each data entry in order. It checks the device state before any page is
// asked for, so a damaged skeleton fails before h has written much.
func (s *Skeleton) Replay(h Handler, data func(entry int, e Entry) ([]byte, error)) error {
	if _, err := CheckDeviceState(s.Devices); err != nil {
		return fmt.Errorf("skeleton device state: %w", err)
	}
	if err := h.Header(s.Header); err != nil {
		return err
	}
	if err := h.RAMBlocks(s.RAMSectionID, s.Blocks); err != nil {
		return err
	}
	p := Page{}
	for i, e := range s.Entries {
		switch e.Kind {
		case EntryPart, EntryEnd:
			if err := h.RAMSection(e.Kind == EntryEnd); err != nil {
				return err
			}
			continue
		case EntryData, EntryZero:
		default:
			return fmt.Errorf("skeleton entry %d has unknown kind %d", i, e.Kind)
		}
		if int(e.Block) >= len(s.Blocks) {
			return fmt.Errorf("skeleton entry %d names block %d of %d", i, e.Block, len(s.Blocks))
		}
		p = Page{Block: int(e.Block), Offset: e.Offset(), Continue: e.Continue}
		if e.Kind == EntryZero {
			p.Kind, p.Fill = PageZero, e.Fill
		} else {
			d, err := data(i, e)
			if err != nil {
				return err
			}
			p.Kind, p.Data = PageData, d
		}
		if err := h.Page(&p); err != nil {
			return err
		}
	}
	for b := s.Devices; len(b) > 0; {
		n := min(len(b), 64<<10)
		if err := h.Device(b[:n]); err != nil {
			return err
		}
		b = b[n:]
	}
	return h.Done()
}
