package qemu

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/sevshim/sevshim/pkg/vmm"
)

// sinks are where one QEMU's character devices go: the only arguments that differ between
// the attached lifetime (pipes inherited as /dev/fd/N, a private temporary directory) and
// the detached one (files and sockets in the work directory).
type sinks struct {
	Serial, Debugcon string // file paths for the file chardevs
	QMP              string // QMP unix socket
}

// args is the one QEMU argument builder: every QEMU sevshim starts gets its list here.
// The device set (-nodefaults, COM1, the 0x402 debug console, the pflash units, the TPM) is
// what a migration between two of them needs to agree on; -S, -incoming, the gdbstub and
// fw_cfg carry no device state.
func args(cfg *Config, s sinks) []string {
	a := []string{"-machine", cfg.Machine, "-accel", cfg.Accel, "-m", strconv.Itoa(cfg.MemoryMiB)}
	if cfg.CPUModel != "" {
		a = append(a, "-cpu", cfg.CPUModel)
	}
	if cfg.CPUs > 0 {
		a = append(a, "-smp", strconv.Itoa(cfg.CPUs))
	}
	a = append(a, "-nodefaults", "-display", "none", "-monitor", "none")
	for _, p := range cfg.Pflash {
		if p.Discard {
			node := fmt.Sprintf("sevshim-pflash%d", p.Unit)
			a = append(a, "-blockdev", fmt.Sprintf("driver=null-co,node-name=%s,size=%d,read-zeroes=on", node, p.size),
				"-machine", fmt.Sprintf("pflash%d=%s", p.Unit, node))
			continue
		}
		d := fmt.Sprintf("if=pflash,format=raw,unit=%d,file=%s,readonly=%s", p.Unit, optEscape(p.File), onOff(p.ReadOnly))
		if p.Snapshot {
			d += ",snapshot=on"
		}
		a = append(a, "-drive", d)
	}
	for _, f := range cfg.FwCfg {
		if f.File != "" {
			a = append(a, "-fw_cfg", "name="+optEscape(f.Name)+",file="+optEscape(f.File))
		} else {
			a = append(a, "-fw_cfg", "name="+optEscape(f.Name)+",string="+optEscape(f.String))
		}
	}
	a = append(a,
		"-chardev", "file,id=sevshim-serial,path="+optEscape(s.Serial), "-serial", "chardev:sevshim-serial",
		"-qmp", "unix:"+optEscape(s.QMP)+",server=on,wait=off")
	if cfg.Debugcon {
		a = append(a, "-chardev", "file,id=sevshim-dbg,path="+optEscape(s.Debugcon),
			"-device", "isa-debugcon,iobase=0x402,chardev=sevshim-dbg")
	}
	if cfg.GDBSocket != "" {
		a = append(a, "-chardev", "socket,id=gdb,path="+optEscape(cfg.GDBSocket)+",server=on,wait=off", "-gdb", "chardev:gdb")
	}
	if cfg.TPMSocket != "" {
		a = append(a, TPMArgs(cfg.TPMSocket)...)
	}
	if cfg.Paused {
		a = append(a, "-S")
	}
	if cfg.Incoming != "" {
		a = append(a, "-incoming", cfg.Incoming)
	}
	if cfg.Kernel != "" {
		a = append(a, "-kernel", cfg.Kernel)
		if cfg.Initrd != "" {
			a = append(a, "-initrd", cfg.Initrd)
		}
		if cfg.Append != "" {
			a = append(a, "-append", cfg.Append)
		}
	}
	if len(cfg.Ports) > 0 {
		a = append(a, "-device", "virtio-serial-pci,id=sevshim-vser")
		for i, p := range cfg.Ports {
			id := fmt.Sprintf("sevshim-port%d", i)
			a = append(a, "-chardev", "socket,id="+id+",path="+optEscape(p.Socket)+",server=on,wait=off",
				"-device", "virtserialport,bus=sevshim-vser.0,chardev="+id+",name="+optEscape(p.Name))
		}
	}
	if cfg.RebootShutdown {
		a = append(a, "-action", "reboot=shutdown")
	}
	return append(a, cfg.ExtraArgs...)
}

// TPMArgs are QEMU's TPM device options: a CRB TPM backed by the swtpm at sock.
// A and B must both have them (or both not) for the migration to load.
func TPMArgs(sock string) []string {
	return []string{"-chardev", "socket,id=chrtpm,path=" + optEscape(sock),
		"-tpmdev", "emulator,id=tpm0,chardev=chrtpm", "-device", "tpm-crb,tpmdev=tpm0"}
}

// ConfigFromSpec is the Config of a vmm.Spec, the same for both lifetimes. The gdbstub
// socket (Spec.MemoryAccess) is placed by the lifetime.
func ConfigFromSpec(spec vmm.Spec) (Config, error) {
	if err := spec.Validate(); err != nil {
		return Config{}, err
	}
	if spec.TPM && spec.TPMSocket == "" {
		return Config{}, fmt.Errorf("qemu: a TPM needs the socket of a swtpm (this backend does not run one itself)")
	}
	if spec.SEV {
		return Config{}, fmt.Errorf("qemu: an SEV guest needs KVM with SEV; this backend runs TCG only (the PSP's part is done by hostctl's PSP backend)")
	}
	cpus := spec.CPUs
	if cpus == 0 {
		cpus = 1
	}
	cfg := Config{Machine: spec.Machine, CPUModel: spec.CPUModel, CPUs: cpus, MemoryMiB: int(spec.MemoryMiB),
		Debugcon: true, Paused: spec.Paused, RebootShutdown: spec.ExitOnReboot, TPMSocket: spec.TPMSocket,
		Kernel: spec.Kernel, Initrd: spec.Initrd, Append: spec.Append, Ports: spec.Ports}
	cfg.Pflash = append(cfg.Pflash, Pflash{Unit: 0, File: spec.Code.Path, ReadOnly: spec.Code.ReadOnly, Snapshot: spec.Code.Snapshot, Discard: spec.Code.Discard})
	if spec.Vars.Path != "" {
		cfg.Pflash = append(cfg.Pflash, Pflash{Unit: 1, File: spec.Vars.Path, ReadOnly: spec.Vars.ReadOnly, Snapshot: spec.Vars.Snapshot, Discard: spec.Vars.Discard})
	}
	for _, f := range spec.FwCfg {
		cfg.FwCfg = append(cfg.FwCfg, FwCfg{Name: f.Name, File: f.Path})
	}
	if spec.Incoming {
		cfg.Incoming = "defer"
	}
	return cfg, nil
}

// defaults fills the zero fields of cfg with sevshim's defaults and checks that its files
// exist.
func (cfg *Config) defaults() error {
	if cfg.Binary == "" {
		b, err := Binary()
		if err != nil {
			return err
		}
		cfg.Binary = b
	}
	cfg.defaultsNoFiles()
	for i := range cfg.Pflash {
		p := &cfg.Pflash[i]
		if err := requireFile(p.File); err != nil {
			return fmt.Errorf("qemu: pflash unit %d: %w", p.Unit, err)
		}
		if p.Discard {
			if cfg.Incoming == "" || p.ReadOnly || p.Snapshot {
				return fmt.Errorf("qemu: pflash unit %d: Discard is only for a writable unit of a migration target (the stream carries its content)", p.Unit)
			}
			st, err := os.Stat(p.File)
			if err != nil {
				return fmt.Errorf("qemu: pflash unit %d: %w", p.Unit, err)
			}
			p.size = st.Size()
		}
	}
	for _, f := range cfg.FwCfg {
		if f.File != "" {
			if err := requireFile(f.File); err != nil {
				return fmt.Errorf("qemu: fw_cfg %s: %w", f.Name, err)
			}
		}
	}
	boot := vmm.Spec{Kernel: cfg.Kernel, Initrd: cfg.Initrd}
	if err := boot.CheckBootFiles(); err != nil {
		return fmt.Errorf("qemu: %w", err)
	}
	return nil
}

func (cfg *Config) defaultsNoFiles() {
	if cfg.Machine == "" {
		cfg.Machine = "q35"
	}
	if cfg.Accel == "" {
		cfg.Accel = "tcg"
	}
	if cfg.MemoryMiB == 0 {
		cfg.MemoryMiB = 512
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 20 * time.Second
	}
}

func requireFile(p string) error {
	st, err := os.Stat(p)
	if err != nil || !st.Mode().IsRegular() {
		return errors.New("missing file(s): " + p)
	}
	return nil
}

// EnvQEMU names the environment variable that selects the QEMU binary.
const EnvQEMU = "SEVSHIM_QEMU"

// Binary is the absolute path of the QEMU binary: $SEVSHIM_QEMU, else qemu-system-x86_64,
// looked up on PATH; the error tells the user what to install.
func Binary() (string, error) {
	name := strings.TrimSpace(os.Getenv(EnvQEMU))
	if name == "" {
		name = "qemu-system-x86_64"
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("QEMU binary %q not found (install qemu-system-x86 with scripts/setup.sh, or set %s): %w", name, EnvQEMU, err)
	}
	return p, nil
}
