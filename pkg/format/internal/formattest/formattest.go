// Package formattest gives the format packages' tests the repository's files by their path
// from the repository root: the C headers under shim/include that must match the Go
// definitions, docs/ and the golden files under testdata/golden.
package formattest

import (
	"os"
	"path/filepath"
	"testing"
)

// root is the repository root: the nearest directory above the working directory (a test's
// package directory) that holds go.mod.
func root(t testing.TB) string {
	t.Helper()
	d, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		up := filepath.Dir(d)
		if up == d {
			t.Fatal("formattest: no go.mod above the test's directory")
		}
		d = up
	}
}

// Read returns the repository file rel (slash-separated, from the root); it fails t if the
// file cannot be read.
func Read(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root(t), filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Seed adds every repository file matching glob (from the root) for which keep holds (nil:
// every file) to f's seed corpus.
func Seed(f *testing.F, glob string, keep func([]byte) bool) {
	f.Helper()
	files, _ := filepath.Glob(filepath.Join(root(f), filepath.FromSlash(glob)))
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil && (keep == nil || keep(b)) {
			f.Add(b)
		}
	}
}
