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
	want := "5345565348455632" + "01000000" + "00000000" + "0600000000000000"
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
	for i := 0xA8; i < Size; i++ {
		if b[i] != 0 {
			t.Fatalf("no var store: byte %#x is %#x, want an all-zero digest", i, b[i])
		}
	}
	// with a var store: flag bit 0 and the digest at 0xa8
	v := sample()
	v.VarStore = true
	for i := range v.VarsDigest {
		v.VarsDigest[i] = 0x40 + byte(i)
	}
	bv := v.Marshal()
	if bv[0x0C] != 1 || bv[0xA8] != 0x40 || bv[0xD7] != 0x40+47 || !bytes.Equal(bv[:0x0C], b[:0x0C]) || !bytes.Equal(bv[0x10:0xA8], b[0x10:0xA8]) {
		t.Fatalf("var store fields misplaced: % x", bv)
	}
	if e, err := Parse(bv); err != nil || *e != *v {
		t.Fatalf("round trip with a var store: %+v %v", e, err)
	}
}

func TestParseRejects(t *testing.T) {
	good := sample().Marshal()
	cases := map[string][]byte{
		"short":               good[:Size-1],
		"long":                append(append([]byte{}, good...), 0),
		"magic":               func() []byte { b := bytes.Clone(good); b[0] ^= 1; return b }(),
		"flags":               func() []byte { b := bytes.Clone(good); b[0x0D] = 1; return b }(),
		"flag-2":              func() []byte { b := bytes.Clone(good); b[0x0C] = 2; return b }(),
		"digest-without-flag": func() []byte { b := bytes.Clone(good); b[0xD7] = 1; return b }(),
		"v1": func() []byte {
			b := bytes.Clone(good[:168])
			b[7] = '1'
			return b
		}(),
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
	f.Add([]byte("SEVSHEV2"))
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
