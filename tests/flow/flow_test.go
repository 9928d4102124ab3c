// Package flow holds the integration tests of the whole owner -> provider flow (docs/flow.md),
// driving the real CLIs (hostctl, verifier, builder, built once per run) against real QEMU
// (TCG), real emulated PSPs in temporary state directories, the real shim and the demo
// bundles from `make -C images`. Nothing is simulated.
//
// One guest is launched, measured, given a secret and exported once (fixture); the subtests
// receive that package in different ways. Missing prerequisites fail the tests with what to
// do; SEVSHIM_ALLOW_SKIP=1 skips instead.
package flow

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sevshim/sevshim/tests/harness"
)

var (
	cli    *harness.CLIs // harness.CLI, once prereq ran
	binDir string        // cli.Bin, once prereq ran
	images string        // build/images, once prereq ran
)

func TestMain(m *testing.M) { harness.Main(m) }

// The shared CLI harness (tests/harness), under the names these tests use.
type result = harness.Result

func track(dir string) string { return cli.Track(dir) }
func killWork(d string)       { cli.KillWork(d) }

func isQEMUOf(pid int, dir string) bool { return harness.IsProcOf(pid, dir, "qemu") }

// prereq builds the CLIs and checks QEMU, OVMF and the demo images.
func prereq(t testing.TB) {
	t.Helper()
	cli = harness.CLI(t)
	cli.Require(t)
	binDir, images = cli.Bin, cli.Images
}

// run runs one of the CLIs (bounded to 5 minutes) with extra environment variables.
func run(t testing.TB, env []string, tool string, args ...string) result {
	t.Helper()
	return cli.Run(t, env, tool, args...)
}

func mustRun(t testing.TB, tool string, args ...string) result {
	t.Helper()
	return cli.MustRun(t, tool, args...)
}

// world is the shared fixture: platforms, a launched + exported guest, bundles.
type world struct {
	dir                  string
	p, o, y              string // provider, owner, other provider state dirs
	pChain, oChain, yChn string
	shim                 string
	sess                 string
	launchW              string
	pkg                  string
	v4, v5, v6           string
	secret               []byte
}

var worldOnce harness.Once[world]

func getWorld(t *testing.T) *world {
	t.Helper()
	prereq(t)
	return worldOnce.Get(t, "fixture", func() (*world, error) { return makeWorld(t) })
}

func makeWorld(t testing.TB) (*world, error) {
	w := &world{dir: filepath.Join(harness.WorkDir(t), "world")}
	os.MkdirAll(w.dir, 0o700)
	j := func(n string) string { return filepath.Join(w.dir, n) }
	w.p, w.o, w.y = j("P"), j("O"), j("Y")
	w.pChain, w.oChain, w.yChn = j("provider.chain"), j("owner.chain"), j("other.chain")
	for _, x := range []struct{ st, ch string }{{w.p, w.pChain}, {w.o, w.oChain}, {w.y, w.yChn}} {
		cli.Platform(t, x.st, x.ch)
	}
	w.shim = filepath.Join(images, "shim-demo.fd")
	w.v5, w.v6 = filepath.Join(images, "v5.bundle"), filepath.Join(images, "v6.bundle")
	w.v4 = j("v4.bundle") // a rolled-back BIOS
	cli.SignRolledBack(t, w.v4)

	// The owner: check the provider, make a session for its own platform, launch, measure.
	mustRun(t, "verifier", "platform", "--chain", w.pChain, "--root", filepath.Join(w.p, "certs"))
	w.sess = j("sess")
	mustRun(t, "verifier", "session", "--chain", w.oChain, "--root", filepath.Join(w.o, "certs"), "--policy", "0x1", "--out", w.sess)
	w.launchW = track(j("A"))
	r := mustRun(t, "hostctl", "launch", "--state", w.o, "--image", w.shim, "--session", w.sess, "--work", w.launchW)
	if !strings.Contains(r.Stdout, "paused in prelaunch") {
		return nil, fmt.Errorf("launch output: %s", r)
	}
	meas := filepath.Join(w.launchW, "measurement.json")
	r = mustRun(t, "verifier", "measure", "--session", w.sess, "--measurement", meas, "--image", w.shim)
	if !strings.Contains(r.Stdout, "measurement OK") {
		return nil, fmt.Errorf("verifier measure: %s", r)
	}
	w.secret = []byte("correct horse battery staple")
	if err := os.WriteFile(j("pass.txt"), w.secret, 0o600); err != nil {
		return nil, err
	}
	mustRun(t, "verifier", "secret", "--session", w.sess, "--measurement", meas, "--image", w.shim,
		"--secret", "736869e5-84f0-4973-92ec-06879ce3da0b="+j("pass.txt"), "--out", j("secret.json"))
	mustRun(t, "hostctl", "launch-finish", "--work", w.launchW, "--secret", j("secret.json"))
	w.pkg = j("guest.pkg")
	r = mustRun(t, "hostctl", "export", "--work", w.launchW, "--to", w.pChain, "--root", filepath.Join(w.p, "certs"), "--out", w.pkg)
	if !strings.Contains(r.Stdout, "exported:") {
		return nil, fmt.Errorf("export: %s", r)
	}
	return w, nil
}
