// Package diff compares two shim images or two BIOS bundles field by field: the logic
// behind `builder diff`. For two shims it answers the owner's question first: does the SEV
// launch digest (the measurement the owner approves, docs/formats.md) change, and is it the
// policy or the shim's code that changed. The JSON form is stable; the text form is for
// humans.
package diff

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/sevshim/sevshim/builder/inspect"
	"github.com/sevshim/sevshim/pkg/format/shimimage"
)

// Change is one compared field. Op is "=" (same), "~" (changed), "+" (only in B), "-"
// (only in A). A and B are the values in the two files ("" when absent).
type Change struct {
	Op    string `json:"op"`
	Field string `json:"field"`
	A     string `json:"a,omitempty"`
	B     string `json:"b,omitempty"`
}

// Result is the comparison of two files of the same family.
type Result struct {
	A       string   `json:"a"`
	B       string   `json:"b"`
	Kind    string   `json:"kind"` // "shim" or "bundle"
	Same    bool     `json:"same"` // byte-identical
	Changes []Change `json:"changes"`
	// MeasurementChanges (shims): the SEV launch digest differs, so an owner who pinned A's
	// measurement (verifier session/secret --measurement) must approve B's before it gets
	// the secret.
	MeasurementChanges *bool `json:"measurement_changes,omitempty"`
	// CodeChanges (shims): the images differ outside the policy region (another shim build
	// or template), not only in the policy.
	CodeChanges *bool `json:"code_changes,omitempty"`
}

// Changed reports the fields that differ.
func (r *Result) Changed() []Change {
	var out []Change
	for _, c := range r.Changes {
		if c.Op != "=" {
			out = append(out, c)
		}
	}
	return out
}

func family(kind string) string {
	switch kind {
	case inspect.KindShimImage, inspect.KindShimTmpl:
		return "shim"
	case inspect.KindBundle:
		return "bundle"
	}
	return ""
}

// Files compares the contents a and b of the files named nameA and nameB.
func Files(nameA string, a []byte, nameB string, b []byte) (*Result, error) {
	ra, err := inspect.Inspect(nameA, a, inspect.Options{})
	if err != nil {
		return nil, err
	}
	rb, err := inspect.Inspect(nameB, b, inspect.Options{})
	if err != nil {
		return nil, err
	}
	fa, fb := family(ra.Kind), family(rb.Kind)
	switch {
	case fa == "" || fb == "" || fa != fb:
		return nil, fmt.Errorf("%s is a %s and %s is a %s: builder diff compares two shim images or two BIOS bundles", nameA, ra.Kind, nameB, rb.Kind)
	}
	r := &Result{A: nameA, B: nameB, Kind: fa, Same: bytes.Equal(a, b), Changes: []Change{}}
	if fa == "shim" {
		diffShims(r, ra, a, rb, b)
	} else {
		diffBundles(r, ra, rb)
	}
	return r, nil
}

func (r *Result) field(name, a, b string) {
	op := "="
	if a != b {
		op = "~"
	}
	r.Changes = append(r.Changes, Change{Op: op, Field: name, A: a, B: b})
}

// set compares two lists as sets; members are shown in A's order, then B's.
func (r *Result) set(name string, a, b []string) {
	for _, x := range a {
		if slices.Contains(b, x) {
			r.Changes = append(r.Changes, Change{Op: "=", Field: name, A: x, B: x})
		} else {
			r.Changes = append(r.Changes, Change{Op: "-", Field: name, A: x})
		}
	}
	for _, x := range b {
		if !slices.Contains(a, x) {
			r.Changes = append(r.Changes, Change{Op: "+", Field: name, B: x})
		}
	}
}

// codeDigest is SHA-256 of a shim image with its policy region zeroed: equal for two
// images built from the same template whatever their policies.
func codeDigest(image []byte) string {
	c := bytes.Clone(image)
	if off, size, err := shimimage.PolicyRegion(c); err == nil {
		clear(c[off : off+size])
	}
	d := sha256.Sum256(c)
	return hex.EncodeToString(d[:])
}

func diffShims(r *Result, ra *inspect.Report, a []byte, rb *inspect.Report, b []byte) {
	m := ra.Digests.LaunchDigest != rb.Digests.LaunchDigest
	code := codeDigest(a) != codeDigest(b)
	r.MeasurementChanges, r.CodeChanges = &m, &code
	r.field("SEV launch digest", ra.Digests.LaunchDigest, rb.Digests.LaunchDigest)
	r.field("image size", fmt.Sprint(ra.Size), fmt.Sprint(rb.Size))
	r.field("layout", ra.Layout, rb.Layout)
	r.field("shim code (sha256, policy region zeroed)", codeDigest(a), codeDigest(b))
	pa, pb := ra.Policy, rb.Policy
	if pa == nil || pb == nil {
		desc := func(p *inspect.Policy) string {
			if p == nil {
				return "none (template)"
			}
			return p.Digest
		}
		r.field("policy", desc(pa), desc(pb))
		return
	}
	r.field("policy digest (sha384)", pa.Digest, pb.Digest)
	r.field("policy layout", pa.Layout, pb.Layout)
	r.field("secret hand-off", pa.Secret, pb.Secret)
	tpm := func(p *inspect.Policy) string {
		if p.TPM == "off" {
			return p.TPM
		}
		return fmt.Sprintf("%s (PCR %d)", p.TPM, p.TPMPCR)
	}
	r.field("tpm", tpm(pa), tpm(pb))
	// Signers by key id: the floor (min version) of one present in both is a field.
	sb := map[string]uint64{}
	for _, s := range pb.Signers {
		sb[s.KeyID] = s.MinVersion
	}
	sa := map[string]bool{}
	for _, s := range pa.Signers {
		sa[s.KeyID] = true
		if v, ok := sb[s.KeyID]; ok {
			r.field("signer "+s.KeyID+" min version", fmt.Sprint(s.MinVersion), fmt.Sprint(v))
		} else {
			r.Changes = append(r.Changes, Change{Op: "-", Field: "signer", A: fmt.Sprintf("%s (min version %d)", s.KeyID, s.MinVersion)})
		}
	}
	for _, s := range pb.Signers {
		if !sa[s.KeyID] {
			r.Changes = append(r.Changes, Change{Op: "+", Field: "signer", B: fmt.Sprintf("%s (min version %d)", s.KeyID, s.MinVersion)})
		}
	}
	r.set("denied digest", pa.DeniedDigests, pb.DeniedDigests)
	vs := func(v []uint64) []string {
		out := make([]string, len(v))
		for i, x := range v {
			out[i] = fmt.Sprint(x)
		}
		return out
	}
	r.set("denied version", vs(pa.DeniedVersions), vs(pb.DeniedVersions))
	r.field("var store", pa.Vars, pb.Vars)
	r.set("allowed var store", pa.AllowedVars, pb.AllowedVars)
}

func diffBundles(r *Result, ra, rb *inspect.Report) {
	ma, mb := ra.Manifest, rb.Manifest
	r.field("bios version", fmt.Sprint(ma.BIOSVersion), fmt.Sprint(mb.BIOSVersion))
	r.field("version string", fmt.Sprintf("%q", ma.VersionString), fmt.Sprintf("%q", mb.VersionString))
	r.field("layout", ma.Layout, mb.Layout)
	r.field("signer key id", ma.SignerKeyID, mb.SignerKeyID)
	r.field("image size", fmt.Sprintf("0x%x", ma.ImageSize), fmt.Sprintf("0x%x", mb.ImageSize))
	r.field("image digest (sha384)", ma.ImageDigest, mb.ImageDigest)
	r.field("signature", ma.Signature, mb.Signature)
	r.field("bundle sha384", ra.Digests.SHA384, rb.Digests.SHA384)
}

// WriteText renders r for humans: the verdict first, then every field ("=" same, "~"
// changed, "-" only in A, "+" only in B). With all false, unchanged fields are left out.
func WriteText(w io.Writer, r *Result, all bool) {
	var b strings.Builder
	fmt.Fprintf(&b, "a: %s\nb: %s\n", r.A, r.B)
	n := len(r.Changed())
	switch {
	case r.Same:
		fmt.Fprintf(&b, "identical %ss (byte for byte)\n", r.Kind)
	case n == 0:
		fmt.Fprintf(&b, "the %ss differ in bytes but in no field shown below\n", r.Kind)
	default:
		fmt.Fprintf(&b, "%d field(s) differ\n", n)
	}
	if r.MeasurementChanges != nil {
		if *r.MeasurementChanges {
			b.WriteString("owner's measurement: CHANGES (the SEV launch digest differs: an owner who pinned a's must approve b's)\n")
		} else {
			b.WriteString("owner's measurement: unchanged (same SEV launch digest)\n")
		}
		if *r.CodeChanges {
			b.WriteString("shim code: differs (another shim build or template, not only the policy)\n")
		} else {
			b.WriteString("shim code: same (only the policy differs, if anything)\n")
		}
	}
	for _, c := range r.Changes {
		switch c.Op {
		case "=":
			if all {
				fmt.Fprintf(&b, "  = %s: %s\n", c.Field, c.A)
			}
		case "~":
			fmt.Fprintf(&b, "  ~ %s: %s -> %s\n", c.Field, c.A, c.B)
		case "-":
			fmt.Fprintf(&b, "  - %s: %s\n", c.Field, c.A)
		case "+":
			fmt.Fprintf(&b, "  + %s: %s\n", c.Field, c.B)
		}
	}
	io.WriteString(w, b.String())
}
