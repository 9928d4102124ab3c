package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sevshim/sevshim/tests/harness/repo"
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
	repo.SkipOrFail(t, c.err)
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
	r, err := c.Exec(env, tool, args...)
	if err != nil {
		t.Fatalf("%s %v: %v", tool, args, err)
	}
	return r
}

// Exec is Run outside a test (the benchmark): the error is one of starting or bounding the
// tool; a non-zero exit is Result.Code.
func (c *CLIs) Exec(env []string, tool string, args ...string) (Result, error) {
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
	case errors.As(err, &ee) && ctx.Err() == nil:
		r.Code = ee.ExitCode()
	default:
		return r, err
	}
	return r, nil
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
	for _, p := range []string{"qemu", "swtpm"} {
		if pid := WorkPid(d, p); pid > 1 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// Platform makes state an emulated PSP platform (hostctl platform init) and writes its
// certificate chain to chain (hostctl platform export).
func (c *CLIs) Platform(t testing.TB, state, chain string) {
	t.Helper()
	c.MustRun(t, "hostctl", "platform", "init", "--state", state)
	c.MustRun(t, "hostctl", "platform", "export", "--state", state, "--out", chain)
}

// GuestHandles lists the guest contexts of platform state (hostctl platform guests --json;
// the handle of each host.GuestInfo, read here without importing pkg/host, which the package
// tests that use this harness sit below).
func (c *CLIs) GuestHandles(t testing.TB, state string) []uint32 {
	t.Helper()
	r := c.MustRun(t, "hostctl", "platform", "guests", "--state", state, "--json")
	var gs []struct {
		Handle uint32 `json:"handle"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &gs); err != nil {
		t.Fatalf("platform guests --json: %v: %s", err, r)
	}
	var hs []uint32
	for _, g := range gs {
		hs = append(hs, g.Handle)
	}
	return hs
}

// SignRolledBack writes a rolled-back bundle to out: Debian's OVMF signed by the demo
// provider key as version 4 (the demo policy's floor is 5).
func (c *CLIs) SignRolledBack(t testing.TB, out string) {
	t.Helper()
	c.MustRun(t, "builder", "sign-bios", "--key", filepath.Join(c.Images, "demo-provider.key"), "--version", "4",
		"--version-string", "rolled back (v4)", "--out", out, repo.OVMFCode())
}

// Parties are a provider and an owner, each on an emulated PSP platform in Dir, the owner's
// session for its own platform, and the demo shim image: what launching a guest and exporting
// it to the provider need.
type Parties struct {
	CLI       *CLIs
	Dir       string
	P, PChain string // the provider's platform state and certificate chain
	O, OChain string // the owner's
	Sess      string // the owner's session (verifier session, policy 0x1)
	Shim      string // images/shim-demo.fd
}

// NewParties makes both platforms and the owner's session in dir.
func (c *CLIs) NewParties(t testing.TB, dir string) *Parties {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	j := func(n string) string { return filepath.Join(dir, n) }
	p := &Parties{CLI: c, Dir: dir, P: j("P"), PChain: j("provider.chain"), O: j("O"), OChain: j("owner.chain"), Sess: j("sess"),
		Shim: filepath.Join(c.Images, "shim-demo.fd")}
	c.Platform(t, p.P, p.PChain)
	c.Platform(t, p.O, p.OChain)
	c.MustRun(t, "verifier", "session", "--chain", p.OChain, "--root", filepath.Join(p.O, "certs"), "--policy", "0x1", "--out", p.Sess)
	return p
}

// Export launches the owner's guest (hostctl launch with the extra arguments launch), checks
// its measurement, finishes the launch and exports it to the provider: Dir/NAME.pkg. The
// launch work directory is tracked (CLIs.StopAll ends it).
func (p *Parties) Export(t testing.TB, name string, launch ...string) (string, error) {
	t.Helper()
	a := p.CLI.Track(filepath.Join(p.Dir, name+".A"))
	p.CLI.MustRun(t, "hostctl", append([]string{"launch", "--state", p.O, "--image", p.Shim, "--session", p.Sess, "--work", a}, launch...)...)
	r := p.CLI.MustRun(t, "verifier", "measure", "--session", p.Sess, "--measurement", filepath.Join(a, "measurement.json"), "--image", p.Shim)
	if !strings.Contains(r.Stdout, "measurement OK") {
		return "", fmt.Errorf("verifier measure: %s", r)
	}
	p.CLI.MustRun(t, "hostctl", "launch-finish", "--work", a)
	pkg := filepath.Join(p.Dir, name+".pkg")
	r = p.CLI.MustRun(t, "hostctl", "export", "--work", a, "--to", p.PChain, "--root", filepath.Join(p.P, "certs"), "--out", pkg)
	if !strings.Contains(r.Stdout, "exported:") {
		return "", fmt.Errorf("export: %s", r)
	}
	return pkg, nil
}
