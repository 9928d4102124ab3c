package guestpkg

import (
	"bytes"
	"strings"
	"testing"

	"github.com/sevshim/sevshim/pkg/migrate"
)

// hostile rewrites the records of a real package: the header and RAM blocks stay, then the
// given entries follow (no packets: only zero and section entries), then a valid end, the
// real device state and digest.
func hostile(t *testing.T, f *fixture, entries []migrate.Entry) []byte {
	t.Helper()
	r, err := NewReader(bytes.NewReader(f.pkg))
	if err != nil {
		t.Fatal(err)
	}
	st, err := r.ReadStream()
	if err != nil {
		t.Fatal(err)
	}
	var p Packet
	for {
		if _, _, err := r.Next(&p); err != nil {
			break
		}
	}
	devices, err := r.Finish()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	w, err := NewWriter(&out, r.Header())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteStream(st); err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if err := w.Record(e, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Finish(devices); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func TestRecordsBoundedByBlocks(t *testing.T) {
	f := makePackage(t, readStream(t, "micro.bin"))
	r, _ := NewReader(bytes.NewReader(f.pkg))
	st, _ := r.ReadStream()
	pages := st.TotalPages()
	if st.MaxRecords() != 2*pages+sectionSlack {
		t.Fatalf("MaxRecords %d for %d pages", st.MaxRecords(), pages)
	}
	zero := migrate.Entry{Kind: migrate.EntryZero, Block: 0, Page: 0}
	part := migrate.Entry{Kind: migrate.EntryPart}

	dup := hostile(t, f, []migrate.Entry{zero, zero})
	if _, err := Verify(bytes.NewReader(dup)); err == nil || !strings.Contains(err.Error(), "(record 1): page 0 of RAM block") || !strings.Contains(err.Error(), "appears twice") {
		t.Fatalf("a page twice: %v", err)
	}
	many := make([]migrate.Entry, pages+sectionSlack+1)
	for i := range many {
		many[i] = part
	}
	if _, err := Verify(bytes.NewReader(hostile(t, f, many))); err == nil || !strings.Contains(err.Error(), "section records for") {
		t.Fatalf("too many section records: %v", err)
	}
	// Exactly the slack is still structurally fine (the migrate parser judges the rest).
	if _, err := Verify(bytes.NewReader(hostile(t, f, many[:pages+sectionSlack]))); err != nil {
		t.Fatalf("pages + slack section records: %v", err)
	}
	// Every page once as a zero page: accepted.
	var all []migrate.Entry
	for bi, b := range st.Blocks {
		for p := uint64(0); p < b.Pages(); p++ {
			all = append(all, migrate.Entry{Kind: migrate.EntryZero, Block: uint16(bi), Page: uint32(p)})
		}
	}
	if _, err := Verify(bytes.NewReader(hostile(t, f, all))); err != nil {
		t.Fatalf("every page once: %v", err)
	}
	if _, err := Verify(bytes.NewReader(f.pkg)); err != nil {
		t.Fatalf("the real package: %v", err)
	}
}
