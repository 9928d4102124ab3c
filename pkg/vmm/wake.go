package vmm

import (
	"context"
	"errors"
	"fmt"
	"github.com/sevshim/sevshim/pkg/format/console"
	"time"

	"github.com/sevshim/sevshim/pkg/format/shimerr"
)

// Wake bounds the NMI resends of WakeShim.
type Wake struct {
	// Attempts is the most NMIs sent (default 10).
	Attempts int
	// Interval is how long to wait for the answer after each NMI (default 1 s).
	Interval time.Duration
}

// DefaultWake is hostctl's and qemu's WakeIncoming's bound: 20 NMIs, 1 s apart.
var DefaultWake = Wake{Attempts: 20, Interval: time.Second}

// ErrNoWake is returned (wrapped) by WakeShim when no NMI got an answer.
var ErrNoWake = errors.New("the shim did not answer the wake-up NMI")

// WakeShim wakes a shim waiting after READY: it calls inject (QMP inject-nmi) and then polls
// answered until it reports the shim's answer, resending the NMI every Interval, at most
// Attempts times. It returns the number of NMIs sent.
//
// One NMI is not enough. The shim tests its flag and then executes `cli; hlt`; an NMI taken
// between the two sets the flag and returns to the hlt (AMD64 APM vol 2, 8.5 and 15.34: NMI
// wakes a halted CPU even with IF=0, but a CPU that is not yet halted just runs the handler),
// so that wake-up is only seen at the next NMI. A guest saved while in that window, or an NMI
// that QEMU drops because the local APIC's LINT1 is still masked, loses the first one.
// Extra NMIs are harmless: the shim's NMI handler only sets the flag and returns (its own
// IST stack, docs/shim.md), and the shim stops looking at it after WAKE. Resending stops as
// soon as the answer is seen, so no NMI is sent long after WAKE.
func WakeShim(ctx context.Context, w Wake, inject func(context.Context) error, answered func() (bool, error)) (int, error) {
	if w.Attempts <= 0 {
		w.Attempts = 10
	}
	if w.Interval <= 0 {
		w.Interval = time.Second
	}
	sent := 0
	for sent < w.Attempts {
		if ok, err := answered(); err != nil || ok {
			return sent, err
		}
		if err := inject(ctx); err != nil {
			return sent, fmt.Errorf("inject-nmi: %w", err)
		}
		sent++
		end := time.Now().Add(w.Interval)
		for time.Now().Before(end) {
			if ok, err := answered(); err != nil || ok {
				return sent, err
			}
			select {
			case <-ctx.Done():
				return sent, ctx.Err()
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	if ok, err := answered(); err != nil || ok {
		return sent, err
	}
	return sent, fmt.Errorf("%w: no SEVSHIM WAKE line after %d NMIs %v apart", ErrNoWake, sent, w.Interval)
}

// IsShimAnswer reports whether a whole console line is the shim's answer to the wake-up
// NMI (docs/shim.md): exactly SEVSHIM WAKE, or a refusal line (shimerr.LineRE) if it failed
// before that.
func IsShimAnswer(line string) bool {
	return line == console.Wake || shimerr.LineRE.MatchString(line)
}
