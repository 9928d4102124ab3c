package agentproto

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/messages.golden")

// goldenMessages are the lines of testdata/messages.golden, in order.
func goldenMessages() []*Message {
	nonce := []byte("0123456789abcdef")
	ev := []byte(`{"format":"sevshim-tpm-evidence-1","pcr":15}`)
	return []*Message{
		{Verb: VerbReady, Version: Version},
		{Verb: VerbNonce, Nonce: nonce},
		{Verb: VerbReport, Report: &Report{Evidence: ev, CocoSecret: false}},
		{Verb: VerbReport, Report: &Report{Evidence: ev, CocoSecret: true, EventLog: []byte("\x00\x01spec-id-event")}},
		{Verb: VerbError, Code: ErrNoTPM, Text: "no TPM at /dev/tpmrm0"},
		{Verb: VerbError, Code: ErrBadRequest, Text: "agentproto: unknown verb \"HELLO\""},
		{Verb: VerbError, Code: ErrTPM, Text: "attest: Quote: TPM_RC_FAILURE"},
	}
}

// TestGolden: the encoding is the golden file's, byte for byte, and every golden line parses
// back to its message.
func TestGolden(t *testing.T) {
	var all []byte
	for _, m := range goldenMessages() {
		b, err := m.Marshal()
		if err != nil {
			t.Fatalf("%+v: %v", m, err)
		}
		all = append(all, b...)
	}
	if *update {
		if err := os.WriteFile("testdata/messages.golden", all, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile("testdata/messages.golden")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(all, want) {
		t.Fatalf("encoding differs from testdata/messages.golden:\n%s\nwant\n%s", all, want)
	}
	r := bufio.NewReader(bytes.NewReader(want))
	for i, m := range goldenMessages() {
		got, err := ReadMessage(r)
		if err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("line %d parses to %+v, want %+v", i+1, got, m)
		}
	}
	if _, err := ReadMessage(r); err != io.EOF {
		t.Errorf("after the last line: %v, want EOF", err)
	}
}

// TestParseRejects: garbage is an error, never a message.
func TestParseRejects(t *testing.T) {
	for _, s := range []string{
		"", "\n", "hello", "SEVSHIM-AGENT", "SEVSHIM-AGENT ", "sevshim-agent READY 1",
		"SEVSHIM-AGENT HELLO 1", "SEVSHIM-AGENT READY", "SEVSHIM-AGENT READY 0", "SEVSHIM-AGENT READY 01",
		"SEVSHIM-AGENT READY 1 2", "SEVSHIM-AGENT READY x",
		"SEVSHIM-AGENT NONCE", "SEVSHIM-AGENT NONCE 0011", "SEVSHIM-AGENT NONCE 0123456789ABCDEF",
		"SEVSHIM-AGENT NONCE 0123456789abcdeg", "SEVSHIM-AGENT NONCE 0123456789abcdef ",
		"SEVSHIM-AGENT NONCE " + strings.Repeat("00", MaxNonce+1),
		"SEVSHIM-AGENT REPORT", "SEVSHIM-AGENT REPORT !!", "SEVSHIM-AGENT REPORT e30=",
		"SEVSHIM-AGENT REPORT eyJmb3JtYXQiOiJzZXZzaGltLWFnZW50LXJlcG9ydC0xIn0=", // no evidence
		"SEVSHIM-AGENT ERROR", "SEVSHIM-AGENT ERROR no-tpm", "SEVSHIM-AGENT ERROR other text",
		"SEVSHIM-AGENT NONCE 0123456789abcdef\r", "SEVSHIM-AGENT READY 1\x00",
		"SEVSHIM-AGENT ERROR tpm caf\xc3\xa9",
	} {
		if m, err := Parse([]byte(s)); err == nil {
			t.Errorf("Parse(%q) = %+v, want an error", s, m)
		}
	}
}

// TestMarshalRejects: the encoder refuses what Parse would refuse.
func TestMarshalRejects(t *testing.T) {
	for _, m := range []*Message{
		{Verb: "HELLO"}, {Verb: VerbReady}, {Verb: VerbNonce, Nonce: []byte("short")},
		{Verb: VerbNonce, Nonce: make([]byte, MaxNonce+1)}, {Verb: VerbReport},
		{Verb: VerbReport, Report: &Report{Evidence: []byte("{")}},
		{Verb: VerbError, Code: "other", Text: "x"}, {Verb: VerbError, Code: ErrTPM},
		{Verb: VerbError, Code: ErrTPM, Text: "two\nlines"},
		{Verb: VerbReport, Report: &Report{Evidence: []byte("{}"), EventLog: make([]byte, MaxEventLog+1)}},
	} {
		if b, err := m.Marshal(); err == nil {
			t.Errorf("Marshal(%+v) = %q, want an error", m, b)
		}
	}
}

// TestReadMessageLongLine: a line over MaxLine is an error and the next line still reads.
func TestReadMessageLongLine(t *testing.T) {
	in := strings.Repeat("x", MaxLine+10) + "\nSEVSHIM-AGENT READY 1\n"
	r := bufio.NewReaderSize(strings.NewReader(in), 4096)
	if _, err := ReadMessage(r); !errors.Is(err, ErrLineTooLong) {
		t.Fatalf("long line: %v, want ErrLineTooLong", err)
	}
	m, err := ReadMessage(r)
	if err != nil || m.Verb != VerbReady {
		t.Fatalf("after the long line: %+v, %v", m, err)
	}
	if _, err := ReadMessage(bufio.NewReader(strings.NewReader("SEVSHIM-AGENT READY 1"))); err != io.ErrUnexpectedEOF {
		t.Fatalf("unterminated line: %v, want ErrUnexpectedEOF", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, m := range goldenMessages() {
		b, _ := m.Marshal()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		m, err := Parse(line)
		if err != nil {
			return
		}
		b, err := m.Marshal()
		if err != nil {
			t.Fatalf("parsed %q but cannot encode it: %v", line, err)
		}
		m2, err := Parse(b)
		if err != nil || !reflect.DeepEqual(m, m2) {
			t.Fatalf("re-encoding %q does not round-trip: %v", line, err)
		}
	})
}
