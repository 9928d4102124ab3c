package host

import (
	"bytes"
	"errors"
	"io"
	"math/rand"
	"testing"
	"time"
)

// TestChunkPipeSameBytes: whatever the write and read sizes, the reader gets exactly the
// bytes written, in order, then the writer's end (io.EOF or its error).
func TestChunkPipeSameBytes(t *testing.T) {
	rnd := rand.New(rand.NewSource(1))
	in := make([]byte, 3<<20+12345)
	rnd.Read(in)
	for _, depth := range []int{1, 2, pipeDepth} {
		for _, end := range []error{nil, errors.New("migration failed")} {
			pp := newChunkPipe(depth)
			go func() {
				for p := in; len(p) > 0; {
					k := min(len(p), 1+rnd.Intn(200<<10))
					if _, err := pp.Write(p[:k]); err != nil {
						t.Error(err)
						return
					}
					p = p[k:]
				}
				pp.CloseWithError(end)
			}()
			var out bytes.Buffer
			buf := make([]byte, 100<<10)
			var err error
			for {
				var n int
				n, err = pp.Read(buf[:1+rand.Intn(len(buf))])
				out.Write(buf[:n])
				if err != nil {
					break
				}
			}
			want := end
			if want == nil {
				want = io.EOF
			}
			if err != want || !bytes.Equal(out.Bytes(), in) {
				t.Fatalf("depth %d: got %d bytes (equal %v), end %v; want %d bytes, end %v", depth, out.Len(), bytes.Equal(out.Bytes(), in), err, len(in), want)
			}
			pp.wipe()
		}
	}
}

// TestChunkPipeReaderCloseUnblocksWriter: a writer blocked on a full pipe gets the reader's
// error once the reader closes (the export aborts QEMU's migration that way).
func TestChunkPipeReaderCloseUnblocksWriter(t *testing.T) {
	pp := newChunkPipe(2)
	stop := errors.New("parse failed")
	res := make(chan error, 1)
	go func() {
		_, err := pp.Write(make([]byte, 10*pipeChunk))
		res <- err
	}()
	select {
	case err := <-res:
		t.Fatalf("the write of 10 chunks into a 2-chunk pipe returned (%v) with no reader", err)
	case <-time.After(100 * time.Millisecond):
	}
	pp.CloseRead(stop)
	select {
	case err := <-res:
		if err != stop {
			t.Fatalf("writer got %v, want %v", err, stop)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the writer stayed blocked after the reader closed")
	}
	if _, err := pp.Write([]byte{1}); err != stop {
		t.Fatalf("a write after the reader closed: %v, want %v", err, stop)
	}
}
