package host

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/sevshim/sevshim/pkg/atomicfile"
	"github.com/sevshim/sevshim/pkg/format/console"
	"github.com/sevshim/sevshim/pkg/format/layout"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/sevshim/sevshim/pkg/format/shimerr"
	"github.com/sevshim/sevshim/pkg/format/shimimage"
	"github.com/sevshim/sevshim/pkg/owner"
	"github.com/sevshim/sevshim/pkg/psp"
	"github.com/sevshim/sevshim/pkg/sev"
	"github.com/sevshim/sevshim/pkg/vmm"
)

// Files of a work directory written by the host flows (the VM's own files are its
// backend's; state.go says which stage owns which).
const (
	LaunchJSON  = "launch.json"
	MeasureJSON = "measurement.json"
	ReceiveJSON = "receive.json"
)

// Stages of a launch work directory (launch.json "stage").
const (
	StageMeasured = "measured" // QEMU A paused in prelaunch, LAUNCH_MEASURE done
	StageRunning  = "running"  // LAUNCH_FINISH done, the shim printed READY
	StageExported = "exported" // SEND_FINISH done, package written, QEMU A gone
	StageStopped  = "stopped"  // hostctl stop ended QEMU A and released its guest context
)

// LaunchState is W/launch.json: what later commands need to find the guest again.
type LaunchState struct {
	Format     int    `json:"format"`
	Stage      string `json:"stage"`
	Kind       string `json:"psp_kind"`
	State      string `json:"psp_state,omitempty"`
	Handle     uint32 `json:"handle"`
	Policy     uint32 `json:"policy"`
	Image      string `json:"image"` // copy of the launched image in W
	ImageSHA   string `json:"image_sha256"`
	LayoutID   uint32 `json:"layout_id"`
	CodeSize   uint32 `json:"code_size"`
	VarsSize   uint32 `json:"vars_size"`
	MemoryMiB  uint64 `json:"memory_mib"`
	SecretBase uint32 `json:"secret_base,omitempty"`
	SecretSize uint32 `json:"secret_size,omitempty"`
	Package    string `json:"package,omitempty"`
	TPM        bool   `json:"tpm,omitempty"` // QEMU A has a tpm-crb TPM backed by W/swtpm.sock
	VMM        string `json:"vmm,omitempty"` // the VMM backend ("" is vmm.DefaultBackend)
}

// LaunchOptions are the inputs of `hostctl launch`.
type LaunchOptions struct {
	Kind, State string // PSP backend
	Image       string // shim image (pflash unit 0)
	Session     string // session directory from `verifier session`
	Name        string // session file prefix; default: session.json's name
	Work        string
	Vars        string // pflash unit 1 content; default Debian's OVMF_VARS template
	MemoryMiB   uint64 // default 512
	TPM         bool   // give QEMU A a TPM (swtpm in W; the package then needs receive --tpm)
	VMM         string // VMM backend name; "" is vmm.DefaultBackend
	Log         io.Writer
}

// LaunchResult is what launch reports.
type LaunchResult struct {
	Work        string
	Pid         int
	Handle      psp.Handle
	Measurement *sev.Measurement
	MeasureFile string
}

// Launch starts QEMU A paused (-S) with the shim, reads the flash back from QEMU, runs
// LAUNCH_START, LAUNCH_UPDATE_DATA over exactly those bytes and LAUNCH_MEASURE, and writes
// W/measurement.json and W/launch.json. QEMU stays paused in prelaunch.
func Launch(ctx context.Context, o LaunchOptions) (_ *LaunchResult, err error) {
	defer interrupted(ctx, &err, func() string {
		return "launch cancelled: QEMU A was stopped, its guest context released, nothing was measured"
	})
	if err := checkGuestKind(o.Kind); err != nil {
		return nil, err
	}
	// Cheap checks first (every input file, the platform, the work directory's record), so
	// that a refusal costs no PSP or QEMU work and leaves no empty work directory behind.
	if err := requirePlatform(o.Kind, o.State); err != nil {
		return nil, err
	}
	if o.Work == "" {
		return nil, fmt.Errorf("a work directory (--work) is required")
	}
	if err := checkLaunchTarget(o.Work); err != nil {
		return nil, err
	}
	if o.MemoryMiB == 0 {
		o.MemoryMiB = 512
	}
	if o.MemoryMiB < 64 || o.MemoryMiB > 64<<10 {
		return nil, fmt.Errorf("--memory %d MiB: want 64..65536", o.MemoryMiB)
	}
	img, err := os.ReadFile(o.Image)
	if err != nil {
		return nil, fmt.Errorf("shim image: %w", err)
	}
	info, err := shimimage.Info(img)
	if err != nil {
		return nil, fmt.Errorf("%s is not a usable sevshim image: %w (make one with builder build)", o.Image, err)
	}
	lay, _ := layout.ByID(info.Layout)
	if _, _, err := shimimage.ExtractPolicy(img); errors.Is(err, shimimage.ErrEmptyPolicy) {
		return nil, fmt.Errorf("%s is the shim template (its policy region is empty): this is the template, run builder build to make an image with your policy", o.Image)
	}
	varsData, err := loadVars(o.Vars, lay)
	if err != nil {
		return nil, err
	}

	// The owner's session: GODH and session blob (the TEK/TIK stay with the owner; launch
	// never reads them).
	var si owner.SessionInfo
	if err := readJSON(filepath.Join(o.Session, owner.SessionFile), &si); err != nil {
		return nil, fmt.Errorf("session directory %s: %w (make it with verifier session)", o.Session, err)
	}
	pol := sev.Policy(si.Policy)
	if err := pol.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(o.Session, owner.SessionFile), err)
	}
	name := o.Name
	if name == "" {
		name = si.Name
	}
	if name == "" {
		name = owner.DefaultSessionName
	}
	files := sev.LaunchFileNames(o.Session, name)
	godhText, err := os.ReadFile(files.GODH)
	if err != nil {
		return nil, fmt.Errorf("session: %w", err)
	}
	godh, err := sev.DecodeCertBase64(godhText)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", files.GODH, err)
	}
	sessText, err := os.ReadFile(files.Session)
	if err != nil {
		return nil, fmt.Errorf("session: %w", err)
	}
	sess, err := sev.DecodeSessionBase64(sessText)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", files.Session, err)
	}

	_, statErr := os.Lstat(o.Work)
	work, err := makeWorkDir(o.Work)
	if err != nil {
		return nil, err
	}
	created := errors.Is(statErr, fs.ErrNotExist)
	ok := false
	defer func() {
		if !ok && created {
			os.Remove(work) // only if still empty
		}
	}()
	backend, err := vmm.Lookup(o.VMM)
	if err != nil {
		return nil, err
	}
	if pid := runningVM(work); pid != 0 {
		return nil, fmt.Errorf("%s already has a running QEMU (pid %d): stop it with hostctl stop --work %s, or use another --work", work, pid, work)
	}
	releaseWorkGuest(work, o.Log) // the context of an earlier launch here whose QEMU is gone
	p, err := openGuestPSP(o.Kind, o.State)
	if err != nil {
		return nil, err
	}
	defer p.Close()

	// QEMU A's flash: a private copy of the image, and a vars file of the layout's size.
	code := filepath.Join(work, "shim.fd")
	if err := atomicfile.WriteFile(code, img, 0o600); err != nil {
		return nil, err
	}
	vars := filepath.Join(work, "vars.fd")
	if err := atomicfile.WriteFile(vars, varsData, 0o600); err != nil {
		return nil, err
	}
	spec := vmm.Spec{Shape: vmm.Shape{MemoryMiB: o.MemoryMiB, CPUs: 1, TPM: o.TPM},
		Code: vmm.Flash{Path: code, Snapshot: true}, Vars: vmm.Flash{Path: vars, Snapshot: true},
		Paused: true, MemoryAccess: true, ExitOnReboot: true}
	var tpm *swtpm
	if o.TPM {
		if tpm, err = startSwtpm(work); err != nil {
			return nil, err
		}
		spec.TPMSocket = filepath.Join(work, SwtpmSock)
	} else {
		stopSwtpm(work)
	}
	vm, err := backend.Start(ctx, work, spec)
	if err != nil {
		if tpm != nil {
			tpm.kill()
		}
		return nil, err
	}
	var h psp.Handle
	defer func() {
		if !ok {
			vm.Kill()
			if tpm != nil {
				tpm.kill()
			}
			if h != 0 {
				p.Decommission(h)
			}
		}
		vm.Close()
	}()
	if tpm != nil {
		logf(o.Log, "QEMU A started paused (pid %d) with a TPM (swtpm pid %d)", vm.Pid(), tpm.pid)
	} else {
		logf(o.Log, "QEMU A started paused (pid %d)", vm.Pid())
	}

	// Read the flash back from QEMU: the bytes the guest will execute are what we measure.
	mem, err := memoryOf(vm, "measuring the launch")
	if err != nil {
		return nil, err
	}
	mapped, err := mem.ReadPhys(ctx, uint64(1<<32)-uint64(len(img)), len(img))
	if err != nil {
		return nil, fmt.Errorf("reading the flash back from QEMU: %w", err)
	}
	if !bytes.Equal(mapped, img) {
		return nil, fmt.Errorf("QEMU maps different bytes at [4 GiB - 0x%x, 4 GiB) than %s: refusing to measure", len(img), o.Image)
	}

	h, err = p.LaunchStart(psp.LaunchStartRequest{Policy: pol, DHCert: godh.Marshal(), Session: sess.Marshal()})
	if err != nil {
		return nil, fmt.Errorf("LAUNCH_START with the session in %s: %w", o.Session, err)
	}
	if err := p.LaunchUpdateData(h, mapped); err != nil {
		return nil, fmt.Errorf("LAUNCH_UPDATE_DATA: %w", err)
	}
	m, err := psp.Measure(p, h)
	if err != nil {
		return nil, fmt.Errorf("LAUNCH_MEASURE: %w", err)
	}
	st, err := p.PlatformStatus()
	if err != nil {
		return nil, err
	}
	mf := filepath.Join(work, MeasureJSON)
	if err := writeJSON(mf, map[string]any{
		"sev-measurement": base64.StdEncoding.EncodeToString(m.Marshal()),
		"sev-api-major":   st.APIMajor, "sev-api-minor": st.APIMinor, "sev-build-id": st.Build,
		"sev-policy": uint32(pol),
	}, 0o644); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(img)
	ls := &LaunchState{Format: 1, Stage: StageMeasured, VMM: backend.Name(), Kind: p.Kind(), Handle: uint32(h), Policy: uint32(pol),
		Image: code, ImageSHA: hex.EncodeToString(sum[:]), LayoutID: lay.ID, CodeSize: lay.CodeSize, VarsSize: lay.VarsSize,
		MemoryMiB: o.MemoryMiB, TPM: o.TPM}
	if e, isEmu := p.(*psp.Emulator); isEmu {
		ls.State = e.Dir()
	}
	if info.SecretUsable() {
		ls.SecretBase, ls.SecretSize = info.SecretBase, info.SecretSize
	}
	if err := writeJSON(filepath.Join(work, LaunchJSON), ls, 0o600); err != nil {
		return nil, err
	}
	ok = true
	return &LaunchResult{Work: work, Pid: vm.Pid(), Handle: h, Measurement: m, MeasureFile: mf}, nil
}

// loadVars returns QEMU A's pflash1 content: --vars or $SEVSHIM_OVMF_VARS (which must be
// exactly the layout's vars size), else Debian's template of the layout, else (no such file)
// erased flash.
func loadVars(src string, lay layout.Layout) ([]byte, error) {
	if src == "" && os.Getenv(EnvOVMFVars) == "" {
		if _, err := os.Stat(DefaultOVMFVars(lay)); err != nil {
			return bytes.Repeat([]byte{0xFF}, int(lay.VarsSize)), nil // erased flash
		}
	}
	path, what, b, err := readVars(src, lay)
	if err != nil {
		return nil, err
	}
	if len(b) != int(lay.VarsSize) {
		return nil, fmt.Errorf("%s %s is %d bytes; layout %s needs a var store of exactly %d (0x%x) bytes (Debian's %s)",
			what, path, len(b), lay.Name, lay.VarsSize, lay.VarsSize, lay.VarsFile)
	}
	return b, nil
}

// checkLaunchTarget refuses a work directory whose record says it holds a guest that a new
// launch would make unreachable: one that runs (launch-finish done) or one that was
// exported (its launch.json names the package and is the record that the SEV context was
// sent). A missing directory, or one whose launch was only measured, is fine.
func checkLaunchTarget(dir string) error {
	var ls LaunchState
	if readJSON(filepath.Join(dir, LaunchJSON), &ls) != nil {
		return nil
	}
	switch ls.Stage {
	case StageExported:
		return fmt.Errorf("--work %s holds a guest that was exported to %s: refused, launching here would overwrite its record; use another --work", dir, ls.Package)
	case StageRunning:
		return fmt.Errorf("--work %s holds a running launched guest: refused; export it, or end it with hostctl stop --work %s, or use another --work", dir, dir)
	}
	return ls.move(StageMeasured)
}

func loadLaunch(work string) (string, *LaunchState, error) {
	abs, err := existingWorkDir(work)
	if err != nil {
		return "", nil, err
	}
	var ls LaunchState
	if err := readJSON(filepath.Join(abs, LaunchJSON), &ls); err != nil {
		return "", nil, fmt.Errorf("%s is not a launch work directory (%v); run hostctl launch first", abs, err)
	}
	if ls.Format != 1 {
		return "", nil, fmt.Errorf("%s: format %d not supported", filepath.Join(abs, LaunchJSON), ls.Format)
	}
	return abs, &ls, nil
}

// SecretFile is secret.json (libvirt's keys), as `verifier secret` writes it.
type SecretFile = owner.SecretFile

// The shim's console lines, matched whole (one definition: shimerr's console protocol).
var (
	reReady    = console.ReadyRE
	reWake     = console.WakeRE
	reError    = shimerr.LineRE
	reHandoff  = console.HandoffRE
	reVerified = console.VerifiedRE
	// OVMF's shell banner on COM1; only looked for after the shim's HANDOFF line there
	// (the shim's own lines, the version string included, are on COM1 too).
	reShell = regexp.MustCompile(`UEFI Interactive Shell`)
)

// LaunchFinish injects the optional LAUNCH_SECRET into the shim's secret block, runs
// LAUNCH_FINISH, resumes QEMU A and waits for SEVSHIM READY.
func LaunchFinish(ctx context.Context, work, secretPath string, log io.Writer) error {
	work, ls, err := loadLaunch(work)
	if err != nil {
		return err
	}
	if ls.Stage != StageMeasured {
		return fmt.Errorf("%s: the launch is %q, launch-finish needs %q (right after hostctl launch)", work, ls.Stage, StageMeasured)
	}
	vm, err := attachVM(ctx, work)
	if err != nil {
		return err
	}
	defer vm.Close()
	st, err := vm.Status(ctx)
	if err != nil {
		return err
	}
	if st != vmm.StatusPrelaunch {
		return fmt.Errorf("QEMU A is %q, not prelaunch: the guest already ran, the measurement no longer describes it; launch again", st)
	}
	mem, err := memoryOf(vm, "launch-finish")
	if err != nil {
		return err
	}
	p, err := openGuestPSP(ls.Kind, ls.State)
	if err != nil {
		return err
	}
	defer p.Close()
	h := psp.Handle(ls.Handle)
	if secretPath != "" {
		if err := injectSecret(ctx, p, h, ls, mem, secretPath, log); err != nil {
			return err
		}
	}
	if err := p.LaunchFinish(h); err != nil {
		return fmt.Errorf("LAUNCH_FINISH: %w", err)
	}
	// Guest-memory access is not needed any more; nothing should be able to poke the guest.
	mem.EndMemoryAccess(ctx)
	if err := vm.Resume(ctx); err != nil {
		return err
	}
	line, i, err := waitLine(ctx, vm, vm.Debugcon(), 90*time.Second, reReady, reError)
	if err != nil {
		return fmt.Errorf("waiting for the shim: %w", err)
	}
	if i == 1 {
		return fmt.Errorf("the shim failed on QEMU A: %s (see the debug console, %s)", line, work)
	}
	// READY is printed right before the wait loop: the guest is ready for an export once
	// its vCPU executes that loop's hlt (then a saved state resumes into the hlt).
	if hw, ok := vm.(vmm.HaltWaiter); ok {
		if err := hw.WaitHalted(ctx, 30*time.Second); err != nil {
			return fmt.Errorf("the shim printed READY but did not reach its wait loop: %w", err)
		}
	}
	if err := ls.move(StageRunning); err != nil {
		return err
	}
	if err := writeJSON(filepath.Join(work, LaunchJSON), ls, 0o600); err != nil {
		return err
	}
	logf(log, "shim READY on QEMU A (pid %d); LAUNCH_FINISH done", vm.Pid())
	return nil
}

func injectSecret(ctx context.Context, p psp.PSP, h psp.Handle, ls *LaunchState, mem vmm.MemoryAccess, path string, log io.Writer) error {
	var sf SecretFile
	if err := readJSON(path, &sf); err != nil {
		return fmt.Errorf("secret: %w", err)
	}
	hdr, err := base64.StdEncoding.DecodeString(sf.Header)
	if err != nil || len(hdr) != sev.PacketHeaderSize {
		return fmt.Errorf("%s: sev-secret-header must be base64 of the %d-byte packet header", path, sev.PacketHeaderSize)
	}
	trans, err := base64.StdEncoding.DecodeString(sf.Secret)
	if err != nil || len(trans) == 0 {
		return fmt.Errorf("%s: sev-secret must be non-empty base64", path)
	}
	if ls.SecretSize == 0 {
		return errors.New("the launched image declares no SEV secret block (footer entry 4c2eb361-...): nowhere to put a secret")
	}
	base, end := uint64(ls.SecretBase), uint64(ls.SecretBase)+uint64(ls.SecretSize)
	addr := base
	if sf.Address != 0 {
		addr = sf.Address
	}
	if addr < base || addr+uint64(len(trans)) > end {
		return fmt.Errorf("%s: the secret (%d bytes at 0x%x) does not fit the image's secret block 0x%x..0x%x", path, len(trans), addr, base, end)
	}
	plain := make([]byte, len(trans))
	defer func() {
		for i := range plain {
			plain[i] = 0
		}
	}()
	// The PSP verifies the packet MAC (over the measurement too) and decrypts; the
	// plaintext only exists in this buffer and then in guest RAM.
	if err := p.LaunchSecret(h, hdr, trans, plain); err != nil {
		return fmt.Errorf("LAUNCH_SECRET refused %s: %w", path, err)
	}
	if err := mem.WritePhys(ctx, addr, plain); err != nil {
		return fmt.Errorf("placing the secret in guest RAM: %w", err)
	}
	logf(log, "secret (%d bytes) verified by the PSP and placed at guest-physical 0x%x", len(plain), addr)
	return nil
}
