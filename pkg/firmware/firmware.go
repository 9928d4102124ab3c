// Package firmware carries the shim templates (the firmware image of each flash layout with an
// empty policy region, docs/formats.md section 4) inside the Go programs, so `builder build`
// works without a checkout: `go install github.com/sevshim/sevshim/builder@VERSION` is enough.
//
// shim.fd.gz (layout ovmf-4m) and shim-NAME.fd.gz (every other layout, layout.ShimFile) are
// build/shim/*.fd compressed (gzip -9 -n): each image is mostly padding around a small
// payload. The firmware build is reproducible (docs/shim.md), so the embedded copies are the
// images `make shim` produces from this commit; `make firmware` refreshes them and a test
// fails when one differs from a fresh build.
package firmware

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io"
	"sync"

	"github.com/sevshim/sevshim/pkg/format/layout"
)

//go:embed shim*.fd.gz
var files embed.FS

// Name is how messages refer to the embedded template of the default layout.
const Name = "the embedded shim template"

// NameFor is how messages refer to the embedded template of a layout.
func NameFor(l layout.Layout) string {
	if l.ID == layout.Default {
		return Name
	}
	return fmt.Sprintf("the embedded %s shim template", l.Name)
}

// maxSize bounds a decompressed template (the largest flash layout is 4 MiB).
const maxSize = 16 << 20

type loaded struct {
	once sync.Once
	img  []byte
	err  error
}

var templates sync.Map // layout id -> *loaded

// Template returns a fresh copy of the embedded template of the default layout (ovmf-4m).
func Template() ([]byte, error) {
	l, _ := layout.ByID(layout.Default)
	return TemplateFor(l)
}

// TemplateFor returns a fresh copy of the embedded template of layout l.
func TemplateFor(l layout.Layout) ([]byte, error) {
	v, _ := templates.LoadOrStore(l.ID, new(loaded))
	t := v.(*loaded)
	t.once.Do(func() { t.img, t.err = load(l) })
	if t.err != nil {
		return nil, t.err
	}
	return bytes.Clone(t.img), nil
}

func load(l layout.Layout) ([]byte, error) {
	gz, err := files.ReadFile(l.ShimFile() + ".gz")
	if err != nil {
		return nil, fmt.Errorf("%s: no template embedded for layout %s", NameFor(l), l.Name)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", NameFor(l), err)
	}
	b, err := io.ReadAll(io.LimitReader(zr, maxSize+1))
	if err == nil && len(b) > maxSize {
		err = fmt.Errorf("larger than %d bytes", maxSize)
	}
	if err == nil && len(b) != int(l.CodeSize) {
		err = fmt.Errorf("%d bytes, not the %#x bytes of layout %s", len(b), l.CodeSize, l.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", NameFor(l), err)
	}
	return b, nil
}

// Digest is the SHA-256 of the embedded template of the default layout in hex (what
// `sha256sum build/shim/shim.fd` prints for the same commit), or "unavailable" if it cannot be
// read.
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
