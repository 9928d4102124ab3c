// Package ovmf inspects UEFI firmware images (the provider's OVMF) with fiano: it lists the
// firmware volumes and checks that an image really is a UEFI BIOS of a layout before
// `builder sign-bios` signs it. fiano has package-global state (decompression switch, erase
// polarity, logger), so every use goes through this package's mutex.
package ovmf

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	fianolog "github.com/linuxboot/fiano/pkg/log"
	"github.com/linuxboot/fiano/pkg/uefi"

	"github.com/sevshim/sevshim/pkg/format/layout"
	"github.com/sevshim/sevshim/pkg/format/shimimage"
)

var mu sync.Mutex

// quietLogger keeps fiano from writing to stderr and, above all, from exiting the process:
// Fatalf panics and Scan turns the panic into an error.
type quietLogger struct{ warnings *[]string }

func (l quietLogger) Warnf(f string, a ...any) {
	*l.warnings = append(*l.warnings, fmt.Sprintf(f, a...))
}
func (l quietLogger) Errorf(f string, a ...any) {
	*l.warnings = append(*l.warnings, fmt.Sprintf(f, a...))
}
func (l quietLogger) Fatalf(f string, a ...any) { panic(fianoFatal(fmt.Sprintf(f, a...))) }

type fianoFatal string

// Volume is one firmware volume.
type Volume struct {
	Offset     uint64   `json:"offset"` // from the image start (top-level volumes only)
	Length     uint64   `json:"length"`
	Name       string   `json:"name,omitempty"` // FV name GUID from the extended header
	FileSystem string   `json:"filesystem"`
	Files      int      `json:"files"`
	Nested     []Volume `json:"nested,omitempty"` // volumes inside compressed sections (deep scans)
}

// Report is the result of a scan.
type Report struct {
	Volumes  []Volume `json:"volumes"`
	Files    int      `json:"files"` // all files, nested included
	Warnings []string `json:"warnings,omitempty"`
}

// Scan parses image with fiano. With deep, compressed sections are decompressed and nested
// volumes listed (about half a second for OVMF); otherwise only the top-level volumes.
func Scan(image []byte, deep bool) (rep *Report, err error) {
	mu.Lock()
	defer mu.Unlock()
	rep = &Report{}
	oldLog, oldDecomp, oldRO := fianolog.DefaultLogger, uefi.DisableDecompression, uefi.ReadOnly
	fianolog.DefaultLogger = quietLogger{&rep.Warnings}
	uefi.DisableDecompression = !deep
	uefi.ReadOnly = true
	defer func() {
		fianolog.DefaultLogger, uefi.DisableDecompression, uefi.ReadOnly = oldLog, oldDecomp, oldRO
		if r := recover(); r != nil {
			if f, ok := r.(fianoFatal); ok {
				rep, err = nil, fmt.Errorf("fiano: %s", string(f))
				return
			}
			panic(r)
		}
	}()
	fw, err := uefi.Parse(append([]byte(nil), image...))
	if err != nil {
		return nil, fmt.Errorf("fiano: %v", err)
	}
	var vols []*uefi.FirmwareVolume
	switch r := fw.(type) {
	case *uefi.BIOSRegion:
		for _, e := range r.Elements {
			if v, ok := e.Value.(*uefi.FirmwareVolume); ok {
				vols = append(vols, v)
			}
		}
	default:
		return nil, fmt.Errorf("fiano parsed a %T, not a plain BIOS region (an Intel flash descriptor image?)", fw)
	}
	for _, v := range vols {
		vol := volume(v, rep)
		vol.Offset = v.FVOffset
		rep.Volumes = append(rep.Volumes, vol)
	}
	return rep, nil
}

func volume(v *uefi.FirmwareVolume, rep *Report) Volume {
	out := Volume{Length: v.Length, FileSystem: v.FVType, Files: len(v.Files)}
	if v.FVType == "" {
		out.FileSystem = strings.ToLower(v.FileSystemGUID.String())
	}
	if v.ExtHeaderOffset != 0 {
		out.Name = strings.ToLower(v.FVName.String())
	}
	rep.Files += len(v.Files)
	for _, f := range v.Files {
		for _, s := range f.Sections {
			nested(s, rep, &out)
		}
	}
	return out
}

func nested(s *uefi.Section, rep *Report, parent *Volume) {
	for _, e := range s.Encapsulated {
		switch x := e.Value.(type) {
		case *uefi.FirmwareVolume:
			parent.Nested = append(parent.Nested, volume(x, rep))
		case *uefi.Section:
			nested(x, rep, parent)
		}
	}
}

// ErrNotUEFI is wrapped by CheckBIOS refusals.
var ErrNotUEFI = errors.New("not a UEFI BIOS image of the layout")

// CheckBIOS refuses anything that is not a UEFI firmware image of layout l: the size must be
// exactly the layout's code size, fiano must find at least one firmware volume and the volumes
// must lie inside the image, the image must end with an OVMF footer table, and it must not be
// a sevshim image (signing the shim as a BIOS is always a mistake).
func CheckBIOS(image []byte, l layout.Layout) (*Report, error) {
	if len(image) != int(l.CodeSize) {
		return nil, fmt.Errorf("%w: size is 0x%x bytes, layout %s needs exactly 0x%x", ErrNotUEFI, len(image), l.Name, l.CodeSize)
	}
	entries, err := shimimage.ParseFooterTable(image)
	if err != nil {
		return nil, fmt.Errorf("%w: OVMF footer table: %v", ErrNotUEFI, err)
	}
	for _, e := range entries {
		if e.GUID == shimimage.InfoGUID || e.GUID == shimimage.PolicyGUID {
			return nil, fmt.Errorf("%w: this is a sevshim image, not a provider BIOS", ErrNotUEFI)
		}
	}
	rep, err := Scan(image, false)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotUEFI, err)
	}
	if len(rep.Volumes) == 0 {
		return nil, fmt.Errorf("%w: no firmware volume found", ErrNotUEFI)
	}
	for _, v := range rep.Volumes {
		if v.Length == 0 || v.Offset+v.Length > uint64(len(image)) {
			return nil, fmt.Errorf("%w: firmware volume at 0x%x (length 0x%x) does not fit the image", ErrNotUEFI, v.Offset, v.Length)
		}
	}
	return rep, nil
}
