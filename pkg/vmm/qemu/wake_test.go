package qemu

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/sevshim/sevshim/pkg/format/console"
	"github.com/sevshim/sevshim/pkg/format/manifest"
	"github.com/sevshim/sevshim/tests/harness/repo"
)

var reHLT = regexp.MustCompile(`\bHLT=1\b`)

// TestWakeSurvivesLostNMI reproduces the shim's check-then-hlt window with real QEMU: the
// shim on A reaches its `cli; hlt` and A is migrated to B (as hostctl exports and receives).
// Before B runs, its gdbstub moves rip from after the hlt back to the `cli` (bytes fa f4),
// which is exactly the state of a CPU stopped after the flag test and before the hlt. The
// first NMI is then taken, sets the flag and returns into `cli; hlt`: it is lost. WakeIncoming
// must still wake the shim (it resends until SEVSHIM WAKE).
func TestWakeSurvivesLostNMI(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	shim := needShim(t, "")
	gdbSock := filepath.Join(dir, "gdb.sock")
	b := readyIntoB(ctx, t, dir, shim, nil, []string{"-chardev", "socket,id=gdb,path=" + gdbSock + ",server=on,wait=off", "-gdb", "chardev:gdb"})

	g, err := DialGDB(gdbSock, nil)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := g.Register(GDBRegRIP)
	if err != nil || len(rb) != 8 {
		t.Fatalf("rip: %x, %v", rb, err)
	}
	rip := binary.LittleEndian.Uint64(rb)
	if code, err := g.ReadMemory(rip-2, 2); err != nil || hex.EncodeToString(code) != "faf4" {
		t.Fatalf("the 2 bytes before rip 0x%x are %x (%v), want fa f4 (cli; hlt): is the CPU in the shim's wait loop?", rip, code, err)
	}
	binary.LittleEndian.PutUint64(rb, rip-2)
	if err := g.SetRegister(GDBRegRIP, rb); err != nil {
		t.Fatalf("setting rip: %v", err)
	}
	if got, err := g.Register(GDBRegRIP); err != nil || !bytes.Equal(got, rb) {
		t.Fatalf("rip reads back %x (%v)", got, err)
	}
	// The connection stays open until the test ends (Close never detaches).
	t.Cleanup(func() { g.Close() })

	if _, err := b.WakeIncoming(ctx, 60*time.Second); err != nil {
		t.Fatalf("WakeIncoming: %v\ndebugcon:\n%s", err, b.Debugcon().Text())
	}
	if _, err := b.Debugcon().WaitLine(ctx, console.WakeRE, 20*time.Second); err != nil {
		t.Fatalf("the shim on B never woke (the first NMI was lost in the window and not resent): %v\ndebugcon:\n%s", err, b.Debugcon().Text())
	}
}

// needShim returns a shim image: images/shim-demo.fd (demo policy) when demo is set, else
// the template.
func needShim(t *testing.T, demo string) string {
	t.Helper()
	needQEMU(t)
	shim, err := repo.ShimTemplate()
	if demo != "" {
		var root string
		root, err = repo.Root()
		shim = filepath.Join(root, "build", "images", demo)
	}
	if err == nil {
		err = repo.RequireFiles(shim)
	}
	if err != nil {
		err = fmt.Errorf("%v: run make shim images first", err)
	}
	repo.SkipOrFail(t, err)
	return shim
}

// readyIntoB boots the shim on A until its CPU halts after READY, migrates A into a new B
// (fw_cfg files fw, extra arguments) and returns B loaded and paused.
func readyIntoB(ctx context.Context, t *testing.T, dir, shim string, fw []FwCfg, extraB []string) *VM {
	t.Helper()
	vars := filepath.Join(dir, "vars.fd")
	copyFile(t, repo.OVMFVars(), vars)
	pf := []Pflash{{Unit: 0, File: shim, Snapshot: true}, {Unit: 1, File: vars, Snapshot: true}}
	a := startT(t, Config{Pflash: pf, Debugcon: true, RebootShutdown: true})
	if _, err := a.Debugcon().WaitLine(ctx, console.ReadyRE, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	// Wait (bounded) until A's CPU is halted in the shim's wait loop.
	for end := time.Now().Add(30 * time.Second); ; {
		out, err := a.Execute(ctx, "human-monitor-command", map[string]any{"command-line": "info registers"})
		if err != nil {
			t.Fatal(err)
		}
		if reHLT.Match(out) {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("A's CPU never halted after READY: %s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	migSock := filepath.Join(dir, "mig.sock")
	b := startT(t, Config{Pflash: pf, FwCfg: fw, Debugcon: true, RebootShutdown: true, Incoming: "unix:" + migSock, ExtraArgs: extraB})
	if err := a.SendTo(ctx, migSock); err != nil {
		t.Fatal(err)
	}
	if st, err := b.WaitIncoming(ctx, 60*time.Second); err != nil || st != "paused" {
		t.Fatalf("B after loading: %q, %v", st, err)
	}
	return b
}

// TestExtraNMIsAfterWakeHarmless: NMIs that arrive after WAKE (a resend racing the answer)
// only set the flag again. The shim is hit with NMIs from WAKE until it has flashed the BIOS
// and still verifies, flashes and hands off, with no exception (E090) or other refusal.
func TestExtraNMIsAfterWakeHarmless(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	shim := needShim(t, "shim-demo.fd")
	root, _ := repo.Root()
	man, img, _, err := manifest.ReadBundle(filepath.Join(root, "build", "images", "v5.bundle"))
	if err != nil {
		t.Fatal(err)
	}
	mf, bf, vf := filepath.Join(dir, "manifest"), filepath.Join(dir, "bios.fd"), filepath.Join(dir, "fwvars.fd")
	os.WriteFile(mf, man, 0o600)
	os.WriteFile(bf, img, 0o600)
	copyFile(t, repo.OVMFVars(), vf)
	b := readyIntoB(ctx, t, dir, shim, ShimFiles(mf, bf, vf), nil)
	if _, err := b.WakeIncoming(ctx, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	reStop := regexp.MustCompile(`^SEVSHIM (FLASHED .*|ERROR .*|HALT)$`)
	sent := 0
	for end := time.Now().Add(90 * time.Second); ; sent++ {
		done := false
		for _, l := range b.Debugcon().CompleteLines() {
			if reStop.MatchString(l.Text) {
				done = true
			}
		}
		if done {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("no FLASHED line:\n%s", b.Debugcon().Text())
		}
		if err := b.NMI(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := b.Debugcon().WaitLine(ctx, console.HandoffRE, 60*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, b.Debugcon().Text())
	}
	text := b.Debugcon().Text()
	if regexp.MustCompile(`(?m)^SEVSHIM (ERROR|EXCEPTION|HALT)`).MatchString(text) {
		t.Fatalf("the shim failed under extra NMIs:\n%s", text)
	}
	if !regexp.MustCompile(`(?m)^SEVSHIM VERIFIED version=5 `).MatchString(text) {
		t.Fatalf("no VERIFIED line:\n%s", text)
	}
	if sent < 10 {
		t.Fatalf("only %d NMIs reached the shim between WAKE and FLASHED; the test proves nothing", sent)
	}
	t.Logf("%d NMIs sent between WAKE and FLASHED", sent)
}
