package inspect

import (
	"encoding/binary"
	"testing"

	"github.com/sevshim/sevshim/pkg/format/policy"
	"github.com/sevshim/sevshim/pkg/format/shimerr"
	"github.com/sevshim/sevshim/pkg/format/shimimage"
)

func secretEntry(base, size uint32) shimimage.Entry {
	d := make([]byte, 8)
	binary.LittleEndian.PutUint32(d, base)
	binary.LittleEndian.PutUint32(d[4:], size)
	return shimimage.Entry{GUID: shimimage.SEVSecretGUID, Data: d}
}

func imageWith(t *testing.T, entries ...shimimage.Entry) []byte {
	t.Helper()
	img := make([]byte, 0x10000)
	if len(entries) > 0 {
		if err := shimimage.WriteFooterTable(img, entries); err != nil {
			t.Fatal(err)
		}
	}
	return img
}

// TestSecretCheck: the model of the shim's secret hand-off plan (docs/formats.md section 4a)
// gives the codes docs/errors.md names for E060, E061 and E062.
func TestSecretCheck(t *testing.T) {
	other := shimimage.Entry{GUID: shimimage.InfoGUID, Data: make([]byte, 8)}
	good := secretEntry(0x800000, 0x1000)
	broken := imageWith(t, good)
	binary.LittleEndian.PutUint16(broken[len(broken)-shimimage.FooterLenFromEnd:], 0xFFFF)
	for _, tc := range []struct {
		name string
		mode uint8
		img  []byte
		ram  uint64
		want shimerr.Code
	}{
		{"no table, optional", policy.SecretOptional, imageWith(t), 0, shimerr.OK},
		{"no table, require", policy.SecretRequire, imageWith(t), 0, shimerr.SecretBlockMissing},
		{"no entry, require", policy.SecretRequire, imageWith(t, other), 0, shimerr.SecretBlockMissing},
		{"empty block, require", policy.SecretRequire, imageWith(t, secretEntry(0, 0)), 0, shimerr.SecretBlockMissing},
		{"empty block, optional", policy.SecretOptional, imageWith(t, secretEntry(0, 0)), 0, shimerr.OK},
		{"good block, require", policy.SecretRequire, imageWith(t, other, good), 0, shimerr.OK},
		{"size 0 with a base", policy.SecretOptional, imageWith(t, secretEntry(0x800000, 0)), 0, shimerr.BIOSFooterInvalid},
		{"duplicate entry", policy.SecretRequire, imageWith(t, good, other, good), 0, shimerr.BIOSFooterInvalid},
		{"short entry", policy.SecretOptional, imageWith(t, shimimage.Entry{GUID: shimimage.SEVSecretGUID, Data: make([]byte, 4)}), 0, shimerr.BIOSFooterInvalid},
		{"table length past the image", policy.SecretOptional, broken, 0, shimerr.BIOSFooterInvalid},
		{"on the bounce page", policy.SecretRequire, imageWith(t, secretEntry(0x3FF000, 0x2000)), 0, shimerr.SecretBlockUnusable},
		{"on the BIOS buffer", policy.SecretRequire, imageWith(t, secretEntry(0x1000000, 0x1000)), 0, shimerr.SecretBlockUnusable},
		{"in the VGA hole", policy.SecretOptional, imageWith(t, secretEntry(0xB0000, 0x1000)), 0, shimerr.SecretBlockUnusable},
		{"above 2 GiB", policy.SecretRequire, imageWith(t, secretEntry(0x7FFFF000, 0x2000)), 0, shimerr.SecretBlockUnusable},
		{"above the guest's RAM", policy.SecretRequire, imageWith(t, good), 0x800800, shimerr.SecretBlockUnusable},
		{"wrapping size", policy.SecretRequire, imageWith(t, secretEntry(0xFFFFF000, 0xFFFFF000)), 0, shimerr.SecretBlockUnusable},
	} {
		if got := SecretCheck(tc.mode, tc.img, tc.ram); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
