package flow

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sevshim/sevshim/pkg/host"
	"github.com/sevshim/sevshim/pkg/owner"
	"github.com/sevshim/sevshim/pkg/psp"
	"github.com/sevshim/sevshim/pkg/vmm/qemu"
)

// TestExportNamingFailureKeepsGuest: the package's final name is taken (a real EEXIST from
// link(2), created by the hook right before naming). The export must fail without making the
// guest SENT: the launch stays exportable, QEMU A runs again, the file at the name is not
// touched, no temporary file is left, and a second export succeeds with a package that
// receives and boots.
func TestExportNamingFailureKeepsGuest(t *testing.T) {
	w := getWorld(t)
	a := launchRunning(t, w, "0x1")
	dir := t.TempDir()

	pkgDir := filepath.Join(dir, "out")
	os.Mkdir(pkgDir, 0o700)
	out := filepath.Join(pkgDir, "guest.pkg")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	opts := host.ExportOptions{Work: a, Chain: w.pChain, Trust: owner.Trust{RootPath: filepath.Join(w.p, "certs")}, Out: out}
	// Taken by a file, then by a directory: link(2) says EEXIST, rename(2) would replace the
	// file or fail on the directory.
	for _, take := range []struct {
		name string
		do   func() error
		kept func() bool
	}{
		{"file", func() error { return os.WriteFile(out, []byte("someone else's file"), 0o600) },
			func() bool { b, _ := os.ReadFile(out); return string(b) == "someone else's file" }},
		{"directory", func() error { os.Mkdir(out, 0o700); return os.WriteFile(filepath.Join(out, "x"), nil, 0o600) },
			func() bool { _, err := os.Stat(filepath.Join(out, "x")); return err == nil }},
	} {
		bad := opts
		bad.Hooks.BeforePublish = take.do
		_, err := host.Export(ctx, bad)
		if err == nil || !strings.Contains(err.Error(), "naming the package") {
			t.Fatalf("export with its name taken by a %s: %v", take.name, err)
		}
		if !take.kept() {
			t.Fatalf("the %s at the package's name was replaced", take.name)
		}
		if ents, _ := os.ReadDir(pkgDir); len(ents) != 1 {
			t.Fatalf("leftovers next to the package: %v", ents)
		}
		assertStillExportable(ctx, t, w, a)
		os.RemoveAll(out)
	}

	// Once the name is free the same guest exports, and the package is received and boots.
	if _, err := host.Export(ctx, opts); err != nil {
		t.Fatalf("second export: %v", err)
	}
	wb := track(filepath.Join(dir, "B"))
	t.Cleanup(func() { killWork(wb) })
	r := run(t, nil, "hostctl", receiveArgs(w, out, w.v6, wb, "--stop")...)
	if r.Code != 0 || !strings.Contains(r.Stdout, "accepted: version 6") {
		t.Fatalf("receiving the second export: %s", r)
	}
}

// assertStillExportable: launch.json still "running", the PSP guest RUNNING, QEMU A running.
func assertStillExportable(ctx context.Context, t *testing.T, w *world, a string) {
	t.Helper()
	// The old state: launch.json still "running", the PSP guest RUNNING, QEMU A running.
	var ls host.LaunchState
	b, err := os.ReadFile(filepath.Join(a, host.LaunchJSON))
	if err != nil || json.Unmarshal(b, &ls) != nil || ls.Stage != host.StageRunning {
		t.Fatalf("launch.json after the failed export: %s %v", b, err)
	}
	e, err := psp.OpenEmulator(w.o, nil)
	if err != nil {
		t.Fatal(err)
	}
	gs, err := e.GuestStatus(psp.Handle(ls.Handle))
	e.Close()
	if err != nil || gs.State != psp.GuestRunning {
		t.Fatalf("PSP guest state after the failed export: %v %v, want RUNNING", gs, err)
	}
	q, err := qemu.DialQMP(ctx, filepath.Join(a, qemu.QMPSock))
	if err != nil {
		t.Fatal(err)
	}
	var st qemu.StatusInfo
	err = q.ExecuteInto(ctx, "query-status", nil, &st)
	q.Close()
	if err != nil || st.Status != "running" {
		t.Fatalf("QEMU A after the failed export: %q %v, want running", st.Status, err)
	}

}
