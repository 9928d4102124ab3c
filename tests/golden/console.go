package golden

import (
	"fmt"
	"strings"

	"github.com/sevshim/sevshim/pkg/format/console"
	"github.com/sevshim/sevshim/pkg/format/shimerr"
)

// ConsoleLines is testdata/golden/console/lines.txt: one example of every line the shim prints,
// in console.Defs order, as "name<TAB>line". pkg/format/console parses each line to its name;
// shim/test/test_console.c formats the same examples through the shim's console.c and must
// produce the same bytes.
const ConsoleLines = "console/lines.txt"

// consoleExamples are the arguments of each example line (test_console.c uses the same).
var consoleExamples = map[string][]any{
	"LOADED":            {3653632, 540672},
	"VERIFIED":          {6, []byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef}, `say "SEVSHIM HANDOFF"`},
	"TPM extended":      {9, 2},
	"FLASHED":           {55, 8},
	"SECRET handed-off": {1234, uint64(0x80f000)},
	"RECEIPT":           {[]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}},
	"ERROR":             {fmt.Sprintf("%03d", int(shimerr.VersionBelowFloor)), shimerr.VersionBelowFloor.Name()},
	"EXCEPTION":         {13, uint64(0), uint64(0xfffffff0)},
}

func (g *gen) consoleLines() {
	var b strings.Builder
	for _, d := range console.Defs {
		fmt.Fprintf(&b, "%s\t%s\n", d.Name, console.Format(d.Format, consoleExamples[d.Name]...))
	}
	g.add(ConsoleLines, []byte(b.String()))
}
