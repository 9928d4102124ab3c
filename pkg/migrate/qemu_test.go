package migrate

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/sevshim/sevshim/pkg/vmm/qemu"
	"github.com/sevshim/sevshim/tests/harness"
	"github.com/sevshim/sevshim/tests/harness/repo"
)

// These tests run real QEMU 7.2 (q35, TCG) with Debian's OVMF: capture a migration
// stream, parse and rebuild it, and load the rebuilt stream into a fresh QEMU.

func needQEMU(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: skipping tests that run QEMU")
	}
	repo.RequireQEMU(t)
}

func copyFile(t testing.TB, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// guestConfig is the plain-OVMF q35 guest used on both sides of a migration.
func guestConfig(t testing.TB, dir string, mem int, snapshotVars bool) qemu.Config {
	vars := filepath.Join(dir, fmt.Sprintf("vars-%d.fd", time.Now().UnixNano()))
	copyFile(t, repo.OVMFVars(), vars)
	return qemu.Config{
		MemoryMiB: mem,
		Pflash: []qemu.Pflash{
			{Unit: 0, File: repo.OVMFCode(), ReadOnly: true},
			{Unit: 1, File: vars, Snapshot: snapshotVars},
		},
	}
}

func startVM(t testing.TB, cfg qemu.Config) *qemu.VM {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	vm, err := qemu.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		vm.Close() // SIGTERM then SIGKILL of this QEMU's pid only
		if t.Failed() {
			t.Logf("qemu: %s\nstderr: %s\nserial (last 2000 bytes): %q", vm.Cmdline(), vm.StderrSummary(), harness.Tail(vm.Serial().Text(), 2000))
		}
	})
	return vm
}

// Points at which the source guest is stopped.
const (
	stopNeverRan  = "never-ran" // -S, firmware never executed
	stopMidBoot   = "mid-boot"  // about 2 s into the firmware, before any console output
	stopCountdown = "countdown" // at OVMF's "Press ESC ... startup.nsh" countdown
)

// captureStream boots a source guest, stops it at the given point and saves its
// migration stream (QMP stop, max-bandwidth raised, migrate) into a file in dir.
func captureStream(t testing.TB, dir string, mem int, stop string) string {
	t.Helper()
	cfg := guestConfig(t, dir, mem, false)
	cfg.Paused = stop == stopNeverRan
	src := startVM(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	switch stop {
	case stopCountdown:
		if _, err := src.Serial().WaitString(ctx, "startup.nsh", 150*time.Second); err != nil {
			t.Fatalf("source OVMF did not reach its shell countdown: %v", err)
		}
	case stopMidBoot:
		// A timed stop is the only way to catch the firmware in PEI/DXE, before it
		// prints anything. Nothing is asserted about time; the log says where it was.
		time.Sleep(2 * time.Second)
		t.Logf("source stopped mid-boot; serial so far: %d bytes", len(src.Serial().Text()))
	}
	file := filepath.Join(dir, fmt.Sprintf("stream-%d-%s.bin", mem, stop))
	st, err := src.SaveState(ctx, file)
	if err != nil {
		t.Fatalf("capturing the migration stream: %v", err)
	}
	t.Logf("captured %s: %d bytes, QEMU total-time %v", filepath.Base(file), st.Bytes, st.TotalTime)
	return file
}

// cmpWriter compares what is written with a reference reader, without holding either.
type cmpWriter struct {
	ref      *bufio.Reader
	n        int64
	mismatch int64
	buf      []byte
}

func (c *cmpWriter) Write(p []byte) (int, error) {
	if c.mismatch >= 0 {
		return len(p), nil
	}
	if cap(c.buf) < len(p) {
		c.buf = make([]byte, len(p))
	}
	b := c.buf[:len(p)]
	k, _ := io.ReadFull(c.ref, b)
	for i := 0; i < len(p); i++ {
		if i >= k || b[i] != p[i] {
			c.mismatch = c.n + int64(i)
			break
		}
	}
	c.n += int64(len(p))
	return len(p), nil
}

// checkIdentical parses file and rebuilds it with a Writer, streaming both, and fails
// on the first differing byte.
func checkIdentical(t testing.TB, file string) *Stats {
	t.Helper()
	in, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	ref, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	fi, _ := in.Stat()
	cw := &cmpWriter{ref: bufio.NewReader(ref), mismatch: -1}
	w := NewWriter(cw)
	st, err := Parse(in, w)
	if err != nil {
		t.Fatalf("parsing %s: %v", file, err)
	}
	if cw.mismatch >= 0 {
		t.Fatalf("rebuilt stream differs from %s at byte %d", file, cw.mismatch)
	}
	if cw.n != fi.Size() || w.Written() != fi.Size() {
		t.Fatalf("rebuilt %d bytes (writer says %d), source has %d", cw.n, w.Written(), fi.Size())
	}
	if ws := w.Stats(); ws.DataPages != st.DataPages || ws.ZeroPages != st.ZeroPages || ws.Sections != st.Sections || len(ws.Devices) != len(st.Devices) {
		t.Fatalf("writer stats %+v differ from parser stats %+v", ws, st)
	}

	// Streaming: parsing the whole file allocates a small, size-independent amount.
	if _, err := in.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if _, err := Parse(in, nopHandler{}); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("parsing the %d-byte stream allocated %d bytes", fi.Size(), alloc)
	if alloc > 4<<20 {
		t.Errorf("parsing allocated %d bytes for a %d-byte stream; the parser must stream", alloc, fi.Size())
	}
	return st
}

// loadIntoQEMU starts a fresh destination with -incoming defer, lets it listen on a
// unix socket and writes the stream produced by feed into it. It returns the VM after
// the load finished (status paused or prelaunch).
func loadIntoQEMU(t testing.TB, dir string, mem int, feed func(io.Writer) error) (*qemu.VM, string) {
	t.Helper()
	cfg := guestConfig(t, dir, mem, true)
	cfg.Incoming = "defer"
	dst := startVM(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sock := filepath.Join(dst.Dir(), "incoming.sock")
	if err := dst.MigrateIncoming(ctx, "unix:"+sock); err != nil {
		t.Fatal(err)
	}
	var conn net.Conn
	for {
		var err error
		conn, err = net.Dial("unix", sock)
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("destination QEMU never listened on %s: %v", sock, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	conn.SetDeadline(time.Now().Add(90 * time.Second))
	ferr := feed(conn)
	conn.Close()
	if ferr != nil {
		t.Fatalf("feeding the rebuilt stream: %v (qemu: %s)", ferr, dst.StderrSummary())
	}
	status, err := dst.WaitIncoming(ctx, 90*time.Second)
	if err != nil {
		t.Fatalf("destination did not load the rebuilt stream: %v", err)
	}
	return dst, status
}

func TestRealStreams(t *testing.T) {
	needQEMU(t)
	dir := t.TempDir()
	cases := []struct {
		mem        int
		stop       string
		viaCompact bool   // rebuild through Recorder/Skeleton/Replay instead of Parse->Writer
		status     string // destination status after the load
	}{
		{128, stopCountdown, true, "paused"},
		{512, stopCountdown, false, "paused"},
		{128, stopMidBoot, true, "paused"},
		{128, stopNeverRan, false, "prelaunch"},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%dMiB-%s", c.mem, c.stop), func(t *testing.T) {
			file := captureStream(t, dir, c.mem, c.stop)
			defer os.Remove(file)
			st := checkIdentical(t, file)
			t.Logf("parsed: %d bytes, %d RAM sections, %d data + %d zero pages, %d device sections (%d bytes)",
				st.Bytes, st.Sections, st.DataPages, st.ZeroPages, len(st.Devices), st.DeviceBytes)
			if c.stop == stopNeverRan && st.DataPages > 2000 {
				t.Errorf("a guest that never ran sent %d data pages; expected only flash/ROM pages", st.DataPages)
			}

			feed := func(w io.Writer) error {
				in, err := os.Open(file)
				if err != nil {
					return err
				}
				defer in.Close()
				if !c.viaCompact {
					_, err = Parse(in, NewWriter(w))
					return err
				}
				// The export/receive path: keep the compact page stream and the data
				// pages apart (as a package would), then rebuild from them.
				var data [][]byte
				rec := &Recorder{OnData: func(_ int, _ Block, _ uint64, d []byte) error {
					data = append(data, append([]byte(nil), d...))
					return nil
				}}
				if _, err := Parse(in, rec); err != nil {
					return err
				}
				k := 0
				return rec.Skeleton.Replay(NewWriter(w), func(int, Entry) ([]byte, error) {
					if k >= len(data) {
						return nil, errors.New("more data entries than recorded pages")
					}
					k++
					return data[k-1], nil
				})
			}
			dst, status := loadIntoQEMU(t, dir, c.mem, feed)
			if status != c.status {
				t.Fatalf("destination status %q after the load, want %q", status, c.status)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			if err := dst.Resume(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := dst.Serial().WaitString(ctx, "Shell>", 150*time.Second); err != nil {
				t.Fatalf("resumed guest did not reach the OVMF shell: %v", err)
			}
			s, err := dst.Status(ctx)
			if err != nil || s != "running" {
				t.Fatalf("status after cont: %q, %v", s, err)
			}
			if c.stop == stopCountdown && bytes.Contains([]byte(dst.Serial().Text()), []byte("BdsDxe")) {
				// A guest resumed at the countdown continues it; a restarted firmware
				// would print its boot manager lines again.
				t.Errorf("destination printed boot-manager output again: the firmware restarted instead of resuming")
			}
		})
	}
}
