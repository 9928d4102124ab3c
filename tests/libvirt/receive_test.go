package libvirt

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sevshim/sevshim/pkg/host"
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

// A rolled-back BIOS (v4, below the policy's floor): the shim refuses with E034, hostctl
// exits 3, and the domain is destroyed and nothing of it stays defined.
func TestRollbackRefused(t *testing.T) {
	w := getWorld(t)
	wb := w.workB(t)
	r := w.receive(t, w.v4, wb, "t-e034")
	if r.Code != 3 || !strings.Contains(r.Stdout, "refused: E034 version-below-floor") {
		t.Fatalf("want exit 3 and refused: E034 version-below-floor: %s", r)
	}
	if d := sevshimDomains(t, w.uri); len(d) != 0 {
		t.Fatalf("domains left after the refusal: %v", d)
	}
	var rs host.ReceiveState
	b, err := os.ReadFile(filepath.Join(wb, host.ReceiveJSON))
	if err != nil || json.Unmarshal(b, &rs) != nil {
		t.Fatalf("receive.json: %v %s", err, b)
	}
	if rs.Stage != host.ReceiveRefused || rs.VMM != lv.Name || rs.Handle != 0 {
		t.Fatalf("receive.json after the refusal: %+v", rs)
	}
	w.assertNothingLeft(t)
}
