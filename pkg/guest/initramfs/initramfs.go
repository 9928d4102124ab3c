// Package initramfs writes the guest's initramfs: a newc cpio (u-root's pkg/cpio) holding the
// guest agent as /init, the /dev/console node the kernel opens for it, and the kernel modules
// the agent loads (the virtio-serial driver and what it depends on, in load order). Same
// inputs, same bytes: every record's metadata is fixed (no times, owners or host inodes).
package initramfs

import (
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/u-root/u-root/pkg/cpio"
)

// ModuleDir is where the modules go in the archive, and ModuleList the file naming them in
// load order (the agent reads it: pkg/guest/agent.ModuleList).
const (
	ModuleDir  = "lib/modules"
	ModuleList = ModuleDir + "/load"
)

// Module is one kernel module: its name (e.g. "virtio_console") and its file.
type Module struct {
	Name string
	Data []byte
}

// AgentModules are the modules the agent needs from Debian's cloud kernel, which builds the
// virtio core, its PCI transport and the console driver as modules.
var AgentModules = []string{"virtio_pci", "virtio_console"}

// Write writes the archive of init and modules (already in load order) to w.
func Write(w io.Writer, init []byte, modules []Module) error {
	recs := []cpio.Record{
		cpio.Directory("dev", 0o755),
		cpio.CharDev("dev/console", 0o600, 5, 1),
		cpio.Directory("lib", 0o755),
		cpio.Directory(ModuleDir, 0o755),
		cpio.Directory("proc", 0o755),
		cpio.Directory("sys", 0o755),
		cpio.StaticRecord(init, cpio.Info{Name: "init", Mode: cpio.S_IFREG | 0o755}),
	}
	var list strings.Builder
	for _, m := range modules {
		p := ModuleDir + "/" + m.Name + ".ko"
		recs = append(recs, cpio.StaticRecord(m.Data, cpio.Info{Name: p, Mode: cpio.S_IFREG | 0o644}))
		fmt.Fprintf(&list, "/%s\n", p)
	}
	recs = append(recs, cpio.StaticFile(ModuleList, list.String(), 0o644))
	rw := cpio.Newc.Writer(w)
	for i, r := range recs {
		r = cpio.MakeReproducible(r)
		r.Ino, r.NLink = uint64(i+1), 1
		if r.Mode&cpio.S_IFMT == cpio.S_IFDIR {
			r.NLink = 2
		}
		if err := rw.WriteRecord(r); err != nil {
			return fmt.Errorf("initramfs: %s: %w", r.Name, err)
		}
	}
	return cpio.WriteTrailer(rw)
}

// ResolveModules finds each named module under the kernel's module tree dir
// (lib/modules/VERSION) and returns it with every module it depends on (its .modinfo
// "depends=" list), dependencies first, each once.
func ResolveModules(dir string, names ...string) ([]Module, error) {
	files := map[string]string{}
	err := filepath.WalkDir(filepath.Join(dir, "kernel"), func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if n, ok := strings.CutSuffix(d.Name(), ".ko"); ok && !d.IsDir() {
			files[strings.ReplaceAll(n, "-", "_")] = p
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("initramfs: kernel modules: %w", err)
	}
	var out []Module
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(string) error
	visit = func(n string) error {
		n = strings.ReplaceAll(n, "-", "_")
		switch state[n] {
		case 1:
			return fmt.Errorf("initramfs: module %s depends on itself", n)
		case 2:
			return nil
		}
		state[n] = 1
		p, ok := files[n]
		if !ok {
			return fmt.Errorf("initramfs: module %s not found under %s", n, dir)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		deps, err := moduleDepends(data)
		if err != nil {
			return fmt.Errorf("initramfs: %s: %w", p, err)
		}
		sort.Strings(deps)
		for _, d := range deps {
			if err := visit(d); err != nil {
				return err
			}
		}
		state[n] = 2
		out = append(out, Module{Name: n, Data: data})
		return nil
	}
	for _, n := range names {
		if err := visit(n); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// moduleDepends reads the "depends=" entry of a module's .modinfo section (NUL-separated
// key=value strings, as the kernel's modpost writes them).
func moduleDepends(ko []byte) ([]string, error) {
	f, err := elf.NewFile(bytes.NewReader(ko))
	if err != nil {
		return nil, err
	}
	s := f.Section(".modinfo")
	if s == nil {
		return nil, fmt.Errorf("no .modinfo section")
	}
	b, err := s.Data()
	if err != nil {
		return nil, err
	}
	for _, kv := range bytes.Split(b, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("depends=")); ok {
			if len(v) == 0 {
				return nil, nil
			}
			return strings.Split(string(v), ","), nil
		}
	}
	return nil, nil
}

// KernelModuleDir returns the single lib/modules/VERSION directory under an unpacked kernel
// package root.
func KernelModuleDir(root string) (string, error) {
	m, _ := filepath.Glob(filepath.Join(root, "lib", "modules", "*"))
	if len(m) != 1 {
		return "", fmt.Errorf("initramfs: want one kernel under %s, found %d", path.Join(root, "lib/modules"), len(m))
	}
	return m[0], nil
}
