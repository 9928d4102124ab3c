package agent

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// mounts are the file systems the agent needs: the TPM and port device nodes (devtmpfs), the
// port names (sysfs), the kernel command line (proc) and the secret (securityfs).
var mounts = []struct{ fs, dir string }{
	{"devtmpfs", "/dev"}, {"proc", "/proc"}, {"sysfs", "/sys"}, {"securityfs", "/sys/kernel/security"},
}

// Mount mounts what the agent needs (an already mounted one is fine).
func Mount() error {
	for _, m := range mounts {
		if err := os.MkdirAll(m.dir, 0o755); err != nil {
			return err
		}
		if err := unix.Mount(m.fs, m.dir, m.fs, 0, ""); err != nil && !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("agent: mount %s on %s: %w", m.fs, m.dir, err)
		}
	}
	return nil
}

// ModuleList is the initramfs file naming the kernel modules to load, in order, one path a
// line (written by pkg/guest/initramfs).
const ModuleList = "/lib/modules/load"

// LoadModules loads the modules ModuleList names (none if it does not exist); a module the
// kernel already has is fine.
func LoadModules() error {
	b, err := os.ReadFile(ModuleList)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, p := range strings.Fields(string(b)) {
		f, err := os.Open(p)
		if err != nil {
			return fmt.Errorf("agent: module %s: %w", p, err)
		}
		err = unix.FinitModule(int(f.Fd()), "", 0)
		f.Close()
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("agent: loading %s: %w", p, err)
		}
	}
	return nil
}

// OpenPort finds the virtio-serial port named name and opens its device, waiting up to
// timeout for the driver to create it.
func OpenPort(name string, timeout time.Duration) (io.ReadWriteCloser, error) {
	deadline := time.Now().Add(timeout)
	for {
		names, _ := filepath.Glob("/sys/class/virtio-ports/*/name")
		for _, n := range names {
			b, err := os.ReadFile(n)
			if err != nil || string(bytes.TrimSpace(b)) != name {
				continue
			}
			f, err := os.OpenFile("/dev/"+filepath.Base(filepath.Dir(n)), os.O_RDWR, 0)
			if err != nil {
				return nil, fmt.Errorf("agent: port %s: %w", name, err)
			}
			return &port{f}, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("agent: no virtio-serial port named %s after %v (QEMU: -device virtserialport,name=%s)", name, timeout, name)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// port is a virtio-serial port as one stream across host connections: while no host is
// connected a read returns end of file at once (Linux virtio_console), so Read waits and
// tries again instead.
type port struct{ f *os.File }

func (p *port) Read(b []byte) (int, error) {
	for {
		n, err := p.f.Read(b)
		if n > 0 || (err != nil && err != io.EOF) {
			return n, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (p *port) Write(b []byte) (int, error) { return p.f.Write(b) }
func (p *port) Close() error                { return p.f.Close() }

// WaitFromCmdline returns the duration of sevshim_agent_wait= on the kernel command line
// (/proc/cmdline), or def.
func WaitFromCmdline(def time.Duration) time.Duration {
	b, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return def
	}
	for _, f := range strings.Fields(string(b)) {
		if v, ok := strings.CutPrefix(f, "sevshim_agent_wait="); ok {
			if d, err := time.ParseDuration(v); err == nil && d > 0 {
				return d
			}
		}
	}
	return def
}

// PowerOff ends the guest (the agent is PID 1: returning would panic the kernel).
func PowerOff() {
	unix.Sync()
	unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	for {
		time.Sleep(time.Hour)
	}
}
