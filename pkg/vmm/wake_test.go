package vmm

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestIsShimAnswer(t *testing.T) {
	for _, c := range []struct {
		line string
		want bool
	}{
		{"SEVSHIM WAKE", true},
		{"SEVSHIM ERROR E090 cpu-exception", true},
		{"SEVSHIM ERROR E034 version-below-floor", true},
		{"SEVSHIM READY", false},
		{" SEVSHIM WAKE", false},
		{"SEVSHIM WAKE ", false},
		{`SEVSHIM VERIFIED version=6 signer=0011223344556677 name="SEVSHIM WAKE"`, false},
		{"x SEVSHIM ERROR E090 cpu-exception", false},
	} {
		if got := IsShimAnswer(c.line); got != c.want {
			t.Errorf("IsShimAnswer(%q) = %v", c.line, got)
		}
	}
}

// TestWakeShimBounded: the resend loop stops at the answer and gives up after Attempts.
func TestWakeShimBounded(t *testing.T) {
	ctx := context.Background()
	sent := 0
	inject := func(context.Context) error { sent++; return nil }
	n, err := WakeShim(ctx, Wake{Attempts: 5, Interval: 20 * time.Millisecond}, inject, func() (bool, error) { return sent >= 3, nil })
	if err != nil || n != 3 || sent != 3 {
		t.Fatalf("answered at the 3rd NMI: n=%d sent=%d err=%v", n, sent, err)
	}
	sent = 0
	n, err = WakeShim(ctx, Wake{Attempts: 4, Interval: 10 * time.Millisecond}, inject, func() (bool, error) { return false, nil })
	if !errors.Is(err, ErrNoWake) || n != 4 || sent != 4 {
		t.Fatalf("never answered: n=%d sent=%d err=%v", n, sent, err)
	}
	sent = 0
	n, err = WakeShim(ctx, Wake{Attempts: 4, Interval: 10 * time.Millisecond}, inject, func() (bool, error) { return true, nil })
	if err != nil || n != 0 {
		t.Fatalf("already answered: n=%d err=%v", n, err)
	}
}
