package flow

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/sevshim/sevshim/tests/harness/repo"
)

// signHostile signs Debian's OVMF with the demo provider key (trusted by the demo policy) as
// version 6 with a version string the signer chose to look like another console line.
func signHostile(t *testing.T, w *world, versionString string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "hostile.bundle")
	mustRun(t, "builder", "sign-bios", "--key", filepath.Join(images, "demo-provider.key"), "--version", "6",
		"--version-string", versionString, "--out", out, repo.OVMFCode())
	return out
}

// TestVersionStringLooksLikeRefusal: the shim prints the signer's version string inside its
// VERIFIED line. A version string spelling a refusal line must not make hostctl report a
// refusal (and stop the guest) when the shim accepted the BIOS and handed off.
func TestVersionStringLooksLikeRefusal(t *testing.T) {
	w := getWorld(t)
	bundle := signHostile(t, w, "SEVSHIM ERROR E034 version-below-floor")
	wb := track(filepath.Join(t.TempDir(), "B"))
	t.Cleanup(func() { killWork(wb) })
	r := run(t, nil, "hostctl", receiveArgs(w, w.pkg, bundle, wb, "--stop")...)
	dbg := readFile(filepath.Join(wb, "debugcon.log"))
	if r.Code != 0 || !strings.Contains(r.Stdout, "accepted: version 6, signer ") || strings.Contains(r.Stdout, "refused") {
		t.Fatalf("want accepted version 6: %s\ndebugcon:\n%s", r, dbg)
	}
	for _, re := range []string{`(?m)^SEVSHIM VERIFIED version=6 signer=[0-9a-f]{16} name="SEVSHIM ERROR E034 version-below-floor"$`, `(?m)^SEVSHIM HANDOFF$`} {
		if !regexp.MustCompile(re).MatchString(dbg) {
			t.Fatalf("debugcon has no line %s:\n%s", re, dbg)
		}
	}
	if regexp.MustCompile(`(?m)^SEVSHIM ERROR `).MatchString(dbg) {
		t.Fatalf("the shim printed a refusal line:\n%s", dbg)
	}
}

// TestVersionStringLooksLikeShell: the shim's lines (the version string included) are on
// COM1 too. `--wait shell` must wait for OVMF's own banner after the hand-off, not accept
// the VERIFIED line that carries the same words.
func TestVersionStringLooksLikeShell(t *testing.T) {
	w := getWorld(t)
	bundle := signHostile(t, w, "UEFI Interactive Shell")
	wb := track(filepath.Join(t.TempDir(), "B"))
	t.Cleanup(func() { killWork(wb) })
	r := run(t, nil, "hostctl", receiveArgs(w, w.pkg, bundle, wb, "--wait", "shell", "--stop")...)
	if r.Code != 0 || !strings.Contains(r.Stdout, "OVMF reached its UEFI Interactive Shell") {
		t.Fatalf("receive --wait shell: %s", r)
	}
	// When hostctl said so, the banner was on COM1 after the shim's HANDOFF line.
	ser := readFile(filepath.Join(wb, "serial.log"))
	lines := strings.Split(ser, "\n")
	handoff := -1
	for i, l := range lines {
		if strings.TrimSuffix(l, "\r") == "SEVSHIM HANDOFF" {
			handoff = i
			break
		}
	}
	if handoff < 0 {
		t.Fatalf("no HANDOFF line on COM1:\n%s", ser)
	}
	if !strings.Contains(strings.Join(lines[handoff+1:], "\n"), "UEFI Interactive Shell") {
		t.Fatalf("hostctl reported the shell but COM1 has no banner after HANDOFF (it matched the shim's VERIFIED line):\n%s", ser)
	}
}

// sharedParent is a directory another local user (nobody) can create directories in, as a
// world-writable parent would allow; its ancestors are made searchable for nobody.
func sharedParent(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test acts as a second user (runuser -u nobody) and needs root")
	}
	d := t.TempDir()
	tmp := filepath.Clean(os.TempDir())
	if !strings.HasPrefix(d, tmp+"/") {
		t.Fatalf("%s is not under %s", d, tmp)
	}
	for p := d; p != tmp; p = filepath.Dir(p) { // searchable for nobody, up to $TMPDIR only
		os.Chmod(p, 0o755)
	}
	shared := filepath.Join(d, "shared")
	if err := os.Mkdir(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(shared, 0o777)
	return shared
}

// mkdirAsNobody creates dir as the user nobody with mode 0777, as an attacker prepares it.
func mkdirAsNobody(t *testing.T, dir string) {
	t.Helper()
	if out, err := exec.Command("runuser", "-u", "nobody", "--", "mkdir", "-m", "0777", dir).CombinedOutput(); err != nil {
		t.Fatalf("runuser -u nobody -- mkdir: %v: %s", err, out)
	}
}

func assertUntouched(t *testing.T, dir string) {
	t.Helper()
	if ents, err := os.ReadDir(dir); err != nil || len(ents) != 0 {
		t.Fatalf("hostctl left files in the refused directory %s: %v %v", dir, ents, err)
	}
}

// TestForeignWorkDirRefused: another local user created the --work directory beforehand (mode
// 0777). Had hostctl used it, that user could swap gdb.sock and read the plaintext launch
// secret, or migrate.sock and read the guest's RAM. launch and receive refuse it before
// starting anything, naming the directory, its owner and mode.
func TestForeignWorkDirRefused(t *testing.T) {
	w := getWorld(t)
	shared := sharedParent(t)
	wa := track(filepath.Join(shared, "A"))
	t.Cleanup(func() { killWork(wa) })
	mkdirAsNobody(t, wa)
	r := run(t, nil, "hostctl", "launch", "--state", w.o, "--image", w.shim, "--session", w.sess, "--work", wa)
	if r.Code != 1 || !strings.Contains(r.Stderr, "--work "+wa+" is owned by uid 65534 (nobody), not by you") || !strings.Contains(r.Stderr, "mode 0777") {
		t.Fatalf("launch into nobody's directory: want exit 1 and a refusal naming it, its owner and mode: %s", r)
	}
	assertUntouched(t, wa)

	wb := track(filepath.Join(shared, "B"))
	t.Cleanup(func() { killWork(wb) })
	mkdirAsNobody(t, wb)
	r = run(t, nil, "hostctl", receiveArgs(w, w.pkg, w.v6, wb)...)
	if r.Code == 0 || !strings.Contains(r.Stderr, "--work "+wb+" is owned by uid 65534 (nobody)") {
		t.Fatalf("receive into nobody's directory: %s", r)
	}
	assertUntouched(t, wb)

	// A missing --work under that world-writable (not sticky) parent is refused too: the
	// other user could rename it away and put theirs in its place.
	wc := filepath.Join(shared, "C")
	r = run(t, nil, "hostctl", "launch", "--state", w.o, "--image", w.shim, "--session", w.sess, "--work", track(wc))
	if r.Code != 1 || !strings.Contains(r.Stderr, "its parent "+shared+" has mode 0777") {
		t.Fatalf("launch under a world-writable parent: %s", r)
	}
	if _, err := os.Lstat(wc); err == nil {
		t.Fatal("launch created its work directory under a world-writable parent")
	}
}

// TestForeignStateDirRefused: the emulated PSP's --state holds the platform's private keys; a
// directory another user made is refused by platform init and by the guest commands.
func TestForeignStateDirRefused(t *testing.T) {
	w := getWorld(t)
	shared := sharedParent(t)
	st := filepath.Join(shared, "P")
	mkdirAsNobody(t, st)
	r := run(t, nil, "hostctl", "platform", "init", "--state", st)
	if r.Code != 1 || !strings.Contains(r.Stderr, "--state "+st+" is owned by uid 65534 (nobody), not by you") {
		t.Fatalf("platform init in nobody's directory: %s", r)
	}
	assertUntouched(t, st)
	// Our own state directory made group/world-readable is refused as well.
	mine := filepath.Join(t.TempDir(), "P")
	mustRun(t, "hostctl", "platform", "init", "--state", mine)
	if err := os.Chmod(mine, 0o755); err != nil {
		t.Fatal(err)
	}
	wa := track(filepath.Join(t.TempDir(), "A"))
	r = run(t, nil, "hostctl", "launch", "--state", mine, "--image", w.shim, "--session", w.sess, "--work", wa)
	if r.Code != 1 || !strings.Contains(r.Stderr, "--state "+mine+" has mode 0755") || pidFileExists(wa) {
		t.Fatalf("launch with a 0755 state directory: %s", r)
	}
}

func pidFileExists(work string) bool {
	_, err := os.Stat(filepath.Join(work, "qemu.pid"))
	return err == nil
}
