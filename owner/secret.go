package owner

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/sevshim/sevshim/sev"
	"github.com/sevshim/sevshim/shimimage"
)

// SecretFile is secret.json, with libvirt's virDomainSetLaunchSecurityState keys; `hostctl
// launch-finish` passes them to LAUNCH_SECRET (QEMU's sev-inject-launch-secret takes the same
// three values).
type SecretFile struct {
	Header  string `json:"sev-secret-header"`      // base64 of the 52-byte packet header
	Secret  string `json:"sev-secret"`             // base64 of the ciphertext
	Address uint64 `json:"sev-secret-set-address"` // guest-physical address of the secret block
}

// SecretArg is one --secret GUID=FILE.
type SecretArg struct {
	GUID sev.GUID
	Path string
}

// ParseSecretArg parses GUID=FILE.
func ParseSecretArg(s string) (SecretArg, error) {
	g, p, ok := strings.Cut(s, "=")
	if !ok || p == "" {
		return SecretArg{}, fmt.Errorf("--secret %q: want GUID=FILE, e.g. %s=passphrase.txt", s, sev.DiskPassphraseID)
	}
	id, err := sev.ParseGUID(g)
	if err != nil {
		return SecretArg{}, fmt.Errorf("--secret %q: %v", s, err)
	}
	if id == (sev.GUID{}) {
		return SecretArg{}, fmt.Errorf("--secret %q: the NULL GUID marks a deleted entry; choose another", s)
	}
	return SecretArg{GUID: id, Path: p}, nil
}

// SecretReport is what `verifier secret` prints.
type SecretReport struct {
	Measure    *MeasureReport `json:"measurement"`
	Entries    []string       `json:"entries"`
	TableSize  int            `json:"table_size"`
	BlockBase  uint32         `json:"secret_block_base"`
	BlockSize  uint32         `json:"secret_block_size"`
	Out        string         `json:"out"`
	PacketSize int            `json:"packet_size"`
}

// BuildSecret refuses unless CheckMeasurement says OK; then it builds the EFI secret table
// (sevctl convention) from the files, checks that it fits the image's secret block, encrypts
// and MACs it as a LAUNCH_SECRET packet bound to the measured value, and writes out
// atomically (mode 0600). rnd supplies the packet IV (nil: crypto/rand).
func BuildSecret(rnd io.Reader, s *Session, m *Measurement, imagePath string, image []byte, args []SecretArg, out string) (*SecretReport, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	mr, err := CheckMeasurement(s, m, imagePath, image)
	rep := &SecretReport{Measure: mr, Out: out}
	if err != nil {
		return rep, fmt.Errorf("refusing to release the secret: %w", err)
	}
	if len(args) == 0 {
		return rep, fmt.Errorf("no --secret GUID=FILE given")
	}
	info, err := shimimage.ParseInfo(image)
	if err != nil {
		return rep, fmt.Errorf("%s: %w", imagePath, err)
	}
	if !info.SecretUsable() {
		return rep, fmt.Errorf("%s declares no SEV secret block (footer entry %s with a non-zero size): there is nowhere to put a secret", imagePath, shimimage.SEVSecretGUID)
	}
	rep.BlockBase, rep.BlockSize = info.SecretBase, info.SecretSize
	t := &sev.SecretTable{}
	seen := map[sev.GUID]bool{}
	for _, a := range args {
		if seen[a.GUID] {
			return rep, fmt.Errorf("--secret: GUID %s given twice", a.GUID)
		}
		seen[a.GUID] = true
		data, err := os.ReadFile(a.Path)
		if err != nil {
			return rep, fmt.Errorf("--secret %s: %w", a.GUID, err)
		}
		if len(data) == 0 {
			return rep, fmt.Errorf("--secret %s: %s is empty", a.GUID, a.Path)
		}
		t.Entries = append(t.Entries, sev.SecretEntry{GUID: a.GUID, Data: data})
		rep.Entries = append(rep.Entries, fmt.Sprintf("%s (%d bytes)", a.GUID, len(data)))
	}
	table, err := t.Marshal()
	if err != nil {
		return rep, err
	}
	defer clear(table)
	rep.TableSize = len(table)
	if uint64(len(table)) > uint64(info.SecretSize) {
		return rep, fmt.Errorf("the secret table is %d bytes but the image's secret block at 0x%x holds only %d: use fewer or smaller secrets", len(table), info.SecretBase, info.SecretSize)
	}
	var iv [16]byte
	if _, err := io.ReadFull(rnd, iv[:]); err != nil {
		return rep, err
	}
	tr := sev.NewTransport(s.Keys)
	h, trans, err := tr.SealSecret(table, iv, m.M.Measure, m.Version)
	if err != nil {
		return rep, err
	}
	rep.PacketSize = len(trans)
	f := SecretFile{Header: base64.StdEncoding.EncodeToString(h.Marshal()), Secret: base64.StdEncoding.EncodeToString(trans),
		Address: uint64(info.SecretBase)}
	js, _ := json.MarshalIndent(f, "", "  ")
	if err := sev.WriteFileAtomic(out, append(js, '\n'), 0o600); err != nil {
		return rep, err
	}
	return rep, nil
}
