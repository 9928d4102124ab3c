package vmm

import (
	"context"
	"errors"
	"io"
	"os"
	"regexp"
	"sync"
	"testing"
	"time"
)

func TestConsoleLinesPartialAndClose(t *testing.T) {
	r, w := io.Pipe()
	c := NewConsole("test", nil)
	done := make(chan struct{})
	go func() { c.Run(r); close(done) }()
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

// TestConsoleFollow: a console that follows a log file sees appended lines, the unfinished
// last line only once it is ended or the writer is gone, and closes when the writer is gone
// (after one more read, so nothing written before the exit is lost).
func TestConsoleFollow(t *testing.T) {
	path := t.TempDir() + "/debugcon.log"
	c := NewConsole("debugcon", nil)
	var mu sync.Mutex
	gone := false
	done := make(chan struct{})
	go func() {
		c.Follow(path, 5*time.Millisecond, func() bool { mu.Lock(); defer mu.Unlock(); return gone }, nil)
		close(done)
	}()
	ctx := context.Background()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("SEVSHIM READY\nSEVSHIM WA")
	if _, err := c.WaitLine(ctx, regexp.MustCompile(`^SEVSHIM READY$`), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitLine(ctx, regexp.MustCompile(`^SEVSHIM WA`), 50*time.Millisecond); err == nil {
		t.Fatal("an unfinished line matched WaitLine")
	}
	f.WriteString("KE\nlast")
	f.Close()
	at, i, err := c.WaitAny(ctx, 1, 5*time.Second, regexp.MustCompile(`^x$`), regexp.MustCompile(`^SEVSHIM WAKE$`))
	if err != nil || at != 1 || i != 1 {
		t.Fatalf("WaitAny: %d %d %v", at, i, err)
	}
	mu.Lock()
	gone = true
	mu.Unlock()
	<-done
	if _, err := c.WaitString(ctx, "never", 5*time.Second); !errors.Is(err, ErrConsoleClosed) {
		t.Fatalf("want ErrConsoleClosed, got %v", err)
	}
	if got := c.CompleteLines(); len(got) != 3 || got[2].Text != "last" {
		t.Fatalf("lines after the end: %+v", got)
	}
}
