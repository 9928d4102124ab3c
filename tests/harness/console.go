package harness

import (
	"context"
	"github.com/sevshim/sevshim/pkg/format/console"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sevshim/sevshim/pkg/format/shimerr"
	"github.com/sevshim/sevshim/pkg/vmm/qemu"
)

// Console lines the chain tests wait for (whole lines, docs/shim.md "Console protocol").
var (
	// OutcomeRE is the shim's verdict: a refusal line or HANDOFF.
	OutcomeRE = regexp.MustCompile(shimerr.LineRE.String() + "|" + console.HandoffRE.String())
	HaltRE    = console.HaltRE
	// BdsRE and ShellRE are OVMF on COM1: its boot manager, and its shell's banner or prompt.
	BdsRE   = regexp.MustCompile(`BdsDxe`)
	ShellRE = regexp.MustCompile(`UEFI Interactive Shell|Shell>`)
)

// shimWord is the word after console.Prefix of a line that starts with it ("FLASHED",
// "ERROR", ...), "" for any other line. It matches by prefix, so a malformed shim line
// counts as its word too.
func shimWord(text string) string {
	rest, ok := strings.CutPrefix(text, console.Prefix)
	if !ok {
		return ""
	}
	word, _, _ := strings.Cut(rest, " ")
	return word
}

// WaitLine waits at most to for a whole console line matching re and fails the test without.
func WaitLine(t testing.TB, c *qemu.Console, re *regexp.Regexp, to time.Duration) qemu.Line {
	t.Helper()
	l, err := c.WaitLine(context.Background(), re, to)
	if err != nil {
		t.Fatalf("%s: %v", c.Name(), err)
	}
	return l
}

// Tail returns the last n bytes of s, marked with "..." when cut.
func Tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// AssertRefused checks a refused run on the consoles: the verdict is exactly want's line,
// HALT follows, and after HaltGrace QEMU still runs (the guest halted, it did not reset);
// debugcon shows want's line exactly once, no FLASHED or HANDOFF, VERIFIED before the error
// if afterVerify (a refusal after the verification: flash faults, a missing TPM) and never
// otherwise, and ends with HALT; COM1 shows nothing but shim lines (no BIOS ran), want's line
// among them. It returns the verdict line.
func AssertRefused(t testing.TB, vm *qemu.VM, want shimerr.Code, afterVerify bool) qemu.Line {
	t.Helper()
	dbg, ser := vm.Debugcon(), vm.Serial()
	out := WaitLine(t, dbg, OutcomeRE, StepTimeout)
	if out.Text != want.Line() {
		t.Fatalf("shim printed %q, want %q", out.Text, want.Line())
	}
	if halt := WaitLine(t, dbg, HaltRE, StepTimeout); halt.Time.Before(out.Time) {
		t.Errorf("HALT before the ERROR line")
	}
	time.Sleep(HaltGrace)
	select {
	case <-vm.Exited():
		t.Errorf("QEMU exited after HALT (%v): the guest reset or crashed instead of halting", vm.ExitErr())
	default:
	}
	dl := dbg.Lines()
	verified, errs := false, 0
	for _, l := range dl {
		step := shimWord(l.Text)
		switch {
		case step == "FLASHED", step == "HANDOFF":
			t.Errorf("debugcon shows %q in a refused run", l.Text)
		case step == "VERIFIED":
			if errs > 0 {
				t.Errorf("%q after the error line", l.Text)
			}
			verified = true
			if !afterVerify {
				t.Errorf("debugcon shows %q in a run refused by verification", l.Text)
			}
		case l.Text == want.Line():
			errs++
		}
	}
	if afterVerify && !verified {
		t.Errorf("%s without a VERIFIED line first", want)
	}
	if errs != 1 {
		t.Errorf("debugcon shows %q %d times, want once", want.Line(), errs)
	}
	if last := dl[len(dl)-1].Text; last != console.Halt {
		t.Errorf("debugcon continued after HALT: last line %q", last)
	}
	sawErr := false
	for _, l := range ser.Lines() {
		if strings.TrimSpace(l.Text) == "" {
			continue
		}
		if !strings.HasPrefix(l.Text, console.Prefix) {
			t.Errorf("COM1 shows non-shim output (a BIOS ran?): %q", l.Text)
		}
		sawErr = sawErr || l.Text == want.Line()
	}
	if !sawErr {
		t.Errorf("COM1 lacks the error line %q:\n%s", want.Line(), ser.Text())
	}
	return out
}

// LineTime returns the arrival time of the first line of c starting with prefix, and fails
// the test without one.
func LineTime(t testing.TB, c *qemu.Console, prefix string) time.Time {
	t.Helper()
	for _, l := range c.Lines() {
		if strings.HasPrefix(l.Text, prefix) {
			return l.Time
		}
	}
	t.Fatalf("%s: no line %q", c.Name(), prefix)
	return time.Time{}
}
