package policy

import (
	"fmt"
	"slices"
	"strings"
)

// modeName spells one mode: its name (YAML, JSON, text) and the aliases policy YAML also takes.
type modeName struct {
	mode    uint8
	name    string
	aliases []string
}

// modeNames is the spelling table of one kind of mode.
type modeNames []modeName

var (
	secretModes = modeNames{{SecretOptional, "optional", nil}, {SecretRequire, "require", []string{"required"}}}
	tpmModes    = modeNames{{TPMOff, "off", []string{"false"}}, {TPMIfPresent, "if-present", nil}, {TPMRequired, "required", []string{"require"}}}
	varsModes   = modeNames{{VarsNone, "none", nil}, {VarsAllow, "allow", nil}, {VarsAny, "any", nil}}
)

// name is the name of m, or "invalid(m)".
func (ns modeNames) name(m uint8) string {
	for _, n := range ns {
		if n.mode == m {
			return n.name
		}
	}
	return fmt.Sprintf("invalid(%d)", m)
}

// parse is the mode named s (with aliases: also an alias of it).
func (ns modeNames) parse(s string, aliases bool) (uint8, bool) {
	for _, n := range ns {
		if s == n.name || aliases && slices.Contains(n.aliases, s) {
			return n.mode, true
		}
	}
	return 0, false
}

// list is the names for a message: "a, b or c".
func (ns modeNames) list() string {
	var names []string
	for _, n := range ns {
		names = append(names, n.name)
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// SecretModeName, TPMModeName and VarsModeName give the YAML (and JSON) spelling of a mode;
// ParseSecretMode, ParseTPMMode and ParseVarsMode read exactly that spelling back.
func SecretModeName(m uint8) string { return secretModes.name(m) }

// VarsModeName is the YAML name of a var-store mode.
func VarsModeName(m uint8) string { return varsModes.name(m) }

// TPMModeName is the YAML name of a TPM mode.
func TPMModeName(m uint8) string { return tpmModes.name(m) }

// ParseSecretMode is the secret mode named s (SecretModeName's spelling).
func ParseSecretMode(s string) (uint8, bool) { return secretModes.parse(s, false) }

// ParseTPMMode is the TPM mode named s (TPMModeName's spelling).
func ParseTPMMode(s string) (uint8, bool) { return tpmModes.parse(s, false) }

// ParseVarsMode is the var-store mode named s (VarsModeName's spelling).
func ParseVarsMode(s string) (uint8, bool) { return varsModes.parse(s, false) }
