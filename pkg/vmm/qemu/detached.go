package qemu

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sevshim/sevshim/pkg/vmm"
)

// Files of a work directory that belong to its detached QEMU.
const (
	PidFile     = "qemu.pid"
	QMPSock     = "qmp.sock"
	GDBSock     = "gdb.sock"
	SerialLog   = "serial.log"
	DebugconLog = "debugcon.log"
	QEMULog     = "qemu.log" // QEMU's own stdout/stderr, after a "# command line" header
	MigrateSock = "migrate.sock"
)

// detachedFiles are removed before a detached QEMU starts in a directory.
var detachedFiles = []string{SerialLog, DebugconLog, QEMULog, QMPSock, GDBSock, MigrateSock, PidFile}

// consolePoll is how often a detached VM's console logs are read.
const consolePoll = 20 * time.Millisecond

// Detached is a QEMU that outlives the process that started it (hostctl's lifetime): it runs
// in its own session, its consoles go to DIR/serial.log and DIR/debugcon.log, its own
// messages to DIR/qemu.log, its pid to DIR/qemu.pid; a later process finds it again
// (Attach) through the pid file and the QMP socket, whose listener must be that pid.
type Detached struct {
	c      ctl
	dir    string
	exited <-chan struct{} // closed when a child we started has been reaped; nil when attached

	consOnce         sync.Once
	serial, debugcon *vmm.Console
	stop             chan struct{}
	follow           sync.WaitGroup
	closeOnce        sync.Once
}

var _ vmm.VM = (*Detached)(nil)
var _ vmm.MemoryAccess = (*Detached)(nil)
var _ vmm.HaltWaiter = (*Detached)(nil)

// StartDetached starts QEMU for cfg as the detached QEMU of dir. On error no process is
// left behind.
func StartDetached(ctx context.Context, dir string, cfg Config) (*Detached, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	for _, n := range detachedFiles {
		os.Remove(filepath.Join(dir, n))
	}
	p := func(n string) string { return filepath.Join(dir, n) }
	a := args(&cfg, sinks{Serial: p(SerialLog), Debugcon: p(DebugconLog), QMP: p(QMPSock)})
	pid, exited, err := vmm.StartDetached(exec.Command(cfg.Binary, a...), dir, p(QEMULog), p(PidFile))
	if err != nil {
		return nil, err
	}
	d := newDetached(dir, pid)
	d.exited = exited
	q, err := dialStarting(ctx, cfg.StartTimeout, p(QMPSock), d.c.pid, d.exited)
	if err != nil {
		d.Kill()
		return nil, fmt.Errorf("QEMU did not start: %v; %s", err, d.Describe())
	}
	d.c.qmp = q
	return d, nil
}

func newDetached(dir string, pid int) *Detached {
	d := &Detached{dir: dir, stop: make(chan struct{})}
	d.c = ctl{dir: dir, pid: pid, gone: func() bool { return !d.Alive() }, summary: d.Describe}
	return d
}

// RunningPid returns the pid in DIR/qemu.pid if that process is alive and is the QEMU of
// dir (its command line names dir's QMP socket), else 0.
func RunningPid(dir string) int {
	return vmm.ReadPidFile(filepath.Join(dir, PidFile), filepath.Join(dir, QMPSock))
}

// dialStarting connects to the QMP socket of a QEMU that is starting: bounded by timeout,
// and given up as soon as exited is closed.
func dialStarting(ctx context.Context, timeout time.Duration, path string, pid int, exited <-chan struct{}) (*QMP, error) {
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	go func() {
		select {
		case <-exited:
			cancel()
		case <-dctx.Done():
		}
	}()
	return dialQMPOf(dctx, path, pid)
}

// dialQMPOf connects to the QMP socket at path, which QEMU pid must serve.
func dialQMPOf(ctx context.Context, path string, pid int) (*QMP, error) {
	return DialQMPChecked(ctx, path, func(c *net.UnixConn) error { return vmm.CheckPeer(c, path, pid) })
}

// AttachDetached connects to the running detached QEMU of dir.
func AttachDetached(ctx context.Context, dir string) (*Detached, error) {
	pid := RunningPid(dir)
	if pid == 0 {
		return nil, fmt.Errorf("no running QEMU in %s (no live process in %s); start one with hostctl launch or receive", dir, filepath.Join(dir, PidFile))
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	q, err := dialQMPOf(cctx, filepath.Join(dir, QMPSock), pid)
	if err != nil {
		return nil, fmt.Errorf("QEMU pid %d of %s: %w (is another hostctl command connected to it?)", pid, dir, err)
	}
	d := newDetached(dir, pid)
	d.c.qmp = q
	return d, nil
}

// QMP is the connection to this QEMU (tests).
func (d *Detached) QMP() *QMP { return d.c.qmp }

// Dir is the work directory.
func (d *Detached) Dir() string { return d.dir }

func (d *Detached) Pid() int { return d.c.pid }

func (d *Detached) Alive() bool { return vmm.Alive(d.c.pid, d.exited) }

func (d *Detached) Status(ctx context.Context) (vmm.Status, error) {
	st, err := d.c.status(ctx)
	return vmm.Status(st), err
}

func (d *Detached) Resume(ctx context.Context) error { return d.c.exec(ctx, "cont", nil) }
func (d *Detached) Pause(ctx context.Context) error  { return d.c.exec(ctx, "stop", nil) }
func (d *Detached) NMI(ctx context.Context) error    { return d.c.exec(ctx, "inject-nmi", nil) }

func (d *Detached) MigrateOut(ctx context.Context, w io.Writer) error {
	_, _, err := d.c.migrateOut(ctx, w)
	return err
}

func (d *Detached) CancelMigration(ctx context.Context) error { return d.c.cancelMigration(ctx) }

// MigrateIn feeds the state and waits up to 120 s for QEMU to load it.
func (d *Detached) MigrateIn(ctx context.Context, r io.Reader) (vmm.Status, error) {
	st, err := d.c.migrateIn(ctx, r, 120*time.Second)
	return vmm.Status(st), err
}

func (d *Detached) ReadPhys(ctx context.Context, addr uint64, n int) ([]byte, error) {
	return d.c.readPhys(ctx, addr, n)
}

// WritePhys writes through the gdbstub on DIR/gdb.sock (Spec.MemoryAccess), whose listener
// must be this QEMU.
func (d *Detached) WritePhys(ctx context.Context, addr uint64, data []byte) error {
	return writePhys(filepath.Join(d.dir, GDBSock), d.c.pid, addr, data)
}

// EndMemoryAccess turns the gdbstub off and removes its socket.
func (d *Detached) EndMemoryAccess(ctx context.Context) error {
	err := d.c.exec(ctx, "human-monitor-command", map[string]any{"command-line": "gdbserver none"})
	os.Remove(filepath.Join(d.dir, GDBSock))
	return err
}

func (d *Detached) WaitHalted(ctx context.Context, timeout time.Duration) error {
	return d.c.waitHalted(ctx, timeout)
}

// Serial and Debugcon follow the console logs of the work directory from their start.
func (d *Detached) Serial() *vmm.Console   { d.consoles(); return d.serial }
func (d *Detached) Debugcon() *vmm.Console { d.consoles(); return d.debugcon }

func (d *Detached) consoles() {
	d.consOnce.Do(func() {
		d.serial = vmm.NewConsole("serial", nil)
		d.debugcon = vmm.NewConsole("debugcon", nil)
		gone := func() bool { return !d.Alive() }
		for c, f := range map[*vmm.Console]string{d.serial: SerialLog, d.debugcon: DebugconLog} {
			d.follow.Add(1)
			go func() {
				defer d.follow.Done()
				c.Follow(filepath.Join(d.dir, f), consolePoll, gone, d.stop)
			}()
		}
	})
}

// Describe is the tail of DIR/qemu.log.
func (d *Detached) Describe() string {
	b, _ := os.ReadFile(filepath.Join(d.dir, QEMULog))
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 0 && strings.HasPrefix(lines[0], "# ") {
		lines = lines[1:]
	}
	s := strings.TrimSpace(strings.Join(lines, "\n"))
	if s == "" {
		return "QEMU printed nothing (" + filepath.Join(d.dir, QEMULog) + ")"
	}
	if len(s) > 1500 {
		s = "..." + s[len(s)-1500:]
	}
	return "QEMU said: " + s
}

// Quit asks QEMU to exit over QMP (it shuts its devices down) and, if it has not within
// 10 s, ends it with SIGTERM and then SIGKILL. It removes the pid file.
func (d *Detached) Quit(ctx context.Context) error {
	if d.c.qmp != nil {
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		d.c.qmp.Execute(qctx, "quit", nil)
		cancel()
		vmm.WaitGone(d.Alive, 10*time.Second)
	}
	d.closeQMP()
	vmm.Terminate(d.c.pid, d.Alive)
	return d.gone()
}

// Kill SIGKILLs QEMU at once (no device is shut down: swtpm keeps its volatile state),
// waits up to 10 s for it to end and removes the pid file.
func (d *Detached) Kill() error {
	d.closeQMP()
	if d.Alive() {
		syscall.Kill(d.c.pid, syscall.SIGKILL)
		vmm.WaitGone(d.Alive, 10*time.Second)
	}
	return d.gone()
}

func (d *Detached) gone() error {
	if d.Alive() {
		return fmt.Errorf("QEMU pid %d of %s did not exit", d.c.pid, d.dir)
	}
	os.Remove(filepath.Join(d.dir, PidFile))
	return nil
}

func (d *Detached) closeQMP() {
	if d.c.qmp != nil {
		d.c.qmp.Close()
		d.c.qmp = nil
	}
}

// Close drops the QMP connection and stops following the consoles; QEMU keeps running.
func (d *Detached) Close() error {
	d.closeQMP()
	d.closeOnce.Do(func() { close(d.stop) })
	d.follow.Wait()
	return nil
}

// backend is the QEMU vmm.Backend: detached QEMUs owned by work directories.
type backend struct{}

func init() { vmm.Register(backend{}) }

// Backend is the QEMU backend (also registered with vmm under "qemu").
func Backend() vmm.Backend { return backend{} }

func (backend) Name() string { return "qemu" }

func (backend) Start(ctx context.Context, dir string, spec vmm.Spec) (vmm.VM, error) {
	cfg, err := DetachedConfig(dir, spec)
	if err != nil {
		return nil, err
	}
	cfg.StartTimeout = 30 * time.Second
	d, err := StartDetached(ctx, dir, cfg)
	if err != nil {
		return nil, err // a nil vmm.VM, not a nil *Detached in one
	}
	return d, nil
}

// DetachedConfig is the Config of spec for a detached QEMU in dir: ConfigFromSpec plus the
// gdbstub socket in dir for Spec.MemoryAccess.
func DetachedConfig(dir string, spec vmm.Spec) (Config, error) {
	cfg, err := ConfigFromSpec(spec)
	if err != nil {
		return cfg, err
	}
	if spec.MemoryAccess {
		cfg.GDBSocket = filepath.Join(dir, GDBSock)
	}
	return cfg, nil
}

func (backend) Attach(ctx context.Context, dir string) (vmm.VM, error) {
	d, err := AttachDetached(ctx, dir)
	if err != nil {
		return nil, err
	}
	return d, nil
}

func (backend) Running(dir string) int { return RunningPid(dir) }

// Stop quits the QEMU of dir (QMP quit if it can connect, else signals) and returns its pid.
func (backend) Stop(ctx context.Context, dir string) (int, error) {
	pid := RunningPid(dir)
	if pid == 0 {
		os.Remove(filepath.Join(dir, PidFile))
		return 0, nil
	}
	d, err := AttachDetached(ctx, dir)
	if err != nil {
		d = newDetached(dir, pid)
	}
	d.Quit(ctx)
	d.Close()
	if vmm.PidAlive(pid) {
		return pid, fmt.Errorf("QEMU pid %d of %s did not exit", pid, dir)
	}
	return pid, nil
}

// WriteGuestPhys writes data at guest-physical addr of the detached QEMU whose gdbstub
// listens on sock (the gdb.sock of its work directory: the QEMU of that directory must be
// the listener) and reads it back to check. Benchmarks use it to dirty guest RAM.
func WriteGuestPhys(sock string, addr uint64, data []byte) error {
	pid := RunningPid(filepath.Dir(sock))
	if pid == 0 {
		return fmt.Errorf("%s: no running QEMU in %s", sock, filepath.Dir(sock))
	}
	return writePhys(sock, pid, addr, data)
}

// writePhys writes data at guest-physical addr through QEMU's gdbstub (QEMU 7.2 has no QMP
// command that writes guest memory) and reads it back to check; the stub must be served by
// QEMU pid. The read-back buffer is zeroed after each compare: data may be the plaintext
// launch secret.
func writePhys(sock string, pid int, addr uint64, data []byte) error {
	g, err := DialGDB(sock, func(c *net.UnixConn) error { return vmm.CheckPeer(c, sock, pid) })
	if err != nil {
		return err
	}
	defer g.Close()
	if err := g.SetPhysMode(true); err != nil {
		return err
	}
	const chunk = 1024
	for off := 0; off < len(data); off += chunk {
		part := data[off:min(off+chunk, len(data))]
		a := addr + uint64(off)
		if err := g.WriteMemory(a, part); err != nil {
			return err
		}
		back, err := g.ReadMemory(a, len(part))
		if err != nil {
			return fmt.Errorf("gdbstub read-back at 0x%x: %w", a, err)
		}
		same := bytes.Equal(back, part)
		clear(back)
		if !same {
			return fmt.Errorf("gdbstub read-back at 0x%x does not match what was written", a)
		}
	}
	return g.SetPhysMode(false)
}
