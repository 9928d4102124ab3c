//go:build linux

package psp

import (
	"os"
	"strings"
	"testing"
	"unsafe"
)

// Sizes and offsets from the kernel headers (include/uapi/linux/psp-sev.h and
// arch/x86/include/uapi/asm/kvm.h) and the command buffers of SEV API 55766 (docs/sev.md).
func TestKernelABI(t *testing.T) {
	type off struct {
		name string
		got  uintptr
		want uintptr
	}
	checks := []off{
		{"sev_issue_cmd size", unsafe.Sizeof(sevIssueCmd{}), 16},
		{"sev_issue_cmd.data", unsafe.Offsetof(sevIssueCmd{}.Data), 4},
		{"sev_issue_cmd.error", unsafe.Offsetof(sevIssueCmd{}.Error), 12},
		{"sev_user_data_status size", unsafe.Sizeof(sevUserDataStatus{}), 12},
		{"status.state", unsafe.Offsetof(sevUserDataStatus{}.State), 2},
		{"status.flags", unsafe.Offsetof(sevUserDataStatus{}.Flags), 3},
		{"status.build", unsafe.Offsetof(sevUserDataStatus{}.Build), 7},
		{"status.guest_count", unsafe.Offsetof(sevUserDataStatus{}.GuestCount), 8},
		{"pek_csr size", unsafe.Sizeof(sevUserDataPEKCSR{}), 12},
		{"pek_csr.length", unsafe.Offsetof(sevUserDataPEKCSR{}.Length), 8},
		{"pdh_cert_export size", unsafe.Sizeof(sevUserDataPDHCertExport{}), 24},
		{"pdh_cert_export.pdh_cert_len", unsafe.Offsetof(sevUserDataPDHCertExport{}.PDHCertLen), 8},
		{"pdh_cert_export.cert_chain_address", unsafe.Offsetof(sevUserDataPDHCertExport{}.CertChainAddress), 12},
		{"pdh_cert_export.cert_chain_len", unsafe.Offsetof(sevUserDataPDHCertExport{}.CertChainLen), 20},
		{"pek_cert_import size", unsafe.Sizeof(sevUserDataPEKCertImport{}), 24},
		{"pek_cert_import.oca_cert_address", unsafe.Offsetof(sevUserDataPEKCertImport{}.OCACertAddress), 12},
		{"get_id2 size", unsafe.Sizeof(sevUserDataGetID2{}), 12},
		{"kvm_sev_cmd size", unsafe.Sizeof(kvmSEVCmd{}), 24},
		{"kvm_sev_cmd.data", unsafe.Offsetof(kvmSEVCmd{}.Data), 8},
		{"kvm_sev_cmd.error", unsafe.Offsetof(kvmSEVCmd{}.Error), 16},
		{"kvm_sev_cmd.sev_fd", unsafe.Offsetof(kvmSEVCmd{}.SEVFD), 20},
		{"launch_start size", unsafe.Sizeof(kvmSEVLaunchStart{}), 40},
		{"launch_start.policy", unsafe.Offsetof(kvmSEVLaunchStart{}.Policy), 4},
		{"launch_start.dh_uaddr", unsafe.Offsetof(kvmSEVLaunchStart{}.DHUaddr), 8},
		{"launch_start.dh_len", unsafe.Offsetof(kvmSEVLaunchStart{}.DHLen), 16},
		{"launch_start.session_uaddr", unsafe.Offsetof(kvmSEVLaunchStart{}.SessionUaddr), 24},
		{"launch_start.session_len", unsafe.Offsetof(kvmSEVLaunchStart{}.SessionLen), 32},
		{"launch_update_data size", unsafe.Sizeof(kvmSEVLaunchUpdateData{}), 16},
		{"launch_secret size", unsafe.Sizeof(kvmSEVLaunchSecret{}), 48},
		{"launch_secret.guest_uaddr", unsafe.Offsetof(kvmSEVLaunchSecret{}.GuestUaddr), 16},
		{"launch_secret.trans_uaddr", unsafe.Offsetof(kvmSEVLaunchSecret{}.TransUaddr), 32},
		{"launch_measure size", unsafe.Sizeof(kvmSEVLaunchMeasure{}), 16},
		{"guest_status size", unsafe.Sizeof(kvmSEVGuestStatus{}), 12},
		{"dbg size", unsafe.Sizeof(kvmSEVDbg{}), 24},
		{"dbg.len", unsafe.Offsetof(kvmSEVDbg{}.Len), 16},
		{"send_start size", unsafe.Sizeof(kvmSEVSendStart{}), 72},
		{"send_start.pdh_cert_uaddr", unsafe.Offsetof(kvmSEVSendStart{}.PDHCertUaddr), 8},
		{"send_start.pdh_cert_len", unsafe.Offsetof(kvmSEVSendStart{}.PDHCertLen), 16},
		{"send_start.plat_certs_uaddr", unsafe.Offsetof(kvmSEVSendStart{}.PlatCertsUaddr), 24},
		{"send_start.plat_certs_len", unsafe.Offsetof(kvmSEVSendStart{}.PlatCertsLen), 32},
		{"send_start.amd_certs_uaddr", unsafe.Offsetof(kvmSEVSendStart{}.AMDCertsUaddr), 40},
		{"send_start.amd_certs_len", unsafe.Offsetof(kvmSEVSendStart{}.AMDCertsLen), 48},
		{"send_start.session_uaddr", unsafe.Offsetof(kvmSEVSendStart{}.SessionUaddr), 56},
		{"send_start.session_len", unsafe.Offsetof(kvmSEVSendStart{}.SessionLen), 64},
		{"send_update_data size", unsafe.Sizeof(kvmSEVSendUpdateData{}), 48},
		{"send_update_data.hdr_len", unsafe.Offsetof(kvmSEVSendUpdateData{}.HdrLen), 8},
		{"send_update_data.guest_uaddr", unsafe.Offsetof(kvmSEVSendUpdateData{}.GuestUaddr), 16},
		{"send_update_data.guest_len", unsafe.Offsetof(kvmSEVSendUpdateData{}.GuestLen), 24},
		{"send_update_data.trans_uaddr", unsafe.Offsetof(kvmSEVSendUpdateData{}.TransUaddr), 32},
		{"send_update_data.trans_len", unsafe.Offsetof(kvmSEVSendUpdateData{}.TransLen), 40},
		{"receive_start size", unsafe.Sizeof(kvmSEVReceiveStart{}), 40},
		{"receive_start.pdh_uaddr", unsafe.Offsetof(kvmSEVReceiveStart{}.PDHUaddr), 8},
		{"receive_start.session_len", unsafe.Offsetof(kvmSEVReceiveStart{}.SessionLen), 32},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %d, kernel has %d", c.name, c.got, c.want)
		}
	}
	// ioctl numbers: _IOWR(type, nr, size) = 3<<30 | size<<16 | type<<8 | nr.
	iowr := func(typ, nr, size uintptr) uintptr { return 3<<30 | size<<16 | typ<<8 | nr }
	if SEV_ISSUE_CMD != iowr('S', 0, unsafe.Sizeof(sevIssueCmd{})) {
		t.Error("SEV_ISSUE_CMD")
	}
	if KVM_MEMORY_ENCRYPT_OP != iowr(0xAE, 0xBA, 8) {
		t.Error("KVM_MEMORY_ENCRYPT_OP")
	}
	// Packed encode: a known value lands at the kernel's byte offsets.
	var e sevUserDataPDHCertExport
	e.CertChainLen.set(0x186C)
	b := (*[24]byte)(unsafe.Pointer(&e))
	if b[20] != 0x6C || b[21] != 0x18 {
		t.Error("packed little-endian encoding")
	}
}

func TestOpenDeviceAbsent(t *testing.T) {
	if _, err := os.Stat(DefaultDevice); err == nil {
		t.Skip("/dev/sev exists on this host")
	}
	_, err := Open("linux", "")
	if err == nil {
		t.Fatal("opened a missing device")
	}
	for _, want := range []string{"/dev/sev does not exist", "kvm_amd", "emulator"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	// Guest commands without a VM fd refuse clearly.
	d := &Device{vmfd: -1, path: "x"}
	if err := d.LaunchFinish(1); err == nil || !strings.Contains(err.Error(), "KVM VM fd") {
		t.Fatal(err)
	}
}
