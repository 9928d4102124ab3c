package tpmevent

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

func sample() *Event {
	e := &Event{Layout: 1, BIOSVersion: 6}
	for i := range e.SignerKeyID {
		e.SignerKeyID[i] = byte(i)
		e.BIOSDigest[i] = byte(0x80 + i)
		e.PolicyDigest[i] = byte(0xff - i)
	}
	return e
}

func TestMarshalLayout(t *testing.T) {
	b := sample().Marshal()
	if len(b) != Size {
		t.Fatalf("size %d", len(b))
	}
	// Field positions fixed by docs/formats.md section 7.
	want := "5345565348455631" + "01000000" + "00000000" + "0600000000000000"
	if got := hex.EncodeToString(b[:0x18]); got != want {
		t.Fatalf("header\n got %s\nwant %s", got, want)
	}
	if b[0x18] != 0 || b[0x47] != 47 || b[0x48] != 0x80 || b[0x78] != 0xff || b[0xA7] != 0xff-47 {
		t.Fatalf("digest fields misplaced: % x", b[0x18:])
	}
	e, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if *e != *sample() {
		t.Fatalf("round trip: %+v", e)
	}
}

func TestParseRejects(t *testing.T) {
	good := sample().Marshal()
	cases := map[string][]byte{
		"short":    good[:Size-1],
		"long":     append(append([]byte{}, good...), 0),
		"magic":    func() []byte { b := bytes.Clone(good); b[0] ^= 1; return b }(),
		"reserved": func() []byte { b := bytes.Clone(good); b[0x0D] = 1; return b }(),
	}
	for name, b := range cases {
		if _, err := Parse(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestReplayMatchesDefinition(t *testing.T) {
	ev := sample().Marshal()
	got, err := Replay(crypto.SHA256, nil, ev)
	if err != nil {
		t.Fatal(err)
	}
	inner := sha256.Sum256(ev)
	outer := sha256.Sum256(append(make([]byte, 32), inner[:]...))
	if !bytes.Equal(got, outer[:]) {
		t.Fatalf("replay %x, want %x", got, outer)
	}
	if _, err := Replay(crypto.SHA256, make([]byte, 20), ev); err == nil {
		t.Fatal("accepted a PCR of the wrong size")
	}
}

func FuzzParse(f *testing.F) {
	f.Add(sample().Marshal())
	f.Add([]byte("SEVSHEV1"))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Parse(b)
		if err != nil {
			return
		}
		if !bytes.Equal(e.Marshal(), b) {
			t.Fatalf("accepted bytes do not round-trip")
		}
	})
}
