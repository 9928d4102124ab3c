// Package sev implements the byte formats and the cryptographic rules of the AMD SEV (and
// SEV-ES) firmware protocol: SEV platform certificates and AMD ARK/ASK certificates, chain
// validation against embedded AMD roots, ECDH P-384 + the AMD flavour of the SP 800-108 KDF,
// LAUNCH_START sessions, LAUNCH_MEASURE, LAUNCH_SECRET packets with the EFI secret table, and
// the SEND/RECEIVE transport packets.
//
// Layouts are little-endian as in the AMD SEV API specification (publication 55766); docs/sev.md
// summarises them. Every parser is
// strict: it checks lengths, reserved fields and enumerations and returns an error that names
// what broke; none of them panics on any input.
package sev

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/sevshim/sevshim/pkg/format/shimimage"
)

// Usage is a key usage (PUB_KEY_USAGE / SIGx_USAGE / AMD KEY_USAGE).
type Usage uint32

// Key usages (AMD SEV API Appendix B/C).
const (
	UsageARK     Usage = 0x0000
	UsageASK     Usage = 0x0013
	UsageInvalid Usage = 0x1000
	UsageOCA     Usage = 0x1001
	UsagePEK     Usage = 0x1002
	UsagePDH     Usage = 0x1003
	UsageCEK     Usage = 0x1004
)

var usageNames = map[Usage]string{UsageARK: "ARK", UsageASK: "ASK", UsageInvalid: "INVALID",
	UsageOCA: "OCA", UsagePEK: "PEK", UsagePDH: "PDH", UsageCEK: "CEK"}

func (u Usage) String() string { return enumName(usageNames, u, "usage(%#x)") }

// Algo is a key or signature algorithm.
type Algo uint32

// Algorithms (AMD SEV API Appendix C).
const (
	AlgoNone        Algo = 0x000
	AlgoRSASHA256   Algo = 0x001
	AlgoECDSASHA256 Algo = 0x002
	AlgoECDHSHA256  Algo = 0x003
	AlgoRSASHA384   Algo = 0x101
	AlgoECDSASHA384 Algo = 0x102
	AlgoECDHSHA384  Algo = 0x103
)

var algoNames = map[Algo]string{AlgoNone: "NONE",
	AlgoRSASHA256: "RSA-SHA256", AlgoECDSASHA256: "ECDSA-SHA256", AlgoECDHSHA256: "ECDH-SHA256",
	AlgoRSASHA384: "RSA-SHA384", AlgoECDSASHA384: "ECDSA-SHA384", AlgoECDHSHA384: "ECDH-SHA384"}

func (a Algo) String() string { return enumName(algoNames, a, "algo(%#x)") }

func (a Algo) isRSA() bool   { return a == AlgoRSASHA256 || a == AlgoRSASHA384 }
func (a Algo) isECDSA() bool { return a == AlgoECDSASHA256 || a == AlgoECDSASHA384 }
func (a Algo) isECDH() bool  { return a == AlgoECDHSHA256 || a == AlgoECDHSHA384 }
func (a Algo) sha384() bool  { return a == AlgoRSASHA384 || a == AlgoECDSASHA384 || a == AlgoECDHSHA384 }

// Curve identifies an elliptic curve in an SEV certificate.
type Curve uint32

// Curves.
const (
	CurveInvalid Curve = 0
	CurveP256    Curve = 1
	CurveP384    Curve = 2
)

var curveNames = map[Curve]string{CurveP256: "P-256", CurveP384: "P-384"}

func (c Curve) String() string { return enumName(curveNames, c, "curve(%d)") }

// enumName is the name of v in names, else v formatted as unknown says.
func enumName[T ~uint32](names map[T]string, v T, unknown string) string {
	if n, ok := names[v]; ok {
		return n
	}
	return fmt.Sprintf(unknown, uint32(v))
}

// GUID is a GUID in EFI byte order, the one type of package shimimage: the EFI secret table
// stores its GUIDs as EFI does (first three fields little-endian).
type GUID = shimimage.GUID

// ParseGUID parses the canonical text form "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx".
func ParseGUID(s string) (GUID, error) { return shimimage.ParseGUID(s) }

// MustGUID is ParseGUID for constants; it panics on a malformed literal (programming error).
func MustGUID(s string) GUID { return shimimage.MustParseGUID(s) }

// le32 appends v little-endian.
func le32(b []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(b, v) }

// reverse returns a reversed copy of b (little-endian <-> big-endian integers).
func reverse(b []byte) []byte {
	r := make([]byte, len(b))
	for i := range b {
		r[len(b)-1-i] = b[i]
	}
	return r
}

func allZero(b []byte) bool { return bytes.Count(b, []byte{0}) == len(b) }
