package harness

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sevshim/sevshim/pkg/format/console"
	"github.com/sevshim/sevshim/pkg/vmm/qemu"
	"github.com/sevshim/sevshim/tests/repo"
)

// Chain is one shim chain run straight from QEMU A into QEMU B over a unix socket (no state
// file): A boots the shim to READY, B receives it with the bundle's fw_cfg files and is woken.
type Chain struct {
	Shim            string   // the shim image (pflash0 of A and B, snapshot=on)
	Manifest, Image string   // the bundle parts handed to B (empty: left out)
	MemoryMiB       int      // guest RAM (0: the qemu default)
	ExtraA, ExtraB  []string // extra QEMU arguments (a secret loader for A, TPM devices, ...)
}

// StartChain runs c and returns B, resumed and sent the NMI; A is gone. Each side gets its
// own copy of Debian's OVMF var store (B's copy also goes to the shim as the vars file). B is
// closed at the end of the test, with its consoles logged if the test failed.
func StartChain(t testing.TB, c Chain) *qemu.VM {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	varsCopy := func(name string) string {
		b, err := os.ReadFile(repo.OVMFVars())
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	varsA, varsB := varsCopy("vars-a.fd"), varsCopy("vars-b.fd")
	a, err := qemu.Start(ctx, qemu.Config{
		MemoryMiB:      c.MemoryMiB,
		Pflash:         []qemu.Pflash{{Unit: 0, File: c.Shim, Snapshot: true}, {Unit: 1, File: varsA, Snapshot: true}},
		Debugcon:       true,
		RebootShutdown: true,
		ExtraArgs:      c.ExtraA,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := a.Debugcon().WaitLine(ctx, console.ReadyRE, 60*time.Second); err != nil {
		t.Fatalf("A: %v\n%s\nstderr: %s", err, a.Debugcon().Text(), a.StderrSummary())
	}
	// READY is printed just before the shim arms its wait; give it a moment to reach hlt.
	time.Sleep(300 * time.Millisecond)
	sock := filepath.Join(dir, "mig.sock")
	b, err := qemu.Start(ctx, qemu.Config{
		MemoryMiB:      c.MemoryMiB,
		Pflash:         []qemu.Pflash{{Unit: 0, File: c.Shim, Snapshot: true}, {Unit: 1, File: varsB}},
		FwCfg:          qemu.ShimFiles(c.Manifest, c.Image, varsB),
		Debugcon:       true,
		RebootShutdown: true,
		Incoming:       "unix:" + sock,
		ExtraArgs:      c.ExtraB,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		b.Close()
		if t.Failed() {
			t.Logf("B stderr: %s\ndebugcon:\n%s\nserial (tail):\n%s", b.StderrSummary(), b.Debugcon().Text(), Tail(b.Serial().Text(), 2000))
		}
	})
	if err := a.SendTo(ctx, sock); err != nil {
		t.Fatal(err)
	}
	if _, err := b.WakeIncoming(ctx, 60*time.Second); err != nil {
		t.Fatalf("B: %v", err)
	}
	return b
}

// Tail returns the last n bytes of s, marked with "..." when cut.
func Tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
