package ovmf

import (
	"bytes"
	"errors"
	"os"
	"testing"

	"github.com/sevshim/sevshim/pkg/format/layout"
	"github.com/sevshim/sevshim/pkg/format/shimimage/shimtest"
)

func ovmf(t *testing.T, name string) []byte {
	b, err := os.ReadFile("/usr/share/OVMF/" + name)
	if err != nil {
		t.Skipf("Debian OVMF not installed: %v", err)
	}
	return b
}

func TestCheckDebianOVMF(t *testing.T) {
	l, _ := layout.ByID(layout.OVMF4M)
	for _, n := range []string{"OVMF_CODE_4M.fd", "OVMF_CODE_4M.secboot.fd"} {
		rep, err := CheckBIOS(ovmf(t, n), l)
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		if len(rep.Volumes) != 2 {
			t.Errorf("%s: %d top-level volumes, want 2 (FVMAIN_COMPACT, SECFV)", n, len(rep.Volumes))
		}
	}
}

func TestDeepScan(t *testing.T) {
	rep, err := Scan(ovmf(t, "OVMF_CODE_4M.fd"), true)
	if err != nil {
		t.Fatal(err)
	}
	nested := 0
	for _, v := range rep.Volumes {
		nested += len(v.Nested)
	}
	if nested != 2 || rep.Files < 100 {
		t.Errorf("nested %d volumes, %d files", nested, rep.Files)
	}
}

func TestRefusals(t *testing.T) {
	l, _ := layout.ByID(layout.OVMF4M)
	img := ovmf(t, "OVMF_CODE_4M.fd")
	noTable := bytes.Clone(img)
	copy(noTable[len(noTable)-0x30:], make([]byte, 16))
	noFV := make([]byte, len(img))
	copy(noFV[len(noFV)-0x200:], img[len(img)-0x200:]) // footer table but no volumes
	for name, b := range map[string][]byte{
		"truncated":     img[:len(img)-0x1000],
		"no-footer":     noTable,
		"no-volumes":    noFV,
		"random":        bytes.Repeat([]byte{0x5a}, len(img)),
		"sevshim image": shimtest.Template(layout.OVMF4M),
	} {
		if _, err := CheckBIOS(b, l); !errors.Is(err, ErrNotUEFI) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
