package qemu

import (
	"context"
	"errors"
	"io"
	"regexp"
	"testing"
	"time"
)

func TestConsoleLinesPartialAndClose(t *testing.T) {
	r, w := io.Pipe()
	c := newConsole("test", nil)
	done := make(chan struct{})
	go func() { c.run(r); close(done) }()
	ctx := context.Background()

	go func() {
		w.Write([]byte("SEVSHIM READY\r\nSEVSHIM WA"))
		time.Sleep(20 * time.Millisecond)
		w.Write([]byte("KE\nShell> "))
	}()
	l, err := c.WaitString(ctx, "SEVSHIM WAKE", 5*time.Second)
	if err != nil || l.Text != "SEVSHIM WAKE" {
		t.Fatalf("WAKE: %q, %v", l.Text, err)
	}
	// An unfinished last line (a prompt) matches too.
	if _, err := c.WaitLine(ctx, regexp.MustCompile(`^Shell>`), 50*time.Millisecond); err == nil {
		t.Fatal("WaitLine matched an unfinished line")
	}
	if _, err := c.WaitString(ctx, "Shell>", 5*time.Second); err != nil {
		t.Fatalf("WaitString must see the unfinished line: %v", err)
	}
	p, err := c.WaitPrompt(ctx, regexp.MustCompile(`^Shell> $`), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ready, _ := c.WaitString(ctx, "READY", time.Second)
	if ready.Text != "SEVSHIM READY" || ready.Time.After(l.Time) || l.Time.After(p.Time) {
		t.Fatalf("order/timestamps wrong: %+v %+v %+v", ready, l, p)
	}
	if _, err := c.WaitString(ctx, "never", 30*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want deadline, got %v", err)
	}
	n := len(c.CompleteLines())
	w.Write([]byte("\nlast\n"))
	if _, err := c.WaitLineFrom(ctx, n, regexp.MustCompile(`last`), time.Second); err != nil {
		t.Fatal(err)
	}
	w.Close()
	<-done
	if _, err := c.WaitString(ctx, "never", 5*time.Second); !errors.Is(err, ErrConsoleClosed) {
		t.Fatalf("want ErrConsoleClosed, got %v", err)
	}
	want := []string{"SEVSHIM READY", "SEVSHIM WAKE", "Shell> ", "last"}
	got := c.Lines()
	if len(got) != len(want) {
		t.Fatalf("lines %+v", got)
	}
	for i := range want {
		if got[i].Text != want[i] {
			t.Fatalf("line %d = %q want %q", i, got[i].Text, want[i])
		}
	}
}
