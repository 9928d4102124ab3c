package docs_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	hostctl "github.com/sevshim/sevshim/hostctl/cli"
)

// decode parses one command's JSON output into v; anything else on stdout fails.
func decode(t *testing.T, what, out string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("%s --json: %v\n%s", what, err, out)
	}
}

// hostctl's --json results on a real launch, export, receive and tpm-quote (emulated PSPs,
// QEMU TCG, swtpm):
// every result command prints one JSON object on stdout carrying what its text says,
// a refusal included (exit 3 with the shim's code).
func TestHostctlJSON(t *testing.T) {
	h := newHarness(t)
	j := func(p string) string { return filepath.Join(h.dir, p) }
	for _, c := range []string{
		"hostctl platform init --state P",
		"hostctl platform init --state O",
		"hostctl platform export --state O --out o.chain --root-out o.root",
		"builder keygen --out prov",
		"builder sign-bios --key prov.key --version 6 --out v6.bundle /usr/share/OVMF/OVMF_CODE_4M.fd",
		"builder sign-bios --key prov.key --version 4 --out v4.bundle /usr/share/OVMF/OVMF_CODE_4M.fd",
		"printf 'layout: ovmf-4m\\ntpm: if-present\\ntpm_pcr: 15\\nsigners:\\n  - key: prov.pub\\n    min_version: 5\\nvars: any\\n' > policy.yaml",
		"builder build --policy policy.yaml --out shim.fd",
		"verifier session --chain o.chain --root o.root --policy 0x1 --out sess",
	} {
		if out, code := h.sh(c); code != 0 {
			t.Fatalf("%s: exit %d\n%s", c, code, out)
		}
	}
	out, code := h.stdout("hostctl", "platform", "export", "--state", "P", "--out", "p.chain", "--root-out", "p.root", "--json")
	var pe hostctl.PlatformExportJSON
	decode(t, "platform export", out, &pe)
	if code != 0 || pe.Out != "p.chain" || len(pe.PDHSHA256) != 64 || !pe.CEKSigned || pe.RootOut != "p.root" {
		t.Fatalf("platform export --json: %d %+v", code, pe)
	}

	out, code = h.stdout("hostctl", "launch", "--state", "O", "--image", "shim.fd", "--session", "sess", "--work", "A", "--tpm", "--json")
	var l hostctl.LaunchJSON
	decode(t, "launch", out, &l)
	if code != 0 || l.Work != "A" || l.QEMUPid <= 0 || l.Handle == 0 || l.Measurement != filepath.Join(j("A"), "measurement.json") {
		t.Fatalf("launch --json: %d %+v", code, l)
	}
	if _, err := os.Stat(l.Measurement); err != nil {
		t.Fatal(err)
	}

	out, code = h.stdout("hostctl", "launch-finish", "--work", "A", "--json")
	var lf hostctl.LaunchFinishJSON
	decode(t, "launch-finish", out, &lf)
	if code != 0 || !lf.Ready || lf.Work != "A" || lf.Secret != "" {
		t.Fatalf("launch-finish --json: %d %+v", code, lf)
	}

	out, code = h.stdout("hostctl", "export", "--work", "A", "--to", "p.chain", "--root", "p.root", "--out", "g.pkg", "--json")
	var ex hostctl.ExportJSON
	decode(t, "export", out, &ex)
	st, err := os.Stat(j("g.pkg"))
	if code != 0 || err != nil || ex.Bytes != st.Size() || ex.DataPages == 0 || ex.StreamBytes == 0 || ex.Out == "" {
		t.Fatalf("export --json: %d %+v (%v)", code, ex, err)
	}

	out, code = h.stdout("hostctl", "receive", "--state", "P", "--package", "g.pkg", "--bios", "v6.bundle", "--work", "B6", "--tpm", "--json")
	var ok hostctl.ReceiveJSON
	decode(t, "receive", out, &ok)
	if code != 0 || !ok.Accepted || ok.Version != 6 || len(ok.Signer) == 0 || ok.Code != "" || ok.QEMUPid <= 0 || ok.WakeNMIs < 1 {
		t.Fatalf("receive --json: %d %+v", code, ok)
	}
	nonce := "00112233445566778899aabbccddeeff"
	out, code = h.stdout("hostctl", "tpm-quote", "--work", "B6", "--nonce", nonce, "--out", "ev.json", "--json")
	var q hostctl.TPMQuoteJSON
	decode(t, "tpm-quote", out, &q)
	if code != 0 || q.Out != "ev.json" || q.PCR != 15 || len(q.Banks) == 0 || q.Nonce != nonce || q.QEMUPid != ok.QEMUPid {
		t.Fatalf("tpm-quote --json: %d %+v, receive said pid %d", code, q, ok.QEMUPid)
	}
	if out, code := h.sh("verifier attest --evidence ev.json --image shim.fd --bundle v6.bundle --vars /usr/share/OVMF/OVMF_VARS_4M.fd --nonce " + nonce); code != 0 {
		t.Fatalf("the evidence of tpm-quote --json does not attest v6: %s", out)
	}

	out, code = h.stdout("hostctl", "receive", "--state", "P", "--package", "g.pkg", "--bios", "v4.bundle", "--work", "B4", "--tpm", "--stop", "--json")
	var ref hostctl.ReceiveJSON
	decode(t, "refused receive", out, &ref)
	if code != hostctl.ExitRefused || ref.Accepted || ref.Code != "E034" || ref.CodeName != "version-below-floor" ||
		ref.Line != "SEVSHIM ERROR E034 version-below-floor" || ref.QEMUPid != 0 {
		t.Fatalf("refused receive --json: exit %d %+v", code, ref)
	}

	out, code = h.stdout("hostctl", "stop", "--work", "B4", "--json")
	var none hostctl.StopJSON
	decode(t, "stop", out, &none)
	if code != 0 || none.QEMUPid != 0 || none.Work != "B4" {
		t.Fatalf("stop --json of a stopped receive: %d %+v", code, none)
	}
	// a second launch, ended by stop: the pid stop reports is the one launch reported
	out, _ = h.stdout("hostctl", "launch", "--state", "O", "--image", "shim.fd", "--session", "sess", "--work", "A2", "--json")
	var l2 hostctl.LaunchJSON
	decode(t, "launch", out, &l2)
	out, code = h.stdout("hostctl", "stop", "--work", "A2", "--json")
	var sp hostctl.StopJSON
	decode(t, "stop", out, &sp)
	if code != 0 || sp.QEMUPid != l2.QEMUPid || sp.QEMUPid <= 0 {
		t.Fatalf("stop --json: %d %+v, launch said pid %d", code, sp, l2.QEMUPid)
	}
}
