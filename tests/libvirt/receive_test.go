package libvirt

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	lv "github.com/sevshim/sevshim/pkg/vmm/libvirt"
)

// One package, two BIOS versions, to OVMF's shell: v5 with --stop (the domain ends with the
// receive), v6 left running and ended by hostctl stop.
func TestReceiveToShell(t *testing.T) {
	w := getWorld(t)
	for _, c := range []struct {
		name, version string
		bundle        *string
		detached      bool
	}{{"v5", "5", &w.v5, false}, {"v6", "6", &w.v6, true}} {
		t.Run(c.name, func(t *testing.T) {
			wb := w.workB(t)
			dom := lv.DomainPrefix + "t-" + c.name
			extra := []string{"--wait", "shell"}
			if !c.detached {
				extra = append(extra, "--stop")
			}
			r := w.receive(t, *c.bundle, wb, "t-"+c.name, extra...)
			if r.Code != 0 {
				t.Fatalf("receive --libvirt with %s: %s", c.name, r)
			}
			if !strings.Contains(r.Stdout, "accepted: version "+c.version+", signer ") {
				t.Fatalf("want accepted version %s: %s", c.version, r)
			}
			if !strings.Contains(r.Stdout, "UEFI Interactive Shell") {
				t.Fatalf("OVMF shell not reached: %s", r)
			}
			if _, err := os.Stat(filepath.Join(wb, "libvirt-restore.fifo")); err == nil {
				t.Error("the restore FIFO is still in the work directory")
			}
			if !c.detached {
				if domainActive(t, w.uri, dom) {
					t.Fatalf("--stop left domain %s running", dom)
				}
				return
			}
			if !domainActive(t, w.uri, dom) {
				t.Fatalf("domain %s should run after a detached receive: %s", dom, r)
			}
			w.cli.MustRun(t, "hostctl", "stop", "--work", wb)
			if domainActive(t, w.uri, dom) {
				t.Fatalf("hostctl stop left domain %s running", dom)
			}
			w.assertNothingLeft(t)
		})
	}
}
