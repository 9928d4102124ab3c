// Package shimtest builds synthetic shim templates for tests that must not depend on the real
// firmware build (build/shim/shim.fd). A synthetic template has the right size, a footer table
// with the sevshim info, policy, SEV-ES reset and secret entries, and an empty policy region.
// It is NOT bootable: it contains no code, only a marker text at offset 0.
package shimtest

import (
	"encoding/binary"

	"github.com/sevshim/sevshim/pkg/format/layout"
	"github.com/sevshim/sevshim/pkg/format/shimimage"
)

// Marker is written at offset 0 of every synthetic template.
const Marker = "SEVSHIM SYNTHETIC TEST TEMPLATE - NOT BOOTABLE"

// PolicyOffsetFromEnd is where the synthetic template's policy region starts, counted from the
// end of the image.
const PolicyOffsetFromEnd = 0x10000

// Secret area advertised by the synthetic template (guest RAM).
const (
	SecretBase = 0x0080A000
	SecretSize = 0x1000
)

// Template returns a synthetic shim template of the given layout (panics on an unknown id).
func Template(layoutID uint32) []byte {
	l, ok := layout.ByID(layoutID)
	if !ok {
		panic("shimtest: unknown layout")
	}
	img := make([]byte, l.CodeSize)
	copy(img, Marker)
	off := len(img) - PolicyOffsetFromEnd
	gpa := uint32(uint64(1<<32) - uint64(len(img)) + uint64(off))
	le := binary.LittleEndian
	info := le.AppendUint32(le.AppendUint32(nil, shimimage.FormatVersion), layoutID)
	pol := le.AppendUint32(le.AppendUint32(nil, gpa), 0x4000)
	sec := le.AppendUint32(le.AppendUint32(nil, SecretBase), SecretSize)
	reset := le.AppendUint32(nil, 0xFFFFF000&0xFFFF0000|0xB000)
	entries := []shimimage.Entry{
		{GUID: shimimage.InfoGUID, Data: info},
		{GUID: shimimage.PolicyGUID, Data: pol},
		{GUID: shimimage.SEVSecretGUID, Data: sec},
		{GUID: shimimage.SEVESResetGUID, Data: reset},
	}
	if err := shimimage.WriteFooterTable(img, entries); err != nil {
		panic(err)
	}
	// a recognisable reset area: hlt; jmp $-1 at the reset vector
	copy(img[len(img)-0x10:], []byte{0xF4, 0xEB, 0xFD})
	return img
}
