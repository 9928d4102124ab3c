// Package harness is the one integration harness of the tests under tests/: the prerequisite
// checks, one work directory per test binary (Main), the fixtures (test keys, signed BIOS
// bundles, shim images with a policy; built once per test binary), the A->B chain of the
// provider flow (docs/shim.md), console waits, process checks, and the CLI runner of the
// tests that drive the real builder, verifier and hostctl. Nothing in it is simulated: it
// starts real QEMU (TCG) with Debian's OVMF and the shim `make shim` built.
package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sevshim/sevshim/tests/harness/repo"
)

var (
	workMu  sync.Mutex
	workDir string // this test binary's directory (Main removes it)
	cliVal  *CLIs
)

// Main is the TestMain of every integration package: it runs the tests, ends every QEMU the
// CLI harness tracked, and removes the work directory (kept, and named on stderr, with
// SEVSHIM_KEEP=1).
func Main(m *testing.M) {
	code := m.Run()
	workMu.Lock()
	dir, cli := workDir, cliVal
	workMu.Unlock()
	if cli != nil {
		cli.StopAll()
	}
	stopLibvirt()
	if dir != "" {
		if os.Getenv("SEVSHIM_KEEP") == "" {
			os.RemoveAll(dir)
		} else {
			fmt.Fprintln(os.Stderr, "kept", dir)
		}
	}
	os.Exit(code)
}

// WorkDir returns the directory of this test binary's fixtures, made on first use (named
// after the binary: sevshim-chain-*, sevshim-tpm-*, ...). Main removes it.
func WorkDir(t testing.TB) string {
	t.Helper()
	workMu.Lock()
	defer workMu.Unlock()
	if workDir == "" {
		name := strings.TrimSuffix(filepath.Base(os.Args[0]), ".test")
		d, err := os.MkdirTemp("", "sevshim-"+name+"-")
		if err != nil {
			t.Fatal(err)
		}
		workDir = d
	}
	return workDir
}

// CLI returns the CLI harness of this test binary (tools built into WorkDir/bin on first
// Require); Main ends every work directory it tracked.
func CLI(t testing.TB) *CLIs {
	t.Helper()
	dir := WorkDir(t)
	workMu.Lock()
	defer workMu.Unlock()
	if cliVal == nil {
		cliVal = NewCLIs(dir)
	}
	return cliVal
}

// RequireChain checks QEMU, Debian's OVMF images, the shim template and any extra programs
// (e.g. "swtpm"). When one is missing it fails the test with what the user must do, or skips
// it when SEVSHIM_ALLOW_SKIP=1 (CI never sets it: a missing prerequisite must not pass
// silently).
func RequireChain(t testing.TB, programs ...string) {
	t.Helper()
	var err error
	if _, e := repo.QEMU(); e != nil {
		err = fmt.Errorf("%v; run scripts/setup.sh", e)
	} else if e := repo.RequireFiles(repo.OVMFCode(), repo.OVMFCodeSecboot(), repo.OVMFVars()); e != nil {
		err = fmt.Errorf("Debian OVMF: %v; run scripts/setup.sh (package ovmf)", e)
	} else if tpl, e := repo.ShimTemplate(); e != nil {
		err = e
	} else if e := repo.RequireFiles(tpl); e != nil {
		err = fmt.Errorf("shim template %s is missing: run make shim first (or set SEVSHIM_SHIM_FD)", tpl)
	}
	for _, p := range programs {
		if err != nil {
			break
		}
		if _, e := exec.LookPath(p); e != nil {
			err = fmt.Errorf("%s not found: run scripts/setup.sh", p)
		}
	}
	repo.SkipOrFail(t, err)
}

// Once is a fixture made once per test binary: the first Get makes it, every later one
// returns it, or fails its test as the first did.
type Once[T any] struct {
	once sync.Once
	v    *T
	err  error
}

// Get returns the fixture, calling make on first use; what names it in failures.
func (o *Once[T]) Get(t testing.TB, what string, make func() (*T, error)) *T {
	t.Helper()
	o.once.Do(func() { o.v, o.err = make() })
	if o.err != nil {
		t.Fatalf("%s: %v", what, o.err)
	}
	if o.v == nil {
		t.Fatalf("%s failed in an earlier test", what)
	}
	return o.v
}
