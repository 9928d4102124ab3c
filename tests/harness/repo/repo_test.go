package repo

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRootAndOverrides(t *testing.T) {
	root, err := Root()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("root %s has no go.mod: %v", root, err)
	}
	tpl, err := ShimTemplate()
	if err != nil || tpl != filepath.Join(root, "build", "shim", "shim.fd") {
		t.Fatalf("ShimTemplate = %q, %v", tpl, err)
	}
	t.Setenv("SEVSHIM_SHIM_FD", "x/shim.fd")
	if tpl, _ := ShimTemplate(); !filepath.IsAbs(tpl) || !strings.HasSuffix(tpl, "x/shim.fd") {
		t.Fatalf("override: %q", tpl)
	}
	t.Setenv("SEVSHIM_OVMF_DIR", "/o")
	if OVMFCode() != "/o/OVMF_CODE_4M.fd" || OVMFVars() != "/o/OVMF_VARS_4M.fd" || OVMFCodeSecboot() != "/o/OVMF_CODE_4M.secboot.fd" {
		t.Fatalf("OVMF_DIR override not applied")
	}
	t.Setenv("SEVSHIM_QEMU", "/nonexistent/qemu")
	if _, err := QEMU(); err == nil || !strings.Contains(err.Error(), "SEVSHIM_QEMU") {
		t.Fatalf("missing QEMU error should tell the user what to do: %v", err)
	}
	dir := t.TempDir()
	t.Setenv("SEVSHIM_ROOT", "")
	wd, _ := os.Getwd()
	defer os.Chdir(wd)
	os.Chdir(dir)
	if _, err := Root(); err == nil {
		t.Fatal("Root outside the repository should fail")
	}
	if err := RequireFiles(filepath.Join(dir, "nope")); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("RequireFiles: %v", err)
	}
}
