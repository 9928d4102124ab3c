package libvirt

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sevshim/sevshim/pkg/vmm"
	lv "github.com/sevshim/sevshim/pkg/vmm/libvirt"
	"github.com/sevshim/sevshim/tests/harness"
	"github.com/sevshim/sevshim/tests/harness/repo"
)

// A stream whose RAM differs from the domain's: the restore fails with QEMU's own words
// (the pc.ram size) and leaves no domain. receive cannot produce this (its domain is made
// from the package's shape), so the backend gets a real QEMU A's READY state (256 MiB)
// for a 512 MiB domain.
func TestRAMMismatch(t *testing.T) {
	w := getWorld(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	shim := filepath.Join(w.cli.Images, "shim-demo.fd")
	ready, err := harness.SaveReady(ctx, harness.ASpec{Shim: shim, MemoryMiB: 256, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	wb := filepath.Join(dir, "B")
	if err := os.Mkdir(wb, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		lv.New(lv.Config{URI: w.uri}).Stop(context.Background(), wb)
		w.assertNothingLeft(t)
	})
	b := lv.New(lv.Config{URI: w.uri, Name: "t-ram"})
	vm, err := b.Start(ctx, wb, vmm.Spec{Shape: vmm.Shape{Machine: "q35", MemoryMiB: 512, CPUs: 1},
		Code: vmm.Flash{Path: shim}, Vars: vmm.Flash{Path: repo.OVMFVars()}, Incoming: true})
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Close()
	f, err := os.Open(ready.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = vm.MigrateIn(ctx, f)
	if err == nil {
		t.Fatal("a 256 MiB stream loaded into a 512 MiB domain")
	}
	if !strings.Contains(err.Error(), "pc.ram") || !strings.Contains(err.Error(), "0x10000000") {
		t.Fatalf("want QEMU's pc.ram size mismatch (0x10000000 vs 0x20000000) in the error, got: %v", err)
	}
	t.Logf("restore refused: %v", err)
	if d := sevshimDomains(t, w.uri); len(d) != 0 {
		t.Fatalf("the failed restore left domains: %v", d)
	}
	if vm.Alive() {
		t.Fatal("the VM of a failed restore reports alive")
	}
	if err := vm.Kill(); err != nil {
		t.Fatal(err)
	}
}
