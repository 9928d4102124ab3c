package flow

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sevshim/sevshim/pkg/format/guestpkg"
	"github.com/sevshim/sevshim/pkg/format/shimerr"
	"github.com/sevshim/sevshim/pkg/migrate"
	"github.com/sevshim/sevshim/pkg/sev"
	"github.com/sevshim/sevshim/pkg/vmm/qemu"
	"github.com/sevshim/sevshim/tests/harness"
)

// guestRAM reads size bytes of guest-physical memory at addr from the running QEMU of work
// (QMP pmemsave into a file of the test).
func guestRAM(t *testing.T, work string, addr, size int) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	q, err := qemu.DialQMP(ctx, filepath.Join(work, "qmp.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	f := filepath.Join(t.TempDir(), "pmemsave.bin")
	if _, err := q.Execute(ctx, "pmemsave", map[string]any{"val": addr, "size": size, "filename": f}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// secretInRAM reads the shim's secret block from the running QEMU A and finds the secret.
func secretInRAM(t *testing.T, work string, want []byte) {
	t.Helper()
	b := guestRAM(t, work, 0x80000, 4096)
	tab, err := sev.ParseSecretTable(b)
	if err != nil {
		t.Fatalf("guest RAM at 0x80000 holds no EFI secret table: %v", err)
	}
	got, ok := tab.Lookup(sev.MustGUID("736869e5-84f0-4973-92ec-06879ce3da0b"))
	if !ok || !bytes.Equal(got, want) {
		t.Fatalf("secret table entry %q, want %q", got, want)
	}
}

func TestSecretReachedGuestRAM(t *testing.T) {
	w := getWorld(t)
	// The fixture exported the guest already; the launch-finish output proved injection.
	// Here a second guest is launched to look at RAM while QEMU A still runs.
	dir := t.TempDir()
	sess := filepath.Join(dir, "sess")
	mustRun(t, "verifier", "session", "--chain", w.oChain, "--root", filepath.Join(w.o, "certs"), "--policy", "0x1", "--out", sess)
	a := track(filepath.Join(dir, "A"))
	t.Cleanup(func() { killWork(a) })
	mustRun(t, "hostctl", "launch", "--state", w.o, "--image", w.shim, "--session", sess, "--work", a)
	meas := filepath.Join(a, "measurement.json")
	// A wrong measurement (another image) makes verifier secret refuse.
	other := filepath.Join(dir, "other.fd")
	img, _ := os.ReadFile(w.shim)
	img[100] ^= 1
	os.WriteFile(other, img, 0o600)
	if r := run(t, nil, "verifier", "secret", "--session", sess, "--measurement", meas, "--image", other,
		"--secret", "736869e5-84f0-4973-92ec-06879ce3da0b="+filepath.Join(w.dir, "pass.txt"), "--out", filepath.Join(dir, "bad.json")); r.Code == 0 {
		t.Fatalf("verifier secret accepted a measurement of another image: %s", r)
	}
	mustRun(t, "verifier", "secret", "--session", sess, "--measurement", meas, "--image", w.shim,
		"--secret", "736869e5-84f0-4973-92ec-06879ce3da0b="+filepath.Join(w.dir, "pass.txt"), "--out", filepath.Join(dir, "secret.json"))
	mustRun(t, "hostctl", "launch-finish", "--work", a, "--secret", filepath.Join(dir, "secret.json"))
	secretInRAM(t, a, w.secret)
	// The plaintext was never written to the work directory.
	filepath.Walk(a, func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			if bytes.Contains(b, w.secret) {
				t.Errorf("%s contains the plaintext secret", p)
			}
		}
		return nil
	})
}

func receiveArgs(w *world, pkg, bundle, wb string, extra ...string) []string {
	return append([]string{"receive", "--state", w.p, "--package", pkg, "--bios", bundle, "--work", wb}, extra...)
}

func TestReceive(t *testing.T) {
	w := getWorld(t)
	for _, c := range []struct {
		name    string
		bundle  string
		version string
	}{{"v5", w.v5, "5"}, {"v6", w.v6, "6"}} {
		t.Run(c.name, func(t *testing.T) {
			wb := track(filepath.Join(t.TempDir(), "B"))
			t.Cleanup(func() { killWork(wb) })
			r := run(t, nil, "hostctl", receiveArgs(w, w.pkg, c.bundle, wb, "--wait", "shell", "--stop")...)
			if r.Code != 0 {
				t.Fatalf("receive with %s: %s\ndebugcon:\n%s", c.name, r, readFile(filepath.Join(wb, "debugcon.log")))
			}
			if !strings.Contains(r.Stdout, "accepted: version "+c.version+", signer ") {
				t.Fatalf("want accepted version %s: %s", c.version, r)
			}
			if !strings.Contains(r.Stdout, "UEFI Interactive Shell") || !strings.Contains(readFile(filepath.Join(wb, "serial.log")), "UEFI Interactive Shell") {
				t.Fatalf("OVMF shell not reached: %s", r)
			}
			// pflash0 of B is a null block node (vmm.Flash.Discard): OVMF ran from the BIOS the
			// shim programmed, and not one byte of it reached the blank file that gives the size
			flash0, err := os.ReadFile(filepath.Join(wb, "flash0.fd"))
			if err != nil || len(flash0) == 0 || bytes.Count(flash0, []byte{0}) != len(flash0) {
				t.Fatalf("WB/flash0.fd should be the blank file it was made as (%d bytes, err %v)", len(flash0), err)
			}
		})
	}
	t.Run("rollback-E034", func(t *testing.T) {
		wb := track(filepath.Join(t.TempDir(), "B"))
		t.Cleanup(func() { killWork(wb) })
		r := run(t, nil, "hostctl", receiveArgs(w, w.pkg, w.v4, wb)...)
		if r.Code != 3 || !strings.Contains(r.Stdout, "refused: E034 version-below-floor") {
			t.Fatalf("want exit 3 and refused: E034 version-below-floor: %s", r)
		}
		if pidAlive(wb) {
			t.Fatal("QEMU B still runs after a refusal")
		}
		assertShimRefusal(t, wb, shimerr.VersionBelowFloor, false)
	})
	t.Run("detached-then-stop", func(t *testing.T) {
		wb := track(filepath.Join(t.TempDir(), "B"))
		t.Cleanup(func() { killWork(wb) })
		r := run(t, nil, "hostctl", receiveArgs(w, w.pkg, w.v6, wb)...)
		if r.Code != 0 || !strings.Contains(r.Stdout, "hostctl stop --work "+wb) {
			t.Fatalf("receive: %s", r)
		}
		if !pidAlive(wb) {
			t.Fatal("QEMU B should run detached")
		}
		// a second receive into the same running directory is refused
		if r := run(t, nil, "hostctl", receiveArgs(w, w.pkg, w.v6, wb)...); r.Code == 0 || !strings.Contains(r.Stderr, "already runs") {
			t.Fatalf("second receive into a running directory: %s", r)
		}
		mustRun(t, "hostctl", "stop", "--work", wb)
		if pidAlive(wb) {
			t.Fatal("hostctl stop left QEMU B running")
		}
	})
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

func pidAlive(dir string) bool { return harness.WorkPid(dir, "qemu") != 0 }

// regions locates the parts of a package for the flip test.
type region struct {
	name       string
	start, end int64
}

func packageRegions(t *testing.T, pkg []byte) []region {
	t.Helper()
	r, err := guestpkg.NewReader(bytes.NewReader(pkg))
	if err != nil {
		t.Fatal(err)
	}
	pdhEnd := int64(guestpkg.HeaderSize + sev.CertSize)
	sessEnd := pdhEnd + sev.SessionSize
	if _, err := r.ReadStream(); err != nil {
		t.Fatal(err)
	}
	recStart := r.Offset()
	var p guestpkg.Packet
	var firstData, lastData int64 = -1, -1
	for {
		before := r.Offset()
		e, _, err := r.Next(&p)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if e.Kind == migrate.EntryData {
			if firstData < 0 {
				firstData = before
			}
			lastData = r.Offset()
		}
	}
	recEnd := r.Offset() // after the end-of-records counts
	n := int64(len(pkg))
	return []region{
		{"header", 0, guestpkg.HeaderSize},
		{"sender PDH", guestpkg.HeaderSize, pdhEnd},
		{"session", pdhEnd, sessEnd},
		{"stream header and blocks", sessEnd, recStart},
		{"records (entries and zero pages)", recStart, firstData},
		{"data pages (packets)", firstData, lastData},
		{"end of records", recEnd - 24, recEnd},
		{"device state", recEnd, n - guestpkg.TrailerSize},
		{"trailer", n - guestpkg.TrailerSize, n},
	}
}

// TestTamperedPackageRefusedBeforeQEMU flips one bit at 50 positions spread over every part
// of the package; each copy must be refused with no QEMU process started.
func TestTamperedPackageRefusedBeforeQEMU(t *testing.T) {
	w := getWorld(t)
	pkg, err := os.ReadFile(w.pkg)
	if err != nil {
		t.Fatal(err)
	}
	regs := packageRegions(t, pkg)
	per := map[string]int{"data pages (packets)": 12, "records (entries and zero pages)": 6, "device state": 8, "end of records": 3}
	var pos []int64
	var names []string
	for _, rg := range regs {
		k := per[rg.name]
		if k == 0 {
			k = 5
		}
		for i := 0; i < k; i++ {
			pos = append(pos, rg.start+(rg.end-rg.start)*int64(2*i+1)/int64(2*k))
			names = append(names, rg.name)
		}
	}
	if len(pos) < 50 {
		t.Fatalf("only %d positions", len(pos))
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.pkg")
	// Regions read after RECEIVE_START accepted the header (flips there are found by the
	// PSP's packet MAC, the record checks or the trailer digest).
	afterStart := map[string]bool{"records (entries and zero pages)": true, "data pages (packets)": true,
		"end of records": true, "device state": true, "trailer": true}
	killed := 0
	defer func() { t.Logf("%d of %d flips: QEMU B started early, fed nothing, killed", killed, len(pos)) }()
	for i, at := range pos {
		b := append([]byte(nil), pkg...)
		b[at] ^= 0x10
		if err := os.WriteFile(bad, b, 0o600); err != nil {
			t.Fatal(err)
		}
		wb := track(filepath.Join(dir, fmt.Sprintf("B%d", i)))
		r := run(t, nil, "hostctl", receiveArgs(w, bad, w.v6, wb)...)
		if r.Code != 3 || strings.Contains(r.Stdout, "accepted") {
			t.Fatalf("flip at byte %d (%s): want a refusal before QEMU: %s", at, names[i], r)
		}
		// After RECEIVE_START QEMU B is started early (-incoming defer); a flip found later
		// must have it started, fed nothing and killed. Earlier flips start nothing.
		started := refusedBeforeVM(t, r.Stderr, wb)
		if afterStart[names[i]] && !started {
			t.Fatalf("flip at byte %d (%s): the refusal came after RECEIVE_START, so QEMU B should have been started early and killed: %s", at, names[i], r)
		}
		if started {
			killed++
		}
		for _, f := range []string{"qemu.pid", "qemu.log", "bios.fd"} {
			if _, err := os.Stat(filepath.Join(wb, f)); err == nil {
				t.Fatalf("flip at byte %d (%s): %s exists, so QEMU B was prepared or started", at, names[i], f)
			}
		}
		if i%10 == 0 {
			t.Logf("flip at %d (%s): %s", at, names[i], firstLine(r.Stderr))
		}
	}
}

// reEarlyKilled is receive's refusal when QEMU B was started (-incoming defer) while the
// package was checked: its run state as QEMU itself reported it right before the kill.
var reEarlyKilled = regexp.MustCompile(`refused, before the VM ran: QEMU B \(pid (\d+), started meanwhile with -incoming defer\) was fed no byte of the stream \(run state "([a-z-]+)"\) and was killed: `)

// refusedBeforeVM checks a package refusal: either no QEMU was started, or QEMU B was started
// early and was still waiting for its stream ("inmigrate": no byte of it reached QEMU) when
// it was killed, and that process is gone now. It reports whether B was started.
func refusedBeforeVM(t *testing.T, stderr, wb string) bool {
	t.Helper()
	if strings.Contains(stderr, "refused, no QEMU was started") {
		return false
	}
	m := reEarlyKilled.FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("want a package refusal with no QEMU started or QEMU B killed unfed:\n%s", stderr)
	}
	if m[2] != "inmigrate" {
		t.Fatalf("QEMU B was %q when killed, want \"inmigrate\" (still waiting for its stream):\n%s", m[2], stderr)
	}
	pid, _ := strconv.Atoi(m[1])
	if isQEMUOf(pid, wb) {
		t.Fatalf("QEMU B (pid %d) still runs after the refusal", pid)
	}
	if strings.Contains(stderr, "package verified") || strings.Contains(stderr, "loading the rebuilt stream") {
		t.Fatalf("the refusal came after the package was verified:\n%s", stderr)
	}
	return true
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

func TestWrongProviderRefused(t *testing.T) {
	w := getWorld(t)
	wb := track(filepath.Join(t.TempDir(), "B"))
	r := run(t, nil, "hostctl", "receive", "--state", w.y, "--package", w.pkg, "--bios", w.v6, "--work", wb)
	if r.Code != 3 || !strings.Contains(r.Stderr, "another platform") || !strings.Contains(r.Stderr, "no QEMU was started") {
		t.Fatalf("package for P received on Y: %s", r)
	}
	if _, err := os.Stat(filepath.Join(wb, "qemu.pid")); err == nil {
		t.Fatal("QEMU started on Y")
	}
}

// launchRunning launches and finishes a fresh guest with policy pol and returns its work dir.
func launchRunning(t *testing.T, w *world, pol string) string {
	t.Helper()
	dir := t.TempDir()
	sess := filepath.Join(dir, "sess")
	mustRun(t, "verifier", "session", "--chain", w.oChain, "--root", filepath.Join(w.o, "certs"), "--policy", pol, "--out", sess)
	a := track(filepath.Join(dir, "A"))
	t.Cleanup(func() { killWork(a) })
	mustRun(t, "hostctl", "launch", "--state", w.o, "--image", w.shim, "--session", sess, "--work", a)
	mustRun(t, "hostctl", "launch-finish", "--work", a)
	return a
}

func TestNoSendPolicyRefusesExport(t *testing.T) {
	w := getWorld(t)
	a := launchRunning(t, w, "0x9") // NODBG | NOSEND
	out := filepath.Join(t.TempDir(), "guest.pkg")
	r := run(t, nil, "hostctl", "export", "--work", a, "--to", w.pChain, "--root", filepath.Join(w.p, "certs"), "--out", out)
	if r.Code == 0 || !strings.Contains(r.Stderr, "NOSEND") {
		t.Fatalf("export of a NOSEND guest: %s", r)
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatal("a package was written")
	}
	if !pidAlive(a) {
		t.Fatal("QEMU A should keep running after a refused export")
	}
}

func TestExportNeedsTrustedChain(t *testing.T) {
	w := getWorld(t)
	a := launchRunning(t, w, "0x1")
	out := filepath.Join(t.TempDir(), "guest.pkg")
	// Without --root the emulator's test root is not trusted.
	r := run(t, nil, "hostctl", "export", "--work", a, "--to", w.pChain, "--out", out)
	if r.Code == 0 || !strings.Contains(r.Stderr, "does not verify") {
		t.Fatalf("export to an emulated chain without --root: %s", r)
	}
	// Another platform's test root does not vouch for P either.
	r = run(t, nil, "hostctl", "export", "--work", a, "--to", w.pChain, "--root", filepath.Join(w.y, "certs"), "--out", out)
	if r.Code == 0 {
		t.Fatalf("export verified P's chain under Y's root: %s", r)
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatal("a package was written")
	}
}

// startKill starts hostctl with env, waits until ready() or the timeout, then SIGKILLs it.
func startKill(t *testing.T, env []string, ready func() bool, args ...string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "hostctl"), args...)
	cmd.Env = append(os.Environ(), env...)
	var se bytes.Buffer
	cmd.Stderr = &se
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	end := time.Now().Add(60 * time.Second)
	for !ready() && time.Now().Before(end) {
		select {
		case err := <-done:
			t.Fatalf("hostctl %v ended before it could be killed (%v): %s", args, err, se.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	cmd.Process.Kill()
	<-done
}

func TestKilledMidway(t *testing.T) {
	w := getWorld(t)
	t.Run("export", func(t *testing.T) {
		a := launchRunning(t, w, "0x1")
		dir := t.TempDir()
		out := filepath.Join(dir, "guest.pkg")
		args := []string{"export", "--work", a, "--to", w.pChain, "--root", filepath.Join(w.p, "certs"), "--out", out}
		start := time.Now()
		// The hold keeps hostctl after its first SEND_UPDATE_DATA packet, mid-stream.
		startKill(t, nil, func() bool { return time.Since(start) > 3*time.Second }, append(slices.Clone(args), "--test-hold-after-first-packet", "60s")...)
		ents, _ := os.ReadDir(dir)
		if len(ents) != 0 {
			t.Fatalf("killed export left %d file(s) in the output directory, e.g. %s", len(ents), ents[0].Name())
		}
		r := mustRun(t, "hostctl", args...)
		if !strings.Contains(r.Stderr, "interrupted") {
			t.Logf("rerun did not mention the interrupted export: %s", r)
		}
		f, err := os.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := guestpkg.Verify(f); err != nil {
			t.Fatalf("package of the rerun: %v", err)
		}
	})
	t.Run("receive", func(t *testing.T) {
		wb := track(filepath.Join(t.TempDir(), "B"))
		t.Cleanup(func() { killWork(wb) })
		// Killed while QEMU B waits for its stream.
		startKill(t, nil, func() bool { return pidAlive(wb) }, receiveArgs(w, w.pkg, w.v5, wb, "--test-hold-before-feed", "60s")...)
		b, _ := os.ReadFile(filepath.Join(wb, "qemu.pid"))
		r := run(t, nil, "hostctl", receiveArgs(w, w.pkg, w.v5, wb, "--stop")...)
		if r.Code != 0 || !strings.Contains(r.Stdout, "accepted: version 5") {
			t.Fatalf("rerun of the killed receive: %s", r)
		}
		var old int
		fmt.Sscan(string(b), &old)
		if old > 1 && syscall.Kill(old, 0) == nil && isQEMUOf(old, wb) {
			t.Fatalf("the killed receive's QEMU (pid %d) still runs", old)
		}
	})
}

// TestQEMUKilledMidway kills QEMU (not hostctl) in the middle of an export and a receive.
func TestQEMUKilledMidway(t *testing.T) {
	w := getWorld(t)
	killQEMU := func(dir string) {
		b, _ := os.ReadFile(filepath.Join(dir, "qemu.pid"))
		var pid int
		fmt.Sscan(string(b), &pid)
		if pid > 1 && isQEMUOf(pid, dir) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	t.Run("export", func(t *testing.T) {
		a := launchRunning(t, w, "0x1")
		dir := t.TempDir()
		out := filepath.Join(dir, "guest.pkg")
		go func() { time.Sleep(1500 * time.Millisecond); killQEMU(a) }()
		r := run(t, nil, "hostctl", "export", "--work", a, "--to", w.pChain,
			"--root", filepath.Join(w.p, "certs"), "--out", out, "--test-hold-after-first-packet", "4s")
		if r.Code == 0 {
			t.Fatalf("export succeeded although QEMU A was killed: %s", r)
		}
		t.Logf("export with QEMU A killed: %s", strings.TrimSpace(r.Stderr))
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Fatalf("export with a killed QEMU left %s", ents[0].Name())
		}
	})
	t.Run("receive", func(t *testing.T) {
		wb := track(filepath.Join(t.TempDir(), "B"))
		t.Cleanup(func() { killWork(wb) })
		// Kill QEMU B once hostctl says it is loading (it then holds before feeding it).
		cmd := exec.Command(filepath.Join(binDir, "hostctl"), receiveArgs(w, w.pkg, w.v5, wb, "--test-hold-before-feed", "3s")...)
		pipe, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var se strings.Builder
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			se.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "loading the rebuilt stream") {
				killQEMU(wb)
			}
		}
		err = cmd.Wait()
		r := result{Stderr: se.String()}
		if err == nil {
			t.Fatalf("receive succeeded although QEMU B was killed: %s", r)
		}
		t.Logf("receive with QEMU B killed: %s", strings.TrimSpace(r.Stderr))
		r = run(t, nil, "hostctl", receiveArgs(w, w.pkg, w.v5, wb, "--stop")...)
		if r.Code != 0 || !strings.Contains(r.Stdout, "accepted: version 5") {
			t.Fatalf("rerun after QEMU B was killed: %s", r)
		}
	})
}
