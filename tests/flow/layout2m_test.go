package flow

// The second layout through hostctl (docs/formats.md section 1, docs/hostctl.md): a shim for
// ovmf-2m made by `builder build` from build/shim/shim-ovmf-2m.fd, launched, exported and
// received with hostctl's default var store, which follows the shim's layout (Debian's
// OVMF_VARS.fd, the only store this policy allows), up to OVMF's shell with a 2M bundle
// (Debian's OVMF_CODE.fd signed by sign-bios); and the shim's refusal of a 4M bundle to that
// guest (E025 layout-mismatch, docs/errors.md; hostctl exit 3).

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sevshim/sevshim/pkg/format/layout"
	"github.com/sevshim/sevshim/pkg/format/shimerr"
	"github.com/sevshim/sevshim/tests/harness/repo"
)

func TestLayout2M(t *testing.T) {
	w := getWorld(t)
	lay, _ := layout.ByID(layout.OVMF2M)
	code, vars := filepath.Join(repo.OVMFDir(), lay.CodeFile), filepath.Join(repo.OVMFDir(), lay.VarsFile)
	tmpl, err := repo.ShimTemplate()
	if err != nil {
		t.Fatal(err)
	}
	tmpl = filepath.Join(filepath.Dir(tmpl), lay.ShimFile())
	if err := repo.RequireFiles(code, vars, tmpl); err != nil {
		t.Fatalf("ovmf-2m: %v (run scripts/setup.sh and make shim)", err)
	}
	dir := t.TempDir()
	j := func(n string) string { return filepath.Join(dir, n) }
	pub, err := os.ReadFile(filepath.Join(images, "demo-provider.pub"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(j("demo-provider.pub"), pub, 0o644); err != nil {
		t.Fatal(err)
	}
	yaml := strings.Join([]string{"layout: " + lay.Name, "secret: optional", "signers:", "  - key: demo-provider.pub",
		"    min_version: 5", "vars: allow", "allowed_vars:", "  - file: " + vars, ""}, "\n")
	if err := os.WriteFile(j("policy.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	shim := j("shim-2m.fd")
	mustRun(t, "builder", "build", "--policy", j("policy.yaml"), "--template", tmpl, "--out", shim)
	bundle := j("v5-2m.bundle")
	mustRun(t, "builder", "sign-bios", "--key", filepath.Join(images, "demo-provider.key"), "--version", "5",
		"--version-string", "Debian OVMF_CODE.fd (ovmf-2m, v5)", "--out", bundle, code)

	sess := j("sess")
	mustRun(t, "verifier", "session", "--chain", w.oChain, "--root", filepath.Join(w.o, "certs"), "--policy", "0x1", "--out", sess)
	wa := track(j("A"))
	t.Cleanup(func() { killWork(wa) })
	r := mustRun(t, "hostctl", "launch", "--state", w.o, "--image", shim, "--session", sess, "--work", wa)
	if !strings.Contains(r.Stdout, "paused in prelaunch") {
		t.Fatalf("launch output: %s", r)
	}
	if st, err := os.Stat(filepath.Join(wa, "vars.fd")); err != nil || st.Size() != int64(lay.VarsSize) {
		t.Fatalf("QEMU A's var store: %v, want %d bytes (the layout's): %v", st, lay.VarsSize, err)
	}
	if b, _ := os.ReadFile(filepath.Join(wa, "vars.fd")); string(b) != readFile(vars) {
		t.Fatalf("QEMU A's var store is not %s", vars)
	}
	r = mustRun(t, "verifier", "measure", "--session", sess, "--measurement", filepath.Join(wa, "measurement.json"), "--image", shim)
	if !strings.Contains(r.Stdout, "measurement OK") {
		t.Fatalf("verifier measure: %s", r)
	}
	mustRun(t, "hostctl", "launch-finish", "--work", wa)
	pkg := j("guest-2m.pkg")
	r = mustRun(t, "hostctl", "export", "--work", wa, "--to", w.pChain, "--root", filepath.Join(w.p, "certs"), "--out", pkg)
	if !strings.Contains(r.Stdout, "exported:") {
		t.Fatalf("export: %s", r)
	}

	t.Run("shell", func(t *testing.T) {
		wb := track(filepath.Join(t.TempDir(), "B"))
		t.Cleanup(func() { killWork(wb) })
		r := run(t, nil, "hostctl", receiveArgs(w, pkg, bundle, wb, "--wait", "shell", "--stop")...)
		if r.Code != 0 || !strings.Contains(r.Stdout, "accepted: version 5, signer ") {
			t.Fatalf("receive of the 2M guest with the 2M bundle: %s\ndebugcon:\n%s", r, readFile(filepath.Join(wb, "debugcon.log")))
		}
		if !strings.Contains(r.Stdout, "UEFI Interactive Shell") || !strings.Contains(readFile(filepath.Join(wb, "serial.log")), "UEFI Interactive Shell") {
			t.Fatalf("OVMF shell not reached: %s", r)
		}
	})
	t.Run("4M-bundle-E025", func(t *testing.T) {
		wb := track(filepath.Join(t.TempDir(), "B"))
		t.Cleanup(func() { killWork(wb) })
		r := run(t, nil, "hostctl", receiveArgs(w, pkg, w.v5, wb)...)
		if r.Code != 3 || !strings.Contains(r.Stdout, "refused: "+shimerr.LayoutMismatch.String()) {
			t.Fatalf("want exit 3 and refused: %s: %s", shimerr.LayoutMismatch, r)
		}
		if pidAlive(wb) {
			t.Fatal("QEMU B still runs after a refusal")
		}
		assertShimRefusal(t, wb, shimerr.LayoutMismatch, false)
	})
	t.Run("vars-size", func(t *testing.T) {
		wb := filepath.Join(t.TempDir(), "B")
		r := run(t, nil, "hostctl", receiveArgs(w, pkg, bundle, wb, "--vars", filepath.Join(repo.OVMFDir(), "OVMF_VARS_4M.fd"))...)
		if r.Code == 0 || !strings.Contains(r.Stderr, "this guest's pflash1 is 131072 bytes (nothing was done)") {
			t.Fatalf("want a refusal of a 4M var store for the 2M guest: %s", r)
		}
		r = run(t, nil, "hostctl", "launch", "--state", w.o, "--image", shim, "--session", sess, "--work", filepath.Join(t.TempDir(), "A"),
			"--vars", filepath.Join(repo.OVMFDir(), "OVMF_VARS_4M.fd"))
		if r.Code == 0 || !strings.Contains(r.Stderr, "layout ovmf-2m needs a var store of exactly 131072 (0x20000) bytes") {
			t.Fatalf("want a refusal of a 4M var store for a 2M launch: %s", r)
		}
	})
}
