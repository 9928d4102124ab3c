package harness

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Swtpm is one swtpm process owned by a test (stopped by pid in Cleanup).
type Swtpm struct {
	Cmd  *exec.Cmd
	Ctrl string // its control socket (QEMU's TPM chardev, attest.DialSwtpm)
	Dir  string // its state directory
	done chan struct{}
}

// StartSwtpm runs the swtpm that command builds (host.SwtpmCommand, passed in: the harness
// does not import the host flows) as a child of the test, SIGKILLed with it and by pid in
// Cleanup: it outlives its QEMU, keeping the TPM's volatile state (PCRs) for attest.
func StartSwtpm(t testing.TB, name string, command func(bin, stateDir, sock, log string) *exec.Cmd) *Swtpm {
	t.Helper()
	dir, err := os.MkdirTemp("", "sevshim-swtpm-")
	if err != nil {
		t.Fatal(err)
	}
	s := &Swtpm{Ctrl: filepath.Join(dir, "ctrl.sock"), Dir: dir, done: make(chan struct{})}
	s.Cmd = command("swtpm", dir, s.Ctrl, filepath.Join(dir, "log"))
	s.Cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.Cmd.Start(); err != nil {
		os.RemoveAll(dir)
		t.Fatalf("starting swtpm: %v", err)
	}
	go func() { s.Cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		s.Cmd.Process.Kill()
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			t.Errorf("swtpm %s (pid %d) did not exit after SIGKILL", name, s.Cmd.Process.Pid)
		}
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(dir, "log")); err == nil && len(b) > 0 {
				t.Logf("swtpm %s log:\n%s", name, Tail(string(b), 2000))
			}
		}
		os.RemoveAll(dir)
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(s.Ctrl); err == nil {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("swtpm %s never created %s", name, s.Ctrl)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
