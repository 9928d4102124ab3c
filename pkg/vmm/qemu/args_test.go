package qemu

import (
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
		"no memory":        func(s *vmm.Spec) { s.MemoryMiB = 0 },
		"no code":          func(s *vmm.Spec) { s.Code.Path = "" },
		"tpm without sock": func(s *vmm.Spec) { s.TPM = true },
		"sock without tpm": func(s *vmm.Spec) { s.TPMSocket = "x" },
		"paused+incoming":  func(s *vmm.Spec) { s.Paused, s.Incoming = true, true },
		"sev under tcg":    func(s *vmm.Spec) { s.SEV = true },
		"kernel":           func(s *vmm.Spec) { s.Kernel = "vmlinuz" },
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
