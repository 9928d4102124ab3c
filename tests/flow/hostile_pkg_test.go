package flow

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sevshim/sevshim/pkg/format/guestpkg"
	"github.com/sevshim/sevshim/pkg/migrate"
)

// hostileFeed writes, into a FIFO, a package with the real header and RAM blocks of w.pkg
// followed by up to n copies of entry e (an endless supply as far as the reader can tell: n
// is billions). It returns the FIFO's path and the number of records written so far.
func hostileFeed(t *testing.T, w *world, e migrate.Entry, n uint64) (string, *atomic.Uint64) {
	t.Helper()
	f, err := os.Open(w.pkg)
	if err != nil {
		t.Fatal(err)
	}
	r, err := guestpkg.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	hdr := *r.Header()
	st, err := r.ReadStream()
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(t.TempDir(), "hostile.pkg")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	written := &atomic.Uint64{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		out, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err != nil {
			return
		}
		defer out.Close()
		pw, err := guestpkg.NewWriter(out, &hdr)
		if err != nil || pw.WriteStream(st) != nil {
			return
		}
		for i := uint64(0); i < n; i++ {
			if pw.Record(e, nil) != nil {
				return // the reader went away: EPIPE
			}
			written.Add(1)
		}
		pw.Finish([]byte{0})
	}()
	t.Cleanup(func() {
		// Unblock a writer whose reader never came, then wait for it.
		if rf, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil {
			rf.Close()
		}
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("the FIFO writer did not end")
		}
	})
	return fifo, written
}

// TestHostilePackageRecords: a package that claims billions of records (section boundaries,
// or the same zero page again and again) is refused from what its RAM blocks allow, long
// before the trailer, with a clear message; hostctl's memory stays bounded (peak RSS) and
// QEMU B, started early, never gets a byte of the stream.
func TestHostilePackageRecords(t *testing.T) {
	w := getWorld(t)
	const billions = 4 << 30
	const maxRSS = 128 << 20
	for _, c := range []struct {
		name string
		e    migrate.Entry
		want string
	}{
		{"sections", migrate.Entry{Kind: migrate.EntryPart}, "section records for"},
		{"same-zero-page", migrate.Entry{Kind: migrate.EntryZero, Block: 0, Page: 7}, "appears twice (every page is sent once)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			fifo, written := hostileFeed(t, w, c.e, billions)
			wb := track(filepath.Join(t.TempDir(), "B"))
			t.Cleanup(func() { killWork(wb) })
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, filepath.Join(binDir, "hostctl"), receiveArgs(w, fifo, w.v6, wb)...)
			var so, se bytes.Buffer
			cmd.Stdout, cmd.Stderr = &so, &se
			err := cmd.Run()
			var rss int64
			if cmd.ProcessState != nil {
				rss = cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss << 10 // KiB on Linux
			}
			t.Logf("records written before the refusal: %d; hostctl peak RSS %d MiB", written.Load(), rss>>20)
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 3 {
				t.Fatalf("receive of a hostile package: %v\nstdout:\n%s\nstderr:\n%s", err, so.String(), se.String())
			}
			if !strings.Contains(se.String(), c.want) {
				t.Fatalf("want a package refusal saying %q:\n%s", c.want, se.String())
			}
			// The records come after RECEIVE_START: QEMU B was started early, fed nothing
			// ("inmigrate" when killed) and is gone, its pid file with it.
			if !refusedBeforeVM(t, se.String(), wb) {
				t.Fatalf("QEMU B was not started early for a refusal after RECEIVE_START:\n%s", se.String())
			}
			if pidFileExists(wb) {
				t.Fatal("QEMU B's pid file is left after the refusal")
			}
			if rss > maxRSS {
				t.Fatalf("hostctl's peak RSS was %d MiB, want at most %d MiB", rss>>20, maxRSS>>20)
			}
		})
	}
}
