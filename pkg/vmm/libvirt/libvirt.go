// Package libvirt is the libvirt backend of the VMM seam (pkg/vmm): its one job is to run a
// received guest as a libvirt domain, talking to libvirtd over its RPC protocol with
// go-libvirt (no virsh, no cgo).
//
// A receive's VM is domain sevshim-NAME. Start writes the per-domain files (a copy of the
// shim image as the pflash loader and of the var store as the nvram, owned by the user
// libvirt runs QEMU as, since libvirt does not relabel a loader; the fw_cfg files; the COM1
// log) and the domain XML (generated with libvirtxml from the Spec's Shape); MigrateIn then
// makes libvirt restore the domain, paused, from a save image written into a FIFO (libvirt's
// save-image header and the XML, then the rebuilt QEMU stream: the guest's plaintext RAM
// never lands on disk). Resume, NMI (virDomainInjectNMI), Status and Stop (destroy, undefine,
// remove the files) follow. libvirt has no debug console on 0x402 and no gdbstub: the shim's
// lines are read from COM1 (Debugcon is the serial console) and the VM offers no
// MemoryAccess. A work directory records the URI and the domain in libvirt.json, so hostctl
// stop finds them. See docs/hostctl.md (libvirt) and docs/architecture.md.
package libvirt

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/sevshim/sevshim/pkg/atomicfile"
	"github.com/sevshim/sevshim/pkg/vmm"
)

// Name is the backend's name in a work directory's record (receive.json "vmm").
const Name = "libvirt"

// DomainPrefix starts the name of every domain this backend makes.
const DomainPrefix = "sevshim-"

// Defaults of Config.
const (
	DefaultURI      = "qemu:///system"
	DefaultQEMUUser = "libvirt-qemu" // Debian's qemu.conf default (user = "libvirt-qemu")
	DefaultFilesDir = "/var/lib/libvirt/sevshim"
	// DefaultManagedSaveDir is where libvirt's privileged QEMU driver keeps managed-save
	// images (qemu.conf save_image_dir aside): NAME.save.
	DefaultManagedSaveDir = "/var/lib/libvirt/qemu/save"
)

// Config says where and how a receive's domain runs.
type Config struct {
	URI string // libvirt connection URI ("" is DefaultURI)
	// Name makes the domain sevshim-Name ("" is the work directory's base name).
	Name string
	// QEMUUser is the user libvirt runs QEMU as (qemu.conf "user"), who owns the
	// per-domain files ("" is DefaultQEMUUser).
	QEMUUser string
	// FilesDir holds one directory per domain ("" is DefaultFilesDir).
	FilesDir string
	// DefineOnly defines the domain and places its managed-save image (MigrateIn) instead
	// of restoring it: libvirt's next start of the domain loads the guest (see
	// docs/hostctl.md: the image holds the guest's plaintext RAM until that start).
	DefineOnly bool
	// ManagedSaveDir is libvirt's managed-save directory for the URI ("" is
	// DefaultManagedSaveDir, qemu:///system's).
	ManagedSaveDir string
}

func (c Config) withDefaults() Config {
	if c.URI == "" {
		c.URI = DefaultURI
	}
	if c.QEMUUser == "" {
		c.QEMUUser = DefaultQEMUUser
	}
	if c.FilesDir == "" {
		c.FilesDir = DefaultFilesDir
	}
	if c.ManagedSaveDir == "" {
		c.ManagedSaveDir = DefaultManagedSaveDir
	}
	return c
}

// Backend runs VMs as libvirt domains.
type Backend struct{ cfg Config }

// New returns a backend that starts domains as cfg says. Attach, Running and Stop use what
// the work directory recorded, whatever cfg says.
func New(cfg Config) *Backend { return &Backend{cfg: cfg.withDefaults()} }

// hostctl links this package; receive --libvirt registers a backend with its flags.
func init() { vmm.Register(New(Config{})) }

// Name is "libvirt".
func (b *Backend) Name() string { return Name }

// OwnsTPM is true: libvirt runs the domain's swtpm itself (vmm.TPMOwner).
func (b *Backend) OwnsTPM() bool { return true }

// recordFile is the work directory's record of its domain.
const recordFile = "libvirt.json"

// record is WB/libvirt.json: enough for a later hostctl to find and end the domain.
type record struct {
	URI    string `json:"uri"`
	Domain string `json:"domain"`
	UUID   string `json:"uuid"`
	Files  string `json:"files"` // the per-domain directory
	// ManagedSave is the managed-save image a --define-only receive placed ("" if none).
	ManagedSave string `json:"managed_save,omitempty"`
}

func readRecord(dir string) (*record, error) {
	b, err := os.ReadFile(filepath.Join(dir, recordFile))
	if err != nil {
		return nil, err
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, recordFile), err)
	}
	if !strings.HasPrefix(r.Domain, DomainPrefix) {
		return nil, fmt.Errorf("%s names domain %q, not one of sevshim's", filepath.Join(dir, recordFile), r.Domain)
	}
	return &r, nil
}

func (r *record) write(dir string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, recordFile), append(b, '\n'), 0o600)
}

var reDomainName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,47}$`)

// DomainName is the domain a receive named name (or, with name "", into work directory
// dir) runs as.
func DomainName(name, dir string) (string, error) {
	if name == "" {
		name = filepath.Base(dir)
	}
	if !reDomainName.MatchString(name) {
		return "", fmt.Errorf("libvirt: domain name %q: want 1-48 letters, digits, '.', '_' or '-' (pass --name)", name)
	}
	return DomainPrefix + name, nil
}

// dial connects to libvirtd at uri.
func dial(uri string) (*golibvirt.Libvirt, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return nil, fmt.Errorf("libvirt URI %q: %w", uri, err)
	}
	l, err := golibvirt.ConnectToURI(u)
	if err != nil {
		return nil, fmt.Errorf("libvirt %s: %w (is libvirtd running?)", uri, err)
	}
	return l, nil
}

func newUUID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40 // version 4 (RFC 9562 section 5.4)
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}

// Start prepares the domain of a received guest in work directory dir: the record, the
// per-domain files and the domain XML. The domain itself appears in MigrateIn (a restore).
// Only incoming VMs are offered: the private launch stays on hostctl's own QEMU.
func (b *Backend) Start(ctx context.Context, dir string, spec vmm.Spec) (vmm.VM, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	switch {
	case !spec.Incoming:
		return nil, errors.New("libvirt backend: only a received guest (an incoming migration) runs on libvirt; a launch uses hostctl's own QEMU")
	case spec.MemoryAccess:
		return nil, errors.New("libvirt backend: no guest-memory access (libvirt offers no gdbstub)")
	}
	name, err := DomainName(b.cfg.Name, dir)
	if err != nil {
		return nil, err
	}
	l, err := dial(b.cfg.URI)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			l.Disconnect()
		}
	}()
	// A domain this work directory left (an interrupted receive) goes; anyone else's stays.
	if prev, err := readRecord(dir); err == nil && prev.Domain == name {
		if _, err := teardown(l, prev); err != nil {
			return nil, err
		}
	}
	if _, err := l.DomainLookupByName(name); err == nil {
		return nil, fmt.Errorf("libvirt: domain %s already exists (another work directory's guest?): stop it, or pass another --name", name)
	} else if !golibvirt.IsNotFound(err) {
		return nil, fmt.Errorf("libvirt: looking up %s: %w", name, err)
	}
	uuid, err := newUUID()
	if err != nil {
		return nil, err
	}
	rec := &record{URI: b.cfg.URI, Domain: name, UUID: uuid, Files: filepath.Join(b.cfg.FilesDir, name)}
	if b.cfg.DefineOnly {
		rec.ManagedSave = filepath.Join(b.cfg.ManagedSaveDir, name+".save")
	}
	// Recorded before anything exists, so that hostctl stop (or the next receive) can end
	// whatever this one leaves when it is killed.
	if err := rec.write(dir); err != nil {
		return nil, err
	}
	files, err := prepareFiles(rec.Files, b.cfg.QEMUUser, spec)
	if err != nil {
		os.RemoveAll(rec.Files)
		return nil, err
	}
	xml, err := domainXML(name, uuid, spec, files)
	if err != nil {
		os.RemoveAll(rec.Files)
		return nil, err
	}
	ok = true
	return newVM(l, dir, rec, files, xml), nil
}

// Attach connects to the running domain of dir.
func (b *Backend) Attach(ctx context.Context, dir string) (vmm.VM, error) {
	rec, err := readRecord(dir)
	if err != nil {
		return nil, err
	}
	l, err := dial(rec.URI)
	if err != nil {
		return nil, err
	}
	dom, err := l.DomainLookupByName(rec.Domain)
	if err != nil {
		l.Disconnect()
		return nil, fmt.Errorf("libvirt: domain %s of %s: %w", rec.Domain, dir, err)
	}
	v := newVM(l, dir, rec, domainFiles{Serial: filepath.Join(rec.Files, serialLog)}, "")
	v.attached(dom)
	return v, nil
}

// Running returns the QEMU pid of dir's domain if it runs (0 if none, or libvirtd is
// unreachable).
func (b *Backend) Running(dir string) int {
	rec, err := readRecord(dir)
	if err != nil {
		return 0
	}
	l, err := dial(rec.URI)
	if err != nil {
		return 0
	}
	defer l.Disconnect()
	dom, err := l.DomainLookupByName(rec.Domain)
	if err != nil {
		return 0
	}
	if active, err := l.DomainIsActive(dom); err != nil || active == 0 {
		return 0
	}
	return qemuPid(rec.Domain)
}

// Stop destroys and undefines dir's domain and removes its files; it returns the QEMU pid
// it ended (0 if none ran).
func (b *Backend) Stop(ctx context.Context, dir string) (int, error) {
	rec, err := readRecord(dir)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	l, err := dial(rec.URI)
	if err != nil {
		return 0, err
	}
	defer l.Disconnect()
	return teardown(l, rec)
}

// teardown ends a recorded domain whatever state it is in: destroy (libvirt waits until
// QEMU is gone), undefine a persistent one with its managed-save image, nvram and TPM
// state, remove the per-domain files. It returns the pid of the QEMU it ended.
func teardown(l *golibvirt.Libvirt, rec *record) (int, error) {
	pid := 0
	dom, err := l.DomainLookupByName(rec.Domain)
	switch {
	case err == nil:
		if active, _ := l.DomainIsActive(dom); active != 0 {
			pid = qemuPid(rec.Domain)
			if err := l.DomainDestroy(dom); err != nil && !golibvirt.IsNotFound(err) {
				return pid, fmt.Errorf("libvirt: destroying %s: %w", rec.Domain, err)
			}
		}
		if persistent, _ := l.DomainIsPersistent(dom); persistent != 0 {
			err := l.DomainUndefineFlags(dom, golibvirt.DomainUndefineManagedSave|golibvirt.DomainUndefineNvram|golibvirt.DomainUndefineTpm)
			if err != nil && !golibvirt.IsNotFound(err) {
				return pid, fmt.Errorf("libvirt: undefining %s: %w", rec.Domain, err)
			}
		}
	case !golibvirt.IsNotFound(err):
		return 0, fmt.Errorf("libvirt: looking up %s: %w", rec.Domain, err)
	}
	if rec.ManagedSave != "" {
		// Undefining removed a complete image; a receive killed while writing left a part.
		os.Remove(rec.ManagedSave + partSuffix)
		os.Remove(rec.ManagedSave)
	}
	if rec.Files != "" {
		if err := os.RemoveAll(rec.Files); err != nil {
			return pid, err
		}
	}
	return pid, nil
}

// qemuPidDir is where libvirt's QEMU driver (privileged) keeps each domain's QEMU pid.
const qemuPidDir = "/run/libvirt/qemu"

// qemuPid is the pid of the QEMU running domain name (0 if unknown).
func qemuPid(name string) int {
	b, err := os.ReadFile(filepath.Join(qemuPidDir, name+".pid"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}
