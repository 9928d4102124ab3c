package host

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sevshim/sevshim/pkg/format/guestpkg"
	"github.com/sevshim/sevshim/pkg/migrate"
	"github.com/sevshim/sevshim/pkg/owner"
	"github.com/sevshim/sevshim/pkg/psp"
	"github.com/sevshim/sevshim/pkg/sev"
	"github.com/sevshim/sevshim/pkg/vmm"
)

// ExportOptions are the inputs of `hostctl export`.
type ExportOptions struct {
	Work  string
	Chain string      // the provider's chain file
	Trust owner.Trust // how to verify it (the emulator's test root only when given)
	Out   string
	Force bool      // replace an existing --out (by default export refuses it)
	Log   io.Writer // plain progress messages (nil: quiet)
	Bar   io.Writer // progress bar (a terminal; nil: none)
	// Hooks for tests (AfterFirstPacket, BeforePublish); none in normal use.
	Hooks Hooks
}

// ExportResult describes a written package.
type ExportResult struct {
	Out        string
	Bytes      int64
	DataPages  uint64
	ZeroPages  uint64
	Records    uint64
	StreamSize int64 // bytes of QEMU's migration stream
	Elapsed    time.Duration
}

// ErrNoSend is matched by export errors caused by the guest policy's NOSEND bit.
var ErrNoSend = errors.New("the guest policy forbids migration (NOSEND)")

// Export stops the running guest of a launch work directory, runs SEND_START against the
// provider's PDH, turns QEMU's migration stream into SEND_UPDATE_DATA packets and writes the
// guest package; QEMU A quits at the end. The package is named (link(2), never replacing a
// file) before SEND_FINISH: a failure at any step up to and including SEND_FINISH cancels the
// SEND, resumes QEMU A and leaves no package, so the guest stays exportable; after
// SEND_FINISH the package is complete under its name.
func Export(ctx context.Context, o ExportOptions) (_ *ExportResult, err error) {
	start := time.Now()
	guestNote := "the guest keeps running"
	defer interrupted(ctx, &err, func() string { return "export cancelled, " + guestNote + ", no package written" })
	work, ls, err := loadLaunch(o.Work)
	if err != nil {
		return nil, err
	}
	switch ls.Stage {
	case StageRunning:
	case StageMeasured:
		return nil, fmt.Errorf("%s: the launch is not finished; run hostctl launch-finish --work %s first", work, o.Work)
	case StageExported:
		return nil, fmt.Errorf("%s: this guest was already exported (to %s); its SEV context is SENT and cannot be sent again", work, ls.Package)
	case StageStopped:
		return nil, fmt.Errorf("%s: this guest was ended with hostctl stop; nothing is left to export (launch again)", work)
	default:
		return nil, fmt.Errorf("%s: unknown stage %q", work, ls.Stage)
	}
	if o.Out == "" {
		return nil, errors.New("--out is required")
	}
	out, err := filepath.Abs(o.Out)
	if err != nil {
		return nil, err
	}
	// Never replace a file unasked: an existing one may be another guest's package, and
	// after an export that guest is SENT and its QEMU gone, so it may be the only copy.
	if st, err := os.Lstat(out); err == nil {
		if !o.Force {
			return nil, fmt.Errorf("--out %s already exists (it may be the only copy of an exported guest): choose another name, or pass --force to replace it", out)
		}
		if !st.Mode().IsRegular() {
			return nil, fmt.Errorf("--out %s exists and is not a regular file (mode %v): refused even with --force", out, st.Mode())
		}
	}

	// The provider's chain: verified, never silently trusted.
	rep, err := owner.VerifyPlatform(o.Chain, o.Trust)
	if err != nil {
		return nil, fmt.Errorf("provider chain %s does not verify: %w", o.Chain, err)
	}
	chain := rep.ParsedChain()
	logf(o.Log, "provider chain verified (%s), PDH key sha256 %s", rep.Trust, rep.PDHKey)

	p, err := openGuestPSP(ls.Kind, ls.State)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	h := psp.Handle(ls.Handle)
	gs, err := p.GuestStatus(h)
	if err != nil {
		return nil, err
	}
	if gs.State == psp.GuestSent {
		// SEND_FINISH ran but launch.json was not updated (hostctl died right after it).
		return nil, fmt.Errorf("%s: the PSP says this guest was already sent (SEND_FINISH done); its package was named before that, look for it where the last export wrote", work)
	}
	if gs.State == psp.GuestSUpdate {
		// A previous export died midway; its session is worthless now.
		if err := p.SendCancel(h); err != nil {
			return nil, fmt.Errorf("cancelling the interrupted export: %w", err)
		}
		logf(o.Log, "cancelled an interrupted earlier export (SEND_CANCEL)")
	}

	vm, err := attachVM(ctx, work)
	if err != nil {
		return nil, err
	}
	defer vm.Close()
	if err := vm.CancelMigration(ctx); err != nil {
		return nil, err
	}

	req := psp.SendStartRequest{PDH: chain.PDH.Marshal(), PlatCerts: sev.MarshalCertChain(chain.PEK, chain.OCA, chain.CEK)}
	if chain.ASK != nil {
		req.AMDCerts = sev.MarshalAMDChain(chain.ASK, chain.ARK)
	}
	pol, session, err := psp.StartSend(p, h, req)
	if err != nil {
		if sev.Policy(ls.Policy).Has(sev.PolicyNoSend) {
			return nil, fmt.Errorf("export refused: %w: the owner's policy 0x%x has NOSEND set, so the PSP refuses SEND_START (%v); the guest keeps running", ErrNoSend, ls.Policy, err)
		}
		return nil, fmt.Errorf("SEND_START to the provider's platform: %w", err)
	}
	myPDH, _, _, _, err := psp.Export(p)
	if err != nil {
		p.SendCancel(h)
		return nil, err
	}

	res := &ExportResult{Out: out}
	wasRunning := false
	tmp := ""
	ok := false
	defer func() {
		if ok {
			return
		}
		if tmp != "" {
			os.Remove(tmp)
		}
		p.SendCancel(h)
		if wasRunning {
			// An interrupted migration may still be winding down; cont only after it did.
			cctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
			vm.CancelMigration(cctx)
			if err := vm.Resume(cctx); err == nil {
				guestNote = "guest resumed"
			} else {
				guestNote = fmt.Sprintf("QEMU A could not be resumed (%v; see hostctl stop --work %s)", err, o.Work)
			}
			cancel()
		}
	}()
	st, err := vm.Status(ctx)
	if err != nil {
		return nil, err
	}
	if st == vmm.StatusRunning {
		wasRunning = true
		if err := vm.Pause(ctx); err != nil {
			return nil, err
		}
	}

	f, named, err := createUnnamed(out)
	if err != nil {
		return nil, fmt.Errorf("package: %w", err)
	}
	if named {
		tmp = f.Name()
	}
	defer f.Close()

	hdr := &guestpkg.Header{Policy: pol, PDH: myPDH.Marshal(), Session: session,
		Shape: guestpkg.Shape{RAMSize: ls.MemoryMiB << 20, CodeSize: ls.CodeSize, VarsSize: ls.VarsSize, LayoutID: ls.LayoutID, CPUs: 1, TPM: ls.TPM}}
	delayed := false
	bar := newBar(o.Bar, "export", uint64(ls.MemoryMiB<<20+uint64(ls.CodeSize)+uint64(ls.VarsSize))/migrate.PageSize)
	bld := &guestpkg.Builder{Out: f, Pkg: hdr, Progress: bar.set,
		Seal: func(page []byte, pkt *guestpkg.Packet) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			_, _, err := p.SendUpdateData(h, page, pkt.Header[:], pkt.Data[:])
			if err != nil {
				return fmt.Errorf("SEND_UPDATE_DATA: %w", err)
			}
			return once(o.Hooks.AfterFirstPacket, &delayed, ctx)
		}}
	counted := &countReader{}
	if err := migrateOut(ctx, vm, func(r io.Reader) error {
		counted.r = bufio.NewReaderSize(r, 1<<20)
		stats, err := migrate.Parse(&machineTap{r: counted, hdr: hdr}, bld)
		if err == nil {
			res.DataPages, res.ZeroPages = stats.DataPages, stats.ZeroPages
		}
		return err
	}); err != nil {
		bar.done()
		if !vm.Alive() {
			return nil, fmt.Errorf("QEMU A (pid %d) died during the export; no package was written and the guest is lost: %w", vm.Pid(), err)
		}
		return nil, err
	}
	bar.done()
	res.StreamSize = counted.n
	if err := f.Sync(); err != nil {
		return nil, err
	}
	// Order (docs/hostctl.md): the complete, synced package gets its name first, and only
	// then does SEND_FINISH make the guest SENT. Any failure before SEND_FINISH cancels the
	// SEND and resumes QEMU A (the deferred cleanup): the guest stays exportable.
	if o.Hooks.BeforePublish != nil {
		if err := o.Hooks.BeforePublish(); err != nil {
			return nil, err
		}
	}
	// --force: keep the replaced package under a hidden name until SEND_FINISH succeeded,
	// so that a failure puts it back.
	backup := ""
	if o.Force {
		backup = filepath.Join(filepath.Dir(out), fmt.Sprintf(".%s.old%d", filepath.Base(out), os.Getpid()))
		os.Remove(backup)
		if err := os.Link(out, backup); err != nil {
			backup = ""
		}
	}
	if err := publish(f, named, out, o.Force); err != nil {
		if backup != "" {
			os.Remove(backup)
		}
		return nil, fmt.Errorf("naming the package %s: %w; the export was cancelled and the guest keeps running (export again)", out, err)
	}
	tmp = ""
	if d, err := os.Open(filepath.Dir(out)); err == nil {
		d.Sync()
		d.Close()
	}
	if err := p.SendFinish(h); err != nil {
		// No SENT guest next to a package: take the package back (or put the replaced one
		// back); the cleanup cancels.
		if backup != "" {
			os.Rename(backup, out)
		} else {
			os.Remove(out)
		}
		return nil, fmt.Errorf("SEND_FINISH: %w (the package was removed, the guest keeps running)", err)
	}
	if backup != "" {
		os.Remove(backup)
	}
	ok = true
	res.Bytes = bld.Writer().Written()
	res.Records, _ = bld.Writer().Counts()
	vm.Quit(ctx)
	stopSwtpm(work) // QEMU A's TPM state is in the package now
	if err := ls.move(StageExported); err != nil {
		return res, err
	}
	ls.Package = out
	if err := writeJSON(filepath.Join(work, LaunchJSON), ls, 0o600); err != nil {
		return res, err
	}
	// The SENT context is of no further use (SEV API 55766: only DECOMMISSION is allowed
	// in SENT); launch.json now records that the guest was sent.
	releaseGuest(ls.Kind, ls.State, ls.Handle, o.Log)
	res.Elapsed = time.Since(start)
	return res, nil
}

// migrateOut migrates the stopped guest out of vm into a pipe whose read end consume
// parses (no plaintext RAM touches the disk). A consume error aborts the migration (the VM
// stays stopped); after consume returns, the rest of the stream is drained.
//
// Between the two is a bounded buffer (chunkPipe, 8 MiB): the VMM's migration and the
// sealing of pages overlap, while consume still sees the stream's bytes in their order.
func migrateOut(ctx context.Context, vm vmm.VM, consume func(io.Reader) error) error {
	pp := newChunkPipe(pipeDepth)
	cerr := make(chan error, 1)
	go func() {
		err := consume(pp)
		if err != nil {
			pp.CloseRead(err) // the VMM's writes fail: the migration is aborted
		} else {
			io.Copy(io.Discard, pp)
		}
		cerr <- err
	}()
	merr := vm.MigrateOut(ctx, pp)
	pp.CloseWithError(merr) // nil: consume sees the end of the stream
	err := <-cerr
	pp.wipe()
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case err != nil:
		return fmt.Errorf("reading QEMU's migration: %w", err)
	}
	return merr
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	return n, err
}

// machineTap fills the package header's machine type from the stream's configuration
// section before the Builder writes the header.
type machineTap struct {
	r    io.Reader
	hdr  *guestpkg.Header
	head []byte
}

func (m *machineTap) Read(b []byte) (int, error) {
	n, err := m.r.Read(b)
	if m.hdr.Shape.Machine == "" && len(m.head) < 512 {
		m.head = append(m.head, b[:n]...)
		if name, ok := guestpkg.MachineFromStreamHeader(m.head); ok {
			m.hdr.Shape.Machine = name
		}
	}
	return n, err
}

// createUnnamed creates the package file. On Linux it is an unnamed O_TMPFILE in the target
// directory: if hostctl is killed, nothing is left behind. Elsewhere (or on file systems
// without O_TMPFILE) it is a hidden temporary file that a kill may leave (named = true).
func createUnnamed(out string) (f *os.File, named bool, err error) {
	dir := filepath.Dir(out)
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, 0o600)
	if err == nil {
		return os.NewFile(uintptr(fd), filepath.Join(dir, "(unnamed package)")), false, nil
	}
	f, err = os.CreateTemp(dir, "."+filepath.Base(out)+".tmp*")
	if err != nil {
		return nil, false, err
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, false, err
	}
	return f, true, nil
}

// publish gives the complete, synced file its name atomically without replacing anything:
// link(2) fails with EEXIST if out exists (a named temporary file is then removed; an
// unnamed one simply goes away when it is closed).
// With replace (export --force) the file gets a hidden name first and is then renamed over
// out (rename(2) replaces atomically: out is the old or the new package, never neither).
func publish(f *os.File, named bool, out string, replace bool) error {
	defer f.Close()
	if named {
		f.Close()
		if replace {
			return os.Rename(f.Name(), out)
		}
		err := os.Link(f.Name(), out)
		os.Remove(f.Name())
		return err
	}
	target := out
	if replace {
		target = filepath.Join(filepath.Dir(out), fmt.Sprintf(".%s.new%d", filepath.Base(out), os.Getpid()))
		os.Remove(target)
	}
	if err := unix.Linkat(unix.AT_FDCWD, fmt.Sprintf("/proc/self/fd/%d", f.Fd()), unix.AT_FDCWD, target, unix.AT_SYMLINK_FOLLOW); err != nil {
		return &os.LinkError{Op: "link", Old: f.Name(), New: target, Err: err}
	}
	if replace {
		if err := os.Rename(target, out); err != nil {
			os.Remove(target)
			return err
		}
	}
	return nil
}
