package libvirt

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	lv "github.com/sevshim/sevshim/pkg/vmm/libvirt"
)

// SIGKILL of hostctl while libvirt restores the domain: no persistent (half-defined)
// domain, no stream on disk (no FIFO, no save image, no file holding a QEMU stream) in the
// work directory or the domain's files, and the same receive run again succeeds (it ends
// whatever the killed one left).
func TestKilledWhileRestoring(t *testing.T) {
	w := getWorld(t)
	wb := w.workB(t)
	const name = "t-kill"
	const dom = lv.DomainPrefix + name
	cmd := exec.Command(filepath.Join(w.cli.Bin, "hostctl"), "receive", "--state", w.P, "--package", w.pkg,
		"--bios", w.v6, "--work", wb, "--libvirt", w.uri, "--name", name)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	l := connect(t, w.uri)
	killed := false
	for end := time.Now().Add(3 * time.Minute); !killed && time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		select {
		case err := <-done:
			t.Fatalf("receive ended before its domain appeared (%v): %s", err, out.String())
		default:
		}
		if _, err := l.DomainLookupByName(dom); err == nil {
			cmd.Process.Kill()
			killed = true
		}
	}
	if !killed {
		cmd.Process.Kill()
		t.Fatal("the domain did not appear within 3 minutes")
	}
	if err := <-done; err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("hostctl was not killed midway (%v): %s", err, out.String())
	}
	// Whatever libvirt still has of it is transient: it ends with its QEMU (a failed load) or
	// runs paused until the next receive or hostctl stop ends it; nothing is defined.
	if d, err := l.DomainLookupByName(dom); err == nil {
		if p, _ := l.DomainIsPersistent(d); p != 0 {
			t.Fatalf("domain %s is defined (persistent) after the kill", dom)
		}
	}
	for _, root := range []string{wb, filepath.Join(lv.DefaultFilesDir, dom)} {
		filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return nil
			}
			if e.Type()&fs.ModeNamedPipe != 0 {
				t.Errorf("FIFO %s left after the kill", p)
				return nil
			}
			if head := fileHead(p, 16); bytes.HasPrefix(head, []byte("LibvirtQemudSave")) || bytes.HasPrefix(head, []byte("QEVM")) {
				t.Errorf("%s holds a save image or QEMU stream", p)
			}
			return nil
		})
	}
	if _, err := os.Stat(filepath.Join(lv.DefaultManagedSaveDir, dom+".save")); err == nil {
		t.Error("a managed-save image exists after the kill")
	}
	r := w.receive(t, w.v6, wb, name, "--stop")
	if r.Code != 0 || !strings.Contains(r.Stdout, "accepted: version 6, signer ") {
		t.Fatalf("the receive after the kill: %s", r)
	}
}

func fileHead(p string, n int) []byte {
	f, err := os.Open(p)
	if err != nil {
		return nil
	}
	defer f.Close()
	b := make([]byte, n)
	k, _ := f.Read(b)
	return b[:k]
}
