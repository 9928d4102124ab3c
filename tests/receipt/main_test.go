package receipt

import (
	"testing"

	"github.com/sevshim/sevshim/tests/harness"
)

func TestMain(m *testing.M) { harness.Main(m) }
