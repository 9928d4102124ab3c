//go:build linux

package psp

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"syscall"
	"unsafe"

	"github.com/sevshim/sevshim/pkg/sev"
)

// DefaultDevice is the SEV firmware device node of the Linux ccp driver.
const DefaultDevice = "/dev/sev"

// Device is the Linux hardware backend. Platform commands go to /dev/sev; guest commands go
// to a KVM VM fd through KVM_MEMORY_ENCRYPT_OP and need a VMM-owned VM (see WithVM).
//
// Not exercised on this machine (no SEV hardware); struct layouts are tested against the
// kernel's sizes and offsets.
type Device struct {
	f    *os.File
	path string
	vmfd int // -1: no VM attached
}

var (
	_ PSP = (*Device)(nil)
)

// OpenDevice opens the SEV device (read-write; state-changing commands need it).
func OpenDevice(path string) (*Device, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("psp: %s does not exist: this host exposes no AMD SEV firmware. Real SEV needs an AMD EPYC "+
			"CPU with SEV enabled in the BIOS, the ccp driver and kvm_amd loaded with sev=1 (check "+
			"/sys/module/kvm_amd/parameters/sev). Without hardware, use the emulator backend (kind %q with a state directory)", path, KindEmulator)
	case errors.Is(err, fs.ErrPermission):
		return nil, fmt.Errorf("psp: %s: permission denied: run as root or grant your user read-write access to the device", path)
	case err != nil:
		return nil, fmt.Errorf("psp: open %s: %w", path, err)
	}
	return &Device{f: f, path: path, vmfd: -1}, nil
}

// WithVM returns a view of the device whose guest commands act on the KVM VM fd vmfd (the
// VMM must already have issued KVM_SEV_INIT/INIT2 and registered guest memory). One KVM VM
// holds one SEV guest, so the Handle arguments are checked against the VM's handle by the
// kernel/firmware, not by this package.
func (d *Device) WithVM(vmfd int) *Device { c := *d; c.vmfd = vmfd; return &c }

// Kind implements PSP.
func (d *Device) Kind() string { return KindLinux }

// Close implements PSP.
func (d *Device) Close() error { return d.f.Close() }

func ioctl(fd uintptr, req uintptr, arg unsafe.Pointer) syscall.Errno {
	_, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, req, uintptr(arg))
	return e
}

func addr(p *runtime.Pinner, b []byte) uint64 {
	if len(b) == 0 {
		return 0
	}
	p.Pin(&b[0])
	return uint64(uintptr(unsafe.Pointer(&b[0])))
}

// lengthQuery is err of a command that reports the buffer lengths it needs, or, when the
// call succeeded and query says it only asked for those lengths (zero-length buffers, SEV
// API 55766), the INVALID_LENGTH status the firmware answers such a query with.
func lengthQuery(cmd string, err error, query bool) error {
	if err == nil && query {
		return &FirmwareError{Command: cmd, Status: StatusInvalidLength, Detail: "length query"}
	}
	return err
}

// packetArgs is the argument of the commands that move one packet (LAUNCH_SECRET,
// SEND_UPDATE_DATA, RECEIVE_UPDATE_DATA): header, guest memory and transport buffer, pinned in p.
func packetArgs(p *runtime.Pinner, hdr, guest, trans []byte) kvmSEVSendUpdateData {
	return kvmSEVSendUpdateData{HdrUaddr: addr(p, hdr), HdrLen: uint32(len(hdr)),
		GuestUaddr: addr(p, guest), GuestLen: uint32(len(guest)),
		TransUaddr: addr(p, trans), TransLen: uint32(len(trans))}
}

// packetCmd runs a KVM SEV command whose argument is packetArgs and whose result is the
// command's status alone.
func (d *Device) packetCmd(name string, id uint32, hdr, guest, trans []byte) error {
	var p runtime.Pinner
	defer p.Unpin()
	s := packetArgs(&p, hdr, guest, trans)
	return d.kvm(name, id, unsafe.Pointer(&s))
}

// issue runs one /dev/sev command; data points to the packed user struct (or nil).
func (d *Device) issue(name string, cmd uint32, data unsafe.Pointer) error {
	var pin runtime.Pinner
	defer pin.Unpin()
	if data != nil {
		pin.Pin(data) // the kernel reads and writes it through a user address
	}
	c := &sevIssueCmd{}
	c.Cmd.set(cmd)
	c.Data.set(uint64(uintptr(data)))
	pin.Pin(c)
	e := ioctl(d.f.Fd(), SEV_ISSUE_CMD, unsafe.Pointer(c))
	if e == 0 {
		return nil
	}
	if st := c.Error.get(); st != 0 && st != 0xFFFFFFFF {
		return &FirmwareError{Command: name, Status: Status(st), Detail: e.Error()}
	}
	return fmt.Errorf("psp: %s on %s: %w", name, d.path, e)
}

// PlatformStatus implements Platform.
func (d *Device) PlatformStatus() (PlatformStatus, error) {
	var s sevUserDataStatus
	if err := d.issue("PLATFORM_STATUS", SEV_PLATFORM_STATUS, unsafe.Pointer(&s)); err != nil {
		return PlatformStatus{}, err
	}
	fl := s.Flags.get()
	return PlatformStatus{APIMajor: s.APIMajor, APIMinor: s.APIMinor, State: PlatformState(s.State),
		OwnerExternal: fl&1 != 0, ConfigES: fl&0x100 != 0, Build: s.Build, GuestCount: s.GuestCount.get()}, nil
}

// FactoryReset implements Platform.
func (d *Device) FactoryReset() error { return d.issue("FACTORY_RESET", SEV_FACTORY_RESET, nil) }

// PEKGen implements Platform.
func (d *Device) PEKGen() error { return d.issue("PEK_GEN", SEV_PEK_GEN, nil) }

// PDHGen implements Platform.
func (d *Device) PDHGen() error { return d.issue("PDH_GEN", SEV_PDH_GEN, nil) }

// PEKCSR implements Platform.
func (d *Device) PEKCSR(buf []byte) (int, error) { return d.issueBuf("PEK_CSR", SEV_PEK_CSR, buf) }

// issueBuf issues a command whose data is one buffer the firmware fills (sevUserDataBuf) and
// returns the length the firmware reports (the length it needs when buf is too short).
func (d *Device) issueBuf(name string, id uint32, buf []byte) (int, error) {
	var p runtime.Pinner
	defer p.Unpin()
	var s sevUserDataBuf
	s.Address.set(addr(&p, buf))
	s.Length.set(uint32(len(buf)))
	err := d.issue(name, id, unsafe.Pointer(&s))
	return int(s.Length.get()), err
}

// PEKCertImport implements Platform.
func (d *Device) PEKCertImport(pek, oca []byte) error {
	var p runtime.Pinner
	defer p.Unpin()
	var s sevUserDataPEKCertImport
	s.PEKCertAddress.set(addr(&p, pek))
	s.PEKCertLen.set(uint32(len(pek)))
	s.OCACertAddress.set(addr(&p, oca))
	s.OCACertLen.set(uint32(len(oca)))
	return d.issue("PEK_CERT_IMPORT", SEV_PEK_CERT_IMPORT, unsafe.Pointer(&s))
}

// PDHCertExport implements Platform.
func (d *Device) PDHCertExport(pdh, chain []byte) (int, int, error) {
	var p runtime.Pinner
	defer p.Unpin()
	var s sevUserDataPDHCertExport
	s.PDHCertAddress.set(addr(&p, pdh))
	s.PDHCertLen.set(uint32(len(pdh)))
	s.CertChainAddress.set(addr(&p, chain))
	s.CertChainLen.set(uint32(len(chain)))
	err := d.issue("PDH_CERT_EXPORT", SEV_PDH_CERT_EXPORT, unsafe.Pointer(&s))
	return int(s.PDHCertLen.get()), int(s.CertChainLen.get()), err
}

// GetID implements Platform (GET_ID2).
func (d *Device) GetID(buf []byte) (int, error) { return d.issueBuf("GET_ID", SEV_GET_ID2, buf) }

// kvm runs one KVM_MEMORY_ENCRYPT_OP sub-command on the attached VM.
func (d *Device) kvm(name string, id uint32, data unsafe.Pointer) error {
	if d.vmfd < 0 {
		return fmt.Errorf("psp: %s: guest commands need a KVM VM fd (Device.WithVM); on real hosts QEMU's sev-guest object issues them itself", name)
	}
	var pin runtime.Pinner
	defer pin.Unpin()
	if data != nil {
		pin.Pin(data)
	}
	c := &kvmSEVCmd{ID: id, Data: uint64(uintptr(data)), SEVFD: uint32(d.f.Fd())}
	pin.Pin(c)
	e := ioctl(uintptr(d.vmfd), KVM_MEMORY_ENCRYPT_OP, unsafe.Pointer(c))
	if e == 0 {
		return nil
	}
	if c.Error != 0 && c.Error != 0xFFFFFFFF {
		return &FirmwareError{Command: name, Status: Status(c.Error), Detail: e.Error()}
	}
	return fmt.Errorf("psp: %s: KVM_MEMORY_ENCRYPT_OP: %w", name, e)
}

// LaunchStart implements Guest.
func (d *Device) LaunchStart(req LaunchStartRequest) (Handle, error) {
	var p runtime.Pinner
	defer p.Unpin()
	s := kvmSEVLaunchStart{Handle: uint32(req.Handle), Policy: uint32(req.Policy),
		DHUaddr: addr(&p, req.DHCert), DHLen: uint32(len(req.DHCert)),
		SessionUaddr: addr(&p, req.Session), SessionLen: uint32(len(req.Session))}
	err := d.kvm("LAUNCH_START", KVM_SEV_LAUNCH_START, unsafe.Pointer(&s))
	return Handle(s.Handle), err
}

// LaunchUpdateData implements Guest (mem must be guest memory, 16-byte aligned).
func (d *Device) LaunchUpdateData(h Handle, mem []byte) error {
	var p runtime.Pinner
	defer p.Unpin()
	s := kvmSEVLaunchUpdateData{Uaddr: addr(&p, mem), Len: uint32(len(mem))}
	return d.kvm("LAUNCH_UPDATE_DATA", KVM_SEV_LAUNCH_UPDATE_DATA, unsafe.Pointer(&s))
}

// LaunchUpdateVMSA implements Guest: KVM encrypts every vCPU's VMSA itself; vmsa is ignored.
func (d *Device) LaunchUpdateVMSA(h Handle, vmsa []byte) error {
	return d.kvm("LAUNCH_UPDATE_VMSA", KVM_SEV_LAUNCH_UPDATE_VMSA, nil)
}

// LaunchMeasure implements Guest.
func (d *Device) LaunchMeasure(h Handle, buf []byte) (int, error) {
	var p runtime.Pinner
	defer p.Unpin()
	s := kvmSEVLaunchMeasure{Uaddr: addr(&p, buf), Len: uint32(len(buf))}
	err := lengthQuery("LAUNCH_MEASURE", d.kvm("LAUNCH_MEASURE", KVM_SEV_LAUNCH_MEASURE, unsafe.Pointer(&s)), len(buf) == 0)
	return int(s.Len), err
}

// LaunchSecret implements Guest.
func (d *Device) LaunchSecret(h Handle, hdr, trans, guest []byte) error {
	return d.packetCmd("LAUNCH_SECRET", KVM_SEV_LAUNCH_SECRET, hdr, guest, trans)
}

// LaunchFinish implements Guest.
func (d *Device) LaunchFinish(h Handle) error {
	return d.kvm("LAUNCH_FINISH", KVM_SEV_LAUNCH_FINISH, nil)
}

// SendStart implements Guest.
func (d *Device) SendStart(h Handle, req SendStartRequest, session []byte) (sev.Policy, int, error) {
	var p runtime.Pinner
	defer p.Unpin()
	s := kvmSEVSendStart{PDHCertUaddr: addr(&p, req.PDH), PDHCertLen: uint32(len(req.PDH)),
		PlatCertsUaddr: addr(&p, req.PlatCerts), PlatCertsLen: uint32(len(req.PlatCerts)),
		AMDCertsUaddr: addr(&p, req.AMDCerts), AMDCertsLen: uint32(len(req.AMDCerts)),
		SessionUaddr: addr(&p, session), SessionLen: uint32(len(session))}
	err := lengthQuery("SEND_START", d.kvm("SEND_START", KVM_SEV_SEND_START, unsafe.Pointer(&s)), len(session) == 0)
	return sev.Policy(s.Policy), int(s.SessionLen), err
}

// SendUpdateData implements Guest.
func (d *Device) SendUpdateData(h Handle, guest, hdr, trans []byte) (int, int, error) {
	var p runtime.Pinner
	defer p.Unpin()
	s := packetArgs(&p, hdr, guest, trans)
	err := lengthQuery("SEND_UPDATE_DATA", d.kvm("SEND_UPDATE_DATA", KVM_SEV_SEND_UPDATE_DATA, unsafe.Pointer(&s)), len(hdr) == 0 || len(trans) == 0)
	return int(s.HdrLen), int(s.TransLen), err
}

// SendFinish implements Guest.
func (d *Device) SendFinish(h Handle) error { return d.kvm("SEND_FINISH", KVM_SEV_SEND_FINISH, nil) }

// SendCancel implements Guest.
func (d *Device) SendCancel(h Handle) error { return d.kvm("SEND_CANCEL", KVM_SEV_SEND_CANCEL, nil) }

// ReceiveStart implements Guest.
func (d *Device) ReceiveStart(req ReceiveStartRequest) (Handle, error) {
	var p runtime.Pinner
	defer p.Unpin()
	s := kvmSEVReceiveStart{Handle: uint32(req.Handle), Policy: uint32(req.Policy),
		PDHUaddr: addr(&p, req.PDH), PDHLen: uint32(len(req.PDH)),
		SessionUaddr: addr(&p, req.Session), SessionLen: uint32(len(req.Session))}
	err := d.kvm("RECEIVE_START", KVM_SEV_RECEIVE_START, unsafe.Pointer(&s))
	return Handle(s.Handle), err
}

// ReceiveUpdateData implements Guest.
func (d *Device) ReceiveUpdateData(h Handle, hdr, trans, guest []byte) error {
	return d.packetCmd("RECEIVE_UPDATE_DATA", KVM_SEV_RECEIVE_UPDATE_DATA, hdr, guest, trans)
}

// ReceiveFinish implements Guest.
func (d *Device) ReceiveFinish(h Handle) error {
	return d.kvm("RECEIVE_FINISH", KVM_SEV_RECEIVE_FINISH, nil)
}

// GuestStatus implements Guest.
func (d *Device) GuestStatus(h Handle) (GuestStatus, error) {
	var s kvmSEVGuestStatus
	err := d.kvm("GUEST_STATUS", KVM_SEV_GUEST_STATUS, unsafe.Pointer(&s))
	return GuestStatus{Handle: Handle(s.Handle), Policy: sev.Policy(s.Policy), State: GuestState(s.State)}, err
}

// DbgDecrypt implements Guest.
func (d *Device) DbgDecrypt(h Handle, guest, out []byte) error {
	return d.dbg("DBG_DECRYPT", KVM_SEV_DBG_DECRYPT, guest, out)
}

// DbgEncrypt implements Guest.
func (d *Device) DbgEncrypt(h Handle, in, guest []byte) error {
	return d.dbg("DBG_ENCRYPT", KVM_SEV_DBG_ENCRYPT, in, guest)
}

func (d *Device) dbg(name string, id uint32, src, dst []byte) error {
	if len(src) != len(dst) {
		return fmt.Errorf("psp: %s: source and destination lengths differ", name)
	}
	var p runtime.Pinner
	defer p.Unpin()
	s := kvmSEVDbg{SrcUaddr: addr(&p, src), DstUaddr: addr(&p, dst), Len: uint32(len(src))}
	return d.kvm(name, id, unsafe.Pointer(&s))
}

// Decommission implements Guest: KVM decommissions when the VM is destroyed.
func (d *Device) Decommission(h Handle) error {
	return errors.New("psp: DECOMMISSION: on Linux the guest context is released when the VMM closes the KVM VM")
}
