package verifyref_test

import (
	"bytes"
	"crypto/sha512"
	"testing"

	"github.com/sevshim/sevshim/pkg/format/manifest"
	"github.com/sevshim/sevshim/pkg/format/policy"
	"github.com/sevshim/sevshim/pkg/format/shimerr"
	"github.com/sevshim/sevshim/pkg/keys"
	"github.com/sevshim/sevshim/pkg/verifyref"
	"github.com/sevshim/sevshim/tests/golden"
)

const gdir = "../../testdata/golden/"

func loadCases(t testing.TB) golden.Cases { return golden.LoadCases(t, gdir) }

func read(t testing.TB, p string) []byte { return golden.ReadFile(t, gdir, p) }

// TestGoldenChecks runs the reference decision over every check of cases.json.
func TestGoldenChecks(t *testing.T) {
	c := loadCases(t)
	cache := map[string][]byte{}
	get := func(p string) ([]byte, bool) {
		if p == "" {
			return nil, false
		}
		if b, ok := cache[p]; ok {
			return b, true
		}
		b := read(t, p)
		cache[p] = b
		return b, true
	}
	seen := map[shimerr.Code]bool{}
	for _, cc := range c.Checks {
		pb, _ := get(cc.Policy)
		mb, mp := get(cc.Manifest)
		bb, bp := get(cc.BIOS)
		vb, vp := get(cc.Vars)
		got := verifyref.CheckEncoded(pb, mb, mp, bb, bp, vb, vp)
		seen[got] = true
		if got.String() != cc.Expect {
			t.Errorf("%s: %v, want %s", cc.Name, got, cc.Expect)
		}
	}
	for _, want := range []shimerr.Code{shimerr.OK, shimerr.PolicyInvalid, shimerr.ManifestMissing, shimerr.ManifestSize,
		shimerr.ManifestMalformed, shimerr.UnknownSigner, shimerr.BadSignature, shimerr.LayoutMismatch,
		shimerr.ImageSizeMismatch, shimerr.BIOSMissing, shimerr.BIOSTruncated, shimerr.BIOSOversized,
		shimerr.DigestMismatch, shimerr.VersionBelowFloor, shimerr.DigestDenied, shimerr.VersionDenied, shimerr.VarsSize} {
		if !seen[want] {
			t.Errorf("no golden check produces %v", want)
		}
	}
}

// TestCheckOrder pins the first-failure-wins order of docs/formats.md section 6.
func TestCheckOrder(t *testing.T) {
	key := keys.DeriveTestKey("order")
	img := make([]byte, 0x37C000)
	m, _ := manifest.NewManifest(1, img, 2, "v2", &key.PublicKey)
	mb, _ := m.Sign(key)
	pol := &policy.Policy{Layout: 1, Signers: []policy.Signer{{PublicKey: &key.PublicKey, MinVersion: 3}},
		DeniedDigests: [][48]byte{m.ImageDigest}, DeniedVersions: []uint64{2}, VarsMode: policy.VarsAny}
	vars := make([]byte, 5)
	// below floor, denied digest, denied version and bad vars at once: floor wins
	if got := verifyref.Check(pol, mb, true, img, true, vars, true); got != shimerr.VersionBelowFloor {
		t.Fatalf("got %v", got)
	}
	pol.Signers[0].MinVersion = 0
	if got := verifyref.Check(pol, mb, true, img, true, vars, true); got != shimerr.DigestDenied {
		t.Fatalf("got %v", got)
	}
	pol.DeniedDigests = nil
	if got := verifyref.Check(pol, mb, true, img, true, vars, true); got != shimerr.VersionDenied {
		t.Fatalf("got %v", got)
	}
	pol.DeniedVersions = nil
	if got := verifyref.Check(pol, mb, true, img, true, vars, true); got != shimerr.VarsSize {
		t.Fatalf("got %v", got)
	}
	// var-store mode: none refuses any vars file before its size is looked at; allow needs
	// the digest on the list, after the size
	pol.VarsMode = policy.VarsNone
	if got := verifyref.Check(pol, mb, true, img, true, vars, true); got != shimerr.VarsNotAllowed {
		t.Fatalf("vars none: got %v", got)
	}
	if got := verifyref.Check(pol, mb, true, img, true, nil, false); got != shimerr.OK {
		t.Fatalf("vars none without vars: got %v", got)
	}
	good := make([]byte, 0x84000)
	other := bytes.Repeat([]byte{1}, 0x84000)
	pol.VarsMode, pol.AllowedVars = policy.VarsAllow, [][48]byte{sha512.Sum384(good)}
	if got := verifyref.Check(pol, mb, true, img, true, vars, true); got != shimerr.VarsSize {
		t.Fatalf("vars allow, short: got %v", got)
	}
	if got := verifyref.Check(pol, mb, true, img, true, other, true); got != shimerr.VarsDigestNotAllowed {
		t.Fatalf("vars allow, other digest: got %v", got)
	}
	if got := verifyref.Check(pol, mb, true, img, true, good, true); got != shimerr.OK {
		t.Fatalf("vars allow, listed digest: got %v", got)
	}
	pol.VarsMode, pol.AllowedVars = policy.VarsAny, nil
	if got := verifyref.Check(pol, mb, true, img, true, nil, false); got != shimerr.OK {
		t.Fatalf("got %v", got)
	}
	if got := verifyref.Check(nil, mb, true, img, true, nil, false); got != shimerr.PolicyInvalid {
		t.Fatalf("nil policy: %v", got)
	}
}
