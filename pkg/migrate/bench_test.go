package migrate

import (
	"bytes"
	"io"
	"os"
	"sync"
	"testing"
)

// The benchmarks use the real stream of a 512 MiB q35 + OVMF guest stopped at the
// shell countdown (about 46 MB: ~10,900 data pages, ~121,000 zero pages, 78 KB of
// device state). It is captured once per run with QEMU, or read from
// $MIGRATE_BENCH_STREAM when set. The stream is held in memory so that the numbers
// are the parser's and writer's, not the disk's.
//
//	go test -run '^$' -bench . -benchtime 5x ./pkg/migrate/
var (
	benchOnce   sync.Once
	benchStream []byte
	benchErr    string
)

func stream512(b *testing.B) []byte {
	benchOnce.Do(func() {
		if p := os.Getenv("MIGRATE_BENCH_STREAM"); p != "" {
			data, err := os.ReadFile(p)
			if err != nil {
				benchErr = err.Error()
			}
			benchStream = data
			return
		}
		dir, err := os.MkdirTemp("", "migrate-bench-")
		if err != nil {
			benchErr = err.Error()
			return
		}
		defer os.RemoveAll(dir)
		file := captureStream(b, dir, 512, stopCountdown)
		benchStream, err = os.ReadFile(file)
		if err != nil {
			benchErr = err.Error()
		}
	})
	if benchErr != "" {
		b.Fatal(benchErr)
	}
	if benchStream == nil {
		b.Fatal("no benchmark stream (capture failed earlier in this run)")
	}
	return benchStream
}

type nopHandler struct{}

func (nopHandler) Header([]byte) error             { return nil }
func (nopHandler) RAMBlocks(uint32, []Block) error { return nil }
func (nopHandler) RAMSection(bool) error           { return nil }
func (nopHandler) Page(*Page) error                { return nil }
func (nopHandler) Device([]byte) error             { return nil }
func (nopHandler) Done() error                     { return nil }

func BenchmarkParse512MiB(b *testing.B) { benchParse(b, func() Handler { return nopHandler{} }) }

func BenchmarkParseRebuild512MiB(b *testing.B) {
	benchParse(b, func() Handler { return NewWriter(io.Discard) })
}

// benchParse parses the 512 MiB stream b.N times, each into a fresh handler.
func benchParse(b *testing.B, handler func() Handler) {
	needQEMUForBench(b)
	s := stream512(b)
	b.SetBytes(int64(len(s)))
	b.ResetTimer()
	var st *Stats
	for i := 0; i < b.N; i++ {
		var err error
		if st, err = Parse(bytes.NewReader(s), handler()); err != nil {
			b.Fatal(err)
		}
	}
	reportPages(b, st)
}

// BenchmarkReplay512MiB measures the receive side alone: compact page stream plus data
// pages (already in memory) back into a stream.
func BenchmarkReplay512MiB(b *testing.B) {
	needQEMUForBench(b)
	s := stream512(b)
	sk, pages := record(b, s)
	b.SetBytes(int64(len(s)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := 0
		if err := sk.Replay(NewWriter(io.Discard), func(int, Entry) ([]byte, error) { k++; return pages[k-1], nil }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(sk.Entries)*EntrySize), "compact-bytes")
}

func reportPages(b *testing.B, st *Stats) {
	if st == nil {
		return
	}
	pages := float64(st.DataPages + st.ZeroPages)
	b.ReportMetric(pages*float64(b.N)/b.Elapsed().Seconds(), "pages/s")
}

func needQEMUForBench(b *testing.B) {
	if os.Getenv("MIGRATE_BENCH_STREAM") == "" {
		needQEMU(b)
	}
}
