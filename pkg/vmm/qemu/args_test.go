package qemu

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sevshim/sevshim/pkg/vmm"
)

// attachedArgs and detachedArgs are the argument lists the two lifetimes build for cfg (as
// Start and StartDetached do, without starting anything).
func attachedArgs(cfg Config) []string {
	cfg.Binary = "qemu"
	return args(&cfg, sinks{Serial: "/dev/fd/3", Debugcon: "/dev/fd/4", QMP: "/tmp/sevshim-qemu-x/qmp.sock"})
}

func detachedArgs(dir string, cfg Config) []string {
	cfg.Binary = "qemu"
	p := func(n string) string { return filepath.Join(dir, n) }
	return args(&cfg, sinks{Serial: p(SerialLog), Debugcon: p(DebugconLog), QMP: p(QMPSock)})
}

// TestArgsSameForBothLifetimes: for the same Spec both lifetimes give QEMU the same
// arguments except where the consoles and the QMP socket go.
func TestArgsSameForBothLifetimes(t *testing.T) {
	dir := "/work/W,1"
	for _, spec := range []vmm.Spec{
		{Shape: vmm.Shape{MemoryMiB: 512, CPUs: 1}, Code: vmm.Flash{Path: dir + "/shim.fd", Snapshot: true},
			Vars: vmm.Flash{Path: dir + "/vars.fd", Snapshot: true}, Paused: true, MemoryAccess: true, ExitOnReboot: true},
		{Shape: vmm.Shape{Machine: "pc-q35-7.2", MemoryMiB: 256, TPM: true}, Code: vmm.Flash{Path: dir + "/flash0.fd", Snapshot: true},
			Vars: vmm.Flash{Path: dir + "/vars.fd"}, TPMSocket: dir + "/swtpm.sock", Incoming: true, ExitOnReboot: true,
			FwCfg: []vmm.FwCfgFile{{Name: "opt/org.sevshim/manifest", Path: dir + "/bios.manifest"}, {Name: "opt/org.sevshim/bios", Path: dir + "/bios.fd"}}},
	} {
		cfg, err := DetachedConfig(dir, spec)
		if err != nil {
			t.Fatal(err)
		}
		cfg.defaultsNoFiles()
		att, det := attachedArgs(cfg), detachedArgs(dir, cfg)
		if len(att) != len(det) {
			t.Fatalf("attached %d arguments, detached %d:\n%q\n%q", len(att), len(det), att, det)
		}
		for i := range att {
			if att[i] == det[i] {
				continue
			}
			// Only the console and QMP sinks may differ.
			if !(strings.HasPrefix(att[i], "file,id=sevshim-") && strings.HasPrefix(det[i], "file,id=sevshim-")) &&
				!(strings.HasPrefix(att[i], "unix:") && strings.HasPrefix(det[i], "unix:") && att[i-1] == "-qmp") {
				t.Errorf("argument %d differs beyond the sinks: %q vs %q", i, att[i], det[i])
			}
		}
		want := []string{"-machine", "-accel", "tcg", "-smp", "1", "-nodefaults", "-display", "none", "-monitor", "none", "-action", "reboot=shutdown",
			"isa-debugcon,iobase=0x402,chardev=sevshim-dbg"}
		for _, w := range want {
			if !slices.Contains(det, w) {
				t.Errorf("%q missing from %q", w, det)
			}
		}
		has := func(a ...string) bool {
			for i := 0; i+len(a) <= len(det); i++ {
				if slices.Equal(det[i:i+len(a)], a) {
					return true
				}
			}
			return false
		}
		// Values with a comma are escaped (QEMU's option syntax).
		if !has("-drive", "if=pflash,format=raw,unit=0,file=/work/W,,1/"+filepath.Base(spec.Code.Path)+",readonly=off,snapshot=on") {
			t.Errorf("pflash 0 wrong: %q", det)
		}
		if spec.MemoryAccess != has("-gdb", "chardev:gdb") || spec.MemoryAccess != has("-chardev", "socket,id=gdb,path=/work/W,,1/gdb.sock,server=on,wait=off") {
			t.Errorf("gdbstub (MemoryAccess %v): %q", spec.MemoryAccess, det)
		}
		if spec.Paused != has("-S") || spec.Incoming != has("-incoming", "defer") {
			t.Errorf("-S/-incoming: %q", det)
		}
		if spec.TPM != has("-device", "tpm-crb,tpmdev=tpm0") {
			t.Errorf("TPM: %q", det)
		}
		for _, f := range spec.FwCfg {
			if !has("-fw_cfg", "name="+f.Name+",file="+strings.ReplaceAll(f.Path, ",", ",,")) {
				t.Errorf("fw_cfg %s: %q", f.Name, det)
			}
		}
		if spec.Machine != "" && !has("-machine", spec.Machine) {
			t.Errorf("machine: %q", det)
		}
	}
}

// TestConfigFromSpecRefuses: what this backend cannot run is refused before any process.
func TestConfigFromSpecRefuses(t *testing.T) {
	ok := vmm.Spec{Shape: vmm.Shape{MemoryMiB: 64}, Code: vmm.Flash{Path: "c"}}
	for name, bad := range map[string]func(*vmm.Spec){
		"no memory":         func(s *vmm.Spec) { s.MemoryMiB = 0 },
		"no code":           func(s *vmm.Spec) { s.Code.Path = "" },
		"tpm without sock":  func(s *vmm.Spec) { s.TPM = true },
		"sock without tpm":  func(s *vmm.Spec) { s.TPMSocket = "x" },
		"paused+incoming":   func(s *vmm.Spec) { s.Paused, s.Incoming = true, true },
		"sev under tcg":     func(s *vmm.Spec) { s.SEV = true },
		"initrd, no kernel": func(s *vmm.Spec) { s.Initrd = "initrd" },
		"append, no kernel": func(s *vmm.Spec) { s.Append = "quiet" },
		"port without name": func(s *vmm.Spec) { s.Ports = []vmm.Port{{Socket: "p.sock"}} },
		"port twice":        func(s *vmm.Spec) { s.Ports = []vmm.Port{{Name: "a", Socket: "1"}, {Name: "a", Socket: "2"}} },
	} {
		s := ok
		bad(&s)
		if _, err := ConfigFromSpec(s); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := ConfigFromSpec(ok); err != nil {
		t.Fatal(err)
	}
}

// TestArgsKernelAndPorts: a direct kernel boot becomes -kernel/-initrd/-append and each port
// a virtserialport on one virtio-serial controller, its socket listening (server, no wait).
func TestArgsKernelAndPorts(t *testing.T) {
	spec := vmm.Spec{Shape: vmm.Shape{MemoryMiB: 64}, Code: vmm.Flash{Path: "c"},
		Kernel: "/k,1/vmlinuz", Initrd: "/k/initrd", Append: "console=ttyS0 quiet",
		Ports: []vmm.Port{{Name: "org.sevshim.agent.0", Socket: "/w,1/agent.sock"}}}
	cfg, err := ConfigFromSpec(spec)
	if err != nil {
		t.Fatal(err)
	}
	a := args(&cfg, sinks{Serial: "s", Debugcon: "d", QMP: "q"})
	want := []string{"-kernel", "/k,1/vmlinuz", "-initrd", "/k/initrd", "-append", "console=ttyS0 quiet",
		"-device", "virtio-serial-pci,id=sevshim-vser",
		"-chardev", "socket,id=sevshim-port0,path=/w,,1/agent.sock,server=on,wait=off",
		"-device", "virtserialport,bus=sevshim-vser.0,chardev=sevshim-port0,name=org.sevshim.agent.0"}
	found := false
	for i := 0; i+len(want) <= len(a); i++ {
		found = found || slices.Equal(a[i:i+len(want)], want)
	}
	if !found {
		t.Errorf("args %q lack %q", a, want)
	}
	cfg, _ = ConfigFromSpec(vmm.Spec{Shape: vmm.Shape{MemoryMiB: 64}, Code: vmm.Flash{Path: "c"}})
	for _, x := range args(&cfg, sinks{Serial: "s", Debugcon: "d", QMP: "q"}) {
		if x == "-kernel" || x == "virtio-serial-pci,id=sevshim-vser" {
			t.Errorf("a Spec without kernel or ports has %q", x)
		}
	}
}

// TestDefaultsBootFiles: a missing kernel or initrd, or one that is not a file, is named
// before any QEMU starts.
func TestDefaultsBootFiles(t *testing.T) {
	dir := t.TempDir()
	code, kernel := filepath.Join(dir, "code.fd"), filepath.Join(dir, "vmlinuz")
	os.WriteFile(code, []byte("x"), 0o644)
	os.WriteFile(kernel, []byte("x"), 0o644)
	for name, c := range map[string]struct{ kernel, initrd, want string }{
		"missing kernel": {filepath.Join(dir, "nope"), "", "kernel " + filepath.Join(dir, "nope")},
		"missing initrd": {kernel, filepath.Join(dir, "nope"), "initrd " + filepath.Join(dir, "nope")},
		"initrd is dir":  {kernel, dir, "initrd " + dir + ": not a regular file"},
	} {
		cfg := Config{Binary: "/bin/true", Pflash: []Pflash{{Unit: 0, File: code}}, Kernel: c.kernel, Initrd: c.initrd}
		err := cfg.defaults()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error naming %q", name, err, c.want)
		}
	}
	cfg := Config{Binary: "/bin/true", Pflash: []Pflash{{Unit: 0, File: code}}, Kernel: kernel}
	if err := cfg.defaults(); err != nil {
		t.Errorf("a readable kernel: %v", err)
	}
}

// TestArgsDiscard: a discarded unit of a migration target is a null block node of its file's
// size given as the machine's pflash property (no -drive, so no file takes the writes); a
// unit that is not a writable one of a migration target is refused before QEMU starts.
func TestArgsDiscard(t *testing.T) {
	dir := t.TempDir()
	code, vars := filepath.Join(dir, "flash0.fd"), filepath.Join(dir, "vars.fd")
	os.WriteFile(code, make([]byte, 0x380000), 0o600)
	os.WriteFile(vars, make([]byte, 0x84000), 0o600)
	spec := vmm.Spec{Shape: vmm.Shape{MemoryMiB: 64}, Code: vmm.Flash{Path: code, Discard: true},
		Vars: vmm.Flash{Path: vars}, Incoming: true}
	cfg, err := ConfigFromSpec(spec)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Binary = "/bin/true"
	if err := cfg.defaults(); err != nil {
		t.Fatal(err)
	}
	a := args(&cfg, sinks{Serial: "s", Debugcon: "d", QMP: "q"})
	want := []string{"-blockdev", "driver=null-co,node-name=sevshim-pflash0,size=3670016,read-zeroes=on",
		"-machine", "pflash0=sevshim-pflash0", "-drive", "if=pflash,format=raw,unit=1,file=" + vars + ",readonly=off"}
	found := false
	for i := 0; i+len(want) <= len(a); i++ {
		found = found || slices.Equal(a[i:i+len(want)], want)
	}
	if !found {
		t.Errorf("args %q lack %q", a, want)
	}
	for _, x := range a {
		if strings.Contains(x, "file="+code) {
			t.Errorf("the discarded unit's file is still a drive: %q", x)
		}
	}
	for name, p := range map[string]Pflash{
		"no incoming": {Unit: 0, File: code, Discard: true},
		"read-only":   {Unit: 0, File: code, Discard: true, ReadOnly: true},
		"snapshot":    {Unit: 0, File: code, Discard: true, Snapshot: true},
	} {
		c := Config{Binary: "/bin/true", Pflash: []Pflash{p}, Incoming: "defer"}
		if name == "no incoming" {
			c.Incoming = ""
		}
		if err := c.defaults(); err == nil || !strings.Contains(err.Error(), "Discard is only for") {
			t.Errorf("%s: %v, want a refusal", name, err)
		}
	}
}
