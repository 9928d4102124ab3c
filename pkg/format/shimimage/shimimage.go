// Package shimimage reads and writes the OVMF-style GUIDed footer table of a flash image
// (docs/formats.md section 4), finds the sevshim policy region, embeds a policy into the shim
// template and reads it back. The footer parser is generic: it reads Debian's OVMF as well.
package shimimage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/sevshim/sevshim/pkg/format/layout"
	"github.com/sevshim/sevshim/pkg/format/policy"
)

// Footer geometry, counted back from the end of the image.
const (
	ResetAreaSize     = 0x20 // reset vector area after the table
	FooterGUIDFromEnd = 0x30
	FooterLenFromEnd  = 0x32
	entryOverhead     = 18 // u16 length + GUID
	FormatVersion     = 1  // sevshim info: shim_format
)

// Entry is one footer-table entry.
type Entry struct {
	GUID   GUID
	Data   []byte // the entry's data (a sub-slice of the image)
	Offset int    // image offset of Data
}

// Name is the known name of the entry's GUID, or "".
func (e Entry) Name() string { return GUIDName(e.GUID) }

var (
	// ErrNoFooterTable means the image has no footer GUID at end-0x30.
	ErrNoFooterTable = errors.New("no OVMF footer table (GUID 96b582de-… missing at end-0x30)")
	// ErrNoPolicyRegion means the image's footer table has no sevshim policy entry.
	ErrNoPolicyRegion = errors.New("no sevshim policy entry in the footer table: not a sevshim image")
	// ErrEmptyPolicy means the policy region is all zero (a template without a policy).
	ErrEmptyPolicy = errors.New("policy region is empty (a shim template; run `builder build`)")
)

// ParseFooterTable returns the footer-table entries in table order (the entry nearest the
// footer GUID first, as OVMF walks it). The walk must consume the table exactly.
func ParseFooterTable(image []byte) ([]Entry, error) {
	n := len(image)
	if n < FooterLenFromEnd {
		return nil, fmt.Errorf("image of %d bytes is too small for a footer table", n)
	}
	if !bytes.Equal(image[n-FooterGUIDFromEnd:n-ResetAreaSize], FooterTableGUID[:]) {
		return nil, ErrNoFooterTable
	}
	total := int(binary.LittleEndian.Uint16(image[n-FooterLenFromEnd:]))
	if total < entryOverhead {
		return nil, fmt.Errorf("footer table length %d is below %d", total, entryOverhead)
	}
	start := n - ResetAreaSize - total
	if start < 0 {
		return nil, fmt.Errorf("footer table length %d runs past the start of the image", total)
	}
	var out []Entry
	p := n - FooterLenFromEnd // exclusive end of the entry area
	for p > start {
		if p-start < entryOverhead {
			return nil, fmt.Errorf("footer table: %d stray bytes before entry at offset 0x%x", p-start, p)
		}
		var g GUID
		copy(g[:], image[p-16:p])
		l := int(binary.LittleEndian.Uint16(image[p-entryOverhead:]))
		if l < entryOverhead {
			return nil, fmt.Errorf("footer table: entry %s has length %d < %d", g, l, entryOverhead)
		}
		if l > p-start {
			return nil, fmt.Errorf("footer table: entry %s (length %d) runs past the table start", g, l)
		}
		data := image[p-l : p-entryOverhead]
		out = append(out, Entry{GUID: g, Data: data, Offset: p - l})
		p -= l
	}
	return out, nil
}

// Find returns the single entry with GUID g; it fails if there is none or more than one.
func Find(entries []Entry, g GUID) (Entry, error) {
	var found []Entry
	for _, e := range entries {
		if e.GUID == g {
			found = append(found, e)
		}
	}
	switch len(found) {
	case 0:
		return Entry{}, fmt.Errorf("no footer entry %s", g)
	case 1:
		return found[0], nil
	}
	return Entry{}, fmt.Errorf("footer entry %s appears %d times", g, len(found))
}

// EncodeFooterTable builds the bytes of a footer table holding entries (first entry nearest the
// footer GUID), ending with the length and footer GUID: place them so they end at end-0x20.
func EncodeFooterTable(entries []Entry) ([]byte, error) {
	var body []byte
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		l := len(e.Data) + entryOverhead
		if l > 0xFFFF {
			return nil, fmt.Errorf("footer entry %s is too large", e.GUID)
		}
		body = append(body, e.Data...)
		body = binary.LittleEndian.AppendUint16(body, uint16(l))
		body = append(body, e.GUID[:]...)
	}
	total := len(body) + entryOverhead
	if total > 0xFFFF {
		return nil, fmt.Errorf("footer table too large")
	}
	body = binary.LittleEndian.AppendUint16(body, uint16(total))
	return append(body, FooterTableGUID[:]...), nil
}

// WriteFooterTable writes entries as the footer table of image (in place), ending at
// end-0x20. It overwrites whatever bytes are there.
func WriteFooterTable(image []byte, entries []Entry) error {
	t, err := EncodeFooterTable(entries)
	if err != nil {
		return err
	}
	end := len(image) - ResetAreaSize
	if len(t) > end {
		return fmt.Errorf("footer table of %d bytes does not fit an image of %d", len(t), len(image))
	}
	copy(image[end-len(t):end], t)
	return nil
}

// ImageInfo summarizes a sevshim image (or any image with a footer table; fields of entries that
// are absent stay zero and their Has* flag false).
type ImageInfo struct {
	Size    int     `json:"size"`
	Entries []Entry `json:"-"`

	HasInfo       bool   `json:"has_info"`
	ShimFormat    uint32 `json:"shim_format,omitempty"`
	Layout        uint32 `json:"layout_id,omitempty"`
	LayoutName    string `json:"layout,omitempty"`
	HasPolicy     bool   `json:"has_policy_region"`
	PolicyGPA     uint32 `json:"policy_gpa,omitempty"`
	PolicyOffset  int    `json:"policy_offset,omitempty"`
	PolicySize    int    `json:"policy_size,omitempty"`
	HasSecret     bool   `json:"has_secret_block"`
	SecretBase    uint32 `json:"secret_base,omitempty"`
	SecretSize    uint32 `json:"secret_size,omitempty"`
	HasSEVESReset bool   `json:"has_sev_es_reset"`
	SEVESResetIP  uint32 `json:"sev_es_reset,omitempty"` // raw u32: IP bits 15:0, CS base bits 31:16
}

// SecretUsable reports whether the image declares a non-empty SEV secret area. OVMF builds
// without the AmdSev secret support (Debian's plain OVMF) carry the entry with size 0.
func (in *ImageInfo) SecretUsable() bool { return in.HasSecret && in.SecretSize > 0 }

func u32(e Entry, i int) (uint32, error) {
	if len(e.Data) < 4*(i+1) {
		return 0, fmt.Errorf("footer entry %s (%s) has %d data bytes, too short", e.GUID, e.Name(), len(e.Data))
	}
	return binary.LittleEndian.Uint32(e.Data[4*i:]), nil
}

// GPAToOffset converts a guest-physical address inside the top-aligned image to an image
// offset: offset = gpa - (4 GiB - len(image)).
func GPAToOffset(imageLen int, gpa uint32) (int, error) {
	base := int64(1<<32) - int64(imageLen)
	off := int64(gpa) - base
	if base < 0 || off < 0 || off >= int64(imageLen) {
		return 0, fmt.Errorf("address 0x%x is outside the image mapped at 0x%x..0xffffffff", gpa, base)
	}
	return int(off), nil
}

// ParseInfo reads the footer table and the known entries of any image.
func ParseInfo(image []byte) (*ImageInfo, error) {
	entries, err := ParseFooterTable(image)
	if err != nil {
		return nil, err
	}
	in := &ImageInfo{Size: len(image), Entries: entries}
	for _, e := range entries {
		switch e.GUID {
		case InfoGUID:
			if len(e.Data) != 8 {
				return nil, fmt.Errorf("sevshim info entry has %d data bytes, want 8", len(e.Data))
			}
			in.HasInfo = true
			in.ShimFormat, _ = u32(e, 0)
			in.Layout, _ = u32(e, 1)
			in.LayoutName = layout.Describe(in.Layout)
		case SEVSecretGUID:
			if in.SecretBase, err = u32(e, 0); err != nil {
				return nil, err
			}
			if in.SecretSize, err = u32(e, 1); err != nil {
				return nil, err
			}
			in.HasSecret = true
		case SEVESResetGUID:
			if in.SEVESResetIP, err = u32(e, 0); err != nil {
				return nil, err
			}
			in.HasSEVESReset = true
		}
	}
	npol := 0
	for _, e := range entries {
		if e.GUID == PolicyGUID {
			npol++
		}
	}
	if npol > 1 {
		return nil, fmt.Errorf("footer table has %d sevshim policy entries, want one", npol)
	}
	if pe, err := Find(entries, PolicyGUID); err == nil {
		if len(pe.Data) != 8 {
			return nil, fmt.Errorf("sevshim policy entry has %d data bytes, want 8", len(pe.Data))
		}
		gpa, _ := u32(pe, 0)
		size, _ := u32(pe, 1)
		off, err := GPAToOffset(len(image), gpa)
		if err != nil {
			return nil, fmt.Errorf("sevshim policy entry: %v", err)
		}
		if uint64(off)+uint64(size) > uint64(len(image)) {
			return nil, fmt.Errorf("sevshim policy region 0x%x+0x%x runs past the image end", off, size)
		}
		in.HasPolicy, in.PolicyGPA, in.PolicyOffset, in.PolicySize = true, gpa, off, int(size)
	}
	return in, nil
}

// Info is ParseInfo for a sevshim image: it also requires the info and policy entries, shim
// format 1, a known layout, an image of exactly the layout's code size and a 16 KiB policy
// region that does not overlap the footer table.
func Info(image []byte) (*ImageInfo, error) {
	in, err := ParseInfo(image)
	if err != nil {
		return nil, err
	}
	if !in.HasInfo {
		return nil, errors.New("no sevshim info entry in the footer table: not a sevshim image")
	}
	if in.ShimFormat != FormatVersion {
		return nil, fmt.Errorf("sevshim info: shim format %d is not supported (want %d)", in.ShimFormat, FormatVersion)
	}
	l, ok := layout.ByID(in.Layout)
	if !ok {
		return nil, fmt.Errorf("sevshim info: unknown layout %d", in.Layout)
	}
	if len(image) != int(l.CodeSize) {
		return nil, fmt.Errorf("image is 0x%x bytes but its layout %s needs exactly 0x%x", len(image), l.Name, l.CodeSize)
	}
	if !in.HasPolicy {
		return nil, ErrNoPolicyRegion
	}
	if in.PolicySize != policy.RegionSize {
		return nil, fmt.Errorf("sevshim policy region is 0x%x bytes, want 0x%x", in.PolicySize, policy.RegionSize)
	}
	tableStart := len(image) - ResetAreaSize - int(binary.LittleEndian.Uint16(image[len(image)-FooterLenFromEnd:]))
	if in.PolicyOffset+in.PolicySize > tableStart {
		return nil, fmt.Errorf("sevshim policy region overlaps the footer table")
	}
	return in, nil
}

// PolicyRegion returns the image offset and size of the policy region of a sevshim image.
func PolicyRegion(image []byte) (offset, size int, err error) {
	in, err := Info(image)
	if err != nil {
		return 0, 0, err
	}
	return in.PolicyOffset, in.PolicySize, nil
}

// EmbedPolicy returns a copy of the shim template with the encoded policy written into its
// policy region. It refuses a region that is not all zero (use ReplacePolicy to overwrite), a
// policy that does not decode, and a policy whose layout differs from the image's.
func EmbedPolicy(template, encodedPolicy []byte) ([]byte, error) {
	return embed(template, encodedPolicy, false)
}

// ReplacePolicy is EmbedPolicy that also overwrites an existing policy.
func ReplacePolicy(image, encodedPolicy []byte) ([]byte, error) {
	return embed(image, encodedPolicy, true)
}

func embed(template, enc []byte, replace bool) ([]byte, error) {
	in, err := Info(template)
	if err != nil {
		return nil, err
	}
	p, err := policy.Decode(enc)
	if err != nil {
		return nil, err
	}
	if p.Layout != in.Layout {
		return nil, fmt.Errorf("policy layout %s does not match the shim image's layout %s",
			layout.Describe(p.Layout), layout.Describe(in.Layout))
	}
	if len(enc) > in.PolicySize {
		return nil, fmt.Errorf("policy of %d bytes does not fit the %d-byte region", len(enc), in.PolicySize)
	}
	region := template[in.PolicyOffset : in.PolicyOffset+in.PolicySize]
	if !replace && !policy.IsEmptyRegion(region) {
		return nil, errors.New("the template's policy region is not empty: it already holds a policy (replace it explicitly)")
	}
	out := bytes.Clone(template)
	r := out[in.PolicyOffset : in.PolicyOffset+in.PolicySize]
	clear(r)
	copy(r, enc)
	return out, nil
}

// ExtractPolicy reads the policy of a built shim image: the encoded block (exactly total_size
// bytes) and its decoding. An all-zero region gives ErrEmptyPolicy.
func ExtractPolicy(image []byte) ([]byte, *policy.Policy, error) {
	in, err := Info(image)
	if err != nil {
		return nil, nil, err
	}
	region := image[in.PolicyOffset : in.PolicyOffset+in.PolicySize]
	if policy.IsEmptyRegion(region) {
		return nil, nil, ErrEmptyPolicy
	}
	p, err := policy.DecodeRegion(region)
	if err != nil {
		return nil, nil, err
	}
	return bytes.Clone(region[:p.TotalSize()]), p, nil
}
