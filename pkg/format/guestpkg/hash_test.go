package guestpkg

import (
	"bytes"
	"crypto/sha512"
	"math/rand"
	"testing"
)

// TestBGHashIsSHA384: the background hash equals SHA-384 of the same bytes for any sizes of
// writes, across the synchronous prefix and many chunks, and a Sum in between does not
// disturb the rest.
func TestBGHashIsSHA384(t *testing.T) {
	rnd := rand.New(rand.NewSource(2))
	for _, size := range []int{0, 1, hashChunk - 1, hashChunk, hashChunk + 1, 5*hashChunk + 777} {
		data := make([]byte, size)
		rnd.Read(data)
		b := newBGHash(sha512.New384())
		for p := data; len(p) > 0; {
			k := min(len(p), 1+rnd.Intn(300<<10))
			b.Write(p[:k])
			p = p[k:]
			if k%7 == 0 {
				want := sha512.Sum384(data[:len(data)-len(p)])
				if got := b.Sum(nil); !bytes.Equal(got, want[:]) {
					t.Fatalf("size %d: intermediate Sum differs", size)
				}
			}
		}
		want := sha512.Sum384(data)
		if got := b.Sum(nil); !bytes.Equal(got, want[:]) {
			t.Fatalf("size %d: Sum differs from SHA-384", size)
		}
	}
}
