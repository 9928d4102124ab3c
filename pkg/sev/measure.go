package sev

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
)

// LaunchDigest is the SEV (not SEV-ES) launch digest GCTX.LD of a guest whose only
// LAUNCH_UPDATE_DATA is this flash image: QEMU encrypts pflash unit 0 as one range and the PSP
// extends a running SHA-256 over the plaintext, so LD = SHA-256(image) (SEV API 55766,
// LAUNCH_UPDATE_DATA and LAUNCH_MEASURE). No kernel hashes (the shim is not started with
// -kernel) and no VMSAs (SEV-ES would append one 4 KiB VMSA per vCPU, which depends on the VMM
// and is not modelled here). This is the single definition used by `builder measure`,
// `builder inspect` and the verifier.
func LaunchDigest(image []byte) [32]byte { return sha256.Sum256(image) }

// MeasurementSize is the LAUNCH_MEASURE output: MEASURE[32] || MNONCE[16].
const MeasurementSize = 0x30

// Measurement is LAUNCH_MEASURE's output.
type Measurement struct {
	Measure [32]byte
	MNonce  [16]byte
}

// ParseMeasurement parses the 48-byte blob (QEMU query-sev-launch-measure data, decoded).
func ParseMeasurement(b []byte) (*Measurement, error) {
	if len(b) != MeasurementSize {
		return nil, fmt.Errorf("launch measurement: %d bytes, want %d (MEASURE || MNONCE)", len(b), MeasurementSize)
	}
	m := &Measurement{}
	copy(m.Measure[:], b)
	copy(m.MNonce[:], b[32:])
	return m, nil
}

// Marshal returns MEASURE || MNONCE.
func (m *Measurement) Marshal() []byte { return append(m.Measure[:32:32], m.MNonce[:]...) }

// PlatformVersion identifies the firmware that measured: PLATFORM_STATUS API and build.
type PlatformVersion struct {
	APIMajor, APIMinor, Build uint8
}

// AtLeast reports whether the version is >= major.minor.
func (v PlatformVersion) AtLeast(major, minor uint8) bool {
	return v.APIMajor > major || (v.APIMajor == major && v.APIMinor >= minor)
}

func (v PlatformVersion) String() string {
	return fmt.Sprintf("%d.%d build %d", v.APIMajor, v.APIMinor, v.Build)
}

// ComputeMeasure returns HMAC-SHA256(TIK, 0x04 || API_MAJOR || API_MINOR || BUILD ||
// LE32(POLICY) || LD || MNONCE); firmware older than API 0.17 omits the first four bytes.
func ComputeMeasure(tik [16]byte, v PlatformVersion, policy uint32, ld [32]byte, mnonce [16]byte) [32]byte {
	var msg []byte
	if v.AtLeast(0, 17) {
		msg = append(msg, 0x04, v.APIMajor, v.APIMinor, v.Build)
	}
	msg = le32(msg, policy)
	msg = append(msg, ld[:]...)
	msg = append(msg, mnonce[:]...)
	return hmac256(tik[:], msg)
}

// ErrMeasurement is returned when a launch measurement does not match the expectation.
var ErrMeasurement = errors.New("launch measurement does not match: the guest's firmware, policy or platform differ from what was expected, or the TIK is wrong")

// VerifyMeasurement checks m against the expected launch digest.
func VerifyMeasurement(m *Measurement, tik [16]byte, v PlatformVersion, policy uint32, ld [32]byte) error {
	want := ComputeMeasure(tik, v, policy, ld, m.MNonce)
	if !hmac.Equal(want[:], m.Measure[:]) {
		return ErrMeasurement
	}
	return nil
}
