package host

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/sevshim/sevshim/pkg/format/layout"
	"github.com/sevshim/sevshim/pkg/format/manifest"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/sevshim/sevshim/pkg/format/guestpkg"
	"github.com/sevshim/sevshim/pkg/format/shimerr"
	"github.com/sevshim/sevshim/pkg/migrate"
	"github.com/sevshim/sevshim/pkg/psp"
	"github.com/sevshim/sevshim/pkg/sev"
	"github.com/sevshim/sevshim/pkg/vmm"
)

// ReceiveOptions are the inputs of `hostctl receive`.
type ReceiveOptions struct {
	Kind, State string // the receiving platform's PSP
	Package     string
	Bundle      string // BIOS bundle (manifest + image) for the shim
	Vars        string // var store for pflash1 and opt/org.sevshim/vars; default Debian's template
	Work        string
	WaitShell   bool // also wait for OVMF's shell on COM1
	Stop        bool // quit QEMU B at the end
	TPM         bool // give QEMU B a TPM (swtpm in Work); must match the package's VM shape
	Log         io.Writer
	Bar         io.Writer
	// Timeline records when each step happened (Verdict.Timeline) and, after the shim's
	// HANDOFF, waits (bounded) for OVMF's first output on COM1 so that step is in it too.
	Timeline bool
	// Wake bounds the wake-up NMI resends (zero: vmm.DefaultWake).
	Wake vmm.Wake
	// VMM is the backend name for QEMU B; "" is vmm.DefaultBackend.
	VMM string
	// DefineOnly ends the receive once the VM has taken the stream (a backend that defines
	// the VM for its own later start, libvirt's managed save): no resume, no verdict, the
	// guest context stays with the VM until hostctl stop.
	DefineOnly bool
	// Hooks for tests (BeforeFeed, BeforeWake); none in normal use.
	Hooks Hooks

	// Nonce is the owner's receipt nonce for opt/org.sevshim/nonce (nil: none).
	Nonce []byte

	// Kernel, Initrd and Append boot a guest OS directly after the chain (QEMU B's
	// -kernel/-initrd/-append; OVMF loads them after the shim's hand-off). With Kernel, QEMU
	// B also gets the guest agent's virtio-serial port, a unix socket WORK/AgentSock.
	Kernel, Initrd, Append string
}

// AgentSock is the host's end of the guest agent's virtio-serial port in the work directory
// (docs/formats.md section 10).
const AgentSock = "agent.sock"

func (o *ReceiveOptions) wake() vmm.Wake {
	if o.Wake.Attempts == 0 && o.Wake.Interval == 0 {
		return vmm.DefaultWake
	}
	return o.Wake
}

// shimAnswered reports whether QEMU B's debug console has the shim's answer to the wake-up
// NMI as a complete line, and fails once QEMU B is gone.
func shimAnswered(vm vmm.VM) (bool, error) {
	for _, l := range vm.Debugcon().CompleteLines() {
		if vmm.IsShimAnswer(l.Text) {
			return true, nil
		}
	}
	if !vm.Alive() {
		return false, fmt.Errorf("QEMU B (pid %d) exited before the shim woke; %s", vm.Pid(), vm.Describe())
	}
	return false, nil
}

// Verdict is the shim's answer on QEMU B.
type Verdict struct {
	Accepted bool
	Version  uint64
	Signer   string
	Name     string
	Code     shimerr.Code // refusals
	Line     string       // the console line it came from
	Receipt  string       // the shim's `SEVSHIM RECEIPT ...` line ("" if it printed none)
	Shell    bool         // OVMF's shell was seen (WaitShell)
	WakeNMIs int          // wake-up NMIs sent until the shim answered
	Pid      int          // QEMU B, 0 once stopped
	Work     string
	Timeline []Mark // ReceiveOptions.Timeline: the steps, in order
}

// ReceiveState is WB/receive.json.
type ReceiveState struct {
	Stage   string `json:"stage"` // "loading", "running", "refused", "stopped"
	Package string `json:"package"`
	Bundle  string `json:"bundle"`
	Pid     int    `json:"pid,omitempty"`
	Verdict string `json:"verdict,omitempty"`
	// TPM: QEMU B has a TPM backed by WB/swtpm.sock. TPMMode and TPMPCR come from the policy
	// of the shim image in the package's flash (hostctl tpm-quote's default PCR).
	TPM     bool  `json:"tpm,omitempty"`
	TPMMode uint8 `json:"tpm_mode,omitempty"`
	TPMPCR  uint8 `json:"tpm_pcr,omitempty"`
	Shell   bool  `json:"shell,omitempty"` // OVMF's shell was seen
	// Receipt is the shim's receipt line, for the owner's `verifier receipt --from`.
	Receipt string `json:"receipt,omitempty"`
	// The receiving platform and the guest context RECEIVE_START made: released
	// (DECOMMISSION) when QEMU B ends, by refusal, failure, interruption or hostctl stop.
	Kind   string `json:"psp_kind,omitempty"`
	State  string `json:"psp_state,omitempty"`
	Handle uint32 `json:"handle,omitempty"`
	// VMM is the backend of QEMU B ("" is vmm.DefaultBackend).
	VMM string `json:"vmm,omitempty"`
	// Agent: QEMU B boots a guest kernel (--kernel) and has the guest agent's port, the
	// socket WB/AgentSock (hostctl attest asks there).
	Agent bool `json:"agent,omitempty"`
}

// RefusedError is a package or shim refusal with what was wrong.
type RefusedError struct {
	Stage string // "package" (before QEMU) or "shim"
	Err   error
}

func (e *RefusedError) Error() string { return e.Err.Error() }
func (e *RefusedError) Unwrap() error { return e.Err }

var (
	reMachine = regexp.MustCompile(`^pc-q35-[0-9]+\.[0-9]+$`)
)

// received is a package that passed every check and the receiving PSP: the rebuilt stream's
// skeleton and the plaintext pages (memory only).
type received struct {
	h     psp.Handle // the guest context (RECEIVE_FINISH done)
	hdr   guestpkg.Header
	sk    migrate.Skeleton
	pages pageStore
}

// pageStore keeps decrypted pages in 1 MiB slabs.
type pageStore struct {
	slabs [][]byte
	n     int
}

const slabPages = 256

func (s *pageStore) next() []byte {
	if s.n%slabPages == 0 {
		s.slabs = append(s.slabs, make([]byte, slabPages*migrate.PageSize))
	}
	i := s.n % slabPages
	s.n++
	return s.slabs[len(s.slabs)-1][i*migrate.PageSize : (i+1)*migrate.PageSize]
}

func (s *pageStore) get(i int) []byte {
	sl := s.slabs[i/slabPages]
	j := i % slabPages
	return sl[j*migrate.PageSize : (j+1)*migrate.PageSize]
}

func (s *pageStore) wipe() {
	for _, sl := range s.slabs {
		clear(sl)
	}
	s.slabs = nil
}

// checkShape refuses VM shapes that QEMU B cannot be started with.
func checkShape(h *guestpkg.Header, st *guestpkg.Stream) error {
	s := h.Shape
	if !reMachine.MatchString(s.Machine) {
		return fmt.Errorf("machine type %q is not supported (want q35, pc-q35-X.Y)", s.Machine)
	}
	if m, ok := guestpkg.MachineFromStreamHeader(st.Header); !ok || m != s.Machine {
		return fmt.Errorf("the stream's machine type %q differs from the header's %q", m, s.Machine)
	}
	lay, ok := layout.ByID(s.LayoutID)
	if !ok {
		return fmt.Errorf("BIOS layout id %d is unknown", s.LayoutID)
	}
	if s.CodeSize != lay.CodeSize || s.VarsSize != lay.VarsSize {
		return fmt.Errorf("pflash sizes 0x%x/0x%x differ from layout %s (0x%x/0x%x)", s.CodeSize, s.VarsSize, lay.Name, lay.CodeSize, lay.VarsSize)
	}
	if s.RAMSize < 64<<20 || s.RAMSize > 64<<30 || s.RAMSize%(1<<20) != 0 {
		return fmt.Errorf("RAM size %d bytes is not supported (64 MiB..64 GiB, whole MiB)", s.RAMSize)
	}
	if s.CPUs != 1 {
		return fmt.Errorf("%d CPUs: only 1 is supported", s.CPUs)
	}
	for _, want := range []struct {
		id   string
		size uint64
	}{{"pc.ram", s.RAMSize}, {"system.flash0", uint64(s.CodeSize)}, {"system.flash1", uint64(s.VarsSize)}} {
		b, ok := st.Block(want.id)
		if !ok || b.Size != want.size {
			return fmt.Errorf("RAM block %q is missing or not 0x%x bytes as the header says", want.id, want.size)
		}
	}
	// The other blocks are QEMU's small ROM blobs (ACPI tables, table loader, RSDP); with
	// them bounded, the records receive keeps are bounded by the guest's RAM size.
	var extra uint64
	for _, b := range st.Blocks {
		if b.ID != "pc.ram" && b.ID != "system.flash0" && b.ID != "system.flash1" {
			extra += b.Size
		}
	}
	if extra > maxExtraBlocks {
		return fmt.Errorf("RAM blocks other than pc.ram and the flash add up to 0x%x bytes, more than 0x%x", extra, uint64(maxExtraBlocks))
	}
	return nil
}

// maxExtraBlocks bounds the RAM blocks besides pc.ram and the two pflash units.
const maxExtraBlocks = 64 << 20

// acceptPackage reads and checks the whole package and runs RECEIVE_START,
// RECEIVE_UPDATE_DATA for every page and RECEIVE_FINISH. It calls started (if set) once,
// right after RECEIVE_START accepted the header and its VM shape passed checkShape; the
// package is read once, for the digest, RECEIVE_UPDATE_DATA and the rebuild's skeleton.
func acceptPackage(ctx context.Context, p psp.PSP, path string, tpm bool, bar *bar, started func(context.Context, psp.Handle, *guestpkg.Header)) (*received, error) {
	f, r, err := openPackage(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	hdr := r.Header()
	// QEMU A and B must have the same devices or the migration does not load; say so now.
	switch {
	case hdr.Shape.TPM && !tpm:
		return nil, errors.New("the guest's VM has a TPM (hostctl launch --tpm; its TPM state is in the package): receive it with --tpm")
	case !hdr.Shape.TPM && tpm:
		return nil, errors.New("the guest's VM has no TPM (launched without --tpm): receive it without --tpm")
	}
	pdh, err := sev.ParseCert(hdr.PDH)
	if err != nil {
		return nil, fmt.Errorf("sender PDH: %w", err)
	}
	if pdh.Usage != sev.UsagePDH {
		return nil, fmt.Errorf("sender certificate has usage %v, want PDH", pdh.Usage)
	}
	st, err := r.ReadStream()
	if err != nil {
		return nil, err
	}
	if err := checkShape(hdr, st); err != nil {
		return nil, fmt.Errorf("VM shape: %w", err)
	}
	h, err := p.ReceiveStart(psp.ReceiveStartRequest{Policy: hdr.Policy, PDH: hdr.PDH, Session: hdr.Session})
	if err != nil {
		switch {
		case psp.IsStatus(err, psp.StatusBadSignature):
			return nil, fmt.Errorf("RECEIVE_START: the package's session does not unwrap on this platform: it was exported for another platform's PDH (or damaged); export again with --to this platform's chain: %w", err)
		case psp.IsStatus(err, psp.StatusPolicyFailure):
			return nil, fmt.Errorf("RECEIVE_START: policy 0x%x refused (POLICY_MAC mismatch or this platform does not meet it): %w", uint32(hdr.Policy), err)
		}
		return nil, fmt.Errorf("RECEIVE_START: %w", err)
	}
	if started != nil {
		started(ctx, h, hdr)
	}
	ok := false
	rc := &received{h: h, hdr: *hdr, sk: migrate.Skeleton{Header: st.Header, RAMSectionID: st.RAMSectionID, Blocks: st.Blocks}}
	defer func() {
		if !ok {
			p.Decommission(h)
			rc.pages.wipe()
		}
	}()
	var pkt guestpkg.Packet
	b := newBar(bar.w, "receive", st.TotalPages())
	for {
		if err := ctx.Err(); err != nil {
			b.done()
			return nil, err
		}
		e, has, err := r.Next(&pkt)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			b.done()
			return nil, err
		}
		rc.sk.Entries = append(rc.sk.Entries, e)
		if has {
			dst := rc.pages.next()
			if err := p.ReceiveUpdateData(h, pkt.Header[:], pkt.Data[:], dst); err != nil {
				b.done()
				return nil, fmt.Errorf("record %d (block %s, offset 0x%x): RECEIVE_UPDATE_DATA refused the page: %w",
					len(rc.sk.Entries)-1, st.Blocks[e.Block].ID, e.Offset(), err)
			}
		}
		if e.Kind == migrate.EntryData || e.Kind == migrate.EntryZero {
			b.set(uint64(len(rc.sk.Entries)))
		}
	}
	b.done()
	if rc.sk.Devices, err = r.Finish(); err != nil {
		return nil, err
	}
	if has := streamHasTPM(rc.sk.Devices); has != hdr.Shape.TPM {
		return nil, fmt.Errorf("VM shape: the header says TPM=%v but the stream's device state %s a tpm-emulator section", hdr.Shape.TPM, map[bool]string{true: "has", false: "has no"}[has])
	}
	// The rebuilt stream must be one the migrate parser accepts (every page once, device
	// state well formed) before any QEMU sees a byte of it.
	if err := rc.replay(io.Discard); err != nil {
		return nil, fmt.Errorf("rebuilt migration stream: %w", err)
	}
	if err := p.ReceiveFinish(h); err != nil {
		return nil, fmt.Errorf("RECEIVE_FINISH: %w", err)
	}
	ok = true
	return rc, nil
}

func (rc *received) replay(w io.Writer) error { return rc.replayProgress(w, nil) }

// replayProgress is replay calling progress (if set) with the number of data pages written.
func (rc *received) replayProgress(w io.Writer, progress func(int)) error {
	mw := migrate.NewWriter(w)
	i := 0
	return rc.sk.Replay(mw, func(int, migrate.Entry) ([]byte, error) {
		i++
		if progress != nil {
			progress(i - 1)
		}
		return rc.pages.get(i - 1), nil
	})
}

// Receive checks and receives a guest package, then starts QEMU B from it with the BIOS
// bundle, wakes the shim and returns its verdict. A shim refusal is returned as a Verdict
// with Accepted false and a *RefusedError.
func Receive(ctx context.Context, o ReceiveOptions) (v *Verdict, err error) {
	// What happened, for an interruption (SIGINT/SIGTERM) at any point.
	note := "nothing was started, the package is unchanged"
	defer interrupted(ctx, &err, func() string {
		if v != nil && v.Accepted {
			return "after the shim's verdict (printed above): " + note
		}
		return "receive cancelled: " + note
	})
	var tl *timeline
	if o.Timeline {
		tl = newTimeline()
		defer func() {
			if v != nil {
				v.Timeline = tl.end()
			}
		}()
	}
	if err := checkGuestKind(o.Kind); err != nil {
		return nil, err
	}
	// Cheap checks first: every input file and the platform, before any PSP or QEMU work
	// and before the work directory is made.
	if err := requirePlatform(o.Kind, o.State); err != nil {
		return nil, err
	}
	if o.Kernel == "" && (o.Initrd != "" || o.Append != "") {
		return nil, errors.New("direct kernel boot: an initrd or a kernel command line needs a kernel")
	}
	// QEMU B runs in the work directory, so its files are named by absolute paths.
	for _, p := range []*string{&o.Kernel, &o.Initrd} {
		if *p != "" {
			if *p, err = filepath.Abs(*p); err != nil {
				return nil, fmt.Errorf("direct kernel boot: %w", err)
			}
		}
	}
	boot := vmm.Spec{Kernel: o.Kernel, Initrd: o.Initrd}
	if err := boot.CheckBootFiles(); err != nil {
		return nil, fmt.Errorf("direct kernel boot: %w", err)
	}
	manifestBytes, image, m, err := manifest.ReadBundle(o.Bundle)
	if err != nil {
		return nil, fmt.Errorf("BIOS bundle: %w", err)
	}
	lay, _ := layout.ByID(m.Layout)
	// The var store follows the guest's layout, which the package header names; a package
	// streamed through a pipe or FIFO can be read once, so until its header is read (after
	// RECEIVE_FINISH, below) the bundle's layout stands in for it.
	guestLay := lay
	var shape *guestpkg.Shape
	if st, err := os.Stat(o.Package); err == nil && st.Mode().IsRegular() {
		if shape, err = packageShape(o.Package); err != nil {
			return nil, &RefusedError{Stage: "package", Err: fmt.Errorf("package %s refused, no QEMU was started: %w", o.Package, err)}
		}
		if l, ok := layout.ByID(shape.LayoutID); ok {
			guestLay = l
		}
	}
	varsSrc, _, varsBytes, err := readVars(o.Vars, guestLay)
	if err != nil {
		return nil, err
	}
	if shape != nil && len(varsBytes) != int(shape.VarsSize) {
		return nil, fmt.Errorf("vars file %s is %d bytes; this guest's pflash1 is %d bytes (nothing was done)", varsSrc, len(varsBytes), shape.VarsSize)
	}
	_, statErr := os.Lstat(o.Work)
	work, err := makeWorkDir(o.Work)
	if err != nil {
		return nil, err
	}
	if errors.Is(statErr, os.ErrNotExist) {
		// A refusal leaves no empty work directory behind (Remove fails on a non-empty one).
		defer func() {
			if err != nil {
				os.Remove(work)
			}
		}()
	}
	backend, err := vmm.Lookup(o.VMM)
	if err != nil {
		return nil, err
	}
	var prev ReceiveState
	if readJSON(filepath.Join(work, ReceiveJSON), &prev) == nil {
		if pid := runningVM(work); pid != 0 {
			if prev.Stage == ReceiveRunning {
				return nil, fmt.Errorf("%s already runs a received guest (QEMU pid %d): hostctl stop --work %s first, or use another --work", work, pid, o.Work)
			}
			logf(o.Log, "stopping QEMU pid %d left by an interrupted receive in %s", pid, work)
			Stop(ctx, work)
		}
		if err := prev.move(ReceiveLoading); err != nil {
			return nil, err
		}
	} else if pid := runningVM(work); pid != 0 {
		return nil, fmt.Errorf("%s has a running QEMU (pid %d): hostctl stop --work %s first", work, pid, o.Work)
	}

	p, err := openGuestPSP(o.Kind, o.State)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	// QEMU B starts (-incoming defer) while the rest of the package is checked, as soon as
	// RECEIVE_START accepted its header; it is fed only after every check passed
	// (docs/flow.md, "Receive: QEMU B starts early, fed last").
	early := &earlyB{o: &o, work: work, backend: backend, kind: p.Kind(), tl: tl,
		manifest: manifestBytes, image: image, guestLay: guestLay, varsSrc: varsSrc, vars: varsBytes}
	if e, isEmu := p.(*psp.Emulator); isEmu {
		early.state = e.Dir()
	}
	rc, err := acceptPackage(ctx, p, o.Package, o.TPM, newBar(o.Bar, "", 0), early.start)
	bs := early.wait()
	if err != nil {
		if ctx.Err() != nil {
			// Interrupted: as after the start, B is gone and receive.json says so.
			if bs.began {
				note = "QEMU B was stopped, the guest context was released, the package is unchanged (receive it again)"
			}
			bs.end(false)
			if bs.rs != nil {
				bs.rs.move(ReceiveInterrupted)
				bs.rs.Pid, bs.rs.Handle = 0, 0
				writeJSON(filepath.Join(work, ReceiveJSON), bs.rs, 0o600)
			}
			return nil, err
		}
		what := "no QEMU was started"
		if bs.vm != nil {
			what = "before the VM ran: " + bs.end(true)
		} else {
			bs.end(true)
		}
		return nil, &RefusedError{Stage: "package", Err: fmt.Errorf("package %s refused, %s: %w", o.Package, what, err)}
	}
	defer rc.pages.wipe()
	tl.mark(StepChecked)
	rs := bs.rs
	vm, tpm := bs.vm, bs.tpm
	released := false
	release := func() {
		if !released {
			released = true
			if rs != nil {
				rs.Handle = 0
			}
			if err := p.Decommission(rc.h); err != nil {
				logf(o.Log, "note: DECOMMISSION of guest context %d: %v", rc.h, err)
			}
		}
	}
	note = "QEMU B was stopped, the guest context was released, the package is unchanged (receive it again)"
	keep := false
	// Until QEMU B runs the guest for good, any failure or interruption ends it, releases
	// the guest context and says so in receive.json.
	defer func() {
		if keep {
			return
		}
		if vm != nil {
			vm.Kill()
		}
		if tpm != nil {
			tpm.kill()
		}
		release()
		if rs != nil && err != nil && rs.Stage != ReceiveRefused {
			to := ReceiveFailed
			if ctx.Err() != nil {
				to = ReceiveInterrupted
			}
			rs.move(to)
			rs.Pid = 0
			writeJSON(filepath.Join(work, ReceiveJSON), rs, 0o600)
		}
	}()
	if vm != nil {
		defer vm.Close()
	}
	logf(o.Log, "package verified: digest, VM shape, %d pages MAC-verified and decrypted by the PSP (RECEIVE_FINISH done)", rc.pages.n)
	if bs.err != nil {
		return nil, bs.err
	}
	if lay.ID != rc.hdr.Shape.LayoutID {
		logf(o.Log, "note: the bundle's layout %d differs from the guest's %d; the shim will refuse it", lay.ID, rc.hdr.Shape.LayoutID)
	}
	pf := func(n string) string { return filepath.Join(work, n) }
	if o.TPM {
		if mode, pcr, err := guestTPMPolicy(rc); err == nil {
			rs.TPMMode, rs.TPMPCR = mode, pcr
		} else {
			logf(o.Log, "note: the policy of the shim in the package's flash is unreadable (%v); hostctl tpm-quote will need --pcr", err)
		}
		writeJSON(pf(ReceiveJSON), rs, 0o600)
	}
	tl.watch(vm.Serial(), vm.Debugcon())
	defer tl.end()
	if pid := vm.Pid(); pid != 0 {
		logf(o.Log, "QEMU B started (pid %d) while the package was checked, loading the rebuilt stream", pid)
	} else { // libvirt starts QEMU itself when the stream arrives (a restore)
		logf(o.Log, "QEMU B prepared on VMM %s, loading the rebuilt stream", backend.Name())
	}
	held := false
	if err := once(o.Hooks.BeforeFeed, &held, ctx); err != nil {
		return nil, err
	}
	if err := feedIncoming(ctx, vm, rc, o.Bar); err != nil {
		if !vmm.WaitGone(vm.Alive, 500*time.Millisecond) {
			return nil, err
		}
		return nil, fmt.Errorf("QEMU B (pid %d) ended while loading the guest (%v); %s; run the same receive again", vm.Pid(), err, vm.Describe())
	}
	rc.pages.wipe()
	rs.Pid = vm.Pid() // a backend may know it only once loaded (libvirt's restore starts QEMU)
	if o.DefineOnly {
		rs.Verdict = "defined for the VMM's own start (no verdict yet)"
		keep = true
		writeJSON(pf(ReceiveJSON), rs, 0o600)
		return &Verdict{Work: work, Pid: rs.Pid}, nil
	}
	tl.mark(StepLoaded)
	if o.Hooks.BeforeWake != nil {
		if err := o.Hooks.BeforeWake(ctx, vm); err != nil {
			return nil, err
		}
	}
	if err := vm.Resume(ctx); err != nil {
		return nil, err
	}
	tl.mark(StepResumed)
	// Wake the shim: NMIs, resent (bounded) until it answers; see vmm.WakeShim.
	nmis, err := vmm.WakeShim(ctx, o.wake(), vm.NMI, func() (bool, error) { return shimAnswered(vm) })
	if err != nil {
		return nil, fmt.Errorf("waking the shim on QEMU B: %w (see the debug console in %s)", err, work)
	}
	if nmis > 1 {
		logf(o.Log, "the shim answered after %d wake-up NMIs", nmis)
	}
	v = &Verdict{Work: work, Pid: vm.Pid(), WakeNMIs: nmis}
	lines, at, i, err := waitLines(ctx, vm, vm.Debugcon(), 120*time.Second, nil, reHandoff, reError)
	if err != nil {
		return nil, fmt.Errorf("waiting for the shim's verdict: %w", err)
	}
	line := lines[at]
	v.Line = line
	v.Receipt = waitReceipt(ctx, vm)
	rs.Receipt = v.Receipt
	if i == 1 {
		v.Code, _ = shimerr.ParseLine(line)
		verdict := line
		if v.Code != 0 {
			verdict = v.Code.String()
		}
		rs.move(ReceiveRefused)
		rs.Verdict, rs.Pid = verdict, 0
		vm.Quit(ctx)
		if tpm != nil {
			tpm.kill()
		}
		release()
		writeJSON(pf(ReceiveJSON), rs, 0o600)
		v.Pid = 0
		return v, &RefusedError{Stage: "shim", Err: fmt.Errorf("the shim refused the BIOS %s: %s (QEMU B stopped)", o.Bundle, verdict)}
	}
	// The VERIFIED line comes from the same read of the console as HANDOFF, before it.
	var mm []string
	for _, l := range lines[:at] {
		if m := reVerified.FindStringSubmatch(l); m != nil {
			mm = m
		}
	}
	if mm == nil {
		return nil, fmt.Errorf("the shim handed off without a VERIFIED line (see the debug console in %s)", work)
	}
	v.Accepted = true
	v.Version, err = strconv.ParseUint(mm[1], 10, 64)
	if err != nil {
		return nil, fmt.Errorf("VERIFIED line %q: bad version", mm[0])
	}
	v.Signer, v.Name = mm[2], mm[3]
	if _, err := hex.DecodeString(v.Signer); err != nil {
		return nil, fmt.Errorf("VERIFIED line %q: bad signer", mm[0])
	}
	rs.move(ReceiveRunning)
	rs.Verdict = fmt.Sprintf("accepted version %d", v.Version)
	if o.WaitShell {
		if _, _, _, err := waitLines(ctx, vm, vm.Serial(), 240*time.Second, reHandoff, reShell); err != nil {
			return v, fmt.Errorf("the shim accepted the BIOS, but OVMF's shell did not appear: %w", err)
		}
		v.Shell, rs.Shell = true, true
	}
	if o.Timeline && !tl.waitOVMF(ctx, vm, 60*time.Second) {
		logf(o.Log, "timeline: OVMF printed nothing on COM1 within 60 s of the hand-off")
	}
	if o.Stop {
		vm.Quit(ctx)
		if tpm != nil {
			tpm.kill()
		}
		release()
		v.Pid = 0
		rs.move(ReceiveStopped)
		rs.Pid = 0
	}
	keep = true
	writeJSON(pf(ReceiveJSON), rs, 0o600)
	return v, nil
}

// feedIncoming writes the rebuilt stream into QEMU B's incoming migration and waits until
// QEMU B has loaded it.
func feedIncoming(ctx context.Context, vm vmm.VM, rc *received, barW io.Writer) error {
	// The bar counts the pages QEMU B has taken (the pipe and socket buffers aside).
	bar := newBar(barW, "load QEMU B", uint64(rc.pages.n))
	rr := &replayReader{rc: rc, progress: func(n int) { bar.set(uint64(n)) }}
	st, err := vm.MigrateIn(ctx, rr)
	rr.close() // ends a replay behind Read if QEMU B stopped reading
	bar.done()
	if err != nil {
		return fmt.Errorf("QEMU B while loading: %w; %s", err, vm.Describe())
	}
	if st != vmm.StatusPaused && st != vmm.StatusPrelaunch {
		return fmt.Errorf("QEMU B is %q after loading, want paused", st)
	}
	return nil
}

// replayReader is the rebuilt stream as an io.Reader. Copied with io.Copy (as the VMM
// backends feed their migration socket or FIFO), WriteTo replays it straight into the
// destination; Read, for any other reader, replays it through a pipe.
type replayReader struct {
	rc       *received
	progress func(int)
	pr       *io.PipeReader
}

func (r *replayReader) WriteTo(w io.Writer) (int64, error) {
	cw := &countWriter{w: w}
	err := r.rc.replayProgress(cw, r.progress)
	return cw.n, err
}

func (r *replayReader) Read(b []byte) (int, error) {
	if r.pr == nil {
		pr, pw := io.Pipe()
		r.pr = pr
		go func() { pw.CloseWithError(r.rc.replayProgress(pw, r.progress)) }()
	}
	return r.pr.Read(b)
}

func (r *replayReader) close() {
	if r.pr != nil {
		r.pr.Close()
	}
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}

// packageShape reads only the header of a guest package (cheap: no PSP work) for the checks
// that need the guest's VM shape before anything starts.
func packageShape(path string) (*guestpkg.Shape, error) {
	f, r, err := openPackage(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return &r.Header().Shape, nil
}

// openPackage opens the guest package at path and reads its header; the caller closes f.
func openPackage(path string) (*os.File, *guestpkg.Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	r, err := guestpkg.NewReader(f)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, r, nil
}
