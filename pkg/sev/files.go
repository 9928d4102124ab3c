package sev

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"

	"github.com/sevshim/sevshim/pkg/atomicfile"
)

// QEMU's `-object sev-guest,dh-cert-file=F,session-file=G` reads F and G as base64 text
// (sevctl writes the same files). Encoders write standard padded base64 without a newline;
// decoders accept surrounding whitespace and nothing else.

// EncodeBase64 is the file form of a blob.
func EncodeBase64(b []byte) []byte {
	return []byte(base64.StdEncoding.EncodeToString(b))
}

// decodeB64 decodes the base64 file form of what and parses it with parse.
func decodeB64[T any](what string, text []byte, parse func([]byte) (T, error)) (T, error) {
	b, err := base64.StdEncoding.Strict().DecodeString(string(bytes.TrimSpace(text)))
	if err != nil {
		var zero T
		return zero, fmt.Errorf("%s: not base64: %v", what, err)
	}
	return parse(b)
}

// DecodeCertBase64 decodes a base64 dh-cert file (or a base64 PDH from query-sev-capabilities).
func DecodeCertBase64(text []byte) (*Cert, error) { return decodeB64("dh cert", text, ParseCert) }

// DecodeSessionBase64 decodes a base64 session file.
func DecodeSessionBase64(text []byte) (*Session, error) {
	return decodeB64("session", text, ParseSession)
}

// DecodePacketHeaderBase64 decodes a sevctl / sev-inject-launch-secret packet header.
func DecodePacketHeaderBase64(text []byte) (*PacketHeader, error) {
	return decodeB64("packet header", text, ParsePacketHeader)
}

// DecodeMeasurementBase64 decodes query-sev-launch-measure's "data".
func DecodeMeasurementBase64(text []byte) (*Measurement, error) {
	return decodeB64("launch measurement", text, ParseMeasurement)
}

// LaunchFiles are the file names sevctl's `session` command writes for name.
type LaunchFiles struct {
	GODH, Session, TEK, TIK string
}

// LaunchFileNames returns dir/<name>_godh.b64, _session.b64, _tek.bin, _tik.bin.
func LaunchFileNames(dir, name string) LaunchFiles {
	p := func(s string) string { return filepath.Join(dir, name+s) }
	return LaunchFiles{GODH: p("_godh.b64"), Session: p("_session.b64"), TEK: p("_tek.bin"), TIK: p("_tik.bin")}
}

// WriteFiles writes the owner session in sevctl's shape: the GODH cert and session as base64
// (for QEMU's dh-cert-file / session-file) and the raw TEK/TIK (mode 0600). Each file is
// written atomically.
func (o *OwnerSession) WriteFiles(dir, name string) (LaunchFiles, error) {
	f := LaunchFileNames(dir, name)
	for _, w := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{
		{f.GODH, EncodeBase64(o.GODH.Marshal()), 0o644},
		{f.Session, EncodeBase64(o.Session.Marshal()), 0o644},
		{f.TEK, o.Keys.TEK[:], 0o600},
		{f.TIK, o.Keys.TIK[:], 0o600},
	} {
		if err := atomicfile.WriteFile(w.path, w.data, w.mode); err != nil {
			return f, err
		}
	}
	return f, nil
}

// ReadKeyFile reads a 16-byte raw TEK or TIK file.
func ReadKeyFile(path string) ([16]byte, error) {
	var k [16]byte
	b, err := os.ReadFile(path)
	if err != nil {
		return k, err
	}
	if len(b) != 16 {
		return k, fmt.Errorf("%s: %d bytes, want a raw 16-byte key", path, len(b))
	}
	copy(k[:], b)
	return k, nil
}

// ReadLaunchFiles reads and decodes the GODH certificate and the session of f, the two files
// QEMU's sev-guest object reads.
func ReadLaunchFiles(f LaunchFiles) (*Cert, *Session, error) {
	godh, err := os.ReadFile(f.GODH)
	if err != nil {
		return nil, nil, err
	}
	sess, err := os.ReadFile(f.Session)
	if err != nil {
		return nil, nil, err
	}
	dh, err := DecodeCertBase64(godh)
	if err != nil {
		return nil, nil, err
	}
	s, err := DecodeSessionBase64(sess)
	if err != nil {
		return nil, nil, err
	}
	return dh, s, nil
}
