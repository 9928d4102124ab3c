package migrate

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary bytes to Parse with a Writer as the handler. Properties:
//   - Parse never panics and never reads past the input;
//   - every refusal is a *FormatError naming a position inside (or at the end of) the input;
//   - the Writer never refuses what the parser accepted (they share their rules);
//   - an accepted stream is rebuilt byte for byte, directly and through the compact
//     page stream (Recorder -> Skeleton -> Replay).
//
// Seeds: the small real, trimmed streams in testdata/streams plus cut-downs of them.
// Run: go test -run '^$' -fuzz=FuzzParse -fuzztime=60s -fuzzminimizetime=5s ./pkg/migrate/
// (the default minimisation budget of 60 s per new input would eat most of a short run).
func FuzzParse(f *testing.F) {
	// trim4.bin (148 KB) is left out: minimising a new input costs one run per byte.
	for _, name := range []string{"micro.bin", "tiny.bin"} {
		b := readSeed(f, name)
		f.Add(b)
		f.Add(b[:23])       // header only
		f.Add(b[:len(b)/2]) // truncated
		f.Add(b[:min(len(b), 600)])
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var out bytes.Buffer
		st, err := Parse(bytes.NewReader(in), NewWriter(&out))
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("refusal is not a FormatError: %v", err)
			}
			if fe.Offset < 0 || fe.Offset > int64(len(in)) {
				t.Fatalf("error position %d outside the %d-byte input: %v", fe.Offset, len(in), err)
			}
			if fe.Where == "rebuilding" || strings.Contains(err.Error(), "rebuilt") {
				t.Fatalf("the writer refused what the parser accepted: %v", err)
			}
			return
		}
		if !bytes.Equal(out.Bytes(), in) || st.Bytes != int64(len(in)) {
			t.Fatalf("accepted stream rebuilt differently (%d -> %d bytes)", len(in), out.Len())
		}
		sk, data := record(t, in) // the second parse must succeed too
		var enc []byte
		for _, e := range sk.Entries {
			enc = e.AppendBinary(enc)
		}
		for i := range sk.Entries {
			e, err := DecodeEntry(enc[i*EntrySize:])
			if err != nil || e != sk.Entries[i] {
				t.Fatalf("entry %d does not survive encoding: %+v -> %+v, %v", i, sk.Entries[i], e, err)
			}
		}
		var out2 bytes.Buffer
		k := 0
		if err := sk.Replay(NewWriter(&out2), func(int, Entry) ([]byte, error) { k++; return data[k-1], nil }); err != nil {
			t.Fatalf("replay failed: %v", err)
		}
		if !bytes.Equal(out2.Bytes(), in) {
			t.Fatal("replayed stream differs")
		}
	})
}
