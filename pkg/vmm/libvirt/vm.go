package libvirt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/sevshim/sevshim/pkg/vmm"
)

// vm is one receive's domain (vmm.VM).
type vm struct {
	l     *golibvirt.Libvirt
	dir   string
	rec   *record
	files domainFiles
	xml   string

	mu     sync.Mutex
	dom    golibvirt.Domain
	live   bool // the domain exists (restored or attached)
	pid    int
	ended  bool // torn down by this process
	closed bool // Close dropped l

	serial    *vmm.Console
	stop      chan struct{}
	closeOnce sync.Once
}

// consolePoll is how often the COM1 log is read.
const consolePoll = 20 * time.Millisecond

func newVM(l *golibvirt.Libvirt, dir string, rec *record, files domainFiles, xml string) *vm {
	v := &vm{l: l, dir: dir, rec: rec, files: files, xml: xml, stop: make(chan struct{})}
	v.serial = vmm.NewConsole("serial", nil)
	go v.serial.Follow(files.Serial, consolePoll, v.gone, v.stop)
	return v
}

func (v *vm) attached(dom golibvirt.Domain) {
	v.mu.Lock()
	v.dom, v.live, v.pid = dom, true, qemuPid(v.rec.Domain)
	v.mu.Unlock()
}

// gone reports whether the domain's QEMU has ended (false before it started).
func (v *vm) gone() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.ended {
		return true
	}
	if !v.live || v.pid == 0 {
		return false
	}
	return syscall.Kill(v.pid, 0) != nil
}

func (v *vm) domain() (golibvirt.Domain, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.live || v.ended {
		return golibvirt.Domain{}, fmt.Errorf("libvirt: domain %s is not running", v.rec.Domain)
	}
	return v.dom, nil
}

func (v *vm) Pid() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.pid
}

func (v *vm) Alive() bool {
	v.mu.Lock()
	live, ended, pid := v.live, v.ended, v.pid
	v.mu.Unlock()
	if ended {
		return false
	}
	if !live {
		return true // prepared, waiting for MigrateIn
	}
	return pid != 0 && syscall.Kill(pid, 0) == nil
}

func (v *vm) Status(ctx context.Context) (vmm.Status, error) {
	dom, err := v.domain()
	if err != nil {
		if !v.isLive() {
			return vmm.StatusInMigrate, nil
		}
		return "", err
	}
	st, _, err := v.l.DomainGetState(dom, 0)
	if err != nil {
		return "", fmt.Errorf("libvirt: state of %s: %w", v.rec.Domain, err)
	}
	switch golibvirt.DomainState(st) {
	case golibvirt.DomainRunning:
		return vmm.StatusRunning, nil
	case golibvirt.DomainPaused:
		return vmm.StatusPaused, nil
	}
	return "", fmt.Errorf("libvirt: domain %s is in state %d", v.rec.Domain, st)
}

func (v *vm) isLive() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.live && !v.ended
}

func (v *vm) Resume(ctx context.Context) error {
	dom, err := v.domain()
	if err == nil {
		err = v.l.DomainResume(dom)
	}
	return wrap("resume", err)
}

func (v *vm) Pause(ctx context.Context) error {
	dom, err := v.domain()
	if err == nil {
		err = v.l.DomainSuspend(dom)
	}
	return wrap("suspend", err)
}

// NMI is virDomainInjectNMI (QEMU's inject-nmi: LINT1 of the vCPU).
func (v *vm) NMI(ctx context.Context) error {
	dom, err := v.domain()
	if err == nil {
		err = v.l.DomainInjectNmi(dom, 0)
	}
	return wrap("inject NMI", err)
}

func wrap(what string, err error) error {
	if err != nil {
		return fmt.Errorf("libvirt %s: %w", what, err)
	}
	return nil
}

var errNoMigrateOut = errors.New("libvirt backend: migrating a guest out is not offered (an export runs on hostctl's own QEMU)")

func (v *vm) MigrateOut(ctx context.Context, w io.Writer) error { return errNoMigrateOut }

func (v *vm) CancelMigration(ctx context.Context) error { return nil }

// restoreFIFO is the FIFO in the work directory that libvirt restores from.
const restoreFIFO = "libvirt-restore.fifo"

// MigrateIn makes libvirtd restore the domain, paused, from a save image that it reads from
// a FIFO while this process writes it: libvirt's header, the domain XML, then r (the QEMU
// stream). The FIFO is unlinked as soon as libvirtd has it open; nothing of the stream is
// stored.
func (v *vm) MigrateIn(ctx context.Context, r io.Reader) (vmm.Status, error) {
	if v.xml == "" {
		return "", errors.New("libvirt backend: MigrateIn on an attached domain")
	}
	if v.rec.ManagedSave != "" {
		return v.defineManaged(ctx, r)
	}
	fifo := filepath.Join(v.dir, restoreFIFO)
	os.Remove(fifo)
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		return "", fmt.Errorf("libvirt: restore FIFO: %w", err)
	}
	defer os.Remove(fifo)
	opened := make(chan struct{})
	wrote := make(chan error, 1)
	go func() {
		f, err := os.OpenFile(fifo, os.O_WRONLY, 0) // until libvirtd opens it to read
		close(opened)
		if err != nil {
			wrote <- err
			return
		}
		os.Remove(fifo)
		err = writeSaveHeader(f, []byte(v.xml), false)
		if err == nil {
			_, err = io.Copy(f, ctxReader{ctx, r})
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		wrote <- err
	}()
	logFrom := fileSize(v.qemuLog())
	rerr := v.l.DomainRestoreFlags(fifo, nil, uint32(golibvirt.DomainSavePaused))
	select {
	case <-opened:
	default:
		// libvirtd failed before opening the FIFO: let the writer's open return (it then
		// fails on its first write).
		if rd, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil {
			<-opened
			rd.Close()
		}
	}
	var werr error
	select {
	case werr = <-wrote:
	case <-time.After(30 * time.Second):
		werr = errors.New("the writer did not finish within 30 s")
	}
	if rerr != nil {
		// libvirt removes a domain whose restore failed: nothing runs any more.
		v.mu.Lock()
		v.ended = true
		v.mu.Unlock()
		// libvirt's message may lack QEMU's reason (a race with QEMU's exit): QEMU's
		// own lines of this run are in its log.
		said := ""
		if !strings.Contains(rerr.Error(), "qemu-system-") {
			// virtlogd may still be writing QEMU's last lines: look for 1 s at most.
			for i := 0; i < 10 && said == ""; i++ {
				if q := qemuErrors(v.qemuLog(), logFrom); q != "" {
					said = "; QEMU said: " + q
				} else {
					time.Sleep(100 * time.Millisecond)
				}
			}
		}
		if werr != nil && !errors.Is(werr, syscall.EPIPE) {
			return "", fmt.Errorf("libvirt restore of %s: %w%s (writing the image: %v)", v.rec.Domain, rerr, said, werr)
		}
		return "", fmt.Errorf("libvirt restore of %s: %w%s", v.rec.Domain, rerr, said)
	}
	if werr != nil {
		return "", fmt.Errorf("libvirt restore of %s: writing the image: %w", v.rec.Domain, werr)
	}
	dom, err := v.l.DomainLookupByName(v.rec.Domain)
	if err != nil {
		return "", fmt.Errorf("libvirt: domain %s after the restore: %w", v.rec.Domain, err)
	}
	v.attached(dom)
	return v.Status(ctx)
}

// ctxReader ends a read loop once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Serial is COM1 (its log file). Debugcon is the same console: libvirt's QEMU has no
// isa-debugcon, and the shim prints every SEVSHIM line on COM1 too.
func (v *vm) Serial() *vmm.Console   { return v.serial }
func (v *vm) Debugcon() *vmm.Console { return v.serial }

// qemuLogDir is where libvirt's privileged QEMU driver logs each domain's QEMU.
const qemuLogDir = "/var/log/libvirt/qemu"

func (v *vm) qemuLog() string { return filepath.Join(qemuLogDir, v.rec.Domain+".log") }

func fileSize(p string) int64 {
	st, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return st.Size()
}

var reQEMUSaid = regexp.MustCompile(`qemu-system-[a-z0-9_]+: .*$`)

// qemuErrors returns the lines QEMU itself wrote (qemu-system-...: ...) to log p after
// offset from, joined.
func qemuErrors(p string, from int64) string {
	f, err := os.Open(p)
	if err != nil {
		return ""
	}
	defer f.Close()
	b, _ := io.ReadAll(io.NewSectionReader(f, from, 1<<20))
	var said []string
	for _, l := range strings.Split(string(b), "\n") {
		if m := reQEMUSaid.FindString(l); m != "" {
			said = append(said, m)
		}
	}
	return strings.Join(said, " | ")
}

// Describe is the tail of libvirt's log of the domain's QEMU.
func (v *vm) Describe() string {
	p := v.qemuLog()
	b, err := os.ReadFile(p)
	if err != nil {
		return fmt.Sprintf("domain %s (no QEMU log: %v)", v.rec.Domain, err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 8 {
		lines = lines[len(lines)-8:]
	}
	return fmt.Sprintf("domain %s, %s ends: %s", v.rec.Domain, p, strings.Join(lines, " | "))
}

// Quit and Kill destroy the domain (a shim guest has no ACPI shutdown to wait for),
// undefine it and remove its files.
func (v *vm) Quit(ctx context.Context) error { return v.Kill() }

func (v *vm) Kill() error {
	v.mu.Lock()
	v.ended = true
	closed := v.closed
	v.mu.Unlock()
	l := v.l
	if closed {
		// After Close (a flow's deferred clean-up): a connection of its own.
		var err error
		if l, err = dial(v.rec.URI); err != nil {
			return err
		}
		defer l.Disconnect()
	}
	_, err := teardown(l, v.rec)
	return err
}

// Close stops following the console and drops the connection; the domain keeps running.
func (v *vm) Close() error {
	var err error
	v.closeOnce.Do(func() {
		close(v.stop)
		v.mu.Lock()
		v.closed = true
		v.mu.Unlock()
		err = v.l.Disconnect()
	})
	return err
}

// partSuffix names a managed-save image while it is written.
const partSuffix = ".part"

// defineManaged defines the domain and writes its managed-save image (libvirt's header with
// the defined domain's migratable XML, was_running set, then r): libvirt's next start of
// the domain restores it and runs it (libvirt removes the image after that start). The
// domain then counts as paused: it holds the guest and waits for its start.
func (v *vm) defineManaged(ctx context.Context, r io.Reader) (vmm.Status, error) {
	dom, err := v.l.DomainDefineXMLFlags(v.xml, 0)
	if err != nil {
		return "", fmt.Errorf("libvirt: defining %s: %w", v.rec.Domain, err)
	}
	x, err := v.l.DomainGetXMLDesc(dom, golibvirt.DomainXMLSecure|golibvirt.DomainXMLMigratable)
	if err != nil {
		return "", fmt.Errorf("libvirt: XML of %s: %w", v.rec.Domain, err)
	}
	part := v.rec.ManagedSave + partSuffix
	os.Remove(part)
	f, err := os.OpenFile(part, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("libvirt: managed-save image: %w", err)
	}
	err = writeSaveHeader(f, []byte(x), true)
	if err == nil {
		_, err = io.Copy(f, ctxReader{ctx, r})
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(part, v.rec.ManagedSave)
	}
	if err != nil {
		os.Remove(part)
		return "", fmt.Errorf("libvirt: writing the managed-save image of %s: %w", v.rec.Domain, err)
	}
	return vmm.StatusPaused, nil
}
