package receipt

import (
	"fmt"
	"os"
	"testing"
)

var tmpRoot string // everything of this test binary; removed by TestMain

func TestMain(m *testing.M) {
	d, err := os.MkdirTemp("", "sevshim-receipt-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	tmpRoot = d
	code := m.Run()
	stopAll()
	if os.Getenv("SEVSHIM_KEEP") == "" {
		os.RemoveAll(tmpRoot)
	} else {
		fmt.Fprintln(os.Stderr, "kept", tmpRoot)
	}
	os.Exit(code)
}

// stopAllHook ends every QEMU a test left (flow_test.go sets it).
var stopAllHook func()

func stopAll() {
	if stopAllHook != nil {
		stopAllHook()
	}
}
