package guestpkg

import "hash"

// hashChunk is how many bytes the trailer hash takes at once in the background.
const hashChunk = 1 << 20

// bgHash is the package's trailer digest (newDigest) computed beside the reading or writing: Write
// copies the bytes into a chunk, and each full chunk is hashed by a goroutine while the
// next one fills (at most one chunk in flight, so two chunks of memory). The digest covers
// exactly the bytes passed to Write, in order: the same bytes the Reader parsed or the
// Writer wrote, never a second read of the file. Every goroutine ends with its chunk, so an
// abandoned Reader or Writer leaks nothing. Not safe for concurrent use.
type bgHash struct {
	h     hash.Hash
	n     int64       // bytes written
	buf   []byte      // the chunk being filled (nil until the first hashChunk bytes are hashed)
	spare []byte      // the other chunk (nil while it is being hashed)
	busy  chan []byte // the chunk in flight comes back here when hashed
}

func newBGHash(h hash.Hash) *bgHash { return &bgHash{h: h} }

func (b *bgHash) Write(p []byte) (int, error) {
	n := len(p)
	// The first hashChunk bytes are hashed at once: a small package (or a reader that
	// stops early) needs no chunks at all.
	if b.buf == nil {
		k := int(min(int64(len(p)), hashChunk-b.n))
		b.h.Write(p[:k])
		b.n += int64(k)
		if p = p[k:]; len(p) == 0 {
			return n, nil
		}
		b.buf, b.spare = make([]byte, 0, hashChunk), make([]byte, 0, hashChunk)
	}
	b.n += int64(len(p))
	for len(p) > 0 {
		k := copy(b.buf[len(b.buf):cap(b.buf)], p)
		b.buf, p = b.buf[:len(b.buf)+k], p[k:]
		if len(b.buf) == cap(b.buf) {
			b.flush()
		}
	}
	return n, nil
}

// wait takes back the chunk in flight, if any.
func (b *bgHash) wait() {
	if b.busy != nil {
		b.spare = (<-b.busy)[:0]
		b.busy = nil
	}
}

// flush hands the filled chunk to a goroutine and continues in the other one.
func (b *bgHash) flush() {
	b.wait()
	full := b.buf
	b.buf, b.spare = b.spare, nil
	b.busy = make(chan []byte, 1)
	go func(c chan<- []byte) {
		b.h.Write(full)
		c <- full
	}(b.busy)
}

// Sum is the digest of everything written so far (the hash goes on afterwards).
func (b *bgHash) Sum(in []byte) []byte {
	b.wait()
	if b.buf != nil {
		b.h.Write(b.buf)
		b.buf = b.buf[:0]
	}
	return b.h.Sum(in)
}
