package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sevshim/sevshim/pkg/host"
)

// TestMistypedStateCreatesNothing: only platform init creates a platform; every other
// command refuses a --state without one, names the fix, and creates no directory.
func TestMistypedStateCreatesNothing(t *testing.T) {
	dir := privateTempDir(t)
	typo := filepath.Join(dir, "Pp")
	want := "no platform in " + typo + ": run hostctl platform init --state " + typo
	for _, args := range [][]string{
		{"receive", "--state", typo, "--package", filepath.Join(dir, "g.pkg"), "--bios", filepath.Join(dir, "b.bundle"), "--work", filepath.Join(dir, "B")},
		{"launch", "--state", typo, "--image", filepath.Join(dir, "s.fd"), "--session", filepath.Join(dir, "sess"), "--work", filepath.Join(dir, "A")},
		{"platform", "export", "--state", typo, "--out", filepath.Join(dir, "p.chain")},
		{"platform", "status", "--state", typo},
		{"platform", "guests", "--state", typo},
		{"platform", "decommission", "--state", typo, "--handle", "1"},
	} {
		_, se, code := runMain(args...)
		if code != ExitError || strings.TrimSpace(se) != "hostctl: "+want {
			t.Errorf("%v: exit %d, stderr %q; want exit 1 and %q", args, code, se, want)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Fatalf("%v left %s behind", args, ents[0].Name())
		}
	}
}

// TestPlatformGuests: the listing of a fresh platform, JSON included, and decommission's
// refusals.
func TestPlatformGuests(t *testing.T) {
	st := filepath.Join(privateTempDir(t), "P")
	if _, se, code := runMain("platform", "init", "--state", st); code != 0 {
		t.Fatal(se)
	}
	if _, se, code := runMain("receive", "--state", st, "--package", "p", "--bios", filepath.Join(st, "none.bundle"), "--work", filepath.Join(st, "B")); code != ExitError || !strings.Contains(se, "BIOS bundle") {
		t.Errorf("receive with a missing bundle: %d %q", code, se)
	}
	so, se, code := runMain("platform", "guests", "--state", st)
	if code != 0 || so != "no guest contexts in "+st+"\n" {
		t.Fatalf("guests: %d %q %q", code, so, se)
	}
	so, _, code = runMain("platform", "guests", "--state", st, "--json")
	var gs []host.GuestInfo
	if code != 0 || json.Unmarshal([]byte(so), &gs) != nil || gs == nil || len(gs) != 0 {
		t.Fatalf("guests --json: %d %q", code, so)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"platform", "decommission", "--state", st}, "--handle N is required"},
		{[]string{"platform", "decommission", "--state", st, "--handle", "0"}, "--handle 0 names no guest"},
		{[]string{"platform", "decommission", "--state", st, "--handle", "7"}, "no guest context with handle 7"},
	} {
		if _, se, code := runMain(c.args...); code != ExitError || !strings.Contains(se, c.want) {
			t.Errorf("%v: exit %d %q, want %q", c.args, code, se, c.want)
		}
	}
}

// TestLaunchCheapChecksFirst: the template, a wrong-size --vars and a work directory whose
// guest was exported or runs are refused before any PSP or QEMU work, and a refused launch
// leaves no work directory.
func TestLaunchCheapChecksFirst(t *testing.T) {
	tmpl, demo := filepath.Join("..", "..", "build", "shim", "shim.fd"), filepath.Join("..", "..", "build", "images", "shim-demo.fd")
	for _, f := range []string{tmpl, demo} {
		if _, err := os.Stat(f); err != nil {
			t.Skipf("%s missing (run make shim images)", f)
		}
	}
	dir := privateTempDir(t)
	st := filepath.Join(dir, "P")
	if _, se, code := runMain("platform", "init", "--state", st); code != 0 {
		t.Fatal(se)
	}
	small := filepath.Join(dir, "small.vars")
	if err := os.WriteFile(small, make([]byte, 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(dir, "A")
	sess := filepath.Join(dir, "no-session")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--image", tmpl}, "is the shim template (its policy region is empty): this is the template, run builder build"},
		{[]string{"--image", demo, "--vars", small}, "--vars " + small + " is 4096 bytes; layout ovmf-4m needs a var store of exactly 540672 (0x84000) bytes (Debian's OVMF_VARS_4M.fd)"},
	} {
		args := append([]string{"launch", "--state", st, "--session", sess, "--work", work}, c.args...)
		_, se, code := runMain(args...)
		if code != ExitError || !strings.Contains(se, c.want) {
			t.Errorf("%v: exit %d %q, want %q", args, code, se, c.want)
		}
		if _, err := os.Lstat(work); err == nil {
			t.Fatalf("%v: the refused launch left %s", args, work)
		}
	}
	so, _, _ := runMain("platform", "guests", "--state", st)
	if !strings.HasPrefix(so, "no guest contexts") {
		t.Fatalf("refused launches left guest contexts: %s", so)
	}
	// A work directory whose record says exported or running.
	if err := os.Mkdir(work, 0o700); err != nil {
		t.Fatal(err)
	}
	for stage, want := range map[string]string{
		host.StageExported: "holds a guest that was exported to /x/guest.pkg: refused",
		host.StageRunning:  "holds a running launched guest: refused",
	} {
		b, _ := json.Marshal(host.LaunchState{Format: 1, Stage: stage, Kind: "emu", State: st, Handle: 99, Package: "/x/guest.pkg"})
		if err := os.WriteFile(filepath.Join(work, host.LaunchJSON), b, 0o600); err != nil {
			t.Fatal(err)
		}
		_, se, code := runMain("launch", "--state", st, "--session", sess, "--work", work, "--image", demo)
		if code != ExitError || !strings.Contains(se, want) {
			t.Errorf("launch into a %s work directory: exit %d %q, want %q", stage, code, se, want)
		}
		if b2, _ := os.ReadFile(filepath.Join(work, host.LaunchJSON)); string(b2) != string(b) {
			t.Errorf("launch into a %s work directory changed its launch.json", stage)
		}
	}
}

// TestReceiveKernelFiles: a direct kernel boot with a missing or non-file kernel or initrd,
// or an initrd without a kernel, is refused with words naming it, before any PSP or QEMU work.
func TestReceiveKernelFiles(t *testing.T) {
	st := filepath.Join(privateTempDir(t), "P")
	if _, se, code := runMain("platform", "init", "--state", st); code != 0 {
		t.Fatal(se)
	}
	base := []string{"receive", "--state", st, "--package", "p", "--bios", filepath.Join(st, "none.bundle"), "--work", filepath.Join(st, "B")}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--kernel", filepath.Join(st, "vmlinuz")}, "direct kernel boot: vmm: kernel " + filepath.Join(st, "vmlinuz") + ": "},
		{[]string{"--kernel", st}, "kernel " + st + ": not a regular file"},
		{[]string{"--kernel", filepath.Join(st, "platform.json"), "--initrd", filepath.Join(st, "none.cpio")}, "initrd " + filepath.Join(st, "none.cpio")},
		{[]string{"--initrd", filepath.Join(st, "none.cpio")}, "an initrd or a kernel command line needs a kernel"},
		{[]string{"--append", "quiet"}, "an initrd or a kernel command line needs a kernel"},
	} {
		_, se, code := runMain(append(base, c.args...)...)
		if code != ExitError || !strings.Contains(se, c.want) {
			t.Errorf("receive %q: %d %q, want %q", c.args, code, se, c.want)
		}
	}
}
