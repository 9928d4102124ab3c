package cli

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sevshim/sevshim/pkg/format/layout"
	"github.com/sevshim/sevshim/pkg/format/receipt"
	"github.com/sevshim/sevshim/pkg/format/shimimage"
	"github.com/sevshim/sevshim/pkg/format/shimimage/shimtest"
	"github.com/sevshim/sevshim/pkg/owner"
	"github.com/sevshim/sevshim/pkg/sev"
	goldenfiles "github.com/sevshim/sevshim/tests/golden"
)

const goldenData = "../../testdata/golden"

// receiptVectors returns the golden receipts by name (blob hex and nonce hex).
func receiptVectors(t *testing.T) map[string][2]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(goldenData, goldenfiles.ReceiptVectors))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][2]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if c := strings.Split(l, "\t"); len(c) == 9 && !strings.HasPrefix(l, "#") {
			out[c[0]] = [2]string{c[8], c[3]}
		}
	}
	return out
}

// TestGoldenReceipt runs `verifier receipt` on the golden receipts (the same bytes the C side
// builds): an acceptance, the E034 and E024 refusals, and every way a receipt can fail.
func TestGoldenReceipt(t *testing.T) {
	w := t.TempDir()
	j := func(p ...string) string { return filepath.Join(append([]string{w}, p...)...) }
	vec := receiptVectors(t)
	cp := func(src, dst string) {
		b, err := os.ReadFile(filepath.Join(goldenData, src))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(j(dst), b, 0o600)
	}
	cp("receipt/key-a.bin", "owner.key")
	cp("receipt/key-b.bin", "other.key")
	// the bundles the vectors are about: golden manifests + the images they sign
	pattern := make([]byte, 0x37C000)
	for i := range pattern {
		pattern[i] = byte(i*7 + i>>11)
	}
	for _, b := range []struct {
		name, manifest string
		image          []byte
	}{{"v6.bundle", "a-v6-pattern.bin", pattern}, {"v5.bundle", "a-v5-zero.bin", make([]byte, 0x37C000)}} {
		m, _ := os.ReadFile(filepath.Join(goldenData, "manifest", b.manifest))
		os.WriteFile(j(b.name), append(m, b.image...), 0o644)
	}
	// the owner's shim image: the one-signer policy the accepted vectors carry
	pol, _ := os.ReadFile(filepath.Join(goldenData, "policy", "one-signer.bin"))
	shim, err := shimimage.EmbedPolicy(shimtest.Template(layout.OVMF4M), pol)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(j("shim.fd"), shim, 0o644)

	v6, e034, e024, v5 := vec["accepted-v6-nonce-vars"], vec["refused-e034-below-floor"], vec["refused-e024-bad-signature"], vec["accepted-v5-no-nonce"]
	base := func(v [2]string, extra ...string) []string {
		return append([]string{"receipt", "--key", j("owner.key"), "--nonce", v[1], "--receipt", v[0]}, extra...)
	}
	if _, code := golden(t, "receipt-ok.txt", w, base(v6, "--bundle", j("v6.bundle"), "--image", j("shim.fd"))...); code != 0 {
		t.Errorf("acceptance: exit %d", code)
	}
	out, _ := golden(t, "receipt-ok.json", w, base(v6, "--json")...)
	var r owner.ReceiptReport
	if err := json.Unmarshal([]byte(out), &r); err != nil || r.Status != "OK" || r.BIOSVersion != 6 || r.VarsDigest == "" {
		t.Fatalf("json: %v %+v", err, r)
	}
	if o, code := golden(t, "receipt-refusal-e034.txt", w, base(e034)...); code != 2 || !strings.Contains(o, "\nauthentic refusal E034 version-below-floor\n") {
		t.Errorf("E034 refusal: exit %d", code)
	}
	if _, code := golden(t, "receipt-refusal-e024.json", w, base(e024, "--json")...); code != 2 {
		t.Errorf("E024 refusal: exit %d", code)
	}
	// failures: exit 1, never "receipt OK"
	flip := func(v [2]string, byteOff int) [2]string {
		b, _ := hex.DecodeString(v[0])
		b[byteOff] ^= 0x01
		return [2]string{hex.EncodeToString(b), v[1]}
	}
	otherNonce := strings.Repeat("ab", receipt.NonceSize)
	for _, c := range []struct {
		name string
		args []string
	}{
		{"receipt-other-key.txt", []string{"receipt", "--key", j("other.key"), "--nonce", v6[1], "--receipt", v6[0]}},
		{"receipt-flipped-verdict.txt", base(flip(e034, 0x0C))},
		{"receipt-flipped-mac.txt", base(flip(v6, receipt.BlobSize-1))},
		{"receipt-replayed.txt", []string{"receipt", "--key", j("owner.key"), "--nonce", otherNonce, "--receipt", v6[0]}},
		{"receipt-no-nonce.txt", []string{"receipt", "--key", j("owner.key"), "--nonce", otherNonce, "--receipt", v5[0]}},
		{"receipt-none.txt", []string{"receipt", "--key", j("owner.key"), "--nonce", otherNonce, "--receipt", receipt.NoneLine}},
		{"receipt-wrong-bundle.txt", base(v6, "--bundle", j("v5.bundle"))},
		{"receipt-refusal-wrong-bundle.txt", base(e034, "--bundle", j("v6.bundle"))},
		{"receipt-bad-nonce.txt", []string{"receipt", "--key", j("owner.key"), "--nonce", "1234", "--receipt", v6[0]}},
		{"receipt-both-sources.txt", base(v6, "--from", j("receive.json"))},
	} {
		if o, code := golden(t, c.name, w, c.args...); code != 1 || strings.Contains(o, "receipt OK") {
			t.Errorf("%s: exit %d", c.name, code)
		}
	}
	// an accepted receipt without a nonce verifies only with --nonce none
	if _, code := golden(t, "receipt-no-nonce-none.txt", w, "receipt", "--key", j("owner.key"), "--nonce", "none", "--receipt", v5[0], "--bundle", j("v5.bundle")); code != 0 {
		t.Errorf("--nonce none: exit %d", code)
	}
	// --from: hostctl receive's state file
	line := receipt.LinePrefix + v6[0]
	js, _ := json.Marshal(map[string]any{"stage": "running", "receipt": line})
	os.WriteFile(j("receive.json"), js, 0o600)
	if _, code := golden(t, "receipt-from.txt", w, "receipt", "--key", j("owner.key"), "--nonce", v6[1], "--from", j("receive.json")); code != 0 {
		t.Errorf("--from: exit %d", code)
	}
}

// TestGoldenSecretReceiptKey: `verifier secret --new-receipt-key` writes the key 0600 beside
// the session and says so; a second run refuses to overwrite it; --receipt-key reuses it.
func TestGoldenSecretReceiptKey(t *testing.T) {
	w := workdir(t)
	j := func(p ...string) string { return filepath.Join(append([]string{w}, p...)...) }
	margs := []string{"--session", j("sess"), "--measurement", j("measurement.json"), "--image", j("shim.fd")}
	sarg := "--secret=" + sev.DiskPassphraseID.String() + "=" + j("passphrase.txt")
	golden(t, "secret-new-receipt-key.txt", w, append([]string{"secret", sarg, "--new-receipt-key", "--out", j("secret.json")}, margs...)...)
	st, err := os.Stat(j("sess", owner.ReceiptKeyFile))
	if err != nil || st.Mode().Perm() != 0o600 || st.Size() != receipt.KeySize {
		t.Fatalf("receipt key: %v %v", err, st)
	}
	golden(t, "secret-new-receipt-key-exists.txt", w, append([]string{"secret", sarg, "--new-receipt-key", "--out", j("secret2.json")}, margs...)...)
	if _, err := os.Stat(j("secret2.json")); err == nil {
		t.Fatal("secret written although the key was not")
	}
	golden(t, "secret-receipt-key-only.txt", w, append([]string{"secret", "--receipt-key", j("sess", owner.ReceiptKeyFile), "--out", j("secret3.json")}, margs...)...)
	os.WriteFile(j("short.key"), []byte("short"), 0o600)
	golden(t, "secret-receipt-key-short.txt", w, append([]string{"secret", "--receipt-key", j("short.key"), "--out", j("secret4.json")}, margs...)...)
	golden(t, "secret-nothing.txt", w, append([]string{"secret", "--out", j("secret5.json")}, margs...)...)
}
