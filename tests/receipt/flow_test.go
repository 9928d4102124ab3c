package receipt

// flow_test.go: the owner -> provider flow with the real CLIs. The owner launches the demo shim
// with a secret that carries a receipt key (`verifier secret --new-receipt-key`) and exports it;
// the provider receives the package with the owner's nonces (`hostctl receive --nonce`); the
// owner checks the receipts with `verifier receipt`. A second package is launched without a
// receipt key.

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sevshim/sevshim/pkg/format/receipt"
	"github.com/sevshim/sevshim/tests/harness"
)

// The shared CLI harness (tests/harness), under the names these tests use.
var (
	cli            *harness.CLIs // harness.CLI, once prereq ran
	binDir, images string        // cli.Bin and cli.Images, once prereq ran
)

type result = harness.Result

func track(dir string) string { return cli.Track(dir) }
func killWork(d string)       { cli.KillWork(d) }

// prereq builds the CLIs and checks QEMU, OVMF and the demo images.
func prereq(t testing.TB) {
	t.Helper()
	cli = harness.CLI(t)
	cli.Require(t)
	binDir, images = cli.Bin, cli.Images
}

// run runs one of the CLIs, bounded to 5 minutes.
func run(t testing.TB, tool string, args ...string) result {
	t.Helper()
	return cli.Run(t, nil, tool, args...)
}

func mustRun(t testing.TB, tool string, args ...string) result {
	t.Helper()
	return cli.MustRun(t, tool, args...)
}

// flowWorld: platforms, two exported packages (with and without a receipt key), bundles.
type flowWorld struct {
	dir, p, pChain, shim, sess, key string
	pkg, pkgNoKey                   string
	v4, v5, v6, v6BadSig            string
}

var fwOnce harness.Once[flowWorld]

func getFlowWorld(t *testing.T) *flowWorld {
	t.Helper()
	prereq(t)
	return fwOnce.Get(t, "fixture", func() (*flowWorld, error) { return makeFlowWorld(t) })
}

func makeFlowWorld(t testing.TB) (*flowWorld, error) {
	w := &flowWorld{dir: filepath.Join(harness.WorkDir(t), "world")}
	os.MkdirAll(w.dir, 0o700)
	j := func(n string) string { return filepath.Join(w.dir, n) }
	w.p, w.pChain = j("P"), j("provider.chain")
	o, oChain := j("O"), j("owner.chain")
	for _, x := range []struct{ st, ch string }{{w.p, w.pChain}, {o, oChain}} {
		cli.Platform(t, x.st, x.ch)
	}
	w.shim = filepath.Join(images, "shim-demo.fd")
	w.v5, w.v6 = filepath.Join(images, "v5.bundle"), filepath.Join(images, "v6.bundle")
	w.v4 = j("v4.bundle") // a rolled-back BIOS
	cli.SignRolledBack(t, w.v4)
	// v6 with one bit of its signature flipped: hostctl's bundle check (digest) passes, the
	// shim refuses it (E024)
	b, err := os.ReadFile(w.v6)
	if err != nil {
		return nil, err
	}
	b[0x100+5] ^= 0x01
	w.v6BadSig = j("v6-badsig.bundle")
	if err := os.WriteFile(w.v6BadSig, b, 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(j("pass.txt"), []byte("correct horse battery staple"), 0o600); err != nil {
		return nil, err
	}
	// two launches: one whose secret carries a receipt key, one without
	for i, withKey := range []bool{true, false} {
		sess := j(fmt.Sprintf("sess%d", i))
		mustRun(t, "verifier", "session", "--chain", oChain, "--root", filepath.Join(o, "certs"), "--policy", "0x1", "--out", sess)
		a := track(j(fmt.Sprintf("A%d", i)))
		if r := mustRun(t, "hostctl", "launch", "--state", o, "--image", w.shim, "--session", sess, "--work", a); !strings.Contains(r.Stdout, "paused in prelaunch") {
			return nil, fmt.Errorf("launch output: %s", r)
		}
		meas := filepath.Join(a, "measurement.json")
		args := []string{"secret", "--session", sess, "--measurement", meas, "--image", w.shim,
			"--secret", "736869e5-84f0-4973-92ec-06879ce3da0b=" + j("pass.txt"), "--out", j(fmt.Sprintf("secret%d.json", i))}
		if withKey {
			args = append(args, "--new-receipt-key")
		}
		r := mustRun(t, "verifier", args...)
		if withKey != strings.Contains(r.Stdout, "receipt key:") {
			return nil, fmt.Errorf("verifier secret does not say whether it added the receipt key: %s", r)
		}
		mustRun(t, "hostctl", "launch-finish", "--work", a, "--secret", j(fmt.Sprintf("secret%d.json", i)))
		pkg := j(fmt.Sprintf("guest%d.pkg", i))
		if r := mustRun(t, "hostctl", "export", "--work", a, "--to", w.pChain, "--root", filepath.Join(w.p, "certs"), "--out", pkg); !strings.Contains(r.Stdout, "exported:") {
			return nil, fmt.Errorf("export: %s", r)
		}
		killWork(a)
		if withKey {
			w.pkg, w.sess, w.key = pkg, sess, filepath.Join(sess, "receipt.key")
		} else {
			w.pkgNoKey = pkg
		}
	}
	return w, nil
}

func newNonce(t *testing.T) string {
	return hex.EncodeToString(harness.RandBytes(t, receipt.NonceSize))
}

// receive runs hostctl receive (QEMU B stopped at the end) and returns its result, the work
// directory and the receipt line it recorded.
func (w *flowWorld) receive(t *testing.T, pkg, bundle, nonce string) (result, string, string) {
	t.Helper()
	wb := track(filepath.Join(t.TempDir(), "B"))
	t.Cleanup(func() { killWork(wb) })
	args := []string{"receive", "--state", w.p, "--package", pkg, "--bios", bundle, "--work", wb, "--stop"}
	if nonce != "" {
		args = append(args, "--nonce", nonce)
	}
	r := run(t, "hostctl", args...)
	var st struct {
		Receipt string `json:"receipt"`
	}
	b, _ := os.ReadFile(filepath.Join(wb, "receive.json"))
	json.Unmarshal(b, &st)
	if st.Receipt != "" && !strings.Contains(r.Stdout, "receipt: "+st.Receipt+"\n") {
		t.Errorf("hostctl receive did not print the recorded receipt: %s", r)
	}
	return r, wb, st.Receipt
}

func (w *flowWorld) verify(t *testing.T, nonce string, extra ...string) result {
	t.Helper()
	return run(t, "verifier", append([]string{"receipt", "--key", w.key, "--nonce", nonce}, extra...)...)
}

// TestReceiptFlowAcceptV5V6: one package, two receives: v5 and v6 give two valid receipts of
// one key with different bundle digests. Then every forgery of the v6 receipt is refused:
// another key, a flipped bit in each field, the receipt replayed for another nonce, another
// bundle.
func TestReceiptFlowAcceptV5V6(t *testing.T) {
	w := getFlowWorld(t)
	digests := map[string]string{}
	var v6Line, v6Nonce, v6Work string
	for _, c := range []struct{ name, bundle, version string }{{"v5", w.v5, "5"}, {"v6", w.v6, "6"}} {
		nonce := newNonce(t)
		r, wb, line := w.receive(t, w.pkg, c.bundle, nonce)
		if r.Code != 0 || !strings.Contains(r.Stdout, "accepted: version "+c.version) {
			t.Fatalf("receive %s: %s", c.name, r)
		}
		vr := w.verify(t, nonce, "--from", filepath.Join(wb, "receive.json"), "--bundle", c.bundle, "--image", w.shim, "--json")
		var rep struct {
			Status         string `json:"status"`
			ManifestSHA384 string `json:"manifest_sha384"`
			BIOSVersion    uint64 `json:"bios_version"`
		}
		if err := json.Unmarshal([]byte(vr.Stdout), &rep); err != nil || vr.Code != 0 || rep.Status != "OK" {
			t.Fatalf("verifier receipt for %s: %v %s", c.name, err, vr)
		}
		if v, _ := strconv.ParseUint(c.version, 10, 64); rep.BIOSVersion != v {
			t.Errorf("%s: receipt says version %d", c.name, rep.BIOSVersion)
		}
		vt := w.verify(t, nonce, "--from", filepath.Join(wb, "receive.json"))
		if vt.Code != 0 || !strings.HasSuffix(vt.Stdout, "\nreceipt OK\n") {
			t.Errorf("%s: text report: %s", c.name, vt)
		}
		digests[c.name] = rep.ManifestSHA384
		if c.name == "v6" {
			v6Line, v6Nonce, v6Work = line, nonce, wb
		}
	}
	if digests["v5"] == "" || digests["v5"] == digests["v6"] {
		t.Errorf("v5 and v6 receipts name the manifests %q and %q", digests["v5"], digests["v6"])
	}

	// replayed for a new nonce, offered as another bundle, under another key
	if r := w.verify(t, newNonce(t), "--from", filepath.Join(v6Work, "receive.json")); r.Code != 1 || !strings.Contains(r.Stdout, "a replayed receipt") {
		t.Errorf("replayed receipt: %s", r)
	}
	if r := w.verify(t, v6Nonce, "--receipt", v6Line, "--bundle", w.v5); r.Code != 1 || strings.Contains(r.Stdout, "receipt OK") {
		t.Errorf("v6 receipt as v5: %s", r)
	}
	other := filepath.Join(t.TempDir(), "other.key")
	os.WriteFile(other, harness.RandBytes(t, receipt.KeySize), 0o600)
	if r := run(t, "verifier", "receipt", "--key", other, "--nonce", v6Nonce, "--receipt", v6Line); r.Code != 1 || !strings.Contains(r.Stdout, "MAC does not verify") {
		t.Errorf("another key: %s", r)
	}
	// a flipped bit in each field of the real receipt (and in its MAC)
	blob, err := receipt.ParseHex(v6Line)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		name string
		off  int
	}{{"magic", 0}, {"version", 0x08}, {"shim format", 0x0A}, {"verdict", 0x0C}, {"flags", 0x0E}, {"nonce", 0x10},
		{"bios version", 0x30}, {"manifest", 0x38}, {"signer", 0x68}, {"image", 0x98}, {"vars", 0xC8}, {"policy", 0xF8}, {"mac", 0x128}} {
		b := bytes.Clone(blob)
		b[f.off] ^= 0x01
		if r := w.verify(t, v6Nonce, "--receipt", receipt.Line(b)); r.Code != 1 || !strings.Contains(r.Stdout, "MAC does not verify") {
			t.Errorf("flipped %s bit: %s", f.name, r)
		}
	}
}

// TestReceiptFlowRefusals: the v4 rollback (E034) and a bad signature (E024) give authentic
// refusal receipts: exit 2, never "receipt OK", even with --bundle of the refused bundle.
func TestReceiptFlowRefusals(t *testing.T) {
	w := getFlowWorld(t)
	for _, c := range []struct {
		name, bundle, want string
	}{{"E034", w.v4, "E034 version-below-floor"}, {"E024", w.v6BadSig, "E024 bad-signature"}} {
		nonce := newNonce(t)
		r, wb, _ := w.receive(t, w.pkg, c.bundle, nonce)
		if r.Code != 3 || !strings.Contains(r.Stdout, "refused: "+c.want) {
			t.Fatalf("receive %s: %s", c.name, r)
		}
		for _, extra := range [][]string{nil, {"--bundle", c.bundle}} {
			vr := w.verify(t, nonce, append([]string{"--from", filepath.Join(wb, "receive.json")}, extra...)...)
			if vr.Code != 2 || !strings.Contains(vr.Stdout, "\nauthentic refusal "+c.want+"\n") || strings.Contains(vr.Stdout, "receipt OK") {
				t.Errorf("%s receipt %v: %s", c.name, extra, vr)
			}
		}
	}
}

// TestReceiptFlowNoKey: a package launched without a receipt key: the shim accepts v6 and says
// `SEVSHIM RECEIPT none`; verifier receipt refuses.
func TestReceiptFlowNoKey(t *testing.T) {
	w := getFlowWorld(t)
	nonce := newNonce(t)
	r, wb, line := w.receive(t, w.pkgNoKey, w.v6, nonce)
	if r.Code != 0 || line != receipt.NoneLine {
		t.Fatalf("receive without a receipt key: receipt %q: %s", line, r)
	}
	if vr := w.verify(t, nonce, "--from", filepath.Join(wb, "receive.json")); vr.Code != 1 || !strings.Contains(vr.Stdout, "SEVSHIM RECEIPT none") {
		t.Errorf("verifier receipt on none: %s", vr)
	}
}
