package policy_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/sevshim/sevshim/pkg/format/internal/formattest"
	"github.com/sevshim/sevshim/pkg/format/policy"
	"github.com/sevshim/sevshim/pkg/keys"
)

// docs/policy.md: its annotated example parses to what its comments say, and its key table
// names every key the parser knows (the list in the parser's unknown-field message).
func TestPolicyDoc(t *testing.T) {
	doc := formattest.Read(t, "docs/policy.md")
	m := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindSubmatch(doc)
	if m == nil {
		t.Fatal("docs/policy.md has no yaml example")
	}
	dir := t.TempDir()
	k, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	pem, _ := keys.MarshalPublicKeyPEM(&k.PublicKey)
	os.WriteFile(filepath.Join(dir, "provider.pub"), pem, 0o644)
	p, err := policy.ParseYAML(m[1], "docs/policy.md example", dir)
	if err != nil {
		t.Fatalf("the example does not parse: %v", err)
	}
	if p.SecretMode != policy.SecretOptional || p.TPMMode != policy.TPMIfPresent || p.TPMPCR != 15 ||
		len(p.Signers) != 1 || p.Signers[0].MinVersion != 5 || len(p.DeniedVersions) != 1 || p.DeniedVersions[0] != 7 ||
		p.VarsMode != policy.VarsAllow || len(p.AllowedVars) != 1 {
		t.Errorf("the example parses to %+v, not what its comments say", p)
	}

	// the known top-level keys, from the parser's own message
	_, err = policy.ParseYAML([]byte("layout: ovmf-4m\nnosuchkey: 1\n"), "x", dir)
	km := regexp.MustCompile(`\(known: ([^)]*)\)`).FindStringSubmatch(err.Error())
	if km == nil {
		t.Fatalf("unknown-field message: %v", err)
	}
	keys := strings.Split(km[1], ", ")
	keys = append(keys, "signers[].key", "signers[].public_key", "signers[].min_version", "signers[].name")
	for _, key := range keys {
		if !strings.Contains(string(doc), "| `"+key+"`") && !strings.Contains(string(doc), "| `"+key+"`, ") {
			t.Errorf("docs/policy.md has no table row for %s", key)
		}
	}
}
