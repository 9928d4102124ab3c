package golden

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// LoadCases reads cases.json from the golden directory dir; t fails if it cannot.
func LoadCases(t testing.TB, dir string) Cases {
	t.Helper()
	var c Cases
	if err := json.Unmarshal(ReadFile(t, dir, "cases.json"), &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// ReadFile reads the golden file p (a path relative to dir, as cases.json gives it); t fails
// if it cannot.
func ReadFile(t testing.TB, dir, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, p))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Main is the TestMain of a package whose tests read the large golden files (BIOS-sized
// images, not committed): it writes them under dir (EnsureLarge), then runs the tests.
func Main(m *testing.M, dir string) {
	if err := EnsureLarge(dir); err != nil {
		fmt.Fprintln(os.Stderr, "generating the large golden files:", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}
