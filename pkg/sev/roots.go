package sev

import (
	"embed"
	"fmt"
	"strings"
	"sync"
)

// The AMD ARK/ASK certificates for legacy SEV, as AMD publishes them (ask_ark_<product>.cert,
// split in two files; the AMD certificate format of SEV API 55766 appendix B.1). The Naples ARK is
// the repaired 832-byte file: AMD's download lacks the self-signature, appended here.
//
//go:embed roots/*/ark.cert roots/*/ask.cert
var rootFS embed.FS

// Products with embedded roots, oldest first.
var Products = []string{"naples", "rome", "milan", "genoa", "turin"}

// TestRootProduct is the product name of the PSP emulator's test root (package psp), which the
// owner trusts only when told to (verifier --root): it is not one of AMD's products.
const TestRootProduct = "sevshim-emulator-test"

// Root is a trust anchor: an ARK and the ASK it signed, for one product generation.
type Root struct {
	Product string
	ARK     *AMDCert
	ASK     *AMDCert
}

var (
	builtinOnce  sync.Once
	builtinRoots []Root
)

// BuiltinRoots returns the embedded AMD roots. Each was checked (ARK self-signature and
// ARK->ASK) when first loaded; a broken embedded file is a build defect and panics.
func BuiltinRoots() []Root {
	builtinOnce.Do(func() {
		for _, p := range Products {
			ark := mustEmbedded(p, "ark")
			ask := mustEmbedded(p, "ask")
			r := Root{Product: p, ARK: ark, ASK: ask}
			if err := r.Check(); err != nil {
				panic(fmt.Sprintf("sev: embedded %s root: %v", p, err))
			}
			builtinRoots = append(builtinRoots, r)
		}
	})
	return append([]Root(nil), builtinRoots...)
}

func mustEmbedded(product, name string) *AMDCert {
	b, err := rootFS.ReadFile("roots/" + product + "/" + name + ".cert")
	if err != nil {
		panic(err)
	}
	c, err := ParseAMDCert(b)
	if err != nil {
		panic(fmt.Sprintf("sev: embedded %s %s: %v", product, name, err))
	}
	return c
}

// RootFor returns the embedded root of a product (naples, rome, milan, genoa, turin).
func RootFor(product string) (Root, error) {
	for _, r := range BuiltinRoots() {
		if r.Product == strings.ToLower(product) {
			return r, nil
		}
	}
	return Root{}, fmt.Errorf("unknown product %q: want one of %s", product, strings.Join(Products, ", "))
}

// NewRoot builds a root from an ASK || ARK blob (for instance the emulator's test root).
func NewRoot(product string, askArk []byte) (Root, error) {
	ask, ark, err := ParseAMDChain(askArk)
	if err != nil {
		return Root{}, err
	}
	r := Root{Product: product, ARK: ark, ASK: ask}
	return r, r.Check()
}

// Check verifies the ARK self-signature and the ARK->ASK link.
func (r Root) Check() error {
	if r.ARK.Usage != UsageARK {
		return fmt.Errorf("chain: ARK certificate has usage %v", r.ARK.Usage)
	}
	if r.ASK.Usage != UsageASK {
		return fmt.Errorf("chain: ASK certificate has usage %v", r.ASK.Usage)
	}
	if r.ARK.KeyID != r.ARK.CertifyingID {
		return fmt.Errorf("chain: ARK is not self-certified (key id %x, certifying id %x)", r.ARK.KeyID, r.ARK.CertifyingID)
	}
	if err := r.ARK.CheckSignedBy(r.ARK); err != nil {
		return fmt.Errorf("chain: ARK self-signature: %w", err)
	}
	if err := r.ASK.CheckSignedBy(r.ARK); err != nil {
		return fmt.Errorf("chain: %w", err)
	}
	return nil
}
