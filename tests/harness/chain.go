package harness

import (
	"context"
	"fmt"
	"github.com/sevshim/sevshim/pkg/format/console"
	"github.com/sevshim/sevshim/pkg/format/layout"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sevshim/sevshim/pkg/vmm"
	"github.com/sevshim/sevshim/pkg/vmm/qemu"
	"github.com/sevshim/sevshim/tests/harness/repo"
)

// Bounds of the chain steps: generous, TCG on a shared 2-core host. They are limits, not
// assertions on speed.
const (
	ReadyTimeout = 60 * time.Second  // QEMU A start -> READY; B loading its state
	StepTimeout  = 90 * time.Second  // one shim step after the wake-up
	OVMFTimeout  = 180 * time.Second // the hand-off -> OVMF's BdsDxe or shell
	HaltGrace    = 3 * time.Second   // after HALT: what a wrong flash or hand-off would print shows now
	// HaltTimeout bounds the wait after READY until the vCPU executes hlt: READY is printed
	// just before the shim arms its wait (docs/shim.md), and the migrated CPU state must be
	// that idle loop, not the last instructions before it.
	HaltTimeout = 30 * time.Second
)

// ASpec is QEMU A of the chain: the shim booted from its reset vector to READY, with no
// opt/org.sevshim/* files, so it waits for the wake-up.
type ASpec struct {
	Shim      string
	MemoryMiB int      // 0: the qemu default
	Extra     []string // extra QEMU arguments (a secret loader, TPM devices, a CPU model)
	Dir       string   // its var store copy and console logs go here
	VarStore  string   // pflash1 is a copy of this ("" = Debian's OVMF_VARS_4M.fd)
}

// BootA starts A, waits for READY (whole line, bounded) and for the shim to reach its wait
// loop, and requires that no ERROR line came before. The caller closes A.
func BootA(ctx context.Context, s ASpec) (*qemu.VM, qemu.Line, error) {
	vars, store := filepath.Join(s.Dir, "vars-a.fd"), s.VarStore
	if store == "" {
		store = repo.OVMFVars()
	}
	if err := copyFile(store, vars); err != nil {
		return nil, qemu.Line{}, err
	}
	a, err := qemu.Start(ctx, qemu.Config{
		MemoryMiB:      s.MemoryMiB,
		Pflash:         []qemu.Pflash{{Unit: 0, File: s.Shim, Snapshot: true}, {Unit: 1, File: vars, Snapshot: true}},
		Debugcon:       true,
		RebootShutdown: true,
		ExtraArgs:      s.Extra,
		SerialLog:      filepath.Join(s.Dir, "serial-a.log"),
		DebugconLog:    filepath.Join(s.Dir, "debugcon-a.log"),
	})
	if err != nil {
		return nil, qemu.Line{}, err
	}
	ready, err := a.Debugcon().WaitLine(ctx, console.ReadyRE, ReadyTimeout)
	if err != nil {
		err = fmt.Errorf("QEMU A: %v\ndebugcon:\n%s\nserial:\n%s\nstderr: %s", err, a.Debugcon().Text(), a.Serial().Text(), a.StderrSummary())
		a.Close()
		return nil, ready, err
	}
	if err := a.WaitHalted(ctx, HaltTimeout); err != nil {
		err = fmt.Errorf("QEMU A after READY: %v\ndebugcon:\n%s", err, a.Debugcon().Text())
		a.Close()
		return nil, ready, err
	}
	for _, l := range a.Debugcon().Lines() {
		if step := shimWord(l.Text); strings.HasPrefix(step, "ERROR") {
			a.Close()
			return nil, ready, fmt.Errorf("QEMU A printed an error before READY:\n%s", a.Debugcon().Text())
		}
	}
	return a, ready, nil
}

// Ready is A's READY state saved to a file, from which any number of B start.
type Ready struct {
	Path   string
	Bytes  int64         // size of the state file
	AReady time.Duration // QEMU A start -> READY
	Save   qemu.SaveStats
}

// SaveReady boots A (BootA) and saves its READY state as dir/ready.state.
func SaveReady(ctx context.Context, s ASpec) (*Ready, error) {
	a, ready, err := BootA(ctx, s)
	if err != nil {
		return nil, err
	}
	defer a.Close()
	r := &Ready{Path: filepath.Join(s.Dir, "ready.state"), AReady: ready.Time.Sub(a.Started())}
	if r.Save, err = a.SaveState(ctx, r.Path); err != nil {
		return nil, fmt.Errorf("saving A's READY state: %w", err)
	}
	r.Bytes = r.Save.Bytes
	return r, nil
}

// Ready returns the READY state of shim (A with the default machine), saved once per shim
// and test binary.
func (f *Fixture) Ready(t testing.TB, shim *Shim) *Ready {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if r, ok := f.ready[shim.Path]; ok {
		return r
	}
	dir := shim.Path + ".a"
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	r, err := SaveReady(context.Background(), ASpec{Shim: shim.Path, Dir: dir, VarStore: VarStoreOf(shim)})
	if err != nil {
		t.Fatalf("building the READY state: %v", err)
	}
	f.ready[shim.Path] = r
	return r
}

// BSpec is QEMU B of the chain: the same shim as pflash0, the bundle as fw_cfg files, and
// an incoming migration.
type BSpec struct {
	Shim            string
	Manifest, Image string // fw_cfg files; "" = not passed
	// Vars is opt/org.sevshim/vars; "" = B's pflash1 file itself (the VM's own store).
	Vars string
	// VarStore is what B's pflash1 starts as a copy of ("" = Debian's OVMF_VARS_4M.fd).
	VarStore     string
	NoVars       bool // pass no opt/org.sevshim/vars at all
	ReadOnlyCode bool // pflash0 read-only (a host that forgot readonly=off)
	MemoryMiB    int
	Extra        []string // extra QEMU arguments (host differences, TPM devices)
	Incoming     string   // the migration URI
	GDB          string   // if set: a gdbstub on this unix socket
	Dir          string   // pflash1 and the console logs go here
	// Kernel, Initrd, Append and Ports are B's direct kernel boot and virtio-serial ports,
	// through the backend's own argument builder (qemu.Config).
	Kernel, Initrd, Append string
	Ports                  []vmm.Port
}

// StartB starts B (paused, waiting for its incoming state) and returns it with the path of
// its pflash1 file. The caller closes B.
func StartB(ctx context.Context, s BSpec) (*qemu.VM, string, error) {
	varStore := s.VarStore
	if varStore == "" {
		varStore = repo.OVMFVars()
	}
	pflash1 := filepath.Join(s.Dir, "vars-b.fd")
	if err := copyFile(varStore, pflash1); err != nil {
		return nil, "", err
	}
	vars := s.Vars
	if vars == "" {
		vars = pflash1
	}
	if s.NoVars {
		vars = ""
	}
	extra := s.Extra
	if s.GDB != "" {
		extra = append(append([]string(nil), extra...),
			"-chardev", "socket,id=gdb,path="+s.GDB+",server=on,wait=off", "-gdb", "chardev:gdb")
	}
	vm, err := qemu.Start(ctx, qemu.Config{
		MemoryMiB: s.MemoryMiB,
		Pflash: []qemu.Pflash{
			// as hostctl's B (vmm.Flash.Discard): the migrated shim content and the BIOS the
			// shim programs live only in B's memory; the shim image file gives the size.
			{Unit: 0, File: s.Shim, Discard: !s.ReadOnlyCode, ReadOnly: s.ReadOnlyCode},
			{Unit: 1, File: pflash1},
		},
		FwCfg:          qemu.ShimFiles(s.Manifest, s.Image, vars),
		Debugcon:       true,
		RebootShutdown: true, // as hostctl runs it: a guest reboot ends B
		Incoming:       s.Incoming,
		ExtraArgs:      extra,
		Kernel:         s.Kernel,
		Initrd:         s.Initrd,
		Append:         s.Append,
		Ports:          s.Ports,
		SerialLog:      filepath.Join(s.Dir, "serial-b.log"),
		DebugconLog:    filepath.Join(s.Dir, "debugcon-b.log"),
	})
	return vm, pflash1, err
}

// GuestKernelOptions is the command line the guest kernel of make images boots with in the
// tests and the bench (make demo spells the same): the serial console, the agent's log, and
// what shortens the boot under TCG (docs/hostctl.md, a guest OS after the chain).
const GuestKernelOptions = "console=ttyS0 quiet nokaslr mitigations=off cryptomgr.notests audit=0 no_timer_check"

// ChainSpec is one A->B chain run.
type ChainSpec struct {
	Shim            *Shim
	Manifest, Image string // the bundle parts handed to B ("" = left out)
	// Bundle, if set, gives Manifest and Image.
	Bundle       *Bundle
	Vars         string // see BSpec
	VarStore     string
	NoVars       bool
	ReadOnlyCode bool
	MemoryMiB    int
	ExtraA       []string // extra QEMU arguments of A (a live chain only)
	ExtraB       []string
	// Saved: B resumes the shim's saved READY state (Fixture.Ready: one A per shim and test
	// binary) instead of a live A migrated straight into it over a unix socket.
	Saved bool
	// BeforeWake, if set, gets a gdbstub socket of B and runs after the incoming state
	// loaded, while B is still paused (no shim instruction has run yet), before the wake-up.
	BeforeWake func(gdbSock string)
}

// Run is a chain's QEMU B, resumed and woken (vmm.WakeShim's NMIs until the shim answers).
type Run struct {
	*qemu.VM
	Cont    time.Time // host time just before `cont`
	Pflash1 string    // B's pflash1 file (the VM's var store)
	Dir     string
}

// Chain runs s and returns B; A is gone. B is closed at the end of the test, with its command
// line and consoles logged if the test failed.
func (f *Fixture) Chain(t testing.TB, s ChainSpec) *Run {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	if s.Bundle != nil {
		s.Manifest, s.Image = s.Bundle.Manifest, s.Bundle.Image
	}
	var a *qemu.VM
	if s.VarStore == "" {
		s.VarStore = VarStoreOf(s.Shim)
	}
	b := BSpec{Shim: s.Shim.Path, Manifest: s.Manifest, Image: s.Image, Vars: s.Vars, VarStore: s.VarStore, NoVars: s.NoVars,
		ReadOnlyCode: s.ReadOnlyCode, MemoryMiB: s.MemoryMiB, Extra: s.ExtraB, Dir: dir}
	if s.Saved {
		if len(s.ExtraA) > 0 || s.MemoryMiB != 0 {
			t.Fatal("harness: a saved READY state is made with the default A; use a live chain for ExtraA or MemoryMiB")
		}
		b.Incoming = qemu.IncomingFile(f.Ready(t, s.Shim).Path)
	} else {
		var err error
		if a, _, err = BootA(ctx, ASpec{Shim: s.Shim.Path, MemoryMiB: s.MemoryMiB, Extra: s.ExtraA, Dir: dir, VarStore: VarStoreOf(s.Shim)}); err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		b.Incoming = "unix:" + filepath.Join(dir, "mig.sock")
	}
	if s.BeforeWake != nil {
		b.GDB = filepath.Join(dir, "gdb.sock")
	}
	vm, pflash1, err := StartB(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		vm.Close()
		if t.Failed() {
			t.Logf("B: %s\nstderr: %s\ndebugcon:\n%s\nserial (tail):\n%s", vm.Cmdline(), vm.StderrSummary(),
				vm.Debugcon().Text(), Tail(vm.Serial().Text(), 2000))
		}
	})
	if a != nil {
		if err := a.SendTo(ctx, filepath.Join(dir, "mig.sock")); err != nil {
			t.Fatal(err)
		}
	}
	if s.BeforeWake != nil {
		st, err := vm.WaitIncoming(ctx, ReadyTimeout)
		if err != nil || st != "paused" {
			t.Fatalf("B loading the READY state: status %q, %v", st, err)
		}
		s.BeforeWake(b.GDB)
	}
	cont, err := vm.WakeIncoming(ctx, ReadyTimeout)
	if err != nil {
		t.Fatalf("B: %v", err)
	}
	return &Run{VM: vm, Cont: cont, Pflash1: pflash1, Dir: dir}
}

// VarStoreOf is Debian's var store of shim's layout (OVMF_VARS_4M.fd for ovmf-4m, OVMF_VARS.fd
// for ovmf-2m); for the default layout $SEVSHIM_OVMF_VARS may name another one.
func VarStoreOf(shim *Shim) string {
	if shim.Layout.ID == 0 || shim.Layout.ID == layout.Default {
		return repo.OVMFVars()
	}
	return filepath.Join(repo.OVMFDir(), shim.Layout.VarsFile)
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o600)
}
