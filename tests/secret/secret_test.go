package secret

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/sevshim/sevshim/pkg/format/policy"
	"github.com/sevshim/sevshim/pkg/format/shimerr"
	"github.com/sevshim/sevshim/pkg/format/shimimage"
	"github.com/sevshim/sevshim/pkg/sev"
	"github.com/sevshim/sevshim/pkg/vmm/qemu"
	"github.com/sevshim/sevshim/tests/harness"
)

const testBIOSBlock = 0x80C000 // tests/testbios/Makefile SECRET_BASE
const testBIOSBlockSize = 0xC00

var (
	reOutcome  = harness.OutcomeRE
	reSecret   = regexp.MustCompile(`^SEVSHIM SECRET `)
	reTBSecret = regexp.MustCompile(`^TESTBIOS SECRET `)
	reBds      = harness.BdsRE
)

// secretTable is an owner's secret: a disk passphrase and a second random entry. value is
// the bytes to hunt for in memory dumps, table the padded table as placed by LAUNCH_SECRET,
// total its header length (what the shim copies).
type secretTable struct {
	value, other []byte
	table        []byte
	total        int
}

func newSecret(t *testing.T) secretTable {
	t.Helper()
	s := secretTable{value: harness.RandBytes(t, 48), other: harness.RandBytes(t, 100)}
	tab := &sev.SecretTable{Entries: []sev.SecretEntry{
		{GUID: sev.DiskPassphraseID, Data: s.value},
		{GUID: sev.MustGUID("e6f5a162-d67f-4750-a67c-5d065f2a9910"), Data: s.other},
	}}
	var err error
	if s.table, err = tab.Marshal(); err != nil {
		t.Fatal(err)
	}
	s.total = int(binary.LittleEndian.Uint32(s.table[16:]))
	return s
}

// occurrences returns every offset (= GPA) of needle in ram.
func occurrences(ram, needle []byte) []int {
	var out []int
	for off := 0; ; {
		i := bytes.Index(ram[off:], needle)
		if i < 0 {
			return out
		}
		out = append(out, off+i)
		off += i + 1
	}
}

// assertNoSecret: neither secret value, nor any 16-byte piece of it, is anywhere in RAM, and
// the shim's secret page is all zero.
func assertNoSecret(t *testing.T, ram []byte, s secretTable) {
	t.Helper()
	for _, v := range [][]byte{s.value, s.other} {
		for i := 0; i+16 <= len(v); i += 16 {
			if at := occurrences(ram, v[i:i+16]); len(at) > 0 {
				t.Errorf("secret bytes [%d:%d] found in guest RAM at %#x", i, i+16, at)
			}
		}
	}
	if page := ram[secretGPA : secretGPA+0x1000]; !bytes.Equal(page, make([]byte, 0x1000)) {
		t.Errorf("the shim's secret page at %#x is not all zero", secretGPA)
	}
}

// TestSecretHandOffTestBIOS: require mode, a secret in A, the test BIOS in B. The shim copies
// the table into the test BIOS's block; the test BIOS's SHA-256 of what it finds equals the
// table's; in all of guest RAM the secret exists exactly once, inside that block.
func TestSecretHandOffTestBIOS(t *testing.T) {
	f := getFixture(t)
	s := newSecret(t)
	b := startChain(t, f, run{shim: f.shim[policy.SecretRequire], secret: s.table, manifest: f.tbManifest, image: f.tbImage})
	dbg := b.Debugcon()
	sl := harness.WaitLine(t, dbg, reSecret, stepTO)
	want := fmt.Sprintf("SEVSHIM SECRET handed-off bytes=%d base=0x%016x", s.total, testBIOSBlock)
	if sl.Text != want {
		t.Fatalf("secret line %q, want %q", sl.Text, want)
	}
	if out := harness.WaitLine(t, dbg, reOutcome, stepTO); out.Text != "SEVSHIM HANDOFF" {
		t.Fatalf("outcome %q", out.Text)
	}
	tb := harness.WaitLine(t, dbg, reTBSecret, ovmfTO)
	sum := sha256.Sum256(s.table[:s.total])
	wantTB := fmt.Sprintf("TESTBIOS SECRET sha256=%s bytes=%d tail=zero", hex.EncodeToString(sum[:]), s.total)
	if tb.Text != wantTB {
		t.Fatalf("test BIOS says %q, want %q", tb.Text, wantTB)
	}
	harness.WaitLine(t, dbg, regexp.MustCompile(`^TESTBIOS HALT$`), stepTO)
	harness.WaitLine(t, b.Serial(), regexp.MustCompile(regexp.QuoteMeta(wantTB)), stepTO)
	// console timestamps have the resolution of the pipe reads: a bound, not a measurement
	t.Logf("FLASHED->SECRET <= %v", sl.Time.Sub(harness.LineTime(t, dbg, "SEVSHIM FLASHED")).Round(time.Microsecond))

	// Key erasure: the secret is in the BIOS's block and nowhere else.
	ram := harness.DumpRAM(t, b, memMiB)
	blockEnd := testBIOSBlock + testBIOSBlockSize
	for _, v := range [][]byte{s.value, s.other} {
		at := occurrences(ram, v)
		if len(at) != 1 || at[0] < testBIOSBlock || at[0]+len(v) > blockEnd {
			t.Errorf("secret value found at %#x, want exactly once inside [%#x, %#x)", at, testBIOSBlock, blockEnd)
		}
		for i := 0; i+16 <= len(v); i += 16 {
			for _, a := range occurrences(ram, v[i:i+16]) {
				if a < testBIOSBlock || a >= blockEnd {
					t.Errorf("secret bytes [%d:%d] also at %#x, outside the block", i, i+16, a)
				}
			}
		}
	}
	if !bytes.Equal(ram[testBIOSBlock:testBIOSBlock+s.total], s.table[:s.total]) {
		t.Errorf("the block does not hold the table")
	}
	if !bytes.Equal(ram[testBIOSBlock+s.total:blockEnd], make([]byte, blockEnd-testBIOSBlock-s.total)) {
		t.Errorf("the rest of the block is not zero")
	}
	if !bytes.Equal(ram[secretGPA:secretGPA+0x1000], make([]byte, 0x1000)) {
		t.Errorf("the shim's secret page is not zero after the hand-off")
	}
}

// TestNoSecretTestBIOS: nothing was injected: the shim says so (not an error) and the test
// BIOS finds no table.
func TestNoSecretTestBIOS(t *testing.T) {
	f := getFixture(t)
	b := startChain(t, f, run{shim: f.shim[policy.SecretRequire], manifest: f.tbManifest, image: f.tbImage})
	dbg := b.Debugcon()
	if sl := harness.WaitLine(t, dbg, reSecret, stepTO); sl.Text != "SEVSHIM SECRET none" {
		t.Fatalf("secret line %q, want SEVSHIM SECRET none", sl.Text)
	}
	if tb := harness.WaitLine(t, dbg, reTBSecret, ovmfTO); tb.Text != "TESTBIOS SECRET absent" {
		t.Fatalf("test BIOS says %q", tb.Text)
	}
}

// TestSecretWipedDebianOVMF: optional mode, Debian's OVMF has no secret block: the shim wipes
// the secret and hands off. RAM is dumped right at HANDOFF (before OVMF can overwrite
// anything) and the secret is nowhere; then OVMF boots on.
func TestSecretWipedDebianOVMF(t *testing.T) {
	f := getFixture(t)
	s := newSecret(t)
	b := startChain(t, f, run{shim: f.shim[policy.SecretOptional], secret: s.table, manifest: f.ovmfManifest, image: f.ovmfCode})
	dbg := b.Debugcon()
	if sl := harness.WaitLine(t, dbg, reSecret, stepTO); sl.Text != "SEVSHIM SECRET wiped" {
		t.Fatalf("secret line %q, want SEVSHIM SECRET wiped", sl.Text)
	}
	if out := harness.WaitLine(t, dbg, reOutcome, stepTO); out.Text != "SEVSHIM HANDOFF" {
		t.Fatalf("outcome %q", out.Text)
	}
	ctx := context.Background()
	if err := b.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	assertNoSecret(t, harness.DumpRAM(t, b, memMiB), s)
	if err := b.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	harness.WaitLine(t, b.Serial(), reBds, ovmfTO)
	assertNoSecret(t, harness.DumpRAM(t, b, memMiB), s)
}

// TestSecretRequireRefusesDebianOVMF: require mode and a BIOS without a block: E060 before
// the flash is touched, the secret wiped, OVMF never runs.
func TestSecretRequireRefusesDebianOVMF(t *testing.T) {
	f := getFixture(t)
	s := newSecret(t)
	b := startChain(t, f, run{shim: f.shim[policy.SecretRequire], secret: s.table, manifest: f.ovmfManifest, image: f.ovmfCode})
	assertRefusedWiped(t, b, shimerr.SecretBlockMissing, s)
}

// TestSecretMalformedRefused: a table whose entry length runs past the total: E064, wiped.
func TestSecretMalformedRefused(t *testing.T) {
	f := getFixture(t)
	s := newSecret(t)
	binary.LittleEndian.PutUint32(s.table[20+16:], uint32(s.total)) // first entry too long
	b := startChain(t, f, run{shim: f.shim[policy.SecretOptional], secret: s.table, manifest: f.tbManifest, image: f.tbImage})
	assertRefusedWiped(t, b, shimerr.SecretMalformed, s)
}

func assertRefusedWiped(t *testing.T, b *qemu.VM, want shimerr.Code, s secretTable) {
	t.Helper()
	out := harness.WaitLine(t, b.Debugcon(), reOutcome, stepTO)
	if out.Text != want.Line() {
		t.Fatalf("outcome %q, want %q", out.Text, want.Line())
	}
	harness.WaitLine(t, b.Debugcon(), harness.HaltRE, stepTO)
	harness.AssertNoBIOSRan(t, b)
	assertNoSecret(t, harness.DumpRAM(t, b, memMiB), s)
}

// TestSecretBlockInBounceRefused: a signed BIOS whose footer puts its secret block into the
// shim's fw_cfg bounce page (0x200000, mapped with the C-bit clear under SEV: docs/shim.md
// "SEV memory map"). Copying the secret there would hand it to the host, so the shim refuses
// with E062 before the flash, and the secret is wiped.
func TestSecretBlockInBounceRefused(t *testing.T) {
	f := getFixture(t)
	s := newSecret(t)
	img, err := os.ReadFile(f.tbImage)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := shimimage.ParseFooterTable(img)
	if err != nil {
		t.Fatal(err)
	}
	e, err := shimimage.Find(entries, shimimage.SEVSecretGUID)
	if err != nil || len(e.Data) != 8 {
		t.Fatalf("test BIOS secret entry: %v (%d bytes)", err, len(e.Data))
	}
	binary.LittleEndian.PutUint32(e.Data[0:], 0x200000) // Data aliases img
	dir := t.TempDir()
	image := filepath.Join(dir, "testbios-bounce.fd")
	if err := os.WriteFile(image, img, 0o600); err != nil {
		t.Fatal(err)
	}
	mb, err := f.fx.Sign(f.key, img, 7, "sevshim-testbios-bounce")
	if err != nil {
		t.Fatal(err)
	}
	manifest := filepath.Join(dir, "testbios-bounce.manifest")
	if err := os.WriteFile(manifest, mb, 0o600); err != nil {
		t.Fatal(err)
	}
	b := startChain(t, f, run{shim: f.shim[policy.SecretOptional], secret: s.table, manifest: manifest, image: image})
	assertRefusedWiped(t, b, shimerr.SecretBlockUnusable, s)
}
