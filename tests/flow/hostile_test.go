package flow

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/sevshim/sevshim/internal/repo"
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
	if r.code != 0 || !strings.Contains(r.stdout, "accepted: version 6, signer ") || strings.Contains(r.stdout, "refused") {
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
	if r.code != 0 || !strings.Contains(r.stdout, "OVMF reached its UEFI Interactive Shell") {
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
