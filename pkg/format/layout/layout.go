// Package layout holds the one table of BIOS flash layouts (docs/formats.md section 1).
//
// It is a leaf package so that both policy (which stores a layout id) and bios (which checks
// images against a layout) can use the same definition without an import cycle. Package bios
// re-exports everything here; most callers should use bios.Layout and friends.
package layout

import "fmt"

// Layout fixes the flash geometry shared by the shim and the provider's BIOS.
type Layout struct {
	ID       uint32 // stable id stored in policies and manifests; 0 is invalid
	Name     string // human name used on command lines and in YAML, e.g. "ovmf-4m"
	CodeSize uint32 // pflash unit 0 size: the shim image and the BIOS image are exactly this big
	CodeBase uint32 // guest-physical base of pflash unit 0 (top-aligned below 4 GiB)
	VarsSize uint32 // pflash unit 1 size: an optional vars file is exactly this big
	VarsBase uint32 // guest-physical base of pflash unit 1
}

// OVMF4M is the id of the Debian/edk2 OVMF "4M" layout.
const OVMF4M uint32 = 1

var table = []Layout{
	{ID: OVMF4M, Name: "ovmf-4m", CodeSize: 0x37C000, CodeBase: 0xFFC84000, VarsSize: 0x84000, VarsBase: 0xFFC00000},
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
