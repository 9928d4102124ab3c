package flow

import (
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sevshim/sevshim/pkg/format/shimerr"
	"github.com/sevshim/sevshim/tests/harness"
)

// reBar is a progress bar's gauge (pkg/host/bar.go).
var reBar = regexp.MustCompile(`\[[#-]{30}\]`)

// timelineSteps parses the timeline rows of out: the steps in order and their ms.
func timelineSteps(t testing.TB, out string) ([]string, []int) {
	t.Helper()
	return harness.TimelineSteps(out)
}

// TestReceiveTimeline: `hostctl receive --timeline` on an accepted BIOS prints every step
// from the package check to OVMF's first output, in the order they happen (the package
// check and QEMU B's start overlap, so those two in either order), with
// non-decreasing times, and its header line joins them with arrows; stderr is not a terminal,
// so no progress bar is drawn. On a refusal (v4, E034) the timeline ends with the error (and
// the receipt line and HALT, if they were written before hostctl quit QEMU B): no FLASHED,
// HANDOFF or OVMF step.
func TestReceiveTimeline(t *testing.T) {
	w := getWorld(t)
	t.Run("accepted", func(t *testing.T) {
		wb := track(filepath.Join(t.TempDir(), "B"))
		t.Cleanup(func() { killWork(wb) })
		r := run(t, nil, "hostctl", receiveArgs(w, w.pkg, w.v5, wb, "--timeline", "--stop")...)
		if r.Code != 0 {
			t.Fatalf("receive --timeline: %s", r)
		}
		steps, ms := timelineSteps(t, r.Stdout)
		// QEMU B starts while the package is checked: those two steps come in either order.
		first := []string{"package checked", "QEMU B started"}
		if len(steps) > 0 && steps[0] == "QEMU B started" {
			first[0], first[1] = first[1], first[0]
		}
		want := []string{first[0], first[1], "stream loaded", "resumed", "WAKE", "LOADED", "VERIFIED", "TPM", "FLASHED", "SECRET", "RECEIPT", "HANDOFF", "OVMF"}
		if strings.Join(steps, ",") != strings.Join(want, ",") {
			t.Fatalf("timeline steps %q, want %q:\n%s", steps, want, r)
		}
		for i := 1; i < len(ms); i++ {
			if ms[i] < ms[i-1] {
				t.Errorf("step %s at %d ms is before %s at %d ms", steps[i], ms[i], steps[i-1], ms[i-1])
			}
		}
		if !strings.Contains(r.Stdout, "\ntimeline: "+strings.Join(want, " -> ")+"\n") {
			t.Errorf("no arrow line: %s", r.Stdout)
		}
		if strings.Contains(r.Stderr, "\r") || reBar.MatchString(r.Stderr) {
			t.Errorf("a progress bar on a non-terminal stderr: %q", r.Stderr)
		}
	})
	t.Run("refused", func(t *testing.T) {
		wb := track(filepath.Join(t.TempDir(), "B"))
		t.Cleanup(func() { killWork(wb) })
		r := run(t, nil, "hostctl", receiveArgs(w, w.pkg, w.v4, wb, "--timeline")...)
		if r.Code != 3 || !strings.Contains(r.Stdout, "refused: E034 version-below-floor") {
			t.Fatalf("want exit 3 and E034: %s", r)
		}
		steps, _ := timelineSteps(t, r.Stdout)
		got := strings.Join(steps, ",")
		if !(strings.HasPrefix(got, "package checked,QEMU B started,stream loaded,resumed,WAKE,LOADED,") ||
			strings.HasPrefix(got, "QEMU B started,package checked,stream loaded,resumed,WAKE,LOADED,")) ||
			!(strings.HasSuffix(got, ",ERROR E034,RECEIPT,HALT") || strings.HasSuffix(got, ",ERROR E034,RECEIPT") ||
				strings.HasSuffix(got, ",ERROR E034")) {
			t.Errorf("refusal timeline %q:\n%s", steps, r)
		}
		for _, s := range steps {
			if s == "FLASHED" || s == "HANDOFF" || s == "OVMF" {
				t.Errorf("refusal timeline has %s: %q", s, steps)
			}
		}
		assertShimRefusal(t, wb, shimerr.VersionBelowFloor, false)
	})
}

// TestReceiveProgressOnTerminal: with stderr on a terminal (a pty from script(1)), receive
// draws the page bars of the receive and of QEMU B's load phase, and clears them.
func TestReceiveProgressOnTerminal(t *testing.T) {
	w := getWorld(t)
	if _, err := exec.LookPath("script"); err != nil {
		t.Skip("script(1) (util-linux) not installed")
	}
	wb := track(filepath.Join(t.TempDir(), "B"))
	t.Cleanup(func() { killWork(wb) })
	args := append([]string{filepath.Join(binDir, "hostctl")}, receiveArgs(w, w.pkg, w.v5, wb, "--stop")...)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// script runs the command on a new pty; its output (stdout and stderr) comes back here.
	cmd := exec.CommandContext(ctx, "script", "-q", "-e", "-c", shellJoin(args), "/dev/null")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("receive on a pty: %v\n%s", err, out)
	}
	s := string(out)
	for _, want := range []string{"\rreceive [", "\rload QEMU B [", " pages", "\r\x1b[K", "accepted: version 5"} {
		if !strings.Contains(s, want) {
			t.Errorf("terminal output lacks %q:\n%q", want, s)
		}
	}
}

func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}
