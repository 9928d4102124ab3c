// Package qemu is the QEMU backend of the pkg/vmm seam: it starts and drives real
// qemu-system-x86_64 processes for sevshim. It does not simulate anything.
//
// One argument builder (args.go) serves two lifetimes. The attached VM (Start, this file) is
// a child of the calling process, for tests and the benchmark: a private temporary directory
// (QMP socket, migration socket), COM1 and the 0x402 debug console read live through pipes,
// QEMU's stderr captured; Close always ends it (SIGTERM, a bounded wait, then SIGKILL; the
// child also gets SIGKILL if the Go process dies, Pdeathsig). The detached VM (StartDetached,
// detached.go; the registered vmm.Backend "qemu" that hostctl uses) outlives the command
// that started it: its files live in a work directory and a later command re-attaches by pid
// and QMP socket, checking the socket's peer. Both drive QEMU through the same QMP control
// (ctl.go: one migration-out and one migration-in implementation, memory reads, the halt
// check); guest-memory writes go through the gdbstub client (gdb.go), beside the QMP client
// (qmp.go, see there for why both are our own). Both implement vmm.VM (Close differs: see
// VM.Close).
//
// Every QEMU is started with -nodefaults -display none -monitor none and, unless the
// Config says otherwise, -machine q35 -accel tcg (KVM does not work on the build machines).
// The binary is Config.Binary, else $SEVSHIM_QEMU, else qemu-system-x86_64 on PATH; every
// file (flash, fw_cfg) comes from the caller.
package qemu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sevshim/sevshim/pkg/vmm"
)

// Pflash is one -drive if=pflash unit.
type Pflash struct {
	Unit     int
	File     string
	ReadOnly bool
	// Snapshot keeps guest writes in a temporary overlay: the file never changes. With a
	// migration target this also stops QEMU from writing the migrated flash into the file.
	Snapshot bool
	// Discard backs the unit with a null block node of File's size (vmm.Flash.Discard): it
	// reads as zeros until an incoming migration fills it, and writes reach no file. Only
	// with Config.Incoming.
	Discard bool
	size    int64 // File's size, for Discard (set by defaults)
}

// FwCfg is one -fw_cfg entry: either File (its content is read at QEMU start) or String.
type FwCfg struct {
	Name   string
	File   string
	String string
}

// Config describes a QEMU process. Zero values pick the sevshim defaults.
type Config struct {
	Binary    string // default: Binary() ($SEVSHIM_QEMU or qemu-system-x86_64 on PATH)
	Machine   string // default "q35"
	Accel     string // default "tcg"
	MemoryMiB int    // default 512
	CPUModel  string // -cpu; default QEMU's
	CPUs      int    // -smp; 0 leaves QEMU's default (1)
	Pflash    []Pflash
	FwCfg     []FwCfg
	// TPMSocket adds a tpm-crb TPM backed by the swtpm control socket at this path.
	TPMSocket string
	// Kernel, Initrd and Append are a direct kernel boot (-kernel/-initrd/-append): OVMF loads
	// them from fw_cfg, after the shim's hand-off.
	Kernel, Initrd, Append string
	// Ports are virtio-serial ports (one virtio-serial-pci controller), each a listening
	// unix socket on the host.
	Ports []vmm.Port
	// GDBSocket serves QEMU's gdbstub on this unix socket (guest memory access).
	GDBSocket string

	// Debugcon adds an isa-debugcon device at port 0x402. It has no migration state, so a
	// migration source and target may differ here.
	Debugcon bool
	// SerialLog and DebugconLog, when set, also receive the raw console bytes.
	SerialLog, DebugconLog string

	// Paused starts the CPUs stopped (-S).
	Paused bool
	// Incoming is the -incoming argument: "defer", or a URI such as IncomingFile(path).
	Incoming string
	// RebootShutdown adds -action reboot=shutdown: a guest reboot ends the process.
	RebootShutdown bool
	// ExtraArgs are appended verbatim.
	ExtraArgs []string
	// ExtraFiles are inherited by QEMU as file descriptors ExtraFD(0), ExtraFD(1), ... (for
	// -incoming fd:N, or a memfd given to -device loader,file=/dev/fd/N). Start does not
	// close them; the caller does after Start returns.
	ExtraFiles []*os.File

	// StartTimeout bounds the wait for the QMP socket (default 20 s).
	StartTimeout time.Duration
	// KeepDir leaves the private directory in place after Close (for debugging).
	KeepDir bool
}

// ExtraFD is the descriptor number QEMU sees for Config.ExtraFiles[i] (3 and 4 carry the
// consoles).
func ExtraFD(i int) int { return 5 + i }

// IncomingFile returns an -incoming URI that reads a saved state file through the shell
// (QEMU 7.2 has no file: URI).
func IncomingFile(path string) string { return "exec:cat " + shellQuote(path) }

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// optEscape escapes a value for QEMU's option syntax (a comma is written twice).
func optEscape(s string) string { return strings.ReplaceAll(s, ",", ",,") }

// VM is a running (or finished) QEMU process.
type VM struct {
	cfg     Config
	cmd     *exec.Cmd
	dir     string
	args    []string
	started time.Time

	qmp      *QMP
	serial   *Console
	debugcon *Console
	logs     []*os.File
	stderr   *limitedBuffer

	exited  chan struct{}
	waitErr error

	closeOnce sync.Once
	closeErr  error
	consoles  sync.WaitGroup
}

// Start starts QEMU with cfg and connects QMP. On any error the process is gone again.
func Start(ctx context.Context, cfg Config) (*VM, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "sevshim-qemu-")
	if err != nil {
		return nil, err
	}
	vm := &VM{cfg: cfg, dir: dir, exited: make(chan struct{}), stderr: &limitedBuffer{max: 256 << 10}}
	ok := false
	defer func() {
		if !ok {
			vm.Close()
		}
	}()

	// Console pipes: QEMU writes to /dev/fd/3 (COM1) and /dev/fd/4 (debugcon).
	serR, serW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	dbgR, dbgW, err := os.Pipe()
	if err != nil {
		serR.Close()
		serW.Close()
		return nil, err
	}
	serRaw, err := vm.createLog(cfg.SerialLog)
	if err != nil {
		return nil, err
	}
	dbgRaw, err := vm.createLog(cfg.DebugconLog)
	if err != nil {
		return nil, err
	}
	vm.serial = vmm.NewConsole("serial", serRaw)
	vm.debugcon = vmm.NewConsole("debugcon", dbgRaw)

	qmpSock := filepath.Join(dir, "qmp.sock")
	args := args(&cfg, sinks{Serial: "/dev/fd/3", Debugcon: "/dev/fd/4", QMP: qmpSock})
	vm.args = args

	cmd := exec.Command(cfg.Binary, args...)
	cmd.Dir = dir
	cmd.Stdin = nil
	cmd.Stdout = vm.stderr
	cmd.Stderr = vm.stderr
	cmd.ExtraFiles = append([]*os.File{serW, dbgW}, cfg.ExtraFiles...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	vm.cmd = cmd
	vm.started = time.Now()
	if err := cmd.Start(); err != nil {
		serR.Close()
		serW.Close()
		dbgR.Close()
		dbgW.Close()
		return nil, fmt.Errorf("qemu: starting %s: %w", cfg.Binary, err)
	}
	serW.Close()
	dbgW.Close()
	vm.consoles.Add(2)
	go func() { defer vm.consoles.Done(); vm.serial.Run(serR) }()
	go func() { defer vm.consoles.Done(); vm.debugcon.Run(dbgR) }()
	go func() {
		vm.waitErr = cmd.Wait()
		close(vm.exited)
	}()

	q, err := dialStarting(ctx, cfg.StartTimeout, qmpSock, vm.Pid(), vm.exited)
	if err != nil {
		select {
		case <-vm.exited:
			return nil, fmt.Errorf("qemu exited during start-up (%v): %s", vm.waitErr, vm.StderrSummary())
		default:
		}
		return nil, fmt.Errorf("qemu: %w; stderr: %s", err, vm.StderrSummary())
	}
	vm.qmp = q
	ok = true
	return vm, nil
}

// createLog creates the raw console log at path ("" is none: a nil writer), closed by Close.
func (vm *VM) createLog(path string) (io.Writer, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	vm.logs = append(vm.logs, f)
	return f, nil
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// QMP is the connected QMP client.
func (vm *VM) QMP() *QMP { return vm.qmp }

// Serial is COM1.
func (vm *VM) Serial() *Console { return vm.serial }

// Debugcon is the 0x402 debug console (empty unless Config.Debugcon).
func (vm *VM) Debugcon() *Console { return vm.debugcon }

// Pid is QEMU's process id.
func (vm *VM) Pid() int { return vm.cmd.Process.Pid }

// Dir is the VM's private temporary directory (removed by Close unless KeepDir).
func (vm *VM) Dir() string { return vm.dir }

// Started is the host time just before the process was started.
func (vm *VM) Started() time.Time { return vm.started }

// Args is QEMU's argument list (without the binary).
func (vm *VM) Args() []string { return append([]string(nil), vm.args...) }

// Cmdline is the command line, shell-quoted, for error messages and reproduction.
func (vm *VM) Cmdline() string {
	parts := []string{shellQuote(vm.cfg.Binary)}
	for _, a := range vm.args {
		parts = append(parts, shellQuote(a))
	}
	return strings.Join(parts, " ")
}

// Stderr is what QEMU wrote on stderr/stdout so far (at most the first 256 KiB).
func (vm *VM) Stderr() string { return vm.stderr.String() }

// StderrSummary is Stderr trimmed for an error message.
func (vm *VM) StderrSummary() string {
	s := strings.TrimSpace(vm.Stderr())
	if s == "" {
		return "(no output on stderr)"
	}
	if len(s) > 2000 {
		s = s[len(s)-2000:]
	}
	return s
}

// Exited is closed when the QEMU process has ended.
func (vm *VM) Exited() <-chan struct{} { return vm.exited }

// ExitErr is the process result once Exited is closed (nil for exit status 0).
func (vm *VM) ExitErr() error {
	select {
	case <-vm.exited:
		return vm.waitErr
	default:
		return nil
	}
}

// Wait waits for QEMU to exit on its own.
func (vm *VM) Wait(ctx context.Context) error {
	select {
	case <-vm.exited:
		return vm.waitErr
	case <-ctx.Done():
		return fmt.Errorf("qemu (pid %d) still running: %w", vm.Pid(), ctx.Err())
	}
}

// Close ends QEMU if it still runs (SIGTERM, up to 5 s, then SIGKILL), closes QMP and the
// logs and removes the private directory. It is safe to call more than once. This is the
// one vmm.VM method whose meaning differs from the detached VM's (which keeps running): an
// attached QEMU is a child whose consoles are pipes into this process and whose directory
// is private to it, so it cannot outlive its handle.
func (vm *VM) Close() error {
	vm.closeOnce.Do(func() {
		if vm.cmd != nil && vm.cmd.Process != nil {
			select {
			case <-vm.exited:
			default:
				vm.cmd.Process.Signal(syscall.SIGTERM)
				select {
				case <-vm.exited:
				case <-time.After(5 * time.Second):
					vm.cmd.Process.Kill()
					select {
					case <-vm.exited:
					case <-time.After(10 * time.Second):
						vm.closeErr = fmt.Errorf("qemu pid %d did not exit after SIGKILL", vm.Pid())
					}
				}
			}
		}
		if vm.qmp != nil {
			vm.qmp.Close()
		}
		// The console pipes reach EOF when every holder of the write ends is gone; a
		// helper QEMU spawned (exec: migration) may briefly hold them too, so bound it.
		cdone := make(chan struct{})
		go func() { vm.consoles.Wait(); close(cdone) }()
		select {
		case <-cdone:
		case <-time.After(3 * time.Second):
		}
		for _, f := range vm.logs {
			f.Close()
		}
		if !vm.cfg.KeepDir && vm.dir != "" {
			os.RemoveAll(vm.dir)
		}
	})
	return vm.closeErr
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - b.buf.Len(); room > 0 {
		if len(p) > room {
			b.buf.Write(p[:room])
		} else {
			b.buf.Write(p)
		}
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var errNotRunning = errors.New("qemu is not running")
