package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sevshim/sevshim/builder/inspect"
	"github.com/sevshim/sevshim/pkg/format/guestpkg"
	"github.com/sevshim/sevshim/pkg/migrate"
	"github.com/sevshim/sevshim/pkg/sev/sevtest"
)

// guestPackage writes a real guest package: a trimmed QEMU 7.2 migration stream with every
// page sealed as SEND_UPDATE_DATA seals it (docs/formats.md section 8).
func guestPackage(t *testing.T, path string) {
	t.Helper()
	stream, err := os.ReadFile(filepath.Join(testdataDir, "../../../pkg/migrate/testdata/streams/tiny.bin"))
	if err != nil {
		t.Fatal(err)
	}
	snd := sevtest.NewSend(t)
	var out bytes.Buffer
	h := &guestpkg.Header{Policy: 1, PDH: snd.PDH, Session: snd.Session,
		Shape: guestpkg.Shape{Machine: "pc-q35-7.2", RAMSize: 0x20000000, CodeSize: 0x37C000, VarsSize: 0x84000, LayoutID: 1, CPUs: 1}}
	bld := &guestpkg.Builder{Out: &out, Pkg: h, Seal: func(page []byte, p *guestpkg.Packet) error {
		return snd.Seal(p.Header[:], p.Data[:], page)
	}}
	if _, err := migrate.Parse(bytes.NewReader(stream), bld); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestInspectNamesWhatItFound: inspect explains every file the project writes (or says what a
// broken one looks like, e.g. a truncated shim "2000000 of 3653632 bytes"), and with --json
// its errors are JSON objects {"file", "kind", "error"} too.
func TestInspectNamesWhatItFound(t *testing.T) {
	inEnv(t)
	fx := filepath.Join(testdataDir, "../../../verifier/cli/testdata/fixture")
	copyFile(t, filepath.Join(fx, "provider.chain"), "provider.chain")
	copyFile(t, filepath.Join(fx, "root", "ask_ark.cert"), "ask_ark.cert")
	copyFile(t, filepath.Join(fx, "measurement.json"), "measurement.json")
	for _, n := range []string{"session.json", "guest_godh.b64", "guest_session.b64", "guest_tek.bin"} {
		copyFile(t, filepath.Join(fx, "sess", n), n)
	}
	guestPackage(t, "guest.pkg")
	pkg, _ := os.ReadFile("guest.pkg")
	os.WriteFile("cut.pkg", pkg[:len(pkg)-100], 0o600)
	os.WriteFile("empty", nil, 0o644)
	os.WriteFile("notes.txt", []byte("hello\n"), 0o644)
	os.WriteFile("other.json", []byte(`{"foo": 1}`), 0o644)
	os.WriteFile("secret.json", []byte(`{"sev-secret-header": "AAAA", "sev-secret": "AAAA", "sev-secret-set-address": 7340032}`), 0o600)
	// the small JSON state files, as host and psp write them (keys only matter here)
	os.WriteFile("platform.json", []byte(`{"format": 1, "api_major": 0, "api_minor": 24, "build": 15, "config_es": false, "chip_id": "49a2", "next_handle": 1, "next_asid": 1}`), 0o600)
	os.WriteFile("launch.json", []byte(`{"format": 1, "stage": "launched", "psp_kind": "emu", "handle": 1, "policy": 1, "image_sha256": "ab"}`), 0o600)
	os.WriteFile("receive.json", []byte(`{"stage": "running", "package": "guest.pkg", "bundle": "v5.bundle", "verdict": "OK"}`), 0o600)
	os.WriteFile("evidence.json", []byte(`{"format": "sevshim-tpm-evidence-1", "pcr": 15, "quote_bank": "sha256"}`), 0o644)
	want := []struct{ file, kind string }{
		{"platform.json", inspect.KindPlatformState},
		{"launch.json", inspect.KindLaunchState},
		{"receive.json", inspect.KindRecvState},
		{"evidence.json", inspect.KindEvidence},
		{"provider.chain", inspect.KindChain},
		{"ask_ark.cert", inspect.KindAMDChain},
		{"measurement.json", inspect.KindMeasurement},
		{"session.json", inspect.KindSession},
		{"secret.json", inspect.KindSecret},
		{"guest_godh.b64", inspect.KindBase64Blob},
		{"guest_session.b64", inspect.KindBase64Blob},
		{"guest_tek.bin", inspect.KindRawKey},
		{"signer-a.pub.pem", inspect.KindPublicKey},
		{"signer-a.pem", inspect.KindPrivateKey},
		{"policy.yaml", inspect.KindPolicyYAML},
		{"guest.pkg", inspect.KindGuestPkg},
		{"cut.pkg", "!" + inspect.KindGuestPkg},
		{"empty", "!" + inspect.KindUnknown},
		{"notes.txt", "!" + inspect.KindUnknown},
		{"other.json", "!" + inspect.KindUnknown},
	}
	fixed := len(want)
	if _, err := os.Stat("/usr/share/OVMF/OVMF_VARS_4M.fd"); err == nil {
		copyFile(t, "/usr/share/OVMF/OVMF_VARS_4M.fd", "vars.fd")
		want = append(want, struct{ file, kind string }{"vars.fd", inspect.KindVars})
	}
	if shim, err := os.ReadFile(filepath.Join(testdataDir, "../../../build/shim/shim.fd")); err == nil {
		os.WriteFile("truncated.fd", shim[:2000000], 0o644)
		want = append(want, struct{ file, kind string }{"truncated.fd", "!" + inspect.KindTruncated})
	} else {
		t.Log("no build/shim/shim.fd (make shim): the truncated-shim case is skipped")
	}
	var all strings.Builder
	for i, w := range want {
		if i == fixed {
			// the golden output covers the files every checkout has
			checkGolden(t, "inspect-files.txt", all.String())
		}
		js, jerr, jc := run(t, "inspect", "--json", w.file)
		txt, terr, tc := run(t, "inspect", w.file)
		var got struct {
			Kind  string `json:"kind"`
			Error string `json:"error"`
			About string `json:"about"`
		}
		if err := json.Unmarshal([]byte(js), &got); err != nil {
			t.Errorf("%s: --json output is not JSON (%v): %q %q", w.file, err, js, jerr)
			continue
		}
		refused := strings.HasPrefix(w.kind, "!")
		if got.Kind != strings.TrimPrefix(w.kind, "!") || (got.Error != "") != refused {
			t.Errorf("%s: kind %q, error %q; want %s", w.file, got.Kind, got.Error, w.kind)
		}
		if refused {
			if jc != 1 || tc != 1 || terr != "builder: "+w.file+": "+got.Error+"\n" {
				t.Errorf("%s: exit %d/%d, stderr %q", w.file, jc, tc, terr)
			}
			fmt.Fprintf(&all, "== %s (exit %d)\n%s", w.file, tc, terr)
			continue
		}
		if jc != 0 || tc != 0 || got.About == "" || !strings.Contains(txt, "what:    "+got.About+"\n") {
			t.Errorf("%s: exit %d/%d, about %q\n%s%s", w.file, jc, tc, got.About, txt, terr)
		}
		fmt.Fprintf(&all, "== %s (exit %d)\nkind:    %s\nwhat:    %s\n", w.file, tc, got.Kind, got.About)
	}
	if fixed == len(want) {
		checkGolden(t, "inspect-files.txt", all.String())
	}
	_, e, _ := run(t, "inspect", "truncated.fd")
	if _, err := os.Stat("truncated.fd"); err == nil && !strings.Contains(e, "a truncated shim image? 2000000 of 3653632 bytes") {
		t.Errorf("truncated shim: %q", e)
	}
	txt, _, _ := run(t, "inspect", "guest.pkg")
	for _, l := range []string{"  machine: pc-q35-7.2", "  memory: 512 MiB", "  SEV policy: 0x00000001 [NODBG] min API 0.0"} {
		if !hasLine(txt, l) {
			t.Errorf("guest package: no line %q in\n%s", l, txt)
		}
	}
}
