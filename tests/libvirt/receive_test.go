package libvirt

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/sevshim/sevshim/pkg/host"
	lv "github.com/sevshim/sevshim/pkg/vmm/libvirt"
	"github.com/sevshim/sevshim/tests/harness"
)

// receiveCase is one of the receives of TestReceives, all run at once.
type receiveCase struct {
	name, version string // version "": a refusal
	bundle        string
	libvirt       bool // else hostctl's own QEMU
	detached      bool // else --stop
	wb            string
	r             harness.Result
}

// Four receives of one package at the same time, on one provider platform: v5 and v6 on
// libvirt to OVMF's shell (v5 with --stop, v6 left running and ended by hostctl stop), v6 on
// hostctl's own QEMU, and a rolled-back v4 on libvirt that the shim refuses (E034, exit 3,
// nothing left defined) without disturbing the others. Each has its own domain or work
// directory; the running guests hold distinct guest contexts, released at stop.
func TestReceives(t *testing.T) {
	w := getWorld(t)
	cases := []*receiveCase{
		{name: "v5", version: "5", bundle: w.v5, libvirt: true},
		{name: "v6", version: "6", bundle: w.v6, libvirt: true, detached: true},
		{name: "qemu-v6", version: "6", bundle: w.v6, detached: true},
		{name: "e034", bundle: w.v4, libvirt: true},
	}
	var wg sync.WaitGroup
	for _, c := range cases {
		c.wb = w.workB(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			var extra []string
			if c.version != "" {
				extra = append(extra, "--wait", "shell")
				if !c.detached {
					extra = append(extra, "--stop")
				}
			}
			if c.libvirt {
				c.r = w.receive(t, c.bundle, c.wb, "t-"+c.name, extra...)
			} else {
				c.r = w.cli.Run(t, nil, "hostctl", append([]string{"receive", "--state", w.P, "--package", w.pkg,
					"--bios", c.bundle, "--work", c.wb}, extra...)...)
			}
		}()
	}
	wg.Wait()
	var handles []uint32
	for _, c := range cases {
		dom := lv.DomainPrefix + "t-" + c.name
		r := c.r
		if c.version == "" {
			if r.Code != 3 || !strings.Contains(r.Stdout, "refused: E034 version-below-floor") {
				t.Errorf("%s: want exit 3 and refused: E034 version-below-floor: %s", c.name, r)
				continue
			}
			if domainExists(t, w.uri, dom) {
				t.Errorf("%s: domain %s left after the refusal", c.name, dom)
			}
			rs := readReceiveState(t, c.wb)
			if rs.Stage != host.ReceiveRefused || rs.VMM != lv.Name || rs.Handle != 0 {
				t.Errorf("%s: receive.json after the refusal: %+v", c.name, rs)
			}
			continue
		}
		if r.Code != 0 || !strings.Contains(r.Stdout, "accepted: version "+c.version+", signer ") {
			t.Errorf("%s: want accepted version %s: %s", c.name, c.version, r)
			continue
		}
		if !strings.Contains(r.Stdout, "UEFI Interactive Shell") {
			t.Errorf("%s: OVMF shell not reached: %s", c.name, r)
		}
		if _, err := os.Stat(filepath.Join(c.wb, "libvirt-restore.fifo")); err == nil {
			t.Errorf("%s: the restore FIFO is still in the work directory", c.name)
		}
		if c.libvirt && domainActive(t, w.uri, dom) != c.detached {
			t.Errorf("%s: domain %s running: %v, want %v", c.name, dom, !c.detached, c.detached)
		}
		if c.detached {
			rs := readReceiveState(t, c.wb)
			if rs.Stage != host.ReceiveRunning || rs.Handle == 0 || rs.Pid == 0 {
				t.Errorf("%s: receive.json of a running guest: %+v", c.name, rs)
			}
			handles = append(handles, rs.Handle)
		}
	}
	if t.Failed() {
		return
	}
	if len(handles) != 2 || handles[0] == handles[1] {
		t.Fatalf("the two running guests' contexts: %v, want two distinct", handles)
	}
	live := w.cli.GuestHandles(t, w.P)
	for _, h := range handles {
		if !slices.Contains(live, h) {
			t.Fatalf("guest context %d of a running guest is not on the platform (%v)", h, live)
		}
	}
	for _, c := range cases {
		if c.detached {
			w.cli.MustRun(t, "hostctl", "stop", "--work", c.wb)
		}
	}
	if domainActive(t, w.uri, lv.DomainPrefix+"t-v6") {
		t.Fatal("hostctl stop left domain sevshim-t-v6 running")
	}
	live = w.cli.GuestHandles(t, w.P)
	for _, h := range handles {
		if slices.Contains(live, h) {
			t.Fatalf("guest context %d still on the platform after hostctl stop (%v)", h, live)
		}
	}
	w.assertNothingLeft(t)
}

func readReceiveState(t *testing.T, wb string) host.ReceiveState {
	t.Helper()
	var rs host.ReceiveState
	b, err := os.ReadFile(filepath.Join(wb, host.ReceiveJSON))
	if err != nil || json.Unmarshal(b, &rs) != nil {
		t.Fatalf("receive.json: %v %s", err, b)
	}
	return rs
}
