package libvirt

import (
	"encoding/binary"
	"errors"
	"io"
)

// The save image that virDomainRestoreFlags and a managed-save start read, as libvirt's QEMU
// driver writes it (libvirt's qemu save image format, "virQEMUSaveHeader", version 2):
//
//	offset size
//	0      16   magic "LibvirtQemudSave"
//	16     4    version (2)
//	20     4    data_len: bytes of XML, cookie and padding that follow the header
//	24     4    was_running (1: the domain runs after a restore without a paused/running flag)
//	28     4    compressed (0: the QEMU stream is raw; later versions call it "format")
//	32     4    cookieOffset (0: no cookie)
//	36     56   14 unused 32-bit words, zero
//	92          data_len bytes: the domain XML, a NUL, zero padding
//	            then the raw QEMU migration stream ("QEVM" ...) to the end
//
// Every integer is little-endian (the host's order on x86, where libvirt writes it raw).
// See docs/hostctl.md (libvirt) for how receive uses it.

const (
	saveMagic      = "LibvirtQemudSave"
	saveVersion    = 2
	saveHeaderSize = 92
	// savePad is the zero padding after the XML, as libvirt leaves room for a later XML edit.
	savePad = 64 << 10
)

// writeSaveHeader writes the header and data section for domain XML xml; the raw QEMU
// stream follows it in the same file.
func writeSaveHeader(w io.Writer, xml []byte, wasRunning bool) error {
	if len(xml) == 0 {
		return errors.New("libvirt save image: empty domain XML")
	}
	dataLen := len(xml) + 1 + savePad
	b := make([]byte, saveHeaderSize+dataLen)
	copy(b, saveMagic)
	le := binary.LittleEndian
	le.PutUint32(b[16:], saveVersion)
	le.PutUint32(b[20:], uint32(dataLen))
	if wasRunning {
		le.PutUint32(b[24:], 1)
	}
	// compressed, cookieOffset and the unused words stay zero.
	copy(b[saveHeaderSize:], xml)
	_, err := w.Write(b)
	return err
}
