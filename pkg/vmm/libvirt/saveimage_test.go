package libvirt

import (
	"bytes"
	"encoding/binary"
	"testing"
)

func TestSaveHeaderBytes(t *testing.T) {
	var b bytes.Buffer
	xml := []byte("<domain/>")
	if err := writeSaveHeader(&b, xml, false); err != nil {
		t.Fatal(err)
	}
	got := b.Bytes()
	dataLen := len(xml) + 1 + savePad
	if len(got) != 92+dataLen {
		t.Fatalf("%d bytes, want %d", len(got), 92+dataLen)
	}
	want := append([]byte("LibvirtQemudSave"),
		2, 0, 0, 0, // version
		byte(dataLen), byte(dataLen>>8), byte(dataLen>>16), byte(dataLen>>24),
		0, 0, 0, 0, // was_running
		0, 0, 0, 0, // compressed: raw
		0, 0, 0, 0, // cookieOffset: none
	)
	want = append(want, make([]byte, 14*4)...)
	if !bytes.Equal(got[:92], want) {
		t.Fatalf("header\n got %x\nwant %x", got[:92], want)
	}
	if !bytes.Equal(got[92:92+len(xml)], xml) || got[92+len(xml)] != 0 {
		t.Fatal("the XML and its NUL do not follow the header")
	}
	if !bytes.Equal(got[92+len(xml):], make([]byte, dataLen-len(xml))) {
		t.Fatal("padding is not zero")
	}
	b.Reset()
	if err := writeSaveHeader(&b, xml, true); err != nil {
		t.Fatal(err)
	}
	if binary.LittleEndian.Uint32(b.Bytes()[24:]) != 1 {
		t.Fatal("was_running not set")
	}
	if writeSaveHeader(&b, nil, false) == nil {
		t.Fatal("empty XML accepted")
	}
}
