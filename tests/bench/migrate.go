package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/sevshim/sevshim/pkg/format/console"
	"github.com/sevshim/sevshim/pkg/format/manifest"
	"github.com/sevshim/sevshim/pkg/vmm/qemu"
	"github.com/sevshim/sevshim/tests/bench/figures"
	"github.com/sevshim/sevshim/tests/benchplot"
	"github.com/sevshim/sevshim/tests/harness"
	"github.com/sevshim/sevshim/tests/harness/repo"
)

// Guest under the migration benchmark: 256 MiB of RAM, the demo shim at READY, and dirtyMiB
// of random data written into RAM at dirtyBase (so the stream carries real data pages, not
// only the shim's few hundred), identical for both paths.
const (
	benchMiB  = 256
	dirtyBase = 16 << 20
	dirtyMiB  = 48
)

var reExported = regexp.MustCompile(`\((\d+) bytes; (\d+) data pages.*migration stream (\d+) bytes\)`)

// migSteps are the steps of the picture (-svg). On the sevshim path: hostctl launch +
// launch-finish (up to READY and the vCPU halted in the shim's wait), hostctl export,
// receive up to `cont` (package checks, RECEIVE_*, QEMU B start and load), then the shim's
// console steps. On the plain path: QEMU A start to READY and the same halt, migrate to a
// file, QEMU B start with -incoming and `cont`, then the same console steps.
var migSteps = [...]string{"reset -> READY", "export / save", "receive + load", "wake", "verify", "flash", "hand-off", "OVMF"}

// migration is the export/receive benchmark's world: the built tools (make tools), the demo
// images (make images), an owner and a provider platform, the dirty data.
type migration struct {
	dir, bin, shim, v5 string
	cli                *harness.CLIs // ends the QEMU of every work directory
	dirty              []byte
	n                  int
	ours, plain        [len(migSteps)]time.Duration // sums over the runs, for the picture
}

func newMigration(dir string) (*migration, error) {
	b, err := repo.BuildDir()
	if err != nil {
		return nil, err
	}
	m := &migration{dir: dir, bin: filepath.Join(b, "bin"), shim: filepath.Join(b, "images", "shim-demo.fd"),
		v5: filepath.Join(b, "images", "v5.bundle")}
	m.cli = &harness.CLIs{Bin: m.bin, Images: filepath.Join(b, "images")}
	if err := repo.RequireFiles(filepath.Join(m.bin, "hostctl"), filepath.Join(m.bin, "verifier"), m.shim, m.v5); err != nil {
		return nil, fmt.Errorf("%v: run make tools images first", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	for _, p := range []string{"P", "O"} {
		if _, err := m.tool("hostctl", "platform", "init", "--state", m.j(p)); err != nil {
			return nil, err
		}
		if _, err := m.tool("hostctl", "platform", "export", "--state", m.j(p), "--out", m.j(p+".chain")); err != nil {
			return nil, err
		}
	}
	m.dirty = make([]byte, dirtyMiB<<20)
	rand.Read(m.dirty)
	return m, nil
}

func (m *migration) j(n string) string { return filepath.Join(m.dir, n) }

func (m *migration) close() { m.cli.StopAll() }

// tool runs one of the built tools (harness.CLIs, bounded to 5 minutes) and returns its
// stdout; a non-zero exit is an error with both outputs.
func (m *migration) tool(name string, args ...string) (string, error) {
	r, err := m.cli.Exec(nil, name, args...)
	if err == nil && r.Code != 0 {
		err = fmt.Errorf("%s", r)
	}
	if err != nil {
		return "", fmt.Errorf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return r.Stdout, nil
}

// pair runs both paths of run i, the order by ourFirst, and records them.
func (m *migration) pair(i int, ourFirst bool, rep *figures.Report) error {
	it := m.j("it" + strconv.Itoa(i))
	defer os.RemoveAll(it)
	var ours, plain time.Duration
	for k := 0; k < 2; k++ {
		var err error
		if (k == 0) == ourFirst {
			ours, err = m.sevshim(it, rep)
		} else {
			plain, err = m.plainRun(it + "/plain")
		}
		if err != nil {
			return err
		}
	}
	m.n++
	rep.Add("migrate.sevshim.export_receive", ours.Seconds())
	rep.Add("migrate.plain.save_incoming", plain.Seconds())
	rep.Add("migrate.ratio.paired", ours.Seconds()/plain.Seconds())
	return nil
}

// sevshim is hostctl launch (256 MiB, the dirty data written through its gdbstub),
// export, and receive --stop --timeline; it returns export + receive up to HANDOFF.
func (m *migration) sevshim(it string, rep *figures.Report) (time.Duration, error) {
	sess, a, wb := it+"/sess", m.cli.Track(it+"/A"), m.cli.Track(it+"/B")
	defer m.cli.KillWork(a)
	defer m.cli.KillWork(wb)
	if _, err := m.tool("verifier", "session", "--chain", m.j("O.chain"), "--root", m.j("O/certs"), "--policy", "0x1", "--out", sess); err != nil {
		return 0, err
	}
	t0 := time.Now()
	if _, err := m.tool("hostctl", "launch", "--state", m.j("O"), "--image", m.shim, "--session", sess, "--work", a, "--memory", strconv.Itoa(benchMiB)); err != nil {
		return 0, err
	}
	launch := time.Since(t0)
	if err := qemu.WriteGuestPhys(filepath.Join(a, qemu.GDBSock), dirtyBase, m.dirty); err != nil {
		return 0, err
	}
	t0 = time.Now()
	if _, err := m.tool("hostctl", "launch-finish", "--work", a); err != nil {
		return 0, err
	}
	launch += time.Since(t0)
	settle()
	start := time.Now()
	out, err := m.tool("hostctl", "export", "--work", a, "--to", m.j("P.chain"), "--root", m.j("P/certs"), "--out", it+"/guest.pkg")
	if err != nil {
		return 0, err
	}
	export := time.Since(start)
	// --timeline also waits for OVMF's first output: only the steps up to HANDOFF count, as
	// on the plain path
	rout, err := m.tool("hostctl", "receive", "--state", m.j("P"), "--package", it+"/guest.pkg", "--bios", m.v5, "--work", wb, "--stop", "--timeline")
	if err != nil {
		return 0, err
	}
	marks, err := timelineMarks(rout, "resumed", "WAKE", "VERIFIED", "FLASHED", "HANDOFF", "OVMF")
	if err != nil {
		return 0, err
	}
	for k, d := range []time.Duration{launch, export, marks["resumed"], marks["WAKE"] - marks["resumed"],
		marks["VERIFIED"] - marks["WAKE"], marks["FLASHED"] - marks["VERIFIED"], marks["HANDOFF"] - marks["FLASHED"],
		marks["OVMF"] - marks["HANDOFF"]} {
		m.ours[k] += d
	}
	e := reExported.FindStringSubmatch(out)
	if e == nil {
		return 0, fmt.Errorf("hostctl export printed no sizes: %s", out)
	}
	pkgBytes, _ := strconv.ParseFloat(e[1], 64)
	streamBytes, _ := strconv.ParseFloat(e[3], 64)
	rep.Add("migrate.package_vs_stream", pkgBytes/streamBytes)
	rep.Add("migrate.sevshim.export", export.Seconds())
	rep.Add("migrate.sevshim.receive_to_handoff", marks["HANDOFF"].Seconds())
	return export + marks["HANDOFF"], nil
}

// timelineMarks parses `hostctl receive --timeline` output (harness.TimelineSteps) into
// step -> time since the receive started and requires the steps need.
func timelineMarks(out string, need ...string) (map[string]time.Duration, error) {
	m := map[string]time.Duration{}
	steps, ms := harness.TimelineSteps(out)
	for i, s := range steps {
		m[s] = time.Duration(ms[i]) * time.Millisecond
	}
	for _, s := range need {
		if _, ok := m[s]; !ok {
			return nil, fmt.Errorf("receive --timeline has no %s step:\n%s", s, out)
		}
	}
	return m, nil
}

// plainRun is the baseline: QEMU A runs the same shim to READY, gets the same RAM data,
// migrates into a file and quits; QEMU B loads the file and runs the shim to HANDOFF. Only
// the save and the B part up to HANDOFF are timed; the picture's steps go on to OVMF's first
// output on COM1.
func (m *migration) plainRun(dir string) (time.Duration, error) {
	var steps [len(migSteps)]time.Duration
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), *flagTimeout)
	defer cancel()
	gdb := filepath.Join(dir, "gdb.sock")
	t0 := time.Now()
	// A to READY with the vCPU halted in the shim's wait (tests/harness), with a gdbstub
	a, _, err := harness.BootA(ctx, harness.ASpec{Shim: m.shim, MemoryMiB: benchMiB, Dir: dir,
		Extra: []string{"-chardev", "socket,id=gdb,path=" + gdb + ",server=on,wait=off", "-gdb", "chardev:gdb"}})
	if err != nil {
		return 0, fmt.Errorf("plain A: %w", err)
	}
	defer a.Close()
	steps[0] = time.Since(t0)
	// QEMU A here is this program's own child (no hostctl work directory, so no pid file for
	// qemu.WriteGuestPhys): write through its gdbstub directly
	g, err := qemu.DialGDB(gdb, nil)
	if err != nil {
		return 0, err
	}
	err = g.SetPhysMode(true)
	if err == nil {
		err = g.WriteMemory(dirtyBase, m.dirty)
	}
	if err == nil {
		err = g.SetPhysMode(false)
	}
	g.Close()
	if err != nil {
		return 0, err
	}
	state := filepath.Join(dir, "state")
	settle()
	start := time.Now()
	if _, err := a.SaveState(ctx, state); err != nil {
		return 0, err
	}
	steps[1] = time.Since(start)
	man, image, _, err := manifest.ReadBundle(m.v5)
	if err != nil {
		return 0, err
	}
	t1 := time.Now()
	mf, img := filepath.Join(dir, "m"), filepath.Join(dir, "i")
	if err := errors.Join(os.WriteFile(mf, man, 0o600), os.WriteFile(img, image, 0o600)); err != nil {
		return 0, err
	}
	bm, _, err := harness.StartB(ctx, harness.BSpec{Shim: m.shim, Manifest: mf, Image: img, MemoryMiB: benchMiB,
		Incoming: qemu.IncomingFile(state), Dir: dir})
	if err != nil {
		return 0, err
	}
	defer bm.Close()
	if _, err := bm.WaitIncoming(ctx, 2*time.Minute); err != nil {
		return 0, failure(bm, "plain B: loading", err)
	}
	if err := bm.Resume(ctx); err != nil {
		return 0, err
	}
	resumed := time.Now()
	steps[2] = resumed.Sub(t1)
	if err := bm.NMI(ctx); err != nil {
		return 0, err
	}
	handoff, err := bm.Debugcon().WaitLine(ctx, reHandoff, 2*time.Minute)
	if err != nil {
		return 0, failure(bm, "plain B: waiting for HANDOFF", err)
	}
	d := handoff.Time.Sub(start)
	at := map[string]time.Time{}
	for _, l := range bm.Debugcon().CompleteLines() {
		if step, ok := console.Step(l.Text); ok {
			if _, seen := at[step]; !seen {
				at[step] = l.Time
			}
		}
	}
	steps[3] = at["WAKE"].Sub(resumed)
	steps[4] = at["VERIFIED"].Sub(at["WAKE"])
	steps[5] = at["FLASHED"].Sub(at["VERIFIED"])
	steps[6] = handoff.Time.Sub(at["FLASHED"])
	ovmf, err := firstAfterHandoff(bm)
	if err != nil {
		return 0, err
	}
	steps[7] = ovmf.Sub(handoff.Time)
	bm.Quit(ctx)
	for k := range steps {
		m.plain[k] += steps[k]
	}
	return d, nil
}

var reHandoff = console.StepRE("HANDOFF")

// firstAfterHandoff waits (at most 60 s) for OVMF's first output on COM1 after the shim's
// HANDOFF line there and returns when it arrived (a partial line counts: OVMF starts with
// escape sequences).
func firstAfterHandoff(vm *qemu.VM) (time.Time, error) {
	for end := time.Now().Add(60 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		seen := false
		for _, l := range vm.Serial().Lines() {
			if seen && l.Text != "" {
				return l.Time, nil
			}
			seen = seen || reHandoff.MatchString(l.Text)
		}
	}
	return time.Time{}, fmt.Errorf("plain path: OVMF printed nothing on COM1 within 60 s of the hand-off:\n%s", vm.Serial().Text())
}

// drawSVG draws both paths' mean steps over the runs (tests/benchplot) into out.
func (m *migration) drawSVG(out string) error {
	if m.n == 0 {
		return errors.New("no migration run to draw")
	}
	st := &benchplot.Story{Title: fmt.Sprintf("%d MiB guest, %d MiB dirty", benchMiB, dirtyMiB)}
	for k, name := range migSteps {
		st.Steps = append(st.Steps, benchplot.Step{Name: name, Sevshim: m.ours[k] / time.Duration(m.n), Plain: m.plain[k] / time.Duration(m.n)})
	}
	var buf bytes.Buffer
	if err := benchplot.WriteSVG(&buf, st); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	return os.WriteFile(out, buf.Bytes(), 0o644)
}
