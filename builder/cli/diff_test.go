package cli

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/sevshim/sevshim/builder/diff"
	"github.com/sevshim/sevshim/pkg/format/shimimage/shimtest"
)

// TestDiffShims: two shims from the same template with different policies: the golden text
// names every changed field (a signer removed, one added, a floor raised, deny lists, secret
// and TPM modes), says the owner's measurement changes and the code does not; --json says the
// same; a shim against itself is identical with the measurement unchanged; another template
// with the same policy changes the code.
func TestDiffShims(t *testing.T) {
	inEnv(t)
	os.WriteFile("policy2.yaml", []byte(`layout: ovmf-4m
secret: optional
tpm: off
signers:
  - key: signer-a.pub.pem
    min_version: 6
  - key: signer-c.pub.pem
    min_version: 1
denied_digests: []
denied_versions: [7, 8]
`), 0o644)
	// another "build" of the shim: one byte of code differs
	t2 := shimtest.Template(1)
	t2[0] ^= 0x90
	os.WriteFile("template2.fd", t2, 0o644)
	for _, b := range [][]string{
		{"--policy", "policy.yaml", "--template", "template.fd", "--out", "a.fd"},
		{"--policy", "policy2.yaml", "--template", "template.fd", "--out", "b.fd"},
		{"--policy", "policy.yaml", "--template", "template2.fd", "--out", "c.fd"},
	} {
		if _, e, c := run(t, append([]string{"build"}, b...)...); c != 0 {
			t.Fatal(e)
		}
	}
	out, e, c := run(t, "diff", "a.fd", "b.fd")
	if c != 0 {
		t.Fatal(e)
	}
	checkGolden(t, "diff-shims.txt", out)
	out, _, _ = run(t, "diff", "--all", "a.fd", "b.fd")
	checkGolden(t, "diff-shims-all.txt", out)

	js, e, c := run(t, "diff", "--json", "a.fd", "b.fd")
	if c != 0 {
		t.Fatal(e)
	}
	var r diff.Result
	if err := json.Unmarshal([]byte(js), &r); err != nil {
		t.Fatal(err)
	}
	if r.Kind != "shim" || r.Same || r.MeasurementChanges == nil || !*r.MeasurementChanges || *r.CodeChanges {
		t.Errorf("json verdict: %s", js)
	}
	ops := map[string]int{}
	for _, ch := range r.Changes {
		ops[ch.Op+" "+ch.Field]++
	}
	for _, want := range []string{"~ secret hand-off", "~ tpm", "- signer", "+ signer", "~ policy digest (sha384)",
		"- denied digest", "- denied version", "+ denied version", "= denied version", "= shim code (sha256, policy region zeroed)"} {
		if ops[want] != 1 {
			t.Errorf("json: %q %d times, want once: %s", want, ops[want], js)
		}
	}

	out, _, c = run(t, "diff", "a.fd", "a.fd")
	if c != 0 || !strings.Contains(out, "\nidentical shims (byte for byte)\n") || !strings.Contains(out, "\nowner's measurement: unchanged") ||
		strings.Contains(out, "  ~ ") {
		t.Errorf("a vs a: %s", out)
	}
	out, _, _ = run(t, "diff", "a.fd", "c.fd")
	if !strings.Contains(out, "\nshim code: differs") || !strings.Contains(out, "\nowner's measurement: CHANGES") ||
		!strings.Contains(out, "  = policy digest") == strings.Contains(out, "  ~ policy digest") {
		t.Errorf("a vs c: %s", out)
	}
	if strings.Contains(out, "  ~ policy digest") || strings.Contains(out, "  ~ secret") {
		t.Errorf("a vs c: the policy is the same: %s", out)
	}
}

// TestDiffBundles: two bundles of the same OVMF: version, version string, signer and
// signature change, the image digest does not; a bundle against a shim is refused naming
// both kinds.
func TestDiffBundles(t *testing.T) {
	inEnv(t)
	fd := ovmfCode(t)
	run(t, "sign-bios", "--key", "signer-a.pem", "--version", "5", "--version-string", "five", "--out", "v5.bundle", fd)
	run(t, "sign-bios", "--key", "signer-b.pem", "--version", "6", "--version-string", "six", "--out", "v6.bundle", fd)
	out, e, c := run(t, "diff", "v5.bundle", "v6.bundle")
	if c != 0 {
		t.Fatal(e)
	}
	for _, want := range []string{"  ~ bios version: 5 -> 6\n", "  ~ version string: \"five\" -> \"six\"\n", "  ~ signer key id: ", "  ~ signature: "} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "image digest") || strings.Contains(out, "owner's measurement") {
		t.Errorf("same image, and no measurement for bundles:\n%s", out)
	}
	run(t, "build", "--policy", "policy.yaml", "--template", "template.fd", "--out", "shim.fd")
	_, e, c = run(t, "diff", "shim.fd", "v5.bundle")
	if c != 1 || !strings.Contains(e, "shim.fd is a shim-image and v5.bundle is a bios-bundle: builder diff compares two shim images or two BIOS bundles") {
		t.Errorf("shim vs bundle: %d %s", c, e)
	}
}
