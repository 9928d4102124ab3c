package shimerr

import (
	"regexp"
	"strconv"
	"testing"

	"github.com/sevshim/sevshim/pkg/format/internal/formattest"
)

// TestTableMatchesHeader parses the C header and requires the exact same table, in order.
func TestTableMatchesHeader(t *testing.T) {
	src := formattest.Read(t, "shim/include/sevshim/errors.h")
	re := regexp.MustCompile(`X\(\s*([0-9]+)\s*,\s*"([^"]*)"\s*\)`)
	ms := re.FindAllStringSubmatch(string(src), -1)
	if len(ms) == 0 {
		t.Fatal("no X(code, \"name\") lines found in errors.h")
	}
	all := All()
	if len(ms) != len(all) {
		t.Fatalf("errors.h has %d codes, Go has %d", len(ms), len(all))
	}
	for i, m := range ms {
		n, _ := strconv.Atoi(m[1])
		if Code(n) != all[i] || m[2] != all[i].Name() {
			t.Errorf("entry %d: header X(%s, %q), Go %d %q", i, m[1], m[2], all[i], all[i].Name())
		}
	}
}

func TestStrings(t *testing.T) {
	if got := BadSignature.String(); got != "E024 bad-signature" {
		t.Errorf("String = %q", got)
	}
	if got := NoFwCfg.Line(); got != "SEVSHIM ERROR E001 no-fwcfg" {
		t.Errorf("Line = %q", got)
	}
	if OK.String() != "OK" || Code(99).Name() != "unknown" || Code(99).Known() {
		t.Error("OK/unknown handling")
	}
	for _, c := range All() {
		if c.Help() == "" {
			t.Errorf("%v has no help", c)
		}
		if p, ok := Parse(c.String()); !ok || p != c {
			t.Errorf("Parse(%q) = %v %v", c.String(), p, ok)
		}
		if p, ok := Parse(c.ID()); !ok || p != c {
			t.Errorf("Parse(%q) = %v %v", c.ID(), p, ok)
		}
	}
}

func TestParseLine(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Code
		ok   bool
	}{
		{"SEVSHIM ERROR E024 bad-signature", BadSignature, true},
		{"SEVSHIM ERROR E024 bad-signature\r", BadSignature, true},
		{"SEVSHIM ERROR E024 bad-signature\r\n", BadSignature, true},
		{"SEVSHIM ERROR E024 bad-signature\n", BadSignature, true},
		// Anchored at both ends: a refusal is a whole line, never text inside another line.
		{"[  1.2] SEVSHIM ERROR E033 digest-mismatch", 0, false},
		{`SEVSHIM VERIFIED version=6 signer=0011223344556677 name="SEVSHIM ERROR E034 version-below-floor"`, 0, false},
		{"SEVSHIM ERROR E034 version-below-floor\"", 0, false},
		{" SEVSHIM ERROR E034 version-below-floor", 0, false},
		{"SEVSHIM ERROR E034 version-below-floor ", 0, false},
		{"SEVSHIM ERROR E034 version-below-floor\rX", 0, false},
		{"SEVSHIM ERROR E034 version-below-floor\nSEVSHIM HANDOFF", 0, false},
		{"SEVSHIM ERROR E001 no-fwcfg", NoFwCfg, true},
		{"SEVSHIM ERROR E024 digest-mismatch", 0, false}, // name of another code
		{"SEVSHIM ERROR E099 internal", 0, false},        // unknown code
		{"SEVSHIM ERROR E24 bad-signature", 0, false},
		{"SEVSHIM ERROR E024 bad-signaturex", 0, false},
		{"SEVSHIM HALT", 0, false},
		{"", 0, false},
	} {
		c, ok := ParseLine(tc.in)
		if ok != tc.ok || c != tc.want {
			t.Errorf("ParseLine(%q) = %v, %v; want %v, %v", tc.in, c, ok, tc.want, tc.ok)
		}
	}
	for _, c := range All() {
		if p, ok := ParseLine(c.Line()); !ok || p != c {
			t.Errorf("round trip %v", c)
		}
	}
}
