// Package repo is the part of the integration harness (tests/harness) that finds the sevshim
// checkout and the files tests need from it or from the host (Debian's OVMF, QEMU); it is a
// package of its own so that unit tests under pkg/ can use it without importing the harness. Every path can be overridden by an environment variable so
// CI and developers can point at other builds without editing code.
//
//	SEVSHIM_ROOT        repository root (default: walk up from the working directory to go.mod)
//	SEVSHIM_SHIM_FD     shim template image (default: ROOT/build/shim/shim.fd)
//	SEVSHIM_OVMF_DIR    directory of Debian's OVMF files (default: /usr/share/OVMF)
//	SEVSHIM_OVMF_CODE   OVMF code image, 4M layout (default: OVMF_DIR/OVMF_CODE_4M.fd)
//	SEVSHIM_OVMF_CODE_SECBOOT  (default: OVMF_DIR/OVMF_CODE_4M.secboot.fd)
//	SEVSHIM_OVMF_VARS   OVMF var store template (default: OVMF_DIR/OVMF_VARS_4M.fd)
//	SEVSHIM_QEMU        QEMU binary (default: qemu-system-x86_64 from PATH)
package repo

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sevshim/sevshim/pkg/format/layout"
)

// Module is the Go module path that identifies the repository's go.mod.
const Module = "github.com/sevshim/sevshim"

// Root returns the repository root: $SEVSHIM_ROOT, or the nearest directory at or above the
// working directory whose go.mod declares Module.
func Root() (string, error) {
	if r := os.Getenv("SEVSHIM_ROOT"); r != "" {
		return filepath.Abs(r)
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; {
		if isRoot(dir) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("repo: no go.mod of module %s at or above %s (set SEVSHIM_ROOT)", Module, wd)
		}
		dir = parent
	}
}

func isRoot(dir string) bool {
	f, err := os.Open(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "module ") {
			return strings.TrimSpace(strings.TrimPrefix(line, "module ")) == Module
		}
	}
	return false
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// BuildDir is ROOT/build.
func BuildDir() (string, error) {
	root, err := Root()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "build"), nil
}

// ShimTemplate is the firmware engineer's output: the shim image with an all-zero policy
// region ($SEVSHIM_SHIM_FD or ROOT/build/shim/shim.fd). It does not check that it exists.
func ShimTemplate() (string, error) {
	if v := os.Getenv("SEVSHIM_SHIM_FD"); v != "" {
		return filepath.Abs(v)
	}
	b, err := BuildDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(b, "shim", "shim.fd"), nil
}

// OVMFDir is the directory holding Debian's OVMF images.
func OVMFDir() string { return envOr("SEVSHIM_OVMF_DIR", "/usr/share/OVMF") }

// OVMFCode is Debian's OVMF code image of the default layout (ovmf-4m; file names from the
// layout table, pkg/format/layout).
func OVMFCode() string {
	return envOr("SEVSHIM_OVMF_CODE", filepath.Join(OVMFDir(), defaultLayout().CodeFile))
}

// OVMFCodeSecboot is Debian's Secure Boot OVMF code image of the 4M layout.
func OVMFCodeSecboot() string {
	return envOr("SEVSHIM_OVMF_CODE_SECBOOT", filepath.Join(OVMFDir(), "OVMF_CODE_4M.secboot.fd"))
}

// OVMFVars is Debian's var store template of the default layout (ovmf-4m).
func OVMFVars() string {
	return envOr("SEVSHIM_OVMF_VARS", filepath.Join(OVMFDir(), defaultLayout().VarsFile))
}

func defaultLayout() layout.Layout {
	l, _ := layout.ByID(layout.Default)
	return l
}

// QEMU returns the absolute path of the QEMU binary ($SEVSHIM_QEMU or qemu-system-x86_64
// from PATH), or an error telling the user what to install.
func QEMU() (string, error) {
	name := envOr("SEVSHIM_QEMU", "qemu-system-x86_64")
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("QEMU binary %q not found (install qemu-system-x86 with scripts/setup.sh, or set SEVSHIM_QEMU): %w", name, err)
	}
	return p, nil
}

// RequireFiles returns an error naming every path that does not exist as a regular file.
func RequireFiles(paths ...string) error {
	var missing []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil || !st.Mode().IsRegular() {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		return errors.New("missing file(s): " + strings.Join(missing, ", "))
	}
	return nil
}

// RequireQEMU fails t when QEMU or Debian's OVMF code and var store (of the default layout)
// is missing, or skips it with SEVSHIM_ALLOW_SKIP=1 (see SkipOrFail).
func RequireQEMU(t testing.TB) {
	t.Helper()
	_, err := QEMU()
	if err == nil {
		err = RequireFiles(OVMFCode(), OVMFVars())
	}
	if err != nil {
		err = fmt.Errorf("%v; run scripts/setup.sh (or make setup) first", err)
	}
	SkipOrFail(t, err)
}

// SkipOrFail fails t with err (which says what to do), or skips it with SEVSHIM_ALLOW_SKIP=1
// (CI never sets it: a missing prerequisite must not pass silently). A nil err does nothing.
func SkipOrFail(t testing.TB, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv("SEVSHIM_ALLOW_SKIP") == "1" {
		t.Skipf("SEVSHIM_ALLOW_SKIP=1: %v", err)
	}
	t.Fatalf("%v (set SEVSHIM_ALLOW_SKIP=1 to skip deliberately)", err)
}
