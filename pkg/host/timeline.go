package host

import (
	"bytes"
	"context"
	"fmt"
	"github.com/sevshim/sevshim/pkg/format/console"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/sevshim/sevshim/pkg/vmm"
)

// Mark is one step of a receive: when hostctl saw it, from the start of the receive.
type Mark struct {
	Step string        `json:"step"`
	At   time.Duration `json:"at_ns"`
}

// Steps of the timeline besides the shim's console words (WAKE, LOADED, VERIFIED, TPM,
// FLASHED, SECRET, RECEIPT, HANDOFF; docs/shim.md).
const (
	StepChecked = "package checked"    // every RECEIVE_* done, before any QEMU
	StepStarted = "QEMU B started"     // QEMU B runs, stream not yet fed
	StepLoaded  = "stream loaded"      // QEMU B loaded the rebuilt stream (paused)
	StepResumed = "resumed"            // cont; the wake-up NMIs follow
	StepOVMF    = "OVMF"               // OVMF's first output on COM1 after the shim's HANDOFF
	timelineDT  = 5 * time.Millisecond // console poll interval: the resolution of console marks
)

// timeline records the marks of one receive. Console marks come from polling QEMU B's
// consoles (a detached QEMU writes its console files directly, so a line carries no time of
// its own): each is the first poll that saw the complete line, at most timelineDT late.
type timeline struct {
	start time.Time
	mu    sync.Mutex
	marks []Mark
	seen  map[string]bool
	stop  chan struct{}
	done  chan struct{}
}

func newTimeline() *timeline {
	return &timeline{start: time.Now(), seen: map[string]bool{}}
}

func (t *timeline) mark(step string) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.seen[step] {
		t.seen[step] = true
		t.marks = append(t.marks, Mark{step, time.Since(t.start)})
	}
}

func (t *timeline) has(step string) bool {
	if t == nil {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.seen[step]
}

// watch polls the debug console (the shim's lines) and COM1 (OVMF's first output after the
// shim's HANDOFF line) until end is called.
func (t *timeline) watch(serial, debugcon *vmm.Console) {
	if t == nil {
		return
	}
	t.stop, t.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(t.done)
		for {
			t.poll(serial, debugcon)
			select {
			case <-t.stop:
				t.poll(serial, debugcon)
				return
			case <-time.After(timelineDT):
			}
		}
	}()
}

func (t *timeline) poll(serial, debugcon *vmm.Console) {
	for _, w := range shimSteps(consoleBytes(debugcon.CompleteLines(), true)) {
		t.mark(w)
	}
	if t.has("HANDOFF") && !t.has(StepOVMF) {
		if ovmfSpoke(consoleBytes(serial.Lines(), false)) {
			t.mark(StepOVMF)
		}
	}
}

// consoleBytes joins console lines back into text; with complete every line ends in '\n',
// else the last one (a line still being written) does not.
func consoleBytes(lines []vmm.Line, complete bool) []byte {
	var b bytes.Buffer
	for i, l := range lines {
		b.WriteString(l.Text)
		if complete || i < len(lines)-1 {
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

// shimSteps returns the second word of every complete "SEVSHIM WORD ..." line, in order.
func shimSteps(b []byte) []string {
	i := bytes.LastIndexByte(b, '\n')
	if i < 0 {
		return nil
	}
	var out []string
	for _, l := range strings.Split(string(b[:i]), "\n") {
		if step, ok := console.Step(l); ok {
			out = append(out, step)
		}
	}
	return out
}

// ovmfSpoke reports whether COM1 holds anything after the shim's HANDOFF line (the shim
// writes its lines to COM1 too; what follows the hand-off is OVMF's).
func ovmfSpoke(b []byte) bool {
	const h = console.Handoff
	i := bytes.Index(b, []byte(h))
	if i < 0 {
		return false
	}
	rest := bytes.TrimLeft(b[i+len(h):], "\r\n")
	return len(rest) > 0
}

func (t *timeline) end() []Mark {
	if t == nil {
		return nil
	}
	if t.stop != nil {
		close(t.stop)
		<-t.done
		t.stop = nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]Mark(nil), t.marks...)
}

// WriteTimeline prints marks as a table: milliseconds since the receive started and since
// the step before, with the shim's steps joined by arrows on the first line.
func WriteTimeline(w io.Writer, marks []Mark) {
	var b strings.Builder
	var words []string
	for _, m := range marks {
		words = append(words, m.Step)
	}
	fmt.Fprintf(&b, "timeline: %s\n", strings.Join(words, " -> "))
	fmt.Fprintf(&b, "  %-16s %8s %8s\n", "step", "ms", "+ms")
	var prev time.Duration
	for _, m := range marks {
		fmt.Fprintf(&b, "  %-16s %8d %8d\n", m.Step, m.At.Milliseconds(), (m.At - prev).Milliseconds())
		prev = m.At
	}
	fmt.Fprintf(&b, "  (ms since receive started; console steps as first seen by hostctl, polled every %d ms)\n", timelineDT.Milliseconds())
	io.WriteString(w, b.String())
}

// waitOVMF waits up to d for the OVMF mark (QEMU B still running) and reports whether it came.
func (t *timeline) waitOVMF(ctx context.Context, vm vmm.VM, d time.Duration) bool {
	for end := time.Now().Add(d); ; {
		if t.has(StepOVMF) {
			return true
		}
		if !vm.Alive() || time.Now().After(end) {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(timelineDT):
		}
	}
}
