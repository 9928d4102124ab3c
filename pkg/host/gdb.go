package host

import (
	"bytes"
	"fmt"
	"net"
	"path/filepath"

	"github.com/sevshim/sevshim/pkg/vmm/qemu"
)

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

// writePhys writes data at guest-physical addr through QEMU's gdbstub (QEMU 7.2 has no QMP
// command that writes guest memory) and reads it back to check; the stub must be served by
// QEMU pid (checkPeer). The read-back buffer is zeroed after each compare: data may be the
// plaintext launch secret.
func writePhys(sock string, pid int, addr uint64, data []byte) error {
	g, err := qemu.DialGDB(sock, func(c *net.UnixConn) error { return checkPeer(c, sock, pid) })
	if err != nil {
		return err
	}
	defer g.Close()
	if err := g.SetPhysMode(true); err != nil {
		return err
	}
	const chunk = 1024
	for off := 0; off < len(data); off += chunk {
		part := data[off:min(off+chunk, len(data))]
		a := addr + uint64(off)
		if err := g.WriteMemory(a, part); err != nil {
			return err
		}
		back, err := g.ReadMemory(a, len(part))
		if err != nil {
			return fmt.Errorf("gdbstub read-back at 0x%x: %w", a, err)
		}
		same := bytes.Equal(back, part)
		clear(back)
		if !same {
			return fmt.Errorf("gdbstub read-back at 0x%x does not match what was written", a)
		}
	}
	return g.SetPhysMode(false)
}
