package flow

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sevshim/sevshim/host"
	"github.com/sevshim/sevshim/qemu"
)

// gdbRSP is the least of GDB's remote serial protocol needed to read and set rip of a
// stopped QEMU.
type gdbRSP struct {
	c net.Conn
	r *bufio.Reader
}

func (g *gdbRSP) cmd(t *testing.T, payload string) string {
	t.Helper()
	var sum byte
	for i := 0; i < len(payload); i++ {
		sum += payload[i]
	}
	if _, err := fmt.Fprintf(g.c, "$%s#%02x", payload, sum); err != nil {
		t.Fatal(err)
	}
	for {
		b, err := g.r.ReadByte()
		if err != nil {
			t.Fatalf("gdbstub %q: %v", payload, err)
		}
		if b == '+' {
			break
		}
		if b != '$' {
			t.Fatalf("gdbstub %q: byte %q instead of an ack", payload, b)
		}
		g.r.UnreadByte()
		g.reply(t)
	}
	return g.reply(t)
}

func (g *gdbRSP) reply(t *testing.T) string {
	t.Helper()
	if _, err := g.r.ReadString('$'); err != nil {
		t.Fatal(err)
	}
	s, err := g.r.ReadString('#')
	if err != nil {
		t.Fatal(err)
	}
	var cs [2]byte
	if _, err := g.r.Read(cs[:1]); err != nil {
		t.Fatal(err)
	}
	if _, err := g.r.Read(cs[1:]); err != nil {
		t.Fatal(err)
	}
	g.c.Write([]byte("+"))
	return strings.TrimSuffix(s, "#")
}

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
	var gdb net.Conn
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
		BeforeWake: func(ctx context.Context, q *qemu.QMP) error {
			if _, err := q.Execute(ctx, "human-monitor-command", map[string]any{"command-line": "gdbserver unix:" + gdbSock + ",server=on,wait=off"}); err != nil {
				return err
			}
			c, err := net.DialTimeout("unix", gdbSock, 5*time.Second)
			if err != nil {
				return err
			}
			gdb = c // stays open: QEMU resumes the VM on detach, so never 'D'
			c.SetDeadline(time.Now().Add(30 * time.Second))
			g := &gdbRSP{c: c, r: bufio.NewReader(c)}
			g.cmd(t, "qXfer:features:read:target.xml:0,ffb") // enables p/P
			rb, err := hex.DecodeString(g.cmd(t, "p10"))     // rip
			if err != nil || len(rb) != 8 {
				return fmt.Errorf("rip: %v", err)
			}
			rip := binary.LittleEndian.Uint64(rb)
			if code := g.cmd(t, fmt.Sprintf("m%x,2", rip-2)); code != "faf4" {
				return fmt.Errorf("the bytes before rip 0x%x are %q, not cli; hlt", rip, code)
			}
			binary.LittleEndian.PutUint64(rb, rip-2)
			if r := g.cmd(t, "P10="+hex.EncodeToString(rb)); r != "OK" {
				return fmt.Errorf("setting rip: %q", r)
			}
			moved = true
			return nil
		},
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
