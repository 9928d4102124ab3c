package flow

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sevshim/sevshim/tests/harness"
)

// swtpmAlive reports whether the swtpm of dir (dir/swtpm.pid, its command line naming
// dir/swtpm.sock) still runs.
func swtpmAlive(dir string) bool {
	return harness.WorkPid(dir, "swtpm") != 0
}

// TestTPMFlow: a guest launched with --tpm (swtpm A + tpm-crb), exported, received with --tpm
// and the v6 bundle up to OVMF's shell (swtpm B; the TPM state travelled in the stream), then
// hostctl tpm-quote ends QEMU B and reads PCR 15 + a quote with a fresh nonce, and the owner's
// verifier attest says OK for v6 and FAILED for v5. Receives with a mismatching --tpm are
// refused before any QEMU or swtpm starts.
func TestTPMFlow(t *testing.T) {
	w := getWorld(t)
	if _, err := exec.LookPath("swtpm"); err != nil {
		if os.Getenv("SEVSHIM_ALLOW_SKIP") == "1" {
			t.Skip("SEVSHIM_ALLOW_SKIP=1: swtpm not installed")
		}
		t.Fatal("swtpm not found: install the swtpm package (scripts/setup.sh)")
	}
	dir := t.TempDir()
	j := func(n string) string { return filepath.Join(dir, n) }
	sess := j("sess")
	mustRun(t, "verifier", "session", "--chain", w.oChain, "--root", filepath.Join(w.o, "certs"), "--policy", "0x1", "--out", sess)
	a := track(j("A"))
	t.Cleanup(func() { killWork(a) })
	mustRun(t, "hostctl", "launch", "--tpm", "--memory", "256", "--state", w.o, "--image", w.shim, "--session", sess, "--work", a)
	if !swtpmAlive(a) {
		t.Fatalf("no swtpm runs for QEMU A after launch --tpm\n%s", readFile(filepath.Join(a, "swtpm.log")))
	}
	if st, err := os.Stat(filepath.Join(a, "tpm")); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("TPM state dir: %v %v, want mode 0700", st, err)
	}
	mustRun(t, "hostctl", "launch-finish", "--work", a)
	pkg := j("tpm-guest.pkg")
	mustRun(t, "hostctl", "export", "--work", a, "--to", w.pChain, "--root", filepath.Join(w.p, "certs"), "--out", pkg)
	if swtpmAlive(a) || pidAlive(a) {
		t.Fatal("QEMU A or its swtpm still runs after the export")
	}

	// Device mismatches are refused before any QEMU or swtpm starts (exit 3).
	for _, c := range []struct {
		name, pkg string
		extra     []string
		want      string
	}{
		{"tpm-package-without-tpm", pkg, nil, "receive it with --tpm"},
		{"plain-package-with-tpm", w.pkg, []string{"--tpm"}, "receive it without --tpm"},
	} {
		wb := track(j("B-" + c.name))
		r := run(t, nil, "hostctl", receiveArgs(w, c.pkg, w.v6, wb, c.extra...)...)
		if r.Code != 3 || !strings.Contains(r.Stderr, c.want) || !strings.Contains(r.Stderr, "no QEMU was started") {
			t.Fatalf("%s: want exit 3 and %q: %s", c.name, c.want, r)
		}
		for _, f := range []string{"qemu.log", "qemu.pid", "swtpm.pid", "swtpm.log"} {
			if _, err := os.Stat(filepath.Join(wb, f)); err == nil {
				t.Fatalf("%s: %s exists: something was started", c.name, f)
			}
		}
	}

	wb := track(j("B"))
	t.Cleanup(func() { killWork(wb) })
	r := run(t, nil, "hostctl", receiveArgs(w, pkg, w.v6, wb, "--tpm", "--wait", "shell")...)
	if r.Code != 0 || !strings.Contains(r.Stdout, "accepted: version 6, signer ") || !strings.Contains(r.Stdout, "UEFI Interactive Shell") {
		t.Fatalf("receive --tpm v6: %s\ndebugcon:\n%s", r, readFile(filepath.Join(wb, "debugcon.log")))
	}
	if dc := readFile(filepath.Join(wb, "debugcon.log")); !strings.Contains(dc, "SEVSHIM TPM extended pcr=15") {
		t.Fatalf("the shim on QEMU B did not extend PCR 15:\n%s", dc)
	}
	if !swtpmAlive(wb) || !pidAlive(wb) {
		t.Fatal("QEMU B and its swtpm should run after receive --tpm")
	}

	if r := run(t, nil, "hostctl", "tpm-quote", "--work", wb, "--nonce", "zz", "--out", j("x.json")); r.Code == 0 || !strings.Contains(r.Stderr, "hex") {
		t.Fatalf("non-hex nonce: %s", r)
	}
	nonce := make([]byte, 32)
	rand.Read(nonce)
	nh := hex.EncodeToString(nonce)
	ev := j("evidence.json")
	r = mustRun(t, "hostctl", "tpm-quote", "--work", wb, "--nonce", nh, "--out", ev)
	if !strings.Contains(r.Stdout, "PCR 15 in banks") {
		t.Fatalf("tpm-quote: %s", r)
	}
	if pidAlive(wb) || swtpmAlive(wb) {
		t.Fatal("QEMU B or swtpm still runs after tpm-quote")
	}
	r = mustRun(t, "verifier", "attest", "--evidence", ev, "--image", w.shim, "--bundle", w.v6, "--nonce", nh)
	if !strings.Contains(r.Stdout, "attestation OK") {
		t.Fatalf("verifier attest v6: %s", r)
	}
	r = run(t, nil, "verifier", "attest", "--evidence", ev, "--image", w.shim, "--bundle", w.v5, "--nonce", nh)
	if r.Code != 1 || !strings.Contains(r.Stdout+r.Stderr, "attestation FAILED") {
		t.Fatalf("verifier attest v5 must fail: %s", r)
	}
	// Everything is gone now: a second quote says so.
	r = run(t, nil, "hostctl", "tpm-quote", "--work", wb, "--nonce", nh, "--out", j("again.json"))
	if r.Code == 0 || !strings.Contains(r.Stderr, "both gone") {
		t.Fatalf("second tpm-quote: %s", r)
	}
}
