// Package console is the shim's console protocol (docs/shim.md "Console"): every line the shim
// prints on COM1 and debugcon, defined once here and once in shim/include/sevshim/console.h
// (SEVSHIM_CON_*, kept equal by a test), formatted by Format and parsed by Parse, always as
// whole lines, never as substrings (the VERIFIED line carries the signer-chosen version
// string). Both sides are tested against testdata/golden/console/lines.txt. The error-code
// table, and with it the check that an ERROR line names a real code, is package shimerr's.
package console

import (
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"

	"github.com/sevshim/sevshim/pkg/format/shimerr"
)

// The lines, as console.h defines them. The verbs are the shim's (con_fmt): %d a decimal
// number, %x 0x and 16 lowercase hex digits, %h lowercase hex bytes, %s a string.
const (
	Prefix          = "SEVSHIM "
	Ready           = "SEVSHIM READY" // before the wait for the wake-up NMI
	Wake            = "SEVSHIM WAKE"  // the NMI was taken
	Loaded          = "SEVSHIM LOADED bios=%d vars=%d"
	Verified        = `SEVSHIM VERIFIED version=%d signer=%h name="%s"`
	TPMExtended     = "SEVSHIM TPM extended pcr=%d banks=%d"
	TPMAbsent       = "SEVSHIM TPM absent"
	Flashed         = "SEVSHIM FLASHED code=%d vars=%d"
	SecretHandedOff = "SEVSHIM SECRET handed-off bytes=%d base=%x"
	SecretWiped     = "SEVSHIM SECRET wiped"
	SecretNone      = "SEVSHIM SECRET none"
	ReceiptPrefix   = "SEVSHIM RECEIPT "
	Receipt         = ReceiptPrefix + "%h"   // docs/formats.md section 9
	ReceiptNone     = "SEVSHIM RECEIPT none" // the shim held no receipt key
	Handoff         = "SEVSHIM HANDOFF"      // right before the INIT into the new flash
	Error           = "SEVSHIM ERROR E%s %s" // a refusal: the code's 3 digits and name (docs/errors.md)
	Exception       = "SEVSHIM EXCEPTION vector=%d error=%x rip=%x"
	Halt            = "SEVSHIM HALT" // after a refusal
)

// Def is one line of the protocol: its name (the words after "SEVSHIM " that are not
// arguments), the suffix of its C macro (SEVSHIM_CON_<Macro>) and its format.
type Def struct {
	Name, Macro, Format string
	re                  *regexp.Regexp
}

// Defs is every line the shim prints, in the order of a boot (console.h's order).
var Defs = []*Def{
	def("READY", "READY", Ready),
	def("WAKE", "WAKE", Wake),
	def("LOADED", "LOADED", Loaded),
	// version_string is printable ASCII (docs/formats.md), '"' included: the name is
	// everything between the first `name="` and the line's final '"'. The signer is the first
	// 8 bytes of the key id.
	def("VERIFIED", "VERIFIED", Verified, `[0-9]+`, `[0-9a-f]{16}`, `[ -~]*`),
	def("TPM extended", "TPM_EXTENDED", TPMExtended),
	def("TPM absent", "TPM_ABSENT", TPMAbsent),
	def("FLASHED", "FLASHED", Flashed),
	def("SECRET handed-off", "SECRET_HANDED_OFF", SecretHandedOff),
	def("SECRET wiped", "SECRET_WIPED", SecretWiped),
	def("SECRET none", "SECRET_NONE", SecretNone),
	def("RECEIPT none", "RECEIPT_NONE", ReceiptNone), // before RECEIPT: "none" is not hex anyway
	def("RECEIPT", "RECEIPT", Receipt),
	def("HANDOFF", "HANDOFF", Handoff),
	def("ERROR", "ERROR", Error, `[0-9]{3}`, `[a-z0-9-]+`),
	def("EXCEPTION", "EXCEPTION", Exception),
	def("HALT", "HALT", Halt),
}

// verbRE is what each verb matches unless a line says otherwise.
var verbRE = map[byte]string{'d': `[0-9]+`, 'x': `0x[0-9a-f]{16}`, 'h': `(?:[0-9a-f]{2})+`, 's': `[ -~]*`}

// def builds the anchored regular expression of a format: literal text quoted, each verb a
// group (groups[i] for the i-th verb if given).
func def(name, macro, format string, groups ...string) *Def {
	var re strings.Builder
	re.WriteString("^")
	n := 0
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			re.WriteString(regexp.QuoteMeta(format[i : i+1]))
			continue
		}
		i++
		g, ok := verbRE[format[i]]
		if !ok {
			panic("console: unknown verb in " + format)
		}
		if n < len(groups) {
			g = groups[n]
		}
		n++
		re.WriteString("(" + g + ")")
	}
	re.WriteString("$")
	return &Def{Name: name, Macro: macro, Format: format, re: regexp.MustCompile(re.String())}
}

// ByName returns the definition of a line by its name ("LOADED", "TPM extended", ...).
func ByName(name string) (*Def, bool) {
	for _, d := range Defs {
		if d.Name == name {
			return d, true
		}
	}
	return nil, false
}

func mustRE(name string) *regexp.Regexp {
	d, ok := ByName(name)
	if !ok {
		panic("console: no line " + name)
	}
	return d.re
}

// RE is the anchored regular expression of the line: one group per argument.
func (d *Def) RE() *regexp.Regexp { return d.re }

var (
	// The whole lines, for console waits; each group is one argument.
	ReadyRE    = mustRE("READY")
	WakeRE     = mustRE("WAKE")
	LoadedRE   = mustRE("LOADED")
	VerifiedRE = mustRE("VERIFIED")
	FlashedRE  = mustRE("FLASHED")
	HandoffRE  = mustRE("HANDOFF")
	HaltRE     = mustRE("HALT")
	ReceiptRE  = mustRE("RECEIPT")
)

// Line is a parsed shim console line.
type Line struct {
	Name string   // the Def's name: "READY", "TPM extended", "ERROR", ...
	Args []string // the arguments in the order of the format
	Code shimerr.Code
}

// Parse parses one whole console line (only its terminator, a trailing "\n", "\r\n" or "\r"
// as COM1 ends its lines, is dropped). ok is false for anything that is not exactly one of the shim's lines, including
// an ERROR line whose code and name are not a pair of docs/errors.md (shimerr.ParseLine).
func Parse(line string) (l Line, ok bool) {
	line = trimEOL(line)
	if !strings.HasPrefix(line, Prefix) {
		return Line{}, false
	}
	for _, d := range Defs {
		m := d.re.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		l = Line{Name: d.Name, Args: m[1:]}
		if d.Format == Error {
			if l.Code, ok = shimerr.ParseLine(line); !ok {
				return Line{}, false
			}
		}
		return l, true
	}
	return Line{}, false
}

func trimEOL(line string) string {
	return strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
}

// Format formats a line as the shim's con_fmt does: %d takes any integer, %x a uint64, %h a
// []byte, %s a string. It panics on a verb without a matching argument (a programming error).
func Format(format string, args ...any) string {
	var b strings.Builder
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			b.WriteByte(format[i])
			continue
		}
		i++
		a := args[0]
		args = args[1:]
		switch format[i] {
		case 'd':
			fmt.Fprintf(&b, "%d", a)
		case 'x':
			fmt.Fprintf(&b, "0x%016x", a.(uint64))
		case 'h':
			b.WriteString(hex.EncodeToString(a.([]byte)))
		case 's':
			b.WriteString(a.(string))
		default:
			panic("console: unknown verb in " + format)
		}
	}
	return b.String()
}

// StepRE matches every shim line whose second word is step ("LOADED", "FLASHED", ...), with or
// without arguments after it.
func StepRE(step string) *regexp.Regexp {
	return regexp.MustCompile("^" + regexp.QuoteMeta(Prefix+step) + "( .*)?$")
}

// Step names a shim console line by its step: the first word of its name ("WAKE", "TPM",
// "SECRET", ...), or "ERROR E0NN" for a refusal. ok is false for a line that is not the shim's.
func Step(line string) (step string, ok bool) {
	l, ok := Parse(line)
	switch {
	case !ok:
		return "", false
	case l.Name == "ERROR":
		return "ERROR E" + l.Args[0], true
	}
	return strings.Fields(l.Name)[0], true
}
