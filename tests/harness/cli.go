package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sevshim/sevshim/tests/repo"
)

// CLIs is the harness of the tests that drive the real builder, verifier and hostctl
// (tests/flow, tests/receipt): the three tools built once per test binary, the demo images
// (`make images`), and every QEMU work directory a test started, ended at the end whatever
// happened.
type CLIs struct {
	Bin    string // the built tools
	Images string // build/images

	once sync.Once
	err  error
	mu   sync.Mutex
	work []string
}

// NewCLIs returns a harness that builds the tools into tmpRoot/bin on first use.
func NewCLIs(tmpRoot string) *CLIs { return &CLIs{Bin: filepath.Join(tmpRoot, "bin")} }

// Require checks QEMU, Debian's OVMF and the demo images and builds the tools (once). A
// missing prerequisite fails the test with what to do, or skips it with SEVSHIM_ALLOW_SKIP=1.
func (c *CLIs) Require(t testing.TB) {
	t.Helper()
	c.once.Do(func() {
		root, err := repo.Root()
		if err != nil {
			c.err = err
			return
		}
		c.Images = filepath.Join(root, "build", "images")
		if _, err := repo.QEMU(); err != nil {
			c.err = fmt.Errorf("%v; run scripts/setup.sh", err)
			return
		}
		if err := repo.RequireFiles(repo.OVMFCode(), repo.OVMFVars()); err != nil {
			c.err = fmt.Errorf("Debian OVMF: %v; run scripts/setup.sh", err)
			return
		}
		if err := repo.RequireFiles(filepath.Join(c.Images, "shim-demo.fd"), filepath.Join(c.Images, "v5.bundle"),
			filepath.Join(c.Images, "v6.bundle"), filepath.Join(c.Images, "demo-provider.key")); err != nil {
			c.err = fmt.Errorf("%v: run make images (make -C images) first", err)
			return
		}
		cmd := exec.Command("go", "build", "-o", c.Bin+"/", "./hostctl", "./verifier", "./builder")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			c.err = fmt.Errorf("building the CLIs: %v\n%s", err, out)
		}
	})
	if c.err == nil {
		return
	}
	if os.Getenv("SEVSHIM_ALLOW_SKIP") == "1" {
		t.Skipf("SEVSHIM_ALLOW_SKIP=1: %v", c.err)
	}
	t.Fatalf("%v (set SEVSHIM_ALLOW_SKIP=1 to skip deliberately)", c.err)
}

// Result is what one tool run printed and its exit status.
type Result struct {
	Stdout, Stderr string
	Code           int
}

func (r Result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
}

// Run runs one of the tools (bounded to 5 minutes) with extra environment variables.
func (c *CLIs) Run(t testing.TB, env []string, tool string, args ...string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(c.Bin, tool), args...)
	cmd.Env = append(os.Environ(), env...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	r := Result{Stdout: so.String(), Stderr: se.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
	default:
		t.Fatalf("%s %v: %v", tool, args, err)
	}
	return r
}

// MustRun is Run without extra environment that fails the test on a non-zero exit.
func (c *CLIs) MustRun(t testing.TB, tool string, args ...string) Result {
	t.Helper()
	r := c.Run(t, nil, tool, args...)
	if r.Code != 0 {
		t.Fatalf("%s %s: %s", tool, strings.Join(args, " "), r)
	}
	return r
}

// Track registers a QEMU work directory to end in StopAll and returns it.
func (c *CLIs) Track(dir string) string {
	c.mu.Lock()
	c.work = append(c.work, dir)
	c.mu.Unlock()
	return dir
}

// StopAll ends the QEMU (and swtpm) of every tracked work directory.
func (c *CLIs) StopAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, d := range c.work {
		c.KillWork(d)
	}
}

// KillWork ends the QEMU of a work directory: hostctl stop, then SIGKILL of the pid in its
// pid file if that process is the QEMU of this directory, and of a swtpm hostctl stop left.
func (c *CLIs) KillWork(d string) {
	if _, err := os.Stat(filepath.Join(c.Bin, "hostctl")); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		exec.CommandContext(ctx, filepath.Join(c.Bin, "hostctl"), "stop", "--work", d).Run()
		cancel()
	}
	if pid := PidOf(d, "qemu.pid"); pid > 1 && CmdlineHas(pid, filepath.Join(d, "qmp.sock")) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	if pid := PidOf(d, "swtpm.pid"); pid > 1 && CmdlineHas(pid, filepath.Join(d, "swtpm.sock")) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// PidOf reads the pid file dir/file (0 if absent or malformed).
func PidOf(dir, file string) int {
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0
	}
	return pid
}

// ProcAlive reports whether pid runs and is not a zombie.
func ProcAlive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	i := bytes.LastIndexByte(st, ')')
	return !(i > 0 && i+2 < len(st) && st[i+2] == 'Z')
}

// CmdlineHas reports whether the command line of pid contains s (the "really our process"
// check before a signal).
func CmdlineHas(pid int, s string) bool {
	cl, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err == nil && bytes.Contains(cl, []byte(s))
}
