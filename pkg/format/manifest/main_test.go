package manifest_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/sevshim/sevshim/tests/golden"
)

// TestMain writes the large golden files (BIOS-sized images, not committed) before any test
// reads testdata/golden.
func TestMain(m *testing.M) {
	if err := golden.EnsureLarge("../../../testdata/golden"); err != nil {
		fmt.Fprintln(os.Stderr, "generating the large golden files:", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}
