package qemu

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"time"

	"encoding/hex"
)

// GDB speaks the part of GDB's remote serial protocol that sevshim needs with QEMU's
// gdbstub (`-gdb` or the HMP `gdbserver` command): read and write guest memory (QEMU 7.2 has
// no QMP command that writes guest memory; `Qqemu.PhyMemMode:1` switches the stub to
// guest-physical addresses), breakpoints, continue, and registers. hostctl uses it to write
// the launch secret into a QEMU started with -S; tests use it to stop the shim at an exact
// instruction. One packet at a time, acks checked.
//
// Connecting a client stops a running VM (the stub then sends a stop notification, which is
// acknowledged and skipped); a prelaunch or paused VM stays as it is. Close never sends 'D'
// (detach), because QEMU resumes the VM on detach.
type GDB struct {
	c       *net.UnixConn
	r       *bufio.Reader
	regsOK  bool // the target description was read (QEMU answers p/P only after that)
	timeout time.Duration
}

// GDBRegRIP is rip's number in QEMU's x86-64 target description (GDB's amd64 layout:
// rax..r15 are 0..15, rip 16).
const GDBRegRIP = 16

// gdbChunk bounds one memory packet: hex doubles it, and QEMU's packet buffer is 4 KiB.
const gdbChunk = 1900

// DialGDB connects to the gdbstub on the unix socket path. check, if not nil, runs on the
// connection before the first byte is sent (hostctl checks who listens, SO_PEERCRED).
func DialGDB(path string, check func(*net.UnixConn) error) (*GDB, error) {
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("gdbstub %s: %w", path, err)
	}
	uc := c.(*net.UnixConn)
	if check != nil {
		if err := check(uc); err != nil {
			uc.Close()
			return nil, err
		}
	}
	return &GDB{c: uc, r: bufio.NewReader(uc), timeout: 30 * time.Second}, nil
}

// Close drops the connection without a detach packet (see GDB).
func (g *GDB) Close() error { return g.c.Close() }

func (g *GDB) deadline(d time.Duration) { g.c.SetDeadline(time.Now().Add(d)) }

func (g *GDB) writePacket(payload string) error {
	var sum byte
	for i := 0; i < len(payload); i++ {
		sum += payload[i]
	}
	_, err := fmt.Fprintf(g.c, "$%s#%02x", payload, sum)
	return err
}

// readAck reads the stub's ack for our packet, acknowledging and skipping any unsolicited
// stop notification that arrives first. It reports whether the stub asked for a resend.
func (g *GDB) readAck() (resend bool, err error) {
	for {
		b, err := g.r.ReadByte()
		if err != nil {
			return false, err
		}
		switch b {
		case '+':
			return false, nil
		case '-':
			return true, nil
		case '$':
			g.r.UnreadByte()
			if _, err := g.reply(); err != nil {
				return false, err
			}
		default:
			return false, fmt.Errorf("gdbstub: unexpected byte %q instead of an ack", b)
		}
	}
}

// send sends one packet and returns the stub's reply.
func (g *GDB) send(payload string) (string, error) {
	g.deadline(g.timeout)
	for try := 0; try < 3; try++ {
		if err := g.writePacket(payload); err != nil {
			return "", err
		}
		resend, err := g.readAck()
		if err != nil {
			return "", err
		}
		if !resend {
			return g.reply()
		}
	}
	return "", errors.New("gdbstub: packet refused three times")
}

// reply reads one packet from the stub, checks its checksum and acknowledges it.
func (g *GDB) reply() (string, error) {
	for {
		b, err := g.r.ReadByte()
		if err != nil {
			return "", err
		}
		if b == '$' {
			break
		}
	}
	data, err := g.r.ReadBytes('#')
	if err != nil {
		return "", err
	}
	data = data[:len(data)-1]
	var cs [2]byte
	for i := range cs {
		if cs[i], err = g.r.ReadByte(); err != nil {
			return "", err
		}
	}
	var sum byte
	for _, x := range data {
		sum += x
	}
	if fmt.Sprintf("%02x", sum) != string(cs[:]) {
		g.c.Write([]byte("-"))
		return "", errors.New("gdbstub: reply checksum mismatch")
	}
	g.c.Write([]byte("+"))
	return string(data), nil
}

func (g *GDB) expectOK(payload, what string) error {
	r, err := g.send(payload)
	if err != nil {
		return fmt.Errorf("gdbstub %s: %w", what, err)
	}
	if r != "OK" {
		return fmt.Errorf("gdbstub %s: reply %q", what, r)
	}
	return nil
}

// SetPhysMode switches memory accesses to guest-physical (true) or virtual (false) addresses.
func (g *GDB) SetPhysMode(on bool) error {
	if on {
		return g.expectOK("Qqemu.PhyMemMode:1", "physical memory mode")
	}
	return g.expectOK("Qqemu.PhyMemMode:0", "virtual memory mode")
}

// ReadMemory reads n bytes at addr (guest-physical after SetPhysMode(true)).
func (g *GDB) ReadMemory(addr uint64, n int) ([]byte, error) {
	out := make([]byte, 0, n)
	for off := 0; off < n; off += gdbChunk {
		l := min(gdbChunk, n-off)
		a := addr + uint64(off)
		r, err := g.send(fmt.Sprintf("m%x,%x", a, l))
		if err != nil {
			return nil, fmt.Errorf("gdbstub read at 0x%x: %w", a, err)
		}
		b, err := hex.DecodeString(r)
		if err != nil || len(b) != l {
			return nil, fmt.Errorf("gdbstub read at 0x%x: reply %.40q", a, r)
		}
		out = append(out, b...)
	}
	return out, nil
}

// WriteMemory writes data at addr (no read-back; ReadMemory checks).
func (g *GDB) WriteMemory(addr uint64, data []byte) error {
	for off := 0; off < len(data); off += gdbChunk {
		part := data[off:min(off+gdbChunk, len(data))]
		a := addr + uint64(off)
		if err := g.expectOK(fmt.Sprintf("M%x,%x:%s", a, len(part), hex.EncodeToString(part)), fmt.Sprintf("write at 0x%x", a)); err != nil {
			return err
		}
	}
	return nil
}

// InsertBreakpoint sets a software breakpoint at the (identity-mapped) address pc.
func (g *GDB) InsertBreakpoint(pc uint64) error {
	return g.expectOK(fmt.Sprintf("Z0,%x,1", pc), fmt.Sprintf("breakpoint at 0x%x", pc))
}

// RemoveBreakpoint removes the breakpoint at pc.
func (g *GDB) RemoveBreakpoint(pc uint64) error {
	return g.expectOK(fmt.Sprintf("z0,%x,1", pc), fmt.Sprintf("remove breakpoint at 0x%x", pc))
}

// Continue resumes the guest ("c"); the stub answers only at the next stop (WaitStop).
func (g *GDB) Continue() error {
	g.deadline(g.timeout)
	if err := g.writePacket("c"); err != nil {
		return err
	}
	resend, err := g.readAck()
	if err != nil {
		return fmt.Errorf("gdbstub continue: %w", err)
	}
	if resend {
		return errors.New("gdbstub continue: packet refused")
	}
	return nil
}

// WaitStop waits at most timeout for the stub's stop reply (e.g. "T05thread:01;" when a
// breakpoint was hit) and returns it.
func (g *GDB) WaitStop(timeout time.Duration) (string, error) {
	g.deadline(timeout)
	r, err := g.reply()
	if err != nil {
		return "", fmt.Errorf("gdbstub: waiting for a stop: %w", err)
	}
	if r == "" || (r[0] != 'T' && r[0] != 'S') {
		return r, fmt.Errorf("gdbstub: %q is not a stop reply", r)
	}
	return r, nil
}

// registers reads the target description once: QEMU's stub answers p/P only after that.
func (g *GDB) registers() error {
	if g.regsOK {
		return nil
	}
	r, err := g.send("qXfer:features:read:target.xml:0,ffb")
	if err != nil {
		return fmt.Errorf("gdbstub target description: %w", err)
	}
	if r == "" {
		return errors.New("gdbstub has no target description")
	}
	g.regsOK = true
	return nil
}

// Register reads register n of the stopped vCPU (raw target byte order).
func (g *GDB) Register(n int) ([]byte, error) {
	if err := g.registers(); err != nil {
		return nil, err
	}
	r, err := g.send(fmt.Sprintf("p%x", n))
	if err != nil {
		return nil, fmt.Errorf("gdbstub register %d: %w", n, err)
	}
	b, err := hex.DecodeString(r)
	if err != nil || len(b) == 0 {
		return nil, fmt.Errorf("gdbstub register %d: reply %.40q", n, r)
	}
	return b, nil
}

// SetRegister writes register n of the stopped vCPU (raw target byte order).
func (g *GDB) SetRegister(n int, v []byte) error {
	if err := g.registers(); err != nil {
		return err
	}
	return g.expectOK(fmt.Sprintf("P%x=%s", n, hex.EncodeToString(v)), fmt.Sprintf("set register %d", n))
}
