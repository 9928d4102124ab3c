package host

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sevshim/sevshim/pkg/migrate"
)

// TestTPMQuoteRefusals: the checks tpm-quote makes before touching any process.
func TestTPMQuoteRefusals(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	os.Chmod(dir, 0o700) // hostctl refuses a work directory group or others can reach
	out := filepath.Join(dir, "ev.json")
	q := func(n []byte, pcr int) error {
		_, err := TPMQuote(ctx, QuoteOptions{Work: dir, Nonce: n, Out: out, PCR: pcr})
		return err
	}
	nonce := []byte{1, 2, 3}
	for _, c := range []struct {
		state *ReceiveState
		nonce []byte
		pcr   int
		want  string
	}{
		{nil, nonce, -1, "not a receive work directory"},
		{&ReceiveState{Stage: "running"}, nonce, -1, "no TPM in"},
		{&ReceiveState{Stage: "running", TPM: true}, nonce, -1, "pass --pcr"},
		{&ReceiveState{Stage: "running", TPM: true, TPMMode: 1, TPMPCR: 15}, nonce, -1, "both gone"},
		{&ReceiveState{Stage: "running", TPM: true}, nonce, 24, "want 0..23"},
		{&ReceiveState{Stage: "running", TPM: true, TPMMode: 1, TPMPCR: 15}, nil, -1, "want 1..64"},
		{&ReceiveState{Stage: "running", TPM: true, TPMMode: 1, TPMPCR: 15}, make([]byte, 65), -1, "want 1..64"},
	} {
		if c.state != nil {
			if err := writeJSON(filepath.Join(dir, ReceiveJSON), c.state, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if err := q(c.nonce, c.pcr); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: want an error with %q, got %v", c.state, c.want, err)
		}
	}
}

func TestStreamHasTPM(t *testing.T) {
	if !streamHasTPM([]byte("\x04\x00\x00\x00\x05\x0ctpm-emulator\x00")) || streamHasTPM([]byte("tpm-crb\x00")) {
		t.Fatal("streamHasTPM")
	}
}

// TestReceivedBlock: a RAM block rebuilt from data and zero entries.
func TestReceivedBlock(t *testing.T) {
	rc := &received{}
	rc.sk.Blocks = []migrate.Block{{ID: "pc.ram", Size: 2 * migrate.PageSize}, {ID: "system.flash0", Size: 3 * migrate.PageSize}}
	add := func(e migrate.Entry, fill byte) {
		rc.sk.Entries = append(rc.sk.Entries, e)
		if e.Kind == migrate.EntryData {
			p := rc.pages.next()
			for i := range p {
				p[i] = fill
			}
		}
	}
	add(migrate.Entry{Kind: migrate.EntryData, Block: 0, Page: 1}, 0xAA)
	add(migrate.Entry{Kind: migrate.EntryZero, Block: 1, Page: 0, Fill: 0x11}, 0)
	add(migrate.Entry{Kind: migrate.EntryData, Block: 1, Page: 2}, 0xBB)
	add(migrate.Entry{Kind: migrate.EntryData, Block: 1, Page: 1}, 0xCC)
	b := rc.block("system.flash0")
	want := append(append(bytes.Repeat([]byte{0x11}, migrate.PageSize), bytes.Repeat([]byte{0xCC}, migrate.PageSize)...), bytes.Repeat([]byte{0xBB}, migrate.PageSize)...)
	if !bytes.Equal(b, want) {
		t.Fatal("system.flash0 rebuilt wrongly")
	}
	if rc.block("nope") != nil {
		t.Fatal("missing block")
	}
}
