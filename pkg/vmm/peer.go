package vmm

import (
	"bytes"
	"context"
	"fmt"
	"github.com/sevshim/sevshim/pkg/atomicfile"
	"net"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The processes of a work directory (the VMM, swtpm) are found again by pid and talked to
// over unix sockets in that directory. A socket is only used when its listener is that very
// process of the caller's uid (socket(7), SO_PEERCRED), so that another process that put a
// socket at the same path never receives what is sent (the launch secret, guest RAM).

// OwnerName is "uid N (name)" for messages.
func OwnerName(uid uint32) string {
	if u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10)); err == nil {
		return fmt.Sprintf("uid %d (%s)", uid, u.Username)
	}
	return fmt.Sprintf("uid %d", uid)
}

// peerCred is the SO_PEERCRED of a connected unix socket: who created the listening end.
func peerCred(c *net.UnixConn) (*unix.Ucred, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := rc.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return nil, err
	}
	return cred, cerr
}

// PeerError is a connection refused by CheckPeer (not worth retrying).
type PeerError struct{ msg string }

func (e *PeerError) Error() string { return e.msg }

// CheckPeer refuses a unix socket connection whose listener is not process pid of the
// caller's uid.
func CheckPeer(c *net.UnixConn, path string, pid int) error {
	cred, err := peerCred(c)
	if err != nil {
		return fmt.Errorf("%s: reading the peer's credentials: %w", path, err)
	}
	me := os.Geteuid()
	if int(cred.Uid) != me {
		return &PeerError{fmt.Sprintf("%s is served by %s (pid %d), not by you (%s): refused, another user put that socket there", path, OwnerName(cred.Uid), cred.Pid, OwnerName(uint32(me)))}
	}
	if int(cred.Pid) != pid {
		return &PeerError{fmt.Sprintf("%s is served by pid %d, not by the process of this work directory that hostctl started (pid %d): refused", path, cred.Pid, pid)}
	}
	return nil
}

// DialPeer connects to the unix socket path and checks that process pid listens on it.
func DialPeer(ctx context.Context, path string, pid int, timeout time.Duration) (*net.UnixConn, error) {
	d := net.Dialer{Timeout: timeout}
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, err
	}
	uc := c.(*net.UnixConn)
	if err := CheckPeer(uc, path, pid); err != nil {
		uc.Close()
		return nil, err
	}
	return uc, nil
}

// PidAlive reports whether pid exists and is not a zombie.
func PidAlive(pid int) bool {
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

// Alive reports whether process pid still runs: for a child this process started (exited
// is closed once it has been reaped) by exited, else by PidAlive.
func Alive(pid int, exited <-chan struct{}) bool {
	if exited != nil {
		select {
		case <-exited:
			return false
		default:
			return true
		}
	}
	return PidAlive(pid)
}

// ReadPidFile returns the pid in file if that process is alive and its command line
// contains mark (the path of a socket only that process was started with), else 0.
func ReadPidFile(file, mark string) int {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b)))
	if err != nil || pid <= 1 || !PidAlive(pid) {
		return 0
	}
	cl, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !bytes.Contains(cl, []byte(mark)) {
		return 0
	}
	return pid
}

// WaitGone polls alive until it reports false, at most d; it reports whether it did.
func WaitGone(alive func() bool, d time.Duration) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if !alive() {
			return true
		}
	}
	return !alive()
}

// Terminate ends process pid: SIGTERM, up to 5 s, then SIGKILL and up to 5 s more.
func Terminate(pid int, alive func() bool) {
	if !alive() {
		return
	}
	syscall.Kill(pid, syscall.SIGTERM)
	if !WaitGone(alive, 5*time.Second) {
		syscall.Kill(pid, syscall.SIGKILL)
		WaitGone(alive, 5*time.Second)
	}
}

// StartDetached starts cmd in its own session (so it outlives this process) in dir, with
// its stdout and stderr appended to the file log after a "# command line" header, writes
// its pid to pidFile and returns the pid and a channel closed when it has been reaped.
// If the pid file cannot be written, the process is killed again.
func StartDetached(cmd *exec.Cmd, dir, log, pidFile string) (int, <-chan struct{}, error) {
	logf, err := os.OpenFile(log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, nil, err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "# %s\n", strings.Join(cmd.Args, " "))
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, nil, fmt.Errorf("starting %s: %w", cmd.Path, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	pid := cmd.Process.Pid
	if err := atomicfile.WriteFile(pidFile, []byte(strconv.Itoa(pid)+"\n"), 0o600); err != nil {
		syscall.Kill(pid, syscall.SIGKILL)
		<-exited
		return 0, nil, err
	}
	return pid, exited, nil
}
