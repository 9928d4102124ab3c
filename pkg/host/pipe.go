package host

import (
	"io"
	"sync"
)

// chunkPipe is an in-memory pipe with a bounded buffer: the writer runs ahead of the reader
// by at most depth chunks of chunkSize bytes, then blocks. The export puts it between QEMU's
// migration stream and the parser that seals every page (SEND_UPDATE_DATA), so QEMU keeps
// producing while pages are sealed instead of waiting on each read (io.Pipe has no buffer).
// Bytes come out exactly as they went in, in order. One writer and one reader.
type chunkPipe struct {
	full  chan []byte // filled chunks, in order
	free  chan []byte // chunks the reader is done with
	done  chan struct{}
	alloc int // chunks made so far (writer side)
	depth int

	mu   sync.Mutex
	werr error // the writer's close error (io.EOF for a clean end)
	rerr error // the reader's close error

	cur  []byte // the reader's unread part of its chunk
	held []byte // that chunk, returned to free when used up
	once sync.Once
}

const (
	pipeChunk = 64 << 10
	pipeDepth = 128 // 8 MiB of stream ahead of the parser
)

func newChunkPipe(depth int) *chunkPipe {
	return &chunkPipe{full: make(chan []byte, depth), free: make(chan []byte, depth), done: make(chan struct{}), depth: depth}
}

// Write copies p into chunks; it blocks while depth chunks wait, and fails once the reader
// closed.
func (c *chunkPipe) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		select {
		case <-c.done:
			return n, c.readErr()
		default:
		}
		var buf []byte
		select {
		case buf = <-c.free:
		case <-c.done:
			return n, c.readErr()
		default:
			if c.alloc < c.depth {
				c.alloc++
				buf = make([]byte, pipeChunk)
			} else {
				select {
				case buf = <-c.free:
				case <-c.done:
					return n, c.readErr()
				}
			}
		}
		k := copy(buf[:cap(buf)], p)
		select {
		case c.full <- buf[:k]:
		case <-c.done:
			return n, c.readErr()
		}
		n, p = n+k, p[k:]
	}
	return n, nil
}

// CloseWithError ends the writing: the reader sees err after the buffered bytes (io.EOF
// if err is nil).
func (c *chunkPipe) CloseWithError(err error) {
	if err == nil {
		err = io.EOF
	}
	c.mu.Lock()
	c.werr = err
	c.mu.Unlock()
	close(c.full)
}

func (c *chunkPipe) readErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rerr
}

// Read reads the next bytes in order.
func (c *chunkPipe) Read(b []byte) (int, error) {
	for len(c.cur) == 0 {
		if c.held != nil {
			c.free <- c.held[:cap(c.held)]
			c.held = nil
		}
		buf, ok := <-c.full
		if !ok {
			c.mu.Lock()
			defer c.mu.Unlock()
			return 0, c.werr
		}
		c.cur, c.held = buf, buf
	}
	n := copy(b, c.cur)
	c.cur = c.cur[n:]
	return n, nil
}

// CloseRead ends the reading: the writer's Write returns err (io.ErrClosedPipe if nil).
func (c *chunkPipe) CloseRead(err error) {
	if err == nil {
		err = io.ErrClosedPipe
	}
	c.once.Do(func() {
		c.mu.Lock()
		c.rerr = err
		c.mu.Unlock()
		close(c.done)
	})
}

// wipe clears every chunk the pipe made (the stream is the guest's plaintext RAM); call it
// once both sides are done.
func (c *chunkPipe) wipe() {
	clear(c.held[:cap(c.held)])
	for {
		select {
		case b := <-c.free:
			clear(b[:cap(b)])
		case b, ok := <-c.full:
			if !ok {
				c.full = nil
				continue
			}
			clear(b[:cap(b)])
		default:
			return
		}
	}
}
