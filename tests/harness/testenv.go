// Package harness holds the prerequisite check shared by the integration tests that boot the
// real shim chain (tests/chain, tests/secret, tests/tpm).
package harness

import (
	"fmt"
	"os"
	"os/exec"
	"testing"

	"github.com/sevshim/sevshim/tests/repo"
)

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
	if err == nil {
		return
	}
	if os.Getenv("SEVSHIM_ALLOW_SKIP") == "1" {
		t.Skipf("SEVSHIM_ALLOW_SKIP=1: %v", err)
	}
	t.Fatalf("%v (set SEVSHIM_ALLOW_SKIP=1 to skip these tests deliberately)", err)
}
