// Package tpmevent defines the measured-boot event the shim records in a TPM PCR when it
// accepts a BIOS (docs/formats.md section 7), and replays it to the PCR value a verifier
// should expect.
//
// The shim sends the event with TPM2_PCR_Event, so the TPM hashes the 216 event bytes into
// every active bank: PCR_new = H(PCR_old || H(event)). Replay mirrors exactly that.
package tpmevent

import (
	"bytes"
	"crypto"
	"encoding/binary"
	"fmt"

	// Register the hashes a TPM bank may use.
	_ "crypto/sha1"
	_ "crypto/sha256"
	_ "crypto/sha512"
)

// Size is the length of an encoded event.
const Size = 216

// Magic opens every event. Version 2 ("SEVSHEV2") added the var-store flag and digest; the
// 168-byte "SEVSHEV1" events of older shims are refused, not read as "no var store".
const Magic = "SEVSHEV2"

// FlagVarStore (bit 0 of the flags at 0x0c) says the shim programmed a var store into
// pflash1; VarsDigest is then its SHA-384. Without it the digest is all zero.
const FlagVarStore = 1

// Event is what the shim measures about the BIOS it accepted.
type Event struct {
	Layout       uint32
	BIOSVersion  uint64
	SignerKeyID  [48]byte
	BIOSDigest   [48]byte // SHA-384 of the accepted image
	PolicyDigest [48]byte // SHA-384 of the shim's policy block
	VarStore     bool     // a var store was programmed (flag bit 0)
	VarsDigest   [48]byte // its SHA-384; must be zero when VarStore is false
}

// Marshal encodes the event in its 216-byte wire form. Without a var store the digest is
// written as zero whatever VarsDigest holds.
func (e *Event) Marshal() []byte {
	b := make([]byte, Size)
	copy(b[0:8], Magic)
	binary.LittleEndian.PutUint32(b[0x08:], e.Layout)
	binary.LittleEndian.PutUint64(b[0x10:], e.BIOSVersion)
	copy(b[0x18:0x48], e.SignerKeyID[:])
	copy(b[0x48:0x78], e.BIOSDigest[:])
	copy(b[0x78:0xA8], e.PolicyDigest[:])
	if e.VarStore {
		binary.LittleEndian.PutUint32(b[0x0C:], FlagVarStore)
		copy(b[0xA8:0xD8], e.VarsDigest[:])
	}
	return b
}

// Parse decodes a 216-byte event strictly.
func Parse(b []byte) (*Event, error) {
	if len(b) != Size {
		return nil, fmt.Errorf("tpmevent: event is %d bytes, want %d", len(b), Size)
	}
	if !bytes.Equal(b[0:8], []byte(Magic)) {
		return nil, fmt.Errorf("tpmevent: bad magic %q, want %q", b[0:8], Magic)
	}
	flags := binary.LittleEndian.Uint32(b[0x0C:])
	if flags&^FlagVarStore != 0 {
		return nil, fmt.Errorf("tpmevent: flags %#x has unknown bits", flags)
	}
	e := &Event{
		Layout:      binary.LittleEndian.Uint32(b[0x08:]),
		BIOSVersion: binary.LittleEndian.Uint64(b[0x10:]),
		VarStore:    flags&FlagVarStore != 0,
	}
	copy(e.SignerKeyID[:], b[0x18:0x48])
	copy(e.BIOSDigest[:], b[0x48:0x78])
	copy(e.PolicyDigest[:], b[0x78:0xA8])
	copy(e.VarsDigest[:], b[0xA8:0xD8])
	if !e.VarStore && e.VarsDigest != ([48]byte{}) {
		return nil, fmt.Errorf("tpmevent: no var store flagged, but the vars digest is not zero")
	}
	return e, nil
}

// Extend returns H(pcr || H(eventData)), the effect of one TPM2_PCR_Event on a bank of hash h.
func Extend(h crypto.Hash, pcr, eventData []byte) ([]byte, error) {
	if !h.Available() {
		return nil, fmt.Errorf("tpmevent: hash %v not available", h)
	}
	if len(pcr) != h.Size() {
		return nil, fmt.Errorf("tpmevent: PCR value is %d bytes, bank %v needs %d", len(pcr), h, h.Size())
	}
	ed := h.New()
	ed.Write(eventData)
	x := h.New()
	x.Write(pcr)
	x.Write(ed.Sum(nil))
	return x.Sum(nil), nil
}

// Replay returns the value a PCR of bank h holds after the given events, starting from
// initial (all zero when nil, as after TPM2_Startup(CLEAR) for PCRs 0-15 and a reset of 16).
func Replay(h crypto.Hash, initial []byte, events ...[]byte) ([]byte, error) {
	pcr := initial
	if pcr == nil {
		pcr = make([]byte, h.Size())
	}
	for _, ev := range events {
		var err error
		if pcr, err = Extend(h, pcr, ev); err != nil {
			return nil, err
		}
	}
	return pcr, nil
}
