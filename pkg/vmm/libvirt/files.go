package libvirt

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"

	"github.com/sevshim/sevshim/pkg/vmm"
)

// Names of the per-domain files.
const (
	loaderFile = "flash0.fd"
	nvramFile  = "vars.fd"
	serialLog  = "serial.log"
	kernelFile = "kernel"
	initrdFile = "initrd"
)

// prepareFiles makes dir (mode 0700, owned by the QEMU user, under a root-owned 0711
// parent) with the domain's own copies of spec's files, owned by the QEMU user: libvirt's
// DAC driver relabels the nvram and fw_cfg files for a run but not a pflash loader, and the
// work directory (private to hostctl's user) is not reachable for QEMU. After the shim's
// hand-off the loader holds the accepted OVMF, so every domain has its own.
func prepareFiles(dir, qemuUser string, spec vmm.Spec) (domainFiles, error) {
	var f domainFiles
	u, err := user.Lookup(qemuUser)
	if err != nil {
		return f, fmt.Errorf("libvirt: the QEMU user %q (qemu.conf user): %w", qemuUser, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o711); err != nil {
		return f, err
	}
	if err := os.RemoveAll(dir); err != nil {
		return f, err
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return f, err
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		return f, err
	}
	place := func(name, src string) (string, error) {
		dst := filepath.Join(dir, name)
		if err := copyFile(dst, src); err != nil {
			return "", err
		}
		return dst, os.Chown(dst, uid, gid)
	}
	if f.Loader, err = place(loaderFile, spec.Code.Path); err != nil {
		return f, err
	}
	if spec.Vars.Path == "" {
		return f, errors.New("libvirt: no var store (pflash unit 1)")
	}
	if f.NVRAM, err = place(nvramFile, spec.Vars.Path); err != nil {
		return f, err
	}
	for i, e := range spec.FwCfg {
		p, err := place(fmt.Sprintf("fwcfg%d-%s", i, filepath.Base(e.Path)), e.Path)
		if err != nil {
			return f, err
		}
		f.FwCfg = append(f.FwCfg, vmm.FwCfgFile{Name: e.Name, Path: p})
	}
	if f.Serial, err = place(serialLog, os.DevNull); err != nil {
		return f, err
	}
	if spec.Kernel != "" {
		if f.Kernel, err = place(kernelFile, spec.Kernel); err != nil {
			return f, err
		}
	}
	if spec.Initrd != "" {
		if f.Initrd, err = place(initrdFile, spec.Initrd); err != nil {
			return f, err
		}
	}
	// QEMU (as the QEMU user) creates each port's socket in dir; the caller's Socket path
	// becomes a symbolic link to it (the work directory is not reachable for QEMU).
	for i, p := range spec.Ports {
		sock := filepath.Join(dir, fmt.Sprintf("port%d.sock", i))
		os.Remove(p.Socket)
		if err := os.Symlink(sock, p.Socket); err != nil {
			return f, fmt.Errorf("libvirt: the host end of virtio-serial port %s: %w", p.Name, err)
		}
		f.Ports = append(f.Ports, vmm.Port{Name: p.Name, Socket: sock})
	}
	return f, nil
}

// copyFile copies src to a new file dst (mode 0600).
func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
