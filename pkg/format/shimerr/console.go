package shimerr

import (
	"regexp"
	"strings"
)

// The shim's console protocol (docs/shim.md "Boot and flow"): every line the shim prints on
// COM1 and debugcon starts with "SEVSHIM " and is matched as a whole line, never as a
// substring (the VERIFIED line carries the signer-chosen version string). This file is the one
// Go definition of those lines; refusal lines are LineRE/ParseLine above, the receipt line is
// package receipt's.
const (
	ConsolePrefix  = "SEVSHIM "
	ConsoleReady   = "SEVSHIM READY"   // before the wait for the wake-up NMI
	ConsoleWake    = "SEVSHIM WAKE"    // the NMI was taken
	ConsoleHandoff = "SEVSHIM HANDOFF" // right before the INIT into the new flash
	ConsoleHalt    = "SEVSHIM HALT"    // after a refusal
)

var (
	// ReadyRE, WakeRE and HandoffRE are the whole lines, for console waits.
	ReadyRE   = wholeLine(ConsoleReady)
	WakeRE    = wholeLine(ConsoleWake)
	HandoffRE = wholeLine(ConsoleHandoff)
	// VerifiedRE is the acceptance line. version_string is printable ASCII (docs/formats.md),
	// '"' included: the name is everything between the first `name="` and the line's final '"'.
	VerifiedRE = regexp.MustCompile(`^SEVSHIM VERIFIED version=([0-9]+) signer=([0-9a-f]{16}) name="([ -~]*)"$`)
)

func wholeLine(s string) *regexp.Regexp { return regexp.MustCompile("^" + regexp.QuoteMeta(s) + "$") }

// StepRE matches every shim line whose second word is step ("LOADED", "FLASHED", ...), with or
// without arguments after it.
func StepRE(step string) *regexp.Regexp {
	return regexp.MustCompile("^" + regexp.QuoteMeta(ConsolePrefix+step) + "( .*)?$")
}

// Step names a shim console line by its step: the second word ("WAKE", "VERIFIED", ...),
// or "ERROR E0NN" for a refusal. ok is false for a line that is not the shim's.
func Step(line string) (step string, ok bool) {
	line = strings.TrimSuffix(line, "\r")
	if !strings.HasPrefix(line, ConsolePrefix) {
		return "", false
	}
	f := strings.Fields(line[len(ConsolePrefix):])
	switch {
	case len(f) >= 2 && f[0] == "ERROR":
		return "ERROR " + f[1], true
	case len(f) >= 1:
		return f[0], true
	}
	return "", false
}
