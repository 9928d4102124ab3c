// Package golden generates the golden files of testdata/golden (see its README.md). The
// generator is deterministic: keys come from fixed seeds (bios.DeriveTestKey) and manifests
// are signed with RFC 6979 nonces, so Generate always returns the same bytes. The committed
// files are checked against Generate by the package test, and decoded/verified independently
// by the bios, policy and shimimage tests.
package golden

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sort"

	"github.com/sevshim/sevshim/pkg/bios"
	"github.com/sevshim/sevshim/pkg/format/policy"
	"github.com/sevshim/sevshim/pkg/format/shimerr"
	"github.com/sevshim/sevshim/pkg/format/shimimage"
	"github.com/sevshim/sevshim/pkg/format/shimimage/shimtest"
)

// File is one generated file, path relative to testdata/golden.
type File struct {
	Path string
	Data []byte
}

// Cases is the schema of cases.json.
type Cases struct {
	Note       string         `json:"note"`
	Keys       []KeyCase      `json:"keys"`
	Images     []ImageCase    `json:"bios_images"`
	Policies   []PolicyCase   `json:"policies"`
	Manifests  []ManifestCase `json:"manifests"`
	ShimImages []ShimCase     `json:"shim_images"`
	Checks     []CheckCase    `json:"checks"`
}

type KeyCase struct {
	Name      string `json:"name"`
	Private   string `json:"private"`
	Public    string `json:"public"`
	PublicKey string `json:"public_key"` // 97-byte SEC1, hex
	KeyID     string `json:"key_id"`
}

type ImageCase struct {
	File   string `json:"file"`
	Size   int    `json:"size"`
	SHA384 string `json:"sha384"`
	What   string `json:"what"`
}

type SignerCase struct {
	Key        string `json:"key"`
	KeyID      string `json:"key_id"`
	MinVersion uint64 `json:"min_version"`
}

type PolicyCase struct {
	File  string `json:"file"`
	Valid bool   `json:"valid"`
	What  string `json:"what"`
	// for invalid files: the Go error field, and what the shim reports when the file is the
	// block (exact length) or is placed at the start of a zeroed 16 KiB region
	ErrorField   string `json:"error_field,omitempty"`
	ExpectBlock  string `json:"expect_block"`
	ExpectRegion string `json:"expect_region"`
	// for valid files
	TotalSize      int          `json:"total_size,omitempty"`
	Digest         string       `json:"digest,omitempty"`
	LayoutID       uint32       `json:"layout_id,omitempty"`
	SecretMode     uint8        `json:"secret_mode"`
	TPMMode        uint8        `json:"tpm_mode"`
	TPMPCR         uint8        `json:"tpm_pcr"`
	Signers        []SignerCase `json:"signers,omitempty"`
	DeniedDigests  []string     `json:"denied_digests,omitempty"`
	DeniedVersions []uint64     `json:"denied_versions,omitempty"`
	VarsMode       uint8        `json:"vars_mode"`
	AllowedVars    []string     `json:"allowed_vars,omitempty"`
}

type ManifestCase struct {
	File string `json:"file"`
	What string `json:"what"`
	Size int    `json:"size"`
	// Structure is the shim's verdict on the bytes alone: OK, E021 (size) or E022 (malformed).
	Structure string `json:"structure"`
	// ParseOK: bios.ParseManifest accepts it (structure + known layout + image_size).
	ParseOK    bool   `json:"parse_ok"`
	ErrorField string `json:"error_field,omitempty"`
	// SignedBy: the key whose signature verifies, "" if none does.
	SignedBy      string `json:"signed_by"`
	LayoutID      uint32 `json:"layout_id,omitempty"`
	ImageSize     uint64 `json:"image_size,omitempty"`
	BIOSVersion   uint64 `json:"bios_version,omitempty"`
	ImageDigest   string `json:"image_digest,omitempty"`
	SignerKeyID   string `json:"signer_key_id,omitempty"`
	VersionString string `json:"version_string,omitempty"`
}

type EntryCase struct {
	GUID   string `json:"guid"`
	Name   string `json:"name"`
	Offset int    `json:"data_offset"`
	Data   string `json:"data"`
}

type ShimCase struct {
	File         string      `json:"file"`
	What         string      `json:"what"`
	Size         int         `json:"size"`
	TableLength  int         `json:"table_length"`
	Entries      []EntryCase `json:"entries"`
	PolicyOffset int         `json:"policy_offset"`
	PolicySize   int         `json:"policy_size"`
	Policy       string      `json:"policy"` // golden policy file embedded, "" = empty region
}

// CheckCase is one run of the shim decision; "" for a file means absent.
type CheckCase struct {
	Name     string `json:"name"`
	Policy   string `json:"policy"`
	Manifest string `json:"manifest"`
	BIOS     string `json:"bios"`
	Vars     string `json:"vars"`
	Expect   string `json:"expect"`
}

type gen struct {
	files map[string][]byte
	cases Cases
	keys  map[string]*ecdsa.PrivateKey
}

func hx(b []byte) string { return hex.EncodeToString(b) }

func (g *gen) add(path string, data []byte) { g.files[path] = data }

func (g *gen) key(name string) *ecdsa.PrivateKey {
	if k, ok := g.keys[name]; ok {
		return k
	}
	k := bios.DeriveTestKey("golden/" + name)
	g.keys[name] = k
	return k
}

func (g *gen) keyName(id [48]byte) string {
	for n, k := range g.keys {
		if bios.KeyID(&k.PublicKey) == id {
			return n
		}
	}
	return ""
}

// Generate builds every golden file and cases.json.
func Generate() ([]File, error) {
	g := &gen{files: map[string][]byte{}, keys: map[string]*ecdsa.PrivateKey{}}
	if err := g.run(); err != nil {
		return nil, err
	}
	cj, err := json.MarshalIndent(g.cases, "", "  ")
	if err != nil {
		return nil, err
	}
	g.add("cases.json", append(cj, '\n'))
	var out []File
	for p, d := range g.files {
		out = append(out, File{p, d})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// LargeSize: generated files bigger than this (the BIOS-sized images, var stores and synthetic
// shim images) are build output, not committed; testdata/golden/.gitignore lists them and
// EnsureLarge writes them before a test reads them.
const LargeSize = 128 << 10

// IsLarge says whether f is one of the generated, uncommitted files.
func IsLarge(f File) bool { return len(f.Data) > LargeSize }

// EnsureLarge writes the large golden files under dir where they are missing or differ from
// the generator's output. Each file is written to a temporary name and renamed, so tests in
// other packages that run at the same time read either nothing or a whole file.
func EnsureLarge(dir string) error {
	files, err := Generate()
	if err != nil {
		return err
	}
	for _, f := range files {
		if !IsLarge(f) {
			continue
		}
		p := filepath.Join(dir, f.Path)
		if old, err := os.ReadFile(p); err == nil && bytes.Equal(old, f.Data) {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		tmp, err := os.CreateTemp(filepath.Dir(p), ".gen-*")
		if err != nil {
			return err
		}
		_, werr := tmp.Write(f.Data)
		cerr := tmp.Close()
		if werr == nil {
			werr = cerr
		}
		if werr == nil {
			werr = os.Chmod(tmp.Name(), 0o644)
		}
		if werr == nil {
			werr = os.Rename(tmp.Name(), p)
		}
		if werr != nil {
			os.Remove(tmp.Name())
			return fmt.Errorf("golden: writing %s: %w", p, werr)
		}
	}
	return nil
}

// Write stores files under dir.
func Write(dir string, files []File) error {
	for _, f := range files {
		p := filepath.Join(dir, f.Path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, f.Data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

const codeSize = 0x37C000
const varsSize = 0x84000
const codeSize2M = 0x1E0000 // layout ovmf-2m (shim/include/sevshim/layouts.def)

func (g *gen) run() error {
	g.cases.Note = "Generated by `go run ./tests/golden/mkgolden`; see README.md. Codes are shim error codes (docs/errors.md); OK = accepted."
	// ---- keys
	for _, n := range []string{"signer-a", "signer-b", "signer-c", "outsider"} {
		k := g.key(n)
		priv, err := bios.MarshalPrivateKeyPEM(k)
		if err != nil {
			return err
		}
		pub, err := policy.MarshalPublicKeyPEM(&k.PublicKey)
		if err != nil {
			return err
		}
		g.add("keys/"+n+".pem", priv)
		g.add("keys/"+n+".pub.pem", pub)
		pk, _ := policy.MarshalPublicKey(&k.PublicKey)
		id := bios.KeyID(&k.PublicKey)
		g.cases.Keys = append(g.cases.Keys, KeyCase{n, "keys/" + n + ".pem", "keys/" + n + ".pub.pem", hx(pk[:]), hx(id[:])})
	}
	// ---- BIOS images and vars
	zero := make([]byte, codeSize)
	pattern := make([]byte, codeSize)
	for i := range pattern {
		pattern[i] = byte(i*7 + i>>11)
	}
	flipped := bytes.Clone(zero)
	flipped[0x1234] ^= 0x08
	images := []struct {
		name, what string
		data       []byte
	}{
		{"image-zero.bin", "0x37C000 zero bytes (stands in for a BIOS of layout ovmf-4m)", zero},
		{"image-pattern.bin", "0x37C000 bytes, byte i = (i*7 + (i>>11)) & 0xff", pattern},
		{"image-zero-bitflip.bin", "image-zero with bit 3 of byte 0x1234 set", flipped},
		{"image-truncated.bin", "image-zero minus its last byte", zero[:codeSize-1]},
		{"image-oversized.bin", "image-zero plus one zero byte", make([]byte, codeSize+1)},
		{"image-empty.bin", "empty file (a present but empty fw_cfg file)", []byte{}},
		{"vars-zero.bin", "0x84000 zero bytes: a vars file of the right size", make([]byte, varsSize)},
		{"vars-short.bin", "0x83FFF zero bytes: one byte short", make([]byte, varsSize-1)},
		{"vars-empty.bin", "empty vars file", []byte{}},
		{"vars-pattern.bin", "0x84000 bytes of 0x5A: a vars file of the right size that no golden policy allows", bytes.Repeat([]byte{0x5A}, varsSize)},
		{"image-zero-2m.bin", "0x1E0000 zero bytes (stands in for a BIOS of layout ovmf-2m)", make([]byte, codeSize2M)},
	}
	for _, im := range images {
		g.add("bios/"+im.name, im.data)
		d := sha512.Sum384(im.data)
		g.cases.Images = append(g.cases.Images, ImageCase{"bios/" + im.name, len(im.data), hx(d[:]), im.what})
	}
	if err := g.policies(sha512.Sum384(pattern), sha512.Sum384(make([]byte, varsSize))); err != nil {
		return err
	}
	if err := g.manifests(zero, pattern); err != nil {
		return err
	}
	if err := g.shimImages(); err != nil {
		return err
	}
	if err := g.receipts(); err != nil {
		return err
	}
	return g.checks()
}

func signer(k *ecdsa.PrivateKey, min uint64) policy.Signer {
	return policy.Signer{PublicKey: &k.PublicKey, MinVersion: min}
}

func fakeDigest(s string) [48]byte { return sha512.Sum384([]byte("denied digest " + s)) }

func (g *gen) policyValid(name, what string, p *policy.Policy) ([]byte, error) {
	b, err := p.Encode()
	if err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	g.add("policy/"+name, b)
	d := sha512.Sum384(b)
	pc := PolicyCase{File: "policy/" + name, Valid: true, What: what, ExpectBlock: "OK", ExpectRegion: "OK",
		TotalSize: len(b), Digest: hx(d[:]), LayoutID: p.Layout, SecretMode: p.SecretMode,
		TPMMode: p.TPMMode, TPMPCR: p.TPMPCR, DeniedVersions: p.DeniedVersions, VarsMode: p.VarsMode}
	for _, av := range p.AllowedVars {
		pc.AllowedVars = append(pc.AllowedVars, hx(av[:]))
	}
	for _, s := range p.Signers {
		id := s.KeyID()
		pc.Signers = append(pc.Signers, SignerCase{g.keyName(id), hx(id[:]), s.MinVersion})
	}
	for _, dd := range p.DeniedDigests {
		pc.DeniedDigests = append(pc.DeniedDigests, hx(dd[:]))
	}
	g.cases.Policies = append(g.cases.Policies, pc)
	return b, nil
}

func (g *gen) policyInvalid(name, what string, b []byte) error {
	_, err := policy.Decode(b)
	if err == nil {
		return fmt.Errorf("invalid policy %s decodes", name)
	}
	field := ""
	if pe, ok := err.(*policy.Error); ok {
		field = pe.Field
	}
	region := "E010"
	if len(b) <= policy.RegionSize {
		r := make([]byte, policy.RegionSize)
		copy(r, b)
		if _, err := policy.DecodeRegion(r); err == nil {
			return fmt.Errorf("invalid policy %s decodes as a region", name)
		}
	}
	g.add("policy/"+name, b)
	g.cases.Policies = append(g.cases.Policies, PolicyCase{File: "policy/" + name, What: what,
		ErrorField: field, ExpectBlock: "E010", ExpectRegion: region})
	return nil
}

func (g *gen) policies(patternDigest, varsZeroDigest [48]byte) error {
	a, b, c := g.key("signer-a"), g.key("signer-b"), g.key("signer-c")
	one := &policy.Policy{Layout: 1, Signers: []policy.Signer{signer(a, 0)}, VarsMode: policy.VarsAny}
	oneB, err := g.policyValid("one-signer.bin", "signer-a (floor 0); secret optional; TPM off; vars any", one)
	if err != nil {
		return err
	}
	three := &policy.Policy{Layout: 1, SecretMode: policy.SecretRequire, TPMMode: policy.TPMIfPresent, TPMPCR: 15,
		Signers:        []policy.Signer{signer(a, 5), signer(b, 3), signer(c, 10)},
		DeniedDigests:  [][48]byte{fakeDigest("1"), patternDigest, fakeDigest("2")},
		DeniedVersions: []uint64{7, 9},
		VarsMode:       policy.VarsAllow, AllowedVars: [][48]byte{varsZeroDigest}}
	threeB, err := g.policyValid("three-signers.bin", "signer-a floor 5, signer-b floor 3, signer-c floor 10; denies image-pattern's digest and versions 7, 9; secret require; TPM if-present PCR 15; vars allow: only bios/vars-zero.bin", three)
	if err != nil {
		return err
	}
	one2m := &policy.Policy{Layout: 2, Signers: []policy.Signer{signer(a, 0)}, VarsMode: policy.VarsAny}
	if _, err := g.policyValid("one-signer-2m.bin", "one-signer.bin for layout ovmf-2m (id 2)", one2m); err != nil {
		return err
	}
	none := &policy.Policy{Layout: 1, Signers: []policy.Signer{signer(a, 0)}}
	if _, err := g.policyValid("vars-none.bin", "signer-a (floor 0); vars none (the zero value): any vars file is refused", none); err != nil {
		return err
	}
	max := &policy.Policy{Layout: 1, SecretMode: policy.SecretRequire, TPMMode: policy.TPMRequired, TPMPCR: 23,
		VarsMode: policy.VarsAllow}
	for i := 0; i < policy.MaxAllowedVars; i++ {
		d := fakeDigest(fmt.Sprint("vars", i))
		if i == policy.MaxAllowedVars-1 {
			d = varsZeroDigest
		}
		max.AllowedVars = append(max.AllowedVars, d)
	}
	for i := 0; i < policy.MaxSigners; i++ {
		var k *ecdsa.PrivateKey
		switch i {
		case 0:
			k = a
		case 1:
			k = b
		case 2:
			k = c
		default:
			k = g.key(fmt.Sprintf("max-%02d", i))
		}
		max.Signers = append(max.Signers, signer(k, uint64(i)))
	}
	for i := 0; i < policy.MaxDeniedDigests; i++ {
		max.DeniedDigests = append(max.DeniedDigests, fakeDigest(fmt.Sprint("max", i)))
	}
	for i := 0; i < policy.MaxDeniedVersion; i++ {
		max.DeniedVersions = append(max.DeniedVersions, 1000+uint64(i))
	}
	maxB, err := g.policyValid("max.bin", "16 signers (a floor 0, b floor 1, c floor 2, derived keys max-03..15), 64 denied digests, 64 denied versions 1000..1063, 16 allowed var stores (the last is bios/vars-zero.bin); TPM required PCR 23", max)
	if err != nil {
		return err
	}
	// The region form of one-signer (valid as a region only).
	region := make([]byte, policy.RegionSize)
	copy(region, oneB)
	g.add("policy/region-one-signer.bin", region)
	g.cases.Policies = append(g.cases.Policies, PolicyCase{File: "policy/region-one-signer.bin", Valid: true,
		What: "one-signer.bin at the start of a zeroed 16 KiB region (decode with DecodeRegion)", ExpectBlock: "E010", ExpectRegion: "OK",
		TotalSize: len(oneB), LayoutID: 1, Signers: g.cases.Policies[0].Signers, Digest: g.cases.Policies[0].Digest,
		VarsMode: policy.VarsAny})

	// ---- invalid policies: one mutation each
	le := binary.LittleEndian
	mut := func(src []byte, f func(b []byte) []byte) []byte { return f(bytes.Clone(src)) }
	type inv struct {
		name, what string
		data       []byte
	}
	// a point not on the curve, with a matching key id so only the curve check fails
	offCurve := mut(oneB, func(x []byte) []byte {
		x[64+48+96] ^= 0x01
		id := sha512.Sum384(x[64+48 : 64+145])
		copy(x[64:], id[:])
		return x
	})
	dupSigner := mut(threeB, func(x []byte) []byte {
		copy(x[64+160:64+320], x[64:64+160]) // signers[1] = signers[0]
		return x
	})
	dupDigest := mut(threeB, func(x []byte) []byte {
		o := 64 + 3*160
		copy(x[o+48:o+96], x[o:o+48])
		return x
	})
	dupVersion := mut(threeB, func(x []byte) []byte {
		o := 64 + 3*160 + 3*48
		copy(x[o+8:o+16], x[o:o+8])
		return x
	})
	maxAllowed := 64 + 16*160 + 64*48 + 64*8
	invalid := []inv{
		{"bad-magic.bin", "magic SEVSHPOX", mut(oneB, func(x []byte) []byte { x[7] = 'X'; return x })},
		{"bad-version.bin", "format_version 3", mut(oneB, func(x []byte) []byte { le.PutUint16(x[8:], 3); return x })},
		{"version-1.bin", "format_version 1 (before the var-store fields): refused, never read as vars any", mut(oneB, func(x []byte) []byte { le.PutUint16(x[8:], 1); return x })},
		{"vars-mode-3.bin", "vars_mode 3", mut(oneB, func(x []byte) []byte { x[0x1E] = 3; return x })},
		{"vars-allow-empty.bin", "vars_mode allow with no allowed digest", mut(oneB, func(x []byte) []byte { x[0x1E] = 1; return x })},
		{"vars-any-with-list.bin", "three-signers with vars_mode any but one allowed digest", mut(threeB, func(x []byte) []byte { x[0x1E] = 2; return x })},
		{"vars-none-with-list.bin", "three-signers with vars_mode none but one allowed digest", mut(threeB, func(x []byte) []byte { x[0x1E] = 0; return x })},
		{"allowed-vars-count-17.bin", "allowed_vars_count 17 (above the maximum of 16)", mut(maxB, func(x []byte) []byte { le.PutUint16(x[0x20:], 17); return x })},
		{"duplicate-allowed-vars.bin", "max with allowed_vars[1] = allowed_vars[0]", mut(maxB, func(x []byte) []byte {
			copy(x[maxAllowed+48:maxAllowed+96], x[maxAllowed:maxAllowed+48])
			return x
		})},
		{"reserved-0x1f.bin", "reserved byte 0x1f (after vars_mode) = 1", mut(oneB, func(x []byte) []byte { x[0x1F] = 1; return x })},
		{"bad-header-size.bin", "header_size 65", mut(oneB, func(x []byte) []byte { le.PutUint16(x[0xA:], 65); return x })},
		{"bad-total-size.bin", "total_size one more than the counts give", mut(oneB, func(x []byte) []byte { le.PutUint32(x[0xC:], uint32(len(x)+1)); return x })},
		{"layout-zero.bin", "layout_id 0", mut(oneB, func(x []byte) []byte { le.PutUint32(x[0x10:], 0); return x })},
		{"layout-unknown.bin", "layout_id 3 (unknown)", mut(oneB, func(x []byte) []byte { le.PutUint32(x[0x10:], 3); return x })},
		{"secret-mode-2.bin", "secret_mode 2", mut(oneB, func(x []byte) []byte { x[0x14] = 2; return x })},
		{"tpm-mode-3.bin", "tpm_mode 3", mut(oneB, func(x []byte) []byte { x[0x15] = 3; return x })},
		{"tpm-pcr-24.bin", "tpm_mode 1, tpm_pcr 24", mut(oneB, func(x []byte) []byte { x[0x15] = 1; x[0x16] = 24; return x })},
		{"tpm-pcr-without-tpm.bin", "tpm_mode 0 with tpm_pcr 7", mut(oneB, func(x []byte) []byte { x[0x16] = 7; return x })},
		{"reserved-0x17.bin", "reserved byte 0x17 = 1", mut(oneB, func(x []byte) []byte { x[0x17] = 1; return x })},
		{"reserved-0x3f.bin", "last header reserved byte (0x3f) = 0x80", mut(oneB, func(x []byte) []byte { x[0x3F] = 0x80; return x })},
		{"signer-reserved.bin", "signer[0] reserved byte 145 = 1", mut(oneB, func(x []byte) []byte { x[64+145] = 1; return x })},
		{"signer-bad-key-id.bin", "signer[0] key_id with one bit flipped", mut(oneB, func(x []byte) []byte { x[64] ^= 1; return x })},
		{"signer-off-curve.bin", "signer[0] public key not on P-384 (key_id matches it)", offCurve},
		{"signer-compressed.bin", "signer[0] public key prefix 0x02 (key_id matches)", mut(oneB, func(x []byte) []byte {
			x[64+48] = 0x02
			id := sha512.Sum384(x[64+48 : 64+145])
			copy(x[64:], id[:])
			return x
		})},
		{"signer-count-0.bin", "signer_count 0 (total_size adjusted, no signers)", func() []byte {
			x := bytes.Clone(oneB[:64])
			le.PutUint16(x[0x18:], 0)
			le.PutUint32(x[0xC:], 64)
			return x
		}()},
		{"signer-count-17.bin", "signer_count 17 (above the maximum of 16)", mut(oneB, func(x []byte) []byte { le.PutUint16(x[0x18:], 17); return x })},
		{"denied-digest-count-65.bin", "denied_digest_count 65", mut(oneB, func(x []byte) []byte { le.PutUint16(x[0x1A:], 65); return x })},
		{"denied-version-count-65.bin", "denied_version_count 65", mut(oneB, func(x []byte) []byte { le.PutUint16(x[0x1C:], 65); return x })},
		{"duplicate-signer.bin", "three-signers with signers[1] = signers[0]", dupSigner},
		{"duplicate-denied-digest.bin", "three-signers with denied_digests[1] = denied_digests[0]", dupDigest},
		{"duplicate-denied-version.bin", "three-signers with denied_versions[1] = denied_versions[0]", dupVersion},
		{"truncated.bin", "first 100 bytes of one-signer.bin", bytes.Clone(oneB[:100])},
		{"trailing-byte.bin", "one-signer.bin plus one 0xAA byte", append(bytes.Clone(oneB), 0xAA)},
		{"header-only.bin", "first 63 bytes of one-signer.bin", bytes.Clone(oneB[:63])},
		{"empty.bin", "empty file", []byte{}},
	}
	for _, iv := range invalid {
		if err := g.policyInvalid(iv.name, iv.what, iv.data); err != nil {
			return err
		}
	}
	// A region whose bytes after total_size are not zero.
	bad := bytes.Clone(region)
	bad[policy.RegionSize-1] = 1
	if _, err := policy.DecodeRegion(bad); err == nil {
		return fmt.Errorf("region-trailing-nonzero decodes")
	}
	g.add("policy/region-trailing-nonzero.bin", bad)
	g.cases.Policies = append(g.cases.Policies, PolicyCase{File: "policy/region-trailing-nonzero.bin",
		What: "region-one-signer.bin with its last byte set to 1", ErrorField: "region", ExpectBlock: "E010", ExpectRegion: "E010"})
	return nil
}

func (g *gen) manifestCase(name, what string, b []byte) {
	mc := ManifestCase{File: "manifest/" + name, What: what, Size: len(b), Structure: "OK"}
	code := bios.StructureCode(b)
	if code != shimerr.OK {
		mc.Structure = code.ID()
	}
	m, err := bios.ParseManifest(b)
	if err != nil {
		if me, ok := err.(*bios.Error); ok {
			mc.ErrorField = me.Field
		}
	} else {
		mc.ParseOK = true
	}
	if m == nil && code == shimerr.OK {
		m, _ = bios.ParseManifestStructure(b)
	}
	if m != nil {
		mc.LayoutID, mc.ImageSize, mc.BIOSVersion = m.Layout, m.ImageSize, m.Version
		mc.ImageDigest, mc.SignerKeyID, mc.VersionString = hx(m.ImageDigest[:]), hx(m.SignerKeyID[:]), m.VersionString
		for _, n := range []string{"signer-a", "signer-b", "signer-c", "outsider"} {
			k := g.key(n)
			if bios.KeyID(&k.PublicKey) == m.SignerKeyID && m.Verify(&k.PublicKey) == nil {
				mc.SignedBy = n
			}
		}
	}
	g.add("manifest/"+name, b)
	g.cases.Manifests = append(g.cases.Manifests, mc)
}

func (g *gen) sign(key string, m *bios.Manifest) ([]byte, error) {
	return m.SignDeterministic(g.key(key))
}

func (g *gen) manifests(zero, pattern []byte) error {
	type valid struct {
		name, key string
		img       []byte
		ver       uint64
		vs        string
	}
	long := "edk2-stable202211 sevshim golden manifest with a 63-char string"
	if len(long) != 63 {
		return fmt.Errorf("long version string is %d chars", len(long))
	}
	signed := map[string][]byte{}
	for _, v := range []valid{
		{"a-v5-zero.bin", "signer-a", zero, 5, "golden zero v5"},
		{"a-v6-pattern.bin", "signer-a", pattern, 6, "golden pattern v6"},
		{"a-v7-zero.bin", "signer-a", zero, 7, "golden zero v7"},
		{"a-v2-zero.bin", "signer-a", zero, 2, "golden zero v2"},
		{"a-v9-empty-string.bin", "signer-a", zero, 9, ""},
		{"a-v5-long-string.bin", "signer-a", zero, 5, long},
		{"b-v3-pattern.bin", "signer-b", pattern, 3, "golden pattern v3 by b"},
		{"c-v12-zero.bin", "signer-c", zero, 12, "golden zero v12 by c"},
		{"c-v9-zero.bin", "signer-c", zero, 9, "golden zero v9 by c"},
		{"outsider-v5-zero.bin", "outsider", zero, 5, "signed by a key no policy trusts"},
	} {
		m, err := bios.NewManifest(1, v.img, v.ver, v.vs, &g.key(v.key).PublicKey)
		if err != nil {
			return err
		}
		b, err := g.sign(v.key, m)
		if err != nil {
			return err
		}
		signed[v.name] = b
		g.manifestCase(v.name, fmt.Sprintf("valid: %s, %s, version %d, %q", v.key, "bios/image-"+map[bool]string{true: "zero", false: "pattern"}[&v.img[0] == &zero[0]]+".bin", v.ver, v.vs), b)
	}
	// signed, but with a layout / image size the shim refuses after the signature; and the
	// valid manifest of layout ovmf-2m (the other row of the layout table)
	for _, c := range []struct {
		name, what, vs string
		layout         uint32
		img            []byte
		edit           func(m *bios.Manifest)
	}{
		{"a-layout-2.bin", "correctly signed by signer-a, layout_id 2 (ovmf-2m) with the ovmf-4m image size", "layout 2", 1, zero,
			func(m *bios.Manifest) { m.Layout = 2 }},
		{"a-layout-3.bin", "correctly signed by signer-a, layout_id 3 (unknown)", "layout 3", 1, zero,
			func(m *bios.Manifest) { m.Layout = 3 }},
		{"a-v5-zero-2m.bin", "valid: signer-a, bios/image-zero-2m.bin (layout ovmf-2m), version 5", "golden zero v5 ovmf-2m", 2,
			make([]byte, codeSize2M), func(*bios.Manifest) {}},
		{"a-image-size-4m.bin", "correctly signed by signer-a, image_size 0x400000", "image size 4 MiB", 1, zero,
			func(m *bios.Manifest) { m.ImageSize = 0x400000 }},
	} {
		m, err := bios.NewManifest(c.layout, c.img, 5, c.vs, &g.key("signer-a").PublicKey)
		if err != nil {
			return err
		}
		c.edit(m)
		b, err := g.sign("signer-a", m)
		if err != nil {
			return err
		}
		g.manifestCase(c.name, c.what, b)
	}

	// byte mutations of a-v5-zero
	base := signed["a-v5-zero.bin"]
	le := binary.LittleEndian
	mut := func(f func(x []byte) []byte) []byte { return f(bytes.Clone(base)) }
	n := elliptic.P384().Params().N
	for _, mv := range []struct {
		name, what string
		data       []byte
	}{
		{"bad-magic.bin", "magic SEVSHMAX", mut(func(x []byte) []byte { x[7] = 'X'; return x })},
		{"bad-version.bin", "format_version 2", mut(func(x []byte) []byte { le.PutUint16(x[8:], 2); return x })},
		{"bad-signed-size.bin", "signed_size 0x160", mut(func(x []byte) []byte { le.PutUint16(x[0xA:], 0x160); return x })},
		{"reserved-set.bin", "reserved byte 0xc5 = 1", mut(func(x []byte) []byte { x[0xC5] = 1; return x })},
		{"reserved-last.bin", "reserved byte 0xff = 0x80", mut(func(x []byte) []byte { x[0xFF] = 0x80; return x })},
		{"version-string-control.bin", "version_string contains 0x07", mut(func(x []byte) []byte { x[0x81] = 0x07; return x })},
		{"version-string-high.bin", "version_string contains 0x7f", mut(func(x []byte) []byte { x[0x80] = 0x7F; return x })},
		{"version-string-no-nul.bin", "version_string of 64 'A' (no NUL)", mut(func(x []byte) []byte {
			copy(x[0x80:0xC0], bytes.Repeat([]byte{'A'}, 64))
			return x
		})},
		{"version-string-after-nul.bin", "a non-zero byte after the version string's NUL", mut(func(x []byte) []byte { x[0xBF] = 'Z'; return x })},
		{"truncated.bin", "first 351 bytes", bytes.Clone(base[:351])},
		{"oversized.bin", "353 bytes (a zero appended)", append(bytes.Clone(base), 0)},
		{"empty.bin", "empty file", []byte{}},
		{"garbage.bin", "352 bytes of 0xA5", bytes.Repeat([]byte{0xA5}, 352)},
		{"signature-bitflip.bin", "bit 0 of signature byte 0x130 flipped", mut(func(x []byte) []byte { x[0x130] ^= 1; return x })},
		{"digest-bitflip.bin", "bit 0 of image_digest byte 0 flipped (signature no longer matches)", mut(func(x []byte) []byte { x[0x20] ^= 1; return x })},
		{"version-changed.bin", "bios_version changed to 6 without re-signing", mut(func(x []byte) []byte { le.PutUint64(x[0x18:], 6); return x })},
		{"signature-zero.bin", "r = s = 0", mut(func(x []byte) []byte { clear(x[0x100:]); return x })},
		{"signature-high-s.bin", "s replaced by n - s: still a mathematically valid ECDSA signature, but not low-s (E027)", mut(func(x []byte) []byte {
			sv := new(big.Int).SetBytes(x[0x130:0x160])
			new(big.Int).Sub(n, sv).FillBytes(x[0x130:0x160])
			return x
		})},
		{"signature-s-is-n.bin", "s replaced by the group order n", mut(func(x []byte) []byte { n.FillBytes(x[0x130:0x160]); return x })},
		{"signature-r-is-n.bin", "r replaced by the group order n", mut(func(x []byte) []byte { n.FillBytes(x[0x100:0x130]); return x })},
		{"signature-swapped.bin", "r and s swapped", mut(func(x []byte) []byte {
			var t [48]byte
			copy(t[:], x[0x100:0x130])
			copy(x[0x100:0x130], x[0x130:0x160])
			copy(x[0x130:0x160], t[:])
			return x
		})},
		{"key-id-b.bin", "signer_key_id replaced by signer-b's (signature by a)", mut(func(x []byte) []byte {
			id := bios.KeyID(&g.key("signer-b").PublicKey)
			copy(x[0x50:0x80], id[:])
			return x
		})},
	} {
		g.manifestCase(mv.name, mv.what, mv.data)
	}
	return nil
}

func (g *gen) shimImages() error {
	tmpl := shimtest.Template(1)
	one := g.files["policy/one-signer.bin"]
	built, err := shimimage.EmbedPolicy(tmpl, one)
	if err != nil {
		return err
	}
	for _, s := range []struct {
		name, what, pol string
		data            []byte
	}{
		{"shim-template.bin", "synthetic (not bootable) sevshim template of layout ovmf-4m, empty policy region", "", tmpl},
		{"shim-one-signer.bin", "the synthetic template with policy/one-signer.bin embedded", "policy/one-signer.bin", built},
		{"shim-template-2m.bin", "synthetic (not bootable) sevshim template of layout ovmf-2m, empty policy region", "", shimtest.Template(2)},
	} {
		in, err := shimimage.Info(s.data)
		if err != nil {
			return err
		}
		sc := ShimCase{File: "image/" + s.name, What: s.what, Size: len(s.data), PolicyOffset: in.PolicyOffset,
			PolicySize: in.PolicySize, Policy: s.pol,
			TableLength: int(le16(s.data[len(s.data)-0x32:]))}
		for _, e := range in.Entries {
			sc.Entries = append(sc.Entries, EntryCase{e.GUID.String(), e.Name(), e.Offset, hx(e.Data)})
		}
		g.add("image/"+s.name, s.data)
		g.cases.ShimImages = append(g.cases.ShimImages, sc)
	}
	return nil
}

func le16(b []byte) uint16 { return binary.LittleEndian.Uint16(b) }

func (g *gen) checks() error {
	add := func(name, pol, man, bio, vars string) {
		code := g.check(pol, man, bio, vars)
		g.cases.Checks = append(g.cases.Checks, CheckCase{name, pol, man, bio, vars, code.String()})
	}
	P1, P3, PM := "policy/one-signer.bin", "policy/three-signers.bin", "policy/max.bin"
	Z, PAT := "bios/image-zero.bin", "bios/image-pattern.bin"
	M := func(s string) string { return "manifest/" + s }
	add("ok", P1, M("a-v5-zero.bin"), Z, "")
	add("ok-with-vars", P1, M("a-v5-zero.bin"), Z, "bios/vars-zero.bin")
	add("ok-region-policy", "policy/region-one-signer.bin", M("a-v5-zero.bin"), Z, "")
	add("ok-long-version-string", P1, M("a-v5-long-string.bin"), Z, "")
	add("ok-pattern", P1, M("a-v6-pattern.bin"), PAT, "")
	add("vars-short", P1, M("a-v5-zero.bin"), Z, "bios/vars-short.bin")
	add("vars-empty", P1, M("a-v5-zero.bin"), Z, "bios/vars-empty.bin")
	add("vars-is-bios", P1, M("a-v5-zero.bin"), Z, Z)
	VN := "policy/vars-none.bin"
	add("vars-none-without-vars", VN, M("a-v5-zero.bin"), Z, "")
	add("vars-none-with-vars", VN, M("a-v5-zero.bin"), Z, "bios/vars-zero.bin")
	add("vars-none-with-short-vars", VN, M("a-v5-zero.bin"), Z, "bios/vars-short.bin")
	add("vars-none-bad-bios-wins", VN, M("a-v5-zero.bin"), PAT, "bios/vars-zero.bin")
	add("vars-allow-listed", P3, M("a-v5-zero.bin"), Z, "bios/vars-zero.bin")
	add("vars-allow-unlisted", P3, M("a-v5-zero.bin"), Z, "bios/vars-pattern.bin")
	add("vars-allow-short", P3, M("a-v5-zero.bin"), Z, "bios/vars-short.bin")
	add("vars-allow-listed-max", PM, M("a-v5-zero.bin"), Z, "bios/vars-zero.bin")
	add("vars-allow-unlisted-max", PM, M("a-v5-zero.bin"), Z, "bios/vars-pattern.bin")
	add("vars-any-pattern", P1, M("a-v5-zero.bin"), Z, "bios/vars-pattern.bin")
	add("policy-invalid", "policy/bad-magic.bin", M("a-v5-zero.bin"), Z, "")
	add("policy-invalid-region", "policy/region-trailing-nonzero.bin", M("a-v5-zero.bin"), Z, "")
	add("manifest-missing", P1, "", Z, "")
	add("manifest-missing-bios-missing", P1, "", "", "")
	for _, mc := range g.cases.Manifests {
		switch mc.File {
		case M("a-v5-zero.bin"), M("a-v6-pattern.bin"):
			continue
		}
		bio := Z
		if bytes.Contains([]byte(mc.File), []byte("pattern")) {
			bio = PAT
		}
		add("p1-"+filepath.Base(mc.File), P1, mc.File, bio, "")
	}
	P2, Z2 := "policy/one-signer-2m.bin", "bios/image-zero-2m.bin"
	add("ok-ovmf-2m", P2, M("a-v5-zero-2m.bin"), Z2, "")
	add("ovmf-2m-policy-4m-manifest", P2, M("a-v5-zero.bin"), Z, "")
	add("ovmf-2m-policy-4m-bios", P2, M("a-v5-zero-2m.bin"), Z, "")
	add("ovmf-2m-4m-vars", P2, M("a-v5-zero-2m.bin"), Z2, "bios/vars-zero.bin")
	add("ovmf-4m-policy-2m-bios", P1, M("a-v5-zero-2m.bin"), Z2, "")
	add("bios-missing", P1, M("a-v5-zero.bin"), "", "")
	add("bios-empty", P1, M("a-v5-zero.bin"), "bios/image-empty.bin", "")
	add("bios-truncated", P1, M("a-v5-zero.bin"), "bios/image-truncated.bin", "")
	add("bios-oversized", P1, M("a-v5-zero.bin"), "bios/image-oversized.bin", "")
	add("bios-bitflip", P1, M("a-v5-zero.bin"), "bios/image-zero-bitflip.bin", "")
	add("bios-other-image", P1, M("a-v5-zero.bin"), PAT, "")
	add("bios-other-image-with-bad-vars", P1, M("a-v5-zero.bin"), PAT, "bios/vars-short.bin")
	for _, mc := range g.cases.Manifests {
		if mc.SignedBy == "" || !mc.ParseOK {
			continue
		}
		bio := Z
		if bytes.Contains([]byte(mc.File), []byte("pattern")) {
			bio = PAT
		}
		add("p3-"+filepath.Base(mc.File), P3, mc.File, bio, "")
		add("pmax-"+filepath.Base(mc.File), PM, mc.File, bio, "")
	}
	return nil
}

func (g *gen) check(pol, man, bio, vars string) shimerr.Code {
	get := func(p string) ([]byte, bool) {
		if p == "" {
			return nil, false
		}
		d, ok := g.files[p]
		if !ok {
			panic("golden: no file " + p)
		}
		return d, true
	}
	pb, _ := get(pol)
	mb, mp := get(man)
	bb, bp := get(bio)
	vb, vp := get(vars)
	return bios.CheckEncoded(pb, mb, mp, bb, bp, vb, vp)
}
