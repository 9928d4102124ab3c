package receipt

import (
	"fmt"
	"os"
	"testing"

	"github.com/sevshim/sevshim/tests/harness"
)

var tmpRoot string // everything of this test binary; removed by TestMain

func TestMain(m *testing.M) {
	d, err := os.MkdirTemp("", "sevshim-receipt-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	tmpRoot = d
	cli = harness.NewCLIs(tmpRoot)
	code := m.Run()
	cli.StopAll() // every QEMU a test left
	if os.Getenv("SEVSHIM_KEEP") == "" {
		os.RemoveAll(tmpRoot)
	} else {
		fmt.Fprintln(os.Stderr, "kept", tmpRoot)
	}
	os.Exit(code)
}
