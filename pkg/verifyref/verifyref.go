// Package verifyref is the Go reference model of the shim's decision on a BIOS
// (shim/src/verify.c; docs/formats.md section 6, steps 2-9): given the embedded policy and what
// the host offered over fw_cfg, Check returns the first error code the shim would print, or OK.
// The C verify core is tested against it (tests/difftest, the golden checks) and fuzzed beside it.
package verifyref

import (
	"crypto/sha512"

	"github.com/sevshim/sevshim/pkg/format/layout"
	"github.com/sevshim/sevshim/pkg/format/manifest"
	"github.com/sevshim/sevshim/pkg/format/policy"
	"github.com/sevshim/sevshim/pkg/format/shimerr"
)

// Check is the reference model of the shim's decision (docs/formats.md section 6, steps 2-9;
// step 1, fw_cfg presence, and the flash steps are outside its reach). It returns the first
// failing code, or shimerr.OK when the shim would program the flash and hand off.
//
// pol is the embedded policy; nil (or one that fails policy.Validate) gives E010. The
// *Present flags say whether the fw_cfg file exists; a present file may be empty.
func Check(pol *policy.Policy, manifestBytes []byte, manifestPresent bool, image []byte, imagePresent bool, vars []byte, varsPresent bool) shimerr.Code {
	return check(pol, manifestBytes, manifestPresent, uint64(len(image)), func() [48]byte { return sha512.Sum384(image) },
		imagePresent, len(vars), func() [48]byte { return sha512.Sum384(vars) }, varsPresent)
}

// check is Check with the image given by its length and a digest function, so the fuzz test
// can explore the decision without hashing megabytes per input.
func check(pol *policy.Policy, manifestBytes []byte, manifestPresent bool, imageLen uint64, imageDigest func() [48]byte, imagePresent bool, varsLen int, varsDigest func() [48]byte, varsPresent bool) shimerr.Code {
	// 2. policy
	if pol == nil || pol.Validate() != nil {
		return shimerr.PolicyInvalid
	}
	// 3. manifest present, size, well formed
	if !manifestPresent {
		return shimerr.ManifestMissing
	}
	if len(manifestBytes) != manifest.ManifestSize {
		return shimerr.ManifestSize
	}
	m, err := manifest.ParseManifestStructure(manifestBytes)
	if err != nil {
		return shimerr.ManifestMalformed
	}
	// 4. signer, signature
	signer, ok := pol.FindSigner(m.SignerKeyID)
	if !ok {
		return shimerr.UnknownSigner
	}
	if m.HighS() {
		return shimerr.SignatureHighS
	}
	if !m.SignatureValid(signer.PublicKey) {
		return shimerr.BadSignature
	}
	// 5. layout, image size
	if m.Layout != pol.Layout {
		return shimerr.LayoutMismatch
	}
	l, _ := layout.ByID(pol.Layout) // Validate guaranteed a known layout
	if m.ImageSize != uint64(l.CodeSize) {
		return shimerr.ImageSizeMismatch
	}
	// 6. bios present, size
	if !imagePresent {
		return shimerr.BIOSMissing
	}
	if imageLen < m.ImageSize {
		return shimerr.BIOSTruncated
	}
	if imageLen > m.ImageSize {
		return shimerr.BIOSOversized
	}
	// 7. digest
	if imageDigest() != m.ImageDigest {
		return shimerr.DigestMismatch
	}
	// 8. floor, deny lists
	if m.Version < signer.MinVersion {
		return shimerr.VersionBelowFloor
	}
	if pol.DigestDenied(m.ImageDigest) {
		return shimerr.DigestDenied
	}
	if pol.VersionDenied(m.Version) {
		return shimerr.VersionDenied
	}
	// 9. vars: the policy's var-store mode, then the size, then the allow-list
	if varsPresent {
		if pol.VarsMode == policy.VarsNone {
			return shimerr.VarsNotAllowed
		}
		if varsLen != int(l.VarsSize) {
			return shimerr.VarsSize
		}
		if !pol.VarsAllowed(varsDigest()) {
			return shimerr.VarsDigestNotAllowed
		}
	}
	return shimerr.OK
}

// CheckEncoded is Check with the policy given as bytes, as the shim sees it: either the exact
// block (total_size bytes) or the whole 16 KiB region. Anything that does not decode is E010.
func CheckEncoded(policyBytes []byte, manifestBytes []byte, manifestPresent bool, image []byte, imagePresent bool, vars []byte, varsPresent bool) shimerr.Code {
	var pol *policy.Policy
	var err error
	if len(policyBytes) == policy.RegionSize {
		pol, err = policy.DecodeRegion(policyBytes)
	} else {
		pol, err = policy.Decode(policyBytes)
	}
	if err != nil {
		return shimerr.PolicyInvalid
	}
	return Check(pol, manifestBytes, manifestPresent, image, imagePresent, vars, varsPresent)
}
