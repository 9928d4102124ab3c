package host

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sevshim/sevshim/pkg/atomicfile"
	"github.com/sevshim/sevshim/pkg/vmm/qemu"
	"github.com/sevshim/sevshim/tests/repo"
)

// Files of a work directory shared by every command that touches its QEMU.
const (
	PidFile      = "qemu.pid"
	QMPSock      = "qmp.sock"
	GDBSock      = "gdb.sock"
	SerialLog    = "serial.log"
	DebugconLog  = "debugcon.log"
	QEMULog      = "qemu.log" // QEMU's own stdout/stderr
	MigrateSock  = "migrate.sock"
	LaunchJSON   = "launch.json"
	MeasureJSON  = "measurement.json"
	ReceiveJSON  = "receive.json"
	startTimeout = 30 * time.Second
)

// vmConfig is one detached QEMU: A (launch) or B (receive). Both get the same device set
// (-nodefaults, COM1, the 0x402 debug console, two pflash units, one CPU), which is what a
// migration between them needs; -S, the gdbstub, -incoming and fw_cfg carry no device state.
type vmConfig struct {
	Machine      string
	MemoryMiB    uint64
	Code, Vars   string
	CodeSnapshot bool
	VarsSnapshot bool
	FwCfg        []qemu.FwCfg
	Paused       bool   // -S
	GDB          bool   // gdbstub on DIR/gdb.sock
	Incoming     bool   // -incoming defer
	Reboot       bool   // -action reboot=shutdown
	TPMSock      string // swtpm control socket: adds a tpm-crb TPM (TPMArgs); "" for none
}

func optEscape(s string) string { return strings.ReplaceAll(s, ",", ",,") }

// proc is a QEMU process of a work directory, started by this process or found again
// through DIR/qemu.pid.
type proc struct {
	dir    string
	pid    int
	qmp    *qemu.QMP
	child  *exec.Cmd     // nil when reattached
	exited chan struct{} // closed when a child we started has been reaped
}

// startDetached starts QEMU in its own session so it outlives this command; its consoles
// go to DIR/serial.log and DIR/debugcon.log, its own messages to DIR/qemu.log, its pid to
// DIR/qemu.pid.
func startDetached(ctx context.Context, dir string, cfg vmConfig) (*proc, error) {
	bin, err := repo.QEMU()
	if err != nil {
		return nil, err
	}
	for _, n := range []string{SerialLog, DebugconLog, QEMULog, QMPSock, GDBSock, MigrateSock, PidFile} {
		os.Remove(filepath.Join(dir, n))
	}
	p := func(n string) string { return filepath.Join(dir, n) }
	machine := cfg.Machine
	if machine == "" {
		machine = "q35"
	}
	args := []string{"-machine", machine, "-accel", "tcg", "-m", strconv.FormatUint(cfg.MemoryMiB, 10), "-smp", "1",
		"-nodefaults", "-display", "none", "-monitor", "none",
		"-drive", fmt.Sprintf("if=pflash,format=raw,unit=0,file=%s,readonly=off%s", optEscape(cfg.Code), snap(cfg.CodeSnapshot)),
		"-drive", fmt.Sprintf("if=pflash,format=raw,unit=1,file=%s,readonly=off%s", optEscape(cfg.Vars), snap(cfg.VarsSnapshot)),
	}
	for _, f := range cfg.FwCfg {
		args = append(args, "-fw_cfg", "name="+optEscape(f.Name)+",file="+optEscape(f.File))
	}
	args = append(args,
		"-chardev", "file,id=sevshim-serial,path="+optEscape(p(SerialLog)), "-serial", "chardev:sevshim-serial",
		"-chardev", "file,id=sevshim-dbg,path="+optEscape(p(DebugconLog)),
		"-device", "isa-debugcon,iobase=0x402,chardev=sevshim-dbg",
		"-qmp", "unix:"+optEscape(p(QMPSock))+",server=on,wait=off")
	if cfg.GDB {
		args = append(args, "-chardev", "socket,id=gdb,path="+optEscape(p(GDBSock))+",server=on,wait=off", "-gdb", "chardev:gdb")
	}
	if cfg.TPMSock != "" {
		args = append(args, TPMArgs(cfg.TPMSock)...)
	}
	if cfg.Paused {
		args = append(args, "-S")
	}
	if cfg.Incoming {
		args = append(args, "-incoming", "defer")
	}
	if cfg.Reboot {
		args = append(args, "-action", "reboot=shutdown")
	}
	logf, err := os.OpenFile(p(QEMULog), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "# %s %s\n", bin, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	pr := &proc{dir: dir, pid: cmd.Process.Pid, child: cmd, exited: make(chan struct{})}
	go func() { cmd.Wait(); close(pr.exited) }()
	if err := atomicfile.WriteFile(p(PidFile), []byte(strconv.Itoa(pr.pid)+"\n"), 0o600); err != nil {
		pr.kill()
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	go func() {
		select {
		case <-pr.exited:
			cancel()
		case <-dctx.Done():
		}
	}()
	q, err := dialQMPOf(dctx, p(QMPSock), pr.pid)
	if err != nil {
		pr.kill()
		return nil, fmt.Errorf("QEMU did not start: %v; %s", err, pr.logSummary())
	}
	pr.qmp = q
	return pr, nil
}

func snap(b bool) string {
	if b {
		return ",snapshot=on"
	}
	return ""
}

// readPid returns the pid in DIR/qemu.pid if that process is alive and is the QEMU of DIR
// (its command line names DIR's QMP socket), else 0.
func readPid(dir string) int {
	b, err := os.ReadFile(filepath.Join(dir, PidFile))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return 0
	}
	if !pidAlive(pid) {
		return 0
	}
	cl, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !bytes.Contains(cl, []byte(filepath.Join(dir, QMPSock))) {
		return 0
	}
	return pid
}

// pidAlive reports whether pid exists and is not a zombie.
func pidAlive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	if i := bytes.LastIndexByte(st, ')'); i > 0 && i+2 < len(st) && st[i+2] == 'Z' {
		return false
	}
	return true
}

// dialQMPOf connects to the QMP socket at path, which QEMU pid must serve (checkPeer).
func dialQMPOf(ctx context.Context, path string, pid int) (*qemu.QMP, error) {
	return qemu.DialQMPChecked(ctx, path, func(c *net.UnixConn) error { return checkPeer(c, path, pid) })
}

// attach connects to the running QEMU of dir.
func attach(ctx context.Context, dir string) (*proc, error) {
	pid := readPid(dir)
	if pid == 0 {
		return nil, fmt.Errorf("no running QEMU in %s (no live process in %s); start one with hostctl launch or receive", dir, filepath.Join(dir, PidFile))
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	q, err := dialQMPOf(cctx, filepath.Join(dir, QMPSock), pid)
	if err != nil {
		return nil, fmt.Errorf("QEMU pid %d of %s: %w (is another hostctl command connected to it?)", pid, dir, err)
	}
	return &proc{dir: dir, pid: pid, qmp: q}, nil
}

func (p *proc) alive() bool {
	if p.child != nil {
		select {
		case <-p.exited:
			return false
		default:
			return true
		}
	}
	return pidAlive(p.pid)
}

// waitExit waits up to d for the process to end.
func (p *proc) waitExit(d time.Duration) bool {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if !p.alive() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return !p.alive()
}

// kill ends the process: SIGTERM, then SIGKILL; it removes the pid file.
func (p *proc) kill() {
	if p.qmp != nil {
		p.qmp.Close()
		p.qmp = nil
	}
	if p.alive() {
		syscall.Kill(p.pid, syscall.SIGTERM)
		if !p.waitExit(5 * time.Second) {
			syscall.Kill(p.pid, syscall.SIGKILL)
			p.waitExit(5 * time.Second)
		}
	}
	os.Remove(filepath.Join(p.dir, PidFile))
}

// quit asks QEMU to exit over QMP and falls back to kill.
func (p *proc) quit(ctx context.Context) {
	if p.qmp != nil {
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		p.qmp.Execute(qctx, "quit", nil)
		cancel()
		p.waitExit(10 * time.Second)
	}
	p.kill()
}

func (p *proc) close() {
	if p.qmp != nil {
		p.qmp.Close()
		p.qmp = nil
	}
}

func (p *proc) status(ctx context.Context) (string, error) {
	var st qemu.StatusInfo
	if err := p.qmp.ExecuteInto(ctx, "query-status", nil, &st); err != nil {
		return "", err
	}
	return st.Status, nil
}

func (p *proc) exec(ctx context.Context, cmd string, args any) error {
	_, err := p.qmp.Execute(ctx, cmd, args)
	return err
}

// logSummary is the tail of DIR/qemu.log for error messages.
func (p *proc) logSummary() string {
	b, _ := os.ReadFile(filepath.Join(p.dir, QEMULog))
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 0 && strings.HasPrefix(lines[0], "# ") {
		lines = lines[1:]
	}
	s := strings.TrimSpace(strings.Join(lines, "\n"))
	if s == "" {
		return "QEMU printed nothing (" + filepath.Join(p.dir, QEMULog) + ")"
	}
	if len(s) > 1500 {
		s = "..." + s[len(s)-1500:]
	}
	return "QEMU said: " + s
}

// errLogTimeout is returned by waitLog when the line did not appear in time.
var errLogTimeout = errors.New("timed out")

// waitLog polls a console log file until a whole line matches one of res and returns the
// line and the index of the pattern. It stops at the timeout, at ctx's end, or shortly after
// the process ended without a match. The patterns must be anchored (^...$): console lines
// carry guest- and signer-chosen text.
func waitLog(ctx context.Context, p *proc, file string, timeout time.Duration, res ...*regexp.Regexp) (string, int, error) {
	lines, at, i, err := waitLines(ctx, p, file, timeout, nil, res...)
	if err != nil {
		return "", -1, err
	}
	return lines[at], i, nil
}

// waitLines is waitLog returning the snapshot of the file's complete lines the match was
// found in (so a caller parses everything from one read) and the matching line's index. With
// after set, only lines after the first line matching after are considered. Only complete
// lines (ended by '\n') are matched: a line still being written is not yet a line.
func waitLines(ctx context.Context, p *proc, file string, timeout time.Duration, after *regexp.Regexp, res ...*regexp.Regexp) ([]string, int, int, error) {
	end := time.Now().Add(timeout)
	path := filepath.Join(p.dir, file)
	deadAt := time.Time{}
	for {
		b, _ := os.ReadFile(path)
		if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
			b = b[:i]
		} else {
			b = nil
		}
		lines := strings.Split(string(b), "\n")
		started := after == nil
		for at, line := range lines {
			line = strings.TrimSuffix(line, "\r")
			lines[at] = line
			if !started {
				started = after.MatchString(line)
				continue
			}
			for i, re := range res {
				if re.MatchString(line) {
					return lines, at, i, nil
				}
			}
		}
		if !p.alive() {
			if deadAt.IsZero() {
				deadAt = time.Now()
			} else if time.Since(deadAt) > 300*time.Millisecond {
				return nil, -1, -1, fmt.Errorf("QEMU (pid %d) exited before %s showed %v; %s", p.pid, file, res, p.logSummary())
			}
		}
		if time.Now().After(end) {
			return nil, -1, -1, fmt.Errorf("%s: no line matching %v within %v: %w", path, res, timeout, errLogTimeout)
		}
		select {
		case <-ctx.Done():
			return nil, -1, -1, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop ends the QEMU of a work directory (hostctl stop), then its swtpm if it has one.
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
	pid := readPid(dir)
	if pid == 0 {
		os.Remove(filepath.Join(dir, PidFile))
		return 0, nil
	}
	p := &proc{dir: dir, pid: pid}
	if pr, err := attach(ctx, dir); err == nil {
		p = pr
	}
	p.quit(ctx)
	if pidAlive(pid) {
		return pid, fmt.Errorf("QEMU pid %d of %s did not exit", pid, dir)
	}
	return pid, nil
}

// StageStopped is the launch.json stage after hostctl stop ended QEMU A and released its
// guest context.
const StageStopped = "stopped"

// releaseWorkGuest decommissions the guest context a work directory's record names once its
// QEMU is gone, and records that: a launch (measured or running) becomes "stopped", a
// received guest "stopped". An exported launch's context was released by the export.
func releaseWorkGuest(dir string, log io.Writer) {
	if readPid(dir) != 0 {
		return // QEMU did not end: its guest keeps its context
	}
	var ls LaunchState
	if readJSON(filepath.Join(dir, LaunchJSON), &ls) == nil && ls.Format == 1 {
		if ls.Stage == StageMeasured || ls.Stage == StageRunning {
			releaseGuest(ls.Kind, ls.State, ls.Handle, log)
			ls.Stage = StageStopped
			writeJSON(filepath.Join(dir, LaunchJSON), &ls, 0o600)
		}
		return
	}
	var rs ReceiveState
	if readJSON(filepath.Join(dir, ReceiveJSON), &rs) == nil && rs.Handle != 0 {
		releaseGuest(rs.Kind, rs.State, rs.Handle, log)
		rs.Handle, rs.Pid = 0, 0
		if rs.Stage == "running" || rs.Stage == "loading" {
			rs.Stage = "stopped"
		}
		writeJSON(filepath.Join(dir, ReceiveJSON), &rs, 0o600)
	}
}
