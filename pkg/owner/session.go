package owner

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/sevshim/sevshim/pkg/atomicfile"
	"github.com/sevshim/sevshim/pkg/sev"
)

// SessionFile is the name of the session description inside a session directory.
const SessionFile = "session.json"

// DefaultSessionName is the file-name prefix of the session files unless --name is given.
const DefaultSessionName = "guest"

// SessionInfo is DIR/session.json (docs/flow.md): the policy the session was made for, the
// file-name prefix of the sevctl-shaped files, and the SHA-256 of the chain file it targets.
type SessionInfo struct {
	Policy      uint32 `json:"policy"`
	Name        string `json:"name"`
	ChainSHA256 string `json:"chain_sha256"`
}

// Session is a loaded session directory: the description and the owner's secret keys.
type Session struct {
	Dir   string
	Info  SessionInfo
	Files sev.LaunchFiles
	Keys  sev.TransportKeys
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ParsePolicy reads a 32-bit SEV guest policy in hex ("0x1", "1", "0x00050001") and rejects
// reserved bits.
func ParsePolicy(s string) (sev.Policy, error) {
	t := strings.TrimPrefix(strings.TrimPrefix(strings.TrimSpace(s), "0x"), "0X")
	v, err := strconv.ParseUint(t, 16, 32)
	if err != nil || t == "" {
		return 0, fmt.Errorf("policy %q: want the 32-bit SEV guest policy in hex, e.g. 0x1 (NODBG)", s)
	}
	p := sev.Policy(v)
	if err := p.Validate(); err != nil {
		return 0, err
	}
	return p, nil
}

// CheckSessionPolicy refuses guest policies a sevshim launch cannot use and warns about those
// that limit it, when the session is made rather than steps later. ES (bit 2): the shim does not
// support SEV-ES yet (it refuses with E081 sev-es-active, and a platform not configured for ES
// refuses LAUNCH_START); SEV API 55766 section 3 (guest policy). NOSEND (bit 3): the PSP
// refuses SEND_START, so the guest can never be exported (docs/flow.md).
func CheckSessionPolicy(pol sev.Policy) (warnings []string, err error) {
	if pol.Has(sev.PolicyES) {
		return nil, fmt.Errorf("policy %#x sets ES (bit 2): the shim does not support SEV-ES yet (it would stop with E081 sev-es-active, "+
			"and a platform not configured for ES refuses LAUNCH_START); clear bit 2, e.g. --policy %#x", uint32(pol), uint32(pol&^sev.PolicyES))
	}
	if pol.Has(sev.PolicyNoSend) {
		warnings = append(warnings, fmt.Sprintf("policy %#x sets NOSEND (bit 3): the PSP will refuse SEND_START, so `hostctl export` can never move this guest; "+
			"clear bit 3 (--policy %#x) unless it must stay on this platform", uint32(pol), uint32(pol&^sev.PolicyNoSend)))
	}
	return warnings, nil
}

// SessionReport is what `verifier session` prints.
type SessionReport struct {
	Platform *PlatformReport `json:"platform"`
	Dir      string          `json:"dir"`
	Policy   string          `json:"policy"`
	Files    sev.LaunchFiles `json:"files"`
	Info     string          `json:"session_json"`
	Warnings []string        `json:"warnings,omitempty"`
}

// CreateSession verifies the chain, then writes a fresh owner session for its PDH into dir:
// <name>_godh.b64 and <name>_session.b64 (what QEMU's sev-guest dh-cert-file/session-file
// read), <name>_tek.bin and <name>_tik.bin (mode 0600; they never leave the owner) and
// session.json. It refuses to overwrite an existing session unless force is set: its TEK/TIK
// may be the only keys of a launch in progress.
func CreateSession(rnd io.Reader, chainPath string, t Trust, pol sev.Policy, name, dir string, force bool) (*SessionReport, error) {
	if !nameRE.MatchString(name) {
		return nil, fmt.Errorf("session name %q: want 1-64 characters of letters, digits, '.', '_', '-' (it prefixes file names)", name)
	}
	if err := pol.Validate(); err != nil {
		return nil, err
	}
	warnings, err := CheckSessionPolicy(pol)
	if err != nil {
		return nil, err
	}
	pr, err := VerifyPlatform(chainPath, t)
	if err != nil {
		return &SessionReport{Platform: pr}, fmt.Errorf("refusing to make a session for an unverified platform: %w", err)
	}
	rep := &SessionReport{Platform: pr, Dir: dir, Policy: pol.String(), Info: filepath.Join(dir, SessionFile), Warnings: warnings}
	c := pr.ParsedChain()
	v := sev.PlatformVersion{APIMajor: c.PDH.APIMajor, APIMinor: c.PDH.APIMinor}
	if !pol.AllowsPlatform(v) {
		maj, min := pol.MinAPI()
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("the policy demands firmware API >= %d.%d but the PDH was issued by API %d.%d: LAUNCH_START will fail unless the firmware was updated since", maj, min, v.APIMajor, v.APIMinor))
	}
	files := sev.LaunchFileNames(dir, name)
	if !force {
		for _, p := range []string{rep.Info, files.GODH, files.Session, files.TEK, files.TIK} {
			if _, err := os.Lstat(p); err == nil {
				return rep, fmt.Errorf("%s exists: refusing to overwrite a session (its TEK/TIK may belong to a launch in progress); use another --out or --force", p)
			}
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return rep, fmt.Errorf("session directory: %w", err)
	}
	os_, err := sev.NewOwnerSession(rnd, c.PDH, uint32(pol))
	if err != nil {
		return rep, err
	}
	defer os_.Keys.Wipe()
	if rep.Files, err = os_.WriteFiles(dir, name); err != nil {
		return rep, err
	}
	info := SessionInfo{Policy: uint32(pol), Name: name, ChainSHA256: pr.ChainSHA256}
	js, _ := json.MarshalIndent(info, "", "  ")
	if err := atomicfile.WriteFile(rep.Info, append(js, '\n'), 0o644); err != nil {
		return rep, err
	}
	return rep, nil
}

// LoadSession reads DIR/session.json and the TEK/TIK it names. The key files must be
// private (no group or other permissions) and exactly 16 bytes.
func LoadSession(dir string) (*Session, error) {
	p := filepath.Join(dir, SessionFile)
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("session: %w (make one with `verifier session --out %s`)", err, dir)
	}
	s := &Session{Dir: dir}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&s.Info); err != nil {
		return nil, fmt.Errorf("%s: %s (want {\"policy\": u32, \"name\": str, \"chain_sha256\": hex})", p, jsonProblem(err))
	}
	if !nameRE.MatchString(s.Info.Name) {
		return nil, fmt.Errorf("%s: bad session name %q", p, s.Info.Name)
	}
	if err := sev.Policy(s.Info.Policy).Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	s.Files = sev.LaunchFileNames(dir, s.Info.Name)
	for _, k := range []struct {
		path string
		dst  *[16]byte
	}{{s.Files.TEK, &s.Keys.TEK}, {s.Files.TIK, &s.Keys.TIK}} {
		st, err := os.Stat(k.path)
		if err != nil {
			return nil, fmt.Errorf("session key: %w", err)
		}
		if st.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("%s: mode %v lets others read a session key; run chmod 600 on it (and consider the session compromised if others could read it)", k.path, st.Mode().Perm())
		}
		if *k.dst, err = sev.ReadKeyFile(k.path); err != nil {
			return nil, err
		}
	}
	return s, nil
}
