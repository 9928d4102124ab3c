// Package verifier_test runs the owner's side of the flow with the real binaries against a
// real private launch: hostctl starts QEMU A paused with the shim and the emulated PSP
// measures it; verifier checks the measurement, refuses a secret for a wrong image or a
// tampered measurement, and its packet for the right one is accepted by the PSP
// (hostctl launch-finish), after which the shim reaches READY.
package verifier_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sevshim/sevshim/tests/harness/repo"
)

type tools struct{ dir, bin string }

func build(t *testing.T) tools {
	t.Helper()
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := repo.ShimTemplate()
	if err != nil {
		t.Skipf("no shim template (%v): run `make shim` first", err)
	}
	if _, err := os.Stat(tmpl); err != nil {
		t.Skipf("no shim template %s: run `make shim` first", tmpl)
	}
	if _, err := repo.QEMU(); err != nil {
		t.Skipf("no QEMU: %v", err)
	}
	bin := t.TempDir()
	cmd := exec.Command("go", "build", "-o", bin+"/", "./builder", "./verifier", "./hostctl")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return tools{dir: root, bin: bin}
}

// run runs one tool with a bound; it returns stdout+stderr and the exit code.
func (x tools) run(t *testing.T, name string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(x.bin, name), args...)
	cmd.Dir = x.dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return out.String(), code
}

func (x tools) must(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, code := x.run(t, name, args...)
	if code != 0 {
		t.Fatalf("%s %s: exit %d\n%s", name, strings.Join(args, " "), code, out)
	}
	return out
}

func TestOwnerSideOfARealLaunch(t *testing.T) {
	x := build(t)
	tmpl, _ := repo.ShimTemplate()
	d := t.TempDir()
	t.Setenv("SEVSHIM_EMU_ROOT", filepath.Join(d, "root"))
	j := func(p string) string { return filepath.Join(d, p) }

	// a shim image with a minimal policy (a fresh key; nothing is received in this test)
	x.must(t, "builder", "keygen", "--out", j("prov"))
	pol := "layout: ovmf-4m\nsecret: optional\ntpm: off\nsigners:\n  - key: prov.pub\n    min_version: 1\n"
	os.WriteFile(j("policy.yaml"), []byte(pol), 0o644)
	x.must(t, "builder", "build", "--policy", j("policy.yaml"), "--template", tmpl, "--out", j("shim.fd"))

	x.must(t, "hostctl", "platform", "init", "--state", j("owner-psp"))
	x.must(t, "hostctl", "platform", "export", "--state", j("owner-psp"), "--out", j("owner.chain"))
	x.must(t, "verifier", "session", "--chain", j("owner.chain"), "--root", j("root"), "--policy", "0x1", "--out", j("sess"))

	work := j("launch")
	t.Cleanup(func() { x.run(t, "hostctl", "stop", "--work", work) })
	x.must(t, "hostctl", "launch", "--state", j("owner-psp"), "--image", j("shim.fd"), "--session", j("sess"), "--work", work)
	meas := filepath.Join(work, "measurement.json")

	if out := x.must(t, "verifier", "measure", "--session", j("sess"), "--measurement", meas, "--image", j("shim.fd")); !strings.Contains(out, "measurement OK") {
		t.Fatalf("measure:\n%s", out)
	}
	// the template itself (no policy) is not what was launched
	out, code := x.run(t, "verifier", "measure", "--session", j("sess"), "--measurement", meas, "--image", tmpl)
	if code != 1 || !strings.Contains(out, "measurement MISMATCH") {
		t.Fatalf("measure of another image: exit %d\n%s", code, out)
	}

	os.WriteFile(j("pass"), []byte("s3cret"), 0o600)
	sarg := "736869e5-84f0-4973-92ec-06879ce3da0b=" + j("pass")
	// a tampered measured value: verifier refuses to build the secret
	var m map[string]any
	b, _ := os.ReadFile(meas)
	json.Unmarshal(b, &m)
	raw, _ := base64.StdEncoding.DecodeString(m["sev-measurement"].(string))
	raw[3] ^= 0x10
	m["sev-measurement"] = base64.StdEncoding.EncodeToString(raw)
	b, _ = json.Marshal(m)
	os.WriteFile(j("tampered.json"), b, 0o644)
	out, code = x.run(t, "verifier", "secret", "--session", j("sess"), "--measurement", j("tampered.json"), "--image", j("shim.fd"), "--secret", sarg, "--out", j("bad-secret.json"))
	if code != 1 || !strings.Contains(out, "refusing to release the secret") {
		t.Fatalf("secret for a tampered measurement: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(j("bad-secret.json")); err == nil {
		t.Fatal("secret.json written for a tampered measurement")
	}

	// the right one: the PSP accepts the packet and the shim reaches READY
	x.must(t, "verifier", "secret", "--session", j("sess"), "--measurement", meas, "--image", j("shim.fd"), "--secret", sarg, "--out", j("secret.json"))
	out = x.must(t, "hostctl", "launch-finish", "--work", work, "--secret", j("secret.json"))
	if !strings.Contains(out, "READY") {
		t.Fatalf("launch-finish:\n%s", out)
	}
}
