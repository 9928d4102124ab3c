package psp

// Kernel ABI of the Linux SEV interfaces, mirrored exactly (include/uapi/linux/psp-sev.h for
// /dev/sev, arch/x86/include/uapi/asm/kvm.h for KVM_MEMORY_ENCRYPT_OP). The /dev/sev user
// structs are __packed in the kernel: they are declared here with byte-array fields only, so
// Go lays them out without padding; their sizes and offsets are tested in linux_abi_test.go.
// The KVM structs are naturally aligned and use explicit pad fields as the kernel's do.

import "encoding/binary"

// ioctl request numbers.
const (
	SEV_ISSUE_CMD                 = 0xC0105300 // _IOWR('S', 0, struct sev_issue_cmd)
	KVM_MEMORY_ENCRYPT_OP         = 0xC008AEBA // _IOWR(KVMIO, 0xba, unsigned long)
	KVM_MEMORY_ENCRYPT_REG_REGION = 0x8010AEBB
	KVM_MEMORY_ENCRYPT_UNREG_REG  = 0x8010AEBC
)

// /dev/sev command numbers (not firmware ids).
const (
	SEV_FACTORY_RESET   = 0
	SEV_PLATFORM_STATUS = 1
	SEV_PEK_GEN         = 2
	SEV_PEK_CSR         = 3
	SEV_PDH_GEN         = 4
	SEV_PDH_CERT_EXPORT = 5
	SEV_PEK_CERT_IMPORT = 6
	SEV_GET_ID          = 7 // deprecated
	SEV_GET_ID2         = 8
)

// KVM_MEMORY_ENCRYPT_OP sub-commands (enum sev_cmd_id).
const (
	KVM_SEV_INIT                   = 0
	KVM_SEV_ES_INIT                = 1
	KVM_SEV_LAUNCH_START           = 2
	KVM_SEV_LAUNCH_UPDATE_DATA     = 3
	KVM_SEV_LAUNCH_UPDATE_VMSA     = 4
	KVM_SEV_LAUNCH_SECRET          = 5
	KVM_SEV_LAUNCH_MEASURE         = 6
	KVM_SEV_LAUNCH_FINISH          = 7
	KVM_SEV_SEND_START             = 8
	KVM_SEV_SEND_UPDATE_DATA       = 9
	KVM_SEV_SEND_UPDATE_VMSA       = 10
	KVM_SEV_SEND_FINISH            = 11
	KVM_SEV_RECEIVE_START          = 12
	KVM_SEV_RECEIVE_UPDATE_DATA    = 13
	KVM_SEV_RECEIVE_UPDATE_VMSA    = 14
	KVM_SEV_RECEIVE_FINISH         = 15
	KVM_SEV_GUEST_STATUS           = 16
	KVM_SEV_DBG_DECRYPT            = 17
	KVM_SEV_DBG_ENCRYPT            = 18
	KVM_SEV_CERT_EXPORT            = 19
	KVM_SEV_GET_ATTESTATION_REPORT = 20
	KVM_SEV_SEND_CANCEL            = 21
	KVM_SEV_INIT2                  = 22
)

// SEV_FW_BLOB_MAX_SIZE is the kernel's copy limit for every blob.
const SEV_FW_BLOB_MAX_SIZE = 0x4000

type (
	u32le [4]byte
	u64le [8]byte
)

func (v *u32le) get() uint32  { return binary.LittleEndian.Uint32(v[:]) }
func (v *u32le) set(x uint32) { binary.LittleEndian.PutUint32(v[:], x) }
func (v *u64le) get() uint64  { return binary.LittleEndian.Uint64(v[:]) }
func (v *u64le) set(x uint64) { binary.LittleEndian.PutUint64(v[:], x) }

// sevIssueCmd is struct sev_issue_cmd (packed, 16 bytes).
type sevIssueCmd struct {
	Cmd   u32le
	Data  u64le
	Error u32le
}

// sevUserDataStatus is struct sev_user_data_status (packed, 12 bytes).
type sevUserDataStatus struct {
	APIMajor   uint8
	APIMinor   uint8
	State      uint8
	Flags      u32le // bit 0 owner, bit 8 CONFIG_ES
	Build      uint8
	GuestCount u32le
}

// sevUserDataBuf is one buffer (address, length; packed, 12 bytes): the layout of both
// struct sev_user_data_pek_csr and struct sev_user_data_get_id2.
type sevUserDataBuf struct {
	Address u64le
	Length  u32le
}

// sevUserDataPEKCSR is struct sev_user_data_pek_csr.
type sevUserDataPEKCSR = sevUserDataBuf

// sevUserDataPDHCertExport is struct sev_user_data_pdh_cert_export (packed, 24 bytes).
type sevUserDataPDHCertExport struct {
	PDHCertAddress   u64le
	PDHCertLen       u32le
	CertChainAddress u64le
	CertChainLen     u32le
}

// sevUserDataPEKCertImport is struct sev_user_data_pek_cert_import (packed, 24 bytes).
type sevUserDataPEKCertImport struct {
	PEKCertAddress u64le
	PEKCertLen     u32le
	OCACertAddress u64le
	OCACertLen     u32le
}

// sevUserDataGetID2 is struct sev_user_data_get_id2.
type sevUserDataGetID2 = sevUserDataBuf

// kvmSEVCmd is struct kvm_sev_cmd (24 bytes).
type kvmSEVCmd struct {
	ID    uint32
	Pad0  uint32
	Data  uint64
	Error uint32
	SEVFD uint32
}

type kvmSEVLaunchStart struct { // 40 bytes
	Handle       uint32
	Policy       uint32
	DHUaddr      uint64
	DHLen        uint32
	Pad0         uint32
	SessionUaddr uint64
	SessionLen   uint32
	Pad1         uint32
}

type kvmSEVLaunchUpdateData struct { // 16 bytes
	Uaddr uint64
	Len   uint32
	Pad0  uint32
}

// kvm_sev_launch_secret has the layout of kvm_sev_send_update_data (below).
type kvmSEVLaunchSecret = kvmSEVSendUpdateData

type kvmSEVLaunchMeasure struct { // 16 bytes
	Uaddr uint64
	Len   uint32
	Pad0  uint32
}

type kvmSEVGuestStatus struct { // 12 bytes
	Handle uint32
	Policy uint32
	State  uint32
}

type kvmSEVDbg struct { // 24 bytes
	SrcUaddr uint64
	DstUaddr uint64
	Len      uint32
	Pad0     uint32
}

type kvmSEVSendStart struct { // 72 bytes
	Policy         uint32
	Pad0           uint32
	PDHCertUaddr   uint64
	PDHCertLen     uint32
	Pad1           uint32
	PlatCertsUaddr uint64
	PlatCertsLen   uint32
	Pad2           uint32
	AMDCertsUaddr  uint64
	AMDCertsLen    uint32
	Pad3           uint32
	SessionUaddr   uint64
	SessionLen     uint32
	Pad4           uint32
}

type kvmSEVSendUpdateData struct { // 48 bytes; also kvm_sev_receive_update_data and kvm_sev_launch_secret
	HdrUaddr   uint64
	HdrLen     uint32
	Pad0       uint32
	GuestUaddr uint64
	GuestLen   uint32
	Pad1       uint32
	TransUaddr uint64
	TransLen   uint32
	Pad2       uint32
}

type kvmSEVReceiveStart struct { // 40 bytes
	Handle       uint32
	Policy       uint32
	PDHUaddr     uint64
	PDHLen       uint32
	Pad0         uint32
	SessionUaddr uint64
	SessionLen   uint32
	Pad1         uint32
}
