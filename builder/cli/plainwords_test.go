package cli

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"strings"
	"testing"
)

// TestNoGoInternalsInMessages: messages name files, flags and what to do, in words; no Go
// type names (*rsa.PrivateKey), strconv errors or temporary file names.
func TestNoGoInternalsInMessages(t *testing.T) {
	inEnv(t)
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(rk)
	os.WriteFile("rsa.key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	pder, _ := x509.MarshalPKIXPublicKey(&rk.PublicKey)
	os.WriteFile("rsa.pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pder}), 0o644)
	os.WriteFile("rsa.yaml", []byte("layout: ovmf-4m\nsigners:\n  - key: rsa.pub\n"), 0o644)
	os.WriteFile("broken.pub", []byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"), 0o644)
	os.WriteFile("broken.yaml", []byte("layout: ovmf-4m\nsigners:\n  - key: broken.pub\n"), 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"sign-bios", "--key", "rsa.key", "--version", "1", "--out", "o", "template.fd"}, "builder: rsa.key: the key is an RSA private key, want ECDSA P-384"},
		{[]string{"build", "--policy", "rsa.yaml", "--template", "template.fd", "--out", "o"}, "builder: rsa.yaml:3: signers[0].key: rsa.pub: not a P-384 public key: the key is an RSA public key, want ECDSA P-384"},
		{[]string{"build", "--policy", "broken.yaml", "--template", "template.fd", "--out", "o"}, `builder: broken.yaml:3: signers[0].key: broken.pub: not a P-384 public key: the PEM "PUBLIC KEY" block is damaged or holds a key sevshim cannot read (want ECDSA P-384)`},
		{[]string{"sign-bios", "--key", "signer-a.pem", "--version", "-3", "--out", "o", "template.fd"}, `builder: --version "-3": want a whole number from 0 to 18446744073709551615`},
		{[]string{"measure", "--image", "template.fd", "--build", "300"}, `builder: --build "300": want a whole number from 0 to 255`},
		{[]string{"build", "--policy", "policy.yaml", "--template", "template.fd", "--out", "nodir/o.fd"}, "builder: cannot write nodir/o.fd: directory nodir does not exist"},
		{[]string{"keygen", "--out", "nodir/k"}, "builder: cannot write nodir/k.key: directory nodir does not exist"},
	} {
		_, e, c := run(t, tc.args...)
		if c != 1 || strings.TrimSpace(e) != tc.want {
			t.Errorf("%v: exit %d\n got %q\nwant %q", tc.args, c, e, tc.want)
		}
		for _, bad := range []string{"*rsa", "*ecdsa", "strconv", ".tmp", "x509:", "asn1:"} {
			if strings.Contains(e, bad) {
				t.Errorf("%v: %q leaks %q", tc.args, e, bad)
			}
		}
	}
	os.Mkdir("ro", 0o500)
	if os.Geteuid() != 0 { // root writes anywhere
		_, e, _ := run(t, "build", "--policy", "policy.yaml", "--template", "template.fd", "--out", "ro/o.fd")
		if strings.TrimSpace(e) != "builder: cannot write ro/o.fd: permission denied" {
			t.Errorf("read-only directory: %q", e)
		}
	}
}
