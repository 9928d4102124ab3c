// Package libvirt tests hostctl receive --libvirt against a real libvirtd running real QEMU
// (TCG) with Debian's OVMF: its one job is to show that a received guest runs as a libvirt
// domain with every check of receive unchanged, and that no domain, file or QEMU outlives
// a test (docs/hostctl.md, libvirt).
package libvirt

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	golibvirt "github.com/digitalocean/go-libvirt"

	lv "github.com/sevshim/sevshim/pkg/vmm/libvirt"
	"github.com/sevshim/sevshim/tests/harness"
)

func TestMain(m *testing.M) { harness.Main(m) }

// world is the shared fixture: the provider and the owner (harness.Parties), one launched
// and exported guest package, the demo bundles and a rolled-back one.
type world struct {
	*harness.Parties
	uri        string
	pkg        string
	v4, v5, v6 string
	cli        *harness.CLIs
}

var worldOnce harness.Once[world]

func getWorld(t testing.TB) *world {
	t.Helper()
	cli := harness.CLI(t)
	cli.Require(t)
	uri := harness.Libvirt(t)
	return worldOnce.Get(t, "fixture", func() (*world, error) { return makeWorld(t, cli, uri) })
}

func makeWorld(t testing.TB, cli *harness.CLIs, uri string) (*world, error) {
	w := &world{Parties: cli.NewParties(t, filepath.Join(harness.WorkDir(t), "world")), uri: uri, cli: cli}
	w.v5, w.v6, w.v4 = filepath.Join(cli.Images, "v5.bundle"), filepath.Join(cli.Images, "v6.bundle"), filepath.Join(w.Dir, "v4.bundle")
	cli.SignRolledBack(t, w.v4)
	var err error
	w.pkg, err = w.Export(t, "guest")
	return w, err
}

// receive runs hostctl receive --libvirt of the guest package into work directory wb
// (domain sevshim-NAME).
func (w *world) receive(t *testing.T, bundle, wb, name string, extra ...string) harness.Result {
	t.Helper()
	return w.receivePkg(t, w.pkg, bundle, wb, name, extra...)
}

func (w *world) receivePkg(t *testing.T, pkg, bundle, wb, name string, extra ...string) harness.Result {
	t.Helper()
	args := append([]string{"receive", "--state", w.P, "--package", pkg, "--bios", bundle, "--work", wb,
		"--libvirt", w.uri, "--name", name}, extra...)
	return w.cli.Run(t, nil, "hostctl", args...)
}

// workB is a fresh receive work directory, stopped (hostctl stop) at the end of the test,
// after which the test checks that nothing of sevshim is left in libvirt.
func (w *world) workB(t *testing.T) string {
	t.Helper()
	wb := w.cli.Track(filepath.Join(t.TempDir(), "B"))
	t.Cleanup(func() {
		w.cli.KillWork(wb)
		w.assertNothingLeft(t)
	})
	return wb
}

func connect(t testing.TB, uri string) *golibvirt.Libvirt {
	t.Helper()
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatal(err)
	}
	l, err := golibvirt.ConnectToURI(u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Disconnect() })
	return l
}

// sevshimDomains lists the sevshim domains libvirt knows, running or only defined.
func sevshimDomains(t testing.TB, uri string) []string {
	t.Helper()
	doms, _, err := connect(t, uri).ConnectListAllDomains(1, 0)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range doms {
		if strings.HasPrefix(d.Name, lv.DomainPrefix) {
			names = append(names, d.Name)
		}
	}
	return names
}

// assertNothingLeft: no sevshim domain defined or running, no per-domain files, and no QEMU
// or swtpm of a sevshim domain.
func (w *world) assertNothingLeft(t *testing.T) {
	t.Helper()
	if d := sevshimDomains(t, w.uri); len(d) != 0 {
		t.Errorf("sevshim domains left in libvirt: %v", d)
	}
	if ents, _ := os.ReadDir(lv.DefaultFilesDir); len(ents) != 0 {
		t.Errorf("per-domain files left in %s: %d entries", lv.DefaultFilesDir, len(ents))
	}
	if pids := qemuOfSevshim(); len(pids) != 0 {
		t.Errorf("QEMU or swtpm of a sevshim domain still runs: pids %v", pids)
	}
}

// qemuOfSevshim returns the pids of the QEMU and swtpm processes libvirt runs for a
// sevshim domain (their command lines name it: guest=sevshim-..., libvirt's swtpm paths).
func qemuOfSevshim() []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil || pid <= 1 {
			continue
		}
		qemu := harness.CmdlineHas(pid, "qemu-system") && harness.CmdlineHas(pid, "guest="+lv.DomainPrefix)
		swtpm := harness.CmdlineHas(pid, "swtpm") && harness.CmdlineHas(pid, "libvirt") && harness.CmdlineHas(pid, lv.DomainPrefix)
		if harness.ProcAlive(pid) && (qemu || swtpm) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// domainExists reports whether libvirt knows domain name (running or defined).
func domainExists(t testing.TB, uri, name string) bool {
	t.Helper()
	_, err := connect(t, uri).DomainLookupByName(name)
	return err == nil
}

// domainActive reports whether domain name runs.
func domainActive(t testing.TB, uri, name string) bool {
	t.Helper()
	l := connect(t, uri)
	d, err := l.DomainLookupByName(name)
	if err != nil {
		return false
	}
	a, err := l.DomainIsActive(d)
	return err == nil && a != 0
}
