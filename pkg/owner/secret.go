package owner

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/sevshim/sevshim/pkg/atomicfile"
	"github.com/sevshim/sevshim/pkg/format/receipt"
	"github.com/sevshim/sevshim/pkg/format/shimimage"
	"github.com/sevshim/sevshim/pkg/sev"
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

// ReceiptKeyArg is --receipt-key FILE (an existing key) or --new-receipt-key (generate one:
// Path, or the session's receipt.key when Path is empty; never overwrites).
type ReceiptKeyArg struct {
	Path     string
	Generate bool
}

// SecretReport is what `verifier secret` prints.
type SecretReport struct {
	Measure    *MeasureReport `json:"measurement"`
	Entries    []string       `json:"entries"`
	ReceiptKey string         `json:"receipt_key,omitempty"` // the key file
	NewKey     bool           `json:"receipt_key_generated,omitempty"`
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
	return BuildSecretWithReceipt(rnd, s, m, imagePath, image, args, ReceiptKeyArg{}, out)
}

// BuildSecretWithReceipt is BuildSecret that also puts the owner's receipt key into the table
// (entry receipt.KeyGUID, docs/formats.md section 9) when rk names one. The shim takes that
// entry out before anything else reads the table; the BIOS never sees it.
func BuildSecretWithReceipt(rnd io.Reader, s *Session, m *Measurement, imagePath string, image []byte, args []SecretArg, rk ReceiptKeyArg, out string) (*SecretReport, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	mr, err := CheckMeasurement(s, m, imagePath, image)
	rep := &SecretReport{Measure: mr, Out: out}
	if err != nil {
		return rep, fmt.Errorf("refusing to release the secret: %w", err)
	}
	withKey := rk.Path != "" || rk.Generate
	if len(args) == 0 && !withKey {
		return rep, fmt.Errorf("no --secret GUID=FILE (or receipt key) given")
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
		if a.GUID == receipt.KeyGUID {
			return rep, fmt.Errorf("--secret: %s is the receipt key's GUID; pass the key with --receipt-key", a.GUID)
		}
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
	var key []byte
	keyPath := rk.Path
	if withKey {
		if rk.Generate {
			if keyPath == "" {
				keyPath = filepath.Join(s.Dir, ReceiptKeyFile)
			}
		} else if key, err = LoadReceiptKey(keyPath); err != nil {
			return rep, err
		}
		if key == nil {
			key = make([]byte, receipt.KeySize) // placeholder of the right size for the size check
		}
		defer clear(key)
		t.Entries = append(t.Entries, sev.SecretEntry{GUID: receipt.KeyGUID, Data: key})
		rep.ReceiptKey, rep.NewKey = keyPath, rk.Generate
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
	if rk.Generate {
		// every check passed: only now make the key (and its file), then the real table
		clear(table)
		if key, err = NewReceiptKey(rnd, keyPath); err != nil {
			return rep, err
		}
		defer clear(key)
		t.Entries[len(t.Entries)-1].Data = key
		if table, err = t.Marshal(); err != nil {
			return rep, err
		}
		defer clear(table)
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
	if err := atomicfile.WriteFile(out, append(js, '\n'), 0o600); err != nil {
		if rk.Generate {
			os.Remove(keyPath) // no secret carries it: do not leave a key that nothing uses
		}
		return rep, err
	}
	return rep, nil
}
