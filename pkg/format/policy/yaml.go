package policy

import (
	"bytes"
	"crypto/sha512"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/sevshim/sevshim/pkg/format/layout"
	"github.com/sevshim/sevshim/pkg/keys"
)

// The human-readable policy (YAML). Example:
//
//	layout: ovmf-4m            # a BIOS layout name
//	secret: optional           # optional | require
//	tpm: if-present            # off | if-present | required
//	tpm_pcr: 15                # 0..23, only when tpm is not off
//	signers:
//	  - key: provider.pub      # PEM public key file, relative to this YAML file (a private
//	    name: provider A       # key works but draws a warning); name: is shown by builder build
//	    min_version: 5
//	  - public_key: |          # or the PEM inline
//	      -----BEGIN PUBLIC KEY-----
//	      ...
//	    min_version: 0
//	denied_digests:            # SHA-384 of revoked images, 96 hex digits
//	  - 3f1c...
//	denied_versions: [7, 9]
//	vars: allow                # none (the default) | allow | any: may the host's var store
//	allowed_vars:              # (opt/org.sevshim/vars) be programmed? with allow, these only:
//	  - file: /usr/share/OVMF/OVMF_VARS_4M.fd   # SHA-384 of this file (relative to the YAML)
//	  - 5d0c...                # or the SHA-384, 96 hex digits
//
// Without a vars: line no var store is accepted (none, E041): the store is host data that the
// accepted BIOS trusts (Secure Boot keys, boot order), so allowing it is the owner's decision.
// Errors name the file, line and field.

// YAMLError is a policy YAML problem at a line.
type YAMLError struct {
	File  string
	Line  int
	Field string
	Msg   string
}

func (e *YAMLError) Error() string {
	f := e.File
	if f == "" {
		f = "policy"
	}
	return fmt.Sprintf("%s:%d: %s: %s", f, e.Line, e.Field, e.Msg)
}

type yamlParser struct {
	file, dir string
	info      YAMLInfo
}

// YAMLInfo is what a policy YAML says beyond the encoded policy: the signers' names (free text,
// never encoded into the shim) and warnings about inputs that work but are probably mistakes.
type YAMLInfo struct {
	SignerNames []string // one per signer, in order; "" when the signer has no name:
	Warnings    []string
}

func (y *yamlParser) errf(n *yaml.Node, field, format string, a ...any) error {
	line := 0
	if n != nil {
		line = n.Line
	}
	return &YAMLError{File: y.file, Line: line, Field: field, Msg: fmt.Sprintf(format, a...)}
}

// mode parses the value of field v as one of modes (YAML's true/false spellings too).
func (y *yamlParser) mode(v *yaml.Node, field string, modes modeNames) (uint8, error) {
	m, ok := modes.parse(v.Value, true)
	if !ok {
		return 0, y.errf(v, field, "%q is not %s", v.Value, modes.list())
	}
	return m, nil
}

// LoadYAML reads a policy YAML file; key files are resolved relative to its directory.
func LoadYAML(path string) (*Policy, error) {
	p, _, err := LoadYAMLInfo(path)
	return p, err
}

// LoadYAMLInfo is LoadYAML that also returns the signer names and warnings.
func LoadYAMLInfo(path string) (*Policy, *YAMLInfo, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	return ParseYAMLInfo(b, path, filepath.Dir(path))
}

// ParseYAML parses policy YAML. name is used in error messages; key paths are relative to dir.
func ParseYAML(data []byte, name, dir string) (*Policy, error) {
	p, _, err := ParseYAMLInfo(data, name, dir)
	return p, err
}

// ParseYAMLInfo is ParseYAML that also returns the signer names and warnings.
func ParseYAMLInfo(data []byte, name, dir string) (*Policy, *YAMLInfo, error) {
	y := &yamlParser{file: name, dir: dir}
	p, err := y.parse(data)
	if err != nil {
		return nil, nil, err
	}
	return p, &y.info, nil
}

func (y *yamlParser) parse(data []byte) (*Policy, error) {
	name := y.file
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &YAMLError{File: y.file, Line: 1, Field: "policy", Msg: "the file is empty (or only comments): a policy needs at least layout: and signers: (e.g. layout: ovmf-4m, signers: [{key: provider.pub, min_version: 1}])"}
		}
		return nil, fmt.Errorf("%s: not valid YAML: %s", name, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, y.errf(&extra, "policy", "a second YAML document (after ---): a policy file holds exactly one, and the rest would be ignored")
	} else if !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: after the first document: not valid YAML: %s", name, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, y.errf(&doc, "policy", "the document must be a mapping (layout:, signers:, ...)")
	}
	root := doc.Content[0]
	p := &Policy{}
	seen := map[string]*yaml.Node{}
	var pcrNode, tpmNode, varsNode, allowedNode *yaml.Node
	var err error
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if prev, dup := seen[k.Value]; dup {
			return nil, y.errf(k, k.Value, "given twice (first on line %d)", prev.Line)
		}
		seen[k.Value] = k
		switch k.Value {
		case "layout":
			l, ok := layout.ByName(v.Value)
			if v.Kind != yaml.ScalarNode || !ok {
				return nil, y.errf(v, "layout", "unknown layout %q (known: %s)", v.Value, strings.Join(layout.Names(), ", "))
			}
			p.Layout = l.ID
		case "secret":
			if p.SecretMode, err = y.mode(v, "secret", secretModes); err != nil {
				return nil, err
			}
		case "tpm":
			tpmNode = v
			if p.TPMMode, err = y.mode(v, "tpm", tpmModes); err != nil {
				return nil, err
			}
		case "tpm_pcr":
			pcrNode = v
			n, err := strconv.ParseUint(v.Value, 0, 8)
			if v.Kind != yaml.ScalarNode || err != nil || n > MaxPCR {
				return nil, y.errf(v, "tpm_pcr", "%q is not a PCR number 0..%d", v.Value, MaxPCR)
			}
			p.TPMPCR = uint8(n)
		case "signers":
			if err := y.signers(v, p); err != nil {
				return nil, err
			}
		case "denied_digests":
			if err := y.list(v, "denied_digests", "hex SHA-384 digests", "entries", MaxDeniedDigests); err != nil {
				return nil, err
			}
			at := map[[48]byte]int{}
			for i, e := range v.Content {
				raw, err := hex.DecodeString(strings.TrimPrefix(strings.ToLower(e.Value), "sha384:"))
				if e.Kind != yaml.ScalarNode || err != nil || len(raw) != 48 {
					return nil, y.errf(e, fmt.Sprintf("denied_digests[%d]", i), "not a SHA-384 digest (96 hex digits)")
				}
				var d [48]byte
				copy(d[:], raw)
				if l, dup := at[d]; dup {
					return nil, y.errf(e, fmt.Sprintf("denied_digests[%d]", i), "duplicate of line %d", l)
				}
				at[d] = e.Line
				p.DeniedDigests = append(p.DeniedDigests, d)
			}
		case "denied_versions":
			if err := y.list(v, "denied_versions", "version numbers", "entries", MaxDeniedVersion); err != nil {
				return nil, err
			}
			at := map[uint64]int{}
			for i, e := range v.Content {
				n, err := strconv.ParseUint(e.Value, 0, 64)
				if e.Kind != yaml.ScalarNode || err != nil {
					return nil, y.errf(e, fmt.Sprintf("denied_versions[%d]", i), "%q is not an unsigned 64-bit number", e.Value)
				}
				if l, dup := at[n]; dup {
					return nil, y.errf(e, fmt.Sprintf("denied_versions[%d]", i), "version %d is already denied on line %d", n, l)
				}
				at[n] = e.Line
				p.DeniedVersions = append(p.DeniedVersions, n)
			}
		case "vars":
			varsNode = v
			if p.VarsMode, err = y.mode(v, "vars", varsModes); err != nil {
				return nil, err
			}
		case "allowed_vars":
			allowedNode = v
			if err := y.allowedVars(v, p); err != nil {
				return nil, err
			}
		default:
			return nil, y.errf(k, k.Value, "unknown field (known: layout, secret, tpm, tpm_pcr, signers, denied_digests, denied_versions, vars, allowed_vars)")
		}
	}
	if seen["layout"] == nil {
		return nil, y.errf(root, "layout", "missing (e.g. layout: ovmf-4m)")
	}
	if seen["signers"] == nil || len(p.Signers) == 0 {
		return nil, y.errf(root, "signers", "the policy needs at least one signer")
	}
	if p.TPMMode == TPMOff && pcrNode != nil {
		return nil, y.errf(pcrNode, "tpm_pcr", "set, but tpm is off (set tpm: if-present or required, or drop tpm_pcr)")
	}
	if p.TPMMode != TPMOff && pcrNode == nil {
		return nil, y.errf(tpmNode, "tpm_pcr", "tpm is %s but no tpm_pcr is given", TPMModeName(p.TPMMode))
	}
	if p.VarsMode == VarsAllow && len(p.AllowedVars) == 0 {
		return nil, y.errf(varsNode, "allowed_vars", "vars is allow but allowed_vars lists no var store")
	}
	if p.VarsMode != VarsAllow && allowedNode != nil {
		return nil, y.errf(allowedNode, "allowed_vars", "given, but vars is %s (set vars: allow)", VarsModeName(p.VarsMode))
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return p, nil
}

// list checks that v is a list (of says of what) of at most limit entries (unit names
// them in the message).
func (y *yamlParser) list(v *yaml.Node, field, of, unit string, limit int) error {
	if v.Kind != yaml.SequenceNode {
		return y.errf(v, field, "must be a list of %s", of)
	}
	if len(v.Content) > limit {
		return y.errf(v, field, "%d %s, at most %d", len(v.Content), unit, limit)
	}
	return nil
}

// allowedVars reads the allow-list: SHA-384 digests, or {file: PATH} entries whose digest
// is computed here (PATH relative to the YAML file), e.g. the layout's OVMF_VARS template.
func (y *yamlParser) allowedVars(v *yaml.Node, p *Policy) error {
	if err := y.list(v, "allowed_vars", "SHA-384 digests or {file: PATH}", "entries", MaxAllowedVars); err != nil {
		return err
	}
	at := map[[48]byte]int{}
	for i, e := range v.Content {
		field := fmt.Sprintf("allowed_vars[%d]", i)
		var d [48]byte
		switch e.Kind {
		case yaml.ScalarNode:
			raw, err := hex.DecodeString(strings.TrimPrefix(strings.ToLower(e.Value), "sha384:"))
			if err != nil || len(raw) != 48 {
				return y.errf(e, field, "not a SHA-384 digest (96 hex digits) or {file: PATH}")
			}
			copy(d[:], raw)
		case yaml.MappingNode:
			if len(e.Content) != 2 || e.Content[0].Value != "file" || e.Content[1].Kind != yaml.ScalarNode {
				return y.errf(e, field, "a mapping entry must be exactly {file: PATH}")
			}
			path := e.Content[1].Value
			if !filepath.IsAbs(path) {
				path = filepath.Join(y.dir, path)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return y.errf(e.Content[1], field+".file", "cannot read the var store: %v", err)
			}
			d = sha512.Sum384(b)
		default:
			return y.errf(e, field, "not a SHA-384 digest or {file: PATH}")
		}
		if l, dup := at[d]; dup {
			return y.errf(e, field, "the same var store as line %d", l)
		}
		at[d] = e.Line
		p.AllowedVars = append(p.AllowedVars, d)
	}
	return nil
}

func (y *yamlParser) signers(v *yaml.Node, p *Policy) error {
	if err := y.list(v, "signers", "{key: FILE, min_version: N}", "signers", MaxSigners); err != nil {
		return err
	}
	if len(v.Content) == 0 {
		return y.errf(v, "signers", "empty: the policy needs at least one signer")
	}
	ids := map[[48]byte]int{}
	for i, s := range v.Content {
		field := fmt.Sprintf("signers[%d]", i)
		if s.Kind != yaml.MappingNode {
			return y.errf(s, field, "must be a mapping {key: FILE, min_version: N}")
		}
		var sig Signer
		var keyNode *yaml.Node
		sigName := ""
		for j := 0; j+1 < len(s.Content); j += 2 {
			k, val := s.Content[j], s.Content[j+1]
			switch k.Value {
			case "key", "public_key":
				if keyNode != nil {
					return y.errf(k, field, "give either key (a file) or public_key (inline PEM), once")
				}
				keyNode = val
				var pemBytes []byte
				src := "inline public_key"
				if k.Value == "key" {
					path := val.Value
					if !filepath.IsAbs(path) {
						path = filepath.Join(y.dir, path)
					}
					b, err := os.ReadFile(path)
					if err != nil {
						return y.errf(val, field+".key", "cannot read key file: %v", err)
					}
					pemBytes, src = b, path
				} else {
					pemBytes = []byte(val.Value)
				}
				pub, err := keys.ParsePublicKeyPEM(pemBytes)
				if err != nil {
					return y.errf(val, field+"."+k.Value, "%s: not a P-384 public key: %v", src, err)
				}
				if blk, _ := pem.Decode(pemBytes); blk != nil && strings.Contains(blk.Type, "PRIVATE") {
					y.info.Warnings = append(y.info.Warnings, y.errf(val, field+"."+k.Value,
						"%s is a PRIVATE key: only its public half goes into the policy, but a signing key does not belong beside a policy; give the public key (builder keygen writes PREFIX.pub)", src).Error())
				}
				sig.PublicKey = pub
			case "min_version":
				n, err := strconv.ParseUint(val.Value, 0, 64)
				if val.Kind != yaml.ScalarNode || err != nil {
					return y.errf(val, field+".min_version", "%q is not an unsigned 64-bit number", val.Value)
				}
				sig.MinVersion = n
			case "name", "comment":
				// free text for humans, not encoded; the name is shown by builder build
				if val.Kind != yaml.ScalarNode {
					return y.errf(val, field+"."+k.Value, "must be text")
				}
				if k.Value == "name" {
					sigName = val.Value
				}
			default:
				return y.errf(k, field+"."+k.Value, "unknown field (known: key, public_key, min_version, name)")
			}
		}
		if keyNode == nil {
			return y.errf(s, field, "no key: give key: FILE or public_key: PEM")
		}
		id := keys.KeyID(sig.PublicKey)
		if l, dup := ids[id]; dup {
			return y.errf(keyNode, field, "duplicate signer: the same key as the signer on line %d", l)
		}
		ids[id] = keyNode.Line
		p.Signers = append(p.Signers, sig)
		y.info.SignerNames = append(y.info.SignerNames, sigName)
	}
	return nil
}

// MarshalYAML renders p in the YAML form with inline public keys; ParseYAML of the output
// gives p back exactly.
func (p *Policy) MarshalYAMLText() ([]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "layout: %s\n", layout.Describe(p.Layout))
	fmt.Fprintf(&b, "secret: %s\n", SecretModeName(p.SecretMode))
	fmt.Fprintf(&b, "tpm: %s\n", TPMModeName(p.TPMMode))
	if p.TPMMode != TPMOff {
		fmt.Fprintf(&b, "tpm_pcr: %d\n", p.TPMPCR)
	}
	b.WriteString("signers:\n")
	for _, s := range p.Signers {
		id := s.KeyID()
		pemb, err := keys.MarshalPublicKeyPEM(s.PublicKey)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&b, "  - name: key id %x\n    min_version: %d\n    public_key: |\n", id[:8], s.MinVersion)
		for _, l := range strings.Split(strings.TrimSpace(string(pemb)), "\n") {
			fmt.Fprintf(&b, "      %s\n", l)
		}
	}
	if len(p.DeniedDigests) > 0 {
		b.WriteString("denied_digests:\n")
		for _, d := range p.DeniedDigests {
			fmt.Fprintf(&b, "  - %x\n", d[:])
		}
	}
	if len(p.DeniedVersions) > 0 {
		b.WriteString("denied_versions:\n")
		for _, v := range p.DeniedVersions {
			fmt.Fprintf(&b, "  - %d\n", v)
		}
	}
	fmt.Fprintf(&b, "vars: %s\n", VarsModeName(p.VarsMode))
	if len(p.AllowedVars) > 0 {
		b.WriteString("allowed_vars:\n")
		for _, d := range p.AllowedVars {
			fmt.Fprintf(&b, "  - %x\n", d[:])
		}
	}
	return []byte(b.String()), nil
}
