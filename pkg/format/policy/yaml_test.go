package policy_test

import (
	"bytes"
	"crypto/sha512"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/sevshim/sevshim/pkg/format/policy"
)

func TestYAMLRoundTripGolden(t *testing.T) {
	for _, f := range []string{"one-signer.bin", "three-signers.bin", "max.bin", "vars-none.bin"} {
		b, err := os.ReadFile("../../../testdata/golden/policy/" + f)
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
	p, err := policy.ParseYAML(y, "x.yaml", "../../../testdata/golden")
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

// TestYAMLVars: the var-store mode, its fail-closed default and the allow-list forms.
func TestYAMLVars(t *testing.T) {
	const head = "layout: ovmf-4m\nsigners:\n  - key: keys/signer-a.pub.pem\n"
	parse := func(y string) (*policy.Policy, error) {
		return policy.ParseYAML([]byte(head+y), "v.yaml", "../../../testdata/golden")
	}
	p, err := parse("")
	if err != nil || p.VarsMode != policy.VarsNone || p.AllowedVars != nil {
		t.Fatalf("no vars line: mode %v, %v (want none: fail closed)", p, err)
	}
	if p, err = parse("vars: any\n"); err != nil || p.VarsMode != policy.VarsAny {
		t.Fatalf("vars: any: %v", err)
	}
	zero, err := os.ReadFile("../../../testdata/golden/policy/one-signer.bin")
	if err != nil {
		t.Fatal(err)
	}
	zd := sha512.Sum384(zero)
	p, err = parse("vars: allow\nallowed_vars:\n  - file: policy/one-signer.bin\n  - sha384:" + strings.Repeat("ab", 48) + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if p.VarsMode != policy.VarsAllow || len(p.AllowedVars) != 2 || p.AllowedVars[0] != zd || p.AllowedVars[1][0] != 0xab {
		t.Fatalf("allow list %x", p.AllowedVars)
	}
	if !p.VarsAllowed(zd) || p.VarsAllowed([48]byte{}) {
		t.Error("VarsAllowed")
	}
	for _, bad := range []struct{ y, field string }{
		{"vars: maybe\n", "vars"},
		{"vars: allow\n", "allowed_vars"},
		{"vars: any\nallowed_vars:\n  - " + strings.Repeat("ab", 48) + "\n", "allowed_vars"},
		{"allowed_vars:\n  - " + strings.Repeat("ab", 48) + "\n", "allowed_vars"},
		{"vars: allow\nallowed_vars:\n  - abcd\n", "allowed_vars[0]"},
		{"vars: allow\nallowed_vars:\n  - file: no/such/file\n", "allowed_vars[0].file"},
		{"vars: allow\nallowed_vars:\n  - file: policy/one-signer.bin\n  - " + fmt.Sprintf("%x", zd[:]) + "\n", "allowed_vars[1]"},
		{"vars: allow\nallowed_vars:\n  - {file: a, other: b}\n", "allowed_vars[0]"},
	} {
		_, err := parse(bad.y)
		var ye *policy.YAMLError
		if !errors.As(err, &ye) || ye.Field != bad.field {
			t.Errorf("%q: %v, want a YAML error at field %s", bad.y, err, bad.field)
		}
	}
}

func FuzzParseYAML(f *testing.F) {
	f.Add([]byte("layout: ovmf-4m\nsigners:\n  - key: keys/signer-a.pub.pem\n    min_version: 5\ndenied_versions: [1, 2]\n"))
	f.Add([]byte("layout: ovmf-4m\ntpm: required\ntpm_pcr: 7\nsigners:\n  - public_key: abc\n"))
	f.Add([]byte("- a\n- b\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := policy.ParseYAML(b, "fuzz.yaml", "../../../testdata/golden")
		if err != nil {
			return
		}
		if _, err := p.Encode(); err != nil {
			t.Fatalf("accepted YAML gives an unencodable policy: %v", err)
		}
	})
}

// TestYAMLSaysWhatIsWrong: an empty file, a second document, a private key as a signer and
// signer names: clear errors instead of "EOF" or silence, a warning, and the names kept.
func TestYAMLSaysWhatIsWrong(t *testing.T) {
	dir := "../../../testdata/golden"
	for _, tc := range []struct{ name, yaml, want string }{
		{"empty", "", "p.yaml:1: policy: the file is empty (or only comments): a policy needs at least layout: and signers:"},
		{"comments", "# nothing yet\n", "p.yaml:1: policy: the file is empty (or only comments)"},
		{"second document", "layout: ovmf-4m\nsigners:\n  - key: keys/signer-a.pub.pem\n---\nlayout: ovmf-4m\n", "p.yaml:4: policy: a second YAML document (after ---): a policy file holds exactly one"},
		{"bad yaml", "layout: [\n", "p.yaml: not valid YAML: line 1:"},
		{"name not text", "layout: ovmf-4m\nsigners:\n  - key: keys/signer-a.pub.pem\n    name: [a, b]\n", "p.yaml:4: signers[0].name: must be text"},
	} {
		_, err := policy.ParseYAML([]byte(tc.yaml), "p.yaml", dir)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) || strings.Contains(err.Error(), "EOF") {
			t.Errorf("%s: %v; want %q", tc.name, err, tc.want)
		}
	}
	y := "layout: ovmf-4m\nsigners:\n  - key: keys/signer-a.pem\n    name: provider A\n  - key: keys/signer-b.pub.pem\n"
	p, info, err := policy.ParseYAMLInfo([]byte(y), "p.yaml", dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Signers) != 2 || len(info.SignerNames) != 2 || info.SignerNames[0] != "provider A" || info.SignerNames[1] != "" {
		t.Errorf("names %q", info.SignerNames)
	}
	if len(info.Warnings) != 1 || !strings.HasPrefix(info.Warnings[0], "p.yaml:3: signers[0].key: ../../../testdata/golden/keys/signer-a.pem is a PRIVATE key") {
		t.Errorf("warnings %q", info.Warnings)
	}
}
