package chain

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sevshim/sevshim/pkg/bios"
	"github.com/sevshim/sevshim/tests/harness"
	"github.com/sevshim/sevshim/pkg/vmm/qemu"
	"github.com/sevshim/sevshim/pkg/format/shimerr"
)

var (
	// Whole lines: the VERIFIED line carries the signer's version string, which may spell
	// another line.
	reError    = regexp.MustCompile(`^SEVSHIM ERROR .*$`)
	reOutcome  = regexp.MustCompile(`^SEVSHIM (ERROR E[0-9]{3} [a-z0-9-]+|HANDOFF)$`)
	reLoaded   = regexp.MustCompile(`^SEVSHIM LOADED bios=(\d+) vars=(\d+)$`)
	reVerified = regexp.MustCompile(`^SEVSHIM VERIFIED version=(\d+) signer=([0-9a-f]+) name="([^"]*)"$`)
	reFlashed  = regexp.MustCompile(`^SEVSHIM FLASHED code=(\d+) vars=(\d+)$`)
	reBds      = regexp.MustCompile(`BdsDxe`)
	reShell    = regexp.MustCompile(`UEFI Interactive Shell|Shell>`)
)

// Generous bounds: TCG on a shared 2-core host. They are limits, not assertions on speed.
const (
	shimStepTimeout = 90 * time.Second
	ovmfTimeout     = 180 * time.Second
	haltGrace       = 3 * time.Second
)

// bRun is one QEMU B resumed from the READY state.
type bRun struct {
	vm       *qemu.VM
	cont     time.Time // host time just before `cont`
	pflash1  string    // B's pflash1 file (the VM's var store)
	wantVars int       // vars bytes the LOADED line must show
	lay      bios.Layout // the shim's layout (pflash0 size and base)
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
	varStore := o.varStore
	if varStore == "" {
		varStore = e.vars
	}
	dir := t.TempDir()
	pflash1 := filepath.Join(dir, "vars.fd")
	if err := copyFile(varStore, pflash1); err != nil {
		t.Fatal(err)
	}
	varsFile := o.vars
	if varsFile == "" {
		varsFile = pflash1
	}
	if o.noVars {
		varsFile = ""
	}
	fw := qemu.ShimFiles(o.manifest, o.bios, varsFile)
	ctx := context.Background()
	extra := o.extra
	gdbSock := filepath.Join(dir, "gdb.sock")
	if o.beforeWake != nil {
		extra = append(append([]string(nil), extra...),
			"-chardev", "socket,id=gdb,path="+gdbSock+",server=on,wait=off", "-gdb", "chardev:gdb")
	}
	vm, err := qemu.Start(ctx, qemu.Config{
		Pflash: []qemu.Pflash{
			// snapshot=on: the migrated shim content and the BIOS the shim programs live
			// in a temporary overlay, so the shim image file never changes.
			{Unit: 0, File: e.shim, Snapshot: !o.roCode, ReadOnly: o.roCode},
			{Unit: 1, File: pflash1},
		},
		FwCfg:          fw,
		Debugcon:       true,
		RebootShutdown: true, // as hostctl runs it: a guest reboot ends B
		Incoming:       qemu.IncomingFile(e.state),
		ExtraArgs:      extra,
		SerialLog:      filepath.Join(dir, "serial.log"),
		DebugconLog:    filepath.Join(dir, "debugcon.log"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		vm.Close()
		if t.Failed() {
			t.Logf("B: %s\nstderr: %s\ndebugcon:\n%s\nserial (tail):\n%s", vm.Cmdline(), vm.StderrSummary(),
				vm.Debugcon().Text(), harness.Tail(vm.Serial().Text(), 2000))
		}
	})
	if o.beforeWake != nil {
		st, err := vm.WaitIncoming(ctx, 60*time.Second)
		if err != nil || st != "paused" {
			t.Fatalf("B loading the READY state: status %q, %v", st, err)
		}
		o.beforeWake(gdbSock)
	}
	cont, err := vm.WakeIncoming(ctx, 60*time.Second)
	if err != nil {
		t.Fatalf("B loading the READY state: %v", err)
	}
	r := &bRun{vm: vm, cont: cont, pflash1: pflash1, wantVars: int(e.lay.VarsSize), lay: e.lay}
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
	b := harness.StartChain(t, harness.Chain{Shim: e.shim, Manifest: e.manifestV5, Image: e.ovmf, ExtraA: cpu, ExtraB: cpu})
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
	if err := r2.vm.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	l, _ := bios.LayoutByID(bios.LayoutOVMF4M)
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
	if err := r2.vm.Cont(ctx); err != nil {
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
// that the Go reference model of the shim's decision (bios.Check) gives for the same bytes,
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
		got := bios.Check(b.pol, man, hasMan, img, hasImg, v, true)
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
		if got := bios.Check(b.pol, man, true, img, true, vars, true); got != shimerr.OK {
			t.Errorf("valid bundle %s: reference model says %s", filepath.Base(p.man), got)
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
			r := startBWith(t, e, bOpts{manifest: c.manifest, bios: c.bios, vars: c.vars, roCode: c.roCode})
			assertRefused(t, e, r, want)
		})
	}
}

func assertRefused(t *testing.T, e *chainEnv, r *bRun, want shimerr.Code) {
	t.Helper()
	ctx := context.Background()
	dbg, ser := r.vm.Debugcon(), r.vm.Serial()
	out, err := dbg.WaitLine(ctx, reOutcome, shimStepTimeout)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := shimerr.ParseLine(out.Text)
	if !ok {
		t.Fatalf("shim did not refuse: %q (want %q)", out.Text, want.Line())
	}
	if got != want || out.Text != want.Line() {
		t.Fatalf("shim printed %q, want %q", out.Text, want.Line())
	}
	halt, err := dbg.WaitString(ctx, "SEVSHIM HALT", shimStepTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if halt.Time.Before(out.Time) {
		t.Errorf("HALT before the ERROR line")
	}
	// Grace period: anything the shim or a BIOS would still do shows up now.
	time.Sleep(haltGrace)
	select {
	case <-r.vm.Exited():
		t.Errorf("QEMU exited after HALT (%v): the guest reset or crashed instead of halting", r.vm.ExitErr())
	default:
	}
	dl := dbg.Lines()
	// Verification refusals come before VERIFIED; flash faults (E05x) only after it.
	flashFault := want >= shimerr.FlashNotFound && want <= shimerr.FlashDigestMismatch
	var verified bool
	for _, l := range dl {
		if strings.HasPrefix(l.Text, "SEVSHIM FLASHED") || strings.HasPrefix(l.Text, "SEVSHIM HANDOFF") {
			t.Errorf("debugcon shows %q in a refused run", l.Text)
		}
		if strings.HasPrefix(l.Text, "SEVSHIM VERIFIED") {
			verified = true
			if !flashFault {
				t.Errorf("debugcon shows %q in a run refused by verification", l.Text)
			}
		}
	}
	if flashFault && !verified {
		t.Errorf("flash fault %s without a VERIFIED line first", want)
	}
	if last := dl[len(dl)-1].Text; last != "SEVSHIM HALT" {
		t.Errorf("debugcon continued after HALT: last line %q", last)
	}
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
	var sawErr bool
	for _, l := range ser.Lines() {
		if strings.TrimSpace(l.Text) == "" {
			continue
		}
		if !strings.HasPrefix(l.Text, "SEVSHIM ") {
			t.Errorf("serial shows non-shim output (OVMF ran?): %q", l.Text)
		}
		if l.Text == want.Line() {
			sawErr = true
		}
	}
	if !sawErr {
		t.Errorf("COM1 lacks the error line %q:\n%s", want.Line(), ser.Text())
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
