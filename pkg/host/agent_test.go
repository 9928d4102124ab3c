package host

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2/transport"

	"github.com/sevshim/sevshim/pkg/guest/agent"
)

// listen serves each connection to a fresh unix socket with serve.
func listen(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), AgentSock)
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); serve(c) }()
		}
	}()
	return sock
}

// TestAskAgentErrors: the real agent's ERROR (no TPM) is the error, with its code; an agent
// that never answers ends the bounded wait; no socket says what to check.
func TestAskAgentErrors(t *testing.T) {
	noTPM := func() (transport.TPMCloser, error) { return nil, os.ErrNotExist }
	sock := listen(t, func(c net.Conn) { (&agent.Agent{OpenTPM: noTPM, Log: &strings.Builder{}}).Serve(c) })
	if _, err := AskAgent(context.Background(), sock, []byte("0123456789abcdef"), 30*time.Second); err == nil || !strings.Contains(err.Error(), "the guest agent: no-tpm: no TPM") {
		t.Errorf("agent without a TPM: %v", err)
	}
	if _, err := AskAgent(context.Background(), sock, []byte("short"), 30*time.Second); err == nil {
		t.Errorf("a 5-byte nonce was sent")
	}
	silent := listen(t, func(c net.Conn) { time.Sleep(5 * time.Second) })
	_, err := AskAgent(context.Background(), silent, []byte("0123456789abcdef"), 200*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "did not answer within 200ms") {
		t.Errorf("silent agent: %v", err)
	}
	_, err = AskAgent(context.Background(), filepath.Join(t.TempDir(), "none.sock"), []byte("0123456789abcdef"), time.Second)
	if err == nil || !strings.Contains(err.Error(), "received with --kernel") || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("no socket: %v", err)
	}
}
