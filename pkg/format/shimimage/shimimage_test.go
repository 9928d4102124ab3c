package shimimage_test

import (
	"bytes"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/sevshim/sevshim/pkg/format/internal/formattest"
	"github.com/sevshim/sevshim/pkg/format/policy"
	"github.com/sevshim/sevshim/pkg/format/shimimage"
	"github.com/sevshim/sevshim/pkg/format/shimimage/shimtest"
	"github.com/sevshim/sevshim/pkg/keys"
)

func TestGUID(t *testing.T) {
	g := shimimage.FooterTableGUID
	want := []byte{0xde, 0x82, 0xb5, 0x96, 0xb2, 0x1f, 0xf7, 0x45, 0xba, 0xea, 0xa3, 0x66, 0xc5, 0x5a, 0x08, 0x2d}
	if !bytes.Equal(g[:], want) {
		t.Fatalf("EFI byte order: % x", g[:])
	}
	if g.String() != "96b582de-1fb2-45f7-baea-a366c55a082d" {
		t.Fatal(g.String())
	}
	if _, err := shimimage.ParseGUID("96b582de-1fb2-45f7-baea-a366c55a082"); err == nil {
		t.Fatal("short guid accepted")
	}
	// the header's byte arrays
	hdr := map[shimimage.GUID][]byte{
		shimimage.SEVESResetGUID: {0xde, 0x71, 0xf7, 0x00, 0x7e, 0x1a, 0xcb, 0x4f, 0x89, 0x0e, 0x68, 0xc7, 0x7e, 0x2f, 0xb4, 0x4e},
		shimimage.SEVSecretGUID:  {0x61, 0xb3, 0x2e, 0x4c, 0x9b, 0x7d, 0xc3, 0x4c, 0x80, 0x81, 0x12, 0x7c, 0x90, 0xd3, 0xd2, 0x94},
		shimimage.PolicyGUID:     {0x2c, 0x47, 0xc6, 0x0a, 0xf2, 0xd1, 0xe6, 0x4a, 0x8d, 0xa8, 0xf0, 0x0f, 0x54, 0x64, 0x8a, 0x10},
		shimimage.InfoGUID:       {0x41, 0xa4, 0x8b, 0x13, 0xdc, 0x15, 0xec, 0x4a, 0xaa, 0xad, 0x03, 0x97, 0xd4, 0xfd, 0xd5, 0x49},
	}
	for g, b := range hdr {
		if !bytes.Equal(g[:], b) {
			t.Errorf("%s bytes % x, header % x", g, g[:], b)
		}
	}
}

const debianOVMF = "/usr/share/OVMF/OVMF_CODE_4M.fd"

func TestDebianOVMFFooter(t *testing.T) {
	img, err := os.ReadFile(debianOVMF)
	if err != nil {
		t.Skipf("Debian OVMF not installed (%v); `make setup` installs package ovmf", err)
	}
	entries, err := shimimage.ParseFooterTable(img)
	if err != nil {
		t.Fatal(err)
	}
	if n := binary.LittleEndian.Uint16(img[len(img)-0x32:]); n != 0x5C {
		t.Errorf("table length 0x%x, want 0x5c", n)
	}
	want := []shimimage.GUID{shimimage.SEVESResetGUID, shimimage.SEVSecretGUID, shimimage.SEVHashTableGUID}
	if len(entries) != 3 {
		t.Fatalf("%d entries, want 3", len(entries))
	}
	for i, e := range entries {
		if e.GUID != want[i] {
			t.Errorf("entry %d: %s, want %s", i, e.GUID, want[i])
		}
	}
	in, err := shimimage.ParseInfo(img)
	if err != nil {
		t.Fatal(err)
	}
	// Debian's plain OVMF declares the secret entry with base 0, size 0: no usable block.
	if !in.HasSecret || in.SecretSize != 0 || in.SecretUsable() || !in.HasSEVESReset || in.HasPolicy || in.HasInfo {
		t.Errorf("info %+v", in)
	}
	if _, err := shimimage.Info(img); err == nil {
		t.Error("Debian OVMF accepted as a sevshim image")
	}
	if _, _, err := shimimage.PolicyRegion(img); err == nil {
		t.Error("PolicyRegion found a region in Debian OVMF")
	}
}

func onePolicy(t *testing.T) []byte {
	t.Helper()
	k := keys.DeriveTestKey("shimimage-test")
	b, err := (&policy.Policy{Layout: 1, Signers: []policy.Signer{{PublicKey: &k.PublicKey, MinVersion: 3}}}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEmbedExtract(t *testing.T) {
	tmpl := shimtest.Template(1)
	orig := bytes.Clone(tmpl)
	off, size, err := shimimage.PolicyRegion(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	if size != 0x4000 || off != len(tmpl)-shimtest.PolicyOffsetFromEnd {
		t.Fatalf("region 0x%x+0x%x", off, size)
	}
	if _, _, err := shimimage.ExtractPolicy(tmpl); !errors.Is(err, shimimage.ErrEmptyPolicy) {
		t.Fatalf("template: %v", err)
	}
	enc := onePolicy(t)
	img, err := shimimage.EmbedPolicy(tmpl, enc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(tmpl, orig) {
		t.Fatal("EmbedPolicy modified its input")
	}
	// only the region changed
	for i := range img {
		if img[i] != tmpl[i] && (i < off || i >= off+len(enc)) {
			t.Fatalf("byte 0x%x outside the policy changed", i)
		}
	}
	got, p, err := shimimage.ExtractPolicy(img)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, enc) || p.Signers[0].MinVersion != 3 {
		t.Fatal("extract mismatch")
	}
	// refusing to overwrite, replacing explicitly
	if _, err := shimimage.EmbedPolicy(img, enc); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("embed into a built image: %v", err)
	}
	k2 := keys.DeriveTestKey("other")
	enc2, _ := (&policy.Policy{Layout: 1, Signers: []policy.Signer{{PublicKey: &k2.PublicKey}}, DeniedVersions: []uint64{1, 2}}).Encode()
	img2, err := shimimage.ReplacePolicy(img, enc2)
	if err != nil {
		t.Fatal(err)
	}
	got2, _, err := shimimage.ExtractPolicy(img2)
	if err != nil || !bytes.Equal(got2, enc2) {
		t.Fatalf("replace: %v", err)
	}
	// wrong layout, wrong size, invalid policy
	bad := bytes.Clone(enc)
	binary.LittleEndian.PutUint32(bad[0x10:], 2)
	if _, err := shimimage.EmbedPolicy(tmpl, bad); err == nil {
		t.Error("policy with unknown layout embedded")
	}
	if _, err := shimimage.EmbedPolicy(tmpl[1:], enc); err == nil {
		t.Error("wrong-size template accepted")
	}
	if _, err := shimimage.EmbedPolicy(tmpl, enc[:100]); err == nil {
		t.Error("truncated policy embedded")
	}
	if _, err := shimimage.EmbedPolicy(make([]byte, len(tmpl)), enc); !errors.Is(err, shimimage.ErrNoFooterTable) {
		t.Errorf("image without table: %v", err)
	}
	// a garbage byte after the policy in the region makes extraction fail
	img3 := bytes.Clone(img)
	img3[off+size-1] = 1
	if _, _, err := shimimage.ExtractPolicy(img3); err == nil {
		t.Error("non-zero region tail accepted")
	}
}

func TestGolden(t *testing.T) {
	tmpl := formattest.Read(t, "testdata/golden/image/shim-template.bin")
	built := formattest.Read(t, "testdata/golden/image/shim-one-signer.bin")
	pol := formattest.Read(t, "testdata/golden/policy/one-signer.bin")
	got, err := shimimage.EmbedPolicy(tmpl, pol)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, built) {
		t.Fatal("embedding one-signer into the golden template differs from shim-one-signer.bin")
	}
	enc, _, err := shimimage.ExtractPolicy(built)
	if err != nil || !bytes.Equal(enc, pol) {
		t.Fatal("extract from golden image")
	}
}

func TestFooterTableRoundTrip(t *testing.T) {
	img := make([]byte, 0x10000)
	entries := []shimimage.Entry{
		{GUID: shimimage.InfoGUID, Data: []byte{1, 0, 0, 0, 1, 0, 0, 0}},
		{GUID: shimimage.MustParseGUID("11111111-2222-3333-4444-555555555555"), Data: nil},
		{GUID: shimimage.SEVSecretGUID, Data: bytes.Repeat([]byte{7}, 33)},
	}
	if err := shimimage.WriteFooterTable(img, entries); err != nil {
		t.Fatal(err)
	}
	got, err := shimimage.ParseFooterTable(img)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("%d entries", len(got))
	}
	for i := range got {
		if got[i].GUID != entries[i].GUID || !bytes.Equal(got[i].Data, entries[i].Data) {
			t.Errorf("entry %d differs", i)
		}
	}
	// corrupt the total length: must fail, not misparse
	binary.LittleEndian.PutUint16(img[len(img)-0x32:], 0x11)
	if _, err := shimimage.ParseFooterTable(img); err == nil {
		t.Error("length below 18 accepted")
	}
	binary.LittleEndian.PutUint16(img[len(img)-0x32:], 0x13+18+8+33+18)
	if _, err := shimimage.ParseFooterTable(img); err == nil {
		t.Error("length with stray bytes accepted")
	}
}

func TestGPAToOffset(t *testing.T) {
	off, err := shimimage.GPAToOffset(0x37C000, 0xFFC84000)
	if err != nil || off != 0 {
		t.Fatal(off, err)
	}
	if _, err := shimimage.GPAToOffset(0x37C000, 0xFFC83FFF); err == nil {
		t.Fatal("address below the image accepted")
	}
	_ = sha512.New384
}

// TestRealTemplate embeds and extracts a policy in the firmware engineer's real template when
// it has been built (make shim).
func TestRealTemplate(t *testing.T) {
	tmpl, err := os.ReadFile("../../../build/shim/shim.fd")
	if err != nil {
		t.Skipf("build/shim/shim.fd not built (make shim): %v", err)
	}
	in, err := shimimage.Info(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	if in.Layout != 1 || in.PolicySize != 0x4000 || !in.HasSEVESReset || !in.SecretUsable() {
		t.Errorf("template info %+v", in)
	}
	enc := onePolicy(t)
	img, err := shimimage.EmbedPolicy(tmpl, enc)
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := shimimage.ExtractPolicy(img)
	if err != nil || !bytes.Equal(got, enc) {
		t.Fatal(err)
	}
}
