package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/sevshim/sevshim/pkg/cli/version"
	"github.com/sevshim/sevshim/pkg/owner"
	"github.com/sevshim/sevshim/pkg/sev"
)

// secret --json prints the report; on a refused measurement it prints the measurement report,
// exits 1 and writes no secret.
func TestSecretJSON(t *testing.T) {
	w := workdir(t)
	j := func(p ...string) string { return filepath.Join(append([]string{w}, p...)...) }
	margs := []string{"--session", j("sess"), "--measurement", j("measurement.json"), "--image", j("shim.fd")}
	sarg := "--secret=" + sev.DiskPassphraseID.String() + "=" + j("passphrase.txt")
	out, code := golden(t, "secret-ok.json", w, append([]string{"secret", "--json", sarg, "--out", j("secret.json")}, margs...)...)
	var r owner.SecretReport
	if err := json.Unmarshal([]byte(out), &r); err != nil || code != 0 || r.Out != j("secret.json") || len(r.Entries) != 1 || r.Measure == nil || !r.Measure.OK() {
		t.Fatalf("secret --json: %d %v %q", code, err, out)
	}
	if _, err := os.Stat(j("secret.json")); err != nil {
		t.Fatal(err)
	}
	mj, _ := os.ReadFile(j("measurement.json"))
	var m map[string]any
	json.Unmarshal(mj, &m)
	m["sev-api-minor"] = 99
	bad, _ := json.Marshal(m)
	os.WriteFile(j("bad.json"), bad, 0o644)
	out, code = golden(t, "secret-refused.json", w, "secret", "--json", sarg, "--out", j("refused.json"), "--session", j("sess"), "--measurement", j("bad.json"), "--image", j("shim.fd"))
	r = owner.SecretReport{}
	if err := json.Unmarshal([]byte(out), &r); err != nil || code != 1 || r.Measure == nil || r.Measure.OK() || r.Out != "" {
		t.Fatalf("refused secret --json: %d %v %q", code, err, out)
	}
	if _, err := os.Stat(j("refused.json")); err == nil {
		t.Fatal("secret written for a mismatching measurement")
	}
}

func TestVersion(t *testing.T) {
	out, e, code := run("--version")
	if code != 0 || out != version.Get().String("verifier") {
		t.Fatalf("--version: %d %q %q", code, out, e)
	}
}

// Every verifier command that reports a result takes --json.
func TestResultCommandsTakeJSON(t *testing.T) {
	for _, name := range []string{"platform", "session", "measure", "secret", "attest"} {
		c, _, err := NewRoot().Find([]string{name})
		if err != nil || c.Flags().Lookup("json") == nil {
			t.Errorf("verifier %s has no --json (%v)", name, err)
		}
	}
}
