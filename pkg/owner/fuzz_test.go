package owner

import (
	"encoding/base64"
	"testing"

	"github.com/sevshim/sevshim/pkg/sev"
)

// FuzzParseMeasurementFile: any input either parses into a 48-byte measurement with a policy
// and version, or is refused; never a panic.
func FuzzParseMeasurementFile(f *testing.F) {
	f.Add([]byte(`{"sev-measurement":"` + base64.StdEncoding.EncodeToString(make([]byte, 48)) + `","sev-api-major":0,"sev-api-minor":24,"sev-build-id":15,"sev-policy":1}`))
	f.Add([]byte(`{"sev-measurement":"","sev-api-major":256}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMeasurementFile("fuzz", b)
		if err != nil {
			return
		}
		if len(m.M.Marshal()) != sev.MeasurementSize {
			t.Fatalf("measurement of %d bytes", len(m.M.Marshal()))
		}
	})
}

// FuzzParseChainFile: a chain file that parses re-encodes to exactly its bytes, and one that
// verifies still verifies after the round trip. Inputs are patches (offset, bytes, length
// change) applied to a real Naples or Rome chain: the Go fuzzer crawls on raw 8 KiB inputs, and
// patches reach every field of every certificate.
func FuzzParseChainFile(f *testing.F) {
	var bases [][]byte
	for _, p := range []string{"naples", "rome"} {
		bases = append(bases, realChainBytes(f, p))
	}
	f.Add(uint8(0), uint16(0), []byte{}, int16(0))
	f.Add(uint8(1), uint16(5), []byte{0x01}, int16(0))
	f.Add(uint8(0), uint16(0x824+8), []byte{0x03, 0x10}, int16(0))
	f.Add(uint8(1), uint16(0), []byte{}, int16(-100))
	f.Add(uint8(0), uint16(0), []byte{}, int16(832))
	f.Fuzz(func(t *testing.T, which uint8, off uint16, patch []byte, grow int16) {
		b := append([]byte(nil), bases[int(which)%len(bases)]...)
		switch {
		case grow < 0 && int(-grow) < len(b):
			b = b[:len(b)+int(grow)]
		case grow > 0:
			b = append(b, make([]byte, grow)...)
		}
		for i, x := range patch {
			if o := int(off) + i; o < len(b) {
				b[o] = x
			}
		}
		c, err := ParseChainFile("fuzz", b)
		if err != nil {
			return
		}
		if got := c.Marshal(); string(got) != string(b) {
			t.Fatalf("re-encoding differs (%d vs %d bytes)", len(got), len(b))
		}
	})
}

// FuzzParseSecretArg and ParsePolicy: flag parsers never panic and keep their promises.
func FuzzParseFlags(f *testing.F) {
	f.Add("736869e5-84f0-4973-92ec-06879ce3da0b=/tmp/x")
	f.Add("0x1")
	f.Add("=")
	f.Fuzz(func(t *testing.T, s string) {
		if a, err := ParseSecretArg(s); err == nil && (a.Path == "" || a.GUID == (sev.GUID{})) {
			t.Fatalf("accepted %q as %+v", s, a)
		}
		if p, err := ParsePolicy(s); err == nil && p.Validate() != nil {
			t.Fatalf("accepted reserved bits in %q", s)
		}
	})
}
