package libvirt

import (
	"strings"
	"testing"

	"libvirt.org/go/libvirtxml"

	"github.com/sevshim/sevshim/pkg/vmm"
)

// parsedDomain is domainXML's output for spec and files, and that XML parsed back.
func parsedDomain(t *testing.T, spec vmm.Spec, files domainFiles) (*libvirtxml.Domain, string) {
	t.Helper()
	s, err := domainXML("sevshim-x", "6f1c1b2e-0d3a-4c5b-9e7f-123456789abc", spec, files)
	if err != nil {
		t.Fatal(err)
	}
	var d libvirtxml.Domain
	if err := d.Unmarshal(s); err != nil {
		t.Fatalf("%v\n%s", err, s)
	}
	return &d, s
}

func TestDomainXML(t *testing.T) {
	files := domainFiles{Loader: "/d/flash0.fd", NVRAM: "/d/vars.fd", Serial: "/d/serial.log",
		FwCfg: []vmm.FwCfgFile{{Name: "opt/org.sevshim/manifest", Path: "/d/fwcfg0-bios.manifest"}}}
	spec := vmm.Spec{Shape: vmm.Shape{Machine: "pc-q35-7.2", MemoryMiB: 256, CPUs: 1, TPM: true}, Incoming: true}
	d, s := parsedDomain(t, spec, files)
	switch {
	case d.Type != "qemu" || d.Name != "sevshim-x" || d.Memory.Value != 256 || d.Memory.Unit != "MiB" || d.VCPU.Value != 1:
		t.Errorf("type/name/memory/vcpu: %s", s)
	case d.OS.Type.Machine != "pc-q35-7.2" || d.OS.Loader.Path != files.Loader || d.OS.Loader.Readonly != "no" || d.OS.Loader.Type != "pflash":
		t.Errorf("loader: a writable pflash loader (the shim refuses a read-only one, E053): %s", s)
	case d.OS.NVRam.NVRam != files.NVRAM:
		t.Errorf("nvram: %s", s)
	case d.CPU.Model.Value != "qemu64" || d.CPU.Mode != "custom":
		t.Errorf("cpu: %s", s)
	case d.OnReboot != "destroy" || d.OnCrash != "destroy" || d.OnPoweroff != "destroy":
		t.Errorf("lifecycle: %s", s)
	case len(d.Devices.Controllers) != 1 || d.Devices.Controllers[0].Type != "usb" || d.Devices.Controllers[0].Model != "none":
		t.Errorf("usb: %s", s)
	case d.Devices.MemBalloon == nil || d.Devices.MemBalloon.Model != "none":
		t.Errorf("memballoon: %s", s)
	case len(d.Devices.Serials) != 1 || d.Devices.Serials[0].Source.File == nil || d.Devices.Serials[0].Source.File.Path != files.Serial:
		t.Errorf("serial: %s", s)
	case len(d.Devices.TPMs) != 1 || d.Devices.TPMs[0].Model != "tpm-crb" || d.Devices.TPMs[0].Backend.Emulator == nil:
		t.Errorf("tpm: %s", s)
	case len(d.SysInfo) != 1 || d.SysInfo[0].FWCfg == nil || d.SysInfo[0].FWCfg.Entry[0].Name != "opt/org.sevshim/manifest":
		t.Errorf("fwcfg sysinfo: %s", s)
	}
	if !strings.Contains(s, "<sysinfo type=\"fwcfg\">") {
		t.Errorf("no fwcfg sysinfo element: %s", s)
	}
	if d.OS.Kernel != "" || len(d.Devices.Channels) != 0 {
		t.Errorf("a kernel or a channel without a direct kernel boot: %s", s)
	}
	spec.CPUs = 2
	if _, err := domainXML("sevshim-x", "", spec, files); err == nil {
		t.Error("2 vCPUs accepted")
	}
}

// TestDomainXMLKernel: a direct kernel boot is <kernel>/<initrd>/<cmdline> next to the pflash
// loader, and the agent's port a virtio <channel> listening on its unix socket.
func TestDomainXMLKernel(t *testing.T) {
	files := domainFiles{Loader: "/d/flash0.fd", NVRAM: "/d/vars.fd", Serial: "/d/serial.log", Kernel: "/d/kernel", Initrd: "/d/initrd",
		Ports: []vmm.Port{{Name: "org.sevshim.agent.0", Socket: "/d/port0.sock"}}}
	spec := vmm.Spec{Shape: vmm.Shape{MemoryMiB: 256, CPUs: 1}, Incoming: true, Kernel: "/w/vmlinuz", Initrd: "/w/initrd", Append: "console=ttyS0 quiet"}
	d, s := parsedDomain(t, spec, files)
	if d.OS.Kernel != "/d/kernel" || d.OS.Initrd != "/d/initrd" || d.OS.Cmdline != "console=ttyS0 quiet" || d.OS.Loader.Path != files.Loader {
		t.Errorf("os: the per-domain copies and the command line, with the loader: %s", s)
	}
	if len(d.Devices.Channels) != 1 {
		t.Fatalf("channels: %s", s)
	}
	c := d.Devices.Channels[0]
	if c.Source.UNIX == nil || c.Source.UNIX.Mode != "bind" || c.Source.UNIX.Path != "/d/port0.sock" ||
		c.Target.VirtIO == nil || c.Target.VirtIO.Name != "org.sevshim.agent.0" {
		t.Errorf("channel: %s", s)
	}
}

func TestDomainName(t *testing.T) {
	if n, err := DomainName("", "/tmp/x/B"); err != nil || n != "sevshim-B" {
		t.Fatalf("%q %v", n, err)
	}
	for _, bad := range []string{"a b", "../x", "-x", strings.Repeat("a", 49), "x/y"} {
		if _, err := DomainName(bad, "/w"); err == nil {
			t.Errorf("name %q accepted", bad)
		}
	}
}
