package host

import (
	"fmt"
	"io"
	"time"
)

// bar is a one-line progress bar on a terminal; with a nil writer it does nothing.
type bar struct {
	w     io.Writer
	what  string
	total uint64
	last  time.Time
	shown bool
}

func newBar(w io.Writer, what string, total uint64) *bar { return &bar{w: w, what: what, total: total} }

func (b *bar) set(n uint64) {
	if b == nil || b.w == nil || time.Since(b.last) < 100*time.Millisecond {
		return
	}
	b.last = time.Now()
	pct := 100 * float64(n) / float64(max(b.total, 1))
	pct = min(pct, 100)
	const width = 30
	fill := int(pct / 100 * width)
	s := ""
	for i := 0; i < width; i++ {
		if i < fill {
			s += "#"
		} else {
			s += "-"
		}
	}
	fmt.Fprintf(b.w, "\r%s [%s] %5.1f%% %d/%d pages", b.what, s, pct, n, b.total)
	b.shown = true
}

func (b *bar) done() {
	if b != nil && b.w != nil && b.shown {
		fmt.Fprint(b.w, "\r\033[K")
	}
}
