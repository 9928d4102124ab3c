package layout

import "testing"

// The generated table holds both layouts Debian ships, with the geometry QEMU maps them at
// (pflash top-aligned below 4 GiB) and the file names of /usr/share/OVMF.
func TestTable(t *testing.T) {
	want := []Layout{
		{ID: 1, Name: "ovmf-4m", CodeSize: 0x37C000, CodeBase: 0xFFC84000, VarsSize: 0x84000, VarsBase: 0xFFC00000,
			CodeFile: "OVMF_CODE_4M.fd", VarsFile: "OVMF_VARS_4M.fd"},
		{ID: 2, Name: "ovmf-2m", CodeSize: 0x1E0000, CodeBase: 0xFFE20000, VarsSize: 0x20000, VarsBase: 0xFFE00000,
			CodeFile: "OVMF_CODE.fd", VarsFile: "OVMF_VARS.fd"},
	}
	got := All()
	if len(got) != len(want) {
		t.Fatalf("%d layouts, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("layout %d: %+v, want %+v", i, got[i], want[i])
		}
		if l, ok := ByName(want[i].Name); !ok || l != want[i] {
			t.Errorf("ByName(%q) = %+v, %v", want[i].Name, l, ok)
		}
		if l, ok := BySize(int(want[i].CodeSize)); !ok || l != want[i] {
			t.Errorf("BySize(%#x) = %+v, %v", want[i].CodeSize, l, ok)
		}
	}
	if Default != OVMF4M || OVMF2M != 2 {
		t.Fatalf("Default %d, OVMF2M %d", Default, OVMF2M)
	}
	if a, b := want[0].ShimFile(), want[1].ShimFile(); a != "shim.fd" || b != "shim-ovmf-2m.fd" {
		t.Fatalf("ShimFile: %q, %q", a, b)
	}
	if _, ok := ByID(3); ok {
		t.Fatal("ByID(3) found a layout")
	}
	if _, ok := BySize(0x400000); ok {
		t.Fatal("BySize(4 MiB) found a layout")
	}
}
