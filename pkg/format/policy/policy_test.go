package policy_test

import (
	"bytes"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"os"
	"testing"

	"github.com/sevshim/sevshim/pkg/format/policy"
	"github.com/sevshim/sevshim/pkg/keys"
	"github.com/sevshim/sevshim/tests/golden"
)

func loadCases(t testing.TB) golden.Cases { return golden.LoadCases(t, "../../../testdata/golden") }

func TestGoldenPolicies(t *testing.T) {
	c := loadCases(t)
	if len(c.Policies) < 20 {
		t.Fatalf("only %d policy cases", len(c.Policies))
	}
	for _, pc := range c.Policies {
		b, err := os.ReadFile("../../../testdata/golden/" + pc.File)
		if err != nil {
			t.Fatal(err)
		}
		var p *policy.Policy
		if len(b) == policy.RegionSize {
			p, err = policy.DecodeRegion(b)
		} else {
			p, err = policy.Decode(b)
		}
		if !pc.Valid {
			var pe *policy.Error
			if err == nil {
				t.Errorf("%s: decoded, want failure in %s", pc.File, pc.ErrorField)
			} else if !errors.As(err, &pe) || pe.Field != pc.ErrorField {
				t.Errorf("%s: error %v, want field %q", pc.File, err, pc.ErrorField)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", pc.File, err)
			continue
		}
		enc, err := p.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(enc, b[:len(enc)]) || len(enc) != pc.TotalSize {
			t.Errorf("%s: re-encoding differs", pc.File)
		}
		d, _ := p.Digest()
		if hex.EncodeToString(d[:]) != pc.Digest {
			t.Errorf("%s: digest", pc.File)
		}
		if p.Layout != pc.LayoutID || p.SecretMode != pc.SecretMode || p.TPMMode != pc.TPMMode ||
			p.TPMPCR != pc.TPMPCR || len(p.Signers) != len(pc.Signers) ||
			len(p.DeniedDigests) != len(pc.DeniedDigests) || len(p.DeniedVersions) != len(pc.DeniedVersions) {
			t.Errorf("%s: fields differ from cases.json", pc.File)
		}
		for i, s := range p.Signers {
			id := s.KeyID()
			if hex.EncodeToString(id[:]) != pc.Signers[i].KeyID || s.MinVersion != pc.Signers[i].MinVersion {
				t.Errorf("%s: signer %d", pc.File, i)
			}
		}
	}
}

func TestSizesAndLimits(t *testing.T) {
	if policy.MaxSize != 6976 || policy.MaxSize > policy.RegionSize {
		t.Fatalf("MaxSize %d", policy.MaxSize)
	}
	k := keys.DeriveTestKey("p")
	p := &policy.Policy{Layout: 1, Signers: []policy.Signer{{PublicKey: &k.PublicKey}}}
	for _, tc := range []struct {
		field string
		mod   func(q *policy.Policy)
	}{
		{"layout_id", func(q *policy.Policy) { q.Layout = 0 }},
		{"secret_mode", func(q *policy.Policy) { q.SecretMode = 2 }},
		{"tpm_mode", func(q *policy.Policy) { q.TPMMode = 3 }},
		{"tpm_pcr", func(q *policy.Policy) { q.TPMMode = 1; q.TPMPCR = 24 }},
		{"tpm_pcr", func(q *policy.Policy) { q.TPMPCR = 1 }},
		{"signer_count", func(q *policy.Policy) { q.Signers = nil }},
		{"signers[1].key_id", func(q *policy.Policy) { q.Signers = append(q.Signers, q.Signers[0]) }},
		{"denied_versions[1]", func(q *policy.Policy) { q.DeniedVersions = []uint64{4, 4} }},
		{"denied_digest_count", func(q *policy.Policy) { q.DeniedDigests = make([][48]byte, 65) }},
	} {
		q := *p
		q.Signers = append([]policy.Signer(nil), p.Signers...)
		tc.mod(&q)
		_, err := q.Encode()
		var pe *policy.Error
		if !errors.As(err, &pe) || pe.Field != tc.field {
			t.Errorf("want error in %s, got %v", tc.field, err)
		}
	}
	b, err := p.Encode()
	if err != nil || len(b) != 64+160 {
		t.Fatal(err, len(b))
	}
	pk, _ := keys.MarshalPublicKey(&k.PublicKey)
	id := sha512.Sum384(pk[:])
	if !bytes.Equal(b[64:112], id[:]) || !bytes.Equal(b[112:209], pk[:]) {
		t.Fatal("signer layout")
	}
}
