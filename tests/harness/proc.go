package harness

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Process checks of the tests that drive hostctl: a hostctl work directory holds qemu.pid
// (QEMU, whose QMP socket is qmp.sock there) and swtpm.pid (swtpm, control socket swtpm.sock).

// PidOf reads the pid file dir/file (0 if absent or malformed).
func PidOf(dir, file string) int {
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0
	}
	return pid
}

// ProcAlive reports whether pid runs and is not a zombie.
func ProcAlive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	i := bytes.LastIndexByte(st, ')')
	return !(i > 0 && i+2 < len(st) && st[i+2] == 'Z')
}

// CmdlineHas reports whether the command line of pid contains s (the "really our process"
// check before a signal).
func CmdlineHas(pid int, s string) bool {
	cl, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err == nil && bytes.Contains(cl, []byte(s))
}

// workSockets names the socket by which a process of a work directory is recognised.
var workSockets = map[string]string{"qemu": "qmp.sock", "swtpm": "swtpm.sock"}

// WorkPid returns the pid of the work directory's process prog ("qemu" or "swtpm") if its
// pid file names a process that is alive and really that one (its command line names the
// directory's socket), 0 otherwise: the check before a signal or an "it is gone" verdict.
func WorkPid(dir, prog string) int {
	pid := PidOf(dir, prog+".pid")
	if pid > 1 && ProcAlive(pid) && IsProcOf(pid, dir, prog) {
		return pid
	}
	return 0
}

// IsProcOf reports whether pid is the process prog ("qemu" or "swtpm") of the work directory
// dir (alive or not).
func IsProcOf(pid int, dir, prog string) bool {
	return CmdlineHas(pid, filepath.Join(dir, workSockets[prog]))
}
