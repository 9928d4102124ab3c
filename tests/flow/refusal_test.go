package flow

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/sevshim/sevshim/pkg/format/receipt"
	"github.com/sevshim/sevshim/pkg/format/shimerr"
)

// consoleLines splits a console log into lines without their line ends.
func consoleLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		out = append(out, strings.TrimRight(l, "\r"))
	}
	return out
}

// assertShimRefusal checks QEMU B's consoles in work dir wb after the shim refused with want:
// the error line exactly once (whole line) on debugcon, followed by nothing but one receipt line
// (docs/formats.md section 9) and SEVSHIM HALT;
// no VERIFIED line for a refusal of the verification (steps 2..9 of docs/formats.md section
// 6), a VERIFIED line first for one that comes after it (afterVerified); never FLASHED or
// HANDOFF; and COM1 holds the error line and nothing that is not the shim's (OVMF printed
// nothing). hostctl stops QEMU B once it has the receipt line after the error line.
func assertShimRefusal(t *testing.T, wb string, want shimerr.Code, afterVerified bool) {
	t.Helper()
	dbg := consoleLines(readFile(filepath.Join(wb, "debugcon.log")))
	errAt, verifiedAt := -1, -1
	for i, l := range dbg {
		switch {
		case l == want.Line():
			if errAt >= 0 {
				t.Errorf("debugcon: %q twice", l)
			}
			errAt = i
		case strings.HasPrefix(l, "SEVSHIM VERIFIED"):
			verifiedAt = i
			if !afterVerified {
				t.Errorf("debugcon shows %q in a run refused by verification (%s)", l, want)
			}
		case strings.HasPrefix(l, "SEVSHIM FLASHED"), strings.HasPrefix(l, "SEVSHIM HANDOFF"):
			t.Errorf("debugcon shows %q in a refused run (%s)", l, want)
		}
	}
	if errAt < 0 {
		t.Errorf("debugcon has no line %q:\n%s", want.Line(), strings.Join(dbg, "\n"))
	} else {
		if afterVerified && (verifiedAt < 0 || verifiedAt > errAt) {
			t.Errorf("%s should follow a SEVSHIM VERIFIED line", want)
		}
		receipts := 0
		for _, l := range dbg[errAt+1:] {
			if receipt.IsLine(l) && receipts == 0 {
				receipts++
				continue
			}
			if l != "" && l != "SEVSHIM HALT" {
				t.Errorf("debugcon continues after %q: %q", want.Line(), l)
			}
		}
	}
	sawErr := false
	for _, l := range consoleLines(readFile(filepath.Join(wb, "serial.log"))) {
		if strings.TrimSpace(l) == "" {
			continue
		}
		if !strings.HasPrefix(l, "SEVSHIM ") {
			t.Errorf("COM1 shows non-shim output (OVMF ran?): %q", l)
		}
		if l == want.Line() {
			sawErr = true
		}
	}
	if !sawErr {
		t.Errorf("COM1 lacks the line %q", want.Line())
	}
}
