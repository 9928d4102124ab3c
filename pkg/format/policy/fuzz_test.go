package policy_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/sevshim/sevshim/pkg/format/policy"
)

func FuzzDecodePolicy(f *testing.F) {
	files, _ := filepath.Glob("../../../testdata/golden/policy/*.bin")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil && len(b) <= 8192 {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := policy.Decode(b)
		if err != nil {
			return
		}
		enc, err := p.Encode()
		if err != nil {
			t.Fatalf("decoded policy does not encode: %v", err)
		}
		if !bytes.Equal(enc, b) {
			t.Fatal("round trip differs")
		}
		r := make([]byte, policy.RegionSize)
		copy(r, b)
		if _, err := policy.DecodeRegion(r); err != nil {
			t.Fatalf("region form rejected: %v", err)
		}
	})
}
