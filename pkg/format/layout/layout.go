// Package layout holds the BIOS flash layouts (docs/formats.md section 1) for the Go tools.
//
// The table is generated (layouts_gen.go, by go generate) from the one table the firmware is
// built from, shim/include/sevshim/layouts.def, so a layout is added in one place. It is a leaf
// package: policy (which stores a layout id), bios and shimimage all use it.
package layout

import "fmt"

//go:generate go run ./internal/gen

// Layout fixes the flash geometry shared by the shim and the provider's BIOS.
type Layout struct {
	ID       uint32 // stable id stored in policies and manifests; 0 is invalid
	Name     string // human name used on command lines and in YAML, e.g. "ovmf-4m"
	CodeSize uint32 // pflash unit 0 size: the shim image and the BIOS image are exactly this big
	CodeBase uint32 // guest-physical base of pflash unit 0 (top-aligned below 4 GiB)
	VarsSize uint32 // pflash unit 1 size: an optional vars file is exactly this big
	VarsBase uint32 // guest-physical base of pflash unit 1
	CodeFile string // Debian's OVMF code image of this layout, in /usr/share/OVMF
	VarsFile string // Debian's var store template of this layout, in /usr/share/OVMF
}

// ShimFile is the file name of the shim template the firmware build writes for the layout
// (build/shim/): shim.fd for the default layout, shim-NAME.fd for the others.
func (l Layout) ShimFile() string {
	if l.ID == Default {
		return "shim.fd"
	}
	return "shim-" + l.Name + ".fd"
}

// BySize returns the layout whose code (pflash unit 0) is size bytes.
func BySize(size int) (Layout, bool) {
	for _, l := range table {
		if int64(l.CodeSize) == int64(size) {
			return l, true
		}
	}
	return Layout{}, false
}

// All returns a copy of the layout table, ordered by id.
func All() []Layout { return append([]Layout(nil), table...) }

// ByID returns the layout with the given id.
func ByID(id uint32) (Layout, bool) {
	for _, l := range table {
		if l.ID == id {
			return l, true
		}
	}
	return Layout{}, false
}

// ByName returns the layout with the given name (e.g. "ovmf-4m").
func ByName(name string) (Layout, bool) {
	for _, l := range table {
		if l.Name == name {
			return l, true
		}
	}
	return Layout{}, false
}

// Names lists the known layout names, for help texts and error messages.
func Names() []string {
	var n []string
	for _, l := range table {
		n = append(n, l.Name)
	}
	return n
}

// String returns "ovmf-4m (id 1)".
func (l Layout) String() string { return fmt.Sprintf("%s (id %d)", l.Name, l.ID) }

// Describe returns the name of a layout id, or "unknown layout N".
func Describe(id uint32) string {
	if l, ok := ByID(id); ok {
		return l.Name
	}
	return fmt.Sprintf("unknown layout %d", id)
}
