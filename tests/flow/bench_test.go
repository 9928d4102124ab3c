package flow

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/sevshim/sevshim/bios"
	"github.com/sevshim/sevshim/host"
	"github.com/sevshim/sevshim/internal/repo"
	"github.com/sevshim/sevshim/qemu"
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
// package size against the raw stream.
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
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		it := j("it" + strconv.Itoa(i))
		sess, a, wb := it+"/sess", track(it+"/A"), track(it+"/B")
		mustRunOut(b, "verifier", "session", "--chain", j("o.chain"), "--root", j("O/certs"), "--policy", "0x1", "--out", sess)
		mustRunOut(b, "hostctl", "launch", "--state", j("O"), "--image", shim, "--session", sess, "--work", a, "--memory", strconv.Itoa(benchMiB))
		if err := host.WriteGuestPhys(filepath.Join(a, "gdb.sock"), dirtyBase, dirty); err != nil {
			b.Fatal(err)
		}
		mustRunOut(b, "hostctl", "launch-finish", "--work", a)
		b.StartTimer()
		start := time.Now()
		out := mustRunOut(b, "hostctl", "export", "--work", a, "--to", j("p.chain"), "--root", j("P/certs"), "--out", it+"/guest.pkg")
		mustRunOut(b, "hostctl", "receive", "--state", j("P"), "--package", it+"/guest.pkg", "--bios", v5, "--work", wb, "--stop")
		ours += time.Since(start)
		b.StopTimer()
		m := reExported.FindStringSubmatch(out)
		if m == nil {
			b.Fatalf("export output: %s", out)
		}
		pkgBytes, _ = strconv.ParseInt(m[1], 10, 64)
		streamBytes, _ = strconv.ParseInt(m[3], 10, 64)
		killWork(a)
		killWork(wb)

		d, n := plainRun(b, it+"/plain", shim, v5, dirty)
		plain += d
		plainBytes = n
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
}

// plainRun is the baseline: QEMU A runs the same shim to READY, gets the same RAM data,
// migrates into a file and quits; QEMU B loads the file and runs the shim to HANDOFF. Only
// the save and the B part are timed.
func plainRun(b *testing.B, dir, shim, bundle string, dirty []byte) (time.Duration, int64) {
	os.MkdirAll(dir, 0o700)
	ctx := context.Background()
	vars := filepath.Join(dir, "vars.fd")
	vb, err := os.ReadFile(repo.OVMFVars())
	if err != nil {
		b.Fatal(err)
	}
	os.WriteFile(vars, vb, 0o600)
	gdb := filepath.Join(dir, "gdb.sock")
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
	time.Sleep(300 * time.Millisecond)
	if err := host.WriteGuestPhys(gdb, dirtyBase, dirty); err != nil {
		b.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	start := time.Now()
	st, err := a.SaveState(ctx, state)
	if err != nil {
		b.Fatal(err)
	}
	manifest, image, _, err := bios.ReadBundle(bundle)
	if err != nil {
		b.Fatal(err)
	}
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
	if err := bm.Cont(ctx); err != nil {
		b.Fatal(err)
	}
	if err := bm.InjectNMI(ctx); err != nil {
		b.Fatal(err)
	}
	if _, err := bm.Debugcon().WaitString(ctx, "SEVSHIM HANDOFF", 2*time.Minute); err != nil {
		b.Fatalf("%v\n%s", err, bm.Debugcon().Text())
	}
	d := time.Since(start)
	bm.Quit(ctx)
	return d, st.Bytes
}

func mustRunOut(b *testing.B, tool string, args ...string) string {
	b.Helper()
	return mustRun(b, tool, args...).stdout
}
