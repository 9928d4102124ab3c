package inspect

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"hash"
	"io"
	"path/filepath"
	"sort"
	"strings"

	"github.com/sevshim/sevshim/pkg/format/guestpkg"
	"github.com/sevshim/sevshim/pkg/format/layout"
	"github.com/sevshim/sevshim/pkg/format/policy"
	"github.com/sevshim/sevshim/pkg/format/shimimage"
	"github.com/sevshim/sevshim/pkg/keys"
	"github.com/sevshim/sevshim/pkg/sev"
)

// Kinds of the other files the project writes (explained, not taken apart like images).
const (
	KindVars          = "uefi-var-store"
	KindChain         = "sev-platform-chain"
	KindAMDChain      = "sev-amd-root"
	KindCert          = "sev-certificate"
	KindGuestPkg      = "guest-package"
	KindMeasurement   = "launch-measurement"
	KindSession       = "owner-session"
	KindSecret        = "launch-secret"
	KindEvidence      = "tpm-evidence"
	KindLaunchState   = "hostctl-launch-state"
	KindRecvState     = "hostctl-receive-state"
	KindPlatformState = "emulated-psp-state"
	KindPublicKey     = "public-key"
	KindPrivateKey    = "private-key"
	KindPolicyYAML    = "policy-yaml"
	KindBase64Blob    = "qemu-sev-blob"
	KindRawKey        = "raw-16-byte-key"
	KindTruncated     = "truncated-image"
	KindUnknown       = "unknown"
)

// Fact is one line of what a file holds.
type Fact struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Error is a file inspect could not explain; Kind says what it looks like (KindTruncated,
// KindUnknown, or the kind of a file that turned out broken, e.g. a guest package).
type Error struct {
	File string `json:"file"`
	Kind string `json:"kind"`
	Msg  string `json:"error"`
}

func (e *Error) Error() string { return e.File + ": " + e.Msg }

// The UEFI firmware volume header (PI spec vol 3, 3.2.1 EFI_FIRMWARE_VOLUME_HEADER): the
// signature "_FVH" at offset 0x28; the FileSystemGuid at 0x10 is EFI_SYSTEM_NV_DATA_FV_GUID
// for a variable store.
var nvDataFV = shimimage.MustParseGUID("fff12b8d-7696-4c8b-a985-2747075b4f50")

func fvHeader(b []byte) (shimimage.GUID, bool) {
	var g shimimage.GUID
	if len(b) < 0x48 || string(b[0x28:0x2C]) != "_FVH" {
		return g, false
	}
	copy(g[:], b[0x10:0x20])
	return g, true
}

func allFF(b []byte) bool { return bytes.Count(b, []byte{0xFF}) == len(b) }

// identify explains a file that is not an image, bundle, manifest or policy block, or says
// what it looks like.
func identify(r *Report, b []byte) (*Report, error) {
	fail := func(kind, format string, a ...any) (*Report, error) {
		return nil, &Error{File: r.File, Kind: kind, Msg: fmt.Sprintf(format, a...)}
	}
	if len(b) == 0 {
		return fail(KindUnknown, "the file is empty")
	}
	// images of the wrong size: a truncated copy of a shim or UEFI image
	for _, l := range layout.All() {
		if len(b) >= int(l.CodeSize) || len(b) < 0x1000 {
			continue
		}
		if _, ok := fvHeader(b); ok && !bytes.Equal(b[0x10:0x20], nvDataFV[:]) && len(b) != int(l.VarsSize) {
			return fail(KindTruncated, "a truncated UEFI firmware image: %d of %d bytes (layout %s); the footer table at the end is missing: copy the whole file",
				len(b), l.CodeSize, l.Name)
		}
		if allFF(b[:min(len(b), 0x10000)]) {
			return fail(KindTruncated, "a truncated shim image? %d of %d bytes (layout %s), starting with the shim's 0xFF padding; the footer table at the end is missing: copy the whole file, or rebuild it with `builder build`",
				len(b), l.CodeSize, l.Name)
		}
	}
	if g, ok := fvHeader(b); ok && g == nvDataFV {
		r.Kind = KindVars
		for _, l := range layout.All() {
			if len(b) == int(l.VarsSize) {
				r.Layout = l.Name
			}
		}
		r.About = "a UEFI variable store (OVMF_VARS): what hostctl passes as --vars and the shim programs into pflash1 when the policy allows it"
		r.Facts = append(r.Facts, Fact{"allowed_vars entry (sha384)", r.Digests.SHA384})
		if r.Layout == "" {
			r.Facts = append(r.Facts, Fact{"warning", fmt.Sprintf("%d bytes is not the var-store size of any layout: the shim refuses it (E040)", len(b))})
		}
		return r, nil
	}
	if len(b) >= 4*sev.CertSize {
		if c, err := sev.ParseFullChain(b); err == nil {
			r.Kind = KindChain
			r.About = "a platform's SEV certificate chain (PDH || PEK || OCA || CEK [|| ASK || ARK]), as `hostctl platform export` writes it: check it with `verifier platform --chain FILE`"
			pk := c.PDH.KeyDigest()
			r.Facts = append(r.Facts, Fact{"PDH API version", fmt.Sprintf("%d.%d", c.PDH.APIMajor, c.PDH.APIMinor)},
				Fact{"PDH key (sha256)", hex.EncodeToString(pk[:])}, Fact{"ASK and ARK included", fmt.Sprint(c.ASK != nil)})
			return r, nil
		}
	}
	if _, ark, err := sev.ParseAMDChain(b); err == nil {
		r.Kind = KindAMDChain
		r.About = "an ASK || ARK root pair (ask_ark.cert); in a platform state directory it is the emulator's TEST root: `verifier --root DIR` trusts it"
		r.Facts = append(r.Facts, Fact{"ARK key id", ark.KeyIDString()})
		return r, nil
	}
	if len(b) == sev.CertSize {
		if c, err := sev.ParseCert(b); err == nil {
			r.Kind = KindCert
			r.About = fmt.Sprintf("one SEV platform certificate (%v), as a platform state directory holds it", c.Usage)
			return r, nil
		}
	}
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '{' {
		return identifyJSON(r, t, fail)
	}
	if blk, _ := pem.Decode(b); blk != nil {
		switch blk.Type {
		case "PUBLIC KEY":
			pub, err := keys.ParsePublicKeyPEM(b)
			if err != nil {
				return fail(KindPublicKey, "a PEM public key, but not one sevshim can use: %v", err)
			}
			id, _ := keys.CheckKeyID(pub)
			r.Kind = KindPublicKey
			r.About = "a P-384 public key: what a policy's signers list (key: FILE) and `builder inspect --signer` take"
			r.Facts = append(r.Facts, Fact{"key id", hex.EncodeToString(id[:])})
			return r, nil
		case "PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY":
			r.Kind = KindPrivateKey
			r.About = "a PRIVATE key: keep it secret (mode 0600); `builder sign-bios --key` takes a P-384 one; give a policy the .pub file instead"
			if pub, err := keys.ParsePublicKeyPEM(b); err == nil {
				id, _ := keys.CheckKeyID(pub)
				r.Facts = append(r.Facts, Fact{"key id", hex.EncodeToString(id[:])})
			} else {
				r.Facts = append(r.Facts, Fact{"warning", "not a P-384 key: " + err.Error()})
			}
			return r, nil
		}
		return fail(KindUnknown, "a PEM %q block, which no sevshim command reads", blk.Type)
	}
	if s := strings.TrimSpace(string(b)); len(s) > 0 && len(s) < 8192 {
		if raw, err := base64.StdEncoding.DecodeString(s); err == nil {
			switch len(raw) {
			case sev.CertSize:
				r.Kind = KindBase64Blob
				r.About = "a base64 SEV certificate: the owner's GODH (NAME_godh.b64 of `verifier session`), QEMU's sev-guest dh-cert-file"
				return r, nil
			case sev.SessionSize:
				r.Kind = KindBase64Blob
				r.About = "a base64 launch session blob (NAME_session.b64 of `verifier session`), QEMU's sev-guest session-file"
				return r, nil
			}
		}
		if strings.Contains(s, "layout:") || strings.Contains(s, "signers:") {
			r.Kind = KindPolicyYAML
			p, info, err := policy.ParseYAMLInfo(b, r.File, filepath.Dir(r.File))
			if err != nil {
				return fail(KindPolicyYAML, "a policy YAML, but it does not parse: %v", err)
			}
			r.About = "a policy in YAML: embed it into the shim with `builder build --policy FILE --out SHIM.fd`"
			if r.Policy, err = PolicyOf(p); err != nil {
				return nil, err
			}
			for i := range r.Policy.Signers {
				if i < len(info.SignerNames) {
					r.Policy.Signers[i].Name = info.SignerNames[i]
				}
			}
			for _, w := range info.Warnings {
				r.Facts = append(r.Facts, Fact{"warning", w})
			}
			return r, nil
		}
	}
	if len(b) == 16 {
		r.Kind = KindRawKey
		r.About = "16 raw bytes: perhaps a session key (NAME_tek.bin or NAME_tik.bin of `verifier session`, mode 0600; it must never leave the owner's machine)"
		return r, nil
	}
	head := b[:min(len(b), 8)]
	return fail(KindUnknown, "not a file sevshim writes (%d bytes starting %x %q): inspect explains shim images, BIOS bundles and manifests, policy blocks and YAML, UEFI images and var stores, platform chains, guest packages, keys and the JSON files of hostctl and verifier",
		len(b), head, head)
}

func identifyJSON(r *Report, b []byte, fail func(kind, format string, a ...any) (*Report, error)) (*Report, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return fail(KindUnknown, "looks like JSON but does not parse: %v", err)
	}
	has := func(keys ...string) bool {
		for _, k := range keys {
			if _, ok := m[k]; !ok {
				return false
			}
		}
		return true
	}
	str := func(k string) string {
		var s string
		if json.Unmarshal(m[k], &s) == nil {
			return s
		}
		return strings.TrimSpace(string(m[k]))
	}
	add := func(keys ...string) {
		for _, k := range keys {
			if _, ok := m[k]; ok {
				r.Facts = append(r.Facts, Fact{k, str(k)})
			}
		}
	}
	switch {
	case has("sev-measurement"):
		r.Kind, r.About = KindMeasurement, "a launch measurement (W/measurement.json of `hostctl launch`): check it with `verifier measure --measurement FILE`"
		add("sev-measurement", "sev-api-major", "sev-api-minor", "sev-build-id", "sev-policy")
	case has("sev-secret-header"):
		r.Kind, r.About = KindSecret, "a wrapped launch secret (secret.json of `verifier secret`): `hostctl launch-finish --secret FILE` injects it"
		add("sev-secret-set-address")
	case has("chain_sha256", "policy", "name"):
		r.Kind, r.About = KindSession, "an owner session (session.json of `verifier session`); its TEK/TIK files lie beside it"
		add("name", "policy", "chain_sha256")
	case has("format") && str("format") == "sevshim-tpm-evidence-1":
		r.Kind, r.About = KindEvidence, "TPM evidence (`hostctl tpm-quote`): check it with `verifier attest --evidence FILE`"
		add("pcr", "quote_bank")
	case has("stage", "psp_kind"):
		r.Kind, r.About = KindLaunchState, "the state of a launch work directory (launch.json of `hostctl launch`)"
		add("stage", "handle", "policy", "image_sha256")
	case has("stage", "package", "bundle"):
		r.Kind, r.About = KindRecvState, "the state of a receive work directory (receive.json of `hostctl receive`)"
		add("stage", "package", "bundle", "verdict")
	case has("chip_id", "api_major", "next_handle"):
		r.Kind, r.About = KindPlatformState, "the emulated PSP's state (platform.json in a `hostctl platform init --state DIR` directory; that DIR is what `verifier --root` takes)"
		add("api_major", "api_minor", "build", "config_es")
	case has("file", "kind", "digests"):
		r.Kind, r.About = "inspect-report", "a `builder inspect --json` report"
		add("file", "kind")
	default:
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return fail(KindUnknown, "a JSON object sevshim does not write (keys: %s)", strings.Join(keys, ", "))
	}
	return r, nil
}

// InspectPackage explains a guest package read from rd (a stream: packages hold a whole
// guest's RAM, so it is never read into memory). It checks the structure, the device state
// and the trailer digest, as `hostctl receive` does before any PSP work; only the receiving
// PSP can check the encrypted pages.
func InspectPackage(name string, rd io.Reader) (*Report, error) {
	h2, h3 := sha256.New(), sha512.New384()
	sum, err := guestpkg.Verify(io.TeeReader(rd, io.MultiWriter(h2, h3)))
	if err != nil {
		return nil, &Error{File: name, Kind: KindGuestPkg, Msg: "a guest package, but it does not verify: " + err.Error()}
	}
	hexOf := func(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }
	r := &Report{File: name, Kind: KindGuestPkg, Size: int(sum.Bytes), Digests: Digests{SHA256: hexOf(h2), SHA384: hexOf(h3)},
		About: "a guest package (`hostctl export`): a stopped SEV guest, its pages encrypted for the receiving platform; `hostctl receive --package FILE` starts it. It may be the only copy of the guest: keep it"}
	s := sum.Header.Shape
	r.Layout = layout.Describe(s.LayoutID)
	pdh, _ := sev.ParseCert(sum.Header.PDH)
	r.Facts = append(r.Facts,
		Fact{"SEV policy", sum.Header.Policy.String()},
		Fact{"machine", s.Machine}, Fact{"memory", fmt.Sprintf("%d MiB", s.RAMSize>>20)}, Fact{"cpus", fmt.Sprint(s.CPUs)},
		Fact{"pflash", fmt.Sprintf("code 0x%x, vars 0x%x", s.CodeSize, s.VarsSize)}, Fact{"tpm", fmt.Sprint(s.TPM)},
		Fact{"pages", fmt.Sprintf("%d records: %d encrypted, %d zero", sum.Records, sum.DataPages, sum.ZeroPages)},
		Fact{"device sections", fmt.Sprint(len(sum.Devices))},
		Fact{"trailer sha384", "matches (detects corruption only: the host can recompute it)"})
	if pdh != nil {
		k := pdh.KeyDigest()
		r.Facts = append(r.Facts, Fact{"sender PDH key (sha256)", hex.EncodeToString(k[:])})
	}
	return r, nil
}
