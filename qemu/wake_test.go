package qemu

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sevshim/sevshim/bios"
	"github.com/sevshim/sevshim/internal/repo"
)

// rsp is the least of GDB's remote serial protocol needed to read and set a register of a
// stopped QEMU: one packet at a time, acks checked.
type rsp struct {
	c net.Conn
	r *bufio.Reader
}

func (g *rsp) cmd(t *testing.T, payload string) string {
	t.Helper()
	var sum byte
	for i := 0; i < len(payload); i++ {
		sum += payload[i]
	}
	if _, err := fmt.Fprintf(g.c, "$%s#%02x", payload, sum); err != nil {
		t.Fatal(err)
	}
	for {
		b, err := g.r.ReadByte()
		if err != nil {
			t.Fatalf("gdbstub %q: %v", payload, err)
		}
		if b == '+' {
			break
		}
		if b != '$' {
			t.Fatalf("gdbstub %q: byte %q instead of an ack", payload, b)
		}
		g.r.UnreadByte()
		g.reply(t) // a stop notification
	}
	return g.reply(t)
}

func (g *rsp) reply(t *testing.T) string {
	t.Helper()
	if _, err := g.r.ReadString('$'); err != nil {
		t.Fatal(err)
	}
	s, err := g.r.ReadString('#')
	if err != nil {
		t.Fatal(err)
	}
	cs := make([]byte, 2)
	if _, err := g.r.Read(cs[:1]); err != nil {
		t.Fatal(err)
	}
	if _, err := g.r.Read(cs[1:]); err != nil {
		t.Fatal(err)
	}
	g.c.Write([]byte("+"))
	return strings.TrimSuffix(s, "#")
}

const gdbRIP = 16 // amd64 register number of rip in GDB's numbering

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

	c, err := net.DialTimeout("unix", gdbSock, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	g := &rsp{c: c, r: bufio.NewReader(c)}
	// QEMU's gdbstub answers p/P only to a client that read the target description.
	if r := g.cmd(t, "qXfer:features:read:target.xml:0,ffb"); r == "" {
		t.Fatal("gdbstub has no target description")
	}
	ripHex := g.cmd(t, fmt.Sprintf("p%x", gdbRIP))
	rb, err := hex.DecodeString(ripHex)
	if err != nil || len(rb) != 8 {
		t.Fatalf("rip reply %q", ripHex)
	}
	rip := binary.LittleEndian.Uint64(rb)
	if code := g.cmd(t, fmt.Sprintf("m%x,2", rip-2)); code != "faf4" {
		t.Fatalf("the 2 bytes before rip 0x%x are %q, want faf4 (cli; hlt): is the CPU in the shim's wait loop?", rip, code)
	}
	binary.LittleEndian.PutUint64(rb, rip-2)
	if r := g.cmd(t, fmt.Sprintf("P%x=%s", gdbRIP, hex.EncodeToString(rb))); r != "OK" {
		t.Fatalf("setting rip: %q", r)
	}
	if got := g.cmd(t, fmt.Sprintf("p%x", gdbRIP)); got != hex.EncodeToString(rb) {
		t.Fatalf("rip reads back %s", got)
	}
	// Never 'D' (QEMU resumes on detach); the connection stays open until the test ends.
	t.Cleanup(func() { c.Close() })

	if _, err := b.WakeIncoming(ctx, 60*time.Second); err != nil {
		t.Fatalf("WakeIncoming: %v\ndebugcon:\n%s", err, b.Debugcon().Text())
	}
	if _, err := b.Debugcon().WaitLine(ctx, regexp.MustCompile(`^SEVSHIM WAKE$`), 20*time.Second); err != nil {
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
		if os.Getenv("SEVSHIM_ALLOW_SKIP") == "1" {
			t.Skipf("SEVSHIM_ALLOW_SKIP=1: %v", err)
		}
		t.Fatalf("%v: run make shim images first", err)
	}
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
	if _, err := a.Debugcon().WaitLine(ctx, regexp.MustCompile(`^SEVSHIM READY$`), 60*time.Second); err != nil {
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
	man, img, _, err := bios.ReadBundle(filepath.Join(root, "build", "images", "v5.bundle"))
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
		if err := b.InjectNMI(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := b.Debugcon().WaitLine(ctx, regexp.MustCompile(`^SEVSHIM HANDOFF$`), 60*time.Second); err != nil {
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

func TestIsShimAnswer(t *testing.T) {
	for _, c := range []struct {
		line string
		want bool
	}{
		{"SEVSHIM WAKE", true},
		{"SEVSHIM ERROR E090 cpu-exception", true},
		{"SEVSHIM ERROR E034 version-below-floor", true},
		{"SEVSHIM READY", false},
		{" SEVSHIM WAKE", false},
		{"SEVSHIM WAKE ", false},
		{`SEVSHIM VERIFIED version=6 signer=0011223344556677 name="SEVSHIM WAKE"`, false},
		{"x SEVSHIM ERROR E090 cpu-exception", false},
	} {
		if got := IsShimAnswer(c.line); got != c.want {
			t.Errorf("IsShimAnswer(%q) = %v", c.line, got)
		}
	}
}

// TestWakeShimBounded: the resend loop stops at the answer and gives up after Attempts.
func TestWakeShimBounded(t *testing.T) {
	ctx := context.Background()
	sent := 0
	inject := func(context.Context) error { sent++; return nil }
	n, err := WakeShim(ctx, Wake{Attempts: 5, Interval: 20 * time.Millisecond}, inject, func() (bool, error) { return sent >= 3, nil })
	if err != nil || n != 3 || sent != 3 {
		t.Fatalf("answered at the 3rd NMI: n=%d sent=%d err=%v", n, sent, err)
	}
	sent = 0
	n, err = WakeShim(ctx, Wake{Attempts: 4, Interval: 10 * time.Millisecond}, inject, func() (bool, error) { return false, nil })
	if !errors.Is(err, ErrNoWake) || n != 4 || sent != 4 {
		t.Fatalf("never answered: n=%d sent=%d err=%v", n, sent, err)
	}
	sent = 0
	n, err = WakeShim(ctx, Wake{Attempts: 4, Interval: 10 * time.Millisecond}, inject, func() (bool, error) { return true, nil })
	if err != nil || n != 0 {
		t.Fatalf("already answered: n=%d err=%v", n, err)
	}
}
