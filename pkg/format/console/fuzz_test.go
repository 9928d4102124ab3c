package console

import (
	"os"
	"strings"
	"testing"
)

// FuzzParse: Parse never panics, and a line it accepts is exactly one line of the protocol
// (its own pattern matches it whole, no other does) with one argument per verb.
func FuzzParse(f *testing.F) {
	if b, err := os.ReadFile("../../../testdata/golden/console/lines.txt"); err == nil {
		for _, row := range strings.Split(string(b), "\n") {
			if _, line, ok := strings.Cut(row, "\t"); ok {
				f.Add(line)
			}
		}
	}
	f.Fuzz(func(t *testing.T, line string) {
		l, ok := Parse(line)
		if !ok {
			return
		}
		whole := trimEOL(line)
		for _, d := range Defs {
			if m := d.RE().MatchString(whole); m != (d.Name == l.Name) {
				t.Fatalf("%q parsed as %s, but %s's pattern match is %v", line, l.Name, d.Name, m)
			}
			if d.Name == l.Name && len(l.Args) != strings.Count(d.Format, "%") {
				t.Fatalf("%q: %d arguments for %q", line, len(l.Args), d.Format)
			}
		}
	})
}
