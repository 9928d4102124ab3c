package golden

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha512"
	"errors"
	"fmt"

	"github.com/sevshim/sevshim/pkg/format/layout"
	"github.com/sevshim/sevshim/pkg/format/manifest"
	"github.com/sevshim/sevshim/pkg/format/policy"
	"github.com/sevshim/sevshim/pkg/format/shimimage"
	"github.com/sevshim/sevshim/pkg/keys"
)

// vectors writes vectors/: the inputs of shim/test/test_verify.c's crafted cases and of the
// fuzz seeds (shim/test/mkcorpus.sh). key1 and key2 are the golden keys signer-a and signer-b;
// every manifest covers the C tests' pattern BIOS (byte i = i*7 + (i >> 12), one code region
// of layout ovmf-4m), version 5, version string "pattern-bios 5":
//
//	key1.pub, key2.pub   97-byte SEC1 public keys
//	good.man             signed by key1
//	key2.man             signed by key2
//	layout2.man          layout_id 2 (not in the layout table), signed by key1
//	imgsize.man          image_size one page short of the code region, signed by key1
//	key1.policy          one signer (key1, min_version 0), vars_mode any
//	key12.policy         key1 and key2 (min_version 3), version 9 denied, vars_mode any
func (g *gen) vectors() error {
	l, ok := layout.ByID(layout.OVMF4M)
	if !ok {
		return errors.New("layout ovmf-4m missing")
	}
	pattern := make([]byte, l.CodeSize)
	for i := range pattern {
		pattern[i] = byte(i*7 + i>>12)
	}
	k1, k2 := g.key("signer-a"), g.key("signer-b")
	for n, k := range map[string]*ecdsa.PrivateKey{"key1.pub": k1, "key2.pub": k2} {
		pk, err := keys.MarshalPublicKey(&k.PublicKey)
		if err != nil {
			return err
		}
		g.add("vectors/"+n, pk[:])
	}
	base := manifest.Manifest{Layout: layout.OVMF4M, ImageSize: uint64(l.CodeSize), Version: 5,
		ImageDigest: sha512.Sum384(pattern), SignerKeyID: keys.KeyID(&k1.PublicKey), VersionString: "pattern-bios 5"}
	layout2, imgsize, key2 := base, base, base
	layout2.Layout = 2
	imgsize.ImageSize -= 0x1000
	key2.SignerKeyID = keys.KeyID(&k2.PublicKey)
	for _, m := range []struct {
		name, key string
		m         manifest.Manifest
	}{{"good.man", "signer-a", base}, {"key2.man", "signer-b", key2}, {"layout2.man", "signer-a", layout2}, {"imgsize.man", "signer-a", imgsize}} {
		b, err := g.sign(m.key, &m.m)
		if err != nil {
			return fmt.Errorf("vectors/%s: %w", m.name, err)
		}
		g.add("vectors/"+m.name, b)
	}
	for _, p := range []struct {
		name string
		pol  policy.Policy
	}{
		{"key1.policy", policy.Policy{Layout: layout.OVMF4M, VarsMode: policy.VarsAny, Signers: []policy.Signer{signer(k1, 0)}}},
		{"key12.policy", policy.Policy{Layout: layout.OVMF4M, VarsMode: policy.VarsAny,
			Signers: []policy.Signer{signer(k1, 3), signer(k2, 3)}, DeniedVersions: []uint64{9}}},
	} {
		b, err := p.pol.Encode()
		if err != nil {
			return fmt.Errorf("vectors/%s: %w", p.name, err)
		}
		g.add("vectors/"+p.name, b)
	}
	return nil
}

// CheckTemplate checks the footer table of a shim template as `make shim` builds it
// (docs/formats.md section 4), for either layout: one code region of a layout of the table
// (pkg/format/layout, picked by the image's size), exactly four entries (sevshim info with
// shim format 1 and that layout's id, the policy region, a non-empty SEV secret block and the
// SEV-ES reset block), the policy region at its fixed GPA and all zero. It returns a one-line
// summary.
func CheckTemplate(img []byte) (string, error) {
	l, ok := layout.BySize(len(img))
	if !ok {
		return "", fmt.Errorf("image is %d bytes, the code size of no layout (%v)", len(img), layout.Names())
	}
	in, err := shimimage.Info(img)
	if err != nil {
		return "", err
	}
	switch {
	case len(in.Entries) != 4:
		return "", fmt.Errorf("footer has %d entries, want 4", len(in.Entries))
	case !in.HasInfo || in.ShimFormat != 1 || in.Layout != l.ID:
		return "", fmt.Errorf("sevshim info entry is (%d, %d), want (1, %d: %s is the size of %s)", in.ShimFormat, in.Layout, l.ID, l.Name, l.Name)
	case !in.SecretUsable():
		return "", errors.New("SEV secret block entry missing or empty")
	case !in.HasSEVESReset:
		return "", errors.New("SEV-ES reset block entry missing")
	case func() bool {
		e, err := shimimage.Find(in.Entries, shimimage.SEVESResetGUID)
		return err != nil || len(e.Data) != 4
	}():
		return "", errors.New("SEV-ES reset block entry does not hold 4 data bytes")
	case !in.HasPolicy || in.PolicySize != policyRegionSize:
		return "", fmt.Errorf("policy region of %#x bytes, want %#x", in.PolicySize, policyRegionSize)
	case in.PolicyGPA != policyGPA:
		return "", fmt.Errorf("policy region at gpa %#x, want %#x", in.PolicyGPA, policyGPA)
	}
	codeBase := uint32(uint64(1<<32) - uint64(l.CodeSize))
	if in.PolicyOffset != int(policyGPA-codeBase) {
		return "", fmt.Errorf("policy region at offset %#x, want %#x", in.PolicyOffset, policyGPA-codeBase)
	}
	if !bytes.Equal(img[in.PolicyOffset:in.PolicyOffset+in.PolicySize], make([]byte, in.PolicySize)) {
		return "", errors.New("template policy region is not all zero")
	}
	return fmt.Sprintf("footer OK (%s): policy offset %#x gpa %#x, secret %#x+%#x, reset block %#x",
		l.Name, in.PolicyOffset, in.PolicyGPA, in.SecretBase, in.SecretSize, in.SEVESResetIP), nil
}

// The policy region of every shim image (docs/formats.md section 4).
const (
	policyGPA        = 0xFFFD0000
	policyRegionSize = 0x4000
)
