// Package psp is one Go interface to the AMD Secure Processor's SEV firmware commands, with
// two backends: a software emulator (a reference model with persistent identity, see
// emu.go and docs/sev.md) and the Linux hardware backend (/dev/sev SEV_ISSUE_CMD and KVM's
// KVM_MEMORY_ENCRYPT_OP, see linux.go).
//
// Commands follow the firmware's conventions: output buffers are passed in, and a buffer that
// is too small (or empty) fails with status INVALID_LENGTH while reporting the length needed,
// exactly as the firmware and Linux do (the "length query"). The helpers in helpers.go do
// the query-then-call dance for callers that just want the bytes.
//
// Guest memory is passed as byte slices: on hardware they must be the VMM's mapping of guest
// RAM (the firmware encrypts/decrypts them in place); the emulator measures and copies them
// and never encrypts (QEMU under TCG has no memory encryption).
package psp

import (
	"fmt"

	"github.com/sevshim/sevshim/pkg/sev"
)

// PlatformState is the firmware's platform state.
type PlatformState uint8

// Platform states.
const (
	StateUninit  PlatformState = 0
	StateInit    PlatformState = 1
	StateWorking PlatformState = 2
)

func (s PlatformState) String() string {
	names := []string{"UNINIT", "INIT", "WORKING"}
	if int(s) < len(names) {
		return names[s]
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// GuestState is a guest context's state (SEV API enum).
type GuestState uint8

// Guest states.
const (
	GuestUninit  GuestState = 0
	GuestLUpdate GuestState = 1
	GuestLSecret GuestState = 2
	GuestRunning GuestState = 3
	GuestSUpdate GuestState = 4
	GuestRUpdate GuestState = 5
	GuestSent    GuestState = 6
)

func (s GuestState) String() string {
	names := []string{"UNINIT", "LUPDATE", "LSECRET", "RUNNING", "SUPDATE", "RUPDATE", "SENT"}
	if int(s) < len(names) {
		return names[s]
	}
	return fmt.Sprintf("gstate(%d)", uint8(s))
}

// PlatformStatus is PLATFORM_STATUS's output.
type PlatformStatus struct {
	APIMajor, APIMinor uint8
	State              PlatformState
	OwnerExternal      bool // OCA imported (PEK_CERT_IMPORT) rather than self-generated
	ConfigES           bool
	Build              uint8
	GuestCount         uint32
}

// Version is the API/build triple LAUNCH_MEASURE includes.
func (s PlatformStatus) Version() sev.PlatformVersion {
	return sev.PlatformVersion{APIMajor: s.APIMajor, APIMinor: s.APIMinor, Build: s.Build}
}

// Handle names a guest context.
type Handle uint32

// GuestStatus is GUEST_STATUS's output.
type GuestStatus struct {
	Handle Handle
	Policy sev.Policy
	ASID   uint32
	State  GuestState
}

// LaunchStartRequest carries LAUNCH_START's inputs.
type LaunchStartRequest struct {
	Handle  Handle     // 0: new VEK; else share that guest's key (NOKS must be clear)
	Policy  sev.Policy //
	DHCert  []byte     // guest owner's DH certificate (0x824 bytes), or nil
	Session []byte     // session buffer (128 bytes), required with DHCert
}

// SendStartRequest carries SEND_START's inputs (certificates of the target platform).
type SendStartRequest struct {
	PDH       []byte // target PDH (0x824)
	PlatCerts []byte // target PEK || OCA || CEK (CEK signed by the ASK when policy bit SEV is set)
	AMDCerts  []byte // ASK || ARK (needed when policy bit SEV is set)
}

// ReceiveStartRequest carries RECEIVE_START's inputs.
type ReceiveStartRequest struct {
	Handle  Handle     // 0: new VEK
	Policy  sev.Policy // the guest's policy (checked against the session's POLICY_MAC)
	PDH     []byte     // the source platform's PDH (0x824)
	Session []byte     // SEND_START's session (128)
}

// Platform is the platform-management command set (/dev/sev).
type Platform interface {
	PlatformStatus() (PlatformStatus, error)
	FactoryReset() error
	PEKGen() error
	PDHGen() error
	// PEKCSR writes the unsigned PEK certificate into buf; returns the length.
	PEKCSR(buf []byte) (int, error)
	// PEKCertImport takes the PEK signed by the OCA, and the OCA certificate.
	PEKCertImport(pek, oca []byte) error
	// PDHCertExport writes the PDH and PEK || OCA || CEK; returns both lengths.
	PDHCertExport(pdh, chain []byte) (pdhLen, chainLen int, err error)
	// GetID writes the chip id (GET_ID2); returns its length.
	GetID(buf []byte) (int, error)
}

// Guest is the guest-management command set (KVM_MEMORY_ENCRYPT_OP on hardware).
type Guest interface {
	LaunchStart(req LaunchStartRequest) (Handle, error)
	LaunchUpdateData(h Handle, mem []byte) error
	LaunchUpdateVMSA(h Handle, vmsa []byte) error
	// LaunchMeasure writes MEASURE || MNONCE (48 bytes) into buf.
	LaunchMeasure(h Handle, buf []byte) (int, error)
	// LaunchSecret verifies and decrypts a LAUNCH_SECRET packet into guest memory.
	LaunchSecret(h Handle, hdr, trans, guest []byte) error
	LaunchFinish(h Handle) error
	// SendStart writes the session into session and returns the guest policy.
	SendStart(h Handle, req SendStartRequest, session []byte) (policy sev.Policy, n int, err error)
	// SendUpdateData encrypts one page (or less) of guest memory into hdr and trans.
	SendUpdateData(h Handle, guest, hdr, trans []byte) (hdrLen, transLen int, err error)
	SendFinish(h Handle) error
	SendCancel(h Handle) error
	ReceiveStart(req ReceiveStartRequest) (Handle, error)
	ReceiveUpdateData(h Handle, hdr, trans, guest []byte) error
	ReceiveFinish(h Handle) error
	GuestStatus(h Handle) (GuestStatus, error)
	DbgDecrypt(h Handle, guest, out []byte) error
	DbgEncrypt(h Handle, in, guest []byte) error
	Decommission(h Handle) error
}

// PSP is a complete backend.
type PSP interface {
	Platform
	Guest
	// Kind is "emu" or "linux".
	Kind() string
	Close() error
}

// KeyServer is implemented by backends that can serve what AMD's key distribution server
// serves for real chips: the ASK-signed CEK of a chip id and the ASK || ARK chain. The
// emulator implements it for its test root; for real hardware use sev.KDSCEKURL.
type KeyServer interface {
	SignedCEK(chipID []byte) ([]byte, error)
	AMDChain() ([]byte, error)
	// Root is the trust anchor that verifiers must add to accept this platform.
	Root() (sev.Root, error)
}
