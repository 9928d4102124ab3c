package main

import (
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sevshim/sevshim/pkg/format/console"
	"github.com/sevshim/sevshim/pkg/vmm/qemu"
	"github.com/sevshim/sevshim/tests/bench/figures"
	"github.com/sevshim/sevshim/tests/harness"
	"github.com/sevshim/sevshim/tests/harness/repo"
)

// setup is the chain's fixtures (tests/harness): a fresh key, the v5 bundle of OVMF_CODE_4M
// and a shim of the fixture policy.
type setup struct {
	dir      string
	shim     string // template + policy
	manifest string // v5 manifest of OVMF_CODE_4M
	ovmf     string
	vars     string
}

func prepare(dir, flagged string) (*setup, error) {
	if _, err := repo.QEMU(); err != nil {
		return nil, err
	}
	if err := repo.RequireFiles(repo.OVMFCode(), repo.OVMFVars()); err != nil {
		return nil, fmt.Errorf("Debian OVMF: %v (run scripts/setup.sh)", err)
	}
	tpl, err := template(flagged)
	if err != nil {
		return nil, err
	}
	if err := repo.RequireFiles(tpl); err != nil {
		return nil, fmt.Errorf("%v: run make shim first", err)
	}
	fx, err := harness.NewFixture(dir)
	if err != nil {
		return nil, err
	}
	fx.Template = tpl
	shim, err := fx.MakeShim(fx.Policy())
	if err != nil {
		return nil, err
	}
	v5, err := fx.MakeBundle("ovmf-v5")
	if err != nil {
		return nil, err
	}
	return &setup{dir: dir, shim: shim.Path, manifest: v5.Manifest, ovmf: v5.Image, vars: fx.Vars}, nil
}

func failure(vm *qemu.VM, what string, err error) error {
	return fmt.Errorf("%s: %w\nqemu: %s\nstderr: %s\ndebugcon:\n%s", what, err, vm.Cmdline(), vm.StderrSummary(), vm.Debugcon().Text())
}

// runA boots A to READY and saves its state; it returns the state file.
func runA(st *setup, i int, rep *figures.Report) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), *flagTimeout)
	defer cancel()
	state := filepath.Join(st.dir, fmt.Sprintf("ready-%d.state", i))
	dir := state + ".a"
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	r, err := harness.SaveReady(ctx, harness.ASpec{Shim: st.shim, Dir: dir})
	if err != nil {
		return "", fmt.Errorf("A: %w", err)
	}
	if err := os.Rename(r.Path, state); err != nil {
		return "", err
	}
	rep.Add("a.start_to_ready", r.AReady.Seconds())
	rep.Add("a.save_state", r.Save.Elapsed.Seconds())
	return state, nil
}

// bootPair boots stock OVMF and B through the shim, in the order first says, and records
// the paired ratio.
func bootPair(st *setup, state string, i int, plainFirst bool, rep *figures.Report) error {
	var plain, shim time.Duration
	for k := 0; k < 2; k++ {
		settle()
		var err error
		if (k == 0) == plainFirst {
			plain, err = runPlain(st)
		} else {
			shim, err = runB(st, state, i, rep)
		}
		if err != nil {
			return err
		}
	}
	rep.Add("boot.plain.start_to_bdsdxe", plain.Seconds())
	rep.Add("boot.ratio.paired", shim.Seconds()/plain.Seconds())
	return nil
}

// runPlain boots stock OVMF (pflash0 = the v5 image, read-only) and returns QEMU start ->
// BdsDxe on COM1.
func runPlain(st *setup) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), *flagTimeout)
	defer cancel()
	vars := filepath.Join(st.dir, "vars-plain.fd")
	b, err := os.ReadFile(st.vars)
	if err == nil {
		err = os.WriteFile(vars, b, 0o600)
	}
	if err != nil {
		return 0, err
	}
	vm, err := qemu.Start(ctx, qemu.Config{
		Pflash:   []qemu.Pflash{{Unit: 0, File: st.ovmf, ReadOnly: true}, {Unit: 1, File: vars}},
		Debugcon: true,
	})
	if err != nil {
		return 0, err
	}
	defer vm.Close()
	bds, err := vm.Serial().WaitLine(ctx, harness.BdsRE, 0)
	if err != nil {
		return 0, failure(vm, "plain OVMF: waiting for BdsDxe", err)
	}
	return bds.Time.Sub(vm.Started()), nil
}

// resumeSteps are the shim's debugcon steps after `cont`, each with its row.
var resumeSteps = []struct{ step, row string }{
	{"WAKE", "resume.cont_to_wake"},
	{"LOADED", "resume.wake_to_loaded"},
	{"VERIFIED", "resume.loaded_to_verified"},
	{"FLASHED", "resume.verified_to_flashed"},
	{"HANDOFF", "resume.flashed_to_handoff"},
}

// runB resumes B from state through the shim to BdsDxe and returns B start -> BdsDxe.
func runB(st *setup, state string, i int, rep *figures.Report) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), *flagTimeout)
	defer cancel()
	dir := filepath.Join(st.dir, fmt.Sprintf("b-%d", i))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, err
	}
	vm, _, err := harness.StartB(ctx, harness.BSpec{Shim: st.shim, Manifest: st.manifest, Image: st.ovmf,
		Incoming: qemu.IncomingFile(state), Dir: dir})
	if err != nil {
		return 0, err
	}
	defer vm.Close()
	qmpUp := time.Now()
	if _, err := vm.WaitIncoming(ctx, *flagTimeout); err != nil {
		return 0, failure(vm, "B: loading the READY state", err)
	}
	loaded := time.Now()
	rep.Add("b.start_to_qmp", qmpUp.Sub(vm.Started()).Seconds())
	rep.Add("b.qmp_to_paused", loaded.Sub(qmpUp).Seconds())
	cont := time.Now()
	if err := vm.Resume(ctx); err != nil {
		return 0, failure(vm, "B: cont", err)
	}
	if err := vm.NMI(ctx); err != nil {
		return 0, failure(vm, "B: inject-nmi", err)
	}
	prev := cont
	for _, s := range resumeSteps {
		l, err := vm.Debugcon().WaitLine(ctx, console.StepRE(s.step), 0)
		if err != nil {
			return 0, failure(vm, "B: waiting for "+console.Prefix+s.step, err)
		}
		rep.Add(s.row, l.Time.Sub(prev).Seconds())
		prev = l.Time
	}
	rep.Add("resume.cont_to_handoff", prev.Sub(cont).Seconds())
	bds, err := vm.Serial().WaitLine(ctx, harness.BdsRE, 0)
	if err != nil {
		return 0, failure(vm, "B: waiting for BdsDxe after the hand-off", err)
	}
	d := bds.Time.Sub(vm.Started())
	rep.Add("boot.shim.start_to_bdsdxe", d.Seconds())
	rep.Add("boot.shim.cont_to_bdsdxe", bds.Time.Sub(cont).Seconds())
	rep.Add("boot.shim.handoff_to_bdsdxe", bds.Time.Sub(prev).Seconds())
	return d, nil
}

// sizes records the shim image and payload sizes from build/shim (as `make -C shim size`)
// and the guest's initramfs and agent.
func sizes(flagged string, g *guestFiles, rep *figures.Report) error {
	if g == nil {
		g, _ = findGuest()
	}
	if g != nil {
		for row, p := range map[string]string{"size.initramfs_bytes": g.initrd, "size.agent_bytes": g.agent} {
			if fi, err := os.Stat(p); err == nil {
				rep.Add(row, float64(fi.Size()))
			}
		}
	}
	tpl, err := template(flagged)
	if err != nil {
		return err
	}
	if fi, err := os.Stat(tpl); err == nil {
		rep.Add("size.shim_image_bytes", float64(fi.Size()))
	}
	dir := filepath.Dir(tpl)
	if fi, err := os.Stat(filepath.Join(dir, "payload.bin")); err == nil {
		rep.Add("size.payload_bin_bytes", float64(fi.Size()))
	}
	if n, err := shimLines(); err == nil {
		rep.Add("size.shim_c_asm_lines", float64(n))
	}
	f, err := elf.Open(filepath.Join(dir, "payload.elf"))
	if err != nil {
		return err
	}
	defer f.Close()
	var text, rodata, data, bss uint64
	for _, s := range f.Sections {
		if s.Flags&elf.SHF_ALLOC == 0 {
			continue
		}
		switch {
		case s.Type == elf.SHT_NOBITS:
			bss += s.Size
		case s.Flags&elf.SHF_EXECINSTR != 0:
			text += s.Size
		case s.Flags&elf.SHF_WRITE != 0:
			data += s.Size
		default:
			rodata += s.Size
		}
	}
	rep.Add("size.payload_text_bytes", float64(text))
	rep.Add("size.payload_rodata_bytes", float64(rodata))
	rep.Add("size.payload_data_bytes", float64(data))
	rep.Add("size.payload_bss_bytes", float64(bss))
	return nil
}

// shimLines counts the lines of the shim's own C, asm and headers (Debian's BearSSL is a
// library it links, not counted).
func shimLines() (int, error) {
	root, err := repo.Root()
	if err != nil {
		return 0, err
	}
	var n int
	for _, pat := range []string{"shim/src/*.c", "shim/src/*.asm", "shim/src/*.inc", "shim/include/*/*.h"} {
		files, _ := filepath.Glob(filepath.Join(root, pat))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				return 0, err
			}
			n += strings.Count(string(b), "\n")
		}
	}
	if n == 0 {
		return 0, errors.New("no shim sources found")
	}
	return n, nil
}
