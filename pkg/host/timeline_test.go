package host

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sevshim/sevshim/pkg/vmm"
)

// TestTimelineConsole: the shim's steps are the second word of complete SEVSHIM lines (a
// refusal with its code; a line still being written is not yet a step); OVMF is anything on
// COM1 after the shim's HANDOFF line, and nothing before it.
func TestTimelineConsole(t *testing.T) {
	got := shimSteps([]byte("SEVSHIM WAKE\r\nSEVSHIM LOADED bios=1 vars=2\nnoise\nSEVSHIM ERROR E034 version-below-floor\nSEVSHIM HALT\nSEVSHIM HAND"))
	if strings.Join(got, ",") != "WAKE,LOADED,ERROR E034,HALT" {
		t.Errorf("shimSteps: %q", got)
	}
	for in, want := range map[string]bool{
		"SEVSHIM VERIFIED x\nSEVSHIM HANDOFF\r\n":                false,
		"SEVSHIM HANDOFF\r\n\x1b[2J":                             true,
		"SEVSHIM HANDOFF\nBdsDxe: loading Boot0001\r\n":          true,
		"SEVSHIM ERROR E034 version-below-floor\nSEVSHIM HALT\n": false,
	} {
		if ovmfSpoke([]byte(in)) != want {
			t.Errorf("ovmfSpoke(%q) = %v", in, !want)
		}
	}
	// The watcher marks each step once, in the order of the console (here consoles that
	// follow log files, as those of a detached QEMU do).
	d := t.TempDir()
	dbgLog, serLog := filepath.Join(d, "debugcon.log"), filepath.Join(d, "serial.log")
	os.WriteFile(dbgLog, []byte("SEVSHIM WAKE\nSEVSHIM HANDOFF\n"), 0o600)
	os.WriteFile(serLog, []byte("SEVSHIM WAKE\nSEVSHIM HANDOFF\n"), 0o600)
	stop := make(chan struct{})
	defer close(stop)
	dbg, ser := vmm.NewConsole("debugcon", nil), vmm.NewConsole("serial", nil)
	never := func() bool { return false }
	go dbg.Follow(dbgLog, timelineDT, never, stop)
	go ser.Follow(serLog, timelineDT, never, stop)
	tl := newTimeline()
	tl.mark(StepResumed)
	tl.watch(ser, dbg)
	time.Sleep(3 * timelineDT)
	f, _ := os.OpenFile(serLog, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("BdsDxe\n")
	f.Close()
	for end := time.Now().Add(5 * time.Second); !tl.has(StepOVMF) && time.Now().Before(end); time.Sleep(timelineDT) {
	}
	marks := tl.end()
	var steps []string
	for _, m := range marks {
		steps = append(steps, m.Step)
	}
	if strings.Join(steps, ",") != "resumed,WAKE,HANDOFF,OVMF" {
		t.Fatalf("marks %v", marks)
	}
	var b bytes.Buffer
	WriteTimeline(&b, marks)
	if !strings.HasPrefix(b.String(), "timeline: resumed -> WAKE -> HANDOFF -> OVMF\n  step ") {
		t.Errorf("WriteTimeline:\n%s", b.String())
	}
}

// TestBarQuiet: with no writer (stderr is not a terminal) a bar writes nothing; with one it
// draws the gauge with "\r" and clears the line when done.
func TestBarQuiet(t *testing.T) {
	b := newBar(nil, "receive", 10)
	b.set(5)
	b.done()
	var w bytes.Buffer
	b = newBar(&w, "load QEMU B", 10)
	b.set(5)
	b.done()
	if got := w.String(); got != "\rload QEMU B [###############---------------]  50.0% 5/10 pages\r\x1b[K" {
		t.Errorf("bar output %q", got)
	}
}
