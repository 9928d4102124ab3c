package receipt

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"

	"github.com/sevshim/sevshim/pkg/attest"
	"github.com/sevshim/sevshim/pkg/format/manifest"
	"github.com/sevshim/sevshim/pkg/format/receipt"
	"github.com/sevshim/sevshim/pkg/format/shimerr"
	"github.com/sevshim/sevshim/pkg/format/shimimage"
	"github.com/sevshim/sevshim/pkg/host"
	"github.com/sevshim/sevshim/tests/harness"
	"github.com/sevshim/sevshim/tests/harness/repo"
)

// startBareSwtpm runs a fresh swtpm owned by the test (SIGKILLed with it and by pid in Cleanup)
// and initialises it (CMD_INIT, as QEMU would): a TPM no shim and no QEMU ever touched.
func startBareSwtpm(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	ctrl := filepath.Join(dir, "ctrl.sock")
	cmd := host.SwtpmCommand("swtpm", dir, ctrl, filepath.Join(dir, "log"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting swtpm: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Errorf("swtpm (pid %d) did not exit after SIGKILL", cmd.Process.Pid)
		}
	})
	var c net.Conn
	var err error
	for end := time.Now().Add(10 * time.Second); ; {
		if c, err = net.Dial("unix", ctrl); err == nil {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("swtpm control socket: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// swtpm's control channel: CMD_INIT = 2 with 4 bytes of flags; the answer is a u32 result
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write(binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, 2), 0))
	var res [4]byte
	if _, err := io.ReadFull(c, res[:]); err != nil || binary.BigEndian.Uint32(res[:]) != 0 {
		t.Fatalf("swtpm CMD_INIT: %v %x", err, res)
	}
	c.Close()
	return ctrl
}

// TestProviderForgesTPMButNotReceipt is the attack of the issue, reproduced: the provider
// starts a fresh swtpm, sends TPM2_PCR_Event with the event the shim would record for v6 and
// quotes it. No shim and no QEMU ever ran, yet `verifier attest` checks out. What it must do is
// say that this proves only what the provider's TPM holds, and point at the receipt; and the
// same provider, without the owner's key, cannot make a receipt `verifier receipt` accepts:
// not with its own key, not by relabelling an authentic refusal as an acceptance.
func TestProviderForgesTPMButNotReceipt(t *testing.T) {
	prereq(t)
	harness.RequireChain(t, "swtpm")
	dir := t.TempDir()
	shim, v6 := filepath.Join(images, "shim-demo.fd"), filepath.Join(images, "v6.bundle")
	img, err := os.ReadFile(shim)
	if err != nil {
		t.Fatal(err)
	}
	man, _, _, err := manifest.ReadBundle(v6)
	if err != nil {
		t.Fatal(err)
	}
	vars := fileDigest(t, repo.OVMFVars()) // the one store the demo policy allows
	x, err := attest.EventFor(img, man, &vars)
	if err != nil || x.Mode == 0 {
		t.Fatalf("the demo shim records no TPM event: %v", err)
	}

	// the provider's forgery, with its own TPM
	tpm, err := attest.DialSwtpm(startBareSwtpm(t), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer tpm.Close()
	if _, err := (tpm2.Startup{StartupType: tpm2.TPMSUClear}).Execute(tpm); err != nil {
		t.Fatal(err)
	}
	if _, err := (tpm2.PCREvent{PCRHandle: tpm2.AuthHandle{Handle: tpm2.TPMHandle(x.PCR), Auth: tpm2.PasswordAuth(nil)},
		EventData: tpm2.TPM2BEvent{Buffer: x.Event}}).Execute(tpm); err != nil {
		t.Fatal(err)
	}
	nonce := harness.RandBytes(t, receipt.NonceSize)
	ev, err := attest.Read(tpm, x.PCR, nonce)
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(ev)
	evPath := filepath.Join(dir, "evidence.json")
	os.WriteFile(evPath, js, 0o600)
	r := run(t, "verifier", "attest", "--evidence", evPath, "--image", shim, "--bundle", v6, "--nonce", hex.EncodeToString(nonce))
	if r.Code != 0 || !strings.Contains(r.Stdout, "attestation OK") {
		t.Fatalf("the forged TPM evidence should pass the TPM check (that is the point): %s", r)
	}
	if !strings.Contains(r.Stdout, "no proof against the provider") || !strings.Contains(r.Stdout, "verifier receipt") {
		t.Errorf("verifier attest presents a quote of the provider's own TPM as proof: %s", r)
	}

	// the same provider tries to make a receipt: it has everything but the owner's key
	ownerKey := filepath.Join(dir, "owner.key")
	os.WriteFile(ownerKey, harness.RandBytes(t, receipt.KeySize), 0o600)
	mi, _ := receipt.ManifestInfo(man)
	block, _, err := shimimage.ExtractPolicy(img)
	if err != nil {
		t.Fatal(err)
	}
	pd := attest.PolicyDigest(block)
	var n [receipt.NonceSize]byte
	copy(n[:], nonce)
	imgDigest := mi.Digest // any digest: the MAC fails first
	forged, err := receipt.Seal(harness.RandBytes(t, receipt.KeySize), &receipt.Receipt{ShimFormat: 1, Nonce: &n, Manifest: mi, Image: &imgDigest, Policy: &pd})
	if err != nil {
		t.Fatal(err)
	}
	vr := run(t, "verifier", "receipt", "--key", ownerKey, "--nonce", hex.EncodeToString(nonce), "--receipt", receipt.Line(forged), "--bundle", v6, "--image", shim)
	if vr.Code != 1 || !strings.Contains(vr.Stdout, "MAC does not verify") {
		t.Errorf("a receipt made with the provider's key: %s", vr)
	}
	// an authentic refusal, its verdict rewritten to OK
	key, _ := os.ReadFile(ownerKey)
	refusal, _ := receipt.Seal(key, &receipt.Receipt{ShimFormat: 1, Verdict: shimerr.VersionBelowFloor, Nonce: &n, Manifest: mi, Image: &imgDigest, Policy: &pd})
	if vr := run(t, "verifier", "receipt", "--key", ownerKey, "--nonce", hex.EncodeToString(nonce), "--receipt", receipt.Line(refusal)); vr.Code != 2 {
		t.Errorf("the authentic refusal: %s", vr)
	}
	relabelled := bytes.Clone(refusal)
	binary.LittleEndian.PutUint16(relabelled[0x0C:], 0)
	if vr := run(t, "verifier", "receipt", "--key", ownerKey, "--nonce", hex.EncodeToString(nonce), "--receipt", receipt.Line(relabelled)); vr.Code != 1 || strings.Contains(vr.Stdout, "receipt OK") {
		t.Errorf("a refusal relabelled as acceptance: %s", vr)
	}
}
