package chain

import (
	"crypto/sha512"
	"path/filepath"
	"testing"

	"github.com/sevshim/sevshim/pkg/format/policy"
	"github.com/sevshim/sevshim/pkg/format/shimerr"
)

// The var store (opt/org.sevshim/vars, programmed into pflash1) is host data that the accepted
// BIOS trusts; the owner's policy decides what may be programmed (docs/formats.md section 2,
// vars_mode). Each mode runs a shim with that policy, the fixture policy otherwise.

func varsNoneEnv(t *testing.T) *chainEnv {
	return envWith(t, "vars-none", func(p *policy.Policy) { p.VarsMode, p.AllowedVars = policy.VarsNone, nil })
}

// varsAllowEnv allows exactly Debian's OVMF_VARS_4M.fd template.
func varsAllowEnv(t *testing.T) *chainEnv {
	tmpl := mustRead(t, getBundles(t).vars)
	return envWith(t, "vars-allow", func(p *policy.Policy) {
		p.VarsMode, p.AllowedVars = policy.VarsAllow, [][48]byte{sha512.Sum384(tmpl)}
	})
}

// otherVarStore is the template with one byte changed (another, unlisted store of the right size).
func otherVarStore(t *testing.T, e *chainEnv) string {
	b := mustRead(t, e.vars)
	b[len(b)/2] ^= 0x01
	p := filepath.Join(t.TempDir(), "other-vars.fd")
	if err := writeFile(p, b); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestVarsNone: vars: none and the host passes a var store -> E041 before anything is flashed.
func TestVarsNone(t *testing.T) {
	e := varsNoneEnv(t)
	r := startB(t, e, e.manifestV5, e.ovmf, "")
	assertRefused(t, e, r, shimerr.VarsNotAllowed)
}

// TestVarsNoneWithoutVars: vars: none and no vars file: the shim boots OVMF with pflash1 as
// it was (nothing read, nothing programmed there).
func TestVarsNoneWithoutVars(t *testing.T) {
	e := varsNoneEnv(t)
	r := startBWith(t, e, bOpts{manifest: e.manifestV5, bios: e.ovmf, noVars: true})
	assertBoots(t, e, r, e.ovmf, 5, "debian-ovmf-4m")
}

// TestVarsAllowListed: vars: allow with the template's digest, the host passes the template.
func TestVarsAllowListed(t *testing.T) {
	e := varsAllowEnv(t)
	r := startB(t, e, e.manifestV5, e.ovmf, "")
	assertBoots(t, e, r, e.ovmf, 5, "debian-ovmf-4m")
}

// TestVarsAllowOther: vars: allow, and the host passes a store whose digest is not listed.
func TestVarsAllowOther(t *testing.T) {
	e := varsAllowEnv(t)
	other := otherVarStore(t, e)
	r := startBWith(t, e, bOpts{manifest: e.manifestV5, bios: e.ovmf, vars: other, varStore: other})
	assertRefused(t, e, r, shimerr.VarsDigestNotAllowed)
}

// TestVarsAny: vars: any (the fixture policy) accepts a store that no list names.
func TestVarsAny(t *testing.T) {
	e := env(t)
	if e.pol.VarsMode != policy.VarsAny {
		t.Fatalf("the fixture policy's vars mode is %s, want any", policy.VarsModeName(e.pol.VarsMode))
	}
	other := otherVarStore(t, e)
	r := startBWith(t, e, bOpts{manifest: e.manifestV5, bios: e.ovmf, vars: other, varStore: other})
	assertBoots(t, e, r, e.ovmf, 5, "debian-ovmf-4m")
}
