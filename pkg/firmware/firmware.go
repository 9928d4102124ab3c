// Package firmware carries the shim template (the firmware image with an empty policy region,
// docs/formats.md section 4) inside the Go programs, so `builder build` works without a
// checkout: `go install github.com/sevshim/sevshim/builder@VERSION` is enough.
//
// shim.fd.gz is build/shim/shim.fd compressed (gzip -9 -n): the image is mostly padding around
// a small payload. The firmware build is reproducible (docs/shim.md), so the embedded copy is
// the image `make shim` produces from this commit; `make firmware` refreshes it and a test
// fails when it differs from a fresh build.
package firmware

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"io"
	"sync"
)

//go:embed shim.fd.gz
var compressed []byte

// Name is how messages refer to the embedded template.
const Name = "the embedded shim template"

// maxSize bounds the decompressed template (the largest flash layout is 4 MiB).
const maxSize = 16 << 20

var (
	once     sync.Once
	template []byte
	loadErr  error
)

// Template returns a fresh copy of the embedded shim template.
func Template() ([]byte, error) {
	once.Do(func() {
		zr, err := gzip.NewReader(bytes.NewReader(compressed))
		if err != nil {
			loadErr = fmt.Errorf("%s: %w", Name, err)
			return
		}
		b, err := io.ReadAll(io.LimitReader(zr, maxSize+1))
		if err == nil && len(b) > maxSize {
			err = fmt.Errorf("larger than %d bytes", maxSize)
		}
		if err != nil {
			loadErr = fmt.Errorf("%s: %w", Name, err)
			return
		}
		template = b
	})
	if loadErr != nil {
		return nil, loadErr
	}
	return bytes.Clone(template), nil
}

// Digest is the SHA-256 of the embedded template in hex (what `sha256sum build/shim/shim.fd`
// prints for the same commit), or "unavailable" if it cannot be read.
func Digest() string {
	digestOnce.Do(func() {
		digest = "unavailable"
		if t, err := Template(); err == nil {
			d := sha256.Sum256(t)
			digest = hex.EncodeToString(d[:])
		}
	})
	return digest
}

var (
	digestOnce sync.Once
	digest     string
)
