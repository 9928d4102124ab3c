package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sevshim/sevshim/pkg/firmware"
	"github.com/sevshim/sevshim/tests/harness/repo"
)

// Every command of the three tools gets a page, and a page carries the command's flags.
func TestGenerate(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("SOURCE_DATE_EPOCH", "0")
	if err := Generate(dir); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"builder.1", "builder-build.1", "builder-inspect.1", "verifier.1",
		"verifier-session.1", "hostctl.1", "hostctl-receive.1", "hostctl-platform-init.1"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("missing page: %v", err)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "builder-build.1"))
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	for _, want := range []string{".SH NAME", "builder-build", `\fB--template\fP`, `\fB--policy\fP`, "sevshim manual"} {
		if !strings.Contains(page, want) {
			t.Errorf("builder-build.1 lacks %q", want)
		}
	}
	// reproducible: a second run writes the same bytes
	dir2 := t.TempDir()
	if err := Generate(dir2); err != nil {
		t.Fatal(err)
	}
	b2, _ := os.ReadFile(filepath.Join(dir2, "builder-build.1"))
	if string(b2) != page {
		t.Error("two runs gave different pages")
	}
}

// make install puts the three tools and their pages under DESTDIR/PREFIX; the installed
// builder works from an empty directory (the firmware is embedded) and man reads its page.
func TestMakeInstall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the tools")
	}
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	dest := t.TempDir()
	mk := exec.Command("make", "-s", "install", "DESTDIR="+dest, "PREFIX=/usr", "BUILD="+t.TempDir())
	mk.Dir = root
	if out, err := mk.CombinedOutput(); err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	for _, f := range []string{"usr/bin/builder", "usr/bin/verifier", "usr/bin/hostctl",
		"usr/share/man/man1/builder-build.1", "usr/share/man/man1/hostctl-receive.1", "usr/share/man/man1/verifier-secret.1"} {
		if _, err := os.Stat(filepath.Join(dest, f)); err != nil {
			t.Errorf("not installed: %v", err)
		}
	}
	v := exec.Command(filepath.Join(dest, "usr/bin/builder"), "--version")
	v.Dir = t.TempDir()
	out, err := v.Output()
	if err != nil || !strings.Contains(string(out), "shim template sha256: "+firmware.Digest()) || strings.Contains(string(out), "commit: unknown") {
		t.Errorf("installed builder --version: %v\n%s", err, out)
	}
}
