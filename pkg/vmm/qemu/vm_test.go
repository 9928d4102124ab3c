package qemu

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sevshim/sevshim/tests/harness/repo"
)

// needQEMU fails the test when QEMU or Debian's OVMF is missing, unless SEVSHIM_ALLOW_SKIP=1
// (CI must never skip these silently).
func needQEMU(t *testing.T) { t.Helper(); repo.RequireQEMU(t) }

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// startPausedOVMF starts plain OVMF paused before its first instruction (needs QEMU).
func startPausedOVMF(t *testing.T) *VM {
	t.Helper()
	needQEMU(t)
	cfg := ovmfConfig(t)
	cfg.Paused = true
	return startT(t, cfg)
}

func startT(t *testing.T, cfg Config) *VM {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	vm, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		vm.Close()
		if t.Failed() {
			t.Logf("qemu: %s\nstderr: %s\nserial:\n%s\ndebugcon:\n%s", vm.Cmdline(), vm.StderrSummary(),
				tail(vm.Serial().Text(), 3000), tail(vm.Debugcon().Text(), 3000))
		}
	})
	return vm
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

func ovmfConfig(t *testing.T) Config {
	vars := filepath.Join(t.TempDir(), "vars.fd")
	copyFile(t, repo.OVMFVars(), vars)
	return Config{
		Pflash: []Pflash{
			{Unit: 0, File: repo.OVMFCode(), ReadOnly: true},
			{Unit: 1, File: vars, Snapshot: true},
		},
		Debugcon: true,
	}
}

var (
	reBds   = regexp.MustCompile(`BdsDxe`)
	reShell = regexp.MustCompile(`UEFI Interactive Shell|Shell>`)
)

func TestPlainOVMFBootsToShell(t *testing.T) {
	needQEMU(t)
	vm := startT(t, ovmfConfig(t))
	ctx := context.Background()
	bds, err := vm.Serial().WaitLine(ctx, reBds, 90*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	sh, err := vm.Serial().WaitPrompt(ctx, reShell, 60*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if sh.Time.Before(bds.Time) {
		t.Errorf("shell line %q before BdsDxe line %q", sh.Text, bds.Text)
	}
	t.Logf("BdsDxe after %v, shell after %v", bds.Time.Sub(vm.Started()), sh.Time.Sub(vm.Started()))
	st, err := vm.Status(ctx)
	if err != nil || st != "running" {
		t.Fatalf("status %q, %v", st, err)
	}
}

func TestSaveStateAndIncoming(t *testing.T) {
	needQEMU(t)
	ctx := context.Background()
	cfg := ovmfConfig(t)
	a := startT(t, cfg)
	// Let OVMF run a little (SEC/PEI), then save: "some early point".
	time.Sleep(500 * time.Millisecond)
	state := filepath.Join(t.TempDir(), "state.bin")
	stats, err := a.SaveState(ctx, state)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(state)
	if err != nil || st.Size() != stats.Bytes || st.Size() < 1<<20 {
		t.Fatalf("state file: %v, size %d, copied %d", err, st.Size(), stats.Bytes)
	}
	select {
	case <-a.Exited():
	default:
		t.Fatal("source QEMU still running after SaveState")
	}
	t.Logf("state %d bytes, total-time %v, elapsed %v", stats.Bytes, stats.TotalTime, stats.Elapsed)

	bcfg := ovmfConfig(t)
	b, status, err := StartIncoming(ctx, bcfg, state, 60*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if status != "paused" {
		t.Fatalf("status after incoming = %q, want paused", status)
	}
	if err := b.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Serial().WaitLine(ctx, reBds, 90*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, _, err := StartIncoming(ctx, bcfg, filepath.Join(t.TempDir(), "missing"), time.Minute); err == nil {
		t.Fatal("StartIncoming of a missing state file succeeded")
	}
	// Loading the same file a second time works too (every boot of the chain does this),
	// here through -incoming defer + migrate-incoming.
	ccfg := ovmfConfig(t)
	ccfg.Incoming = "defer"
	c := startT(t, ccfg)
	if st, err := c.Status(ctx); err != nil || st != "inmigrate" {
		t.Fatalf("status with -incoming defer: %q, %v", st, err)
	}
	if err := c.MigrateIncoming(ctx, IncomingFile(state)); err != nil {
		t.Fatal(err)
	}
	if status, err := c.WaitIncoming(ctx, 60*time.Second); err != nil || status != "paused" {
		t.Fatalf("second incoming: %q, %v", status, err)
	}
}

// TestIncomingFromInheritedPipe feeds a saved state through -incoming fd:N from a pipe the
// test writes, the no-temp-file path hostctl receive uses.
func TestIncomingFromInheritedPipe(t *testing.T) {
	ctx := context.Background()
	a := startPausedOVMF(t)
	state := filepath.Join(t.TempDir(), "state.bin")
	if _, err := a.SaveState(ctx, state); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close()
	bcfg := ovmfConfig(t)
	bcfg.ExtraFiles = []*os.File{pr}
	bcfg.Incoming = "fd:" + strconv.Itoa(ExtraFD(0))
	b := startT(t, bcfg)
	pr.Close()
	go func() { pw.Write(data); pw.Close() }()
	st, err := b.WaitIncoming(ctx, 60*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// A was started with -S and never ran: the target comes up in prelaunch.
	if st != "prelaunch" && st != "paused" {
		t.Fatalf("status %q", st)
	}
}

func TestIncomingMismatchReportsQEMUError(t *testing.T) {
	needQEMU(t)
	state := filepath.Join(t.TempDir(), "garbage.bin")
	if err := os.WriteFile(state, []byte("this is not a migration stream"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := ovmfConfig(t)
	cfg.Incoming = IncomingFile(state)
	ctx := context.Background()
	vm, err := Start(ctx, cfg)
	if err != nil {
		// QEMU may already have died before QMP answered; then Start carries the message.
		if !strings.Contains(err.Error(), "migration") {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	defer vm.Close()
	_, err = vm.WaitIncoming(ctx, 30*time.Second)
	if err == nil || !strings.Contains(err.Error(), "Not a migration stream") {
		t.Fatalf("want QEMU's 'Not a migration stream', got %v", err)
	}
}

func TestCloseKillsQEMU(t *testing.T) {
	vm := startPausedOVMF(t)
	pid := vm.Pid()
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("qemu pid %d not alive after Start: %v", pid, err)
	}
	dir := vm.Dir()
	if err := vm.Close(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("qemu pid %d still exists after Close (kill 0: %v)", pid, err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("private dir %s not removed: %v", dir, err)
	}
	if err := vm.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestQMPLargeReplyErrorsAndRaw(t *testing.T) {
	vm := startPausedOVMF(t)
	ctx := context.Background()
	// query-qmp-schema is far larger than 64 KiB (the go-qemu limit).
	raw, err := vm.QMP().Execute(ctx, "query-qmp-schema", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) < 64<<10 {
		t.Fatalf("schema reply only %d bytes", len(raw))
	}
	st, err := vm.Status(ctx)
	if err != nil || st != "prelaunch" {
		t.Fatalf("status after big reply: %q, %v", st, err)
	}
	_, err = vm.QMP().Execute(ctx, "no-such-command", nil)
	var qe *Error
	if !errors.As(err, &qe) || qe.Class != "CommandNotFound" {
		t.Fatalf("want CommandNotFound, got %v", err)
	}
	out, err := vm.QMP().Raw(ctx, []byte(`{"execute":"query-name"}`))
	if err != nil || !strings.HasPrefix(string(out), "{") {
		t.Fatalf("raw query-name: %s, %v", out, err)
	}
	// SCM_RIGHTS: hand QEMU a pipe end by name (getfd), then drop it (closefd).
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	if _, err := vm.QMP().ExecuteWithFile(ctx, "getfd", map[string]any{"fdname": "sevshim-test"}, int(pw.Fd())); err != nil {
		t.Fatalf("getfd: %v", err)
	}
	if _, err := vm.QMP().Execute(ctx, "closefd", map[string]any{"fdname": "sevshim-test"}); err != nil {
		t.Fatalf("closefd of the passed descriptor: %v", err)
	}
	if _, err := vm.QMP().Execute(ctx, "closefd", map[string]any{"fdname": "sevshim-test"}); err == nil {
		t.Fatal("closefd twice succeeded: the descriptor was never registered")
	}
	since := time.Now()
	if err := vm.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	ectx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := vm.QMP().WaitEvent(ectx, "RESUME", since); err != nil {
		t.Fatal(err)
	}
}
