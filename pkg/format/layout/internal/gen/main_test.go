package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// The committed layouts_gen.go is what the generator writes from today's layouts.def: a row
// added to the .def without `go generate ./pkg/format/layout/` fails here.
func TestGeneratedIsCurrent(t *testing.T) {
	def, err := os.ReadFile("../../" + DefPath)
	if err != nil {
		t.Fatal(err)
	}
	want, err := Source(def)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../../" + OutPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("pkg/format/layout/%s is stale versus shim/include/sevshim/layouts.def: run go generate ./pkg/format/layout/", OutPath)
	}
}

func TestParseRefusesMalformedRows(t *testing.T) {
	for _, def := range []string{
		"",
		"/* only a comment */\n",
		`SEVSHIM_LAYOUT_ROW(1, OVMF_4M, "ovmf-4m", 0x37C000, 0x84000, "OVMF_CODE_4M.fd")` + "\n",
		`SEVSHIM_LAYOUT_ROW(1, OVMF_4M, "ovmf-4m", 0x137C000000, 0x84000, "a", "b")` + "\n",
		`SEVSHIM_LAYOUT_ROW(1, OVMF_4M, ovmf-4m, 0x37C000, 0x84000, "a", "b")` + "\n",
	} {
		if _, err := Parse([]byte(def)); err == nil {
			t.Errorf("Parse(%q) accepted", strings.TrimSpace(def))
		}
	}
}
