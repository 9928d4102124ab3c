package inspect

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzInspect: any bytes give a report or an *Error (kind and message), never a panic.
func FuzzInspect(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte(`{"sev-measurement": "x"}`))
	f.Add([]byte("layout: ovmf-4m\nsigners:\n  - key: x\n"))
	f.Add([]byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"))
	f.Add(bytes.Repeat([]byte{0xFF}, 0x2000))
	f.Add(append(make([]byte, 0x28), []byte("_FVH")...))
	f.Add([]byte("SEVSHPKG"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Inspect("f", b, Options{})
		var ie *Error
		if err != nil && (!errors.As(err, &ie) || ie.Kind == "" || ie.Msg == "") {
			t.Fatalf("error %T %v", err, err)
		}
		if err == nil && (r == nil || r.Kind == "") {
			t.Fatal("report without a kind")
		}
		if _, err := InspectPackage("p", bytes.NewReader(b)); err != nil && !errors.As(err, &ie) {
			t.Fatalf("package error %T", err)
		}
	})
}
