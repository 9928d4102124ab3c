package host

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sevshim/sevshim/pkg/vmm"
	"github.com/sevshim/sevshim/pkg/vmm/qemu"
)

const nobodyUID = 65534

// needRoot: these tests create files of another user (chown, runuser).
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("SEVSHIM_ALLOW_SKIP") == "1" {
			t.Skip("SEVSHIM_ALLOW_SKIP=1: needs root to act as a second user")
		}
		t.Fatal("these tests act as a second user (nobody) and need root (set SEVSHIM_ALLOW_SKIP=1 to skip deliberately)")
	}
}

// privTemp is a t.TempDir with mode 0700.
func privTemp(t *testing.T) string {
	d := t.TempDir()
	if err := os.Chmod(d, 0o700); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestPrivateDir(t *testing.T) {
	needRoot(t)
	base := privTemp(t)
	j := func(n string) string { return filepath.Join(base, n) }
	mk := func(n string, mode os.FileMode, uid int) string {
		p := j(n)
		if err := os.Mkdir(p, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		if uid >= 0 {
			if err := os.Chown(p, uid, -1); err != nil {
				t.Fatal(err)
			}
		}
		return p
	}
	foreign := mk("foreign", 0o700, nobodyUID)
	open := mk("open", 0o777, -1)
	groupRead := mk("group-read", 0o750, -1)
	good := mk("good", 0o700, -1)
	shared := mk("shared", 0o777, -1) // not sticky: anyone may rename what is in it
	sticky := mk("sticky", 0o777|os.ModeSticky, -1)
	os.Symlink(good, j("link"))
	os.WriteFile(j("file"), nil, 0o600)

	for _, c := range []struct {
		dir  string
		want string // "" = accepted
	}{
		{foreign, "is owned by uid 65534"},
		{open, "has mode 0777"},
		{groupRead, "has mode 0750"},
		{j("link"), "is a symbolic link"},
		{j("file"), "is not a directory"},
		{filepath.Join(shared, "new"), "its parent " + shared + " has mode 0777"},
		{good, ""},
		{j("missing/deeper"), ""},
		{filepath.Join(sticky, "new"), ""},
	} {
		got, err := privateDir("--work", c.dir)
		if c.want == "" {
			if err != nil {
				t.Errorf("%s: %v", c.dir, err)
				continue
			}
			st, err := os.Lstat(got)
			if err != nil || !st.IsDir() || st.Mode().Perm() != 0o700 {
				t.Errorf("%s: created %v, %v; want a 0700 directory", c.dir, st.Mode(), err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "--work "+c.dir) {
			t.Errorf("%s: error %v; want one naming the directory and %q", c.dir, err, c.want)
		}
	}
	// Refused directories were left as they were.
	if ents, _ := os.ReadDir(foreign); len(ents) != 0 {
		t.Errorf("hostctl wrote into the refused directory: %v", ents)
	}
	if _, err := os.Lstat(filepath.Join(shared, "new")); err == nil {
		t.Error("a directory was created under a parent others can write")
	}
}

// listenAsNobody starts a unix socket listener owned by nobody (another uid) and returns its
// path; the process ends with the test.
func listenAsNobody(t *testing.T) string {
	t.Helper()
	py := "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		t.Fatalf("%s is needed to run a listener as another user: %v", py, err)
	}
	d := t.TempDir()
	tmp := filepath.Clean(os.TempDir())
	if !strings.HasPrefix(d, tmp+"/") {
		t.Fatalf("%s is not under %s", d, tmp)
	}
	for p := d; p != tmp; p = filepath.Dir(p) { // searchable for nobody, up to $TMPDIR only
		os.Chmod(p, 0o755)
	}
	if err := os.Chown(d, nobodyUID, -1); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(d, "qmp.sock")
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "runuser", "-u", "nobody", "--", py, "-c",
		"import socket,sys,time\ns=socket.socket(socket.AF_UNIX)\ns.bind(sys.argv[1])\ns.listen(4)\nprint('up',flush=True)\ntime.sleep(60)\n", sock)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	buf := make([]byte, 3)
	done := make(chan error, 1)
	go func() { _, err := out.Read(buf); done <- err }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the listener as nobody did not start")
	}
	return sock
}

func TestPeerCheck(t *testing.T) {
	needRoot(t)
	// Our own listener: the right uid; the pid must be the one asked for.
	sock := filepath.Join(privTemp(t), "own.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	ctx := context.Background()
	c, err := vmm.DialPeer(ctx, sock, os.Getpid(), 5*time.Second)
	if err != nil {
		t.Fatalf("own listener refused: %v", err)
	}
	c.Close()
	if _, err := vmm.DialPeer(ctx, sock, os.Getpid()+1, 5*time.Second); err == nil || !strings.Contains(err.Error(), "not by the process of this work directory that hostctl started") {
		t.Fatalf("a listener of another pid: %v", err)
	}

	// A listener of another user (nobody): refused whatever pid is expected.
	other := listenAsNobody(t)
	if _, err := vmm.DialPeer(ctx, other, os.Getpid(), 5*time.Second); err == nil || !strings.Contains(err.Error(), "uid 65534") {
		t.Fatalf("a listener of nobody: %v", err)
	}
	// The same through QMP's dial (what the QEMU backend's Start and Attach use).
	if _, err := qemu.DialQMPChecked(ctx, other, func(c *net.UnixConn) error { return vmm.CheckPeer(c, other, os.Getpid()) }); err == nil || !strings.Contains(err.Error(), "uid 65534") {
		t.Fatalf("QMP to a listener of nobody: %v", err)
	}
}
