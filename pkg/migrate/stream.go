package migrate

import (
	"errors"
	"fmt"
	"math/bits"
)

// Top-level markers of the QEMU savevm stream (migration/savevm.h, QEMU 7.2).
const (
	fileMagic   = 0x5145564D // "QEVM"
	fileVersion = 3

	markEOF           = 0x00
	markSectionStart  = 0x01
	markSectionPart   = 0x02
	markSectionEnd    = 0x03
	markSectionFull   = 0x04
	markSubsection    = 0x05
	markVMDescription = 0x06
	markConfiguration = 0x07
	markCommand       = 0x08
	markFooter        = 0x7E
)

// Flags of a record word in the "ram" section (migration/ram.c, section version 4).
const (
	flagFull         = 0x001 // obsolete
	flagZero         = 0x002
	flagMemSize      = 0x004
	flagPage         = 0x008
	flagEOS          = 0x010
	flagContinue     = 0x020
	flagXBZRLE       = 0x040
	flagHook         = 0x080
	flagCompressPage = 0x100
	flagMask         = 0xFFF
)

const (
	// PageSize is the target page size of x86 guests; RAM records carry one page each.
	PageSize = 4096

	ramIDStr      = "ram"
	ramVersion    = 4
	ramInstanceID = 0

	// Limits that keep a hostile stream from making the parser allocate without bound.
	maxBlocks      = 256
	maxRAM         = 1 << 40 // 1 TiB, all blocks together
	maxMachineName = 255
	// MaxDeviceState bounds the verbatim bytes after the RAM END section (device
	// sections, EOF, vmdescription). Real q35 guests need 80-230 KB.
	MaxDeviceState = 64 << 20
)

// Block is one RAM block declared in the MEM_SIZE list of the "ram" START section.
type Block struct {
	ID   string // QEMU's idstr, e.g. "pc.ram", "system.flash0"
	Size uint64 // used_length in bytes, a multiple of PageSize
}

// Pages returns the number of pages of the block.
func (b Block) Pages() uint64 { return b.Size / PageSize }

// PageKind says how a page travels in the stream.
type PageKind uint8

const (
	// PageData is a RAM_SAVE_FLAG_PAGE record: 4096 raw bytes follow.
	PageData PageKind = 1
	// PageZero is a RAM_SAVE_FLAG_ZERO record: the page is filled with one byte (QEMU
	// always sends 0x00, the loader memsets whatever byte it gets).
	PageZero PageKind = 2
)

var pageKindNames = map[PageKind]string{PageData: "data", PageZero: "zero"}

func (k PageKind) String() string {
	if n, ok := pageKindNames[k]; ok {
		return n
	}
	return fmt.Sprintf("PageKind(%d)", uint8(k))
}

// Page is one page record of the "ram" section.
type Page struct {
	Block    int    // index into the block list given to RAMBlocks
	Offset   uint64 // byte offset inside the block (not a guest physical address), page aligned
	Kind     PageKind
	Continue bool   // the record omitted the block idstr (RAM_SAVE_FLAG_CONTINUE)
	Fill     byte   // PageZero only: the fill byte
	Data     []byte // PageData only: exactly PageSize bytes. The parser reuses this buffer after the callback returns.
	Pos      int64  // set by Parse: byte position of the record in the stream (ignored by Writer)
}

// Handler receives the parts of a stream in order. Parse calls, in this order:
//
//	Header once
//	RAMBlocks once (the "ram" START section)
//	RAMSection / Page, any number (each PART or END section of "ram", then its pages)
//	Device, any number (the verbatim bytes after the END section's footer)
//	Done once, after the whole input was read and checked
//
// A Writer implements Handler and turns the same calls back into the exact bytes.
// Any error returned by a method stops the parse and is returned by Parse.
type Handler interface {
	// Header gets the file magic, version and configuration section verbatim.
	Header(raw []byte) error
	// RAMBlocks gets the "ram" section id chosen by the source and the block list
	// in stream order. Block indexes in Page refer to this slice.
	RAMBlocks(sectionID uint32, blocks []Block) error
	// RAMSection starts a PART (end=false) or END (end=true) section of "ram". The
	// previous section was closed (EOS + footer).
	RAMSection(end bool) error
	// Page gets one page record. p and p.Data are only valid during the call.
	Page(p *Page) error
	// Device gets the next chunk of the bytes after the "ram" END section, in order:
	// device FULL sections, EOF and the vmdescription. chunk is only valid during the call.
	Device(chunk []byte) error
	// Done is called once the input ended and every check passed.
	Done() error
}

// FormatError is a defect found in a stream, with the byte position where it was found.
type FormatError struct {
	Offset int64  // byte offset from the start of the stream
	Where  string // the part of the stream being read, e.g. `ram PART section`
	Msg    string
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("migration stream: byte %d (0x%x), %s: %s", e.Offset, e.Offset, e.Where, e.Msg)
}

// ErrTruncated is wrapped by errors for streams that end early.
var ErrTruncated = errors.New("stream ends early")

// ramState tracks the RAM block set and page coverage. The parser and the writer
// share it, so a Writer refuses exactly what Parse refuses.
type ramState struct {
	blocks  []Block
	byName  map[string]int
	last    int // block of the previous page record, -1 before the first
	seen    []coverage
	pages   uint64
	resent  uint64
	options Options
}

// coverage is a page bitmap allocated in chunks on first use, so that a hostile
// stream declaring huge blocks costs memory only for pages it really sends.
type coverage struct {
	count  uint64 // distinct pages seen
	chunks []*[chunkWords]uint64
}

const (
	chunkPages = 1 << 15 // 128 MiB of guest memory per chunk
	chunkWords = chunkPages / 64
)

// set marks page n and reports whether it was already marked.
func (c *coverage) set(n, pages uint64) bool {
	if c.chunks == nil {
		c.chunks = make([]*[chunkWords]uint64, (pages+chunkPages-1)/chunkPages)
	}
	ch := c.chunks[n/chunkPages]
	if ch == nil {
		ch = new([chunkWords]uint64)
		c.chunks[n/chunkPages] = ch
	}
	w, bit := (n%chunkPages)/64, uint64(1)<<(n%64)
	if ch[w]&bit != 0 {
		return true
	}
	ch[w] |= bit
	c.count++
	return false
}

// firstMissing returns the first page not marked (pages if none).
func (c *coverage) firstMissing(pages uint64) uint64 {
	for ci := uint64(0); ci*chunkPages < pages; ci++ {
		if c.chunks == nil || c.chunks[ci] == nil {
			return ci * chunkPages
		}
		for wi, w := range c.chunks[ci] {
			if w != ^uint64(0) {
				n := ci*chunkPages + uint64(wi)*64 + uint64(bits.TrailingZeros64(^w))
				return min(n, pages)
			}
		}
	}
	return pages
}

func newRAMState(blocks []Block, opt Options) (*ramState, error) {
	if len(blocks) == 0 {
		return nil, errors.New("the MEM_SIZE list declares no RAM blocks")
	}
	if len(blocks) > maxBlocks {
		return nil, fmt.Errorf("%d RAM blocks, more than the %d this tool accepts", len(blocks), maxBlocks)
	}
	s := &ramState{blocks: blocks, byName: map[string]int{}, last: -1, options: opt}
	var total uint64
	for i, b := range blocks {
		if err := checkIDStr(b.ID); err != nil {
			return nil, fmt.Errorf("block %d: %v", i, err)
		}
		if _, dup := s.byName[b.ID]; dup {
			return nil, fmt.Errorf("block %q declared twice", b.ID)
		}
		if b.Size == 0 || b.Size%PageSize != 0 || b.Size > maxRAM {
			return nil, fmt.Errorf("block %q has size 0x%x: not a non-zero multiple of 4 KiB up to 1 TiB", b.ID, b.Size)
		}
		total += b.Size
		if total > maxRAM {
			return nil, fmt.Errorf("RAM blocks add up to more than 1 TiB")
		}
		s.byName[b.ID] = i
	}
	s.seen = make([]coverage, len(blocks))
	return s, nil
}

func checkIDStr(id string) error {
	if id == "" {
		return errors.New("empty block idstr")
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c < 0x20 || c > 0x7E {
			return fmt.Errorf("block idstr %q has a non-printable byte", id)
		}
	}
	return nil
}

// page checks one page record against the block set. named is the idstr carried by the
// record ("" with CONTINUE). It returns the block index.
func (s *ramState) page(named string, cont bool, offset uint64) (int, error) {
	var bi int
	if cont {
		if s.last < 0 {
			return 0, errors.New("CONTINUE flag on the first page record (no previous block); QEMU rejects this as \"Ack, bad migration stream!\"")
		}
		bi = s.last
	} else {
		i, ok := s.byName[named]
		if !ok {
			return 0, fmt.Errorf("page record names block %q, which the MEM_SIZE list does not declare", named)
		}
		bi = i
	}
	b := s.blocks[bi]
	if offset%PageSize != 0 {
		return 0, fmt.Errorf("page offset 0x%x in block %q is not page aligned", offset, b.ID)
	}
	if offset >= b.Size {
		return 0, fmt.Errorf("page offset 0x%x is beyond block %q of size 0x%x", offset, b.ID, b.Size)
	}
	if s.seen[bi].set(offset/PageSize, b.Pages()) {
		if !s.options.AllowResend {
			return 0, fmt.Errorf("page 0x%x of block %q is sent a second time; a stopped guest sends every page once (set Options.AllowResend for a running source)", offset, b.ID)
		}
		s.resent++
	} else {
		s.pages++
	}
	s.last = bi
	return bi, nil
}

// complete checks that every page of every block was sent.
func (s *ramState) complete() error {
	for bi, b := range s.blocks {
		n := b.Pages()
		if c := &s.seen[bi]; c.count != n {
			return fmt.Errorf("block %q: %d of its %d pages were never sent (first missing at offset 0x%x); the destination would keep its own content there",
				b.ID, n-c.count, n, c.firstMissing(n)*PageSize)
		}
	}
	return nil
}

// Options change what Parse and Writer accept. The zero value is the strict default
// for a stopped guest.
type Options struct {
	// AllowResend accepts a page record for a (block, offset) already sent. QEMU sends
	// re-dirtied pages again when the source was running; the later record wins.
	AllowResend bool
}
