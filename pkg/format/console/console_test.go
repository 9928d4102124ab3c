package console

import (
	"regexp"
	"strings"
	"testing"

	"github.com/sevshim/sevshim/pkg/format/internal/formattest"
	"github.com/sevshim/sevshim/pkg/format/shimerr"
)

// TestHeaderMatchesGo parses console.h and requires exactly the Go set of lines: every
// SEVSHIM_CON_<macro> is a Def with the same format, and every Def has its macro.
func TestHeaderMatchesGo(t *testing.T) {
	h := formattest.Read(t, "shim/include/sevshim/console.h")
	ms := regexp.MustCompile(`(?m)^#define SEVSHIM_CON_(\w+)\s+"((?:[^"\\]|\\.)*)"\s*$`).FindAllStringSubmatch(string(h), -1)
	if n := strings.Count(string(h), "#define SEVSHIM_CON_"); n != len(ms) {
		t.Fatalf("console.h has %d SEVSHIM_CON_ macros, %d of them a plain string", n, len(ms))
	}
	c := map[string]string{}
	var order []string
	for _, m := range ms {
		c[m[1]] = strings.ReplaceAll(m[2], `\"`, `"`)
		order = append(order, m[1])
	}
	for i, d := range Defs {
		f, ok := c[d.Macro]
		switch {
		case !ok:
			t.Errorf("console.h does not define SEVSHIM_CON_%s (%q)", d.Macro, d.Format)
		case f != d.Format:
			t.Errorf("SEVSHIM_CON_%s is %q in console.h, %q in Go", d.Macro, f, d.Format)
		case i >= len(order) || order[i] != d.Macro:
			t.Errorf("Defs[%d] is %s, console.h's macro %d is not", i, d.Macro, i)
		}
		delete(c, d.Macro)
	}
	for m, f := range c {
		t.Errorf("console.h defines SEVSHIM_CON_%s (%q), Go does not", m, f)
	}
}

// TestGoldenLines parses every line of testdata/golden/console/lines.txt (the same file
// shim/test/test_console.c formats through the firmware's console.c) to its name, and requires
// one line of every kind.
func TestGoldenLines(t *testing.T) {
	b := formattest.Read(t, "testdata/golden/console/lines.txt")
	seen := map[string]bool{}
	for _, row := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		name, line, ok := strings.Cut(row, "\t")
		if !ok {
			t.Fatalf("row %q is not name<TAB>line", row)
		}
		l, ok := Parse(line)
		if !ok || l.Name != name {
			t.Errorf("Parse(%q) = %+v, %v; want %s", line, l, ok, name)
			continue
		}
		seen[name] = true
		d, _ := ByName(name)
		if n := strings.Count(d.Format, "%"); len(l.Args) != n {
			t.Errorf("%s: %d arguments, the format has %d", name, len(l.Args), n)
		}
		// anchored: no other line's pattern matches it, and it does not survive a prefix or suffix
		for _, o := range Defs {
			if o != d && o.RE().MatchString(line) {
				t.Errorf("%q also matches %s", line, o.Name)
			}
		}
		for _, bad := range []string{"x" + line, " " + line, line + " ", line + "x", "log: " + line} {
			if l, ok := Parse(bad); ok && l.Name == name && bad != line {
				if name != "VERIFIED" || !strings.HasSuffix(bad, `"`) {
					t.Errorf("Parse(%q) accepted as %s", bad, name)
				}
			}
		}
	}
	for _, d := range Defs {
		if !seen[d.Name] {
			t.Errorf("no golden line for %s", d.Name)
		}
	}
	want := map[string][]string{
		"LOADED":            {"3653632", "540672"},
		"VERIFIED":          {"6", "0123456789abcdef", `say "SEVSHIM HANDOFF"`},
		"SECRET handed-off": {"1234", "0x000000000080f000"},
		"ERROR":             {"034", "version-below-floor"},
	}
	for _, row := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		name, line, _ := strings.Cut(row, "\t")
		if w, ok := want[name]; ok {
			l, _ := Parse(line)
			if strings.Join(l.Args, "|") != strings.Join(w, "|") {
				t.Errorf("%s: arguments %q, want %q", name, l.Args, w)
			}
		}
	}
}

// The ERROR line is parsed with the error-code table: a code and name that are not a pair of
// docs/errors.md is not a shim line; every defined code round-trips.
func TestErrorLines(t *testing.T) {
	for _, c := range shimerr.All() {
		if l, ok := Parse(c.Line()); !ok || l.Name != "ERROR" || l.Code != c {
			t.Errorf("Parse(%q) = %+v, %v", c.Line(), l, ok)
		}
	}
	if _, ok := Parse("SEVSHIM ERROR E034 bad-signature"); ok {
		t.Error("a code with another code's name parsed")
	}
	d, _ := ByName("ERROR")
	if d.RE().String() != shimerr.LineRE.String() {
		t.Errorf("ERROR pattern %s differs from shimerr.LineRE %s", d.RE(), shimerr.LineRE)
	}
}

// Moved from package shimerr: Step and the whole-line waits.
func TestConsoleLines(t *testing.T) {
	for _, c := range []struct {
		line, step string
		ok         bool
	}{
		{"SEVSHIM WAKE", "WAKE", true},
		{"SEVSHIM LOADED bios=3653632 vars=0\r", "LOADED", true},
		{"SEVSHIM ERROR E034 version-below-floor", "ERROR E034", true},
		{"SEVSHIM TPM extended pcr=9 banks=2", "TPM", true},
		{"SEVSHIM HALT\r\n", "HALT", true},
		{"SEVSHIM HALT\r\r", "", false},
		{"x SEVSHIM WAKE", "", false},
		{"SEVSHIM ", "", false},
	} {
		if s, ok := Step(c.line); s != c.step || ok != c.ok {
			t.Errorf("Step(%q) = %q, %v; want %q, %v", c.line, s, ok, c.step, c.ok)
		}
	}
	v := `SEVSHIM VERIFIED version=6 signer=0123456789abcdef name="SEVSHIM ERROR E034 version-below-floor"`
	if !VerifiedRE.MatchString(v) || shimerr.LineRE.MatchString(v) || HandoffRE.MatchString(v+" SEVSHIM HANDOFF") {
		t.Errorf("whole-line matching broken for %q", v)
	}
	if l, ok := Parse(v); !ok || l.Name != "VERIFIED" || l.Args[2] != "SEVSHIM ERROR E034 version-below-floor" {
		t.Errorf("Parse(%q) = %+v, %v", v, l, ok)
	}
	if !StepRE("LOADED").MatchString("SEVSHIM LOADED bios=1 vars=0") || StepRE("LOADED").MatchString("SEVSHIM LOADEDX") {
		t.Error("StepRE")
	}
}

// The two lines the shim prints from assembly (shim/src/image.asm, before C runs) are shim
// lines too.
func TestAsmLines(t *testing.T) {
	src := formattest.Read(t, "shim/src/image.asm")
	ms := regexp.MustCompile(`"(SEVSHIM [^"]*)"`).FindAllStringSubmatch(string(src), -1)
	if len(ms) == 0 {
		t.Fatal("no SEVSHIM strings in image.asm")
	}
	for _, m := range ms {
		if _, ok := Parse(m[1]); !ok {
			t.Errorf("image.asm prints %q, which is not a line of the protocol", m[1])
		}
	}
}

func TestFormat(t *testing.T) {
	if got := Format(Exception, 14, uint64(2), uint64(0xffc84000)); got != "SEVSHIM EXCEPTION vector=14 error=0x0000000000000002 rip=0x00000000ffc84000" {
		t.Error(got)
	}
	if got := Format(Receipt, []byte{0xab, 0x01}); got != "SEVSHIM RECEIPT ab01" {
		t.Error(got)
	}
}
