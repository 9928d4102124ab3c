package keys

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha512"
	"encoding/hex"
	"math/big"
	"strings"
	"testing"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ToLower(s))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// RFC 6979 appendix A.2.6: ECDSA, 384 bits (prime field), with SHA-384.
func TestRFC6979P384Vectors(t *testing.T) {
	key, err := ecdsa.ParseRawPrivateKey(elliptic.P384(), unhex(t,
		"6B9D3DAD2E1B8C1C05B19875B6659F4DE23C3B667BF297BA9AA47740787137D896D5724E4C70A825F872C9EA60D2EDF5"))
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(key.PublicKey.X.FillBytes(make([]byte, 48))); got !=
		"ec3a4e415b4e19a4568618029f427fa5da9a8bc4ae92e02e06aae5286b300c64def8f0ea9055866064a254515480bc13" {
		t.Fatalf("public X = %s", got)
	}
	for _, v := range []struct{ msg, r, s string }{
		{"sample",
			"94EDBB92A5ECB8AAD4736E56C691916B3F88140666CE9FA73D64C4EA95AD133C81A648152E44ACF96E36DD1E80FABE46",
			"99EF4AEB15F178CEA1FE40DB2603138F130E740A19624526203B6351D0A3A94FA329C145786E679E7B82C71A38628AC8"},
		{"test",
			"8203B63D3C853E8D77227FB377BCF7B7B772E97892A80F36AB775D509D7A5FEB0542A7F0812998DA8F1DD3CA3CF023DB",
			"DDD0760448D42D8A43AF45AF836FCE4DE8BE06B485E9B61B827C2F13173923E06A739F040649A667BF3B828246BAA5A5"},
	} {
		h := sha512.Sum384([]byte(v.msg))
		r, s, err := signRFC6979(key, h[:])
		if err != nil {
			t.Fatal(err)
		}
		if got := hex.EncodeToString(r.FillBytes(make([]byte, 48))); got != strings.ToLower(v.r) {
			t.Errorf("%s: r = %s, want %s", v.msg, got, v.r)
		}
		if got := hex.EncodeToString(s.FillBytes(make([]byte, 48))); got != strings.ToLower(v.s) {
			t.Errorf("%s: s = %s, want %s", v.msg, got, v.s)
		}
		if !ecdsa.Verify(&key.PublicKey, h[:], r, s) {
			t.Errorf("%s: signature does not verify", v.msg)
		}
		// Both A.2.6 vectors have s > n/2, so what SignDeterministic stores for them is
		// normalised: n - s, which still verifies and is low.
		n := elliptic.P384().Params().N
		if s.Cmp(new(big.Int).Rsh(n, 1)) <= 0 {
			t.Fatalf("%s: the RFC vector's s is low; the normalisation check below tests nothing", v.msg)
		}
		low := LowS(s)
		if want := new(big.Int).Sub(n, s); low.Cmp(want) != 0 {
			t.Errorf("%s: LowS(s) = %x, want n-s = %x", v.msg, low, want)
		}
		if !ecdsa.Verify(&key.PublicKey, h[:], r, low) {
			t.Errorf("%s: normalised signature does not verify", v.msg)
		}
		if LowS(low) != low {
			t.Errorf("%s: LowS changed a low s", v.msg)
		}
	}
}
