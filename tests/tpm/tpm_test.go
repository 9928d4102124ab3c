// Package tpm holds the integration tests of the shim's measured boot (docs/tpm.md): real QEMU
// (TCG) with tpm-crb, real swtpm processes started and stopped by the test, the real shim and
// Debian's OVMF, and the attest package reading PCRs and a quote with go-tpm.
//
// Flow: swtpm A + QEMU A boot the shim to READY; A is migrated over a unix socket into QEMU B
// (same devices: tpm-crb with its own swtpm B; the TPM state travels in the stream); B gets a
// bundle, the shim extends PCR 15 with the event of docs/formats.md section 7 and hands off;
// OVMF boots to BdsDxe. Then QEMU B is SIGKILLed (so it sends swtpm no shutdown/init), the test
// installs its own data channel in swtpm B (CMD_SET_DATAFD) and attest reads every bank of
// PCR 15 and a quote, which must equal tpmevent.Replay of the accepted bundle.
//
// Missing prerequisites fail with what to do; SEVSHIM_ALLOW_SKIP=1 skips instead.
package tpm

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/sevshim/sevshim/pkg/format/console"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sevshim/sevshim/pkg/attest"
	"github.com/sevshim/sevshim/pkg/format/layout"
	"github.com/sevshim/sevshim/pkg/format/manifest"
	"github.com/sevshim/sevshim/pkg/format/policy"
	"github.com/sevshim/sevshim/pkg/format/shimerr"
	"github.com/sevshim/sevshim/pkg/format/tpmevent"
	"github.com/sevshim/sevshim/pkg/host"
	"github.com/sevshim/sevshim/pkg/vmm/qemu"
	"github.com/sevshim/sevshim/tests/harness"
	"github.com/sevshim/sevshim/tests/harness/repo"
	verifiercli "github.com/sevshim/sevshim/verifier/cli"
)

const (
	pcrIndex = 15 // OVMF measures into 0-7 only
	memMiB   = 256
	stepTO   = harness.StepTimeout
	ovmfTO   = harness.OVMFTimeout
)

var (
	reOutcome = harness.OutcomeRE
	reTPM     = regexp.MustCompile(`^SEVSHIM TPM `)
	reBds     = harness.BdsRE
)

type bundle = harness.Bundle

// fixture: the harness's trusted key, bundles v5 and v6, and one shim per TPM mode.
type fixture struct {
	fx     *harness.Fixture
	keyID  [48]byte
	v5, v6 *bundle
	shim   map[uint8]*harness.Shim // by TPM mode
	polDig map[uint8][48]byte      // SHA-384 of the policy block, by TPM mode
	vars   [48]byte                // SHA-384 of the var store B programs (Debian's OVMF_VARS_4M.fd)
}

func TestMain(m *testing.M) { harness.Main(m) }

func getFixture(t *testing.T) *fixture {
	t.Helper()
	fx := harness.Fixtures(t, "swtpm")
	// harness chains give B a copy of Debian's var store as pflash1 and vars
	f := &fixture{fx: fx, keyID: fx.KeyID, v5: fx.Bundle(t, "ovmf-v5"), v6: fx.Bundle(t, "ovmf-v6"),
		shim: map[uint8]*harness.Shim{}, polDig: map[uint8][48]byte{}, vars: fx.VarsSHA}
	for _, mode := range []uint8{policy.TPMIfPresent, policy.TPMRequired} {
		pol := fx.Policy() // B gets its pflash1 store as opt/org.sevshim/vars (vars: any)
		pol.TPMMode, pol.TPMPCR = mode, pcrIndex
		f.shim[mode] = fx.Shim(t, pol)
		f.polDig[mode] = attest.PolicyDigest(f.shim[mode].Encoded)
	}
	return f
}

// startSwtpm is harness.StartSwtpm with the swtpm hostctl runs (host.SwtpmCommand).
func startSwtpm(t *testing.T, name string) *harness.Swtpm {
	return harness.StartSwtpm(t, name, host.SwtpmCommand)
}

// startChain: A (with its own swtpm if withTPM) to READY, migrated into B (with swtpm B),
// resumed with bundle bd. Returns B and swtpm B (nil without TPM).
func startChain(t *testing.T, f *fixture, shim *harness.Shim, bd *bundle, withTPM bool) (*qemu.VM, *harness.Swtpm) {
	t.Helper()
	var extraA, extraB []string
	var swB *harness.Swtpm
	if withTPM {
		extraA = qemu.TPMArgs(startSwtpm(t, "A").Ctrl)
		swB = startSwtpm(t, "B")
		extraB = qemu.TPMArgs(swB.Ctrl)
	}
	b := f.fx.Chain(t, harness.ChainSpec{Shim: shim, Bundle: bd, MemoryMiB: memMiB, ExtraA: extraA, ExtraB: extraB})
	return b.VM, swB
}

// killB ends QEMU B with SIGKILL (no CMD_SHUTDOWN to swtpm) and waits for it.
func killB(t *testing.T, b *qemu.VM) {
	t.Helper()
	if err := syscall.Kill(b.Pid(), syscall.SIGKILL); err != nil {
		t.Fatalf("SIGKILL QEMU B (pid %d): %v", b.Pid(), err)
	}
	select {
	case <-b.Exited():
	case <-time.After(15 * time.Second):
		t.Fatalf("QEMU B (pid %d) still alive after SIGKILL", b.Pid())
	}
}

// TestMeasuredBoot: bundle v5 and bundle v6 each boot OVMF with the shim's event in PCR 15;
// every active bank and a fresh quote equal the replay of the accepted bundle, and the two
// bundles give different values.
func TestMeasuredBoot(t *testing.T) {
	f := getFixture(t)
	got := map[uint64][]byte{}
	for _, bd := range []*bundle{f.v5, f.v6} {
		bd := bd
		t.Run(fmt.Sprintf("v%d", bd.Version), func(t *testing.T) {
			b, sw := startChain(t, f, f.shim[policy.TPMIfPresent], bd, true)
			dbg := b.Debugcon()
			tl := harness.WaitLine(t, dbg, reTPM, stepTO)
			if !strings.HasPrefix(tl.Text, fmt.Sprintf("SEVSHIM TPM extended pcr=%d banks=", pcrIndex)) {
				t.Fatalf("TPM line %q", tl.Text)
			}
			if out := harness.WaitLine(t, dbg, reOutcome, stepTO); out.Text != "SEVSHIM HANDOFF" {
				t.Fatalf("outcome %q", out.Text)
			}
			vl := harness.WaitLine(t, dbg, console.VerifiedRE, time.Second)
			t.Logf("VERIFIED->TPM extended <= %v (%s)", tl.Time.Sub(vl.Time).Round(time.Millisecond), tl.Text)
			harness.WaitLine(t, b.Serial(), reBds, ovmfTO)
			time.Sleep(2 * time.Second) // let OVMF's own TPM traffic settle
			killB(t, b)

			tpm, err := attest.DialSwtpm(sw.Ctrl, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer tpm.Close()
			nonce := make([]byte, 32)
			rand.Read(nonce)
			t0 := time.Now()
			ev, err := attest.Read(tpm, pcrIndex, nonce)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("attest.Read (banks, AK, quote) %v", time.Since(t0).Round(time.Millisecond))
			event := (&tpmevent.Event{Layout: layout.OVMF4M, BIOSVersion: bd.Version, SignerKeyID: f.keyID,
				BIOSDigest: bd.Digest, PolicyDigest: f.polDig[policy.TPMIfPresent], VarStore: true, VarsDigest: f.vars}).Marshal()
			if err := attest.Verify(ev, event); err != nil {
				t.Fatal(err)
			}
			for h, v := range ev.Values {
				t.Logf("PCR %d %v = %x", pcrIndex, h, v)
			}
			if _, ok := ev.Values[crypto.SHA256]; !ok {
				t.Fatalf("no SHA-256 bank")
			}
			got[bd.Version] = ev.Values[crypto.SHA256]
			// the other bundle's event must not match
			other := f.v6
			if bd.Version == 6 {
				other = f.v5
			}
			wrong := (&tpmevent.Event{Layout: layout.OVMF4M, BIOSVersion: other.Version, SignerKeyID: f.keyID,
				BIOSDigest: other.Digest, PolicyDigest: f.polDig[policy.TPMIfPresent], VarStore: true, VarsDigest: f.vars}).Marshal()
			if err := attest.Verify(ev, wrong); err == nil {
				t.Fatalf("evidence of v%d also verifies as v%d", bd.Version, other.Version)
			}
			// the same bundle without the var store, or with another one, must not match either
			for _, vs := range []tpmevent.Event{{}, {VarStore: true, VarsDigest: sha512.Sum384([]byte("other"))}} {
				e := tpmevent.Event{Layout: layout.OVMF4M, BIOSVersion: bd.Version, SignerKeyID: f.keyID,
					BIOSDigest: bd.Digest, PolicyDigest: f.polDig[policy.TPMIfPresent], VarStore: vs.VarStore, VarsDigest: vs.VarsDigest}
				if err := attest.Verify(ev, e.Marshal()); err == nil {
					t.Fatalf("evidence verifies with var store %v %x", vs.VarStore, vs.VarsDigest[:4])
				}
			}
			checkVerifierAttest(t, f, ev, bd, other, nonce)
		})
	}
	if a, b := got[5], got[6]; a != nil && b != nil && string(a) == string(b) {
		t.Fatalf("v5 and v6 gave the same PCR value %x", a)
	}
}

// TestTPMRequiredAbsent: tpm_mode required and no TPM device: E070 before the flash is touched.
// E070 comes after the verification (docs/formats.md section 7): VERIFIED first, then the
// error, HALT last; never FLASHED or HANDOFF, and OVMF never prints (checked after a grace).
func TestTPMRequiredAbsent(t *testing.T) {
	f := getFixture(t)
	b, _ := startChain(t, f, f.shim[policy.TPMRequired], f.v5, false)
	harness.AssertRefused(t, b, shimerr.TPMMissing, true)
}

// TestTPMIfPresentAbsent: tpm_mode if-present and no TPM device: the shim says so and boots.
func TestTPMIfPresentAbsent(t *testing.T) {
	f := getFixture(t)
	b, _ := startChain(t, f, f.shim[policy.TPMIfPresent], f.v5, false)
	dbg := b.Debugcon()
	if tl := harness.WaitLine(t, dbg, reTPM, stepTO); tl.Text != "SEVSHIM TPM absent" {
		t.Fatalf("TPM line %q", tl.Text)
	}
	if out := harness.WaitLine(t, dbg, reOutcome, stepTO); out.Text != "SEVSHIM HANDOFF" {
		t.Fatalf("outcome %q", out.Text)
	}
	harness.WaitLine(t, b.Serial(), reBds, ovmfTO)
}

// checkVerifierAttest runs the owner's CLI, `verifier attest`, on the real evidence written as
// the evidence file: OK for the accepted bundle, FAILED for the other bundle and a wrong nonce.
func checkVerifierAttest(t *testing.T, f *fixture, ev *attest.Evidence, good, other *bundle, nonce []byte) {
	t.Helper()
	dir := t.TempDir()
	evb, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	evPath := filepath.Join(dir, "evidence.json")
	if err := os.WriteFile(evPath, evb, 0o600); err != nil {
		t.Fatal(err)
	}
	writeBundle := func(bd *bundle) string {
		man, err1 := os.ReadFile(bd.Manifest)
		img, err2 := os.ReadFile(bd.Image)
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		p := filepath.Join(dir, fmt.Sprintf("v%d.bundle", bd.Version))
		if err := manifest.WriteBundle(p, man, img); err != nil {
			t.Fatal(err)
		}
		return p
	}
	run := func(bundlePath, nonceHex string) (int, string) {
		var out, errb strings.Builder
		code := verifiercli.Main(context.Background(), []string{"attest", "--evidence", evPath,
			"--image", f.shim[policy.TPMIfPresent].Path, "--bundle", bundlePath, "--nonce", nonceHex, "--vars", repo.OVMFVars()}, &out, &errb)
		return code, out.String() + errb.String()
	}
	nh := hex.EncodeToString(nonce)
	if code, out := run(writeBundle(good), nh); code != 0 || !strings.Contains(out, "attestation OK") {
		t.Fatalf("verifier attest on the accepted bundle: exit %d\n%s", code, out)
	}
	if code, out := run(writeBundle(other), nh); code != 1 || !strings.Contains(out, "attestation FAILED") {
		t.Fatalf("verifier attest on the other bundle: exit %d\n%s", code, out)
	}
	if code, out := run(writeBundle(good), "00"+nh[2:]); code != 1 || !strings.Contains(out, "nonce") {
		t.Fatalf("verifier attest with a wrong nonce: exit %d\n%s", code, out)
	}
}
