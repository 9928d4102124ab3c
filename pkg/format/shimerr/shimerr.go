// Package shimerr is the Go side of the shim's stable error codes (docs/errors.md). The C
// definition is shim/include/sevshim/errors.h; a test parses that header and checks that this
// table is identical. It also parses the refusal line "SEVSHIM ERROR E0NN name" (ParseLine),
// which needs the table; every other console line is package console's.
package shimerr

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Code is a shim error code. OK (0) means every check passed.
type Code uint16

// The stable codes. Never renumber; new failures get new codes.
const (
	OK                   Code = 0
	NoFwCfg              Code = 1
	FwCfgDMA             Code = 2
	PolicyInvalid        Code = 10
	ManifestMissing      Code = 20
	ManifestSize         Code = 21
	ManifestMalformed    Code = 22
	UnknownSigner        Code = 23
	BadSignature         Code = 24
	LayoutMismatch       Code = 25
	ImageSizeMismatch    Code = 26
	SignatureHighS       Code = 27
	BIOSMissing          Code = 30
	BIOSTruncated        Code = 31
	BIOSOversized        Code = 32
	DigestMismatch       Code = 33
	VersionBelowFloor    Code = 34
	DigestDenied         Code = 35
	VersionDenied        Code = 36
	VarsSize             Code = 40
	VarsNotAllowed       Code = 41
	VarsDigestNotAllowed Code = 42
	FlashNotFound        Code = 50
	FlashGeometry        Code = 51
	FlashErase           Code = 52
	FlashProgram         Code = 53
	FlashVerify          Code = 54
	FlashDigestMismatch  Code = 55
	SecretBlockMissing   Code = 60
	BIOSFooterInvalid    Code = 61
	SecretBlockUnusable  Code = 62
	SecretTooLarge       Code = 63
	SecretMalformed      Code = 64
	ReceiptKeyInvalid    Code = 65
	NonceInvalid         Code = 66
	TPMMissing           Code = 70
	TPMInterface         Code = 71
	TPMTimeout           Code = 72
	TPMResponse          Code = 73
	SEVActive            Code = 80
	SEVESActive          Code = 81
	SEVSNPActive         Code = 82
	SEVCbitInvalid       Code = 83
	CPUException         Code = 90
	Internal             Code = 91
)

type entry struct {
	code Code
	name string
	help string // what to do, as in docs/errors.md
}

var table = []entry{
	{NoFwCfg, "no-fwcfg", "start the guest on QEMU with fw_cfg (every x86 machine type has it)"},
	{FwCfgDMA, "fwcfg-dma", "host problem: check the QEMU version and the fw_cfg files passed"},
	{PolicyInvalid, "policy-invalid", "the shim image is broken or was not made by `builder build`; rebuild it"},
	{ManifestMissing, "manifest-missing", "pass the bundle's manifest (hostctl does this from --bios BUNDLE)"},
	{ManifestSize, "manifest-size", "re-sign the BIOS with `builder sign-bios`"},
	{ManifestMalformed, "manifest-malformed", "re-sign the BIOS with `builder sign-bios`"},
	{UnknownSigner, "unknown-signer", "sign with a key the owner trusts, or ask the owner to add the key"},
	{BadSignature, "bad-signature", "the manifest was altered or signed with another key; re-sign"},
	{LayoutMismatch, "layout-mismatch", "use a BIOS built for the shim's layout (e.g. ovmf-4m)"},
	{ImageSizeMismatch, "image-size-mismatch", "the BIOS is not of that layout; use the right OVMF build"},
	{SignatureHighS, "signature-high-s", "the signature's s is above n/2 (a malleated or non-normalised signature); re-sign with `builder sign-bios`, which writes low-s"},
	{BIOSMissing, "bios-missing", "pass the BIOS image with the manifest"},
	{BIOSTruncated, "bios-truncated", "the host passed a truncated image; pass the whole bundle image"},
	{BIOSOversized, "bios-oversized", "the host passed the wrong image"},
	{DigestMismatch, "digest-mismatch", "the BIOS was altered after signing"},
	{VersionBelowFloor, "version-below-floor", "a rollback: ship a newer BIOS, or the owner lowers the floor"},
	{DigestDenied, "digest-denied", "that exact BIOS was revoked by the owner"},
	{VersionDenied, "version-denied", "that version was revoked by the owner"},
	{VarsSize, "vars-size", "pass an OVMF_VARS file of the layout (e.g. 0x84000 bytes for ovmf-4m)"},
	{VarsNotAllowed, "vars-not-allowed", "the owner's policy allows no var store (vars: none): start without opt/org.sevshim/vars, or the owner sets vars: allow (with the store's digest) or vars: any"},
	{VarsDigestNotAllowed, "vars-digest-not-allowed", "the var store's SHA-384 is not on the policy's allowed_vars list: pass an allowed store (e.g. the layout's OVMF_VARS template), or the owner adds its digest"},
	{FlashNotFound, "flash-not-found", "start QEMU with pflash units of the layout's sizes, writable (readonly=off)"},
	{FlashGeometry, "flash-geometry", "pflash file sizes must match the layout"},
	{FlashErase, "flash-erase", "make pflash0/1 writable; use snapshot=on to keep the files"},
	{FlashProgram, "flash-program", "make pflash0/1 writable; use snapshot=on to keep the files"},
	{FlashVerify, "flash-verify", "host or device fault; retry on a fresh QEMU"},
	{FlashDigestMismatch, "flash-digest-mismatch", "the flash does not hold the signed image after programming: memory the shim had verified was changed (hostile host) or the device is faulty; do not use this host"},
	{SecretBlockMissing, "secret-block-missing", "the policy requires a secret hand-off: ship a BIOS with an SEV secret block (OVMF AmdSev), or the owner sets secret: optional"},
	{BIOSFooterInvalid, "bios-footer-invalid", "the BIOS's footer table is malformed; rebuild the BIOS and re-sign it"},
	{SecretBlockUnusable, "secret-block-unusable", "the BIOS's secret block is not in guest RAM the shim may write (or overlaps the shim); use a BIOS with a normal secret block, or give the guest more RAM"},
	{SecretTooLarge, "secret-too-large", "the owner's secret table is larger than the BIOS's secret block; make the secret smaller"},
	{SecretMalformed, "secret-malformed", "the injected secret is not a well-formed EFI secret table; rebuild it with `verifier secret`"},
	{ReceiptKeyInvalid, "receipt-key-invalid", "the secret table's receipt-key entry is not exactly 48 bytes, or there are two; rebuild the secret with `verifier secret --receipt-key`"},
	{NonceInvalid, "nonce-invalid", "opt/org.sevshim/nonce is not exactly 32 bytes; pass the owner's nonce with `hostctl receive --nonce HEX` (64 hex digits)"},
	{TPMMissing, "tpm-missing", "the policy requires a TPM: start QEMU with -device tpm-crb and a swtpm backend"},
	{TPMInterface, "tpm-interface", "the TPM's CRB interface is not usable (locality 0 not granted, unexpected buffer layout or fatal error); check the QEMU TPM device and swtpm"},
	{TPMTimeout, "tpm-timeout", "the TPM did not answer in time; check that swtpm is running"},
	{TPMResponse, "tpm-response", "the TPM answered with an error or a malformed response; check swtpm (its log) and retry on a fresh TPM"},
	{SEVActive, "sev-active", "the shim cannot hand off under SEV yet (the flash is not programmable there); boot it without SEV"},
	{SEVESActive, "sev-es-active", "SEV-ES is not supported by the shim yet; boot it without SEV-ES"},
	{SEVSNPActive, "sev-snp-active", "SEV-SNP is not supported by the shim yet; boot it without SNP"},
	{SEVCbitInvalid, "sev-cbit-invalid", "host problem: the CPUID C-bit position or address reduction is unusable; check the VMM's SEV settings (cbitpos, reduced-phys-bits)"},
	{CPUException, "cpu-exception", "a shim bug or hostile host state; report it"},
	{Internal, "internal", "a shim bug; report it"},
}

func lookup(c Code) (entry, bool) {
	for _, e := range table {
		if e.code == c {
			return e, true
		}
	}
	return entry{}, false
}

// All returns every defined error code (OK excluded), in ascending order.
func All() []Code {
	out := make([]Code, len(table))
	for i, e := range table {
		out[i] = e.code
	}
	return out
}

// Known reports whether c is OK or a defined error code.
func (c Code) Known() bool {
	if c == OK {
		return true
	}
	_, ok := lookup(c)
	return ok
}

// Name returns the stable name ("bad-signature"), "ok" for OK, or "unknown" for an undefined code.
func (c Code) Name() string {
	if c == OK {
		return "ok"
	}
	if e, ok := lookup(c); ok {
		return e.name
	}
	return "unknown"
}

// Help returns what a user should do about the error (docs/errors.md, last column).
func (c Code) Help() string {
	if e, ok := lookup(c); ok {
		return e.help
	}
	return ""
}

// ID returns "E024" (three digits, as on the console), or "OK".
func (c Code) ID() string {
	if c == OK {
		return "OK"
	}
	return fmt.Sprintf("E%03d", uint16(c))
}

// String returns "E024 bad-signature" (the console text after "SEVSHIM ERROR "), or "OK".
func (c Code) String() string {
	if c == OK {
		return "OK"
	}
	return c.ID() + " " + c.Name()
}

// Line returns the exact console line the shim prints for c: "SEVSHIM ERROR E024 bad-signature".
func (c Code) Line() string { return "SEVSHIM ERROR " + c.String() }

// ByName finds a code by its stable name.
func ByName(name string) (Code, bool) {
	for _, e := range table {
		if e.name == name {
			return e.code, true
		}
	}
	return 0, false
}

// LineRE is the whole console line of a refusal, anchored at both ends: text around it (a
// log prefix, a signer-chosen version string inside another line) is not a refusal.
// LineRE is exported so that a console reader can wait for the shape of a refusal line (also
// one with a code this build does not know) and then call ParseLine on it.
var LineRE = regexp.MustCompile(`^SEVSHIM ERROR E([0-9]{3}) ([a-z0-9-]+)$`)

// ParseLine parses one whole console line "SEVSHIM ERROR E0NN name" (docs/errors.md). Only
// the line terminator (a trailing "\n", "\r\n" or "\r") is ignored; any other text before or
// after makes it not a refusal line. It returns false if the line is not exactly that, the
// code is not defined, or the name does not belong to the code. This is the one parser of
// refusal lines: hostctl and the tests use it.
func ParseLine(line string) (Code, bool) {
	line = strings.TrimSuffix(line, "\n")
	line = strings.TrimSuffix(line, "\r")
	m := LineRE.FindStringSubmatch(line)
	if m == nil {
		return 0, false
	}
	n, err := strconv.Atoi(m[1])
	if err != nil {
		return 0, false
	}
	c := Code(n)
	e, ok := lookup(c)
	if !ok || e.name != m[2] {
		return 0, false
	}
	return c, true
}

// Parse accepts "E024", "E024 bad-signature", "bad-signature" or "OK" (as printed by String or
// by the host verify tool) and returns the code.
func Parse(s string) (Code, bool) {
	if s == "OK" {
		return OK, true
	}
	if c, ok := ByName(s); ok {
		return c, true
	}
	if c, ok := ParseLine("SEVSHIM ERROR " + s); ok {
		return c, true
	}
	if len(s) == 4 && s[0] == 'E' {
		n, err := strconv.Atoi(s[1:])
		if err == nil && Code(n).Known() && n != 0 {
			return Code(n), true
		}
	}
	return 0, false
}
