package receipt_test

import (
	"bytes"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/sevshim/sevshim/pkg/format/internal/formattest"
	"github.com/sevshim/sevshim/pkg/format/receipt"
	"github.com/sevshim/sevshim/pkg/format/shimerr"
	"github.com/sevshim/sevshim/pkg/sev"
	"github.com/sevshim/sevshim/tests/golden"
)

const goldenDir = "../../../testdata/golden"

type vector struct {
	name, key, verdict, nonce, manifest, image, vars, policy string
	blob                                                     []byte
}

func vectors(t *testing.T) []vector {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(goldenDir, golden.ReceiptVectors))
	if err != nil {
		t.Fatal(err)
	}
	var out []vector
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if strings.HasPrefix(l, "#") {
			continue
		}
		c := strings.Split(l, "\t")
		if len(c) != 9 {
			t.Fatalf("vector %q: %d columns", l, len(c))
		}
		blob, err := hex.DecodeString(c[8])
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, vector{c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], blob})
	}
	if len(out) < 8 {
		t.Fatalf("only %d vectors", len(out))
	}
	return out
}

func readGolden(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(goldenDir, p))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func hexOrDash(p *[48]byte) string {
	if p == nil {
		return "-"
	}
	return hex.EncodeToString(p[:])
}

// TestGoldenVectors: every vector opens under its key and its fields are the columns; the C
// side (shim/test/test_receipt.c) rebuilds the same bytes from the same columns.
func TestGoldenVectors(t *testing.T) {
	for _, v := range vectors(t) {
		key := readGolden(t, v.key)
		r, err := receipt.Open(key, v.blob)
		if err != nil {
			t.Errorf("%s: %v", v.name, err)
			continue
		}
		if got := r.Verdict.ID(); got != v.verdict {
			t.Errorf("%s: verdict %s, want %s", v.name, got, v.verdict)
		}
		nonce := "-"
		if r.Nonce != nil {
			nonce = hex.EncodeToString(r.Nonce[:])
		}
		if nonce != v.nonce {
			t.Errorf("%s: nonce %s, want %s", v.name, nonce, v.nonce)
		}
		if v.manifest == "-" {
			if r.Manifest != nil {
				t.Errorf("%s: has manifest fields", v.name)
			}
		} else {
			want, err := receipt.ManifestInfo(readGolden(t, v.manifest))
			if err != nil {
				t.Fatal(err)
			}
			if r.Manifest == nil || *r.Manifest != *want {
				t.Errorf("%s: manifest %+v, want %+v", v.name, r.Manifest, want)
			}
		}
		for _, f := range []struct{ name, got, want string }{
			{"image", hexOrDash(r.Image), v.image}, {"vars", hexOrDash(r.Vars), v.vars}, {"policy", hexOrDash(r.Policy), v.policy}} {
			if f.got != f.want {
				t.Errorf("%s: %s %s, want %s", v.name, f.name, f.got, f.want)
			}
		}
		again, err := receipt.Seal(key, r)
		if err != nil || !bytes.Equal(again, v.blob) {
			t.Errorf("%s: re-sealed receipt differs (%v)", v.name, err)
		}
		if (v.verdict == "OK") != r.Accepted() {
			t.Errorf("%s: Accepted() = %v", v.name, r.Accepted())
		}
	}
}

// TestForgeries: another key, and a flipped bit anywhere in body or MAC, fail the MAC check.
func TestForgeries(t *testing.T) {
	v := vectors(t)[0]
	key := readGolden(t, v.key)
	other := bytes.Clone(key)
	other[0] ^= 1
	if _, err := receipt.Open(other, v.blob); !errors.Is(err, receipt.ErrMAC) {
		t.Errorf("another key: %v, want ErrMAC", err)
	}
	for i := 0; i < len(v.blob)*8; i++ {
		b := bytes.Clone(v.blob)
		b[i/8] ^= 1 << (i % 8)
		if _, err := receipt.Open(key, b); !errors.Is(err, receipt.ErrMAC) {
			t.Fatalf("bit %d flipped: %v, want ErrMAC", i, err)
		}
	}
	if _, err := receipt.Open(key, v.blob[:receipt.BlobSize-1]); err == nil {
		t.Error("short receipt opened")
	}
	if _, err := receipt.Open(key[:47], v.blob); err == nil {
		t.Error("47-byte key accepted")
	}
}

// TestParseStrict: a correctly MACed body that breaks a format rule is refused by Parse.
func TestParseStrict(t *testing.T) {
	v := vectors(t)[1] // accepted without nonce or vars: those fields must be zero
	body := v.blob[:receipt.Size]
	if _, err := receipt.Parse(body); err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	for _, c := range []struct {
		name string
		mut  func(b []byte)
		want string
	}{
		{"magic", func(b []byte) { b[0] = 'X' }, "magic"},
		{"version", func(b []byte) { le.PutUint16(b[8:], 2) }, "format version"},
		{"shim format", func(b []byte) { le.PutUint16(b[10:], 2) }, "shim format"},
		{"verdict", func(b []byte) { le.PutUint16(b[12:], 99) }, "verdict"},
		{"flags", func(b []byte) { le.PutUint16(b[14:], 0x20|le.Uint16(b[14:])) }, "undefined flag"},
		{"nonce without flag", func(b []byte) { b[0x10] = 1 }, "nonce"},
		{"vars without flag", func(b []byte) { b[0xC8+47] = 1 }, "vars"},
	} {
		b := bytes.Clone(body)
		c.mut(b)
		if _, err := receipt.Parse(b); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error about %q", c.name, err, c.want)
		}
	}
	if _, err := receipt.Parse(body[:10]); err == nil {
		t.Error("short body parsed")
	}
	if _, err := (&receipt.Receipt{ShimFormat: 1, Verdict: 99}).Encode(); err == nil {
		t.Error("unknown verdict encoded")
	}
}

func TestLines(t *testing.T) {
	v := vectors(t)[0]
	l := receipt.Line(v.blob)
	if !receipt.IsLine(l) || !receipt.IsLine(receipt.NoneLine) {
		t.Fatal("IsLine")
	}
	for _, in := range []string{l, strings.TrimPrefix(l, receipt.LinePrefix)} {
		b, err := receipt.ParseHex(in)
		if err != nil || !bytes.Equal(b, v.blob) {
			t.Errorf("ParseHex(%.30q...): %v", in, err)
		}
	}
	for _, in := range []string{receipt.NoneLine, "none"} {
		if _, err := receipt.ParseHex(in); !errors.Is(err, receipt.ErrNone) {
			t.Errorf("ParseHex(%q) = %v, want ErrNone", in, err)
		}
	}
	for _, bad := range []string{l[:len(l)-2], l + "00", "x" + l, l + " ", strings.ToUpper(l[len(receipt.LinePrefix):]), ""} {
		if _, err := receipt.ParseHex(bad); err == nil {
			t.Errorf("ParseHex(%.40q...) accepted", bad)
		}
	}
}

func TestTakeKey(t *testing.T) {
	key := bytes.Repeat([]byte{7}, receipt.KeySize)
	a := sev.SecretEntry{GUID: sev.DiskPassphraseID, Data: []byte("pass")}
	k := sev.SecretEntry{GUID: receipt.KeyGUID, Data: key}
	got, rest, found, err := receipt.TakeKey(&sev.SecretTable{Entries: []sev.SecretEntry{a, k}})
	if err != nil || !found || !bytes.Equal(got, key) || rest == nil || len(rest.Entries) != 1 || rest.Entries[0].GUID != a.GUID {
		t.Errorf("key + passphrase: %v %v %v", found, rest, err)
	}
	if _, rest, found, err := receipt.TakeKey(&sev.SecretTable{Entries: []sev.SecretEntry{k}}); err != nil || !found || rest != nil {
		t.Errorf("key only: rest %v, %v", rest, err)
	}
	if _, _, found, err := receipt.TakeKey(&sev.SecretTable{Entries: []sev.SecretEntry{a}}); err != nil || found {
		t.Errorf("no key: %v %v", found, err)
	}
	for _, bad := range [][]sev.SecretEntry{{k, k}, {{GUID: receipt.KeyGUID, Data: key[:47]}}} {
		if _, _, _, err := receipt.TakeKey(&sev.SecretTable{Entries: bad}); err == nil || !strings.Contains(err.Error(), "E065") {
			t.Errorf("%d entries: %v, want E065", len(bad), err)
		}
	}
}

// TestHeaderMatches: formats.h carries the same sizes, offsets, flags and GUID.
func TestHeaderMatches(t *testing.T) {
	h := formattest.Read(t, "shim/include/sevshim/formats.h")
	num := func(name string) int {
		m := regexp.MustCompile(`#define ` + name + `\s+(0x[0-9A-Fa-f]+|[0-9]+)u`).FindSubmatch(h)
		if m == nil {
			t.Fatalf("formats.h has no %s", name)
		}
		v, _ := strconv.ParseInt(string(m[1]), 0, 64)
		return int(v)
	}
	for name, want := range map[string]int{
		"SIZE": receipt.Size, "MAC_SIZE": receipt.MACSize, "KEY_SIZE": receipt.KeySize, "VERSION": receipt.Version,
		"OFF_VERSION": 0x08, "OFF_SHIM_FORMAT": 0x0A, "OFF_VERDICT": 0x0C, "OFF_FLAGS": 0x0E, "OFF_NONCE": 0x10,
		"OFF_BIOS_VER": 0x30, "OFF_MANIFEST": 0x38, "OFF_KEY_ID": 0x68, "OFF_IMAGE": 0x98, "OFF_VARS": 0xC8, "OFF_POLICY": 0xF8,
		"F_NONCE": receipt.FlagNonce, "F_MANIFEST": receipt.FlagManifest, "F_IMAGE": receipt.FlagImage,
		"F_VARS": receipt.FlagVars, "F_POLICY": receipt.FlagPolicy,
	} {
		if got := num("SEVSHIM_RECEIPT_" + name); got != want {
			t.Errorf("SEVSHIM_RECEIPT_%s = %#x in formats.h, %#x in Go", name, got, want)
		}
	}
	if got := num("SEVSHIM_NONCE_SIZE"); got != receipt.NonceSize {
		t.Errorf("SEVSHIM_NONCE_SIZE = %d", got)
	}
	m := regexp.MustCompile(`#define SEVSHIM_RECEIPT_MAGIC\s+"([^"]+)"`).FindSubmatch(h)
	if m == nil || string(m[1]) != receipt.Magic {
		t.Errorf("SEVSHIM_RECEIPT_MAGIC %q", m)
	}
	g := regexp.MustCompile(`#define SEVSHIM_GUID_RECEIPT_KEY \{([^}]*)\}`).FindSubmatch(h)
	if g == nil {
		t.Fatal("no SEVSHIM_GUID_RECEIPT_KEY")
	}
	var b []byte
	for _, x := range strings.Split(string(g[1]), ",") {
		v, err := strconv.ParseUint(strings.TrimSpace(x), 0, 8)
		if err != nil {
			t.Fatal(err)
		}
		b = append(b, byte(v))
	}
	if want := [16]byte(receipt.KeyGUID); !bytes.Equal(b, want[:]) {
		t.Errorf("SEVSHIM_GUID_RECEIPT_KEY %x, want %x", b, want)
	}
}

func TestManifestInfo(t *testing.T) {
	m := readGolden(t, "manifest/a-v6-pattern.bin")
	info, err := receipt.ManifestInfo(m)
	if err != nil {
		t.Fatal(err)
	}
	if info.Digest != sha512.Sum384(m) || info.BIOSVersion != 6 {
		t.Errorf("%+v", info)
	}
	if _, err := receipt.ManifestInfo(m[:351]); err == nil {
		t.Error("351-byte manifest")
	}
	_ = shimerr.OK
}
