package owner

import (
	"bytes"
	"crypto/sha512"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sevshim/sevshim/pkg/format/layout"
	"github.com/sevshim/sevshim/pkg/format/policy"
	"github.com/sevshim/sevshim/pkg/format/receipt"
	"github.com/sevshim/sevshim/pkg/format/shimerr"
	"github.com/sevshim/sevshim/pkg/format/shimimage"
	"github.com/sevshim/sevshim/pkg/format/shimimage/shimtest"
	"github.com/sevshim/sevshim/pkg/keys"
	"github.com/sevshim/sevshim/pkg/sev"
)

// TestSecretCarriesReceiptKey: --new-receipt-key writes a 0600 key beside the session, never
// overwrites it, and the packet the emulated PSP injects holds it as the receipt-key entry
// next to the other secrets; --receipt-key reuses it; a key-only secret is allowed.
func TestSecretCarriesReceiptKey(t *testing.T) {
	e := newEmu(t)
	sessDir := filepath.Join(t.TempDir(), "sess")
	newSession(t, e, sessDir)
	img, h, s, m := launchTemplate(t, e, sessDir)
	pass := filepath.Join(t.TempDir(), "pass")
	os.WriteFile(pass, []byte("correct horse battery staple"), 0o600)
	out := filepath.Join(t.TempDir(), "secret.json")
	args := []SecretArg{{sev.DiskPassphraseID, pass}}
	sr, err := BuildSecretWithReceipt(nil, s, m, "shim.fd", img, args, ReceiptKeyArg{Generate: true}, out)
	if err != nil {
		t.Fatal(err)
	}
	kp := filepath.Join(sessDir, ReceiptKeyFile)
	if sr.ReceiptKey != kp || !sr.NewKey {
		t.Fatalf("report %+v", sr)
	}
	st, err := os.Stat(kp)
	if err != nil || st.Mode().Perm() != 0o600 || st.Size() != receipt.KeySize {
		t.Fatalf("key file: %v %v", err, st)
	}
	key, err := LoadReceiptKey(kp)
	if err != nil {
		t.Fatal(err)
	}
	_, tab := injectSecret(t, e, h, out)
	if d, ok := tab.Lookup(receipt.KeyGUID); !ok || !bytes.Equal(d, key) {
		t.Fatalf("table has no receipt key %x: %+v", key, tab)
	}
	if d, ok := tab.Lookup(sev.DiskPassphraseID); !ok || string(d) != "correct horse battery staple" {
		t.Fatal("passphrase lost")
	}
	got, rest, found, err := receipt.TakeKey(tab)
	if err != nil || !found || !bytes.Equal(got, key) || len(rest.Entries) != 1 {
		t.Fatalf("TakeKey: %v %v", found, err)
	}

	// never overwritten
	before, _ := os.ReadFile(kp)
	if _, err := BuildSecretWithReceipt(nil, s, m, "shim.fd", img, args, ReceiptKeyArg{Generate: true}, out); err == nil || !strings.Contains(err.Error(), "refusing to overwrite") {
		t.Fatalf("second --new-receipt-key: %v", err)
	}
	if after, _ := os.ReadFile(kp); !bytes.Equal(before, after) {
		t.Fatal("key file changed")
	}
	// reuse, key only
	if sr, err := BuildSecretWithReceipt(nil, s, m, "shim.fd", img, nil, ReceiptKeyArg{Path: kp}, out); err != nil || sr.NewKey || len(sr.Entries) != 0 {
		t.Fatalf("key-only secret: %v %+v", err, sr)
	}
	// bad key files, and the key GUID as a plain --secret
	short := filepath.Join(t.TempDir(), "short.key")
	os.WriteFile(short, key[:47], 0o600)
	if _, err := BuildSecretWithReceipt(nil, s, m, "shim.fd", img, nil, ReceiptKeyArg{Path: short}, out); err == nil || !strings.Contains(err.Error(), "47 bytes") {
		t.Fatalf("47-byte key: %v", err)
	}
	if _, err := BuildSecretWithReceipt(nil, s, m, "shim.fd", img, []SecretArg{{receipt.KeyGUID, kp}}, ReceiptKeyArg{}, out); err == nil || !strings.Contains(err.Error(), "--receipt-key") {
		t.Fatalf("key GUID as --secret: %v", err)
	}
	// no key is made when the measurement does not check out
	other := filepath.Join(t.TempDir(), "new.key")
	bad := *m
	bad.M = &sev.Measurement{Measure: m.M.Measure, MNonce: m.M.MNonce}
	bad.M.Measure[0] ^= 0x80
	if _, err := BuildSecretWithReceipt(nil, s, &bad, "shim.fd", img, args, ReceiptKeyArg{Path: other, Generate: true}, out); !errors.Is(err, ErrMismatch) {
		t.Fatalf("wrong measurement: %v", err)
	}
	if _, err := os.Stat(other); err == nil {
		t.Fatal("a key was written for a refused secret")
	}
}

func TestCheckReceipt(t *testing.T) {
	key := bytes.Repeat([]byte{0x42}, receipt.KeySize)
	nonce := bytes.Repeat([]byte{0x07}, receipt.NonceSize)
	var n [32]byte
	copy(n[:], nonce)
	man := make([]byte, 352)
	man[0x18] = 6
	mi, _ := receipt.ManifestInfo(man)
	img := sha512.Sum384([]byte("image"))
	dir := t.TempDir()
	k := keys.DeriveTestKey("owner receipt test")
	pb, err := (&policy.Policy{Layout: 1, Signers: []policy.Signer{{PublicKey: &k.PublicKey}}}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	shim, err := shimimage.EmbedPolicy(shimtest.Template(layout.OVMF4M), pb)
	if err != nil {
		t.Fatal(err)
	}
	pd := sha512.Sum384(pb)
	imgPath := filepath.Join(dir, "shim.fd")
	os.WriteFile(imgPath, shim, 0o644)
	seal := func(r *receipt.Receipt) string {
		b, err := receipt.Seal(key, r)
		if err != nil {
			t.Fatal(err)
		}
		return receipt.Line(b)
	}
	ok := seal(&receipt.Receipt{ShimFormat: 1, Nonce: &n, Manifest: mi, Image: &img, Policy: &pd})
	r, err := CheckReceipt(ReceiptCheck{Key: key, Nonce: nonce, Receipt: ok, ImagePath: imgPath})
	if err != nil || r.Status != "OK" || r.ExitCode() != 0 || r.BIOSVersion != 6 {
		t.Fatalf("acceptance: %v %+v", err, r)
	}
	ref := seal(&receipt.Receipt{ShimFormat: 1, Verdict: shimerr.VersionBelowFloor, Nonce: &n, Manifest: mi, Image: &img, Policy: &pd})
	r, err = CheckReceipt(ReceiptCheck{Key: key, Nonce: nonce, Receipt: ref})
	if err == nil || r.Status != "REFUSAL" || r.ExitCode() != 2 || err.Error() != "authentic refusal E034 version-below-floor" {
		t.Fatalf("refusal: %v %+v", err, r)
	}
	other := bytes.Clone(nonce)
	other[0] ^= 1
	for name, c := range map[string]ReceiptCheck{
		"other nonce":  {Key: key, Nonce: other, Receipt: ok},
		"none given":   {Key: key, Nonce: nil, Receipt: ok},
		"other key":    {Key: bytes.Repeat([]byte{1}, 48), Nonce: nonce, Receipt: ok},
		"none":         {Key: key, Nonce: nonce, Receipt: receipt.NoneLine},
		"other policy": {Key: key, Nonce: nonce, Receipt: seal(&receipt.Receipt{ShimFormat: 1, Nonce: &n, Manifest: mi, Image: &img, Policy: &img}), ImagePath: imgPath},
		"no manifest":  {Key: key, Nonce: nonce, Receipt: seal(&receipt.Receipt{ShimFormat: 1, Nonce: &n, Image: &img, Policy: &pd})},
		"no nonce":     {Key: key, Nonce: nonce, Receipt: seal(&receipt.Receipt{ShimFormat: 1, Manifest: mi, Image: &img, Policy: &pd})},
		"garbage":      {Key: key, Nonce: nonce, Receipt: "SEVSHIM RECEIPT 00"},
	} {
		r, err := CheckReceipt(c)
		if err == nil || r.Status != "FAILED" || r.ExitCode() != 1 {
			t.Errorf("%s: %v %+v", name, err, r)
		}
	}
}
