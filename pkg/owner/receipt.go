package owner

import (
	"bytes"
	"crypto/rand"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/sevshim/sevshim/pkg/format/manifest"
	"github.com/sevshim/sevshim/pkg/format/receipt"
	"github.com/sevshim/sevshim/pkg/format/shimimage"
)

// ReceiptKeyFile is where `verifier secret --new-receipt-key` writes the key: beside the session.
const ReceiptKeyFile = "receipt.key"

// LoadReceiptKey reads a receipt key file: exactly receipt.KeySize raw bytes.
func LoadReceiptKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("receipt key: %w", err)
	}
	if len(b) != receipt.KeySize {
		clear(b)
		return nil, fmt.Errorf("receipt key %s is %d bytes, want exactly %d raw bytes (make one with `verifier secret --new-receipt-key`)", path, len(b), receipt.KeySize)
	}
	return b, nil
}

// NewReceiptKey makes a fresh key from rnd (nil: crypto/rand) and writes it to path, mode
// 0600, refusing to overwrite an existing file.
func NewReceiptKey(rnd io.Reader, path string) ([]byte, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	key := make([]byte, receipt.KeySize)
	if _, err := io.ReadFull(rnd, key); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("receipt key %s exists: refusing to overwrite it (receipts made under it would no longer verify); use --receipt-key %s to reuse it", path, path)
		}
		return nil, fmt.Errorf("receipt key: %w", err)
	}
	_, werr := f.Write(key)
	if serr := f.Sync(); werr == nil {
		werr = serr
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(path)
		return nil, fmt.Errorf("receipt key %s: %w", path, werr)
	}
	return key, nil
}

// ParseNonce reads the owner's receipt nonce: 64 hex digits, or "none" (nil: the owner
// accepts a receipt without a nonce, which proves nothing about freshness).
func ParseNonce(s string) ([]byte, error) {
	if strings.EqualFold(s, "none") {
		return nil, nil
	}
	b, err := hex.DecodeString(strings.TrimPrefix(s, "0x"))
	if err != nil || len(b) != receipt.NonceSize {
		return nil, fmt.Errorf("nonce %q: want %d bytes as %d hex digits (or none)", s, receipt.NonceSize, 2*receipt.NonceSize)
	}
	return b, nil
}

// ReceiptFromState reads the receipt line that `hostctl receive` recorded in its state file
// (WB/receive.json, key "receipt").
func ReceiptFromState(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	var st struct {
		Receipt string `json:"receipt"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return "", fmt.Errorf("%s: %v", path, err)
	}
	if st.Receipt == "" {
		return "", fmt.Errorf("%s records no receipt line (the shim printed none, or the receive did not get that far)", path)
	}
	return st.Receipt, nil
}

// ReceiptCheck is what the owner asks of a receipt.
type ReceiptCheck struct {
	Key     []byte
	Nonce   []byte // nil: the owner gave no nonce ("none")
	Receipt string // the console line or its hex
	// optional: the bundle the owner expects the shim to have been offered, and the owner's shim
	// image (its policy digest must be the receipt's)
	BundlePath string
	ImagePath  string
}

// ReceiptReport is what `verifier receipt` prints. Status: "OK" (an authentic acceptance for
// this nonce), "REFUSAL" (an authentic refusal for this nonce) or "FAILED".
type ReceiptReport struct {
	Status         string `json:"status"`
	Authentic      bool   `json:"authentic"`
	Verdict        string `json:"verdict,omitempty"` // "OK" or "E034 version-below-floor"
	Code           uint16 `json:"code"`
	Nonce          string `json:"nonce,omitempty"` // the receipt's nonce, hex, or "none"
	NonceMatch     bool   `json:"nonce_match"`
	BIOSVersion    uint64 `json:"bios_version,omitempty"`
	Signer         string `json:"signer_key_id,omitempty"`
	ManifestDigest string `json:"manifest_sha384,omitempty"`
	ImageDigest    string `json:"image_sha384,omitempty"`
	VarsDigest     string `json:"vars_sha384,omitempty"`
	PolicyDigest   string `json:"policy_digest,omitempty"`
	Bundle         string `json:"bundle,omitempty"`
	BundleVersion  string `json:"bundle_version_string,omitempty"`
	Image          string `json:"image,omitempty"`
	Error          string `json:"error,omitempty"`
}

// Exit codes of `verifier receipt` (docs/verifier.md).
const (
	ReceiptExitOK      = 0 // an authentic receipt of an acceptance, for this nonce (and bundle/image)
	ReceiptExitFailed  = 1 // no valid receipt: forged, replayed, another key, mismatch, none, or bad input
	ReceiptExitRefusal = 2 // an authentic refusal for this nonce: the shim refused what it was offered
)

// ExitCode maps the report to the exit codes above.
func (r *ReceiptReport) ExitCode() int {
	switch r.Status {
	case "OK":
		return ReceiptExitOK
	case "REFUSAL":
		return ReceiptExitRefusal
	}
	return ReceiptExitFailed
}

func hx48(p *[48]byte) string {
	if p == nil {
		return ""
	}
	return hex.EncodeToString(p[:])
}

// CheckReceipt verifies a receipt: the MAC under the owner's key first (nothing is believed
// before it verifies), then the nonce, then — when given — that the receipt is about the
// owner's bundle and the owner's shim policy. A refusal is reported as such and never as an
// acceptance. The returned error says why the receipt is not a valid acceptance (nil only for
// Status "OK").
func CheckReceipt(c ReceiptCheck) (*ReceiptReport, error) {
	rep := &ReceiptReport{Status: "FAILED"}
	fail := func(err error) (*ReceiptReport, error) {
		rep.Status = "FAILED"
		rep.Error = err.Error()
		return rep, err
	}
	blob, err := receipt.ParseHex(strings.TrimSpace(c.Receipt))
	if err != nil {
		return fail(err)
	}
	r, err := receipt.Open(c.Key, blob)
	if err != nil {
		return fail(err)
	}
	rep.Authentic = true
	rep.Code = uint16(r.Verdict)
	rep.Verdict = r.Verdict.String()
	rep.Nonce = "none"
	if r.Nonce != nil {
		rep.Nonce = hex.EncodeToString(r.Nonce[:])
	}
	if m := r.Manifest; m != nil {
		rep.BIOSVersion, rep.Signer, rep.ManifestDigest = m.BIOSVersion, hex.EncodeToString(m.SignerKeyID[:]), hex.EncodeToString(m.Digest[:])
	}
	rep.ImageDigest, rep.VarsDigest, rep.PolicyDigest = hx48(r.Image), hx48(r.Vars), hx48(r.Policy)

	switch {
	case c.Nonce == nil && r.Nonce == nil:
		rep.NonceMatch = true
	case c.Nonce == nil:
		return fail(fmt.Errorf("the receipt carries nonce %x but you gave --nonce none", r.Nonce[:]))
	case r.Nonce == nil:
		return fail(fmt.Errorf("the receipt carries no nonce, you expected %x: the shim was given none (hostctl receive without --nonce), so this receipt may be an old one replayed", c.Nonce))
	case !bytes.Equal(r.Nonce[:], c.Nonce):
		return fail(fmt.Errorf("the receipt is for nonce %x, not yours (%x): a replayed receipt from another receive", r.Nonce[:], c.Nonce))
	default:
		rep.NonceMatch = true
	}

	if c.BundlePath != "" {
		rep.Bundle = c.BundlePath
		man, _, m, err := manifest.ReadBundle(c.BundlePath)
		if err != nil {
			return fail(fmt.Errorf("bundle: %w", err))
		}
		rep.BundleVersion = m.VersionString
		want := sha512.Sum384(man)
		switch {
		case r.Manifest == nil:
			return fail(fmt.Errorf("the shim received no manifest (%s), so the receipt is not about %s", r.Verdict, c.BundlePath))
		case r.Manifest.Digest != want:
			return fail(fmt.Errorf("the shim was offered manifest %x (version %d), not %s's %x (version %d)", r.Manifest.Digest[:8], r.Manifest.BIOSVersion, c.BundlePath, want[:8], m.Version))
		}
	}
	if c.ImagePath != "" {
		rep.Image = c.ImagePath
		img, err := os.ReadFile(c.ImagePath)
		if err != nil {
			return fail(err)
		}
		block, _, err := shimimage.ExtractPolicy(img)
		if err != nil {
			return fail(fmt.Errorf("%s: %w", c.ImagePath, err))
		}
		want := sha512.Sum384(block)
		switch {
		case r.Policy == nil:
			return fail(fmt.Errorf("the receipt has no policy digest (%s: the shim's policy did not parse)", r.Verdict))
		case *r.Policy != want:
			return fail(fmt.Errorf("the receipt's policy digest %x is not the policy of %s (%x)", r.Policy[:8], filepath.Base(c.ImagePath), want[:8]))
		}
	}
	if !r.Accepted() {
		rep.Status = "REFUSAL"
		err := fmt.Errorf("authentic refusal %s", r.Verdict)
		rep.Error = err.Error()
		return rep, err
	}
	if r.Manifest == nil || r.Image == nil || r.Policy == nil {
		// the shim never accepts without these; a receipt that says so is not one it made
		return fail(errors.New("an acceptance without manifest, image or policy digest: not a receipt this shim format makes"))
	}
	rep.Status = "OK"
	return rep, nil
}

// WriteReceiptText prints the report for people.
func WriteReceiptText(w io.Writer, r *ReceiptReport) {
	if !r.Authentic {
		fmt.Fprintf(w, "receipt FAILED: %s\n", r.Error)
		return
	}
	fmt.Fprintln(w, "receipt MAC:    verifies under the owner's receipt key (made by the shim that got the launch secret)")
	fmt.Fprintf(w, "nonce:          %s", r.Nonce)
	switch {
	case r.NonceMatch && r.Nonce == "none":
		fmt.Fprintln(w, " (--nonce none: nothing shows that this receipt is fresh)")
	case r.NonceMatch:
		fmt.Fprintln(w, " (yours)")
	default:
		fmt.Fprintln(w, " (NOT yours)")
	}
	if r.Verdict == "OK" {
		fmt.Fprintln(w, "verdict:        OK, the shim accepted the BIOS and handed off to it")
	} else {
		fmt.Fprintf(w, "verdict:        %s, the shim refused and halted\n", r.Verdict)
	}
	if r.ManifestDigest != "" {
		fmt.Fprintf(w, "bundle:         version %d, signer %s\n", r.BIOSVersion, r.Signer)
		fmt.Fprintf(w, "manifest:       sha384 %s", r.ManifestDigest)
		if r.Bundle != "" && r.Status != "FAILED" {
			fmt.Fprintf(w, " = %s (%q)", r.Bundle, r.BundleVersion)
		}
		fmt.Fprintln(w)
	} else {
		fmt.Fprintln(w, "bundle:         none (the shim got no 352-byte manifest)")
	}
	opt := func(s, none string) string {
		if s == "" {
			return none
		}
		return "sha384 " + s
	}
	fmt.Fprintf(w, "image:          %s\n", opt(r.ImageDigest, "not hashed (refused before)"))
	fmt.Fprintf(w, "var store:      %s\n", opt(r.VarsDigest, "none"))
	fmt.Fprintf(w, "policy:         %s", opt(r.PolicyDigest, "none (the shim's policy did not parse)"))
	if r.Image != "" && r.Status != "FAILED" {
		fmt.Fprintf(w, " = the policy of %s", r.Image)
	}
	fmt.Fprintln(w)
	switch r.Status {
	case "OK":
		fmt.Fprintln(w, "receipt OK")
	case "REFUSAL":
		fmt.Fprintln(w, r.Error)
	default:
		fmt.Fprintf(w, "receipt FAILED: %s\n", r.Error)
	}
}
