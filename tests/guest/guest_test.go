// Package guest holds the integration test of the Linux guest after the chain: real QEMU
// (TCG), the real shim and Debian's OVMF, Debian's cloud kernel and the initramfs of
// make images (build/guest) with the guest agent as /init. B gets the kernel by direct boot
// (-kernel/-initrd/-append, fw_cfg) and the agent's virtio-serial port; after the shim
// accepts v5 and hands off, OVMF boots Linux and the agent answers on the port: without a
// TPM with ERROR no-tpm, with one (swtpm A and B, the TPM state migrated) with evidence that
// attest.Verify accepts for v5's event and the host's nonce only.
//
// Linux boots are slow under TCG (15-30 s each): this package holds them all, one per test.
// Missing prerequisites fail with what to do; SEVSHIM_ALLOW_SKIP=1 skips instead.
package guest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/sevshim/sevshim/pkg/attest"
	"github.com/sevshim/sevshim/pkg/format/agentproto"
	"github.com/sevshim/sevshim/pkg/format/layout"
	"github.com/sevshim/sevshim/pkg/format/policy"
	"github.com/sevshim/sevshim/pkg/format/tpmevent"
	"github.com/sevshim/sevshim/pkg/host"
	"github.com/sevshim/sevshim/pkg/vmm"
	"github.com/sevshim/sevshim/pkg/vmm/qemu"
	"github.com/sevshim/sevshim/tests/harness"
	"github.com/sevshim/sevshim/tests/harness/repo"
)

func TestMain(m *testing.M) { harness.Main(m) }

// KernelOptions are the guest kernel's command line: the serial console, and what shortens
// the boot under TCG.
const KernelOptions = "console=ttyS0 quiet nokaslr mitigations=off cryptomgr.notests audit=0 no_timer_check"

var reAgent = regexp.MustCompile(`^` + regexp.QuoteMeta(agentproto.ConsoleReady) + `$`)

// guestFiles returns make images' kernel and initramfs.
func guestFiles(t *testing.T) (kernel, initrd string) {
	t.Helper()
	b, err := repo.BuildDir()
	if err != nil {
		t.Fatal(err)
	}
	kernel, initrd = filepath.Join(b, "guest", "vmlinuz"), filepath.Join(b, "guest", "initramfs.cpio")
	if err := repo.RequireFiles(kernel, initrd); err != nil {
		repo.SkipOrFail(t, fmt.Errorf("%v: run make images first", err))
	}
	return kernel, initrd
}

// guestRun is B booted to the agent, and the host's end of the agent's port.
type guestRun struct {
	*harness.Run
	t    *testing.T
	sock string
	conn net.Conn
	r    *bufio.Reader
}

// bootToAgent runs the chain with shim and bundle (extraA/extraB: TPM devices) into B with
// the guest kernel and the agent's port (QEMU arguments from the backend's own builder, as
// hostctl receive --kernel gets them), waits for the agent's first console line and
// connects to the port.
func bootToAgent(t *testing.T, fx *harness.Fixture, shim *harness.Shim, bd *harness.Bundle, extraA, extraB []string) *guestRun {
	t.Helper()
	kernel, initrd := guestFiles(t)
	sock := filepath.Join(t.TempDir(), "agent.sock")
	b := fx.Chain(t, harness.ChainSpec{Shim: shim, Bundle: bd, Saved: len(extraA) == 0, ExtraA: extraA, ExtraB: extraB,
		Kernel: kernel, Initrd: initrd, Append: KernelOptions, Ports: []vmm.Port{{Name: agentproto.PortName, Socket: sock}}})
	if o := harness.WaitLine(t, b.Debugcon(), harness.OutcomeRE, harness.StepTimeout); o.Text != "SEVSHIM HANDOFF" {
		t.Fatalf("the shim's outcome for v%d: %q, want SEVSHIM HANDOFF", bd.Version, o.Text)
	}
	l := harness.WaitLine(t, b.Serial(), reAgent, harness.OVMFTimeout)
	t.Logf("B resumed -> agent started: %v", l.Time.Sub(b.Cont).Round(time.Millisecond))
	c, err := net.DialTimeout("unix", sock, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	g := &guestRun{Run: b, t: t, sock: sock, conn: c, r: bufio.NewReader(c)}
	if m := g.recv(); m.Verb != agentproto.VerbReady {
		t.Fatalf("first line %+v, want READY", m)
	}
	return g
}

func (g *guestRun) recv() *agentproto.Message {
	g.t.Helper()
	g.conn.SetReadDeadline(time.Now().Add(harness.StepTimeout))
	m, err := agentproto.ReadMessage(g.r)
	if err != nil {
		g.t.Fatalf("reading the agent's port: %v\nserial:\n%s", err, harness.Tail(g.Serial().Text(), 2000))
	}
	return m
}

func (g *guestRun) send(b []byte) {
	g.t.Helper()
	g.conn.SetWriteDeadline(time.Now().Add(harness.StepTimeout))
	if _, err := g.conn.Write(b); err != nil {
		g.t.Fatal(err)
	}
}

// sendNonce sends a fresh nonce and returns it.
func (g *guestRun) sendNonce() []byte {
	g.t.Helper()
	n := harness.RandBytes(g.t, 32)
	line, err := (&agentproto.Message{Verb: agentproto.VerbNonce, Nonce: n}).Marshal()
	if err != nil {
		g.t.Fatal(err)
	}
	g.send(line)
	return n
}

// TestV5BootsToAgent: v5 through the chain to the agent's first console line; the agent then
// answers garbage with ERROR bad-request and a nonce (this chain has no TPM) with ERROR
// no-tpm, and the VM keeps running.
func TestV5BootsToAgent(t *testing.T) {
	fx := harness.Fixtures(t)
	g := bootToAgent(t, fx, fx.Shim(t, fx.Policy()), fx.Bundle(t, "ovmf-v5"), nil, nil)
	g.send([]byte("not the protocol\n"))
	if m := g.recv(); m.Verb != agentproto.VerbError || m.Code != agentproto.ErrBadRequest {
		t.Fatalf("reply to garbage %+v, want ERROR bad-request", m)
	}
	g.sendNonce()
	if m := g.recv(); m.Verb != agentproto.VerbError || m.Code != agentproto.ErrNoTPM {
		t.Fatalf("reply to a nonce without a TPM %+v, want ERROR no-tpm", m)
	}
	if !g.Alive() {
		t.Fatal("QEMU B ended while the agent served")
	}
}

// TestV5AgentEvidence: with a TPM (swtpm A and B, the shim's policy records on PCR 15), the
// agent's report from the running guest verifies for v5's event and the host's nonce, not
// for v6's nor for another nonce; a second nonce is answered too, and a third on a new
// connection through host.AskAgent; B keeps running.
func TestV5AgentEvidence(t *testing.T) {
	fx := harness.Fixtures(t, "swtpm")
	pol := fx.Policy()
	pol.TPMMode, pol.TPMPCR = policy.TPMIfPresent, 15
	shim := fx.Shim(t, pol)
	v5, v6 := fx.Bundle(t, "ovmf-v5"), fx.Bundle(t, "ovmf-v6")
	swA := harness.StartSwtpm(t, "A", host.SwtpmCommand)
	swB := harness.StartSwtpm(t, "B", host.SwtpmCommand)
	g := bootToAgent(t, fx, shim, v5, qemu.TPMArgs(swA.Ctrl), qemu.TPMArgs(swB.Ctrl))
	event := func(bd *harness.Bundle) []byte {
		return (&tpmevent.Event{Layout: layout.OVMF4M, BIOSVersion: bd.Version, SignerKeyID: fx.KeyID, BIOSDigest: bd.Digest,
			PolicyDigest: attest.PolicyDigest(shim.Encoded), VarStore: true, VarsDigest: fx.VarsSHA}).Marshal()
	}
	for i := 0; i < 2; i++ {
		nonce := g.sendNonce()
		m := g.recv()
		if m.Verb != agentproto.VerbReport {
			t.Fatalf("reply %+v, want REPORT\nserial:\n%s", m, harness.Tail(g.Serial().Text(), 2000))
		}
		if m.Report.CocoSecret {
			t.Errorf("the guest reports the coco secret (Debian's kernel has no efi_secret driver)")
		}
		var ev attest.Evidence
		if err := ev.UnmarshalJSON(m.Report.Evidence); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ev.Nonce, nonce) {
			t.Fatalf("evidence nonce %x, want %x", ev.Nonce, nonce)
		}
		if err := attest.Verify(&ev, event(v5)); err != nil {
			t.Fatalf("evidence from the guest does not verify for v5: %v", err)
		}
		if err := attest.Verify(&ev, event(v6)); err == nil {
			t.Fatal("evidence of v5 also verifies as v6")
		}
		other := ev
		other.Nonce = harness.RandBytes(t, 32)
		if err := attest.Verify(&other, event(v5)); err == nil {
			t.Fatal("evidence verifies with another nonce")
		}
	}
	// a second host connection (the agent keeps serving across them), through the host's client
	g.conn.Close()
	nonce := harness.RandBytes(t, 32)
	rep, err := host.AskAgent(context.Background(), g.sock, nonce, harness.StepTimeout)
	if err != nil {
		t.Fatalf("host.AskAgent on a new connection: %v\nserial:\n%s", err, harness.Tail(g.Serial().Text(), 2000))
	}
	if err := attest.Verify(rep.Evidence, event(v5)); err != nil || rep.CocoSecret {
		t.Fatalf("host.AskAgent's evidence: %v (coco secret %v)", err, rep.CocoSecret)
	}
	if len(rep.EventLog) == 0 {
		t.Errorf("the guest sent no event log (OVMF's TCG log, securityfs tpm0/binary_bios_measurements)")
	}
	t.Logf("event log from the guest: %d bytes", len(rep.EventLog))
	if !g.Alive() {
		t.Fatal("QEMU B ended while the agent served")
	}
}
