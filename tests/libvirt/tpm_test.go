package libvirt

import (
	"github.com/sevshim/sevshim/pkg/host"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	lv "github.com/sevshim/sevshim/pkg/vmm/libvirt"
	"github.com/sevshim/sevshim/tests/harness"
)

var reTPMExtended = regexp.MustCompile(`^SEVSHIM TPM extended pcr=\d+ banks=\d+$`)

var tpmPkgOnce harness.Once[string]

// A guest launched with --tpm, received with --libvirt --tpm: the domain's tpm-crb uses
// libvirt's emulator backend (libvirt runs swtpm and loads the TPM state from the stream),
// and the shim records its event (its "TPM extended" line on COM1) before the hand-off.
func TestTPMThroughLibvirt(t *testing.T) {
	w := getWorld(t)
	pkg := tpmPkgOnce.Get(t, "the --tpm package", func() (*string, error) {
		p, err := w.Export(t, "tpm", "--tpm", "--memory", "256")
		return &p, err
	})
	wb := w.workB(t)
	const dom = lv.DomainPrefix + "t-tpm"
	r := w.receivePkg(t, *pkg, w.v6, wb, "t-tpm", "--tpm")
	if r.Code != 0 || !strings.Contains(r.Stdout, "accepted: version 6, signer ") {
		t.Fatalf("receive --libvirt --tpm: %s", r)
	}
	serial, err := os.ReadFile(filepath.Join(lv.DefaultFilesDir, dom, "serial.log"))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, l := range strings.Split(string(serial), "\n") {
		if reTPMExtended.MatchString(strings.TrimRight(l, "\r")) {
			found = true
		}
	}
	if !found {
		t.Fatalf("no whole line %v on COM1:\n%s", reTPMExtended, harness.Tail(string(serial), 30))
	}
	// libvirt runs this guest's swtpm: hostctl started none of its own in the work directory
	for _, f := range []string{host.SwtpmSock, host.SwtpmPidFile} {
		if _, err := os.Stat(filepath.Join(wb, f)); err == nil {
			t.Errorf("%s in the work directory: hostctl started its own swtpm for a libvirt guest", f)
		}
	}
	// tpm-quote reads hostctl's own swtpm, which this guest does not use: refused, the
	// domain untouched.
	q := w.cli.Run(t, nil, "hostctl", "tpm-quote", "--work", wb, "--nonce", "00", "--out", filepath.Join(t.TempDir(), "ev.json"))
	if q.Code == 0 || !strings.Contains(q.Stderr, "owns its TPM") {
		t.Fatalf("tpm-quote on a libvirt guest: %s", q)
	}
	if !domainActive(t, w.uri, dom) {
		t.Fatal("the refused tpm-quote ended the domain")
	}
	w.cli.MustRun(t, "hostctl", "stop", "--work", wb)
	w.assertNothingLeft(t)
}
