// Command shimbench measures the sevshim firmware chain on real QEMU (TCG) with Debian's OVMF
// and prints figures; it asserts nothing (`make bench` runs it).
//
// Per run (runs are interleaved so host noise hits both sides alike):
//   - A: QEMU start -> "SEVSHIM READY" on debugcon, then the READY state is saved to a file
//     (tests/harness makes the fixtures, boots A and starts B);
//   - plain: stock OVMF (pflash0 = OVMF_CODE_4M.fd read-only) from QEMU start to "BdsDxe" on COM1;
//   - shim: QEMU B resumed from that state with the v5 bundle; from B's start and from `cont`
//     to "BdsDxe", and the shim's steps from its timestamped debugcon lines.
//
// Every time is host wall-clock, taken when the console line arrived through a pipe (the
// consoles are read live). Medians over the runs are printed; --json gives the same figures
// plus every sample.
package main

import (
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/sevshim/sevshim/pkg/format/console"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/sevshim/sevshim/pkg/vmm/qemu"
	"github.com/sevshim/sevshim/tests/harness"
	"github.com/sevshim/sevshim/tests/harness/repo"
)

var (
	flagRuns    = flag.Int("n", 3, "runs of each kind (interleaved)")
	flagJSON    = flag.Bool("json", false, "print JSON instead of aligned name: value lines")
	flagShim    = flag.String("shim", "", "shim template (default: build/shim/shim.fd or $SEVSHIM_SHIM_FD)")
	flagTimeout = flag.Duration("timeout", 5*time.Minute, "bound for each QEMU run")
	flagKeep    = flag.Bool("keep", false, "keep the work directory (logs, state files)")
)

func main() {
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: shimbench [-n RUNS] [--json] [-shim FILE]\n\n"+
			"Boots Debian's OVMF directly and through the sevshim chain on QEMU TCG and prints timings.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "shimbench:", err)
		os.Exit(1)
	}
}

// sample is one measurement series.
type sample struct {
	Name    string    `json:"name"`
	Unit    string    `json:"unit"`
	Median  float64   `json:"median"`
	Samples []float64 `json:"samples,omitempty"`
	Note    string    `json:"note,omitempty"`
}

type report struct {
	figures []*sample
	index   map[string]*sample
}

func (r *report) add(name, unit, note string, v float64) {
	if r.index == nil {
		r.index = map[string]*sample{}
	}
	s := r.index[name]
	if s == nil {
		s = &sample{Name: name, Unit: unit, Note: note}
		r.index[name] = s
		r.figures = append(r.figures, s)
	}
	s.Samples = append(s.Samples, v)
}

func (r *report) dur(name, note string, d time.Duration) { r.add(name, "s", note, d.Seconds()) }

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	c := append([]float64(nil), v...)
	sort.Float64s(c)
	if len(c)%2 == 1 {
		return c[len(c)/2]
	}
	return (c[len(c)/2-1] + c[len(c)/2]) / 2
}

type setup struct {
	dir      string
	shim     string // template + policy
	manifest string // v5 manifest of OVMF_CODE_4M
	ovmf     string
	vars     string
}

func run() error {
	if *flagRuns < 1 {
		return errors.New("-n must be at least 1")
	}
	if _, err := repo.QEMU(); err != nil {
		return err
	}
	if err := repo.RequireFiles(repo.OVMFCode(), repo.OVMFVars()); err != nil {
		return fmt.Errorf("Debian OVMF: %v (run scripts/setup.sh)", err)
	}
	tpl := *flagShim
	if tpl == "" {
		var err error
		if tpl, err = repo.ShimTemplate(); err != nil {
			return err
		}
	}
	if err := repo.RequireFiles(tpl); err != nil {
		return fmt.Errorf("%v: run make shim first", err)
	}
	dir, err := os.MkdirTemp("", "shimbench-")
	if err != nil {
		return err
	}
	if *flagKeep {
		fmt.Fprintln(os.Stderr, "work directory:", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	st, err := prepare(dir, tpl)
	if err != nil {
		return err
	}

	var rep report
	for i := 0; i < *flagRuns; i++ {
		fmt.Fprintf(os.Stderr, "run %d/%d: A", i+1, *flagRuns)
		state := filepath.Join(dir, fmt.Sprintf("ready-%d.state", i))
		if err := runA(st, state, &rep); err != nil {
			return err
		}
		// Alternate which side goes first so a drifting host load does not favour one.
		plainFirst := i%2 == 0
		for k := 0; k < 2; k++ {
			if (k == 0) == plainFirst {
				fmt.Fprint(os.Stderr, ", plain OVMF")
				if err := runPlain(st, i, &rep); err != nil {
					return err
				}
			} else {
				fmt.Fprint(os.Stderr, ", shim chain")
				if err := runB(st, state, i, &rep); err != nil {
					return err
				}
			}
		}
		fmt.Fprintln(os.Stderr)
	}
	// Per-run ratios pair each shim boot with the plain boot next to it in time.
	pl, sh := rep.index["boot.plain.start_to_bdsdxe"].Samples, rep.index["boot.shim.start_to_bdsdxe"].Samples
	for i := range pl {
		rep.add("boot.ratio.paired", "x", "median over runs of (B start->BdsDxe / plain start->BdsDxe) of the same run", sh[i]/pl[i])
	}
	for _, s := range rep.figures {
		s.Median = median(s.Samples)
	}
	plain := rep.index["boot.plain.start_to_bdsdxe"].Median
	rep.addRatio("boot.ratio.shim_start_vs_plain", rep.index["boot.shim.start_to_bdsdxe"].Median/plain,
		"B start->BdsDxe / plain start->BdsDxe (medians; goal <= 1.10)")
	rep.addRatio("boot.ratio.shim_cont_vs_plain", rep.index["boot.shim.cont_to_bdsdxe"].Median/plain,
		"B cont->BdsDxe / plain start->BdsDxe (medians)")
	if err := sizes(tpl, &rep); err != nil {
		fmt.Fprintln(os.Stderr, "shimbench: sizes:", err)
	}
	return output(&rep)
}

func (r *report) addRatio(name string, v float64, note string) {
	r.add(name, "x", note, v)
	r.index[name].Median = v
	r.index[name].Samples = nil
}

// prepare makes the fixtures (tests/harness): a fresh key, the v5 bundle of OVMF_CODE_4M and a
// shim of the fixture policy made from the template tpl.
func prepare(dir, tpl string) (*setup, error) {
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

func runA(st *setup, state string, rep *report) error {
	ctx, cancel := context.WithTimeout(context.Background(), *flagTimeout)
	defer cancel()
	dir := state + ".a"
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	r, err := harness.SaveReady(ctx, harness.ASpec{Shim: st.shim, Dir: dir})
	if err != nil {
		return fmt.Errorf("A: %w", err)
	}
	if err := os.Rename(r.Path, state); err != nil {
		return err
	}
	rep.dur("a.start_to_ready", "QEMU A start -> SEVSHIM READY", r.AReady)
	rep.add("a.state_file_bytes", "B", "size of the saved READY state", float64(r.Bytes))
	rep.dur("a.save_state", "stop + migrate to file (host time)", r.Save.Elapsed)
	return nil
}

var reBds = harness.BdsRE

func runPlain(st *setup, i int, rep *report) error {
	ctx, cancel := context.WithTimeout(context.Background(), *flagTimeout)
	defer cancel()
	vars := filepath.Join(st.dir, "vars-plain.fd")
	b, err := os.ReadFile(st.vars)
	if err == nil {
		err = os.WriteFile(vars, b, 0o600)
	}
	if err != nil {
		return err
	}
	vm, err := qemu.Start(ctx, qemu.Config{
		Pflash:   []qemu.Pflash{{Unit: 0, File: st.ovmf, ReadOnly: true}, {Unit: 1, File: vars}},
		Debugcon: true,
	})
	if err != nil {
		return err
	}
	defer vm.Close()
	bds, err := vm.Serial().WaitLine(ctx, reBds, 0)
	if err != nil {
		return failure(vm, "plain OVMF: waiting for BdsDxe", err)
	}
	rep.dur("boot.plain.start_to_bdsdxe", "stock OVMF: QEMU start -> BdsDxe", bds.Time.Sub(vm.Started()))
	return nil
}

func runB(st *setup, state string, i int, rep *report) error {
	ctx, cancel := context.WithTimeout(context.Background(), *flagTimeout)
	defer cancel()
	dir := filepath.Join(st.dir, fmt.Sprintf("b-%d", i))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	vm, _, err := harness.StartB(ctx, harness.BSpec{Shim: st.shim, Manifest: st.manifest, Image: st.ovmf,
		Incoming: qemu.IncomingFile(state), Dir: dir})
	if err != nil {
		return err
	}
	defer vm.Close()
	qmpUp := time.Now()
	if _, err := vm.WaitIncoming(ctx, *flagTimeout); err != nil {
		return failure(vm, "B: loading the READY state", err)
	}
	loaded := time.Now()
	rep.dur("b.start_to_qmp", "QEMU B start -> QMP connected", qmpUp.Sub(vm.Started()))
	rep.dur("b.qmp_to_paused", "QMP connected -> incoming state loaded (status paused)", loaded.Sub(qmpUp))
	cont := time.Now()
	if err := vm.Resume(ctx); err != nil {
		return failure(vm, "B: cont", err)
	}
	if err := vm.NMI(ctx); err != nil {
		return failure(vm, "B: inject-nmi", err)
	}
	steps := []struct{ step, name, note string }{
		{"WAKE", "resume.cont_to_wake", "cont -> WAKE (NMI taken)"},
		{"LOADED", "resume.wake_to_loaded", "WAKE -> LOADED (fw_cfg read of manifest, bios, vars)"},
		{"VERIFIED", "resume.loaded_to_verified", "LOADED -> VERIFIED (SHA-384 + ECDSA P-384 + policy)"},
		{"FLASHED", "resume.verified_to_flashed", "VERIFIED -> FLASHED (CFI erase/program/read-back)"},
		{"HANDOFF", "resume.flashed_to_handoff", "FLASHED -> HANDOFF"},
	}
	prev := cont
	for _, s := range steps {
		l, err := vm.Debugcon().WaitLine(ctx, console.StepRE(s.step), 0)
		if err != nil {
			return failure(vm, "B: waiting for SEVSHIM "+s.step, err)
		}
		rep.dur(s.name, s.note, l.Time.Sub(prev))
		prev = l.Time
	}
	rep.dur("resume.cont_to_handoff", "cont -> HANDOFF (total)", prev.Sub(cont))
	bds, err := vm.Serial().WaitLine(ctx, reBds, 0)
	if err != nil {
		return failure(vm, "B: waiting for BdsDxe after the hand-off", err)
	}
	rep.dur("boot.shim.start_to_bdsdxe", "through the shim: QEMU B start -> BdsDxe", bds.Time.Sub(vm.Started()))
	rep.dur("boot.shim.cont_to_bdsdxe", "through the shim: cont -> BdsDxe", bds.Time.Sub(cont))
	rep.dur("boot.shim.handoff_to_bdsdxe", "HANDOFF -> BdsDxe (OVMF itself in B)", bds.Time.Sub(prev))
	return nil
}

// sizes reports the shim image and payload sizes from build/shim (as `make -C shim size`).
func sizes(tpl string, rep *report) error {
	single := func(name, unit, note string, v float64) {
		rep.add(name, unit, note, v)
		rep.index[name].Median = v
		rep.index[name].Samples = nil
	}
	if fi, err := os.Stat(tpl); err == nil {
		single("size.shim_image_bytes", "B", "shim image = pflash0 size", float64(fi.Size()))
	}
	dir := filepath.Dir(tpl)
	if fi, err := os.Stat(filepath.Join(dir, "payload.bin")); err == nil {
		single("size.payload_bin_bytes", "B", "code+data copied to RAM (payload.bin)", float64(fi.Size()))
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
	single("size.payload_text_bytes", "B", "executable sections", float64(text))
	single("size.payload_rodata_bytes", "B", "read-only data", float64(rodata))
	single("size.payload_data_bytes", "B", "writable data", float64(data))
	single("size.payload_bss_bytes", "B", "zero-initialised RAM (incl. stacks; not in flash)", float64(bss))
	if n, err := shimLines(); err == nil {
		single("size.shim_c_asm_lines", "lines", "shim/src/*.{c,asm,inc} + shim/include (BearSSL excluded)", float64(n))
	}
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
	return n, nil
}

func output(rep *report) error {
	if *flagJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"runs": *flagRuns, "figures": rep.figures})
	}
	w := 0
	for _, s := range rep.figures {
		if len(s.Name) > w {
			w = len(s.Name)
		}
	}
	fmt.Printf("%-*s %d (medians; host wall clock, QEMU %s)\n", w+1, "runs:", *flagRuns, "TCG")
	for _, s := range rep.figures {
		var v string
		switch s.Unit {
		case "s":
			v = fmt.Sprintf("%.3f s", s.Median) + samples(s.Samples)
		case "x":
			v = fmt.Sprintf("%.3f", s.Median) + samples(s.Samples)
		default:
			v = fmt.Sprintf("%.0f %s", s.Median, s.Unit)
		}
		fmt.Printf("%-*s %-40s  # %s\n", w+1, s.Name+":", v, s.Note)
	}
	return nil
}

// samples lists every run's value ("  [a b c]") when there was more than one run.
func samples(xs []float64) string {
	if len(xs) < 2 {
		return ""
	}
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprintf("%.3f", x)
	}
	return "  [" + strings.Join(parts, " ") + "]"
}
