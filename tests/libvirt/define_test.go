package libvirt

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sevshim/sevshim/pkg/vmm"
	lv "github.com/sevshim/sevshim/pkg/vmm/libvirt"
	"github.com/sevshim/sevshim/tests/harness"
)

var reVerifiedLine = regexp.MustCompile(`^SEVSHIM VERIFIED version=6 signer=[0-9a-f]+ name="[^"]*"$`)

// --define-only: receive defines the domain and places its managed-save image; a start
// through libvirt (DomainCreate, as an orchestrator does) restores it, an NMI wakes the
// shim, which verifies v6 and hands off to OVMF's shell; the start consumed the image.
func TestDefineOnlyThenLibvirtStart(t *testing.T) {
	w := getWorld(t)
	wb := w.workB(t)
	const dom = lv.DomainPrefix + "t-define"
	r := w.receive(t, w.v6, wb, "t-define", "--define-only")
	if r.Code != 0 || !strings.Contains(r.Stdout, "defined: domain "+dom) {
		t.Fatalf("receive --define-only: %s", r)
	}
	l := connect(t, w.uri)
	d, err := l.DomainLookupByName(dom)
	if err != nil {
		t.Fatalf("domain %s not defined: %v", dom, err)
	}
	if a, _ := l.DomainIsActive(d); a != 0 {
		t.Fatal("--define-only started the domain")
	}
	// libvirt's start looks for the file (its hasManagedSave flag is only set by its own
	// managed save or when it loads its configs).
	image := filepath.Join(lv.DefaultManagedSaveDir, dom+".save")
	if st, err := os.Stat(image); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("managed-save image %s: %v", image, err)
	}
	if err := l.DomainCreate(d); err != nil {
		t.Fatalf("libvirt start: %v", err)
	}
	serial := vmm.NewConsole("serial", nil)
	stop := make(chan struct{})
	defer close(stop)
	go serial.Follow(filepath.Join(lv.DefaultFilesDir, dom, "serial.log"), 20*time.Millisecond, func() bool { return false }, stop)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	answered := func() (bool, error) {
		for _, ln := range serial.CompleteLines() {
			if vmm.IsShimAnswer(ln.Text) {
				return true, nil
			}
		}
		return false, nil
	}
	if _, err := vmm.WakeShim(ctx, vmm.DefaultWake, func(context.Context) error { return l.DomainInjectNmi(d, 0) }, answered); err != nil {
		t.Fatalf("waking the shim after the libvirt start: %v\nserial:\n%s", err, serial.Text())
	}
	if _, err := serial.WaitLine(ctx, reVerifiedLine, harness.StepTimeout); err != nil {
		t.Fatalf("no VERIFIED version=6: %v\nserial:\n%s", err, serial.Text())
	}
	if _, err := serial.WaitPrompt(ctx, harness.ShellRE, harness.OVMFTimeout); err != nil {
		t.Fatalf("OVMF's shell not reached: %v\nserial:\n%s", err, harness.Tail(serial.Text(), 20))
	}
	if _, err := os.Stat(image); err == nil {
		t.Error("the managed-save file is still on disk after the start")
	}
	w.cli.MustRun(t, "hostctl", "stop", "--work", wb)
	w.assertNothingLeft(t)
}
