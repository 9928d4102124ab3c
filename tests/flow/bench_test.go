package flow

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"github.com/sevshim/sevshim/pkg/format/manifest"
	"github.com/sevshim/sevshim/pkg/vmm/qemu"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sevshim/sevshim/tests/benchplot"
	"github.com/sevshim/sevshim/tests/harness/repo"
)

// Guest under benchmark: 256 MiB of RAM, the demo shim at READY, and dirtyMiB of random
// data written into RAM at dirtyBase (so the stream carries real data pages, not only the
// shim's few hundred), identical for both paths.
const (
	benchMiB  = 256
	dirtyBase = 16 << 20
	dirtyMiB  = 48
)

var reExported = regexp.MustCompile(`\((\d+) bytes; (\d+) data pages.*migration stream (\d+) bytes\)`)

// BenchmarkExportReceive compares, on the same guest shape and data, the sevshim path
// (hostctl export: SEND_* packets into a package; hostctl receive: RECEIVE_* and a fresh
// QEMU) against plain QEMU (migrate to a file, then a fresh QEMU with -incoming from it),
// both up to the shim's SEVSHIM HANDOFF on the destination. It reports the ratio and the
// package size against the raw stream. With $SEVSHIM_BENCH_SVG set (make bench), it also
// draws both paths step by step, up to OVMF's first output, as an SVG picture there
// (tests/benchplot): the sevshim steps come from `hostctl receive --timeline`, the plain
// ones from QEMU's console lines as they arrive.
func BenchmarkExportReceive(b *testing.B) {
	prereq(b)
	dir := b.TempDir()
	j := func(n string) string { return filepath.Join(dir, n) }
	mustRunOut(b, "hostctl", "platform", "init", "--state", j("P"))
	mustRunOut(b, "hostctl", "platform", "init", "--state", j("O"))
	mustRunOut(b, "hostctl", "platform", "export", "--state", j("P"), "--out", j("p.chain"))
	mustRunOut(b, "hostctl", "platform", "export", "--state", j("O"), "--out", j("o.chain"))
	shim := filepath.Join(images, "shim-demo.fd")
	v5 := filepath.Join(images, "v5.bundle")
	dirty := make([]byte, dirtyMiB<<20)
	rand.Read(dirty)

	var ours, plain time.Duration
	var pkgBytes, streamBytes, plainBytes int64
	var oursSteps, plainSteps [len(benchSteps)]time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		it := j("it" + strconv.Itoa(i))
		sess, a, wb := it+"/sess", track(it+"/A"), track(it+"/B")
		mustRunOut(b, "verifier", "session", "--chain", j("o.chain"), "--root", j("O/certs"), "--policy", "0x1", "--out", sess)
		t0 := time.Now()
		mustRunOut(b, "hostctl", "launch", "--state", j("O"), "--image", shim, "--session", sess, "--work", a, "--memory", strconv.Itoa(benchMiB))
		launch := time.Since(t0)
		if err := qemu.WriteGuestPhys(filepath.Join(a, qemu.GDBSock), dirtyBase, dirty); err != nil {
			b.Fatal(err)
		}
		t0 = time.Now()
		mustRunOut(b, "hostctl", "launch-finish", "--work", a)
		launch += time.Since(t0)
		b.StartTimer()
		start := time.Now()
		out := mustRunOut(b, "hostctl", "export", "--work", a, "--to", j("p.chain"), "--root", j("P/certs"), "--out", it+"/guest.pkg")
		export := time.Since(start)
		// --timeline also waits for OVMF's first output (so ns/op includes it): only the
		// steps up to HANDOFF count towards the ratio, as on the plain path.
		rout := mustRunOut(b, "hostctl", "receive", "--state", j("P"), "--package", it+"/guest.pkg", "--bios", v5, "--work", wb, "--stop", "--timeline")
		b.StopTimer()
		marks := timelineMarks(b, rout)
		ours += export + marks["HANDOFF"]
		for k, d := range []time.Duration{launch, export, marks["resumed"], marks["WAKE"] - marks["resumed"],
			marks["VERIFIED"] - marks["WAKE"], marks["FLASHED"] - marks["VERIFIED"], marks["HANDOFF"] - marks["FLASHED"],
			marks["OVMF"] - marks["HANDOFF"]} {
			oursSteps[k] += d
		}
		m := reExported.FindStringSubmatch(out)
		if m == nil {
			b.Fatalf("export output: %s", out)
		}
		pkgBytes, _ = strconv.ParseInt(m[1], 10, 64)
		streamBytes, _ = strconv.ParseInt(m[3], 10, 64)
		killWork(a)
		killWork(wb)

		d, n, ps := plainRun(b, it+"/plain", shim, v5, dirty)
		plain += d
		plainBytes = n
		for k := range ps {
			plainSteps[k] += ps[k]
		}
		os.RemoveAll(it)
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(float64(ours.Milliseconds())/float64(b.N), "ms/sevshim")
	b.ReportMetric(float64(plain.Milliseconds())/float64(b.N), "ms/plain")
	b.ReportMetric(float64(ours)/float64(plain), "ratio")
	b.ReportMetric(float64(pkgBytes)/float64(streamBytes), "pkg/stream")
	b.Logf("256 MiB guest, %d MiB dirty: sevshim export+receive %v, plain migrate-to-file+incoming %v (ratio %.2f); package %d bytes, its raw stream %d bytes (x%.3f), plain state file %d bytes",
		dirtyMiB, ours/time.Duration(b.N), plain/time.Duration(b.N), float64(ours)/float64(plain), pkgBytes, streamBytes,
		float64(pkgBytes)/float64(streamBytes), plainBytes)
	if out := os.Getenv("SEVSHIM_BENCH_SVG"); out != "" {
		st := &benchplot.Story{Title: fmt.Sprintf("%d MiB guest, %d MiB dirty", benchMiB, dirtyMiB)}
		for k, name := range benchSteps {
			st.Steps = append(st.Steps, benchplot.Step{Name: name, Sevshim: oursSteps[k] / time.Duration(b.N), Plain: plainSteps[k] / time.Duration(b.N)})
		}
		var buf bytes.Buffer
		if err := benchplot.WriteSVG(&buf, st); err != nil {
			b.Fatal(err)
		}
		os.MkdirAll(filepath.Dir(out), 0o755)
		if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
			b.Fatal(err)
		}
		for _, s := range st.Steps {
			b.Logf("%-16s sevshim %6d ms  plain %6d ms", s.Name, s.Sevshim.Milliseconds(), s.Plain.Milliseconds())
		}
		b.Logf("wrote %s", out)
	}
}

// benchSteps are the steps of the picture. On the sevshim path: hostctl launch +
// launch-finish (up to READY and the vCPU halted in the shim's wait), hostctl export, receive up to `cont`
// (package checks, RECEIVE_*, QEMU B start and load), then the shim's console steps. On the
// plain path: QEMU A start to READY and the same halt, migrate to a file, QEMU B start with
// -incoming and `cont`, then the same console steps.
var benchSteps = [...]string{"reset -> READY", "export / save", "receive + load", "wake", "verify", "flash", "hand-off", "OVMF"}

// timelineMarks parses `hostctl receive --timeline` output into step -> time since start.
func timelineMarks(b *testing.B, out string) map[string]time.Duration {
	steps, ms := timelineSteps(b, out)
	m := map[string]time.Duration{}
	for i, s := range steps {
		m[s] = time.Duration(ms[i]) * time.Millisecond
	}
	for _, want := range []string{"resumed", "WAKE", "VERIFIED", "FLASHED", "HANDOFF", "OVMF"} {
		if _, ok := m[want]; !ok {
			b.Fatalf("receive --timeline has no %s step:\n%s", want, out)
		}
	}
	return m
}

// plainRun is the baseline: QEMU A runs the same shim to READY, gets the same RAM data,
// migrates into a file and quits; QEMU B loads the file and runs the shim to HANDOFF. Only
// the save and the B part up to HANDOFF are timed; the steps (benchSteps) go on to OVMF's
// first output on COM1.
func plainRun(b *testing.B, dir, shim, bundle string, dirty []byte) (time.Duration, int64, [len(benchSteps)]time.Duration) {
	var steps [len(benchSteps)]time.Duration
	os.MkdirAll(dir, 0o700)
	ctx := context.Background()
	vars := filepath.Join(dir, "vars.fd")
	vb, err := os.ReadFile(repo.OVMFVars())
	if err != nil {
		b.Fatal(err)
	}
	os.WriteFile(vars, vb, 0o600)
	gdb := filepath.Join(dir, "gdb.sock")
	t0 := time.Now()
	a, err := qemu.Start(ctx, qemu.Config{MemoryMiB: benchMiB, Debugcon: true, RebootShutdown: true,
		Pflash:    []qemu.Pflash{{Unit: 0, File: shim, Snapshot: true}, {Unit: 1, File: vars, Snapshot: true}},
		ExtraArgs: []string{"-chardev", "socket,id=gdb,path=" + gdb + ",server=on,wait=off", "-gdb", "chardev:gdb"}})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	if _, err := a.Debugcon().WaitString(ctx, "SEVSHIM READY", time.Minute); err != nil {
		b.Fatal(err)
	}
	// READY comes right before the shim's wait loop: save A once its vCPU halts there.
	if err := a.WaitHalted(ctx, time.Minute); err != nil {
		b.Fatal(err)
	}
	steps[0] = time.Since(t0)
	// QEMU A here is the test's own child (no hostctl work directory, so no pid file for
	// qemu.WriteGuestPhys): write through its gdbstub directly.
	g, err := qemu.DialGDB(gdb, nil)
	if err != nil {
		b.Fatal(err)
	}
	err = g.SetPhysMode(true)
	if err == nil {
		err = g.WriteMemory(dirtyBase, dirty)
	}
	if err == nil {
		err = g.SetPhysMode(false)
	}
	g.Close()
	if err != nil {
		b.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	start := time.Now()
	st, err := a.SaveState(ctx, state)
	if err != nil {
		b.Fatal(err)
	}
	steps[1] = time.Since(start)
	manifest, image, _, err := manifest.ReadBundle(bundle)
	if err != nil {
		b.Fatal(err)
	}
	t1 := time.Now()
	os.WriteFile(filepath.Join(dir, "m"), manifest, 0o600)
	os.WriteFile(filepath.Join(dir, "i"), image, 0o600)
	bm, err := qemu.Start(ctx, qemu.Config{MemoryMiB: benchMiB, Debugcon: true, RebootShutdown: true,
		Pflash:   []qemu.Pflash{{Unit: 0, File: shim, Snapshot: true}, {Unit: 1, File: vars}},
		FwCfg:    qemu.ShimFiles(filepath.Join(dir, "m"), filepath.Join(dir, "i"), vars),
		Incoming: qemu.IncomingFile(state)})
	if err != nil {
		b.Fatal(err)
	}
	defer bm.Close()
	if _, err := bm.WaitIncoming(ctx, 2*time.Minute); err != nil {
		b.Fatal(err)
	}
	if err := bm.Resume(ctx); err != nil {
		b.Fatal(err)
	}
	resumed := time.Now()
	steps[2] = resumed.Sub(t1)
	if err := bm.NMI(ctx); err != nil {
		b.Fatal(err)
	}
	handoff, err := bm.Debugcon().WaitString(ctx, "SEVSHIM HANDOFF", 2*time.Minute)
	if err != nil {
		b.Fatalf("%v\n%s", err, bm.Debugcon().Text())
	}
	d := time.Since(start)
	at := map[string]time.Time{}
	for _, l := range bm.Debugcon().CompleteLines() {
		if f := strings.Fields(l.Text); len(f) >= 2 && f[0] == "SEVSHIM" {
			if _, ok := at[f[1]]; !ok {
				at[f[1]] = l.Time
			}
		}
	}
	steps[3] = at["WAKE"].Sub(resumed)
	steps[4] = at["VERIFIED"].Sub(at["WAKE"])
	steps[5] = at["FLASHED"].Sub(at["VERIFIED"])
	steps[6] = handoff.Time.Sub(at["FLASHED"])
	steps[7] = plainOVMF(b, bm).Sub(handoff.Time)
	bm.Quit(ctx)
	return d, st.Bytes, steps
}

// plainOVMF waits (at most 60 s) for OVMF's first output on COM1 after the shim's HANDOFF
// line there and returns when it arrived (a partial line counts: OVMF starts with escape
// sequences).
func plainOVMF(b *testing.B, vm *qemu.VM) time.Time {
	for end := time.Now().Add(60 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		seen := false
		for _, l := range vm.Serial().Lines() {
			if seen && l.Text != "" {
				return l.Time
			}
			seen = seen || l.Text == "SEVSHIM HANDOFF"
		}
	}
	b.Fatalf("plain path: OVMF printed nothing on COM1 within 60 s of the hand-off:\n%s", vm.Serial().Text())
	return time.Time{}
}

func mustRunOut(b *testing.B, tool string, args ...string) string {
	b.Helper()
	return mustRun(b, tool, args...).Stdout
}
