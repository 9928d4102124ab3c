// Package difftest compares the shim's C verification (src/verify.c, run on the host through
// build/shim/host/sevshim-verify) with the Go reference verifyref.Check on a few hundred inputs:
// Go signs, C verifies, and any disagreement fails the test. `make test` builds the tool first
// (make -C shim); without it the test skips and says how to build it.
package difftest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha512"
	"encoding/binary"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sevshim/sevshim/pkg/format/manifest"
	"github.com/sevshim/sevshim/pkg/format/policy"
	"github.com/sevshim/sevshim/pkg/format/shimerr"
	"github.com/sevshim/sevshim/pkg/format/shimimage"
	"github.com/sevshim/sevshim/pkg/keys"
	"github.com/sevshim/sevshim/pkg/verifyref"
)

const (
	tool     = "../../build/shim/host/sevshim-verify"
	shimFD   = "../../build/shim/shim.fd"
	codeSize = 0x37C000
	varsSize = 0x84000
)

type input struct {
	name     string
	policy   string // file: block or shim image
	polBytes []byte // what verifyref.CheckEncoded gets (region form)
	manifest []byte
	mPresent bool
	image    string // path of an image file written once
	imgBytes []byte
	iPresent bool
	vars     []byte
	vPresent bool
}

type harness struct {
	t     *testing.T
	dir   string
	files map[string]string // content key -> path
	n     int
}

func (h *harness) write(name string, b []byte) string {
	h.n++
	p := filepath.Join(h.dir, fmt.Sprintf("%03d-%s", h.n, name))
	if err := os.WriteFile(p, b, 0o644); err != nil {
		h.t.Fatal(err)
	}
	return p
}

func region(block []byte) []byte {
	r := make([]byte, policy.RegionSize)
	copy(r, block)
	return r
}

func runC(t *testing.T, args ...string) (string, error) {
	out, err := exec.Command(tool, args...).CombinedOutput()
	s := strings.TrimSpace(string(out))
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 1 {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("%v: %s", err, s)
	}
	return s, nil
}

func TestGoSignsCVerifies(t *testing.T) {
	if _, err := os.Stat(tool); err != nil {
		t.Skipf("%s not built (run `make -C shim BUILD=$PWD/build/shim` or `make test`): %v", tool, err)
	}
	h := &harness{t: t, dir: t.TempDir(), files: map[string]string{}}
	rng := rand.New(rand.NewSource(6979))

	// images: Debian's OVMF when installed, random bytes, zeros
	type img struct {
		name string
		b    []byte
		path string
	}
	var imgs []*img
	if b, err := os.ReadFile("/usr/share/OVMF/OVMF_CODE_4M.fd"); err == nil && len(b) == codeSize {
		imgs = append(imgs, &img{name: "ovmf", b: b})
	} else {
		t.Logf("Debian OVMF not available (%v): using synthetic images only", err)
	}
	rnd := make([]byte, codeSize)
	rng.Read(rnd)
	imgs = append(imgs, &img{name: "random", b: rnd}, &img{name: "zero", b: make([]byte, codeSize)})
	for _, im := range imgs {
		im.path = h.write(im.name+".fd", im.b)
	}
	short := h.write("short.fd", imgs[0].b[:codeSize-1])
	long := h.write("long.fd", append(bytes.Clone(imgs[0].b), 0))
	long4k := h.write("long4k.fd", append(bytes.Clone(imgs[0].b), make([]byte, 4096)...))
	empty := h.write("empty.fd", nil)
	flips := []string{}
	for _, off := range []int{0, 1, codeSize / 2, codeSize - 0x10, codeSize - 1} {
		b := bytes.Clone(imgs[0].b)
		b[off] ^= 1 << uint(off%8)
		flips = append(flips, h.write(fmt.Sprintf("flip%x.fd", off), b))
	}

	kA, kB, kOut := keys.DeriveTestKey("diff-a"), keys.DeriveTestKey("diff-b"), keys.DeriveTestKey("diff-outsider")
	denied := sha512.Sum384(imgs[len(imgs)-1].b) // the zero image is denied in polMain
	polMain := &policy.Policy{Layout: 1, TPMMode: 1, TPMPCR: 12,
		Signers:        []policy.Signer{{PublicKey: &kA.PublicKey, MinVersion: 3}, {PublicKey: &kB.PublicKey}},
		DeniedDigests:  [][48]byte{sha512.Sum384([]byte("x")), denied},
		DeniedVersions: []uint64{13, 1 << 40}, VarsMode: policy.VarsAny}
	polOnlyB := &policy.Policy{Layout: 1, SecretMode: 1, Signers: []policy.Signer{{PublicKey: &kB.PublicKey, MinVersion: 100}}}
	encMain, err := polMain.Encode()
	if err != nil {
		t.Fatal(err)
	}
	encB, _ := polOnlyB.Encode()
	type pol struct {
		name  string
		path  string
		bytes []byte // region form
	}
	pols := []pol{
		{"main", h.write("pol-main.bin", encMain), region(encMain)},
		{"onlyB", h.write("pol-b.bin", encB), region(encB)},
	}
	badPol := bytes.Clone(encMain)
	badPol[0x17] = 1
	pols = append(pols, pol{"bad", h.write("pol-bad.bin", badPol), region(badPol)})
	if tmpl, err := os.ReadFile(shimFD); err == nil {
		if built, err := shimimage.EmbedPolicy(tmpl, encMain); err == nil {
			pols = append(pols, pol{"shim-image", h.write("shim.fd", built), region(encMain)})
		} else {
			t.Errorf("embedding into %s: %v", shimFD, err)
		}
	}

	sign := func(k *ecdsa.PrivateKey, m *manifest.Manifest) []byte {
		b, err := m.Sign(k)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	mk := func(k *ecdsa.PrivateKey, im []byte, ver uint64) *manifest.Manifest {
		m, err := manifest.NewManifest(1, im, ver, fmt.Sprintf("diff v%d", ver), &k.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	varsOK := make([]byte, varsSize)

	var cases []input
	addc := func(name string, p pol, man []byte, mp bool, imPath string, imB []byte, ip bool, vars []byte, vp bool) {
		cases = append(cases, input{name: name, policy: p.path, polBytes: p.bytes, manifest: man, mPresent: mp,
			image: imPath, imgBytes: imB, iPresent: ip, vars: vars, vPresent: vp})
	}
	for _, p := range pols {
		for _, im := range imgs {
			for _, ver := range []uint64{0, 2, 3, 13, 14, 1 << 40} {
				for _, k := range []*ecdsa.PrivateKey{kA, kB, kOut} {
					addc(fmt.Sprintf("%s/%s/v%d", p.name, im.name, ver), p, sign(k, mk(k, im.b, ver)), true, im.path, im.b, true, nil, false)
				}
			}
		}
	}
	P := pols[0]
	base := imgs[0]
	good := sign(kA, mk(kA, base.b, 5))
	// every byte region of the manifest: flipped bits
	for i := 0; i < 80; i++ {
		b := bytes.Clone(good)
		pos := rng.Intn(len(b))
		b[pos] ^= 1 << uint(rng.Intn(8))
		addc(fmt.Sprintf("manifest-bitflip-%d", pos), P, b, true, base.path, base.b, true, nil, false)
	}
	// structural edits, re-signed so that only the edited rule can fail
	type edit struct {
		name string
		f    func(m *manifest.Manifest)
	}
	for _, e := range []edit{
		{"layout-2", func(m *manifest.Manifest) { m.Layout = 2 }},
		{"layout-0", func(m *manifest.Manifest) { m.Layout = 0 }},
		{"size-4m", func(m *manifest.Manifest) { m.ImageSize = 0x400000 }},
		{"size-minus-1", func(m *manifest.Manifest) { m.ImageSize-- }},
		{"size-huge", func(m *manifest.Manifest) { m.ImageSize = 1 << 63 }},
		{"digest-other", func(m *manifest.Manifest) { m.ImageDigest[47] ^= 0x80 }},
		{"long-string", func(m *manifest.Manifest) { m.VersionString = strings.Repeat("~", 63) }},
	} {
		m := mk(kA, base.b, 5)
		e.f(m)
		addc("signed-"+e.name, P, sign(kA, m), true, base.path, base.b, true, nil, false)
	}
	// raw edits in the signed area with a fresh valid signature (bypassing the Go encoder)
	for _, e := range []struct {
		name string
		f    func(b []byte)
	}{
		{"reserved", func(b []byte) { b[0xC0+rng.Intn(64)] = 1 }},
		{"verstr-ctrl", func(b []byte) { b[0x80] = 0x1F }},
		{"verstr-no-nul", func(b []byte) { copy(b[0x80:0xC0], bytes.Repeat([]byte{'x'}, 64)) }},
		{"verstr-after-nul", func(b []byte) { b[0xBE] = 'q' }},
		{"signed-size", func(b []byte) { binary.LittleEndian.PutUint16(b[0xA:], 0x160) }},
		{"version-2", func(b []byte) { binary.LittleEndian.PutUint16(b[8:], 2) }},
		{"magic", func(b []byte) { b[0] = 's' }},
	} {
		b := bytes.Clone(good)
		e.f(b)
		addc("raw-resigned-"+e.name, P, resign(t, kA, b), true, base.path, base.b, true, nil, false)
	}
	// sizes, presence, garbage
	for _, n := range []int{0, 1, 351, 353, 704} {
		g := make([]byte, n)
		rng.Read(g)
		addc(fmt.Sprintf("manifest-len-%d", n), P, g, true, base.path, base.b, true, nil, false)
	}
	for i := 0; i < 5; i++ {
		g := make([]byte, 352)
		rng.Read(g)
		addc(fmt.Sprintf("manifest-garbage-%d", i), P, g, true, base.path, base.b, true, nil, false)
	}
	addc("manifest-missing", P, nil, false, base.path, base.b, true, nil, false)
	addc("bios-missing", P, good, true, "", nil, false, nil, false)
	addc("both-missing", P, nil, false, "", nil, false, nil, false)
	addc("bios-short", P, good, true, short, base.b[:codeSize-1], true, nil, false)
	addc("bios-long", P, good, true, long, append(bytes.Clone(base.b), 0), true, nil, false)
	addc("bios-long4k", P, good, true, long4k, append(bytes.Clone(base.b), make([]byte, 4096)...), true, nil, false)
	addc("bios-empty", P, good, true, empty, []byte{}, true, nil, false)
	for i, f := range flips {
		b, _ := os.ReadFile(f)
		addc(fmt.Sprintf("bios-flip-%d", i), P, good, true, f, b, true, nil, false)
	}
	for _, n := range []int{0, 1, varsSize - 1, varsSize, varsSize + 1, varsSize * 2} {
		addc(fmt.Sprintf("vars-%d", n), P, good, true, base.path, base.b, true, make([]byte, n), true)
	}
	addc("vars-ok-bad-bios", P, good, true, flips[0], nil, true, varsOK, true)
	cases[len(cases)-1].imgBytes, _ = os.ReadFile(flips[0])
	// the var-store modes: none (the zero value) and allow (only varsOK's digest)
	varsOther := bytes.Repeat([]byte{0xC3}, varsSize)
	for _, vp := range []struct {
		name string
		p    *policy.Policy
	}{
		{"none", &policy.Policy{Layout: 1, Signers: polMain.Signers}},
		{"allow", &policy.Policy{Layout: 1, Signers: polMain.Signers, VarsMode: policy.VarsAllow,
			AllowedVars: [][48]byte{sha512.Sum384(varsOK)}}},
	} {
		enc, err := vp.p.Encode()
		if err != nil {
			t.Fatal(err)
		}
		pv := pol{"vars-" + vp.name, h.write("pol-vars-"+vp.name+".bin", enc), region(enc)}
		for _, v := range []struct {
			name string
			b    []byte
			ok   bool
		}{{"ok", varsOK, true}, {"other", varsOther, true}, {"short", varsOK[:varsSize-1], true}, {"absent", nil, false}} {
			addc(fmt.Sprintf("vars-%s-%s", vp.name, v.name), pv, good, true, base.path, base.b, true, v.b, v.ok)
		}
	}

	// run
	mcache := map[string]string{}
	counts := map[shimerr.Code]int{}
	for _, c := range cases {
		args := []string{c.policy, "-", "-"}
		if c.mPresent {
			k := string(c.manifest)
			p, ok := mcache[k]
			if !ok {
				p = h.write("m.bin", c.manifest)
				mcache[k] = p
			}
			args[1] = p
		}
		if c.iPresent {
			args[2] = c.image
		}
		if c.vPresent {
			args = append(args, h.write("vars.bin", c.vars))
		}
		out, err := runC(t, args...)
		if err != nil {
			t.Fatalf("%s: sevshim-verify: %v", c.name, err)
		}
		cCode, ok := shimerr.Parse(out)
		if !ok {
			t.Fatalf("%s: unparseable C output %q", c.name, out)
		}
		goCode := verifyref.CheckEncoded(c.polBytes, c.manifest, c.mPresent, c.imgBytes, c.iPresent, c.vars, c.vPresent)
		counts[goCode]++
		if cCode != goCode {
			t.Errorf("%s: C says %v, Go says %v", c.name, cCode, goCode)
		}
		if c.vPresent {
			os.Remove(args[3])
		}
	}
	t.Logf("%d cases compared; verdicts: %v", len(cases), counts)
	for _, want := range []shimerr.Code{shimerr.OK, shimerr.PolicyInvalid, shimerr.ManifestMissing, shimerr.ManifestSize,
		shimerr.ManifestMalformed, shimerr.UnknownSigner, shimerr.BadSignature, shimerr.LayoutMismatch,
		shimerr.ImageSizeMismatch, shimerr.BIOSMissing, shimerr.BIOSTruncated, shimerr.BIOSOversized,
		shimerr.DigestMismatch, shimerr.VersionBelowFloor, shimerr.DigestDenied, shimerr.VersionDenied, shimerr.VarsSize} {
		if counts[want] == 0 {
			t.Errorf("no case produced %v", want)
		}
	}
}

// resign replaces the signature of raw manifest bytes with a valid one over its first 256 bytes.
func resign(t *testing.T, k *ecdsa.PrivateKey, b []byte) []byte {
	h := sha512.Sum384(b[:256])
	r, s, err := ecdsa.Sign(nil, k, h[:])
	if err != nil {
		t.Fatal(err)
	}
	out := bytes.Clone(b)
	r.FillBytes(out[0x100:0x130])
	s.FillBytes(out[0x130:0x160])
	return out
}
