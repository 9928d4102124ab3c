package shimimage_test

import (
	"encoding/binary"
	"os"
	"testing"

	"github.com/sevshim/sevshim/pkg/format/shimimage"
)

func FuzzParseFooterTable(f *testing.F) {
	// seeds: the tail of Debian's OVMF and of a synthetic template, plus small variants
	if img, err := os.ReadFile("/usr/share/OVMF/OVMF_CODE_4M.fd"); err == nil {
		f.Add(img[len(img)-0x200:])
	}
	if img, err := os.ReadFile("../../../testdata/golden/image/shim-one-signer.bin"); err == nil {
		f.Add(img[len(img)-0x200:])
	}
	f.Add(make([]byte, 0x40))
	f.Fuzz(func(t *testing.T, b []byte) {
		entries, err := shimimage.ParseFooterTable(b)
		if err != nil {
			return
		}
		total := 18
		for _, e := range entries {
			if e.Offset < 0 || e.Offset+len(e.Data) > len(b) {
				t.Fatalf("entry out of bounds")
			}
			total += len(e.Data) + 18
		}
		if got := int(binary.LittleEndian.Uint16(b[len(b)-0x32:])); got != total {
			t.Fatalf("entries cover %d bytes, table says %d", total, got)
		}
		// re-encoding reproduces the table bytes
		enc, err := shimimage.EncodeFooterTable(entries)
		if err != nil {
			t.Fatal(err)
		}
		end := len(b) - 0x20
		if string(enc) != string(b[end-len(enc):end]) {
			t.Fatal("re-encoded table differs")
		}
		shimimage.ParseInfo(b)
		shimimage.Info(b)
	})
}
