package vmm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Line is one console line with the host monotonic time at which its last byte arrived.
type Line struct {
	Text string
	Time time.Time
}

// Console collects the output of a guest's character device (COM1 or the 0x402 debug
// console) as it arrives, read live from a pipe (Run) or from a log file another process
// appends to (Follow), and splits it into timestamped lines. A trailing
// '\r' is dropped. The unfinished last line (a prompt such as OVMF's "Shell>") is visible to
// WaitPrompt and Lines.
type Console struct {
	name string

	mu      sync.Mutex
	lines   []Line
	partial []byte
	partT   time.Time
	sig     chan struct{} // closed and replaced whenever output arrives
	done    bool
	err     error // read error other than EOF
	raw     io.Writer
	maxKeep int
}

// maxConsoleLines bounds memory if a guest floods its console; the oldest lines are kept
// (they hold the markers tests look for) and later lines are dropped and counted.
const maxConsoleLines = 200000

// NewConsole returns an empty console; raw, if not nil, also receives every byte read.
// A backend starts Run or Follow on it.
func NewConsole(name string, raw io.Writer) *Console {
	return &Console{name: name, sig: make(chan struct{}), raw: raw, maxKeep: maxConsoleLines}
}

// Name is the console's name ("serial", "debugcon").
func (c *Console) Name() string { return c.name }

// Run reads r until EOF and records lines; it closes r at the end.
func (c *Console) Run(r io.ReadCloser) {
	defer r.Close()
	buf := make([]byte, 64*1024)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			now := time.Now()
			if c.raw != nil {
				c.raw.Write(buf[:n])
			}
			c.feed(buf[:n], now)
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = nil
			}
			c.finish(err)
			return
		}
	}
}

// finish marks the end of the output: the unfinished last line becomes a line, waiters
// stop with ErrConsoleClosed.
func (c *Console) finish(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		return
	}
	c.err = err
	if len(c.partial) > 0 {
		c.appendLine(string(c.partial), c.partT)
		c.partial = nil
	}
	c.done = true
	close(c.sig)
	c.sig = make(chan struct{})
}

// Follow reads the log file path as another process (the VMM) appends to it, from its
// start, polling every interval until gone reports that the writer has ended (the file is
// then read to its end once more, so nothing written before the exit is lost) or stop is
// closed. A missing file counts as empty. It returns when the console is finished.
func (c *Console) Follow(path string, interval time.Duration, gone func() bool, stop <-chan struct{}) {
	var off int64
	buf := make([]byte, 64*1024)
	readMore := func() error {
		f, err := os.Open(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		defer f.Close()
		for {
			n, err := f.ReadAt(buf, off)
			if n > 0 {
				off += int64(n)
				if c.raw != nil {
					c.raw.Write(buf[:n])
				}
				c.feed(buf[:n], time.Now())
			}
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
		}
	}
	for {
		ended := gone()
		if err := readMore(); err != nil || ended {
			c.finish(err)
			return
		}
		select {
		case <-stop:
			c.finish(nil)
			return
		case <-time.After(interval):
		}
	}
}

func (c *Console) feed(b []byte, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(b) > 0 {
		i := indexByte(b, '\n')
		if i < 0 {
			c.partial = append(c.partial, b...)
			c.partT = now
			break
		}
		c.partial = append(c.partial, b[:i]...)
		c.appendLine(string(c.partial), now)
		c.partial = c.partial[:0]
		b = b[i+1:]
	}
	close(c.sig)
	c.sig = make(chan struct{})
}

func indexByte(b []byte, x byte) int {
	for i, v := range b {
		if v == x {
			return i
		}
	}
	return -1
}

func (c *Console) appendLine(s string, t time.Time) {
	if len(c.lines) >= c.maxKeep {
		return
	}
	c.lines = append(c.lines, Line{Text: strings.TrimSuffix(s, "\r"), Time: t})
}

// Lines returns the complete lines received so far, plus the unfinished last line if any.
func (c *Console) Lines() []Line {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := append([]Line(nil), c.lines...)
	if len(c.partial) > 0 {
		out = append(out, Line{Text: strings.TrimSuffix(string(c.partial), "\r"), Time: c.partT})
	}
	return out
}

// Text returns everything received so far as newline-separated lines.
func (c *Console) Text() string {
	var sb strings.Builder
	for _, l := range c.Lines() {
		sb.WriteString(l.Text)
		sb.WriteByte('\n')
	}
	return sb.String()
}

// Closed reports whether the console reached its end (the VMM closed it, normally by
// exiting).
func (c *Console) Closed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.done
}

// ErrConsoleClosed is returned (wrapped) by WaitLine when the console ended without a match.
var ErrConsoleClosed = errors.New("console closed before the line appeared")

// WaitLine waits until a complete line (ended by '\n') matches re and returns the first such
// line. It searches everything received since the VM started, so a line that already arrived is
// found at once. It stops at the timeout (if > 0), when ctx ends, or when the console is
// closed (the VM exited) with no match. Use WaitPrompt for text that is not followed by a
// newline.
func (c *Console) WaitLine(ctx context.Context, re *regexp.Regexp, timeout time.Duration) (Line, error) {
	return c.wait(ctx, 0, re, timeout, false)
}

// WaitPrompt is WaitLine that also matches the unfinished last line, for prompts such as
// OVMF's "Shell> ". Beware: a partial line can match a prefix of what is still arriving.
func (c *Console) WaitPrompt(ctx context.Context, re *regexp.Regexp, timeout time.Duration) (Line, error) {
	return c.wait(ctx, 0, re, timeout, true)
}

// WaitString waits until the plain substring s has arrived, also inside the unfinished last
// line (so prompts such as "Shell>" match). The substring is complete when it matches, but the
// returned Line.Text may still lack the rest of its line; use WaitLine to get whole lines.
func (c *Console) WaitString(ctx context.Context, s string, timeout time.Duration) (Line, error) {
	return c.WaitPrompt(ctx, regexp.MustCompile(regexp.QuoteMeta(s)), timeout)
}

// WaitLineFrom is WaitLine that ignores the first `from` complete lines (take
// len(CompleteLines()) earlier to wait for a new occurrence).
func (c *Console) WaitLineFrom(ctx context.Context, from int, re *regexp.Regexp, timeout time.Duration) (Line, error) {
	return c.wait(ctx, from, re, timeout, false)
}

// CompleteLines returns the complete lines received so far (without the unfinished one).
func (c *Console) CompleteLines() []Line {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Line(nil), c.lines...)
}

// WaitAny waits until a complete line at index from or later matches one of res and
// returns its index in CompleteLines and the index of the pattern (the first that matches).
// It stops like WaitLine.
func (c *Console) WaitAny(ctx context.Context, from int, timeout time.Duration, res ...*regexp.Regexp) (int, int, error) {
	at, i, _, err := c.waitAny(ctx, from, timeout, false, res)
	return at, i, err
}

func (c *Console) wait(ctx context.Context, from int, re *regexp.Regexp, timeout time.Duration, partial bool) (Line, error) {
	_, _, l, err := c.waitAny(ctx, from, timeout, partial, []*regexp.Regexp{re})
	return l, err
}

func (c *Console) waitAny(ctx context.Context, from int, timeout time.Duration, partial bool, res []*regexp.Regexp) (int, int, Line, error) {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	for {
		c.mu.Lock()
		for at := from; at < len(c.lines); at++ {
			for i, re := range res {
				if re.MatchString(c.lines[at].Text) {
					l := c.lines[at]
					c.mu.Unlock()
					return at, i, l, nil
				}
			}
		}
		if partial && len(c.partial) > 0 && len(c.lines) >= from {
			t := strings.TrimSuffix(string(c.partial), "\r")
			for i, re := range res {
				if re.MatchString(t) {
					l := Line{Text: t, Time: c.partT}
					at := len(c.lines)
					c.mu.Unlock()
					return at, i, l, nil
				}
			}
		}
		done, rerr, sig := c.done, c.err, c.sig
		c.mu.Unlock()
		if done {
			if rerr != nil {
				return -1, -1, Line{}, fmt.Errorf("%s: waiting for %q: %w (read error: %v)", c.name, res, ErrConsoleClosed, rerr)
			}
			return -1, -1, Line{}, fmt.Errorf("%s: waiting for %q: %w", c.name, res, ErrConsoleClosed)
		}
		select {
		case <-sig:
		case <-ctx.Done():
			return -1, -1, Line{}, fmt.Errorf("%s: waiting for %q: %w", c.name, res, ctx.Err())
		}
	}
}
