package sev

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// QEMU's `-object sev-guest,dh-cert-file=F,session-file=G` reads F and G as base64 text
// (sevctl writes the same files). Encoders write standard padded base64 without a newline;
// decoders accept surrounding whitespace and nothing else.

// EncodeBase64 is the file form of a blob.
func EncodeBase64(b []byte) []byte {
	return []byte(base64.StdEncoding.EncodeToString(b))
}

func decodeB64(what string, text []byte) ([]byte, error) {
	t := bytes.TrimSpace(text)
	b, err := base64.StdEncoding.Strict().DecodeString(string(t))
	if err != nil {
		return nil, fmt.Errorf("%s: not base64: %v", what, err)
	}
	return b, nil
}

// DecodeCertBase64 decodes a base64 dh-cert file (or a base64 PDH from query-sev-capabilities).
func DecodeCertBase64(text []byte) (*Cert, error) {
	b, err := decodeB64("dh cert", text)
	if err != nil {
		return nil, err
	}
	return ParseCert(b)
}

// DecodeSessionBase64 decodes a base64 session file.
func DecodeSessionBase64(text []byte) (*Session, error) {
	b, err := decodeB64("session", text)
	if err != nil {
		return nil, err
	}
	return ParseSession(b)
}

// DecodePacketHeaderBase64 decodes a sevctl / sev-inject-launch-secret packet header.
func DecodePacketHeaderBase64(text []byte) (*PacketHeader, error) {
	b, err := decodeB64("packet header", text)
	if err != nil {
		return nil, err
	}
	return ParsePacketHeader(b)
}

// DecodeMeasurementBase64 decodes query-sev-launch-measure's "data".
func DecodeMeasurementBase64(text []byte) (*Measurement, error) {
	b, err := decodeB64("launch measurement", text)
	if err != nil {
		return nil, err
	}
	return ParseMeasurement(b)
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
		if err := WriteFileAtomic(w.path, w.data, w.mode); err != nil {
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

// WriteFileAtomic writes data to a temporary file in the same directory, syncs it, sets mode
// and renames it over path. Errors name path and the reason, never the temporary file.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return &wrapped{fmt.Sprintf("cannot write %s: directory %s does not exist", path, dir), err}
		}
		return writeError(path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return writeError(path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return writeError(path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return writeError(path, err)
	}
	if err := f.Close(); err != nil {
		return writeError(path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return writeError(path, err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// wrapped is an error with its own message that still matches its cause (errors.Is).
type wrapped struct {
	msg string
	err error
}

func (e *wrapped) Error() string { return e.msg }
func (e *wrapped) Unwrap() error { return e.err }

// writeError says why path could not be written without the temporary file's name: the
// reason of a *PathError or *LinkError (e.g. "permission denied", "no space left on device").
func writeError(path string, err error) error {
	var pe *fs.PathError
	var le *os.LinkError
	switch {
	case errors.As(err, &pe):
		err = pe.Err
	case errors.As(err, &le):
		err = le.Err
	}
	return fmt.Errorf("cannot write %s: %w", path, err)
}
