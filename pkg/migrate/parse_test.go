package migrate

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
)

// collect is a Handler that keeps every page record (with its stream position).
type collect struct {
	blocks []Block
	pages  []Page
	events []string
}

func (c *collect) Header([]byte) error { c.events = append(c.events, "header"); return nil }
func (c *collect) RAMBlocks(_ uint32, b []Block) error {
	c.blocks = b
	c.events = append(c.events, "blocks")
	return nil
}
func (c *collect) RAMSection(end bool) error {
	if end {
		c.events = append(c.events, "end")
	} else {
		c.events = append(c.events, "part")
	}
	return nil
}
func (c *collect) Page(p *Page) error {
	q := *p
	q.Data = append([]byte(nil), p.Data...)
	c.pages = append(c.pages, q)
	return nil
}
func (c *collect) Device([]byte) error { return nil }
func (c *collect) Done() error         { c.events = append(c.events, "done"); return nil }

func TestSeedsRoundTrip(t *testing.T) {
	for _, name := range []string{"tiny.bin", "trim4.bin"} {
		t.Run(name, func(t *testing.T) {
			src := readSeed(t, name)
			var out bytes.Buffer
			w := NewWriter(&out)
			st, err := Parse(bytes.NewReader(src), w)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out.Bytes(), src) {
				t.Fatalf("rebuilt stream differs (%d vs %d bytes)", out.Len(), len(src))
			}
			if st.Bytes != int64(len(src)) || w.Written() != st.Bytes {
				t.Fatalf("byte counts: parsed %d, written %d, file %d", st.Bytes, w.Written(), len(src))
			}
			if st.Machine != "pc-q35-7.2" || st.DataPages == 0 || st.ZeroPages == 0 || len(st.Devices) == 0 {
				t.Fatalf("unexpected stats %+v", st)
			}
			// Through the compact representation: entries encoded and decoded, data
			// pages kept apart, replayed into a Writer.
			sk, pages := record(t, src)
			var enc []byte
			for _, e := range sk.Entries {
				enc = e.AppendBinary(enc)
			}
			if len(enc) != EntrySize*len(sk.Entries) {
				t.Fatalf("encoded %d bytes for %d entries", len(enc), len(sk.Entries))
			}
			sk2 := *sk
			sk2.Entries = nil
			for i := 0; i < len(enc); i += EntrySize {
				e, err := DecodeEntry(enc[i:])
				if err != nil {
					t.Fatal(err)
				}
				sk2.Entries = append(sk2.Entries, e)
			}
			if sk2.DataPages() != len(pages) || uint64(len(pages)) != st.DataPages {
				t.Fatalf("data pages: skeleton %d, recorded %d, stats %d", sk2.DataPages(), len(pages), st.DataPages)
			}
			var out2 bytes.Buffer
			k := 0
			if err := sk2.Replay(NewWriter(&out2), func(int, Entry) ([]byte, error) { k++; return pages[k-1], nil }); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out2.Bytes(), src) {
				t.Fatal("stream replayed from the compact representation differs")
			}
		})
	}
}

func TestHandlerOrder(t *testing.T) {
	c := &collect{}
	if _, err := Parse(bytes.NewReader(readSeed(t, "trim4.bin")), c); err != nil {
		t.Fatal(err)
	}
	ev := strings.Join(c.events, " ")
	if !strings.HasPrefix(ev, "header blocks part") || !strings.HasSuffix(ev, "end done") {
		t.Fatalf("event order %q", ev)
	}
	if c.pages[0].Continue {
		t.Fatal("first page record has CONTINUE")
	}
	for _, p := range c.pages {
		if p.Kind == PageData && len(p.Data) != PageSize || p.Kind == PageZero && len(p.Data) != 0 {
			t.Fatalf("page %+v has %d data bytes", p, len(p.Data))
		}
	}
}

// layout finds positions in a seed stream for the corruption table.
type layout struct {
	src            []byte
	st             *Stats
	pages          []Page
	blocks         []Block
	startEOS       int // EOS word of the START section
	startFooter    int
	firstPart      int // header of the first PART section
	tail           int // first device byte
	endFooter      int
	firstIDStrPage Page // the first record naming "pc.ram"
}

func newLayout(t *testing.T) *layout {
	t.Helper()
	src := readSeed(t, "trim4.bin")
	c := &collect{}
	st, err := Parse(bytes.NewReader(src), c)
	if err != nil {
		t.Fatal(err)
	}
	l := &layout{src: src, st: st, pages: c.pages, blocks: c.blocks}
	l.startEOS = 23 + 17 + 8
	for _, b := range c.blocks {
		l.startEOS += 1 + len(b.ID) + 8
	}
	l.startFooter = l.startEOS + 8
	l.firstPart = l.startFooter + 5
	if int(c.pages[0].Pos) != l.firstPart+5 {
		t.Fatalf("first page at %d, expected right after the first PART header at %d", c.pages[0].Pos, l.firstPart)
	}
	l.tail = len(src) - int(st.DeviceBytes)
	l.endFooter = l.tail - 5
	for _, p := range c.pages {
		if !p.Continue && c.blocks[p.Block].ID == "pc.ram" {
			l.firstIDStrPage = p
			break
		}
	}
	return l
}

func (l *layout) firstWhere(t *testing.T, f func(Page) bool) Page {
	for _, p := range l.pages {
		if f(p) {
			return p
		}
	}
	t.Fatal("no such page in the seed")
	return Page{}
}

func edit(src []byte, f func(b []byte) []byte) []byte {
	return f(append([]byte(nil), src...))
}

func TestCorruptionsRefused(t *testing.T) {
	l := newLayout(t)
	p0 := int(l.pages[0].Pos)
	ram := int(l.firstIDStrPage.Pos)
	zc := int(l.firstWhere(t, func(p Page) bool { return p.Kind == PageZero && p.Continue }).Pos)
	dataPage := int(l.firstWhere(t, func(p Page) bool { return p.Kind == PageData }).Pos)
	dev2 := l.tail + l.st.Devices[1].Offset
	setWord := func(b []byte, at int, f func(uint64) uint64) {
		binary.BigEndian.PutUint64(b[at:], f(binary.BigEndian.Uint64(b[at:])))
	}
	flag := func(f uint64) func([]byte) []byte {
		return func(b []byte) []byte { setWord(b, p0, func(w uint64) uint64 { return w | f }); return b }
	}
	cases := []struct {
		name  string
		mut   func([]byte) []byte
		at    int // expected FormatError.Offset; -1 = don't check
		want  string
		trunc bool
	}{
		{"bad magic", func(b []byte) []byte { b[0] = 'X'; return b }, 0, "not a QEMU migration stream", false},
		{"version 4", func(b []byte) []byte { b[7] = 4; return b }, 4, "stream version 4", false},
		{"no configuration section", func(b []byte) []byte { b[8] = 0x09; return b }, 8, "configuration section", false},
		{"machine name length 0", func(b []byte) []byte { b[12] = 0; return b }, 9, "machine name length 0", false},
		{"unknown config subsection", func(b []byte) []byte {
			return append(b[:23:23], append([]byte("\x05\x03abc\x00\x00\x00\x01"), b[23:]...)...)
		}, 23, "unknown configuration subsection", false},
		{"capabilities subsection", func(b []byte) []byte {
			n := "configuration/capabilities"
			return append(b[:23:23], append(append([]byte{5, byte(len(n))}, append([]byte(n), 0, 0, 0, 1)...), b[23:]...)...)
		}, 23, "capabilities", false},
		{"device section first", func(b []byte) []byte { b[23] = 0x04; return b }, 23, "SECTION_FULL", false},
		{"first section not ram", func(b []byte) []byte { b[28+3] = 'x'; return b }, 23, `"rax", not "ram"`, false},
		{"ram version 5", func(b []byte) []byte { b[39] = 5; return b }, 23, "version 5", false},
		{"MEM_SIZE flag wrong", func(b []byte) []byte { b[47] = 0x0C; return b }, 40, "MEM_SIZE", false},
		{"MEM_SIZE total too small", func(b []byte) []byte {
			setWord(b, 40, func(w uint64) uint64 { return w - 0x1000 })
			return b
		}, -1, "must end with EOS", false},
		{"block lengths overshoot total", func(b []byte) []byte { b[55+5] = 0x10; return b }, 48, "more than the MEM_SIZE total", false},
		{"block length unaligned", func(b []byte) []byte { b[40+8+1+6+7] = 0x01; return b }, 48, "not a non-zero multiple", false},
		{"START lacks EOS", func(b []byte) []byte { b[l.startEOS+7] = 0x12; return b }, l.startEOS, "must end with EOS", false},
		{"START footer id", func(b []byte) []byte { b[l.startFooter+4] = 0x63; return b }, l.startFooter, "id 99, expected", false},
		{"COMMAND section", func(b []byte) []byte { b[l.firstPart] = 0x08; return b }, l.firstPart, "COMMAND", false},
		{"second START", func(b []byte) []byte { b[l.firstPart] = 0x01; return b }, l.firstPart, "SECTION_START", false},
		{"FULL before ram END", func(b []byte) []byte { b[l.firstPart] = 0x04; return b }, l.firstPart, "SECTION_FULL", false},
		{"EOF before ram END", func(b []byte) []byte { b[l.firstPart] = 0x00; return b }, l.firstPart, "EOF", false},
		{"PART of another section", func(b []byte) []byte { b[l.firstPart+4] = 0x07; return b }, l.firstPart, "section id 7", false},
		{"flag FULL 0x01", flag(0x01), p0, "obsolete", false},
		{"flag HOOK 0x80", flag(0x80), p0, "RDMA", false},
		{"flag XBZRLE 0x40", flag(0x40), p0, "xbzrle", false},
		{"flag COMPRESS_PAGE 0x100", flag(0x100), p0, "compress", false},
		{"flag MEM_SIZE in PART", flag(0x04), p0, "MEM_SIZE may only", false},
		{"flags ZERO|PAGE", flag(0x0A), p0, "flags 0x00a", false},
		{"unknown flag 0x400", flag(0x400), p0, "unknown flag", false},
		{"CONTINUE on first record", flag(flagContinue), p0, "CONTINUE flag on the first page record", false},
		{"unknown block idstr", func(b []byte) []byte { b[ram+8+6] = 'x'; return b }, ram, `"pc.rax"`, false},
		{"empty block idstr", func(b []byte) []byte {
			return append(b[:ram+8:ram+8], append([]byte{0}, b[ram+8+7:]...)...)
		}, ram, `block ""`, false},
		{"offset beyond block", func(b []byte) []byte {
			setWord(b, ram, func(w uint64) uint64 { return w&flagMask | l.blocks[l.firstIDStrPage.Block].Size })
			return b
		}, ram, "beyond block", false},
		{"page sent twice", func(b []byte) []byte {
			return append(b[:zc+9:zc+9], b[zc:]...)
		}, zc + 9, "second time", false},
		{"page missing", func(b []byte) []byte {
			return append(b[:zc:zc], b[zc+9:]...)
		}, l.tail - 9, "never sent", false},
		{"huge block, few pages", func(b []byte) []byte {
			old := binary.BigEndian.Uint64(b[55:])
			binary.BigEndian.PutUint64(b[55:], 1<<39)
			setWord(b, 40, func(w uint64) uint64 { return w + 1<<39 - old })
			return b
		}, -1, "134217724 of its 134217728 pages were never sent", false},
		{"ram END footer removed", func(b []byte) []byte {
			return append(b[:l.endFooter:l.endFooter], b[l.tail:]...)
		}, l.endFooter, "Missing section footer", false},
		{"ram END footer wrong id", func(b []byte) []byte { b[l.endFooter+4] = 0x63; return b }, l.endFooter, "id 99, expected 2", false},
		{"device section type 9", func(b []byte) []byte { b[l.tail] = 0x09; return b }, l.tail, "unknown type 0x09", false},
		{"device name tamer", func(b []byte) []byte { b[l.tail+7] = 'a'; return b }, l.tail, `"tamer"`, false},
		{"device instance", func(b []byte) []byte { b[dev2+6+len(l.st.Devices[1].Name)+3] = 7; return b }, l.tail + 19, "cannot find the end", false},
		{"device footer id", func(b []byte) []byte { b[dev2-1] ^= 0x40; return b }, l.tail + 19, "cannot find the end", false},
		{"vmdescription JSON damaged", func(b []byte) []byte {
			i := bytes.LastIndex(b, []byte(`"page_size"`))
			b[i+5] = 'z'
			return b
		}, -1, "page_size", false},
		{"trailing garbage", func(b []byte) []byte { return append(b, 0) }, len(l.src) + 1, "truncated or extended", true},
		{"truncated in header", func(b []byte) []byte { return b[:15] }, 15, "machine name", true},
		{"truncated in MEM_SIZE list", func(b []byte) []byte { return b[:60] }, 60, "stream ends", true},
		{"truncated in page data", func(b []byte) []byte { return b[:dataPage+100] }, dataPage + 100, "page data", true},
		{"truncated after ram END", func(b []byte) []byte { return b[:l.tail] }, l.tail, "device state, EOF and vmdescription are missing", true},
		{"truncated in devices", func(b []byte) []byte { return b[:l.tail+5000] }, l.tail + 5000, "truncated", true},
		{"truncated in vmdescription", func(b []byte) []byte { return b[:len(b)-1] }, len(l.src) - 1, "truncated", true},
		{"empty input", func(b []byte) []byte { return nil }, 0, "file magic", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bad := edit(l.src, c.mut)
			_, err := Parse(bytes.NewReader(bad), &collect{})
			if err == nil {
				t.Fatal("corrupted stream accepted")
			}
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error is not a FormatError: %v", err)
			}
			if c.at >= 0 && fe.Offset != int64(c.at) {
				t.Errorf("error at byte %d, want %d: %v", fe.Offset, c.at, err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not mention %q", err, c.want)
			}
			if !strings.Contains(err.Error(), "byte ") {
				t.Errorf("error %q does not name the position", err)
			}
			if errors.Is(err, ErrTruncated) != c.trunc {
				t.Errorf("errors.Is(ErrTruncated) = %v, want %v", !c.trunc, c.trunc)
			}
			t.Log(err)
		})
	}
}

func TestAllowResend(t *testing.T) {
	l := newLayout(t)
	zc := int(l.firstWhere(t, func(p Page) bool { return p.Kind == PageZero && p.Continue }).Pos)
	dup := edit(l.src, func(b []byte) []byte { return append(b[:zc+9:zc+9], b[zc:]...) })
	var out bytes.Buffer
	st, err := ParseOptions(bytes.NewReader(dup), NewWriterOptions(&out, Options{AllowResend: true}), Options{AllowResend: true})
	if err != nil {
		t.Fatal(err)
	}
	if st.Resent != 1 || !bytes.Equal(out.Bytes(), dup) {
		t.Fatalf("resent %d, identical %v", st.Resent, bytes.Equal(out.Bytes(), dup))
	}
}

func TestWriterRefuses(t *testing.T) {
	src := readSeed(t, "tiny.bin")
	sk, pages := record(t, src)
	replay := func(mut func(*Skeleton), data func(int, Entry) ([]byte, error)) error {
		s := *sk
		s.Blocks = append([]Block(nil), sk.Blocks...)
		s.Entries = append([]Entry(nil), sk.Entries...)
		mut(&s)
		if data == nil {
			k := 0
			data = func(int, Entry) ([]byte, error) { k++; return pages[min(k, len(pages))-1], nil }
		}
		return s.Replay(NewWriter(io.Discard), data)
	}
	firstPage := func(s *Skeleton) int {
		for i, e := range s.Entries {
			if e.Kind == EntryData || e.Kind == EntryZero {
				return i
			}
		}
		return -1
	}
	cases := []struct {
		name string
		mut  func(*Skeleton)
		data func(int, Entry) ([]byte, error)
		want string
	}{
		{"continue first", func(s *Skeleton) { s.Entries[firstPage(s)].Continue = true }, nil, "CONTINUE"},
		{"block index", func(s *Skeleton) { s.Entries[firstPage(s)].Block = 99 }, nil, "block"},
		{"offset beyond", func(s *Skeleton) { s.Entries[firstPage(s)].Page = 1 << 20 }, nil, "beyond block"},
		{"duplicate page", func(s *Skeleton) {
			i := firstPage(s)
			s.Entries = append(s.Entries[:i+1], s.Entries[i:]...)
			s.Entries[i+1].Continue = true
		}, nil, "second time"},
		{"missing page", func(s *Skeleton) { i := firstPage(s); s.Entries = append(s.Entries[:i], s.Entries[i+1:]...) }, nil, ""},
		{"no END section", func(s *Skeleton) {
			for i := range s.Entries {
				if s.Entries[i].Kind == EntryEnd {
					s.Entries[i].Kind = EntryPart
				}
			}
		}, nil, "PART"},
		{"short data page", func(*Skeleton) {}, func(int, Entry) ([]byte, error) { return make([]byte, 100), nil }, "100 bytes"},
		{"header damaged", func(s *Skeleton) { s.Header = append([]byte("QEVX"), s.Header[4:]...) }, nil, "not a QEMU migration stream"},
		{"header extra bytes", func(s *Skeleton) { s.Header = append(append([]byte(nil), s.Header...), 1) }, nil, "stray"},
		{"device state damaged", func(s *Skeleton) { s.Devices = s.Devices[:len(s.Devices)-2] }, nil, "truncated"},
		{"no blocks", func(s *Skeleton) { s.Blocks = nil }, nil, "no RAM blocks"},
		{"duplicate block", func(s *Skeleton) { s.Blocks[1].ID = s.Blocks[0].ID }, nil, "twice"},
	}
	if err := sk.Check(); err != nil {
		t.Fatalf("Check of an intact skeleton: %v", err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.data == nil {
				s := *sk
				s.Blocks = append([]Block(nil), sk.Blocks...)
				s.Entries = append([]Entry(nil), sk.Entries...)
				c.mut(&s)
				if err := s.Check(); err == nil || !strings.Contains(err.Error(), c.want) {
					t.Errorf("Check: %v, want an error mentioning %q", err, c.want)
				}
			}
			err := replay(c.mut, c.data)
			if err == nil {
				t.Fatal("writer accepted it")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not mention %q", err, c.want)
			}
		})
	}
	// Calls out of order.
	w := NewWriter(io.Discard)
	if err := w.Page(&Page{Kind: PageZero}); err == nil || !strings.Contains(err.Error(), "out of order") {
		t.Fatalf("Page before Header: %v", err)
	}
	if err := w.Header(sk.Header); err == nil {
		t.Fatal("error did not stick")
	}
}

func TestDecodeEntryRefuses(t *testing.T) {
	for _, b := range [][]byte{
		{0, 0, 0, 0, 0, 0, 0, 0},
		{5, 0, 0, 0, 0, 0, 0, 0},
		{byte(EntryData), 1, 0, 0, 0, 0, 0, 0},
		{byte(EntryPart), 0, 0, 1, 0, 0, 0, 0},
		{byte(EntryEnd) | 0x80, 0, 0, 0, 0, 0, 0, 0},
		{byte(EntryZero), 0, 0},
	} {
		if e, err := DecodeEntry(b); err == nil {
			t.Errorf("%x decoded to %+v", b, e)
		}
	}
	e := Entry{Kind: EntryZero, Continue: true, Fill: 0xAA, Block: 3, Page: 0x12345}
	if d, err := DecodeEntry(e.AppendBinary(nil)); err != nil || d != e {
		t.Fatalf("round trip %+v -> %+v, %v", e, d, err)
	}
}
