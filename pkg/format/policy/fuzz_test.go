package policy_test

import (
	"bytes"
	"testing"

	"github.com/sevshim/sevshim/pkg/format/internal/formattest"
	"github.com/sevshim/sevshim/pkg/format/policy"
)

func FuzzDecodePolicy(f *testing.F) {
	formattest.Seed(f, "testdata/golden/policy/*.bin", func(b []byte) bool { return len(b) <= 8192 })
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
