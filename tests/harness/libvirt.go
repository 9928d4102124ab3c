package harness

import (
	"fmt"
	"github.com/sevshim/sevshim/tests/harness/repo"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The libvirt daemons of the tests under tests/libvirt (there is no systemd here): Libvirt
// uses a libvirtd that already listens, or starts virtlogd and libvirtd itself; Main stops
// only those it started, by pid, once the test binary is done.

// LibvirtURI is the connection the tests use.
const LibvirtURI = "qemu:///system"

const libvirtSock = "/run/libvirt/libvirt-sock"

var (
	lvOnce    sync.Once
	lvErr     error
	lvStarted []int // pids of the daemons this binary started, in start order
)

// Libvirt returns the URI of a running libvirtd, starting virtlogd and libvirtd (-d) when
// none is listening. A missing libvirt fails the test with what to do (or skips it with
// SEVSHIM_ALLOW_SKIP=1).
func Libvirt(t testing.TB) string {
	t.Helper()
	lvOnce.Do(func() { lvErr = startLibvirt() })
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

func startLibvirt() error {
	if libvirtListening() {
		return nil
	}
	for _, p := range []string{"virtlogd", "libvirtd"} {
		if _, err := exec.LookPath(p); err != nil {
			return fmt.Errorf("%s not found: run scripts/setup.sh (libvirt-daemon-system)", p)
		}
	}
	for _, d := range []struct{ prog, pidfile string }{{"virtlogd", "/run/virtlogd.pid"}, {"libvirtd", "/run/libvirtd.pid"}} {
		if pid := pidFromFile(d.pidfile); pid != 0 && ProcAlive(pid) && CmdlineHas(pid, d.prog) {
			continue // running already (libvirtd without its socket yet, or virtlogd alone)
		}
		if out, err := exec.Command(d.prog, "-d").CombinedOutput(); err != nil {
			return fmt.Errorf("%s -d: %v: %s", d.prog, err, out)
		}
		var pid int
		for end := time.Now().Add(30 * time.Second); pid == 0 && time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
			pid = pidFromFile(d.pidfile)
		}
		if pid == 0 {
			return fmt.Errorf("%s -d wrote no %s within 30 s", d.prog, d.pidfile)
		}
		lvStarted = append(lvStarted, pid)
	}
	for end := time.Now().Add(60 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if libvirtListening() {
			return nil
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

// stopLibvirt ends the daemons Libvirt started (libvirtd first), waiting up to 30 s each.
func stopLibvirt() {
	for i := len(lvStarted) - 1; i >= 0; i-- {
		pid := lvStarted[i]
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
	lvStarted = nil
}
