package host

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"time"
)

// gdbConn speaks just enough of GDB's remote serial protocol to write guest-physical
// memory of a QEMU started with -S: QEMU 7.2 has no QMP command that writes guest memory,
// and its gdbstub in physical-memory mode (`Qqemu.PhyMemMode:1`) does it before the first
// guest instruction (notes/qemu-migration-stream.md section 5). Connecting a gdbstub client
// stops the VM only if it runs; a prelaunch VM stays in prelaunch. We never send 'D'
// (detach), because QEMU resumes the VM on detach.
type gdbConn struct {
	c net.Conn
	r *bufio.Reader
}

// dialGDB connects to the gdbstub socket and checks that QEMU (pid) listens on it.
func dialGDB(path string, pid int) (*gdbConn, error) {
	c, err := dialPeer(context.Background(), path, pid, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("gdbstub %s: %w", path, err)
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return &gdbConn{c: c, r: bufio.NewReader(c)}, nil
}

func (g *gdbConn) Close() error { return g.c.Close() }

func (g *gdbConn) send(payload string) (string, error) {
	var sum byte
	for i := 0; i < len(payload); i++ {
		sum += payload[i]
	}
	pkt := fmt.Sprintf("$%s#%02x", payload, sum)
	for try := 0; try < 3; try++ {
		if _, err := g.c.Write([]byte(pkt)); err != nil {
			return "", err
		}
		ack, err := g.r.ReadByte()
		for err == nil && ack == '$' {
			// An unsolicited stop notification (a running VM stops when a client
			// connects): acknowledge it and keep waiting for our ack.
			g.r.UnreadByte()
			if _, err = g.reply(); err == nil {
				ack, err = g.r.ReadByte()
			}
		}
		if err != nil {
			return "", err
		}
		if ack == '+' {
			return g.reply()
		}
		if ack != '-' {
			return "", fmt.Errorf("gdbstub: unexpected byte %q instead of an ack", ack)
		}
	}
	return "", errors.New("gdbstub: packet refused three times")
}

func (g *gdbConn) reply() (string, error) {
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
	cs := make([]byte, 2)
	if _, err := g.r.Read(cs[:1]); err != nil {
		return "", err
	}
	if _, err := g.r.Read(cs[1:]); err != nil {
		return "", err
	}
	var sum byte
	for _, x := range data {
		sum += x
	}
	if fmt.Sprintf("%02x", sum) != string(cs) {
		g.c.Write([]byte("-"))
		return "", errors.New("gdbstub: reply checksum mismatch")
	}
	g.c.Write([]byte("+"))
	return string(data), nil
}

func (g *gdbConn) expectOK(payload, what string) error {
	r, err := g.send(payload)
	if err != nil {
		return fmt.Errorf("gdbstub %s: %w", what, err)
	}
	if r != "OK" {
		return fmt.Errorf("gdbstub %s: reply %q", what, r)
	}
	return nil
}

// WriteGuestPhys writes data at guest-physical addr of the QEMU whose gdbstub listens on
// the unix socket sock, and reads it back to check. hostctl uses it for the launch secret;
// benchmarks use it to dirty guest RAM.
// sock must be the gdb.sock of a work directory: its QEMU (qemu.pid) must be the listener.
func WriteGuestPhys(sock string, addr uint64, data []byte) error {
	pid := readPid(filepath.Dir(sock))
	if pid == 0 {
		return fmt.Errorf("%s: no running QEMU in %s", sock, filepath.Dir(sock))
	}
	return writePhys(sock, pid, addr, data)
}

// writePhys writes data at guest-physical addr and reads it back to check.
func writePhys(sock string, pid int, addr uint64, data []byte) error {
	g, err := dialGDB(sock, pid)
	if err != nil {
		return err
	}
	defer g.Close()
	if err := g.expectOK("Qqemu.PhyMemMode:1", "physical memory mode"); err != nil {
		return err
	}
	const chunk = 1024 // QEMU's packet buffer is 4 KiB; hex doubles the size
	for off := 0; off < len(data); off += chunk {
		part := data[off:min(off+chunk, len(data))]
		a := addr + uint64(off)
		if err := g.expectOK(fmt.Sprintf("M%x,%x:%s", a, len(part), hex.EncodeToString(part)), fmt.Sprintf("write at 0x%x", a)); err != nil {
			return err
		}
		r, err := g.send(fmt.Sprintf("m%x,%x", a, len(part)))
		if err != nil {
			return fmt.Errorf("gdbstub read-back at 0x%x: %w", a, err)
		}
		back, err := hex.DecodeString(r)
		if err != nil || !bytes.Equal(back, part) {
			return fmt.Errorf("gdbstub read-back at 0x%x does not match what was written", a)
		}
		for i := range back {
			back[i] = 0
		}
	}
	return g.expectOK("Qqemu.PhyMemMode:0", "virtual memory mode")
}

// GDB is a client of QEMU's gdbstub for tests that must stop the guest at an exact
// instruction (a breakpoint, GDB remote serial protocol packets Z0/z0/c) and read or write
// guest-physical memory while it is stopped. Connect while the VM is paused (e.g. right
// after an incoming migration loaded) so no instruction runs before the breakpoint is set.
type GDB struct{ g *gdbConn }

// DialGDB connects to the gdbstub on the unix socket sock, checks that QEMU (pid) is the
// process listening on it, and switches memory accesses to guest-physical addresses
// (Qqemu.PhyMemMode:1).
func DialGDB(sock string, pid int) (*GDB, error) {
	g, err := dialGDB(sock, pid)
	if err != nil {
		return nil, err
	}
	if err := g.expectOK("Qqemu.PhyMemMode:1", "physical memory mode"); err != nil {
		g.Close()
		return nil, err
	}
	return &GDB{g: g}, nil
}

// Close drops the connection (without a detach packet, see gdbConn).
func (d *GDB) Close() error { return d.g.Close() }

func (d *GDB) deadline(t time.Duration) { d.g.c.SetDeadline(time.Now().Add(t)) }

// InsertBreakpoint sets a breakpoint at the (identity-mapped) address pc.
func (d *GDB) InsertBreakpoint(pc uint64) error {
	d.deadline(30 * time.Second)
	return d.g.expectOK(fmt.Sprintf("Z0,%x,1", pc), fmt.Sprintf("breakpoint at 0x%x", pc))
}

// RemoveBreakpoint removes the breakpoint at pc.
func (d *GDB) RemoveBreakpoint(pc uint64) error {
	d.deadline(30 * time.Second)
	return d.g.expectOK(fmt.Sprintf("z0,%x,1", pc), fmt.Sprintf("remove breakpoint at 0x%x", pc))
}

// WaitStop waits at most timeout for the stub's stop reply (e.g. "T05thread:01;" when a
// breakpoint was hit) and returns it.
func (d *GDB) WaitStop(timeout time.Duration) (string, error) {
	d.deadline(timeout)
	r, err := d.g.reply()
	if err != nil {
		return "", fmt.Errorf("gdbstub: waiting for a stop: %w", err)
	}
	if r == "" || (r[0] != 'T' && r[0] != 'S') {
		return r, fmt.Errorf("gdbstub: %q is not a stop reply", r)
	}
	return r, nil
}

// Continue resumes the guest ("c"); the stub answers only at the next stop (WaitStop).
func (d *GDB) Continue() error {
	d.deadline(30 * time.Second)
	var sum byte
	sum = 'c'
	if _, err := d.g.c.Write([]byte(fmt.Sprintf("$c#%02x", sum))); err != nil {
		return err
	}
	ack, err := d.g.r.ReadByte()
	if err != nil {
		return fmt.Errorf("gdbstub continue: %w", err)
	}
	if ack != '+' {
		return fmt.Errorf("gdbstub continue: got %q instead of an ack", ack)
	}
	return nil
}

const gdbChunk = 1900 // hex doubles it; stays below QEMU's 4 KiB packet buffer

// ReadPhys reads n bytes of guest-physical memory at addr.
func (d *GDB) ReadPhys(addr uint64, n int) ([]byte, error) {
	out := make([]byte, 0, n)
	for off := 0; off < n; off += gdbChunk {
		l := min(gdbChunk, n-off)
		d.deadline(30 * time.Second)
		r, err := d.g.send(fmt.Sprintf("m%x,%x", addr+uint64(off), l))
		if err != nil {
			return nil, fmt.Errorf("gdbstub read at 0x%x: %w", addr+uint64(off), err)
		}
		b, err := hex.DecodeString(r)
		if err != nil || len(b) != l {
			return nil, fmt.Errorf("gdbstub read at 0x%x: reply %.40q", addr+uint64(off), r)
		}
		out = append(out, b...)
	}
	return out, nil
}

// WritePhys writes data at guest-physical addr (no read-back; use ReadPhys to check).
func (d *GDB) WritePhys(addr uint64, data []byte) error {
	for off := 0; off < len(data); off += gdbChunk {
		part := data[off:min(off+gdbChunk, len(data))]
		a := addr + uint64(off)
		d.deadline(30 * time.Second)
		if err := d.g.expectOK(fmt.Sprintf("M%x,%x:%s", a, len(part), hex.EncodeToString(part)), fmt.Sprintf("write at 0x%x", a)); err != nil {
			return err
		}
	}
	return nil
}
