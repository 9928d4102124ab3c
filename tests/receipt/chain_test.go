// Package receipt holds the integration tests of the shim's receipt (docs/formats.md section
// 9): real QEMU (TCG), the real shim (build/shim/shim.fd), Debian's OVMF, the project's test
// BIOS, and for the owner/provider flow the real CLIs (hostctl, verifier, builder) with emulated
// PSPs. Nothing is simulated.
//
// chain_test.go runs QEMU A -> QEMU B directly (as tests/secret does): A boots the shim with an
// EFI secret table holding a receipt key (placed at the secret area by `-device loader` from a
// memfd), B gets the bundle and the owner's nonce by fw_cfg and is woken. The receipt line is
// checked with package receipt and all guest RAM is searched for the key.
//
// Missing prerequisites fail the tests with what to do; SEVSHIM_ALLOW_SKIP=1 skips instead.
package receipt

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sevshim/sevshim/pkg/format/manifest"
	"github.com/sevshim/sevshim/pkg/format/receipt"
	"github.com/sevshim/sevshim/pkg/format/shimerr"
	"github.com/sevshim/sevshim/pkg/sev"
	"github.com/sevshim/sevshim/pkg/vmm/qemu"
	"github.com/sevshim/sevshim/tests/harness"
	"github.com/sevshim/sevshim/tests/harness/repo"
)

const (
	memMiB        = 256
	secretGPA     = 0x80000 // the shim's secret area (its footer entry)
	testBIOSBlock = 0x80C000
	stepTO        = harness.StepTimeout
	ovmfTO        = harness.OVMFTimeout
)

var (
	reOutcome  = regexp.MustCompile(`^SEVSHIM (ERROR .*|HANDOFF)$`)
	reReceipt  = receipt.LineRegexp()
	reHalt     = harness.HaltRE
	reSecret   = regexp.MustCompile(`^SEVSHIM SECRET `)
	reTBSecret = regexp.MustCompile(`^TESTBIOS SECRET `)
)

// chainFixture: the harness's trusted key (floor 5 here), a shim with secret: optional and
// TPM off, and the bundles the tests offer (by harness catalogue name).
type chainFixture struct {
	fx        *harness.Fixture
	shim      *harness.Shim
	policyDig [48]byte
	testBIOS  string
	manifests map[string]string // name -> manifest file; images in images
	images    map[string]string
}

func getChainFixture(t testing.TB) *chainFixture {
	t.Helper()
	fx := harness.Fixtures(t)
	f := &chainFixture{fx: fx, manifests: map[string]string{}, images: map[string]string{}}
	for _, name := range []string{"testbios-v7", "ovmf-v5", "ovmf-v4"} {
		b := fx.Bundle(t, name)
		f.manifests[name], f.images[name] = b.Manifest, b.Image
	}
	f.testBIOS = f.images["testbios-v7"]
	// the chain hands B a copy of Debian's var store: the fixture policy takes any
	pol := fx.Policy()
	pol.Signers[0].MinVersion = 5
	f.shim = fx.Shim(t, pol)
	f.policyDig = f.shim.PolicyDigest
	return f
}

// owner is an owner's secret: a passphrase, the receipt key and one more entry.
type owner struct {
	key, pass, other []byte
	table            []byte // as LAUNCH_SECRET places it
	withoutKey       []byte // what the BIOS must get: the same table without the key entry
}

func newOwner(t testing.TB, keyLen int) owner {
	t.Helper()
	o := owner{key: harness.RandBytes(t, keyLen), pass: harness.RandBytes(t, 40), other: harness.RandBytes(t, 72)}
	ents := []sev.SecretEntry{{GUID: sev.DiskPassphraseID, Data: o.pass}, {GUID: receipt.KeyGUID, Data: o.key},
		{GUID: sev.MustGUID("e6f5a162-d67f-4750-a67c-5d065f2a9910"), Data: o.other}}
	var err error
	if o.table, err = (&sev.SecretTable{Entries: ents}).Marshal(); err != nil {
		t.Fatal(err)
	}
	if o.withoutKey, err = (&sev.SecretTable{Entries: []sev.SecretEntry{ents[0], ents[2]}}).Marshal(); err != nil {
		t.Fatal(err)
	}
	return o
}

type chainRun struct {
	manifest string // fixture name
	secret   []byte
	nonce    []byte // nil: no nonce file
}

func startChain(t testing.TB, f *chainFixture, r chainRun) *qemu.VM {
	t.Helper()
	var b []string
	if r.nonce != nil {
		p := filepath.Join(t.TempDir(), "nonce")
		if err := os.WriteFile(p, r.nonce, 0o600); err != nil {
			t.Fatal(err)
		}
		b = []string{"-fw_cfg", "name=" + manifest.FwCfgNonce + ",file=" + p}
	}
	return f.fx.Chain(t, harness.ChainSpec{Shim: f.shim, Manifest: f.manifests[r.manifest], Image: f.images[r.manifest],
		MemoryMiB: memMiB, ExtraA: harness.SecretLoader(t, r.secret, secretGPA), ExtraB: b}).VM
}

// hmacStates are the SHA-384 chaining values after the key XOR ipad / opad block: with either
// of them, receipts can be forged as with the key itself. Returned as the 64 bytes BearSSL keeps
// (uint64 words, little-endian) and big-endian.
func hmacStates(t *testing.T, key []byte) [][]byte {
	t.Helper()
	var out [][]byte
	for _, pad := range []byte{0x36, 0x5c} {
		blk := make([]byte, 128)
		copy(blk, key)
		for i := range blk {
			blk[i] ^= pad
		}
		h := sha512.New384()
		h.Write(blk)
		st, err := h.(encoding.BinaryMarshaler).MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		be := st[4 : 4+64] // after the 4-byte magic: h[0..7], big-endian
		le := make([]byte, 64)
		for w := 0; w < 8; w++ {
			for i := 0; i < 8; i++ {
				le[8*w+i] = be[8*w+7-i]
			}
		}
		out = append(out, bytes.Clone(be), le)
	}
	return out
}

// assertKeyGone: no 16-byte piece of the key, nor of an HMAC state derived from it, is
// anywhere in RAM; the shim's secret page is zero.
func assertKeyGone(t *testing.T, ram, key []byte) {
	t.Helper()
	for i := 0; i+16 <= len(key); i += 8 {
		if at := bytes.Index(ram, key[i:i+16]); at >= 0 {
			t.Errorf("receipt key bytes [%d:%d] found in guest RAM at %#x", i, i+16, at)
		}
	}
	for n, s := range hmacStates(t, key) {
		for i := 0; i+16 <= len(s); i += 16 {
			if at := bytes.Index(ram, s[i:i+16]); at >= 0 {
				t.Errorf("HMAC state %d bytes [%d:%d] found in guest RAM at %#x", n, i, i+16, at)
			}
		}
	}
	if !bytes.Equal(ram[secretGPA:secretGPA+0x1000], make([]byte, 0x1000)) {
		t.Errorf("the shim's secret page is not zero")
	}
}

// openLine checks the shim's receipt line under key.
func openLine(t *testing.T, line string, key []byte) *receipt.Receipt {
	t.Helper()
	blob, err := receipt.ParseHex(line)
	if err != nil {
		t.Fatalf("receipt line %q: %v", line, err)
	}
	r, err := receipt.Open(key, blob)
	if err != nil {
		t.Fatalf("receipt: %v", err)
	}
	return r
}

func fileDigest(t *testing.T, p string) [48]byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha512.Sum384(b)
}

// assertNothingAfterRefusal: no FLASHED / HANDOFF / SECRET / BIOS line on debugcon, nothing but
// shim lines on COM1 (OVMF never printed).
func assertNothingAfterRefusal(t *testing.T, b *qemu.VM) { t.Helper(); harness.AssertNoBIOSRan(t, b) }

// refusedRun runs r, requires the outcome line want's ERROR line, waits for the receipt line
// (returned) and the HALT, and checks that nothing ran after the refusal.
func refusedRun(t *testing.T, f *chainFixture, r chainRun, want shimerr.Code) (*qemu.VM, qemu.Line) {
	t.Helper()
	b := startChain(t, f, r)
	dbg := b.Debugcon()
	if out := harness.WaitLine(t, dbg, reOutcome, stepTO); out.Text != want.Line() {
		t.Fatalf("outcome %q", out.Text)
	}
	rl := harness.WaitLine(t, dbg, reReceipt, stepTO)
	harness.WaitLine(t, dbg, reHalt, stepTO)
	assertNothingAfterRefusal(t, b)
	return b, rl
}

// TestReceiptHandOffTestBIOS: the key arrives in the middle of the owner's table. The shim
// hands the test BIOS the table without the key (the test BIOS reports the SHA-256 of what it
// got), prints an OK receipt for the nonce, the manifest, the image, the var store and the
// policy, and at HANDOFF (VM stopped before the BIOS runs) and after the BIOS ran, no piece of
// the key or of its HMAC states is anywhere in guest RAM.
func TestReceiptHandOffTestBIOS(t *testing.T) {
	f := getChainFixture(t)
	o := newOwner(t, receipt.KeySize)
	nonce := harness.RandBytes(t, receipt.NonceSize)
	b := startChain(t, f, chainRun{manifest: "testbios-v7", secret: o.table, nonce: nonce})
	dbg := b.Debugcon()
	total := int(uint32(o.withoutKey[16]) | uint32(o.withoutKey[17])<<8)
	if sl := harness.WaitLine(t, dbg, reSecret, stepTO); sl.Text != fmt.Sprintf("SEVSHIM SECRET handed-off bytes=%d base=0x%016x", total, testBIOSBlock) {
		t.Fatalf("secret line %q (want the table without the key: %d bytes)", sl.Text, total)
	}
	rl := harness.WaitLine(t, dbg, reReceipt, stepTO)
	if out := harness.WaitLine(t, dbg, reOutcome, stepTO); out.Text != "SEVSHIM HANDOFF" {
		t.Fatalf("outcome %q", out.Text)
	}
	ctx := context.Background()
	if err := b.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	assertKeyGone(t, harness.DumpRAM(t, b, memMiB), o.key)
	if err := b.Resume(ctx); err != nil {
		t.Fatal(err)
	}

	r := openLine(t, rl.Text, o.key)
	man, _ := os.ReadFile(f.manifests["testbios-v7"])
	mi, _ := receipt.ManifestInfo(man)
	img := fileDigest(t, f.testBIOS)
	vars := fileDigest(t, repo.OVMFVars())
	switch {
	case !r.Accepted():
		t.Errorf("verdict %s", r.Verdict)
	case r.Nonce == nil || !bytes.Equal(r.Nonce[:], nonce):
		t.Errorf("nonce %x, want %x", r.Nonce, nonce)
	case r.Manifest == nil || *r.Manifest != *mi:
		t.Errorf("manifest %+v, want %+v", r.Manifest, mi)
	case r.Image == nil || *r.Image != img:
		t.Errorf("image digest %x", r.Image)
	case r.Vars == nil || *r.Vars != vars:
		t.Errorf("vars digest %x, want %x", r.Vars, vars)
	case r.Policy == nil || *r.Policy != f.policyDig:
		t.Errorf("policy digest %x", r.Policy)
	}
	// console timestamps have the resolution of the pipe reads: bounds, not measurements. The
	// receipt costs: SHA-384 of the var store before LOADED; HMAC + wipes before SECRET.
	lt := func(prefix string) time.Time { return harness.LineTime(t, dbg, prefix) }
	t.Logf("WAKE->LOADED %v, FLASHED->SECRET %v, SECRET->RECEIPT %v, RECEIPT->HANDOFF %v, receipt line %d bytes",
		lt("SEVSHIM LOADED").Sub(lt("SEVSHIM WAKE")), lt("SEVSHIM SECRET").Sub(lt("SEVSHIM FLASHED")),
		lt("SEVSHIM RECEIPT").Sub(lt("SEVSHIM SECRET")), lt("SEVSHIM HANDOFF").Sub(lt("SEVSHIM RECEIPT")), len(rl.Text)+1)
	sum := sha256.Sum256(o.withoutKey[:total])
	want := fmt.Sprintf("TESTBIOS SECRET sha256=%s bytes=%d tail=zero", hex.EncodeToString(sum[:]), total)
	if tb := harness.WaitLine(t, dbg, reTBSecret, ovmfTO); tb.Text != want {
		t.Fatalf("test BIOS says %q, want %q (the table without the receipt key)", tb.Text, want)
	}
	harness.WaitLine(t, dbg, regexp.MustCompile(`^TESTBIOS HALT$`), stepTO)
	ram := harness.DumpRAM(t, b, memMiB)
	assertKeyGone(t, ram, o.key)
	if at := bytes.Index(ram, o.pass); at < testBIOSBlock || at >= testBIOSBlock+0xC00 {
		t.Errorf("the passphrase is at %#x, want it in the BIOS's block", at)
	}
}

// TestReceiptRefusalE034: a rollback below the floor: the refusal receipt says E034 for this
// nonce and what was offered; nothing after the refusal ran; the key is nowhere in RAM.
func TestReceiptRefusalE034(t *testing.T) {
	f := getChainFixture(t)
	o := newOwner(t, receipt.KeySize)
	nonce := harness.RandBytes(t, receipt.NonceSize)
	b, rl := refusedRun(t, f, chainRun{manifest: "ovmf-v4", secret: o.table, nonce: nonce}, shimerr.VersionBelowFloor)
	assertKeyGone(t, harness.DumpRAM(t, b, memMiB), o.key)
	r := openLine(t, rl.Text, o.key)
	man, _ := os.ReadFile(f.manifests["ovmf-v4"])
	mi, _ := receipt.ManifestInfo(man)
	if r.Verdict != shimerr.VersionBelowFloor || r.Accepted() || r.Nonce == nil || !bytes.Equal(r.Nonce[:], nonce) ||
		r.Manifest == nil || *r.Manifest != *mi || r.Manifest.BIOSVersion != 4 || r.Image == nil || r.Policy == nil || *r.Policy != f.policyDig {
		t.Errorf("refusal receipt %+v", r)
	}
}

// TestReceiptKeyEntryInvalid: a key entry of 47 bytes: E065 at wake-up, before fw_cfg is read,
// `SEVSHIM RECEIPT none`, and the 47 bytes are gone from RAM.
func TestReceiptKeyEntryInvalid(t *testing.T) {
	f := getChainFixture(t)
	o := newOwner(t, receipt.KeySize-1)
	b, rl := refusedRun(t, f, chainRun{manifest: "ovmf-v5", secret: o.table, nonce: harness.RandBytes(t, receipt.NonceSize)}, shimerr.ReceiptKeyInvalid)
	if rl.Text != receipt.NoneLine {
		t.Fatalf("receipt line %q, want %q", rl.Text, receipt.NoneLine)
	}
	for _, l := range b.Debugcon().Lines() {
		if strings.HasPrefix(l.Text, "SEVSHIM LOADED") {
			t.Errorf("fw_cfg was read before the refusal: %q", l.Text)
		}
	}
	assertKeyGone(t, harness.DumpRAM(t, b, memMiB), o.key)
}

// TestReceiptNonceInvalid: a 31-byte nonce file: E066 before the bundle is read; the refusal
// receipt is authentic and says "no nonce".
func TestReceiptNonceInvalid(t *testing.T) {
	f := getChainFixture(t)
	o := newOwner(t, receipt.KeySize)
	_, rl := refusedRun(t, f, chainRun{manifest: "ovmf-v5", secret: o.table, nonce: harness.RandBytes(t, receipt.NonceSize-1)}, shimerr.NonceInvalid)
	r := openLine(t, rl.Text, o.key)
	if r.Verdict != shimerr.NonceInvalid || r.Nonce != nil || r.Manifest != nil {
		t.Errorf("receipt %+v", r)
	}
}
