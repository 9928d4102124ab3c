package psp

import (
	"errors"
	"fmt"
)

// Status is a firmware status code (include/uapi/linux/psp-sev.h).
type Status uint32

// Firmware status codes.
const (
	StatusSuccess              Status = 0x00
	StatusInvalidPlatformState Status = 0x01
	StatusInvalidGuestState    Status = 0x02
	StatusInvalidConfig        Status = 0x03
	StatusInvalidLength        Status = 0x04
	StatusAlreadyOwned         Status = 0x05
	StatusInvalidCertificate   Status = 0x06
	StatusPolicyFailure        Status = 0x07
	StatusInactive             Status = 0x08
	StatusInvalidAddress       Status = 0x09
	StatusBadSignature         Status = 0x0A
	StatusBadMeasurement       Status = 0x0B
	StatusASIDOwned            Status = 0x0C
	StatusInvalidASID          Status = 0x0D
	StatusWBINVDRequired       Status = 0x0E
	StatusDFFlushRequired      Status = 0x0F
	StatusInvalidGuest         Status = 0x10
	StatusInvalidCommand       Status = 0x11
	StatusActive               Status = 0x12
	StatusHWErrorPlatform      Status = 0x13
	StatusHWErrorUnsafe        Status = 0x14
	StatusUnsupported          Status = 0x15
	StatusInvalidParam         Status = 0x16
	StatusResourceLimit        Status = 0x17
	StatusSecureDataInvalid    Status = 0x18
)

var statusNames = map[Status]string{
	0x00: "SUCCESS", 0x01: "INVALID_PLATFORM_STATE", 0x02: "INVALID_GUEST_STATE", 0x03: "INVALID_CONFIG",
	0x04: "INVALID_LENGTH", 0x05: "ALREADY_OWNED", 0x06: "INVALID_CERTIFICATE", 0x07: "POLICY_FAILURE",
	0x08: "INACTIVE", 0x09: "INVALID_ADDRESS", 0x0A: "BAD_SIGNATURE", 0x0B: "BAD_MEASUREMENT",
	0x0C: "ASID_OWNED", 0x0D: "INVALID_ASID", 0x0E: "WBINVD_REQUIRED", 0x0F: "DFFLUSH_REQUIRED",
	0x10: "INVALID_GUEST", 0x11: "INVALID_COMMAND", 0x12: "ACTIVE", 0x13: "HWERROR_PLATFORM",
	0x14: "HWERROR_UNSAFE", 0x15: "UNSUPPORTED", 0x16: "INVALID_PARAM", 0x17: "RESOURCE_LIMIT",
	0x18: "SECURE_DATA_INVALID",
}

func (s Status) String() string {
	if n, ok := statusNames[s]; ok {
		return n
	}
	return fmt.Sprintf("status(%#x)", uint32(s))
}

// FirmwareError is a command the firmware (or the emulator) refused with a status code.
type FirmwareError struct {
	Command string
	Status  Status
	Detail  string // why, when known (the emulator always says)
}

func (e *FirmwareError) Error() string {
	s := fmt.Sprintf("psp: %s: firmware status %s (%#x)", e.Command, e.Status, uint32(e.Status))
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// StatusOf extracts the firmware status from err.
func StatusOf(err error) (Status, bool) {
	var fe *FirmwareError
	if errors.As(err, &fe) {
		return fe.Status, true
	}
	return 0, false
}

// IsStatus reports whether err is a FirmwareError with status s.
func IsStatus(err error, s Status) bool {
	st, ok := StatusOf(err)
	return ok && st == s
}

func fwErr(cmd string, s Status, format string, args ...any) error {
	return &FirmwareError{Command: cmd, Status: s, Detail: fmt.Sprintf(format, args...)}
}
