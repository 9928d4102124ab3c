package harness

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sevshim/sevshim/tests/harness/repo"
)

// The libvirt daemons of the tests (there is no systemd here): Libvirt uses a libvirtd that
// already listens, or starts virtlogd and libvirtd itself. Several test binaries run at once
// (tests/libvirt, tests/guest), so the daemons the tests start are shared: each binary holds
// a shared flock on libvirtLock while it may use them, and the tests' starts are recorded in
// libvirtPids. When a binary is done (Main), it releases its lock and, if it can then take
// the lock exclusively (no other test binary uses libvirt), stops the recorded daemons, by
// pid. A libvirtd that was running before any test is never recorded, so never stopped.

// LibvirtURI is the connection the tests use.
const LibvirtURI = "qemu:///system"

const (
	libvirtSock = "/run/libvirt/libvirt-sock"
	libvirtLock = "/run/sevshim-tests-libvirt.lock"
	libvirtPids = "/run/sevshim-tests-libvirt.pids" // daemons the tests started, in start order
)

var (
	lvOnce sync.Once
	lvErr  error
	lvLock *os.File // held with a shared flock while this binary may use libvirtd
)

// Libvirt returns the URI of a running libvirtd, starting virtlogd and libvirtd (-d) when
// none is listening. A missing libvirt fails the test with what to do (or skips it with
// SEVSHIM_ALLOW_SKIP=1).
func Libvirt(t testing.TB) string {
	t.Helper()
	lvOnce.Do(func() {
		if lvErr = lockLibvirt(syscall.LOCK_SH); lvErr == nil {
			lvErr = startLibvirt(3)
		}
	})
	repo.SkipOrFail(t, lvErr)
	return LibvirtURI
}

func libvirtListening() bool {
	c, err := net.DialTimeout("unix", libvirtSock, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// lockLibvirt takes the tests' libvirt lock (how: LOCK_SH, blocking; or LOCK_EX|LOCK_NB).
func lockLibvirt(how int) error {
	f, err := os.OpenFile(libvirtLock, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("the tests' libvirt lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		return err
	}
	lvLock = f
	return nil
}

// startLibvirt starts what is missing; tries bounds the restarts when the libvirtd it found
// (another binary's, just stopping) is gone before it listens.
func startLibvirt(tries int) error {
	if libvirtListening() {
		return nil
	}
	for _, p := range []string{"virtlogd", "libvirtd"} {
		if _, err := exec.LookPath(p); err != nil {
			return fmt.Errorf("%s not found: run scripts/setup.sh (libvirt-daemon-system)", p)
		}
	}
	for _, d := range []struct{ prog, pidfile string }{{"virtlogd", "/run/virtlogd.pid"}, {"libvirtd", "/run/libvirtd.pid"}} {
		running := func() bool {
			pid := pidFromFile(d.pidfile)
			return pid != 0 && ProcAlive(pid) && CmdlineHas(pid, d.prog)
		}
		if running() {
			continue // running already (libvirtd without its socket yet, or virtlogd alone)
		}
		// Another test binary may be starting the same daemon, or the last one out may just
		// have stopped it: then "-d" fails on the pidfile another process still holds. Retry
		// for a bounded time; a daemon that another binary started is recorded by that one.
		var out []byte
		var err error
		for end := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			if out, err = exec.Command(d.prog, "-d").CombinedOutput(); err == nil {
				break
			}
			if !strings.Contains(string(out), "pidfile") || time.Now().After(end) {
				return fmt.Errorf("%s -d: %v: %s", d.prog, err, out)
			}
			if running() {
				break
			}
		}
		if err != nil {
			continue // started meanwhile by another test binary
		}
		var pid int
		for end := time.Now().Add(30 * time.Second); pid == 0 && time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
			pid = pidFromFile(d.pidfile)
		}
		if pid == 0 {
			return fmt.Errorf("%s -d wrote no %s within 30 s", d.prog, d.pidfile)
		}
		if err := recordStarted(pid); err != nil {
			return err
		}
	}
	for end := time.Now().Add(60 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if libvirtListening() {
			return nil
		}
		if pid := pidFromFile("/run/libvirtd.pid"); tries > 1 && !(pid != 0 && ProcAlive(pid) && CmdlineHas(pid, "libvirtd")) {
			return startLibvirt(tries - 1)
		}
	}
	return fmt.Errorf("libvirtd does not listen on %s after 60 s (see /var/log/libvirt/libvirtd.log)", libvirtSock)
}

func pidFromFile(p string) int {
	b, err := os.ReadFile(p)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

func recordStarted(pid int) error {
	f, err := os.OpenFile(libvirtPids, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = fmt.Fprintln(f, pid)
	return err
}

// stopLibvirt releases this binary's lock and, when no other test binary holds one, ends the
// daemons the tests started (libvirtd first), waiting up to 30 s each.
func stopLibvirt() {
	if lvLock == nil {
		return
	}
	lvLock.Close() // releases the shared lock
	lvLock = nil
	if lockLibvirt(syscall.LOCK_EX|syscall.LOCK_NB) != nil {
		return // another test binary still uses libvirtd: the last one stops it
	}
	defer func() { lvLock.Close(); lvLock = nil }()
	b, _ := os.ReadFile(libvirtPids)
	started := strings.Fields(string(b))
	for i := len(started) - 1; i >= 0; i-- {
		pid, _ := strconv.Atoi(started[i])
		if !ProcAlive(pid) || !(CmdlineHas(pid, "libvirtd") || CmdlineHas(pid, "virtlogd")) {
			continue
		}
		syscall.Kill(pid, syscall.SIGTERM)
		for end := time.Now().Add(30 * time.Second); ProcAlive(pid) && time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		}
		if ProcAlive(pid) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	os.Remove(libvirtPids)
}
