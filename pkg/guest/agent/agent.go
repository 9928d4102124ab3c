// Package agent is the guest agent's logic: the /init of the guest's initramfs, which reads
// the PCR the shim extended and quotes it over a nonce the host sends on a virtio-serial port
// (docs/formats.md section 10, package agentproto), while the VM keeps running.
//
// It lives under pkg/ like every library of this repo; its main is guest/agent, a static
// binary built for the guest, not a tool of the host. The serial console is its log.
package agent

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/google/go-tpm/tpm2/transport"

	"github.com/sevshim/sevshim/pkg/attest"
	"github.com/sevshim/sevshim/pkg/format/agentproto"
)

// Agent answers the host's requests. Zero fields take the defaults of the guest.
type Agent struct {
	// OpenTPM opens the TPM for one request (default: /dev/tpmrm0).
	OpenTPM func() (transport.TPMCloser, error)
	// SecretPath is the securityfs file of the SEV launch secret (default SecretPath).
	SecretPath string
	// EventLogPath is the firmware's TCG event log (default EventLogPath).
	EventLogPath string
	// PCR is the PCR the shim extends (the policy's tpm_pcr; default 15).
	PCR uint
	// Wait bounds the wait for the host's first valid nonce (default 10 minutes).
	Wait time.Duration
	// Log is the agent's log, the serial console in the guest (default os.Stderr).
	Log io.Writer
}

// Defaults of the guest.
const (
	TPMPath      = "/dev/tpmrm0"
	SecretPath   = "/sys/kernel/security/secrets/coco"
	EventLogPath = "/sys/kernel/security/tpm0/binary_bios_measurements"
	DefaultPCR   = 15
	DefaultWait  = 10 * time.Minute
)

// ErrNoNonce is returned by Serve when no valid nonce came within Wait.
var ErrNoNonce = errors.New("agent: no nonce from the host")

func (a *Agent) defaults() Agent {
	d := *a
	if d.OpenTPM == nil {
		d.OpenTPM = OpenDeviceTPM
	}
	if d.SecretPath == "" {
		d.SecretPath = SecretPath
	}
	if d.EventLogPath == "" {
		d.EventLogPath = EventLogPath
	}
	if d.PCR == 0 {
		d.PCR = DefaultPCR
	}
	if d.Wait <= 0 {
		d.Wait = DefaultWait
	}
	if d.Log == nil {
		d.Log = os.Stderr
	}
	return d
}

// Logf writes one log line.
func (a *Agent) Logf(format string, args ...any) {
	fmt.Fprintf(a.defaults().Log, "sevshim-agent: "+format+"\n", args...)
}

// Answer builds the reply to one nonce: a REPORT with the evidence, or an ERROR saying why
// there is none.
func (a *Agent) Answer(nonce []byte) *agentproto.Message {
	d := a.defaults()
	fail := func(code string, err error) *agentproto.Message {
		return &agentproto.Message{Verb: agentproto.VerbError, Code: code, Text: printableText(err.Error())}
	}
	t, err := d.OpenTPM()
	if err != nil {
		return fail(agentproto.ErrNoTPM, fmt.Errorf("no TPM: %v", err))
	}
	defer t.Close()
	ev, err := attest.Read(t, d.PCR, nonce)
	if err != nil {
		return fail(agentproto.ErrTPM, err)
	}
	j, err := ev.MarshalJSON()
	if err != nil {
		return fail(agentproto.ErrTPM, err)
	}
	log, err := os.ReadFile(d.EventLogPath)
	if err != nil && !os.IsNotExist(err) {
		return fail(agentproto.ErrTPM, fmt.Errorf("event log: %v", err))
	}
	if len(log) > agentproto.MaxEventLog {
		return fail(agentproto.ErrTPM, fmt.Errorf("event log of %d bytes, the protocol carries at most %d", len(log), agentproto.MaxEventLog))
	}
	_, err = os.Stat(d.SecretPath)
	return &agentproto.Message{Verb: agentproto.VerbReport, Report: &agentproto.Report{Evidence: j, CocoSecret: err == nil, EventLog: log}}
}

// printableText keeps an error text to one printable ASCII line.
func printableText(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = '?'
		}
	}
	if len(b) > 512 {
		b = b[:512]
	}
	if len(b) == 0 {
		return "error"
	}
	return string(b)
}

type lineResult struct {
	m   *agentproto.Message
	err error
}

// Serve speaks the protocol on port: it announces READY, then answers every NONCE line with
// a REPORT or an ERROR and every other line with ERROR bad-request. The first valid nonce
// must come within Wait (ErrNoNonce otherwise); after it the agent serves until the port ends.
func (a *Agent) Serve(port io.ReadWriter) error {
	d := a.defaults()
	var mu sync.Mutex
	send := func(m *agentproto.Message) error {
		b, err := m.Marshal()
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		_, err = port.Write(b)
		return err
	}
	// a virtio-serial write blocks until the host side is open: READY goes to the first host
	// that connects, without holding up the wait for its nonce
	go send(&agentproto.Message{Verb: agentproto.VerbReady, Version: agentproto.Version})
	lines := make(chan lineResult)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		r := bufio.NewReaderSize(port, 4096)
		for {
			m, err := agentproto.ReadMessage(r)
			select {
			case lines <- lineResult{m, err}:
			case <-stop:
				return
			}
			if err != nil && !errors.Is(err, agentproto.ErrLineTooLong) && isIOError(err) {
				return
			}
		}
	}()
	timer := time.NewTimer(d.Wait)
	defer timer.Stop()
	served := false
	for {
		var lr lineResult
		if served {
			lr = <-lines
		} else {
			select {
			case lr = <-lines:
			case <-timer.C:
				d.Logf("no nonce from the host within %v", d.Wait)
				return ErrNoNonce
			}
		}
		if lr.err != nil && isIOError(lr.err) {
			return fmt.Errorf("agent: reading the port: %w", lr.err)
		}
		if lr.err != nil || lr.m.Verb != agentproto.VerbNonce {
			err := lr.err
			if err == nil {
				err = fmt.Errorf("agent: the host may only send %s, got %s", agentproto.VerbNonce, lr.m.Verb)
			}
			d.Logf("bad request: %v", err)
			if err := send(&agentproto.Message{Verb: agentproto.VerbError, Code: agentproto.ErrBadRequest, Text: printableText(err.Error())}); err != nil {
				return fmt.Errorf("agent: writing the port: %w", err)
			}
			continue
		}
		start := time.Now()
		rep := d.Answer(lr.m.Nonce)
		if rep.Verb == agentproto.VerbReport {
			served = true
			d.Logf("quoted PCR %d over a %d-byte nonce in %v, coco secret %v", d.PCR, len(lr.m.Nonce), time.Since(start).Round(time.Millisecond), rep.Report.CocoSecret)
		} else {
			d.Logf("no evidence: %s %s", rep.Code, rep.Text)
		}
		if err := send(rep); err != nil {
			return fmt.Errorf("agent: writing the port: %w", err)
		}
	}
}

// isIOError tells a broken port from a line that did not parse.
func isIOError(err error) bool {
	var perr interface{ Timeout() bool }
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.ErrClosedPipe) ||
		errors.Is(err, os.ErrClosed) || errors.As(err, &perr)
}
