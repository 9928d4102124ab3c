// Package host is the logic behind `hostctl`: PSP platform commands, the private two-phase
// launch of a shim under QEMU (LAUNCH_*), export of the guest into a guest package (SEND_*)
// and receive into a fresh QEMU (RECEIVE_*). The cobra commands in hostctl/cli only parse
// flags and call this package.
//
// The flows reach PSPs only through psp.PSP and VMs only through the pkg/vmm seam (a
// backend, by the name recorded in the work directory; hostctl links pkg/vmm/qemu). Every VM
// outlives the command that started it and is owned by a work directory, whose stages and
// files state.go defines; later commands find it again through the directory and `hostctl
// stop --work DIR` ends it. Every wait is bounded. Tests hold or break a flow through Hooks
// (options), never through the environment.
package host

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/sevshim/sevshim/pkg/atomicfile"
	"github.com/sevshim/sevshim/pkg/format/layout"
)

// The var store hostctl uses when --vars is not given: $SEVSHIM_OVMF_VARS if set, else
// Debian's template of the guest's layout (OVMF_VARS_4M.fd for ovmf-4m, OVMF_VARS.fd for
// ovmf-2m: the layout table's VarsFile, docs/formats.md section 1) in $SEVSHIM_OVMF_DIR
// (default /usr/share/OVMF).
const (
	EnvOVMFDir  = "SEVSHIM_OVMF_DIR"
	EnvOVMFVars = "SEVSHIM_OVMF_VARS"
)

// DefaultOVMFVars is the default var store of a guest of layout lay (see EnvOVMFVars).
func DefaultOVMFVars(lay layout.Layout) string {
	if v := os.Getenv(EnvOVMFVars); v != "" {
		return v
	}
	dir := os.Getenv(EnvOVMFDir)
	if dir == "" {
		dir = "/usr/share/OVMF"
	}
	return filepath.Join(dir, lay.VarsFile)
}

// readVars reads the var store of a guest of layout lay: src (--vars), else
// DefaultOVMFVars(lay). It returns the file it read and what names it in an error message;
// the callers check the size against the guest's pflash unit 1.
func readVars(src string, lay layout.Layout) (path, what string, b []byte, err error) {
	what = "--vars"
	if src == "" {
		src, what = DefaultOVMFVars(lay), "the default var store"
		if os.Getenv(EnvOVMFVars) != "" {
			what = "$" + EnvOVMFVars
		}
	}
	b, err = os.ReadFile(src)
	if err != nil {
		return src, what, nil, fmt.Errorf("vars: %w (pass --vars FILE)", err)
	}
	return src, what, b, nil
}

var (
	writeJSON = atomicfile.WriteJSON
	readJSON  = atomicfile.ReadJSON
)

// makeWorkDir creates dir (0700: it holds the gdbstub and QMP sockets) if it is missing,
// refuses one another user could reach (checkPrivateDir) and returns its absolute path.
func makeWorkDir(dir string) (string, error) {
	if dir == "" {
		return "", fmt.Errorf("a work directory (--work) is required")
	}
	return privateDir("--work", dir)
}

// existingWorkDir is makeWorkDir for commands that need a directory a launch or receive made.
func existingWorkDir(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if err := checkPrivateDir("--work", abs); err != nil {
		return "", err
	}
	return abs, nil
}

// fillFile writes a file of size bytes, every byte b.
func fillFile(path string, size int, b byte) error {
	buf := make([]byte, size)
	if b != 0 {
		for i := range buf {
			buf[i] = b
		}
	}
	return atomicfile.WriteFile(path, buf, 0o600)
}

func logf(w io.Writer, format string, args ...any) {
	if w != nil {
		fmt.Fprintf(w, format+"\n", args...)
	}
}
