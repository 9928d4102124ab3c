package host

import (
	"strings"
	"testing"
)

// TestStateMachine: the legal moves pass, illegal ones are refused and leave the stage as
// it was.
func TestStateMachine(t *testing.T) {
	for _, c := range []struct{ from, to string }{
		{"", StageMeasured}, {StageMeasured, StageRunning}, {StageRunning, StageExported},
		{StageMeasured, StageStopped}, {StageRunning, StageStopped}, {StageStopped, StageMeasured},
		{StageMeasured, StageMeasured},
	} {
		ls := LaunchState{Stage: c.from}
		if err := ls.move(c.to); err != nil || ls.Stage != c.to {
			t.Errorf("launch %q -> %q: %v", c.from, c.to, err)
		}
	}
	for _, c := range []struct{ from, to string }{
		{"", StageRunning},             // launch-finish without a launch
		{StageMeasured, StageExported}, // export before launch-finish
		{StageExported, StageMeasured}, // a launch over an exported guest's record
		{StageExported, StageRunning},  // the SENT guest back to running
		{StageExported, StageStopped},
		{StageStopped, StageRunning}, // launch-finish after stop
		{StageRunning, StageMeasured},
		{"bogus", StageMeasured},
	} {
		ls := LaunchState{Stage: c.from}
		if err := ls.move(c.to); err == nil || ls.Stage != c.from || !strings.Contains(err.Error(), LaunchJSON) {
			t.Errorf("launch %q -> %q allowed (%v, now %q)", c.from, c.to, err, ls.Stage)
		}
	}
	for _, c := range []struct{ from, to string }{
		{"", ReceiveLoading}, {ReceiveLoading, ReceiveRunning}, {ReceiveLoading, ReceiveRefused},
		{ReceiveLoading, ReceiveInterrupted}, {ReceiveRunning, ReceiveStopped}, {ReceiveRunning, ReceiveKilledTPM},
		{ReceiveKilledTPM, ReceiveQuoted}, {ReceiveRefused, ReceiveLoading}, {ReceiveQuoted, ReceiveLoading},
	} {
		rs := ReceiveState{Stage: c.from}
		if err := rs.move(c.to); err != nil || rs.Stage != c.to {
			t.Errorf("receive %q -> %q: %v", c.from, c.to, err)
		}
	}
	for _, c := range []struct{ from, to string }{
		{"", ReceiveRunning},               // running without loading
		{ReceiveRefused, ReceiveRunning},   // a refused guest cannot run
		{ReceiveRefused, ReceiveQuoted},    // nor be quoted
		{ReceiveStopped, ReceiveRunning},   // a stopped guest does not come back
		{ReceiveQuoted, ReceiveKilledTPM},  // quoted is the end of its TPM
		{ReceiveLoading, ReceiveKilledTPM}, // tpm-quote needs the hand-off
		{ReceiveLoading, ReceiveQuoted},
		{"bogus", ReceiveLoading},
	} {
		rs := ReceiveState{Stage: c.from}
		if err := rs.move(c.to); err == nil || rs.Stage != c.from || !strings.Contains(err.Error(), ReceiveJSON) {
			t.Errorf("receive %q -> %q allowed (%v, now %q)", c.from, c.to, err, rs.Stage)
		}
	}
	// Every stage named as a target has its own row (no dead ends by typo).
	for _, table := range []map[string][]string{launchMoves, receiveMoves} {
		for from, tos := range table {
			for _, to := range tos {
				if _, ok := table[to]; !ok {
					t.Errorf("%q -> %q: %q has no row", from, to, to)
				}
			}
		}
	}
}
