package keys_test

import (
	"encoding/hex"
	"testing"

	"github.com/sevshim/sevshim/pkg/keys"
)

func TestPublicKeyPEM(t *testing.T) {
	k := keys.DeriveTestKey("pem")
	pemb, err := keys.MarshalPublicKeyPEM(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := keys.ParsePublicKeyPEM(pemb)
	if err != nil || !pub.Equal(&k.PublicKey) {
		t.Fatal(err)
	}
	priv, _ := keys.MarshalPrivateKeyPEM(k)
	if pub, err := keys.ParsePublicKeyPEM(priv); err != nil || !pub.Equal(&k.PublicKey) {
		t.Fatal("public from private PEM", err)
	}
	raw, _ := keys.MarshalPublicKey(&k.PublicKey)
	if pub, err := keys.ParsePublicKeyPEM([]byte(hex.EncodeToString(raw[:]) + "\n")); err != nil || !pub.Equal(&k.PublicKey) {
		t.Fatal("hex form", err)
	}
}
