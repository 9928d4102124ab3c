package inspect

import (
	"bytes"
	"encoding/binary"

	"github.com/sevshim/sevshim/pkg/format/policy"
	"github.com/sevshim/sevshim/pkg/format/shimerr"
	"github.com/sevshim/sevshim/pkg/format/shimimage"
)

// LowRAMMax is the highest guest RAM address the shim lets a BIOS's SEV secret block reach:
// it clamps fw_cfg's RAM size to 2 GiB, the low-RAM part below the PCI hole (docs/formats.md
// section 4a).
const LowRAMMax = 0x80000000

// ShimRAM is the RAM the shim itself uses (base, size): the accepted BIOS's secret block must
// not overlap any of it (E062). The table is the firmware's (shim/include/sevshim/layout.h):
// the null page, the page tables, the shim's secret page, the legacy VGA/ROM hole, the
// payload, the shared fw_cfg bounce page, the BIOS and var-store buffers.
var ShimRAM = [][2]uint64{
	{0, 0x1000},
	{0x10000, 6 * 0x1000},
	{0x80000, 0x1000},
	{0xA0000, 0x60000},
	{0x100000, 0x100000},
	{0x200000, 0x200000},
	{0x1000000, 0x37C000},
	{0x1400000, 0x84000},
}

// SecretCheck models the shim's secret hand-off decision for an accepted BIOS image
// (docs/formats.md section 4a, docs/errors.md E060..E062): the footer table is walked as the
// shim walks it (a malformed table or a duplicate secret entry is E061), a BIOS without a
// usable secret block is E060 under `secret: require`, and a block outside the first ramTop
// bytes of guest RAM or overlapping ShimRAM is E062. ramTop 0 means LowRAMMax (the guest's
// real RAM size, -m, is only known at launch). E063/E064 depend on the owner's secret, which
// is injected at launch, and are not modelled here.
func SecretCheck(mode uint8, img []byte, ramTop uint64) shimerr.Code {
	if ramTop == 0 || ramTop > LowRAMMax {
		ramTop = LowRAMMax
	}
	data, found, code := findFooterEntry(img, shimimage.SEVSecretGUID)
	if code != shimerr.OK {
		return code
	}
	var base, size uint32
	if found {
		if len(data) != 8 {
			return shimerr.BIOSFooterInvalid
		}
		base, size = binary.LittleEndian.Uint32(data), binary.LittleEndian.Uint32(data[4:])
		if size == 0 && base != 0 {
			return shimerr.BIOSFooterInvalid
		}
	}
	if size == 0 {
		if mode != policy.SecretOptional {
			return shimerr.SecretBlockMissing
		}
		return shimerr.OK
	}
	b, n := uint64(base), uint64(size)
	if b+n > ramTop {
		return shimerr.SecretBlockUnusable
	}
	for _, r := range ShimRAM {
		if b < r[0]+r[1] && r[0] < b+n {
			return shimerr.SecretBlockUnusable
		}
	}
	return shimerr.OK
}

// findFooterEntry is the shim's footer walk (docs/formats.md section 4): no footer GUID means
// no table (not an error); the whole table is walked, a malformed one or a GUID found twice
// is E061.
func findFooterEntry(img []byte, g shimimage.GUID) ([]byte, bool, shimerr.Code) {
	const resetArea, hdr = shimimage.ResetAreaSize, 18
	n := len(img)
	if n < shimimage.FooterLenFromEnd || !bytes.Equal(img[n-shimimage.FooterGUIDFromEnd:n-resetArea], shimimage.FooterTableGUID[:]) {
		return nil, false, shimerr.OK
	}
	total := int(binary.LittleEndian.Uint16(img[n-shimimage.FooterLenFromEnd:]))
	if total < hdr || total > n-resetArea {
		return nil, false, shimerr.BIOSFooterInvalid
	}
	start, p := n-resetArea-total, n-shimimage.FooterLenFromEnd
	var data []byte
	found := false
	for p > start {
		if p-start < hdr {
			return nil, false, shimerr.BIOSFooterInvalid
		}
		l := int(binary.LittleEndian.Uint16(img[p-hdr:]))
		if l < hdr || l > p-start {
			return nil, false, shimerr.BIOSFooterInvalid
		}
		if bytes.Equal(img[p-16:p], g[:]) {
			if found {
				return nil, false, shimerr.BIOSFooterInvalid
			}
			data, found = img[p-l:p-hdr], true
		}
		p -= l
	}
	return data, found, shimerr.OK
}
