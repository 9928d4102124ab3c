// Package guest holds the integration test of the Linux guest after the chain: real QEMU
// (TCG), the real shim and Debian's OVMF, Debian's cloud kernel and the initramfs of
// make images (build/guest) with the guest agent as /init. B gets the kernel by direct boot
// (-kernel/-initrd/-append, fw_cfg) and the agent's virtio-serial port; after the shim
// accepts v5 and hands off, OVMF boots Linux and the agent answers on the port.
//
// Linux boots are slow under TCG (15-30 s each): this package holds them all, one per test.
// Missing prerequisites fail with what to do; SEVSHIM_ALLOW_SKIP=1 skips instead.
package guest

import (
	"bufio"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/sevshim/sevshim/pkg/format/agentproto"
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

// TestV5BootsToAgent: v5 through the chain to the agent's first console line; the agent then
// answers a nonce on its port (this chain has no TPM: ERROR no-tpm) and garbage with ERROR
// bad-request, and the VM keeps running.
func TestV5BootsToAgent(t *testing.T) {
	kernel, initrd := guestFiles(t)
	fx := harness.Fixtures(t)
	shim := fx.Shim(t, fx.Policy())
	sock := filepath.Join(t.TempDir(), "agent.sock")
	extraB := []string{"-kernel", kernel, "-initrd", initrd, "-append", KernelOptions,
		"-device", "virtio-serial-pci,id=vser", "-chardev", "socket,id=agent,path=" + sock + ",server=on,wait=off",
		"-device", "virtserialport,bus=vser.0,chardev=agent,name=" + agentproto.PortName}
	b := fx.Chain(t, harness.ChainSpec{Shim: shim, Bundle: fx.Bundle(t, "ovmf-v5"), Saved: true, ExtraB: extraB})
	if o := harness.WaitLine(t, b.Debugcon(), harness.OutcomeRE, harness.StepTimeout); o.Text != "SEVSHIM HANDOFF" {
		t.Fatalf("the shim's outcome for v5: %q, want SEVSHIM HANDOFF", o.Text)
	}
	l := harness.WaitLine(t, b.Serial(), reAgent, harness.OVMFTimeout)
	t.Logf("B resumed -> agent started: %v", l.Time.Sub(b.Cont).Round(time.Millisecond))

	c, err := net.DialTimeout("unix", sock, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	recv := func() *agentproto.Message {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(harness.StepTimeout))
		m, err := agentproto.ReadMessage(r)
		if err != nil {
			t.Fatalf("reading the agent's port: %v\nserial:\n%s", err, harness.Tail(b.Serial().Text(), 2000))
		}
		return m
	}
	if m := recv(); m.Verb != agentproto.VerbReady {
		t.Fatalf("first line %+v, want READY", m)
	}
	c.SetWriteDeadline(time.Now().Add(harness.StepTimeout))
	if _, err := c.Write([]byte("not the protocol\n")); err != nil {
		t.Fatal(err)
	}
	if m := recv(); m.Verb != agentproto.VerbError || m.Code != agentproto.ErrBadRequest {
		t.Fatalf("reply to garbage %+v, want ERROR bad-request", m)
	}
	line, _ := (&agentproto.Message{Verb: agentproto.VerbNonce, Nonce: harness.RandBytes(t, 32)}).Marshal()
	if _, err := c.Write(line); err != nil {
		t.Fatal(err)
	}
	if m := recv(); m.Verb != agentproto.VerbError || m.Code != agentproto.ErrNoTPM {
		t.Fatalf("reply to a nonce without a TPM %+v, want ERROR no-tpm", m)
	}
	if !b.Alive() {
		t.Fatal("QEMU B ended while the agent served")
	}
}
