package migrate

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// The committed seed streams (testdata/streams/*.bin) are real QEMU 7.2 streams made
// small: a 128 MiB q35 + Debian OVMF guest stopped at the shell countdown was captured,
// then every block was cut to its first few pages (the page bytes are the real ones)
// and, for tiny.bin, the device state was cut to its first section with a matching
// vmdescription; micro.bin keeps only two blocks (pc.ram, /rom@etc/acpi/rsdp) so
// the fuzzer can minimise quickly. QEMU would not load them (the block sizes differ from any machine),
// but they exercise every record kind. Regenerate with
//
//	MIGRATE_MAKE_SEEDS=/path/to/real-stream.bin go test -run TestMakeSeeds ./pkg/migrate/
const seedDir = "testdata/streams"

func readSeed(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(seedDir, name))
	if err != nil {
		t.Fatalf("seed stream: %v (regenerate as described in helpers_test.go)", err)
	}
	return b
}

// record parses a stream into a skeleton plus its data pages.
func record(t testing.TB, stream []byte) (*Skeleton, [][]byte) {
	t.Helper()
	var pages [][]byte
	rec := &Recorder{OnData: func(_ int, _ Block, _ uint64, d []byte) error {
		pages = append(pages, append([]byte(nil), d...))
		return nil
	}}
	if _, err := Parse(bytes.NewReader(stream), rec); err != nil {
		t.Fatalf("parse: %v", err)
	}
	return &rec.Skeleton, pages
}

// trimStream keeps the first maxPages pages of every block (same record order and
// section framing) and, with tinyTail, only the first device section.
// With keep non-nil, only the named blocks are kept.
func trimStream(t testing.TB, stream []byte, maxPages uint32, tinyTail bool, keep ...string) []byte {
	t.Helper()
	sk, pages := record(t, stream)
	out := Skeleton{Header: sk.Header, RAMSectionID: sk.RAMSectionID, Devices: sk.Devices}
	newIndex := map[uint16]uint16{}
	for i, b := range sk.Blocks {
		if keep != nil && !slices.Contains(keep, b.ID) {
			continue
		}
		newIndex[uint16(i)] = uint16(len(out.Blocks))
		out.Blocks = append(out.Blocks, Block{ID: b.ID, Size: min(b.Size, uint64(maxPages)*PageSize)})
	}
	var kept [][]byte
	di := 0
	last := -1
	for _, e := range sk.Entries {
		if e.Kind == EntryPart || e.Kind == EntryEnd {
			out.Entries = append(out.Entries, e)
			continue
		}
		isData := e.Kind == EntryData
		if isData {
			di++
		}
		ni, ok := newIndex[e.Block]
		if e.Page >= maxPages || !ok {
			continue
		}
		e.Block = ni
		e.Continue = int(e.Block) == last
		last = int(e.Block)
		out.Entries = append(out.Entries, e)
		if isData {
			kept = append(kept, pages[di-1])
		}
	}
	if tinyTail {
		devs, err := CheckDeviceState(sk.Devices)
		if err != nil {
			t.Fatal(err)
		}
		eof := devs[len(devs)-1].Offset + devs[len(devs)-1].Len
		var desc struct {
			Devices []json.RawMessage `json:"devices"`
		}
		if err := json.Unmarshal(sk.Devices[eof+6:], &desc); err != nil {
			t.Fatal(err)
		}
		js := []byte(`{"page_size": 4096, "devices": [` + string(desc.Devices[0]) + `]}`)
		tail := append([]byte(nil), sk.Devices[:devs[0].Len]...)
		tail = append(tail, markEOF, markVMDescription)
		tail = binary.BigEndian.AppendUint32(tail, uint32(len(js)))
		out.Devices = append(tail, js...)
	}
	var buf bytes.Buffer
	k := 0
	err := out.Replay(NewWriter(&buf), func(int, Entry) ([]byte, error) { k++; return kept[k-1], nil })
	if err != nil {
		t.Fatalf("rebuilding trimmed stream: %v", err)
	}
	return buf.Bytes()
}

func TestMakeSeeds(t *testing.T) {
	src := os.Getenv("MIGRATE_MAKE_SEEDS")
	if src == "" {
		t.Skip("set MIGRATE_MAKE_SEEDS=<real stream file> to regenerate testdata/streams")
	}
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(seedDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string][]byte{
		"trim4.bin": trimStream(t, b, 4, false),
		"tiny.bin":  trimStream(t, b, 1, true),
		"micro.bin": trimStream(t, b, 2, true, "pc.ram", "/rom@etc/acpi/rsdp"),
	} {
		if err := os.WriteFile(filepath.Join(seedDir, name), s, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d bytes", name, len(s))
	}
}
