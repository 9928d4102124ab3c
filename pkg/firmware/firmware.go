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
	"strings"
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
// read. It is the precomputed shim.fd.sha256 (`make firmware` writes it beside shim.fd.gz, a
// test checks it against the decompressed template): every CLI start puts it into
// --version, and decompressing 3.5 MiB for that cost each command ~15 ms.
func Digest() string {
	d := strings.TrimSpace(digestFile)
	if b, err := hex.DecodeString(d); err != nil || len(b) != sha256.Size {
		return "unavailable"
	}
	return d
}

//go:embed shim.fd.sha256
var digestFile string
