package initramfs

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/u-root/u-root/pkg/cpio"

	"github.com/sevshim/sevshim/pkg/guest/agent"
	"github.com/sevshim/sevshim/tests/harness/repo"
)

// guestKernel returns the kernel package make images unpacked (build/guest/kernel).
func guestKernel(t *testing.T) string {
	t.Helper()
	b, err := repo.BuildDir()
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(b, "guest", "kernel")
	if _, err := KernelModuleDir(root); err != nil {
		repo.SkipOrFail(t, fmt.Errorf("%v: run make images first", err))
	}
	return root
}

// buildAgent builds the guest agent as make images does, into dir.
func buildAgent(t *testing.T, dir string) []byte {
	t.Helper()
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "agent")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -buildid=", "-o", out, "./guest/agent")
	cmd.Dir, cmd.Env = root, append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./guest/agent: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestReproducible: the agent built twice and the initramfs written twice from it and the
// kernel's modules are the same bytes.
func TestReproducible(t *testing.T) {
	dir, err := KernelModuleDir(guestKernel(t))
	if err != nil {
		t.Fatal(err)
	}
	var out [2][]byte
	for i := range out {
		agent := buildAgent(t, t.TempDir())
		mods, err := ResolveModules(dir, AgentModules...)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := Write(&b, agent, mods); err != nil {
			t.Fatal(err)
		}
		out[i] = b.Bytes()
	}
	if !bytes.Equal(out[0], out[1]) {
		t.Fatalf("two builds differ (%d and %d bytes)", len(out[0]), len(out[1]))
	}
	t.Logf("initramfs %d bytes", len(out[0]))
}

// TestResolveModules: the virtio-serial driver comes with the virtio core and PCI transport,
// dependencies first.
func TestResolveModules(t *testing.T) {
	dir, err := KernelModuleDir(guestKernel(t))
	if err != nil {
		t.Fatal(err)
	}
	mods, err := ResolveModules(dir, AgentModules...)
	if err != nil {
		t.Fatal(err)
	}
	pos := map[string]int{}
	var names []string
	for i, m := range mods {
		pos[m.Name] = i
		names = append(names, m.Name)
	}
	for _, n := range []string{"virtio", "virtio_ring", "virtio_pci", "virtio_console"} {
		if _, ok := pos[n]; !ok {
			t.Errorf("modules %v lack %s", names, n)
		}
	}
	if pos["virtio_console"] != len(mods)-1 || pos["virtio"] > pos["virtio_pci"] {
		t.Errorf("load order %v: dependencies must come first", names)
	}
	if _, err := ResolveModules(dir, "no_such_module"); err == nil {
		t.Errorf("a missing module resolved")
	}
}

// TestWriteContents: the archive holds /init (executable), /dev/console, the mount points,
// the modules and their load list, with no times or owners.
func TestWriteContents(t *testing.T) {
	var b bytes.Buffer
	mods := []Module{{Name: "a", Data: []byte("A")}, {Name: "b", Data: []byte("BB")}}
	if err := Write(&b, []byte("agent"), mods); err != nil {
		t.Fatal(err)
	}
	recs, err := cpio.ReadAllRecords(cpio.Newc.Reader(bytes.NewReader(b.Bytes())))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]cpio.Record{}
	for _, r := range recs {
		got[r.Name] = r
		if r.MTime != 0 || r.UID != 0 || r.GID != 0 {
			t.Errorf("%s: mtime %d uid %d gid %d, want zeros", r.Name, r.MTime, r.UID, r.GID)
		}
	}
	content := func(n string) string {
		r, ok := got[n]
		if !ok {
			t.Fatalf("no %s in %v", n, recs)
		}
		c, _ := io.ReadAll(io.NewSectionReader(r, 0, int64(r.FileSize)))
		return string(c)
	}
	if c := content("init"); c != "agent" || got["init"].Mode != cpio.S_IFREG|0o755 {
		t.Errorf("init: %q mode %o", c, got["init"].Mode)
	}
	if r := got["dev/console"]; r.Mode != cpio.S_IFCHR|0o600 || r.Rmajor != 5 || r.Rminor != 1 {
		t.Errorf("dev/console: %+v", r.Info)
	}
	for _, d := range []string{"dev", "proc", "sys", ModuleDir} {
		if got[d].Mode&cpio.S_IFMT != cpio.S_IFDIR {
			t.Errorf("%s is not a directory", d)
		}
	}
	if c := content(ModuleList); c != "/lib/modules/a.ko\n/lib/modules/b.ko\n" {
		t.Errorf("module list %q", c)
	}
	if c := content(ModuleDir + "/b.ko"); c != "BB" {
		t.Errorf("b.ko: %q", c)
	}
	if agent.ModuleList != "/"+ModuleList {
		t.Errorf("the agent reads %s, the archive has /%s", agent.ModuleList, ModuleList)
	}
	if !strings.HasPrefix(ModuleList, "lib/") {
		t.Errorf("ModuleList %q must be relative to the archive root", ModuleList)
	}
}
