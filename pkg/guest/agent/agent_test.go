package agent

import (
	"bufio"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/linuxudstpm"

	"github.com/sevshim/sevshim/pkg/attest"
	"github.com/sevshim/sevshim/pkg/format/agentproto"
	"github.com/sevshim/sevshim/pkg/format/tpmevent"
	"github.com/sevshim/sevshim/tests/harness/repo"
)

// startSwtpm runs a real swtpm (TPM 2.0, started and cleared by itself) on a unix socket for
// the test and returns an opener of its command channel; it is killed when the test ends.
func startSwtpm(t *testing.T) func() (transport.TPMCloser, error) {
	t.Helper()
	bin, err := exec.LookPath("swtpm")
	if err != nil {
		repo.SkipOrFail(t, fmt.Errorf("swtpm not found: run scripts/setup.sh"))
	}
	dir := t.TempDir()
	sock := filepath.Join(dir, "tpm.sock")
	cmd := exec.Command(bin, "socket", "--tpm2", "--tpmstate", "dir="+dir,
		"--server", "type=unixio,path="+sock, "--ctrl", "type=unixio,path="+filepath.Join(dir, "ctrl.sock"),
		"--flags", "not-need-init,startup-clear", "--log", "file="+filepath.Join(dir, "log"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("unix", sock)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("swtpm did not open %s: %v", sock, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return func() (transport.TPMCloser, error) { return linuxudstpm.Open(sock) }
}

// testEvent is an event as the shim records it (docs/formats.md section 7).
func testEvent() []byte {
	return (&tpmevent.Event{Layout: 1, BIOSVersion: 5}).Marshal()
}

// extend records event on pcr as the shim does (TPM2_PCR_Event: every bank extended with the
// event's digest).
func extend(t *testing.T, open func() (transport.TPMCloser, error), pcr uint, event []byte) {
	t.Helper()
	tpm, err := open()
	if err != nil {
		t.Fatal(err)
	}
	defer tpm.Close()
	if _, err := (tpm2.PCREvent{PCRHandle: tpm2.AuthHandle{Handle: tpm2.TPMHandle(pcr), Auth: tpm2.PasswordAuth(nil)},
		EventData: tpm2.TPM2BEvent{Buffer: event}}).Execute(tpm); err != nil {
		t.Fatal(err)
	}
}

// host is the host's end of a port served by an agent.
type host struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
	done chan error
}

func serve(t *testing.T, a *Agent) *host {
	guest, hostEnd := net.Pipe()
	h := &host{t: t, conn: hostEnd, r: bufio.NewReader(hostEnd), done: make(chan error, 1)}
	go func() { h.done <- a.Serve(guest); guest.Close() }()
	t.Cleanup(func() { hostEnd.Close() })
	return h
}

func (h *host) send(line string) {
	h.t.Helper()
	h.conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(h.conn, line); err != nil {
		h.t.Fatal(err)
	}
}

func (h *host) recv() *agentproto.Message {
	h.t.Helper()
	h.conn.SetReadDeadline(time.Now().Add(60 * time.Second))
	m, err := agentproto.ReadMessage(h.r)
	if err != nil {
		h.t.Fatal(err)
	}
	return m
}

func nonceLine(n []byte) string {
	b, _ := (&agentproto.Message{Verb: agentproto.VerbNonce, Nonce: n}).Marshal()
	return string(b)
}

// TestServeQuotes: READY, then a REPORT whose evidence verifies against the recorded event
// with the host's nonce (and fails against another event); a second nonce is served too.
func TestServeQuotes(t *testing.T) {
	open := startSwtpm(t)
	ev := testEvent()
	extend(t, open, 15, ev)
	var log strings.Builder
	h := serve(t, &Agent{OpenTPM: open, SecretPath: filepath.Join(t.TempDir(), "none"), Wait: time.Minute, Log: &log})
	if m := h.recv(); m.Verb != agentproto.VerbReady || m.Version != agentproto.Version {
		t.Fatalf("first line %+v, want READY", m)
	}
	for i := 0; i < 2; i++ {
		nonce := make([]byte, 32)
		rand.Read(nonce)
		h.send(nonceLine(nonce))
		m := h.recv()
		if m.Verb != agentproto.VerbReport {
			t.Fatalf("reply %+v, want REPORT", m)
		}
		if m.Report.CocoSecret {
			t.Errorf("report says the coco secret is present")
		}
		var got attest.Evidence
		if err := got.UnmarshalJSON(m.Report.Evidence); err != nil {
			t.Fatal(err)
		}
		if err := attest.Verify(&got, ev); err != nil {
			t.Errorf("evidence does not verify: %v", err)
		}
		if string(got.Nonce) != string(nonce) {
			t.Errorf("evidence nonce %x, want %x", got.Nonce, nonce)
		}
		if err := attest.Verify(&got, (&tpmevent.Event{Layout: 1, BIOSVersion: 6}).Marshal()); err == nil {
			t.Errorf("evidence verifies against another event")
		}
	}
	h.conn.Close()
	if err := <-h.done; err == nil {
		t.Errorf("Serve returned nil after the port closed")
	}
	if !strings.Contains(log.String(), "sevshim-agent: quoted PCR 15") {
		t.Errorf("log %q has no quote line", log.String())
	}
}

// TestAnswerCocoSecret: the report says whether the secret's securityfs file exists, and
// carries the event log file's bytes (none when it is missing).
func TestAnswerCocoSecret(t *testing.T) {
	open := startSwtpm(t)
	dir := t.TempDir()
	secret, log := filepath.Join(dir, "coco"), filepath.Join(dir, "binary_bios_measurements")
	os.Mkdir(secret, 0o700)
	os.WriteFile(log, []byte("tcg log"), 0o600)
	m := (&Agent{OpenTPM: open, SecretPath: secret, EventLogPath: log}).Answer([]byte("0123456789abcdef"))
	if m.Verb != agentproto.VerbReport || !m.Report.CocoSecret || string(m.Report.EventLog) != "tcg log" {
		t.Fatalf("answer %+v, want a REPORT with the coco secret present and the event log", m)
	}
	m = (&Agent{OpenTPM: open, SecretPath: log + ".none", EventLogPath: log + ".none"}).Answer([]byte("0123456789abcdef"))
	if m.Verb != agentproto.VerbReport || m.Report.CocoSecret || m.Report.EventLog != nil {
		t.Fatalf("answer %+v, want a REPORT without secret or event log", m)
	}
}

// TestServeNoTPM: without a TPM the nonce gets ERROR no-tpm, and the agent keeps serving.
func TestServeNoTPM(t *testing.T) {
	noTPM := func() (transport.TPMCloser, error) { return nil, os.ErrNotExist }
	h := serve(t, &Agent{OpenTPM: noTPM, Wait: time.Minute, Log: io.Discard})
	h.recv() // READY
	for i := 0; i < 2; i++ {
		h.send(nonceLine([]byte("0123456789abcdef")))
		if m := h.recv(); m.Verb != agentproto.VerbError || m.Code != agentproto.ErrNoTPM {
			t.Fatalf("reply %+v, want ERROR no-tpm", m)
		}
	}
}

// TestServeGarbage: every line that is not a valid NONCE gets ERROR bad-request and the agent
// still answers the next valid one.
func TestServeGarbage(t *testing.T) {
	open := startSwtpm(t)
	h := serve(t, &Agent{OpenTPM: open, Wait: time.Minute, Log: io.Discard})
	h.recv() // READY
	for _, g := range []string{"hello\n", "SEVSHIM-AGENT NONCE 00\n", "SEVSHIM-AGENT READY 1\n", "\x00\xff\n",
		strings.Repeat("A", agentproto.MaxLine+1) + "\n"} {
		h.send(g)
		if m := h.recv(); m.Verb != agentproto.VerbError || m.Code != agentproto.ErrBadRequest {
			t.Fatalf("reply to %.40q: %+v, want ERROR bad-request", g, m)
		}
	}
	h.send(nonceLine([]byte("0123456789abcdef")))
	if m := h.recv(); m.Verb != agentproto.VerbReport {
		t.Fatalf("reply %+v, want REPORT", m)
	}
}

// TestServeNoNonce: when no nonce comes the wait ends with ErrNoNonce and says so in the log;
// garbage does not extend it.
func TestServeNoNonce(t *testing.T) {
	var log strings.Builder
	h := serve(t, &Agent{OpenTPM: startSwtpm(t), Wait: 300 * time.Millisecond, Log: &log})
	h.recv() // READY
	h.send("garbage\n")
	h.recv()
	select {
	case err := <-h.done:
		if !errors.Is(err, ErrNoNonce) {
			t.Fatalf("Serve: %v, want ErrNoNonce", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Serve did not end its bounded wait")
	}
	if !strings.Contains(log.String(), "sevshim-agent: no nonce from the host within 300ms") {
		t.Errorf("log %q does not say the nonce never came", log.String())
	}
}
