package host

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"time"

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
