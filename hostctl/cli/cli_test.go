package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sevshim/sevshim/pkg/sev"
)

func runMain(args ...string) (string, string, int) {
	var so, se bytes.Buffer
	code := Main(context.Background(), args, &so, &se)
	return so.String(), se.String(), code
}

func TestUsageErrors(t *testing.T) {
	dir := privateTempDir(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"platform", "init"}, "--state DIR is required"},
		{[]string{"platform", "status", "--state", dir}, "hostctl platform init --state"},
		{[]string{"platform", "export", "--state", dir}, "--out CHAIN is required"},
		{[]string{"launch", "--state", dir}, "--image, --session and --work are required"},
		{[]string{"launch", "--state", dir, "--kind", "linux", "--image", "x", "--session", "y", "--work", dir}, "upstream QEMU"},
		{[]string{"launch-finish"}, "--work is required"},
		{[]string{"launch-finish", "--work", dir}, "not a launch work directory"},
		{[]string{"export", "--work", dir}, "--work, --to and --out are required"},
		{[]string{"receive", "--state", dir, "--package", "p", "--bios", "b", "--work", dir, "--wait", "forever"}, "want handoff or shell"},
		{[]string{"receive", "--state", dir, "--package", "p", "--bios", filepath.Join(dir, "none.bundle"), "--work", dir}, "no platform in " + dir},
		{[]string{"stop"}, "--work is required"},
		{[]string{"tpm-quote", "--work", dir}, "--work, --nonce and --out are required"},
		{[]string{"tpm-quote", "--work", dir, "--nonce", "xyz", "--out", "e.json"}, "hex digits"},
		{[]string{"tpm-quote", "--work", dir, "--nonce", strings.Repeat("ab", 65), "--out", "e.json"}, "want 1..64 bytes"},
		{[]string{"tpm-quote", "--work", dir, "--nonce", "abcd", "--out", "e.json"}, "run hostctl receive --tpm first"},
		{[]string{"attest", "--work", dir}, "--work, --nonce and --out are required"},
		{[]string{"attest", "--work", dir, "--nonce", "xyz", "--out", "e.json"}, "hex digits"},
		{[]string{"attest", "--work", dir, "--nonce", strings.Repeat("ab", 65), "--out", "e.json"}, "want 1..64 bytes"},
		{[]string{"attest", "--work", dir, "--nonce", "abcd", "--out", "e.json"}, "run hostctl receive --kernel first"},
	} {
		_, se, code := runMain(c.args...)
		if code != ExitError || !strings.Contains(se, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", c.args, code, se, ExitError, c.want)
		}
	}
}

// TestAttestNeedsAnAgent: a received guest without --kernel, or not running, or without a
// TPM, is refused with what to do, before any socket is dialled.
func TestAttestNeedsAnAgent(t *testing.T) {
	for _, c := range []struct {
		state, want string
	}{
		{`{"stage":"running","tpm":true}`, "received without --kernel"},
		{`{"stage":"stopped","tpm":true,"agent":true}`, `is "stopped", not running`},
		{`{"stage":"running","agent":true}`, "received without --tpm"},
		{`{"stage":"running","tpm":true,"agent":true}`, "QEMU B of"},
	} {
		dir := privateTempDir(t)
		if err := os.WriteFile(filepath.Join(dir, "receive.json"), []byte(c.state), 0o600); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, "e.json")
		_, se, code := runMain("attest", "--work", dir, "--nonce", "abcd", "--out", out)
		if code != ExitError || !strings.Contains(se, c.want) {
			t.Errorf("%s: exit %d, stderr %q; want exit %d and %q", c.state, code, se, ExitError, c.want)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%s: the evidence file was written", c.state)
		}
	}
}

func TestPlatformCommands(t *testing.T) {
	dir := privateTempDir(t)
	st := filepath.Join(dir, "P")
	so, se, code := runMain("platform", "init", "--state", st)
	if code != 0 || !strings.Contains(so, "EMULATED PSP") || !strings.Contains(so, "API 0.24") {
		t.Fatalf("init: %d %s %s", code, so, se)
	}
	so, _, code = runMain("platform", "status", "--state", st, "--json")
	if code != 0 || !strings.Contains(so, `"kind": "emu"`) {
		t.Fatalf("status: %s", so)
	}
	chain, root := filepath.Join(dir, "p.chain"), filepath.Join(dir, "root.cert")
	so, se, code = runMain("platform", "export", "--state", st, "--out", chain, "--root-out", root)
	if code != 0 {
		t.Fatalf("export: %s %s", so, se)
	}
	b, err := os.ReadFile(chain)
	if err != nil {
		t.Fatal(err)
	}
	c, err := sev.ParseFullChain(b)
	if err != nil || c.ASK == nil {
		t.Fatalf("chain: %v", err)
	}
	rb, _ := os.ReadFile(root)
	r, err := sev.NewRoot("test", rb)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sev.VerifyChain(c, sev.VerifyOptions{Roots: []sev.Root{r}}); err != nil {
		t.Fatalf("exported chain does not verify under the exported test root: %v", err)
	}
	if _, err := sev.VerifyChain(c, sev.VerifyOptions{}); err == nil {
		t.Fatal("an emulated chain verified under AMD's roots")
	}
	if _, _, code := runMain("stop", "--work", dir); code != 0 {
		t.Fatal("stop of a directory without QEMU should succeed")
	}
}

// TestTPMQuoteHelpSaysItEndsTheVM: the one irreversible effect is stated where users look.
func TestTPMQuoteHelpSaysItEndsTheVM(t *testing.T) {
	so, _, code := runMain("tpm-quote", "--help")
	if code != 0 || !strings.Contains(so, "ENDS THE VM") || !strings.Contains(so, "SIGKILL") || !strings.Contains(so, "verifier attest") {
		t.Fatalf("tpm-quote --help: %d %s", code, so)
	}
	so, _, _ = runMain("receive", "--help")
	if !strings.Contains(so, "--tpm") {
		t.Fatalf("receive --help lacks --tpm: %s", so)
	}
}

// privateTempDir is t.TempDir made 0700: hostctl refuses work and state directories that
// group or others can reach (t.TempDir's are 0755 under the usual umask).
func privateTempDir(t *testing.T) string {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}
