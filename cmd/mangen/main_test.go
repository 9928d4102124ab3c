package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
