// Command mkinitramfs writes the guest's initramfs (make images: build/guest/initramfs.cpio)
// from the guest agent binary and an unpacked Debian kernel package, with pkg/guest/initramfs.
// It runs on the host at build time; it is not shipped.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"

	"github.com/sevshim/sevshim/pkg/atomicfile"
	"github.com/sevshim/sevshim/pkg/guest/initramfs"
)

func main() {
	agentPath := flag.String("agent", "", "the static guest agent binary (the /init)")
	kernel := flag.String("kernel-root", "", "the unpacked kernel package (holds lib/modules/VERSION)")
	out := flag.String("out", "", "the initramfs to write (newc cpio)")
	flag.Parse()
	if *agentPath == "" || *kernel == "" || *out == "" || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: mkinitramfs -agent FILE -kernel-root DIR -out FILE")
		os.Exit(2)
	}
	if err := run(*agentPath, *kernel, *out); err != nil {
		fmt.Fprintln(os.Stderr, "mkinitramfs:", err)
		os.Exit(1)
	}
}

func run(agentPath, kernel, out string) error {
	init, err := os.ReadFile(agentPath)
	if err != nil {
		return err
	}
	dir, err := initramfs.KernelModuleDir(kernel)
	if err != nil {
		return err
	}
	mods, err := initramfs.ResolveModules(dir, initramfs.AgentModules...)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	if err := initramfs.Write(&b, init, mods); err != nil {
		return err
	}
	return atomicfile.WriteFile(out, b.Bytes(), 0o644)
}
