package flow

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sevshim/sevshim/pkg/format/guestpkg"
	"github.com/sevshim/sevshim/pkg/format/shimerr"
	"github.com/sevshim/sevshim/pkg/host"
)

// Data and state: nothing lost, nothing created by accident (docs/hostctl.md).

// guestHandles lists the guest contexts of a platform (hostctl platform guests --json).
func guestHandles(t *testing.T, state string) []uint32 { return cli.GuestHandles(t, state) }

func launchState(t *testing.T, work string) host.LaunchState {
	t.Helper()
	return workRecord[host.LaunchState](t, work, host.LaunchJSON)
}

func receiveState(t *testing.T, work string) host.ReceiveState {
	t.Helper()
	return workRecord[host.ReceiveState](t, work, host.ReceiveJSON)
}

// workRecord reads the JSON record name of the work directory work.
func workRecord[T any](t *testing.T, work, name string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(readFile(filepath.Join(work, name))), &v); err != nil {
		t.Fatalf("%s: %v", work, err)
	}
	return v
}

func lastLine(s string) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return ls[len(ls)-1]
}

// TestExportNeverReplacesUnasked: an existing --out (maybe the only copy of an exported
// guest) is refused and left as it was; --force replaces it atomically with the new
// package; the SENT context is released; launching into the exported work dir is refused.
func TestExportNeverReplacesUnasked(t *testing.T) {
	w := getWorld(t)
	a := launchRunning(t, w, "0x1")
	out := filepath.Join(t.TempDir(), "guest.pkg")
	old := []byte("an earlier guest's package\n")
	if err := os.WriteFile(out, old, 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"export", "--work", a, "--to", w.pChain, "--root", filepath.Join(w.p, "certs"), "--out", out}
	r := run(t, nil, "hostctl", args...)
	want := "hostctl: --out " + out + " already exists (it may be the only copy of an exported guest): choose another name, or pass --force to replace it"
	if r.Code != 1 || lastLine(r.Stderr) != want {
		t.Fatalf("export onto an existing file: want exit 1 and %q: %s", want, r)
	}
	if b, _ := os.ReadFile(out); !bytes.Equal(b, old) {
		t.Fatal("the refused export changed the existing file")
	}
	if ls := launchState(t, a); ls.Stage != host.StageRunning {
		t.Fatalf("after the refusal the launch is %q", ls.Stage)
	}
	h := launchState(t, a).Handle
	if !slices.Contains(guestHandles(t, w.o), h) {
		t.Fatalf("guest context %d of the running guest is missing", h)
	}
	r = mustRun(t, "hostctl", append(args, "--force")...)
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	_, err = guestpkg.Verify(f)
	f.Close()
	if err != nil {
		t.Fatalf("export --force: the new package does not verify: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Dir(out)); len(ents) != 1 {
		t.Fatalf("export --force left %d files next to the package", len(ents))
	}
	if ls := launchState(t, a); ls.Stage != host.StageExported || ls.Package != out {
		t.Fatalf("after export --force: %+v", ls)
	}
	if slices.Contains(guestHandles(t, w.o), h) {
		t.Fatalf("the exported (SENT) guest context %d was not released", h)
	}
	sess := filepath.Join(filepath.Dir(a), "sess")
	r = run(t, nil, "hostctl", "launch", "--state", w.o, "--image", w.shim, "--session", sess, "--work", a)
	if r.Code != 1 || !strings.Contains(r.Stderr, "holds a guest that was exported to "+out+": refused") {
		t.Fatalf("launch into an exported work directory: %s", r)
	}
	if ls := launchState(t, a); ls.Stage != host.StageExported || ls.Package != out {
		t.Fatalf("the refused launch changed launch.json: %+v", ls)
	}
}

// TestGuestContextsReleased: every way a VM ends releases its guest context: a shim
// refusal, hostctl stop of a received guest, hostctl stop of a launched guest.
func TestGuestContextsReleased(t *testing.T) {
	w := getWorld(t)
	before := guestHandles(t, w.p)
	wb := track(filepath.Join(t.TempDir(), "B"))
	t.Cleanup(func() { killWork(wb) })
	r := run(t, nil, "hostctl", receiveArgs(w, w.pkg, w.v4, wb)...)
	if r.Code != 3 || !strings.Contains(r.Stdout, "refused: E034 version-below-floor") {
		t.Fatalf("want exit 3 and refused: E034: %s", r)
	}
	assertShimRefusal(t, wb, shimerr.VersionBelowFloor, false)
	if got := guestHandles(t, w.p); !slices.Equal(got, before) {
		t.Fatalf("a shim refusal left guest contexts: before %v, after %v", before, got)
	}
	wb2 := track(filepath.Join(t.TempDir(), "B2"))
	t.Cleanup(func() { killWork(wb2) })
	mustRun(t, "hostctl", receiveArgs(w, w.pkg, w.v6, wb2)...)
	rs := receiveState(t, wb2)
	if got := guestHandles(t, w.p); rs.Handle == 0 || !slices.Equal(got, append(slices.Clone(before), rs.Handle)) {
		t.Fatalf("a running received guest: receive.json handle %d, contexts %v (before %v)", rs.Handle, got, before)
	}
	mustRun(t, "hostctl", "stop", "--work", wb2)
	if got := guestHandles(t, w.p); !slices.Equal(got, before) {
		t.Fatalf("hostctl stop of a received guest left its context: before %v, after %v", before, got)
	}
	if rs := receiveState(t, wb2); rs.Stage != "stopped" || rs.Handle != 0 {
		t.Fatalf("receive.json after stop: %+v", rs)
	}
	a := launchRunning(t, w, "0x1")
	h := launchState(t, a).Handle
	if !slices.Contains(guestHandles(t, w.o), h) {
		t.Fatalf("launched guest context %d missing", h)
	}
	mustRun(t, "hostctl", "stop", "--work", a)
	if slices.Contains(guestHandles(t, w.o), h) {
		t.Fatalf("hostctl stop of a launched guest left its context %d", h)
	}
	if ls := launchState(t, a); ls.Stage != host.StageStopped {
		t.Fatalf("launch.json after stop: %q", ls.Stage)
	}
	if r := run(t, nil, "hostctl", "export", "--work", a, "--to", w.pChain, "--root", filepath.Join(w.p, "certs"), "--out", filepath.Join(t.TempDir(), "g.pkg")); r.Code != 1 || !strings.Contains(r.Stderr, "ended with hostctl stop") {
		t.Fatalf("export of a stopped guest: %s", r)
	}
}

// TestReceiveCheapChecksFirst: a var store of the wrong size is refused before any PSP or
// QEMU work, and the refused receive leaves no work directory.
func TestReceiveCheapChecksFirst(t *testing.T) {
	w := getWorld(t)
	before := guestHandles(t, w.p)
	small := filepath.Join(t.TempDir(), "small.vars")
	if err := os.WriteFile(small, make([]byte, 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	wb := track(filepath.Join(t.TempDir(), "B"))
	t.Cleanup(func() { killWork(wb) })
	r := run(t, nil, "hostctl", receiveArgs(w, w.pkg, w.v5, wb, "--vars", small)...)
	want := fmt.Sprintf("hostctl: vars file %s is 4096 bytes; this guest's pflash1 is 540672 bytes (nothing was done)", small)
	if r.Code != 1 || lastLine(r.Stderr) != want {
		t.Fatalf("want exit 1 and %q: %s", want, r)
	}
	if strings.Contains(r.Stderr, "package verified") {
		t.Fatalf("the package was received before the var store was checked: %s", r)
	}
	if _, err := os.Lstat(wb); err == nil {
		t.Fatalf("the refused receive left its work directory %s", wb)
	}
	if got := guestHandles(t, w.p); !slices.Equal(got, before) {
		t.Fatalf("the refused receive left guest contexts: before %v, after %v", before, got)
	}
	// A receive refused by the PSP (a package for another platform) leaves nothing either.
	r = run(t, nil, "hostctl", "receive", "--state", w.y, "--package", w.pkg, "--bios", w.v5, "--work", wb)
	if r.Code != 3 || !strings.Contains(r.Stderr, "exported for another platform's PDH") {
		t.Fatalf("receive on the wrong platform: %s", r)
	}
	if _, err := os.Lstat(wb); err == nil {
		t.Fatalf("the refused receive left its work directory %s", wb)
	}
}

// signalRun starts hostctl with env, sends SIGINT once ready() holds, and returns its result
// (bounded: a hostctl that does not end within 90 s after the signal is killed).
func signalRun(t *testing.T, env []string, ready func() bool, args ...string) result {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "hostctl"), args...)
	cmd.Env = append(os.Environ(), env...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	cmd.WaitDelay = 10 * time.Second // a child holding the output pipes cannot hang the test
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	exited := false
	defer func() {
		if !exited {
			cmd.Process.Kill()
			<-done
		}
	}()
	end := time.Now().Add(60 * time.Second)
	for !ready() {
		if time.Now().After(end) {
			t.Fatalf("hostctl %v: not ready within 60 s: %s", args, se.String())
		}
		select {
		case err := <-done:
			exited = true
			t.Fatalf("hostctl %v ended before the signal (%v): %s", args, err, se.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-done:
		exited = true
	case <-time.After(90 * time.Second):
		t.Fatalf("hostctl %v did not end within 90 s of SIGINT: %s", args, se.String())
	}
	return result{Stdout: so.String(), Stderr: se.String(), Code: cmd.ProcessState.ExitCode()}
}

// TestInterrupted: SIGINT in the middle of an export and a receive says what happened,
// exits 130, and leaves the guest and the state files as it says.
func TestInterrupted(t *testing.T) {
	w := getWorld(t)
	t.Run("export", func(t *testing.T) {
		a := launchRunning(t, w, "0x1")
		dir := t.TempDir()
		out := filepath.Join(dir, "guest.pkg")
		args := []string{"export", "--work", a, "--to", w.pChain, "--root", filepath.Join(w.p, "certs"), "--out", out}
		start := time.Now()
		// The hold keeps hostctl after its first SEND_UPDATE_DATA packet, mid-stream.
		r := signalRun(t, nil, func() bool { return time.Since(start) > 5*time.Second }, append(slices.Clone(args), "--test-hold-after-first-packet", "60s")...)
		if want := "hostctl: interrupted: export cancelled, guest resumed, no package written"; r.Code != 130 || lastLine(r.Stderr) != want {
			t.Fatalf("want exit 130 and %q: %s", want, r)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Fatalf("the interrupted export left %s", ents[0].Name())
		}
		if ls := launchState(t, a); ls.Stage != host.StageRunning {
			t.Fatalf("launch.json after the interrupted export: %q", ls.Stage)
		}
		// "guest resumed": it runs and exports.
		mustRun(t, "hostctl", args...)
		f, err := os.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := guestpkg.Verify(f); err != nil {
			t.Fatalf("export after the interrupted one: %v", err)
		}
	})
	t.Run("receive", func(t *testing.T) {
		before := guestHandles(t, w.p)
		wb := track(filepath.Join(t.TempDir(), "B"))
		t.Cleanup(func() { killWork(wb) })
		// Interrupted while QEMU B waits for its stream.
		r := signalRun(t, nil, func() bool { return pidAlive(wb) }, receiveArgs(w, w.pkg, w.v5, wb, "--test-hold-before-feed", "60s")...)
		want := "hostctl: interrupted: receive cancelled: QEMU B was stopped, the guest context was released, the package is unchanged (receive it again)"
		if r.Code != 130 || lastLine(r.Stderr) != want {
			t.Fatalf("want exit 130 and %q: %s", want, r)
		}
		if pidAlive(wb) {
			t.Fatal("QEMU B still runs after the interrupted receive")
		}
		if rs := receiveState(t, wb); rs.Stage != "interrupted" || rs.Pid != 0 || rs.Handle != 0 {
			t.Fatalf("receive.json after the interruption: %+v", rs)
		}
		if got := guestHandles(t, w.p); !slices.Equal(got, before) {
			t.Fatalf("the interrupted receive left guest contexts: before %v, after %v", before, got)
		}
	})
}
