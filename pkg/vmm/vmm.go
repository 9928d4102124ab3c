// Package vmm is the seam between sevshim's host flows (pkg/host, behind hostctl) and the
// virtual machine monitor that runs a guest: its one job is to say what a flow may ask of a
// VM, with nothing specific to one VMM.
//
// A flow describes the VM it wants as a Spec (the Shape a migration source and target must
// agree on, the two flash files, fw_cfg files by name, an optional TPM socket) and asks a
// Backend to Start it in a work directory, or to Attach to the VM a previous command left
// running there. The VM interface is what every backend can do: status, resume, pause, NMI,
// migrate the whole state out to an io.Writer and in from an io.Reader, the serial and debug
// consoles as line streams (Console, fed from a pipe, a pty or a log file: no backend has to
// offer pipes), quit and kill. What only some backends can do is a separate small interface
// that a flow asks for with a type assertion: MemoryAccess (read and write guest-physical
// memory; QEMU has QMP pmemsave and its gdbstub, libvirt has no gdbstub) and HaltWaiter
// (wait until the vCPU executes hlt).
//
// Backends register themselves by name (Register, like database/sql drivers); hostctl links
// the ones it offers and the host flows look them up by the name recorded in the work
// directory. pkg/vmm/qemu is the QEMU backend. pkg/vmm/libvirt is the libvirt backend,
// implementing Backend and VM over go-libvirt for received guests: libvirt starts QEMU
// itself, COM1 is a log file (Console.Follow) that also carries the shim's lines, MigrateIn
// feeds a FIFO to virDomainRestore, NMI is virDomainInjectNMI; it offers no MigrateOut and
// no MemoryAccess (no gdbstub).
//
// SEV-ES adds per-vCPU state to the launch: the VMSA pages measured with
// LAUNCH_UPDATE_VMSA (SEV API 55766 section 6.6). Their content comes from the VMM (it
// creates the vCPUs), so they would enter here as a Shape field (SEV-ES on) and a VM method
// returning the initial VMSAs for the flow to hand to the PSP, next to the flash bytes the
// launch already measures.
package vmm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"time"
)

// Shape is the virtual hardware of a VM: what a migration source and its target must agree
// on (a stream only loads into the same devices).
type Shape struct {
	Machine   string // machine type; "" is the backend's default (QEMU: q35)
	CPUModel  string // vCPU model; "" is the backend's default
	CPUs      int    // vCPUs; 0 means 1
	MemoryMiB uint64 // guest RAM
	SEV       bool   // an SEV guest (memory encryption by the PSP)
	TPM       bool   // a TPM device backed by Spec.TPMSocket
}

// Flash is one pflash unit.
type Flash struct {
	Path string
	// Snapshot keeps guest writes away from the file (the file never changes; after an
	// incoming migration the migrated flash content is used, not the file's).
	Snapshot bool
	ReadOnly bool
	// Discard is for a migration target's unit, whose content the incoming stream carries
	// (the flash is a RAM block of the stream): the guest's writes reach no file at all, and
	// Path (a file of the unit's size) gives only the size. QEMU's block layer writes every
	// programmed 256-byte CFI buffer to its file synchronously, which was most of the shim's
	// flash time (docs/shim.md, "Where the flash time goes"). The QEMU backend backs the unit
	// with a null block node; libvirt's takes the writes in the domain's own copy of Path.
	Discard bool
}

// FwCfgFile is one fw_cfg file: Name in the guest (opt/...), content from the host file Path.
type FwCfgFile struct {
	Name string
	Path string
}

// Spec is everything a backend needs to start a VM.
type Spec struct {
	Shape
	Code  Flash // pflash unit 0: the shim image
	Vars  Flash // pflash unit 1: the var store
	FwCfg []FwCfgFile
	// TPMSocket is the swtpm control socket of the TPM (Shape.TPM must be set with it).
	TPMSocket string
	// Kernel, Initrd and Append are a direct kernel boot: the firmware (OVMF, after the shim's
	// hand-off) loads them from fw_cfg. A backend that does not offer it refuses a Spec that
	// sets Kernel; Initrd and Append need Kernel.
	Kernel, Initrd, Append string
	// Ports are virtio-serial ports, each a unix socket on the host that a client connects to
	// while the VM runs (the guest agent's channel, docs/formats.md section 10).
	Ports []Port

	Paused       bool // the vCPUs wait for Resume (a launch measures first)
	Incoming     bool // the VM waits for MigrateIn instead of booting
	ExitOnReboot bool // a guest reboot ends the VM
	// MemoryAccess asks for guest-memory access (the VM then implements MemoryAccess); a
	// backend that cannot offer it fails Start.
	MemoryAccess bool
}

// Port is one virtio-serial port: Name in the guest (/sys/class/virtio-ports/*/name), the
// host's end a unix socket at Socket that the backend listens on.
type Port struct {
	Name, Socket string
}

// Validate refuses a Spec no backend can start.
func (s *Spec) Validate() error {
	switch {
	case s.MemoryMiB == 0:
		return errors.New("vmm: the shape has no memory")
	case s.Code.Path == "":
		return errors.New("vmm: no code flash (pflash unit 0)")
	case s.TPMSocket != "" && !s.TPM:
		return errors.New("vmm: a TPM socket needs a TPM shape")
	case s.Paused && s.Incoming:
		return errors.New("vmm: a VM is either paused before boot or waiting for a migration, not both")
	case s.Kernel == "" && (s.Initrd != "" || s.Append != ""):
		return errors.New("vmm: an initrd or a kernel command line needs a kernel (direct kernel boot)")
	}
	names := map[string]bool{}
	for _, p := range s.Ports {
		if p.Name == "" || p.Socket == "" || names[p.Name] {
			return fmt.Errorf("vmm: virtio-serial port %q: want a unique name and a socket path", p.Name)
		}
		names[p.Name] = true
	}
	return nil
}

// CheckBootFiles says which of the direct kernel boot's files is missing or unreadable.
func (s *Spec) CheckBootFiles() error {
	for _, f := range []struct{ what, path string }{{"kernel", s.Kernel}, {"initrd", s.Initrd}} {
		if f.path == "" {
			continue
		}
		st, err := os.Stat(f.path)
		if err == nil && !st.Mode().IsRegular() {
			err = errors.New("not a regular file")
		}
		if err == nil {
			var fh *os.File
			if fh, err = os.Open(f.path); err == nil {
				fh.Close()
			}
		}
		if err != nil {
			return fmt.Errorf("vmm: %s %s: %w", f.what, f.path, err)
		}
	}
	return nil
}

// Status is the run state of a VM as the flows need it.
type Status string

const (
	StatusPrelaunch Status = "prelaunch" // never ran (Spec.Paused)
	StatusRunning   Status = "running"
	StatusPaused    Status = "paused"    // stopped after running, or loaded from a stopped source
	StatusInMigrate Status = "inmigrate" // waiting for or loading an incoming migration
)

// VM is one running virtual machine.
type VM interface {
	// Pid is the host process of the VM (0 if the backend cannot tell).
	Pid() int
	// Alive reports whether the VM still exists.
	Alive() bool
	Status(ctx context.Context) (Status, error)
	Resume(ctx context.Context) error
	Pause(ctx context.Context) error
	// NMI raises an NMI on the vCPU (on x86 through LAPIC LINT1, which the guest unmasks).
	NMI(ctx context.Context) error
	// MigrateOut writes the whole state of the (paused) VM to w until it is complete; an
	// error from w aborts the migration and the VM stays paused, ready to Resume.
	MigrateOut(ctx context.Context, w io.Writer) error
	// CancelMigration ends a migration still running from an earlier, interrupted
	// MigrateOut and waits until none is active.
	CancelMigration(ctx context.Context) error
	// MigrateIn loads a state (a VM started with Spec.Incoming) from r and returns the
	// status it has then (StatusPaused for a stopped source).
	MigrateIn(ctx context.Context, r io.Reader) (Status, error)
	// Serial is COM1, Debugcon the 0x402 debug console (the shim's lines).
	Serial() *Console
	Debugcon() *Console
	// Describe says what the VMM itself reported (its log's tail), for error messages.
	Describe() string
	// Quit asks the VMM to end the VM cleanly (devices shut down) and kills it if it does
	// not; Kill ends it at once (no device shutdown: a TPM keeps its volatile state).
	Quit(ctx context.Context) error
	Kill() error
	// Close drops this process's connection; the VM keeps running.
	Close() error
}

// MemoryAccess is guest-physical memory access, for VMs started with Spec.MemoryAccess.
type MemoryAccess interface {
	ReadPhys(ctx context.Context, addr uint64, n int) ([]byte, error)
	// WritePhys writes data and reads it back to check.
	WritePhys(ctx context.Context, addr uint64, data []byte) error
	// EndMemoryAccess closes the access for good (nothing can poke the guest any more).
	EndMemoryAccess(ctx context.Context) error
}

// HaltWaiter is implemented by VMs that can tell when the vCPU has executed hlt.
type HaltWaiter interface {
	WaitHalted(ctx context.Context, timeout time.Duration) error
}

// Backend starts and finds VMs whose files live in a work directory.
type Backend interface {
	Name() string
	// Start starts a VM for spec, owned by the private directory dir; it outlives this
	// process until Quit, Kill or Stop.
	Start(ctx context.Context, dir string, spec Spec) (VM, error)
	// Attach connects to the running VM of dir.
	Attach(ctx context.Context, dir string) (VM, error)
	// Running returns the pid of the live VM of dir (0 if none).
	Running(dir string) int
	// Stop ends the VM of dir, if any (cleanly if it can), and returns its pid.
	Stop(ctx context.Context, dir string) (int, error)
}

// TPMOwner is a Backend that runs each VM's TPM itself (libvirt's emulator backend starts and
// stops swtpm with the domain). A Spec for it sets Shape.TPM and leaves TPMSocket empty; a
// backend that is not a TPMOwner needs the socket of a swtpm the flow started.
type TPMOwner interface {
	OwnsTPM() bool
}

// OwnsTPM reports whether b runs the TPM of its VMs itself (TPMOwner).
func OwnsTPM(b Backend) bool {
	o, ok := b.(TPMOwner)
	return ok && o.OwnsTPM()
}

var (
	regMu    sync.Mutex
	backends = map[string]Backend{}
)

// Register makes a backend available under its name.
func Register(b Backend) {
	regMu.Lock()
	defer regMu.Unlock()
	backends[b.Name()] = b
}

// DefaultBackend is the name used when a work directory records none.
const DefaultBackend = "qemu"

// Lookup returns the backend registered under name ("" is DefaultBackend).
func Lookup(name string) (Backend, error) {
	if name == "" {
		name = DefaultBackend
	}
	regMu.Lock()
	defer regMu.Unlock()
	if b, ok := backends[name]; ok {
		return b, nil
	}
	var have []string
	for n := range backends {
		have = append(have, n)
	}
	sort.Strings(have)
	return nil, fmt.Errorf("vmm: no backend %q in this program (have %v)", name, have)
}
