package host

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"time"

	"github.com/sevshim/sevshim/pkg/atomicfile"
	"github.com/sevshim/sevshim/pkg/attest"
	"github.com/sevshim/sevshim/pkg/format/agentproto"
)

// AgentReport is what the guest agent answered to one nonce: its evidence (decoded and with
// that nonce), whether the guest sees the SEV launch secret, and the firmware's TCG event log.
type AgentReport struct {
	Evidence   *attest.Evidence
	CocoSecret bool
	EventLog   []byte
}

// AskAgent connects to the guest agent's virtio-serial port at sock (WORK/AgentSock of a
// receive --kernel), sends nonce and returns the agent's report (docs/formats.md section 10),
// all within timeout. The agent's READY line is skipped; its ERROR line is the error. The VM
// keeps running.
func AskAgent(ctx context.Context, sock string, nonce []byte, timeout time.Duration) (*AgentReport, error) {
	line, err := (&agentproto.Message{Verb: agentproto.VerbNonce, Nonce: nonce}).Marshal()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", sock)
	if err != nil {
		return nil, fmt.Errorf("the guest agent's port: %w (was the guest received with --kernel, and is it running?)", err)
	}
	defer c.Close()
	deadline, _ := ctx.Deadline()
	c.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	if _, err := c.Write(line); err != nil {
		return nil, fmt.Errorf("the guest agent's port: %w", err)
	}
	r := bufio.NewReader(c)
	for {
		m, err := agentproto.ReadMessage(r)
		var ne net.Error
		switch {
		case errors.As(err, &ne) && ne.Timeout():
			return nil, fmt.Errorf("the guest agent did not answer within %v (is the guest booted to its agent?)", timeout)
		case err != nil:
			return nil, fmt.Errorf("the guest agent's port: %w", err)
		}
		switch m.Verb {
		case agentproto.VerbReady:
			continue
		case agentproto.VerbError:
			return nil, fmt.Errorf("the guest agent: %s: %s", m.Code, m.Text)
		case agentproto.VerbReport:
			var ev attest.Evidence
			if err := ev.UnmarshalJSON(m.Report.Evidence); err != nil {
				return nil, fmt.Errorf("the guest agent's report: %w", err)
			}
			if string(ev.Nonce) != string(nonce) {
				return nil, fmt.Errorf("the guest agent's evidence carries nonce %x, not ours (%x)", ev.Nonce, nonce)
			}
			return &AgentReport{Evidence: &ev, CocoSecret: m.Report.CocoSecret, EventLog: m.Report.EventLog}, nil
		default:
			return nil, fmt.Errorf("the guest agent sent %s, which only a host sends", m.Verb)
		}
	}
}

// AttestOptions are the inputs of `hostctl attest`.
type AttestOptions struct {
	Work  string
	Nonce []byte
	Out   string // the evidence file (sevshim-tpm-evidence-1, written atomically)
	// EventLog, if set, receives the firmware's TCG event log from the guest.
	EventLog string
	// Timeout bounds the whole exchange, including a guest still booting to its agent
	// (default DefaultAttestTimeout).
	Timeout time.Duration
}

// DefaultAttestTimeout is hostctl attest's bound: a Linux boot under TCG after the chain
// takes 15-30 s, so a guest just received has time to reach its agent.
const DefaultAttestTimeout = 180 * time.Second

// AttestResult is what hostctl attest reports.
type AttestResult struct {
	*AgentReport
	Out          string
	EventLogFile string // where the event log went ("" = not written)
	Pid          int    // QEMU B, still running
	Receipt      string // the shim's receipt line from receive, for verifier receipt
}

// Attest asks the agent of the running guest in work directory o.Work (received with
// --kernel) for evidence over o.Nonce and writes it to o.Out. Unlike TPMQuote the VM keeps
// running: the quote comes from inside the guest, through its own TPM device (docs/tpm.md).
func Attest(ctx context.Context, o AttestOptions) (*AttestResult, error) {
	work, rs, err := evidenceRequest(o.Work, o.Nonce, o.Out, "hostctl receive --kernel")
	if err != nil {
		return nil, err
	}
	switch {
	case !rs.Agent:
		return nil, fmt.Errorf("the guest in %s was received without --kernel: it has no guest agent to ask (receive with --kernel/--initrd from make images; a BIOS without an OS is read with hostctl tpm-quote)", work)
	case rs.Stage != ReceiveRunning:
		return nil, fmt.Errorf("the guest in %s is %q, not running: nothing to attest (receive it again)", work, rs.Stage)
	case !rs.TPM:
		return nil, fmt.Errorf("the guest in %s was received without --tpm: its agent has no TPM to quote (receive a package made with hostctl launch --tpm using hostctl receive --tpm)", work)
	}
	pid := runningVM(work)
	if pid == 0 {
		return nil, fmt.Errorf("QEMU B of %s is gone: nothing to attest (hostctl stop --work %s, then receive again)", work, o.Work)
	}
	to := o.Timeout
	if to <= 0 {
		to = DefaultAttestTimeout
	}
	rep, err := AskAgent(ctx, filepath.Join(work, AgentSock), o.Nonce, to)
	if err != nil {
		return nil, fmt.Errorf("%w (the agent logs to the guest's serial console)", err)
	}
	b, err := json.Marshal(rep.Evidence)
	if err != nil {
		return nil, err
	}
	if err := atomicfile.WriteFile(o.Out, append(b, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("writing the evidence: %w", err)
	}
	res := &AttestResult{AgentReport: rep, Out: o.Out, Pid: pid, Receipt: rs.Receipt}
	if o.EventLog != "" && len(rep.EventLog) > 0 {
		if err := atomicfile.WriteFile(o.EventLog, rep.EventLog, 0o644); err != nil {
			return nil, fmt.Errorf("writing the event log: %w", err)
		}
		res.EventLogFile = o.EventLog
	}
	return res, nil
}
