package flow

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/sevshim/sevshim/pkg/host"
	"github.com/sevshim/sevshim/pkg/vmm"
	"github.com/sevshim/sevshim/pkg/vmm/qemu"
)

// TestReceiveWakesAfterLostNMI: hostctl receive's wake-up survives a lost first NMI. When
// QEMU B has loaded the guest (paused, its CPU halted in the shim's `cli; hlt` after the
// flag test), a gdbstub started over QMP moves rip back onto the `cli` (bytes fa f4): the
// state of a CPU stopped between the flag test and the hlt. The first NMI is taken there,
// sets the flag and returns into the hlt; only a resent NMI wakes the shim. The receive
// must still be accepted and hand off.
func TestReceiveWakesAfterLostNMI(t *testing.T) {
	w := getWorld(t)
	wb := track(filepath.Join(t.TempDir(), "B"))
	t.Cleanup(func() { killWork(wb) })
	gdbSock := filepath.Join(t.TempDir(), "gdb.sock")
	var gdb *qemu.GDB
	t.Cleanup(func() {
		if gdb != nil {
			gdb.Close()
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	moved := false
	v, err := host.Receive(ctx, host.ReceiveOptions{
		State: w.p, Package: w.pkg, Bundle: w.v6, Work: wb, Stop: true,
		Hooks: host.Hooks{BeforeWake: func(ctx context.Context, vm vmm.VM) error {
			q := vm.(*qemu.Detached).QMP()
			if _, err := q.Execute(ctx, "human-monitor-command", map[string]any{"command-line": "gdbserver unix:" + gdbSock + ",server=on,wait=off"}); err != nil {
				return err
			}
			g, err := qemu.DialGDB(gdbSock, nil)
			if err != nil {
				return err
			}
			gdb = g // stays open: Close never detaches (QEMU would resume the VM)
			rb, err := g.Register(qemu.GDBRegRIP)
			if err != nil || len(rb) != 8 {
				return fmt.Errorf("rip: %x, %v", rb, err)
			}
			rip := binary.LittleEndian.Uint64(rb)
			if code, err := g.ReadMemory(rip-2, 2); err != nil || hex.EncodeToString(code) != "faf4" {
				return fmt.Errorf("the bytes before rip 0x%x are %x (%v), not cli; hlt", rip, code, err)
			}
			binary.LittleEndian.PutUint64(rb, rip-2)
			if err := g.SetRegister(qemu.GDBRegRIP, rb); err != nil {
				return fmt.Errorf("setting rip: %v", err)
			}
			moved = true
			return nil
		}},
	})
	if err != nil {
		t.Fatalf("receive: %v\ndebugcon:\n%s", err, readFile(filepath.Join(wb, "debugcon.log")))
	}
	if !moved || !v.Accepted || v.Version != 6 {
		t.Fatalf("verdict %+v (rip moved: %v)", v, moved)
	}
	if v.WakeNMIs < 2 {
		t.Fatalf("the shim answered the first NMI (%d sent): the window was not reproduced", v.WakeNMIs)
	}
	dbg := readFile(filepath.Join(wb, "debugcon.log"))
	for _, re := range []string{`(?m)^SEVSHIM WAKE$`, `(?m)^SEVSHIM HANDOFF$`} {
		if !regexp.MustCompile(re).MatchString(dbg) {
			t.Fatalf("debugcon has no %s:\n%s", re, dbg)
		}
	}
	t.Logf("woke after %d NMIs", v.WakeNMIs)
}
