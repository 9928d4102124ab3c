package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/sevshim/sevshim/pkg/vmm"
)

// StatusInfo is the reply of query-status.
type StatusInfo struct {
	Running bool   `json:"running"`
	Status  string `json:"status"`
}

// The attached VM is a vmm.VM like the detached one; only Close differs (see Close): a child
// whose consoles are pipes into this process cannot outlive it.
var _ vmm.VM = (*VM)(nil)
var _ vmm.HaltWaiter = (*VM)(nil)

// Status returns QEMU's run state ("running", "paused", "inmigrate", "prelaunch", ...).
func (vm *VM) Status(ctx context.Context) (vmm.Status, error) {
	st, err := vm.ctl().status(ctx)
	return vmm.Status(st), err
}

// Resume resumes the CPUs (QMP cont).
func (vm *VM) Resume(ctx context.Context) error { return vm.ctl().exec(ctx, "cont", nil) }

// Pause pauses the CPUs (QMP stop).
func (vm *VM) Pause(ctx context.Context) error { return vm.ctl().exec(ctx, "stop", nil) }

// NMI raises an NMI (on x86 through LAPIC LINT1, which the guest must unmask).
func (vm *VM) NMI(ctx context.Context) error { return vm.ctl().exec(ctx, "inject-nmi", nil) }

// Alive reports whether the QEMU process still runs.
func (vm *VM) Alive() bool {
	select {
	case <-vm.exited:
		return false
	default:
		return true
	}
}

// Describe is QEMU's stderr, trimmed (StderrSummary), for error messages.
func (vm *VM) Describe() string { return vm.ctl().summary() }

// Kill SIGKILLs QEMU at once and waits (at most 10 s) for it to be reaped.
func (vm *VM) Kill() error {
	if vm.Alive() {
		vm.cmd.Process.Kill()
		select {
		case <-vm.exited:
		case <-time.After(10 * time.Second):
			return fmt.Errorf("qemu pid %d did not exit after SIGKILL", vm.Pid())
		}
	}
	return nil
}

// CancelMigration ends a migration still running and waits until none is active.
func (vm *VM) CancelMigration(ctx context.Context) error { return vm.ctl().cancelMigration(ctx) }

// Quit asks QEMU to exit and waits (bounded by ctx, at most 10 s) for the process to end.
func (vm *VM) Quit(ctx context.Context) error {
	_, err := vm.qmp.Execute(ctx, "quit", nil)
	if err != nil {
		// QEMU may close the socket before replying; only the exit matters.
		select {
		case <-vm.exited:
			return nil
		default:
		}
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if werr := vm.Wait(wctx); werr != nil && !isExitStatus(werr) {
		return werr
	}
	return nil
}

func isExitStatus(err error) bool {
	var ee interface{ ExitCode() int }
	return errors.As(err, &ee)
}

// MigrationInfo is the part of query-migrate that sevshim uses.
type MigrationInfo struct {
	Status    string `json:"status"`
	TotalTime int64  `json:"total-time"` // ms
	ErrorDesc string `json:"error-desc"`
	RAM       *struct {
		Transferred int64 `json:"transferred"`
		Total       int64 `json:"total"`
	} `json:"ram"`
}

// QueryMigrate returns the migration status.
func (vm *VM) QueryMigrate(ctx context.Context) (MigrationInfo, error) {
	var mi MigrationInfo
	err := vm.qmp.ExecuteInto(ctx, "query-migrate", nil, &mi)
	return mi, err
}

// SaveStats describes a completed SaveState.
type SaveStats struct {
	Bytes     int64         // size of the state file
	TotalTime time.Duration // QEMU's total-time of the migration
	Elapsed   time.Duration // host time from stop to the file being complete
}

// MigrateTo stops the guest, raises QEMU's migration bandwidth limit (128 MiB/s by default in
// 7.2) and migrates the whole state to uri, polling query-migrate until it completed. It is
// bounded by ctx and at most 2 minutes. QEMU keeps running (stopped) afterwards.
func (vm *VM) MigrateTo(ctx context.Context, uri string) (MigrationInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := vm.Pause(ctx); err != nil {
		return MigrationInfo{}, err
	}
	return vm.ctl().migrateURI(ctx, uri)
}

// SendTo migrates the guest straight into another QEMU started with `-incoming unix:sock`
// (waiting up to 20 s for that socket to appear), then quits this QEMU. Nothing is written
// to disk on the way.
func (vm *VM) SendTo(ctx context.Context, sock string) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("qemu: the destination never listened on %s", sock)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := vm.MigrateTo(ctx, "unix:"+sock); err != nil {
		return err
	}
	return vm.Quit(ctx)
}

// SaveState stops the guest, migrates its whole state into file and quits QEMU. The state
// can be resumed any number of times by a QEMU of the same shape started with
// Incoming: IncomingFile(file).
//
// The stream goes through a pipe this process reads (MigrateOut, the same code hostctl's
// export uses), not through QEMU's "exec:cat > FILE": the end of the stream is then exactly
// known (EOF after QEMU closes its end), while the exit of a `cat` child of QEMU cannot be
// observed, so "completed" in query-migrate would not prove that the file is fully written.
//
// The whole operation is bounded by ctx and at most 2 minutes.
func (vm *VM) SaveState(ctx context.Context, file string) (SaveStats, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var stats SaveStats
	start := time.Now()
	out, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return stats, fmt.Errorf("qemu: state file: %w", err)
	}
	defer out.Close()
	if err := vm.Pause(ctx); err != nil {
		return stats, err
	}
	mi, n, err := vm.ctl().migrateOut(ctx, out)
	if err != nil {
		return stats, fmt.Errorf("qemu: writing %s: %w", file, err)
	}
	if err := out.Sync(); err != nil {
		return stats, err
	}
	if err := out.Close(); err != nil {
		return stats, err
	}
	stats.Bytes = n
	stats.TotalTime = time.Duration(mi.TotalTime) * time.Millisecond
	stats.Elapsed = time.Since(start)
	return stats, vm.Quit(ctx)
}

// MigrateOut writes the whole state of the stopped guest to w (see SaveState); QEMU keeps
// running, stopped.
func (vm *VM) MigrateOut(ctx context.Context, w io.Writer) error {
	_, _, err := vm.ctl().migrateOut(ctx, w)
	return err
}

// MigrateIn feeds a state from r into a QEMU started with Incoming: "defer" and waits
// (at most 120 s, as the detached VM) until it is loaded; it returns the status then.
func (vm *VM) MigrateIn(ctx context.Context, r io.Reader) (vmm.Status, error) {
	st, err := vm.ctl().migrateIn(ctx, r, 120*time.Second)
	return vmm.Status(st), err
}

// WakeIncoming waits (at most timeout) until an incoming migration from a stopped source
// has loaded, requires the status "paused", resumes the guest and wakes the shim with NMIs
// (vmm.WakeShim, vmm.DefaultWake) until the debug console (Config.Debugcon is required) shows
// SEVSHIM WAKE or a refusal line. It returns the time of the cont.
func (vm *VM) WakeIncoming(ctx context.Context, timeout time.Duration) (time.Time, error) {
	return vm.WakeIncomingWith(ctx, timeout, vmm.DefaultWake)
}

// WakeIncomingWith is WakeIncoming with another resend bound.
func (vm *VM) WakeIncomingWith(ctx context.Context, timeout time.Duration, w vmm.Wake) (time.Time, error) {
	if !vm.cfg.Debugcon {
		return time.Time{}, errors.New("qemu: WakeIncoming needs Config.Debugcon to see the shim's WAKE line")
	}
	st, err := vm.WaitIncoming(ctx, timeout)
	if err != nil {
		return time.Time{}, err
	}
	if st != "paused" {
		return time.Time{}, fmt.Errorf("qemu: after the incoming migration the status is %q, want paused (was the source stopped?)", st)
	}
	cont := time.Now()
	if err := vm.Resume(ctx); err != nil {
		return cont, err
	}
	_, err = vmm.WakeShim(ctx, w, vm.NMI, func() (bool, error) {
		for _, l := range vm.debugcon.CompleteLines() {
			if vmm.IsShimAnswer(l.Text) {
				return true, nil
			}
		}
		select {
		case <-vm.exited:
			return false, fmt.Errorf("qemu exited before the shim woke (%v): %s", vm.waitErr, vm.StderrSummary())
		default:
		}
		return false, nil
	})
	return cont, err
}

// WaitIncoming waits (bounded by ctx and timeout) until QEMU has loaded an incoming
// migration, i.e. its status is no longer "inmigrate", and returns that status ("paused" for
// a stopped source). If QEMU exits instead (a stream it cannot load), the error carries
// QEMU's own message from stderr.
func (vm *VM) WaitIncoming(ctx context.Context, timeout time.Duration) (string, error) {
	return vm.ctl().waitLoaded(ctx, timeout)
}

// MigrateIncoming starts loading a migration on a QEMU started with Incoming: "defer".
func (vm *VM) MigrateIncoming(ctx context.Context, uri string) error {
	_, err := vm.qmp.Execute(ctx, "migrate-incoming", map[string]any{"uri": uri})
	return err
}

// MemSave writes size bytes of guest-physical memory at addr into file (QMP pmemsave; the
// path is opened by QEMU).
func (vm *VM) MemSave(ctx context.Context, addr, size uint64, file string) error {
	return vm.ctl().pmemsave(ctx, addr, size, file)
}

// ReadPhys returns n bytes of guest-physical memory at addr (QMP pmemsave through a file in
// the VM's directory).
func (vm *VM) ReadPhys(ctx context.Context, addr uint64, n int) ([]byte, error) {
	return vm.ctl().readPhys(ctx, addr, n)
}

// WaitHalted waits (at most timeout) until the vCPU executes hlt (see ctl.waitHalted).
func (vm *VM) WaitHalted(ctx context.Context, timeout time.Duration) error {
	return vm.ctl().waitHalted(ctx, timeout)
}

// ctl is the QMP-level control of this VM, shared with the detached lifetime.
func (vm *VM) ctl() *ctl {
	return &ctl{qmp: vm.qmp, dir: vm.dir, pid: vm.Pid(), gone: func() bool {
		select {
		case <-vm.exited:
			return true
		default:
			return false
		}
	}, summary: func() string {
		select {
		case <-vm.exited:
			return fmt.Sprintf("QEMU exited (%v): %s", vm.waitErr, vm.StderrSummary())
		default:
			return "QEMU stderr: " + vm.StderrSummary()
		}
	}}
}

// Execute runs any QMP command (see QMP.Execute).
func (vm *VM) Execute(ctx context.Context, command string, args any) (json.RawMessage, error) {
	if vm.qmp == nil {
		return nil, errNotRunning
	}
	return vm.qmp.Execute(ctx, command, args)
}

// StartIncoming starts QEMU with cfg resuming the state saved in file (-incoming, see
// IncomingFile) and waits until the state is loaded. It returns the VM, which is then paused
// ("paused" for a stopped source, "prelaunch" for one that never ran): send Resume to run it.
// On error no process is left behind.
func StartIncoming(ctx context.Context, cfg Config, file string, timeout time.Duration) (*VM, string, error) {
	if _, err := os.Stat(file); err != nil {
		return nil, "", fmt.Errorf("qemu: saved state: %w", err)
	}
	cfg.Incoming = IncomingFile(file)
	vm, err := Start(ctx, cfg)
	if err != nil {
		return nil, "", err
	}
	st, err := vm.WaitIncoming(ctx, timeout)
	if err != nil {
		vm.Close()
		return nil, "", err
	}
	return vm, st, nil
}
