package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/sevshim/sevshim/pkg/vmm"
)

// The host flows reach their VMs only through pkg/vmm: a backend (by the name recorded in
// the work directory; hostctl links pkg/vmm/qemu) starts, finds and stops them.

// backendOf is the VMM backend of work directory dir: the one its launch.json or
// receive.json names, else vmm.DefaultBackend.
func backendOf(dir string) (vmm.Backend, error) {
	var rec struct {
		VMM string `json:"vmm"`
	}
	if readJSON(filepath.Join(dir, LaunchJSON), &rec) != nil || rec.VMM == "" {
		readJSON(filepath.Join(dir, ReceiveJSON), &rec)
	}
	return vmm.Lookup(rec.VMM)
}

// runningVM returns the pid of the live VM of dir, 0 if none (or no backend).
func runningVM(dir string) int {
	b, err := backendOf(dir)
	if err != nil {
		return 0
	}
	return b.Running(dir)
}

// attachVM connects to the running VM of dir.
func attachVM(ctx context.Context, dir string) (vmm.VM, error) {
	b, err := backendOf(dir)
	if err != nil {
		return nil, err
	}
	return b.Attach(ctx, dir)
}

// errLogTimeout is returned (wrapped) by waitLines when the line did not appear in time.
var errLogTimeout = errors.New("timed out")

// waitLines waits up to timeout for a complete line of console c of vm that matches one of
// res and returns the console's complete lines at that moment (so a caller parses
// everything from one read), the matching line's index and the pattern's. With after set,
// only lines after the first line matching after count. The patterns must be anchored
// (^...$): console lines carry guest- and signer-chosen text.
func waitLines(ctx context.Context, vm vmm.VM, c *vmm.Console, timeout time.Duration, after *regexp.Regexp, res ...*regexp.Regexp) ([]string, int, int, error) {
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	fail := func(err error) ([]string, int, int, error) {
		switch {
		case ctx.Err() != nil:
			return nil, -1, -1, ctx.Err()
		case errors.Is(err, vmm.ErrConsoleClosed):
			return nil, -1, -1, fmt.Errorf("the VM (pid %d) exited before %s showed %v; %s", vm.Pid(), c.Name(), res, vm.Describe())
		case wctx.Err() != nil:
			return nil, -1, -1, fmt.Errorf("%s: no line matching %v within %v: %w", c.Name(), res, timeout, errLogTimeout)
		}
		return nil, -1, -1, err
	}
	from := 0
	if after != nil {
		at, _, err := c.WaitAny(wctx, 0, 0, after)
		if err != nil {
			return fail(err)
		}
		from = at + 1
	}
	at, i, err := c.WaitAny(wctx, from, 0, res...)
	if err != nil {
		return fail(err)
	}
	var lines []string
	for _, l := range c.CompleteLines() {
		lines = append(lines, l.Text)
	}
	return lines, at, i, nil
}

// waitLine is waitLines returning only the matching line and the pattern's index.
func waitLine(ctx context.Context, vm vmm.VM, c *vmm.Console, timeout time.Duration, res ...*regexp.Regexp) (string, int, error) {
	lines, at, i, err := waitLines(ctx, vm, c, timeout, nil, res...)
	if err != nil {
		return "", -1, err
	}
	return lines[at], i, nil
}

// memoryOf is vm's guest-memory access, or an error naming what needs it.
func memoryOf(vm vmm.VM, what string) (vmm.MemoryAccess, error) {
	m, ok := vm.(vmm.MemoryAccess)
	if !ok {
		return nil, fmt.Errorf("%s needs guest-memory access, which this VMM backend does not offer", what)
	}
	return m, nil
}

// Stop ends the VM of a work directory (hostctl stop), then its swtpm if it has one.
func Stop(ctx context.Context, dir string) (int, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return 0, err
	}
	if _, err := os.Lstat(dir); errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err := checkPrivateDir("--work", dir); err != nil {
		return 0, err
	}
	// After QEMU (a normal quit lets QEMU shut the TPM down cleanly).
	defer stopSwtpm(dir)
	// And the guest context goes with its VM (no context outlives its QEMU).
	defer releaseWorkGuest(dir, nil)
	b, err := backendOf(dir)
	if err != nil {
		return 0, err
	}
	return b.Stop(ctx, dir)
}

// releaseWorkGuest decommissions the guest context a work directory's record names once its
// VM is gone, and records that: a launch (measured or running) becomes "stopped", a
// received guest "stopped". An exported launch's context was released by the export.
func releaseWorkGuest(dir string, log io.Writer) {
	if runningVM(dir) != 0 {
		return // the VM did not end: its guest keeps its context
	}
	var ls LaunchState
	if readJSON(filepath.Join(dir, LaunchJSON), &ls) == nil && ls.Format == 1 {
		if ls.Stage == StageMeasured || ls.Stage == StageRunning {
			releaseGuest(ls.Kind, ls.State, ls.Handle, log)
			ls.move(StageStopped)
			writeJSON(filepath.Join(dir, LaunchJSON), &ls, 0o600)
		}
		return
	}
	var rs ReceiveState
	if readJSON(filepath.Join(dir, ReceiveJSON), &rs) == nil && rs.Handle != 0 {
		releaseGuest(rs.Kind, rs.State, rs.Handle, log)
		rs.Handle, rs.Pid = 0, 0
		if rs.Stage == ReceiveRunning || rs.Stage == ReceiveLoading {
			rs.move(ReceiveStopped)
		}
		writeJSON(filepath.Join(dir, ReceiveJSON), &rs, 0o600)
	}
}
