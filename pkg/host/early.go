package host

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/sevshim/sevshim/pkg/atomicfile"
	"github.com/sevshim/sevshim/pkg/format/agentproto"
	"github.com/sevshim/sevshim/pkg/format/guestpkg"
	"github.com/sevshim/sevshim/pkg/format/layout"
	"github.com/sevshim/sevshim/pkg/format/manifest"
	"github.com/sevshim/sevshim/pkg/format/receipt"
	"github.com/sevshim/sevshim/pkg/psp"
	"github.com/sevshim/sevshim/pkg/vmm"
)

// earlyB starts QEMU B while receive checks the rest of the package: its files, its swtpm
// and the VM itself (-incoming defer: it waits for a stream and runs nothing). The start
// needs only what RECEIVE_START has accepted (the header's VM shape, checked by checkShape)
// and the provider's own inputs (bundle, var store, nonce); no byte of the guest's stream
// reaches B before Receive feeds it, after every check passed.
type earlyB struct {
	o        *ReceiveOptions
	work     string
	backend  vmm.Backend
	kind     string
	state    string
	tl       *timeline
	manifest []byte
	image    []byte
	guestLay layout.Layout
	varsSrc  string
	vars     []byte

	done chan struct{}
	res  startedB
}

// startedB is the outcome of an early start.
type startedB struct {
	began bool // the start was begun (QEMU B may have run)
	vm    vmm.VM
	tpm   *swtpm
	rs    *ReceiveState
	err   error
	// before lists the work directory's entries before the start (and prevJSON its
	// receive.json), so that a package refusal leaves the directory as it found it.
	before   map[string]bool
	prevJSON []byte
	work     string
}

// start begins the start of QEMU B in the background (acceptPackage calls it once, right
// after RECEIVE_START).
func (e *earlyB) start(ctx context.Context, h psp.Handle, hdr *guestpkg.Header) {
	e.done = make(chan struct{})
	go func() {
		defer close(e.done)
		e.res = e.run(ctx, h, hdr.Shape)
	}()
}

// wait returns the outcome of the start (a zero startedB if it never began).
func (e *earlyB) wait() *startedB {
	if e.done == nil {
		return &startedB{}
	}
	<-e.done
	return &e.res
}

func (e *earlyB) run(ctx context.Context, h psp.Handle, shape guestpkg.Shape) (b startedB) {
	o, work := e.o, e.work
	pf := func(n string) string { return filepath.Join(work, n) }
	b.began, b.work, b.before = true, work, map[string]bool{}
	if ents, err := os.ReadDir(work); err == nil {
		for _, d := range ents {
			b.before[d.Name()] = true
		}
	}
	b.prevJSON, _ = os.ReadFile(pf(ReceiveJSON))
	fail := func(err error) startedB { b.err = err; return b }
	// The var store follows the guest's layout (a package read from a pipe names it only now).
	varsSrc, vars := e.varsSrc, e.vars
	if l, ok := layout.ByID(shape.LayoutID); ok && l.ID != e.guestLay.ID {
		var err error
		if varsSrc, _, vars, err = readVars(o.Vars, l); err != nil {
			return fail(err)
		}
	}
	if len(vars) != int(shape.VarsSize) {
		return fail(fmt.Errorf("vars file %s is %d bytes; this guest's pflash1 is %d bytes", varsSrc, len(vars), shape.VarsSize))
	}
	// QEMU B's files: the bundle split for fw_cfg, the var store (pflash1 and fw_cfg), and a
	// blank pflash0 that gives its size: the migrated flash content is its only content, and
	// the BIOS the shim programs reaches no file (vmm.Flash.Discard).
	for _, w := range []struct {
		name string
		data []byte
	}{{"bios.manifest", e.manifest}, {"bios.fd", e.image}, {"vars.fd", vars}} {
		if err := atomicfile.WriteFile(pf(w.name), w.data, 0o600); err != nil {
			return fail(err)
		}
	}
	if err := fillFile(pf("flash0.fd"), int(shape.CodeSize), 0); err != nil {
		return fail(err)
	}
	fwcfg := []vmm.FwCfgFile{{Name: manifest.FwCfgManifest, Path: pf("bios.manifest")}, {Name: manifest.FwCfgBIOS, Path: pf("bios.fd")}, {Name: manifest.FwCfgVars, Path: pf("vars.fd")}}
	os.Remove(pf("nonce"))
	if o.Nonce != nil {
		if len(o.Nonce) != receipt.NonceSize {
			return fail(fmt.Errorf("the receipt nonce is %d bytes, want %d", len(o.Nonce), receipt.NonceSize))
		}
		if err := atomicfile.WriteFile(pf("nonce"), o.Nonce, 0o600); err != nil {
			return fail(err)
		}
		fwcfg = append(fwcfg, vmm.FwCfgFile{Name: manifest.FwCfgNonce, Path: pf("nonce")})
	}
	b.rs = &ReceiveState{Stage: ReceiveLoading, VMM: e.backend.Name(), Package: o.Package, Bundle: o.Bundle, TPM: o.TPM, Kind: e.kind, State: e.state, Handle: uint32(h), Agent: o.Kernel != ""}
	writeJSON(pf(ReceiveJSON), b.rs, 0o600)
	spec := vmm.Spec{Shape: vmm.Shape{Machine: shape.Machine, MemoryMiB: shape.RAMSize >> 20, CPUs: 1, TPM: o.TPM},
		Code: vmm.Flash{Path: pf("flash0.fd"), Discard: true}, Vars: vmm.Flash{Path: pf("vars.fd")},
		FwCfg: fwcfg, Incoming: true, ExitOnReboot: true, Kernel: o.Kernel, Initrd: o.Initrd, Append: o.Append}
	if o.Kernel != "" {
		os.Remove(pf(AgentSock))
		spec.Ports = []vmm.Port{{Name: agentproto.PortName, Socket: pf(AgentSock)}}
	}
	switch {
	case o.TPM && vmm.OwnsTPM(e.backend):
		stopSwtpm(work) // the backend runs the guest's TPM: none of hostctl's in the work directory
	case o.TPM:
		var err error
		if b.tpm, err = startSwtpm(work); err != nil {
			return fail(err)
		}
		spec.TPMSocket = pf(SwtpmSock)
	default:
		stopSwtpm(work)
	}
	// Start ends the VM it started if it then fails.
	vm, err := e.backend.Start(ctx, work, spec)
	if err != nil {
		return fail(err)
	}
	b.vm = vm
	b.rs.Pid = vm.Pid()
	writeJSON(pf(ReceiveJSON), b.rs, 0o600)
	e.tl.mark(StepStarted)
	return b
}

// end ends an early start that will not be fed: it asks QEMU B for its run state (its own
// word that it is still waiting for a stream) and kills it and its swtpm. After a package
// refusal (restore) it also removes what the start added to the work directory and puts
// receive.json back. It says what happened to B.
func (b *startedB) end(restore bool) string {
	what := ""
	if b.vm != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		st, serr := b.vm.Status(ctx)
		cancel()
		state := fmt.Sprintf("run state %q", st)
		if serr != nil {
			state = fmt.Sprintf("run state unknown: %v", serr)
		}
		pid := b.vm.Pid()
		b.vm.Kill()
		gone := vmm.WaitGone(b.vm.Alive, 10*time.Second)
		b.vm.Close()
		what = fmt.Sprintf("QEMU B (pid %d, started meanwhile with -incoming defer) was fed no byte of the stream (%s) and was killed", pid, state)
		if !gone {
			what += fmt.Sprintf(" but had not ended after 10 s (hostctl stop --work %s)", b.work)
		}
	}
	if b.tpm != nil {
		b.tpm.kill()
	}
	if !restore || b.before == nil {
		return what
	}
	if ents, err := os.ReadDir(b.work); err == nil {
		for _, d := range ents {
			if !b.before[d.Name()] {
				os.RemoveAll(filepath.Join(b.work, d.Name()))
			}
		}
	}
	if b.prevJSON != nil {
		atomicfile.WriteFile(filepath.Join(b.work, ReceiveJSON), b.prevJSON, 0o600)
	}
	return what
}
