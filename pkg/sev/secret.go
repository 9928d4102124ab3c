package sev

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// EFI secret table (consumed by OVMF/Linux efi_secret, produced by sevctl).
var (
	SecretTableGUID  = MustGUID("1e74f542-71dd-4d66-963e-ef4287ff173b")
	DiskPassphraseID = MustGUID("736869e5-84f0-4973-92ec-06879ce3da0b")
)

const secretHeaderSize = 20

// SecretEntry is one secret: its identity and bytes.
type SecretEntry struct {
	GUID GUID
	Data []byte
}

// SecretTable is the plaintext of a LAUNCH_SECRET packet as OVMF publishes it.
type SecretTable struct {
	Entries []SecretEntry
}

// Marshal encodes the table the sevctl way: header GUID, u32 length of header+entries
// (excluding padding), entries (GUID, u32 length = 20 + data), zero padding to 16 bytes.
func (t *SecretTable) Marshal() ([]byte, error) {
	b := make([]byte, secretHeaderSize)
	copy(b, SecretTableGUID[:])
	for i, e := range t.Entries {
		if e.GUID == (GUID{}) {
			return nil, fmt.Errorf("secret table: entry %d has the NULL GUID (means deleted)", i)
		}
		b = append(b, e.GUID[:]...)
		b = le32(b, uint32(secretHeaderSize+len(e.Data)))
		b = append(b, e.Data...)
	}
	if len(b) > MaxSecretData {
		return nil, fmt.Errorf("secret table: %d bytes, more than the %d a LAUNCH_SECRET packet can carry", len(b), MaxSecretData)
	}
	binary.LittleEndian.PutUint32(b[16:], uint32(len(b)))
	for len(b)%16 != 0 {
		b = append(b, 0)
	}
	return b, nil
}

// ParseSecretTable parses a table strictly: header GUID, 20 <= total <= len(b), entries of
// at least 20 bytes fully inside total, and only zero bytes after total.
func ParseSecretTable(b []byte) (*SecretTable, error) {
	if len(b) < secretHeaderSize {
		return nil, fmt.Errorf("secret table: %d bytes, shorter than the 20-byte header", len(b))
	}
	var g GUID
	copy(g[:], b)
	if g != SecretTableGUID {
		return nil, errors.New("secret table: header GUID is not 1e74f542-71dd-4d66-963e-ef4287ff173b (area not populated?)")
	}
	total := binary.LittleEndian.Uint32(b[16:])
	if total < secretHeaderSize || uint64(total) > uint64(len(b)) {
		return nil, fmt.Errorf("secret table: total length %d outside 20..%d", total, len(b))
	}
	if !allZero(b[total:]) {
		return nil, errors.New("secret table: non-zero bytes after the table's total length")
	}
	t := &SecretTable{}
	rest := b[secretHeaderSize:total]
	for len(rest) > 0 {
		if len(rest) < secretHeaderSize {
			return nil, fmt.Errorf("secret table: %d stray bytes after entry %d", len(rest), len(t.Entries))
		}
		copy(g[:], rest)
		n := binary.LittleEndian.Uint32(rest[16:])
		if n < secretHeaderSize || uint64(n) > uint64(len(rest)) {
			return nil, fmt.Errorf("secret table: entry %d length %d outside 20..%d", len(t.Entries), n, len(rest))
		}
		t.Entries = append(t.Entries, SecretEntry{GUID: g, Data: append([]byte(nil), rest[secretHeaderSize:n]...)})
		rest = rest[n:]
	}
	return t, nil
}

// Lookup returns the data of the first entry with id.
func (t *SecretTable) Lookup(id GUID) ([]byte, bool) {
	for _, e := range t.Entries {
		if e.GUID == id {
			return e.Data, true
		}
	}
	return nil, false
}
