package policy_test

import (
	"bytes"
	"errors"
	"os"
	"testing"

	"github.com/sevshim/sevshim/policy"
)

func TestYAMLRoundTripGolden(t *testing.T) {
	for _, f := range []string{"one-signer.bin", "three-signers.bin", "max.bin"} {
		b, err := os.ReadFile("../testdata/golden/policy/" + f)
		if err != nil {
			t.Fatal(err)
		}
		p, err := policy.Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		y, err := p.MarshalYAMLText()
		if err != nil {
			t.Fatal(err)
		}
		q, err := policy.ParseYAML(y, f+".yaml", ".")
		if err != nil {
			t.Fatalf("%s: %v\n%s", f, err, y)
		}
		enc, _ := q.Encode()
		if !bytes.Equal(enc, b) {
			t.Errorf("%s: YAML round trip changes the block", f)
		}
	}
}

func TestYAMLKeyFileRelative(t *testing.T) {
	y := []byte("layout: ovmf-4m\nsigners:\n  - key: keys/signer-a.pub.pem\n    min_version: 0x10\n")
	p, err := policy.ParseYAML(y, "x.yaml", "../testdata/golden")
	if err != nil {
		t.Fatal(err)
	}
	if p.Signers[0].MinVersion != 16 {
		t.Fatal(p.Signers[0].MinVersion)
	}
	_, err = policy.ParseYAML(y, "x.yaml", "/nonexistent")
	var ye *policy.YAMLError
	if !errors.As(err, &ye) || ye.Line != 3 || ye.Field != "signers[0].key" {
		t.Fatalf("%v", err)
	}
}

func FuzzParseYAML(f *testing.F) {
	f.Add([]byte("layout: ovmf-4m\nsigners:\n  - key: keys/signer-a.pub.pem\n    min_version: 5\ndenied_versions: [1, 2]\n"))
	f.Add([]byte("layout: ovmf-4m\ntpm: required\ntpm_pcr: 7\nsigners:\n  - public_key: abc\n"))
	f.Add([]byte("- a\n- b\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := policy.ParseYAML(b, "fuzz.yaml", "../testdata/golden")
		if err != nil {
			return
		}
		if _, err := p.Encode(); err != nil {
			t.Fatalf("accepted YAML gives an unencodable policy: %v", err)
		}
	})
}
