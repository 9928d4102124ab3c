package harness

import (
	"context"
	"crypto/rand"
	"fmt"
	"github.com/sevshim/sevshim/pkg/format/console"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sevshim/sevshim/pkg/vmm/qemu"
	"github.com/sevshim/sevshim/tests/harness/repo"
)

// Helpers of the chain tests that look into guest RAM (tests/secret, tests/receipt) and boot
// the project's test BIOS.

// TestBIOS returns build/testbios/testbios.fd, building it (make -C tests/testbios) if needed.
func TestBIOS() (string, error) {
	root, err := repo.Root()
	if err != nil {
		return "", err
	}
	p := filepath.Join(root, "build", "testbios", "testbios.fd")
	if repo.RequireFiles(p) == nil {
		return p, nil
	}
	out, err := exec.Command("make", "-s", "-C", filepath.Join(root, "tests", "testbios")).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("building the test BIOS (make -C tests/testbios): %v\n%s", err, out)
	}
	return p, repo.RequireFiles(p)
}

// Memfd is an anonymous in-memory file (closed when the test ends); Path names it for another
// process of this user, so a secret or a RAM dump never touches a disk.
type Memfd struct {
	f    *os.File
	Path string
}

// NewMemfd makes a Memfd holding content.
func NewMemfd(t testing.TB, name string, content []byte) *Memfd {
	t.Helper()
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC)
	if err != nil {
		t.Fatalf("memfd_create: %v", err)
	}
	m := &Memfd{f: os.NewFile(uintptr(fd), name), Path: fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), fd)}
	t.Cleanup(func() { m.f.Close() })
	if len(content) > 0 {
		if _, err := m.f.Write(content); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

// ReadAll reads the whole memfd (what another process wrote through Path).
func (m *Memfd) ReadAll(t testing.TB) []byte {
	t.Helper()
	st, err := m.f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, st.Size())
	if _, err := m.f.ReadAt(b, 0); err != nil && len(b) > 0 {
		t.Fatal(err)
	}
	return b
}

// DumpRAM returns the first ramMiB MiB of the VM's guest-physical memory (QMP pmemsave into a
// memfd).
func DumpRAM(t testing.TB, vm *qemu.VM, ramMiB int) []byte {
	t.Helper()
	m := NewMemfd(t, "sevshim-test-ramdump", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := vm.MemSave(ctx, 0, uint64(ramMiB)<<20, m.Path); err != nil {
		t.Fatalf("pmemsave: %v", err)
	}
	b := m.ReadAll(t)
	if len(b) != ramMiB<<20 {
		t.Fatalf("RAM dump is %d bytes, want %d", len(b), ramMiB<<20)
	}
	return b
}

// RandBytes returns n random bytes.
func RandBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// SecretLoader returns the QEMU arguments of A that place secret at gpa (`-device loader`
// reading a memfd: the secret never touches a disk), none for a nil secret.
func SecretLoader(t testing.TB, secret []byte, gpa uint64) []string {
	t.Helper()
	if secret == nil {
		return nil
	}
	m := NewMemfd(t, "sevshim-test-secret", secret)
	return []string{"-device", fmt.Sprintf("loader,file=%s,addr=%#x,force-raw=on", m.Path, gpa)}
}

// AssertNoBIOSRan checks a refused run after a grace period: debugcon shows no FLASHED,
// HANDOFF, SECRET or test BIOS line, COM1 nothing but shim lines (no BIOS printed).
func AssertNoBIOSRan(t testing.TB, vm *qemu.VM) {
	t.Helper()
	time.Sleep(2 * time.Second) // anything still running would show now
	for _, l := range vm.Debugcon().Lines() {
		step := shimWord(l.Text)
		if step == "FLASHED" || step == "HANDOFF" || step == "SECRET" || strings.HasPrefix(l.Text, "TESTBIOS") {
			t.Errorf("refused run shows %q", l.Text)
		}
	}
	for _, l := range vm.Serial().Lines() {
		if txt := strings.TrimSpace(l.Text); txt != "" && !strings.HasPrefix(txt, console.Prefix) {
			t.Errorf("COM1 shows non-shim output (a BIOS ran?): %q", txt)
		}
	}
}
