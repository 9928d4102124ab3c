package manifest_test

import (
	"testing"

	"github.com/sevshim/sevshim/tests/golden"
)

// TestMain writes the large golden files (BIOS-sized images, not committed) before any test
// reads testdata/golden.
func TestMain(m *testing.M) { golden.Main(m, "../../../testdata/golden") }
