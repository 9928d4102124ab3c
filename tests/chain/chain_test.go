package chain

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sevshim/sevshim/pkg/format/layout"
	"github.com/sevshim/sevshim/pkg/format/shimerr"
	"github.com/sevshim/sevshim/pkg/verifyref"
	"github.com/sevshim/sevshim/pkg/vmm/qemu"
	"github.com/sevshim/sevshim/tests/harness"
)

var (
	// Whole lines: the VERIFIED line carries the signer's version string, which may spell
	// another line.
	reError    = regexp.MustCompile(`^SEVSHIM ERROR .*$`)
	reOutcome  = harness.OutcomeRE
	reLoaded   = regexp.MustCompile(`^SEVSHIM LOADED bios=(\d+) vars=(\d+)$`)
	reVerified = regexp.MustCompile(`^SEVSHIM VERIFIED version=(\d+) signer=([0-9a-f]+) name="([^"]*)"$`)
	reFlashed  = regexp.MustCompile(`^SEVSHIM FLASHED code=(\d+) vars=(\d+)$`)
	reBds      = harness.BdsRE
	reShell    = harness.ShellRE
)

// Generous bounds (tests/harness): limits, not assertions on speed.
const (
	shimStepTimeout = harness.StepTimeout
	ovmfTimeout     = harness.OVMFTimeout
)

// bRun is one QEMU B resumed from the READY state.
type bRun struct {
	vm       *qemu.VM
	cont     time.Time     // host time just before `cont`
	pflash1  string        // B's pflash1 file (the VM's var store)
	wantVars int           // vars bytes the LOADED line must show
	lay      layout.Layout // the shim's layout (pflash0 size and base)
}

// startB starts QEMU B from the READY state with the given fw_cfg files (empty path = file
// not passed), resumes it and sends the wake-up NMI. varsFile "" means the normal case: a
// fresh copy of OVMF_VARS_4M.fd as pflash1 and as opt/org.sevshim/vars.
func startB(t *testing.T, e *chainEnv, manifest, biosFile, varsFile string) *bRun {
	t.Helper()
	return startBWith(t, e, bOpts{manifest: manifest, bios: biosFile, vars: varsFile})
}

// bOpts describes one B run.
type bOpts struct {
	manifest, bios string   // fw_cfg files; "" = not passed
	vars           string   // opt/org.sevshim/vars; "" = B's pflash1 file itself
	varStore       string   // pflash1 is a copy of this ("" = Debian's OVMF_VARS_4M.fd)
	roCode         bool     // pflash0 read-only (a host that forgot readonly=off)
	noVars         bool     // pass no opt/org.sevshim/vars at all
	extra          []string // extra QEMU arguments (host differences)
	// beforeWake, if set, gets a gdbstub socket of B and runs after the incoming state
	// loaded, while B is still paused (no shim instruction has run yet), before the wake-up.
	beforeWake func(gdbSock string)
}

func startBWith(t *testing.T, e *chainEnv, o bOpts) *bRun {
	t.Helper()
	run := e.fx.Chain(t, harness.ChainSpec{Shim: e.img, Saved: true, Manifest: o.manifest, Image: o.bios, Vars: o.vars,
		VarStore: o.varStore, NoVars: o.noVars, ReadOnlyCode: o.roCode, ExtraB: o.extra, BeforeWake: o.beforeWake})
	r := &bRun{vm: run.VM, cont: run.Cont, pflash1: run.Pflash1, wantVars: int(e.lay.VarsSize), lay: e.lay}
	if o.noVars {
		r.wantVars = 0
	}
	return r
}

// assertBoots checks the shim's accept path on debugcon and OVMF reaching its shell on COM1.
func assertBoots(t *testing.T, e *chainEnv, r *bRun, image string, version uint64, name string) {
	t.Helper()
	ctx := context.Background()
	dbg, ser := r.vm.Debugcon(), r.vm.Serial()
	if _, err := dbg.WaitString(ctx, "SEVSHIM WAKE", shimStepTimeout); err != nil {
		t.Fatal(err)
	}
	l, err := dbg.WaitLine(ctx, reLoaded, shimStepTimeout)
	if err != nil {
		t.Fatal(err)
	}
	m := reLoaded.FindStringSubmatch(l.Text)
	if m[1] != strconv.Itoa(int(r.lay.CodeSize)) || m[2] != strconv.Itoa(r.wantVars) {
		t.Errorf("LOADED line %q: want bios=%d vars=%d", l.Text, r.lay.CodeSize, r.wantVars)
	}
	out, err := dbg.WaitLine(ctx, reOutcome, shimStepTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.Text, "ERROR") {
		t.Fatalf("shim refused a valid bundle: %q", out.Text)
	}
	v, err := dbg.WaitLine(ctx, reVerified, time.Second)
	if err != nil {
		t.Fatalf("no VERIFIED line before HANDOFF: %v", err)
	}
	vm := reVerified.FindStringSubmatch(v.Text)
	if vm[1] != strconv.FormatUint(version, 10) || vm[3] != name || !strings.HasPrefix(e.keyIDHex, vm[2]) || len(vm[2]) < 16 {
		t.Errorf("VERIFIED line %q: want version=%d, signer = (a prefix of) %s, name=%q", v.Text, version, e.keyIDHex, name)
	}
	f, err := dbg.WaitLine(ctx, reFlashed, time.Second)
	if err != nil {
		t.Fatalf("no FLASHED line before HANDOFF: %v", err)
	}
	if !(v.Time.Compare(f.Time) <= 0 && f.Time.Compare(out.Time) <= 0) {
		t.Errorf("debugcon order wrong: VERIFIED %v, FLASHED %v, HANDOFF %v", v.Time, f.Time, out.Time)
	}
	bds, err := ser.WaitLine(ctx, reBds, ovmfTimeout)
	if err != nil {
		t.Fatalf("OVMF never reached BdsDxe after the hand-off: %v", err)
	}
	sh, err := ser.WaitPrompt(ctx, reShell, ovmfTimeout)
	if err != nil {
		t.Fatalf("OVMF never reached its shell: %v", err)
	}
	if sh.Time.Before(bds.Time) {
		t.Errorf("shell line %q came before the BdsDxe line %q", sh.Text, bds.Text)
	}
	if _, err := dbg.WaitLine(ctx, reError, time.Millisecond); err == nil {
		t.Errorf("an ERROR line appeared on debugcon:\n%s", dbg.Text())
	}
	// The flash now holds exactly the bundle's image (read through QEMU, not from a file).
	if got := readCodeFlash(t, r); !bytes.Equal(got, mustRead(t, image)) {
		t.Errorf("pflash0 after the hand-off differs from %s", image)
	}
	t.Logf("VERIFIED->FLASHED %v, cont->HANDOFF %v, cont->BdsDxe %v, cont->shell %v",
		f.Time.Sub(v.Time).Round(time.Millisecond), out.Time.Sub(r.cont).Round(time.Millisecond), bds.Time.Sub(r.cont).Round(time.Millisecond),
		sh.Time.Sub(r.cont).Round(time.Millisecond))
}

// TestChainBootsOVMF: the shim resumed in B verifies the v5 bundle (Debian's OVMF_CODE_4M),
// flashes it, hands off, and OVMF boots to its shell.
func TestChainBootsOVMF(t *testing.T) {
	e := env(t)
	t.Logf("A: start->READY %v, state file %d bytes", e.aReady.Round(time.Millisecond), e.stateSize)
	r := startB(t, e, e.manifestV5, e.ovmf, "")
	assertBoots(t, e, r, e.ovmf, 5, "debian-ovmf-4m")
}

// TestChainCPUWithSEVLeaf: a CPU whose extended leaves reach 0x8000001F, which QEMU TCG
// reports as all zero (no SEV). Stage 1 and sev_mem_init read the leaf, must not read
// SEV_STATUS (#GP here) and must boot exactly as on the default CPU (docs/shim.md "SEV memory
// map": the only SEV branch TCG can run besides "leaf absent").
func TestChainCPUWithSEVLeaf(t *testing.T) {
	e := env(t)
	cpu := []string{"-cpu", "qemu64,xlevel=0x8000001f"}
	b := e.fx.Chain(t, harness.ChainSpec{Shim: e.img, Manifest: e.manifestV5, Image: e.ovmf, ExtraA: cpu, ExtraB: cpu})
	ctx := context.Background()
	out, err := b.Debugcon().WaitLine(ctx, reOutcome, shimStepTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if out.Text != "SEVSHIM HANDOFF" {
		t.Fatalf("with the 0x8000001F leaf present the shim printed %q", out.Text)
	}
	if _, err := b.Serial().WaitLine(ctx, reBds, ovmfTimeout); err != nil {
		t.Fatalf("OVMF did not reach BdsDxe: %v", err)
	}
}

// TestVarStoreRestored: the VM's own var store survives the chain. Migration overwrites B's
// pflash1 with A's (template) store at `cont`; the shim must program pflash1 from
// opt/org.sevshim/vars before the hand-off. Step 1 boots once to get a store OVMF has
// written to; step 2 resumes with that store, pauses B right after HANDOFF (before OVMF's
// DXE variable driver can write) and reads pflash1 through QEMU.
func TestVarStoreRestored(t *testing.T) {
	e := env(t)
	r1 := startB(t, e, e.manifestV5, e.ovmf, "")
	assertBoots(t, e, r1, e.ovmf, 5, "debian-ovmf-4m")
	if err := r1.vm.Close(); err != nil { // SIGTERM: QEMU flushes pflash1 to the file
		t.Fatal(err)
	}
	used := filepath.Join(t.TempDir(), "used-vars.fd")
	if err := copyFile(r1.pflash1, used); err != nil {
		t.Fatal(err)
	}
	usedBytes, tmpl := mustRead(t, used), mustRead(t, e.vars)
	if bytes.Equal(usedBytes, tmpl) {
		t.Fatal("OVMF did not write its var store during the first boot; the test cannot tell stores apart")
	}

	r2 := startBWith(t, e, bOpts{manifest: e.manifestV5, bios: e.ovmf, vars: used, varStore: used})
	ctx := context.Background()
	if _, err := r2.vm.Debugcon().WaitString(ctx, "SEVSHIM HANDOFF", shimStepTimeout); err != nil {
		t.Fatal(err)
	}
	if err := r2.vm.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	l, _ := layout.ByID(layout.OVMF4M)
	dump := filepath.Join(t.TempDir(), "pflash1.dump")
	if err := r2.vm.MemSave(ctx, uint64(l.VarsBase), uint64(l.VarsSize), dump); err != nil {
		t.Fatal(err)
	}
	got := mustRead(t, dump)
	switch {
	case bytes.Equal(got, usedBytes):
		// restored
	case bytes.Equal(got, tmpl):
		t.Fatal("pflash1 holds A's template store after the hand-off: the VM's store was not restored")
	default:
		t.Fatal("pflash1 after the hand-off is neither the VM's store nor the template")
	}
	if err := r2.vm.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := r2.vm.Serial().WaitPrompt(ctx, reShell, ovmfTimeout); err != nil {
		t.Fatalf("OVMF with the restored store never reached its shell: %v", err)
	}
}

// TestChainWithoutFwCfgDMA: B's QEMU has fw_cfg DMA switched off while A had it (QEMU
// accepts the migration silently). The shim must re-probe fw_cfg after the wake-up and read
// through the PIO port instead of waiting on a DMA engine B does not have.
func TestChainWithoutFwCfgDMA(t *testing.T) {
	e := env(t)
	r := startBWith(t, e, bOpts{manifest: e.manifestV5, bios: e.ovmf,
		extra: []string{"-global", "fw_cfg_io.dma_enabled=off"}})
	ctx := context.Background()
	out, err := r.vm.Debugcon().WaitLine(ctx, reOutcome, shimStepTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if out.Text != "SEVSHIM HANDOFF" {
		t.Fatalf("without fw_cfg DMA the shim printed %q", out.Text)
	}
	if _, err := r.vm.Serial().WaitLine(ctx, reBds, ovmfTimeout); err != nil {
		t.Fatalf("OVMF did not reach BdsDxe: %v", err)
	}
	wake, _ := r.vm.Debugcon().WaitString(ctx, "SEVSHIM WAKE", time.Second)
	loaded, _ := r.vm.Debugcon().WaitLine(ctx, reLoaded, time.Second)
	t.Logf("without DMA: WAKE->LOADED %v (PIO), cont->HANDOFF %v", loaded.Time.Sub(wake.Time).Round(time.Millisecond),
		out.Time.Sub(r.cont).Round(time.Millisecond))
}

func fileSHA(t *testing.T, path string) ([32]byte, []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b), b
}

// TestBIOSUpdate: one shim image, one READY state; bundle v5 (OVMF_CODE_4M) and bundle v6
// (OVMF_CODE_4M.secboot) both boot, and the shim image does not change.
func TestBIOSUpdate(t *testing.T) {
	e := env(t)
	before, _ := fileSHA(t, e.shim)
	if before != e.shimSHA {
		t.Fatalf("shim file already differs from the built image")
	}
	stateBefore, _ := fileSHA(t, e.state)

	for _, c := range []struct {
		name     string
		manifest string
		image    string
		version  uint64
		vname    string
	}{
		{"v5", e.manifestV5, e.ovmf, 5, "debian-ovmf-4m"},
		{"v6", e.manifestV6, e.secboot, 6, "debian-ovmf-4m-secboot"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := startB(t, e, c.manifest, c.image, "")
			assertBoots(t, e, r, c.image, c.version, c.vname)
			r.vm.Close()
			sum, b := fileSHA(t, e.shim)
			if sum != e.shimSHA || !bytes.Equal(b, e.shimBytes) {
				t.Fatalf("shim image on disk changed after booting %s: sha256 %x, want %x", c.name, sum, e.shimSHA)
			}
		})
	}
	after, _ := fileSHA(t, e.shim)
	if after != before {
		t.Fatalf("shim image sha256 changed: %x -> %x", before, after)
	}
	t.Logf("shim image sha256 %x unchanged after v5 and v6", after)
	if s, _ := fileSHA(t, e.state); s != stateBefore {
		t.Fatalf("READY state file changed")
	}
}

// TestRefusalTableMatchesModel checks, without QEMU, that every refusal case expects the code
// that the Go reference model of the shim's decision (verifyref.Check) gives for the same bytes,
// so the QEMU test and the model cannot drift apart.
func TestRefusalTableMatchesModel(t *testing.T) {
	b := getBundles(t)
	read := func(p string) ([]byte, bool) {
		if p == "" {
			return nil, false
		}
		d, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return d, true
	}
	vars, _ := read(b.vars)
	for _, c := range b.cases {
		if c.roCode {
			continue // a flash fault: beyond the model, which stops before the flash steps
		}
		man, hasMan := read(c.manifest)
		img, hasImg := read(c.bios)
		v := vars
		if c.vars != "" {
			v, _ = read(c.vars)
		}
		got := verifyref.Check(b.pol, man, hasMan, img, hasImg, v, !c.noVars)
		want, ok := shimerr.ParseLine(c.want)
		if !ok {
			t.Fatalf("%s: %q is not a valid error line", c.name, c.want)
		}
		if got != want {
			t.Errorf("%s: reference model says %s, table says %s", c.name, got, want)
		}
	}
	for _, p := range []struct {
		man, img string
	}{{b.manifestV5, b.ovmf}, {b.manifestV6, b.secboot}} {
		man, _ := read(p.man)
		img, _ := read(p.img)
		if got := verifyref.Check(b.pol, man, true, img, true, vars, true); got != shimerr.OK {
			t.Errorf("valid bundle %s: reference model says %s", filepath.Base(p.man), got)
		}
	}
}

// TestHostVerifierAgrees runs the firmware's own verification sequence compiled for the host
// (build/shim/host/sevshim-verify, src/verify.c) on the shim image under test and every refusal
// case and valid bundle: it must say what the QEMU runs expect, without QEMU.
func TestHostVerifierAgrees(t *testing.T) {
	b := getBundles(t)
	img := b.fx.Shim(t, b.pol)
	tool := filepath.Join(filepath.Dir(b.fx.Template), "host", "sevshim-verify")
	arg := func(p string) string {
		if p == "" {
			return "-"
		}
		return p
	}
	verify := func(man, bio, vars string) string {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, tool, img.Path, arg(man), arg(bio), arg(vars)).Output()
		if _, exit := err.(*exec.ExitError); err != nil && !exit {
			t.Fatalf("%s: %v (run make shim)", tool, err)
		}
		return strings.TrimSpace(string(out))
	}
	for _, c := range b.cases {
		if c.roCode {
			continue // a flash fault: the host verifier stops before the flash steps
		}
		vars := c.vars
		if vars == "" && !c.noVars {
			vars = b.vars
		}
		if got, want := verify(c.manifest, c.bios, vars), strings.TrimPrefix(c.want, "SEVSHIM ERROR "); got != want {
			t.Errorf("%s: sevshim-verify says %q, want %q", c.name, got, want)
		}
	}
	for _, p := range []struct{ man, img string }{{b.manifestV5, b.ovmf}, {b.manifestV6, b.secboot}} {
		if got := verify(p.man, p.img, b.vars); got != "OK" {
			t.Errorf("valid bundle %s: sevshim-verify says %q", filepath.Base(p.man), got)
		}
	}
}

// TestRefusals: every bad bundle is refused with its exact error code, the shim halts, never
// flashes or hands off, and OVMF never prints anything.
func TestRefusals(t *testing.T) {
	e := env(t)
	sem := make(chan struct{}, 2) // at most two QEMUs at once (2 cores)
	for _, c := range e.cases {
		c := c
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			sem <- struct{}{}
			defer func() { <-sem }()
			want, ok := shimerr.ParseLine(c.want)
			if !ok {
				t.Fatalf("bad table entry %q", c.want)
			}
			r := startBWith(t, e, bOpts{manifest: c.manifest, bios: c.bios, vars: c.vars, roCode: c.roCode, noVars: c.noVars})
			assertRefused(t, e, r, want)
		})
	}
}

func assertRefused(t *testing.T, e *chainEnv, r *bRun, want shimerr.Code) {
	t.Helper()
	// Verification refusals come before VERIFIED; flash faults (E05x) only after it.
	flashFault := want >= shimerr.FlashNotFound && want <= shimerr.FlashDigestMismatch
	out := harness.AssertRefused(t, r.vm, want, flashFault)
	if want == shimerr.FlashDigestMismatch {
		// Refused after programming: pflash0 holds what the shim wrote, and that is not
		// the signed image (which is why it refused).
		if got := readCodeFlash(t, r); sha512.Sum384(got) == sha512.Sum384(mustRead(t, e.ovmf)) {
			t.Errorf("E055, but pflash0 holds the signed image")
		}
	} else if got := readCodeFlash(t, r); !bytes.Equal(got, e.shimBytes) {
		// The shim never touched the flash: pflash0 still holds the shim image.
		t.Errorf("pflash0 changed in a refused run")
	}
	t.Logf("%s after %v", fmt.Sprint(want), out.Time.Sub(r.cont).Round(time.Millisecond))
}

// readCodeFlash reads pflash0 (the layout's code region, top-aligned below 4 GiB) through
// QEMU's pmemsave: what the guest's CPU sees there, not what any file holds.
func readCodeFlash(t *testing.T, r *bRun) []byte {
	t.Helper()
	l := r.lay
	if l.CodeSize == 0 {
		t.Fatal("bRun without a layout")
	}
	out := filepath.Join(t.TempDir(), "pflash0.dump")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := r.vm.MemSave(ctx, uint64(l.CodeBase), uint64(l.CodeSize), out); err != nil {
		t.Fatalf("pmemsave of pflash0: %v", err)
	}
	return mustRead(t, out)
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
