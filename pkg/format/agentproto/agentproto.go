// Package agentproto is the one definition of the protocol between the guest agent (the
// /init of the guest's initramfs) and the host, spoken over a virtio-serial port while the VM
// keeps running (docs/formats.md section 10).
//
// Every message is one line of printable ASCII ended by LF, at most MaxLine bytes with the
// LF, starting with the word SEVSHIM-AGENT and a verb:
//
//	SEVSHIM-AGENT READY 1                 guest: the agent listens (protocol version 1)
//	SEVSHIM-AGENT NONCE <hex>             host: quote over this nonce (MinNonce..MaxNonce bytes)
//	SEVSHIM-AGENT REPORT <base64>         guest: the report (standard base64 of its JSON)
//	SEVSHIM-AGENT ERROR <code> <text>     guest: the request failed; code is one of the Err* words
//
// The report's evidence is the project's evidence file (pkg/attest), carried as raw JSON so
// that this format needs no TPM code; the host decodes it with the attest package. Parse
// rejects anything else: unknown verbs, extra fields, bad hex or base64, control bytes.
package agentproto

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

const (
	// Prefix starts every protocol line.
	Prefix = "SEVSHIM-AGENT"
	// Version is the protocol version the READY line announces.
	Version = 1
	// MaxLine bounds one line, LF included (a report with a 4-bank evidence is about 3 KiB,
	// plus the firmware's event log: at most MaxEventLog bytes, base64 twice).
	MaxLine = 512 << 10
	// MaxEventLog bounds the event log a report carries.
	MaxEventLog = 256 << 10
	// MinNonce and MaxNonce bound the nonce (TPM2B_DATA of a quote holds at most 64 bytes
	// with a SHA-512 name algorithm; 8 bytes is the least this protocol accepts).
	MinNonce, MaxNonce = 8, 64
	// ReportFormat names the report JSON.
	ReportFormat = "sevshim-agent-report-1"
	// ConsoleReady is the agent's first line on the serial console (its log), a whole line.
	ConsoleReady = "sevshim-agent: started"
	// PortName is the virtio-serial port's name (QEMU virtserialport name=, the guest's
	// /sys/class/virtio-ports/*/name).
	PortName = "org.sevshim.agent.0"
)

// The verbs.
const (
	VerbReady  = "READY"
	VerbNonce  = "NONCE"
	VerbReport = "REPORT"
	VerbError  = "ERROR"
)

// The error codes of an ERROR line.
const (
	ErrBadRequest = "bad-request" // the host's line did not parse
	ErrNoTPM      = "no-tpm"      // the guest sees no TPM
	ErrTPM        = "tpm"         // the TPM failed the read or the quote
)

var errCodes = map[string]bool{ErrBadRequest: true, ErrNoTPM: true, ErrTPM: true}

// Message is one protocol line. Which fields are set depends on Verb: Version (READY),
// Nonce (NONCE), Report (REPORT), Code and Text (ERROR).
type Message struct {
	Verb    string
	Version int
	Nonce   []byte
	Report  *Report
	Code    string
	Text    string
}

// Report is what the agent saw: the evidence file (pkg/attest's JSON), whether the kernel
// exposes the SEV launch secret (securityfs secrets/coco), and the firmware's TCG event log
// as the kernel exposes it (securityfs tpm0/binary_bios_measurements; empty without one).
type Report struct {
	Evidence   json.RawMessage
	CocoSecret bool
	EventLog   []byte
}

type reportFile struct {
	Format     string          `json:"format"`
	Evidence   json.RawMessage `json:"evidence"`
	CocoSecret *bool           `json:"coco_secret"`
	EventLog   *string         `json:"event_log"` // standard base64
}

// ErrLineTooLong is returned by ReadMessage for a line over MaxLine.
var ErrLineTooLong = errors.New("agentproto: line longer than the protocol allows")

// Marshal encodes the message as its line, LF included.
func (m *Message) Marshal() ([]byte, error) {
	var s string
	switch m.Verb {
	case VerbReady:
		if m.Version <= 0 {
			return nil, fmt.Errorf("agentproto: READY needs a positive version")
		}
		s = fmt.Sprintf("%s %s %d", Prefix, VerbReady, m.Version)
	case VerbNonce:
		if len(m.Nonce) < MinNonce || len(m.Nonce) > MaxNonce {
			return nil, fmt.Errorf("agentproto: nonce of %d bytes, want %d..%d", len(m.Nonce), MinNonce, MaxNonce)
		}
		s = Prefix + " " + VerbNonce + " " + hex.EncodeToString(m.Nonce)
	case VerbReport:
		if m.Report == nil || len(m.Report.Evidence) == 0 || !json.Valid(m.Report.Evidence) {
			return nil, fmt.Errorf("agentproto: REPORT needs evidence JSON")
		}
		if len(m.Report.EventLog) > MaxEventLog {
			return nil, fmt.Errorf("agentproto: event log of %d bytes, at most %d", len(m.Report.EventLog), MaxEventLog)
		}
		cs, el := m.Report.CocoSecret, base64.StdEncoding.EncodeToString(m.Report.EventLog)
		var ev bytes.Buffer
		if err := json.Compact(&ev, m.Report.Evidence); err != nil {
			return nil, err
		}
		j, err := json.Marshal(reportFile{Format: ReportFormat, Evidence: ev.Bytes(), CocoSecret: &cs, EventLog: &el})
		if err != nil {
			return nil, err
		}
		s = Prefix + " " + VerbReport + " " + base64.StdEncoding.EncodeToString(j)
	case VerbError:
		if !errCodes[m.Code] {
			return nil, fmt.Errorf("agentproto: unknown error code %q", m.Code)
		}
		if m.Text == "" || !printable(m.Text) {
			return nil, fmt.Errorf("agentproto: ERROR text must be non-empty printable ASCII")
		}
		s = Prefix + " " + VerbError + " " + m.Code + " " + m.Text
	default:
		return nil, fmt.Errorf("agentproto: unknown verb %q", m.Verb)
	}
	if len(s)+1 > MaxLine {
		return nil, ErrLineTooLong
	}
	return []byte(s + "\n"), nil
}

// printable reports whether s is ASCII 0x20..0x7e only.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// Parse decodes one line (with or without its LF) strictly.
func Parse(line []byte) (*Message, error) {
	s, _ := strings.CutSuffix(string(line), "\n")
	if len(s)+1 > MaxLine {
		return nil, ErrLineTooLong
	}
	if !printable(s) {
		return nil, fmt.Errorf("agentproto: line has bytes outside printable ASCII")
	}
	rest, ok := strings.CutPrefix(s, Prefix+" ")
	if !ok {
		return nil, fmt.Errorf("agentproto: line does not start with %q", Prefix+" ")
	}
	verb, arg, _ := strings.Cut(rest, " ")
	switch verb {
	case VerbReady:
		var v int
		if _, err := fmt.Sscanf(arg, "%d", &v); err != nil || v <= 0 || fmt.Sprint(v) != arg {
			return nil, fmt.Errorf("agentproto: READY %q: want a positive decimal version", arg)
		}
		return &Message{Verb: VerbReady, Version: v}, nil
	case VerbNonce:
		n, err := hex.DecodeString(arg)
		if err != nil || hex.EncodeToString(n) != arg {
			return nil, fmt.Errorf("agentproto: NONCE: want lower-case hex")
		}
		if len(n) < MinNonce || len(n) > MaxNonce {
			return nil, fmt.Errorf("agentproto: nonce of %d bytes, want %d..%d", len(n), MinNonce, MaxNonce)
		}
		return &Message{Verb: VerbNonce, Nonce: n}, nil
	case VerbReport:
		j, err := base64.StdEncoding.Strict().DecodeString(arg)
		if err != nil {
			return nil, fmt.Errorf("agentproto: REPORT: %w", err)
		}
		dec := json.NewDecoder(bytes.NewReader(j))
		dec.DisallowUnknownFields()
		var f reportFile
		if err := dec.Decode(&f); err != nil {
			return nil, fmt.Errorf("agentproto: REPORT JSON: %w", err)
		}
		if dec.More() {
			return nil, fmt.Errorf("agentproto: REPORT JSON: data after the object")
		}
		if f.Format != ReportFormat {
			return nil, fmt.Errorf("agentproto: report format %q, want %q", f.Format, ReportFormat)
		}
		if len(f.Evidence) == 0 || f.Evidence[0] != '{' || f.CocoSecret == nil || f.EventLog == nil {
			return nil, fmt.Errorf("agentproto: report needs an evidence object, coco_secret and event_log")
		}
		el, err := base64.StdEncoding.Strict().DecodeString(*f.EventLog)
		if err != nil || len(el) > MaxEventLog {
			return nil, fmt.Errorf("agentproto: report event_log: want standard base64 of at most %d bytes", MaxEventLog)
		}
		if len(el) == 0 {
			el = nil
		}
		return &Message{Verb: VerbReport, Report: &Report{Evidence: f.Evidence, CocoSecret: *f.CocoSecret, EventLog: el}}, nil
	case VerbError:
		code, text, _ := strings.Cut(arg, " ")
		if !errCodes[code] || text == "" {
			return nil, fmt.Errorf("agentproto: ERROR: want a known code and a text")
		}
		return &Message{Verb: VerbError, Code: code, Text: text}, nil
	}
	return nil, fmt.Errorf("agentproto: unknown verb %q", verb)
}

// ReadMessage reads and parses one line from r; a line over MaxLine is consumed up to its LF
// and reported as ErrLineTooLong so the reader stays in step with the next line.
func ReadMessage(r *bufio.Reader) (*Message, error) {
	var line []byte
	tooLong := false
	for {
		frag, err := r.ReadSlice('\n')
		if !tooLong {
			line = append(line, frag...)
			if len(line) > MaxLine {
				tooLong, line = true, nil
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if err == io.EOF && len(line) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		break
	}
	if tooLong {
		return nil, ErrLineTooLong
	}
	return Parse(line)
}
