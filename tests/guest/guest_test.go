// Package guest holds the integration tests of the Linux guest after the chain, run the way a
// provider runs it: hostctl launch and export (emulated PSPs), then hostctl receive --kernel
// on real QEMU (TCG) with the real shim, Debian's OVMF, Debian's cloud kernel and the
// initramfs of make images (build/guest) whose /init is the guest agent. After the shim
// accepts v5 and hands off, OVMF boots Linux by direct boot (fw_cfg) and the agent answers
// on its virtio-serial port (WB/agent.sock) while the VM keeps running: with a TPM (swtpm A
// and B, the TPM state migrated) with evidence that hostctl attest writes and verifier
// attest accepts for v5 and the owner's nonce only; without one (on libvirt) with ERROR
// no-tpm.
//
// Linux boots are slow under TCG (15-30 s each): this package holds them all, two, one per
// test, run in parallel. Missing prerequisites fail with what to do; SEVSHIM_ALLOW_SKIP=1
// skips instead.
package guest

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	hostctl "github.com/sevshim/sevshim/hostctl/cli"
	"github.com/sevshim/sevshim/pkg/format/agentproto"
	lv "github.com/sevshim/sevshim/pkg/vmm/libvirt"
	"github.com/sevshim/sevshim/tests/harness"
	"github.com/sevshim/sevshim/tests/harness/repo"
)

func TestMain(m *testing.M) { harness.Main(m) }

// world is the provider and the owner with the demo images.
type world struct {
	*harness.Parties
	cli            *harness.CLIs
	v5, v6         string
	kernel, initrd string
}

var worldOnce harness.Once[world]

func getWorld(t *testing.T) *world {
	t.Helper()
	cli := harness.CLI(t)
	cli.Require(t)
	b, err := repo.BuildDir()
	if err != nil {
		t.Fatal(err)
	}
	kernel, initrd := filepath.Join(b, "guest", "vmlinuz"), filepath.Join(b, "guest", "initramfs.cpio")
	if err := repo.RequireFiles(kernel, initrd); err != nil {
		repo.SkipOrFail(t, fmt.Errorf("%v: run make images first", err))
	}
	return worldOnce.Get(t, "fixture", func() (*world, error) {
		return &world{Parties: cli.NewParties(t, filepath.Join(harness.WorkDir(t), "world")), cli: cli,
			v5: filepath.Join(cli.Images, "v5.bundle"), v6: filepath.Join(cli.Images, "v6.bundle"), kernel: kernel, initrd: initrd}, nil
	})
}

// receiveLinux receives pkg with the v5 bundle into a new work directory and boots the
// guest kernel after the chain (hostctl receive --kernel --initrd --append, and extra).
func (w *world) receiveLinux(t *testing.T, pkg string, extra ...string) (wb string, pid int) {
	t.Helper()
	wb = w.cli.Track(filepath.Join(t.TempDir(), "B"))
	// relative to this directory, as a user types them (QEMU B runs in the work directory)
	cwd, _ := os.Getwd()
	kernel, err1 := filepath.Rel(cwd, w.kernel)
	initrd, err2 := filepath.Rel(cwd, w.initrd)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	args := append([]string{"receive", "--state", w.P, "--package", pkg, "--bios", w.v5, "--work", wb,
		"--kernel", kernel, "--initrd", initrd, "--append", harness.GuestKernelOptions, "--json"}, extra...)
	r := w.cli.Run(t, nil, "hostctl", args...)
	var v hostctl.ReceiveJSON
	if err := json.Unmarshal([]byte(r.Stdout), &v); r.Code != 0 || err != nil || !v.Accepted || v.Version != 5 || v.QEMUPid == 0 {
		t.Fatalf("receive --kernel of v5: %v: %s", err, r)
	}
	return wb, v.QEMUPid
}

// port is a raw connection to the guest agent's virtio-serial port.
type port struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func dialAgent(t *testing.T, wb string) *port {
	t.Helper()
	c, err := net.DialTimeout("unix", filepath.Join(wb, "agent.sock"), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &port{t: t, conn: c, r: bufio.NewReader(c)}
}

// recv reads the agent's next line; a guest still booting has harness.OVMFTimeout.
func (p *port) recv() *agentproto.Message {
	p.t.Helper()
	p.conn.SetReadDeadline(time.Now().Add(harness.OVMFTimeout))
	m, err := agentproto.ReadMessage(p.r)
	if err != nil {
		p.t.Fatalf("reading the agent's port: %v", err)
	}
	return m
}

func (p *port) send(b []byte) {
	p.t.Helper()
	p.conn.SetWriteDeadline(time.Now().Add(harness.StepTimeout))
	if _, err := p.conn.Write(b); err != nil {
		p.t.Fatal(err)
	}
}

func (p *port) sendNonce(n []byte) {
	p.t.Helper()
	line, err := (&agentproto.Message{Verb: agentproto.VerbNonce, Nonce: n}).Marshal()
	if err != nil {
		p.t.Fatal(err)
	}
	p.send(line)
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestV5AgentEvidence: a guest launched with --tpm, exported and received with the v5 bundle
// and the guest kernel boots to its agent; hostctl attest (twice, fresh nonces) writes
// evidence from inside the running guest that verifier attest accepts for v5 and its nonce,
// and refuses for v6 and for another nonce; the agent also answers a raw second connection,
// and garbage with ERROR bad-request. QEMU B runs throughout; hostctl stop ends it and its
// swtpm, and a later attest says the guest is not running.
func TestV5AgentEvidence(t *testing.T) {
	t.Parallel()
	w := getWorld(t)
	harness.RequireChain(t, "swtpm")
	pkg, err := w.Export(t, "tpm-guest", "--tpm")
	if err != nil {
		t.Fatal(err)
	}
	wb, pid := w.receiveLinux(t, pkg, "--tpm")
	dir := t.TempDir()
	verify := func(ev, bundle, nonce string) harness.Result {
		return w.cli.Run(t, nil, "verifier", "attest", "--evidence", ev, "--image", w.Shim, "--bundle", bundle, "--nonce", nonce)
	}
	for i := 0; i < 2; i++ {
		nh := hex.EncodeToString(harness.RandBytes(t, 32))
		ev, log := filepath.Join(dir, fmt.Sprintf("ev%d.json", i)), filepath.Join(dir, fmt.Sprintf("log%d.bin", i))
		r := w.cli.MustRun(t, "hostctl", "attest", "--work", wb, "--nonce", nh, "--out", ev, "--event-log", log, "--json")
		var a hostctl.AttestJSON
		if err := json.Unmarshal([]byte(r.Stdout), &a); err != nil {
			t.Fatalf("attest --json: %v: %s", err, r)
		}
		if a.Out != ev || a.PCR != 15 || a.Nonce != nh || a.CocoSecret || a.QEMUPid != pid || a.EventLog != log ||
			!strings.Contains(strings.Join(a.Banks, ","), "sha256") || a.EventLogBytes == 0 || !strings.HasPrefix(a.Receipt, "SEVSHIM RECEIPT") {
			t.Errorf("attest --json %d: %+v (receive's QEMU B pid %d; no coco secret: Debian's kernel has no efi_secret driver)", i, a, pid)
		}
		if st, err := os.Stat(log); err != nil || int(st.Size()) != a.EventLogBytes {
			t.Errorf("--event-log %s: %v, want %d bytes", log, err, a.EventLogBytes)
		}
		if r := verify(ev, w.v5, nh); r.Code != 0 || !strings.Contains(r.Stdout, "attestation OK") {
			t.Fatalf("verifier attest of the guest's evidence for v5: %s", r)
		}
		if r := verify(ev, w.v6, nh); r.Code != 1 || !strings.Contains(r.Stdout+r.Stderr, "attestation FAILED") {
			t.Fatalf("evidence of v5 passes as v6: %s", r)
		}
		if r := verify(ev, w.v5, hex.EncodeToString(harness.RandBytes(t, 32))); r.Code != 1 || !strings.Contains(r.Stderr, "stale or replayed") {
			t.Fatalf("evidence passes with another nonce: %s", r)
		}
		if harness.WorkPid(wb, "qemu") != pid || harness.WorkPid(wb, "swtpm") == 0 {
			t.Fatalf("QEMU B (pid %d) or its swtpm ended with attest %d", pid, i)
		}
	}
	// The protocol itself, on a connection of our own: garbage, then a nonce.
	p := dialAgent(t, wb)
	p.send([]byte("not the protocol\n"))
	m := p.recv()
	if m.Verb == agentproto.VerbReady { // READY goes to a host that connected first
		m = p.recv()
	}
	if m.Verb != agentproto.VerbError || m.Code != agentproto.ErrBadRequest {
		t.Fatalf("reply to garbage %+v, want ERROR bad-request", m)
	}
	n := harness.RandBytes(t, 32)
	p.sendNonce(n)
	if m := p.recv(); m.Verb != agentproto.VerbReport || m.Report.CocoSecret || len(m.Report.Evidence) == 0 {
		t.Fatalf("reply to a nonce %+v, want REPORT", m)
	}
	p.conn.Close()
	// What the guest printed on its serial console (the agent's log).
	serial := strings.ReplaceAll(readFile(t, filepath.Join(wb, "serial.log")), "\r\n", "\n")
	for _, want := range []string{"\n" + agentproto.ConsoleReady + "\n", "sevshim-agent: quoted PCR 15 over a 32-byte nonce"} {
		if !strings.Contains(serial, want) {
			t.Errorf("the guest's serial console lacks %q:\n%s", want, harness.Tail(serial, 3000))
		}
	}

	r := w.cli.MustRun(t, "hostctl", "stop", "--work", wb)
	if harness.ProcAlive(pid) || harness.WorkPid(wb, "swtpm") != 0 {
		t.Fatalf("QEMU B (pid %d) or its swtpm still runs after hostctl stop: %s", pid, r)
	}
	r = w.cli.Run(t, nil, "hostctl", "attest", "--work", wb, "--nonce", "abcd", "--out", filepath.Join(dir, "late.json"))
	if r.Code != 1 || !strings.Contains(r.Stderr, "not running") {
		t.Fatalf("attest after stop: %s", r)
	}
}

// TestV5BootsToAgentOnLibvirt: the same guest without a TPM, received on libvirt (the
// domain's <kernel>/<initrd>/<cmdline> and a virtio <channel>): the agent announces READY on
// the port, answers garbage with ERROR bad-request and a nonce with ERROR no-tpm, hostctl
// attest says there is no TPM to quote, and the domain runs until hostctl stop ends it.
func TestV5BootsToAgentOnLibvirt(t *testing.T) {
	t.Parallel()
	w := getWorld(t)
	uri := harness.Libvirt(t)
	pkg, err := w.Export(t, "guest")
	if err != nil {
		t.Fatal(err)
	}
	wb, pid := w.receiveLinux(t, pkg, "--libvirt", uri, "--name", "t-guest")
	p := dialAgent(t, wb)
	if m := p.recv(); m.Verb != agentproto.VerbReady || m.Version != agentproto.Version {
		t.Fatalf("first line %+v, want READY %d", m, agentproto.Version)
	}
	p.send([]byte("not the protocol\n"))
	if m := p.recv(); m.Verb != agentproto.VerbError || m.Code != agentproto.ErrBadRequest {
		t.Fatalf("reply to garbage %+v, want ERROR bad-request", m)
	}
	p.sendNonce(harness.RandBytes(t, 32))
	if m := p.recv(); m.Verb != agentproto.VerbError || m.Code != agentproto.ErrNoTPM {
		t.Fatalf("reply to a nonce without a TPM %+v, want ERROR no-tpm", m)
	}
	r := w.cli.Run(t, nil, "hostctl", "attest", "--work", wb, "--nonce", "abcd", "--out", filepath.Join(t.TempDir(), "e.json"))
	if r.Code != 1 || !strings.Contains(r.Stderr, "received without --tpm") {
		t.Fatalf("attest without a TPM: %s", r)
	}
	if !harness.ProcAlive(pid) {
		t.Fatalf("libvirt's QEMU (pid %d) ended while the agent served", pid)
	}
	files := filepath.Join(lv.DefaultFilesDir, lv.DomainPrefix+"t-guest")
	serial := strings.ReplaceAll(readFile(t, filepath.Join(files, "serial.log")), "\r\n", "\n")
	for _, want := range []string{"\n" + agentproto.ConsoleReady + "\n", "sevshim-agent: no evidence: no-tpm"} {
		if !strings.Contains(serial, want) {
			t.Errorf("the domain's serial console lacks %q:\n%s", want, harness.Tail(serial, 3000))
		}
	}
	r = w.cli.MustRun(t, "hostctl", "stop", "--work", wb)
	for end := time.Now().Add(30 * time.Second); harness.ProcAlive(pid) && time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
	}
	if harness.ProcAlive(pid) {
		t.Fatalf("libvirt's QEMU (pid %d) still runs after hostctl stop: %s", pid, r)
	}
	if _, err := os.Stat(files); err == nil {
		t.Errorf("the domain's files %s are left after hostctl stop", files)
	}
}
