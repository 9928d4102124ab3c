package libvirt

import (
	"fmt"

	"libvirt.org/go/libvirtxml"

	"github.com/sevshim/sevshim/pkg/vmm"
)

// domainFiles are the per-domain copies libvirt's QEMU reads and writes (see files.go).
type domainFiles struct {
	Loader, NVRAM, Serial string
	FwCfg                 []vmm.FwCfgFile // Path: the per-domain copy
	Kernel, Initrd        string          // the direct kernel boot's copies ("" = none)
	Ports                 []vmm.Port      // Socket: where libvirt's QEMU listens
}

// domainXML is the domain of a received guest: the virtual hardware of spec's Shape as
// libvirt's QEMU driver builds it (q35, the CPU model, one vCPU, the RAM size, no USB, no
// balloon: the devices of hostctl's own QEMU, so the migration stream loads unchanged; see
// docs/hostctl.md). The shim image is a writable pflash loader (the shim refuses a
// read-only one, E053), the var store the nvram, the bundle and var store fw_cfg files
// (<sysinfo type='fwcfg'>), COM1 a log file, and with Shape.TPM a tpm-crb whose swtpm
// libvirt runs itself. A direct kernel boot is <kernel>/<initrd>/<cmdline>, each
// virtio-serial port a <channel> listening on its unix socket. A reboot or crash ends the
// domain: a restart is a new receive.
func domainXML(name, uuid string, spec vmm.Spec, f domainFiles) (string, error) {
	machine := spec.Machine
	if machine == "" {
		machine = "q35"
	}
	model := spec.CPUModel
	if model == "" {
		model = "qemu64"
	}
	if spec.CPUs > 1 {
		return "", fmt.Errorf("libvirt: %d vCPUs: the shim flows run one", spec.CPUs)
	}
	var entries []libvirtxml.DomainSysInfoEntry
	for _, e := range f.FwCfg {
		entries = append(entries, libvirtxml.DomainSysInfoEntry{Name: e.Name, File: e.Path})
	}
	port := uint(0)
	d := &libvirtxml.Domain{
		Type:   "qemu",
		Name:   name,
		UUID:   uuid,
		Memory: &libvirtxml.DomainMemory{Value: uint(spec.MemoryMiB), Unit: "MiB"},
		VCPU:   &libvirtxml.DomainVCPU{Value: 1},
		OS: &libvirtxml.DomainOS{
			Type:   &libvirtxml.DomainOSType{Arch: "x86_64", Machine: machine, Type: "hvm"},
			Loader: &libvirtxml.DomainLoader{Path: f.Loader, Readonly: "no", Type: "pflash"},
			NVRam:  &libvirtxml.DomainNVRam{NVRam: f.NVRAM},
		},
		Features:   &libvirtxml.DomainFeatureList{ACPI: &libvirtxml.DomainFeature{}},
		CPU:        &libvirtxml.DomainCPU{Mode: "custom", Match: "exact", Check: "none", Model: &libvirtxml.DomainCPUModel{Value: model, Fallback: "forbid"}},
		OnPoweroff: "destroy",
		OnReboot:   "destroy",
		OnCrash:    "destroy",
		Devices: &libvirtxml.DomainDeviceList{
			Controllers: []libvirtxml.DomainController{{Type: "usb", Model: "none"}},
			Serials: []libvirtxml.DomainSerial{{
				Source: &libvirtxml.DomainChardevSource{File: &libvirtxml.DomainChardevSourceFile{Path: f.Serial}},
				Target: &libvirtxml.DomainSerialTarget{Port: &port},
			}},
			MemBalloon: &libvirtxml.DomainMemBalloon{Model: "none"},
		},
	}
	if len(entries) > 0 {
		d.SysInfo = []libvirtxml.DomainSysInfo{{FWCfg: &libvirtxml.DomainSysInfoFWCfg{Entry: entries}}}
	}
	if f.Kernel != "" {
		d.OS.Kernel, d.OS.Initrd, d.OS.Cmdline = f.Kernel, f.Initrd, spec.Append
	}
	for _, p := range f.Ports {
		d.Devices.Channels = append(d.Devices.Channels, libvirtxml.DomainChannel{
			Source: &libvirtxml.DomainChardevSource{UNIX: &libvirtxml.DomainChardevSourceUNIX{Mode: "bind", Path: p.Socket}},
			Target: &libvirtxml.DomainChannelTarget{VirtIO: &libvirtxml.DomainChannelTargetVirtIO{Name: p.Name}},
		})
	}
	if spec.TPM {
		d.Devices.TPMs = []libvirtxml.DomainTPM{{Model: "tpm-crb", Backend: &libvirtxml.DomainTPMBackend{
			Emulator: &libvirtxml.DomainTPMBackendEmulator{Version: "2.0"}}}}
	}
	return d.Marshal()
}
