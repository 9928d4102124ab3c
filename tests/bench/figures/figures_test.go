package figures

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sevshim/sevshim/tests/harness/repo"
)

func TestStats(t *testing.T) {
	for _, c := range []struct {
		in            []float64
		min, med, max float64
	}{{[]float64{3}, 3, 3, 3}, {[]float64{5, 1, 3}, 1, 3, 5}, {[]float64{4, 1, 3, 2}, 1, 2.5, 4}} {
		in := slices.Clone(c.in)
		mn, md, mx := Stats(in)
		if mn != c.min || md != c.med || mx != c.max {
			t.Errorf("Stats(%v) = %v %v %v, want %v %v %v", c.in, mn, md, mx, c.min, c.med, c.max)
		}
		if !slices.Equal(in, c.in) {
			t.Errorf("Stats reordered its input: %v", in)
		}
	}
	if mn, md, mx := Stats(nil); !math.IsNaN(mn) || !math.IsNaN(md) || !math.IsNaN(mx) {
		t.Errorf("Stats(nil) = %v %v %v, want NaN", mn, md, mx)
	}
}

func TestMeetsGoal(t *testing.T) {
	for _, c := range []struct {
		v    float64
		goal string
		ok   bool
	}{{1.0, "<= 1.05", true}, {1.1, "<= 1.05", false}, {0.3, "<= 0.35 s", true}, {0.96, ">= 0.95", true}, {0.9, ">= 0.95", false}, {7, "", true}} {
		if ok, err := MeetsGoal(c.v, c.goal); err != nil || ok != c.ok {
			t.Errorf("MeetsGoal(%v, %q) = %v, %v; want %v", c.v, c.goal, ok, err, c.ok)
		}
	}
	for _, bad := range []string{"1.05", "< 1", "<= x"} {
		if _, err := MeetsGoal(1, bad); err == nil {
			t.Errorf("MeetsGoal(1, %q) accepted", bad)
		}
	}
	for _, row := range Table {
		if _, err := MeetsGoal(1, row.Goal); err != nil {
			t.Errorf("Table row %s: %v", row.Name, err)
		}
	}
}

// TestTable: every row has a unique name, a unit and a note.
func TestTable(t *testing.T) {
	seen := map[string]bool{}
	for _, row := range Table {
		if seen[row.Name] || row.Unit == "" || row.Note == "" || !reTableRow.MatchString("| `"+row.Name+"` | 1 | 1 | 1 | s |  | 1 | x |") {
			t.Errorf("Table row %+v: duplicate, no unit or note, or a name the README cannot carry", row)
		}
		seen[row.Name] = true
	}
}

// sampleReport is a report with samples in some rows, none in the others.
func sampleReport() *Report {
	r := New(3, "test machine")
	for _, v := range []float64{1.2, 1.0, 1.1} {
		r.Add("boot.ratio.paired", v)
		r.Add("resume.cont_to_handoff", v/2)
	}
	r.Add("size.shim_c_asm_lines", 2997)
	r.Seconds = 12
	r.Finish()
	return r
}

func TestReportJSONAndText(t *testing.T) {
	r := sampleReport()
	if row := r.Row("boot.ratio.paired"); row.Median != 1.1 || row.Min != 1.0 || row.Max != 1.2 || row.Met == nil || *row.Met {
		t.Fatalf("boot row %+v", row)
	}
	var js bytes.Buffer
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	back, err := ReadJSON(&js)
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Rows) != len(Table) || back.Runs != 3 {
		t.Fatalf("read back %d rows, %d runs", len(back.Rows), back.Runs)
	}
	if row := back.Row("resume.cont_to_handoff"); len(row.Samples) != 3 || row.Median != 0.55 {
		t.Fatalf("read back %+v", row)
	}
	if row := back.Row("guest.kernel"); len(row.Samples) != 0 || !math.IsNaN(row.Median) {
		t.Fatalf("a row without samples read back as %+v", row)
	}
	var txt bytes.Buffer
	if err := r.WriteText(&txt); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"boot.ratio.paired", "1.000 / 1.100 / 1.200", "<= 1.05", "missed", "runs: 3"} {
		if !strings.Contains(txt.String(), want) {
			t.Errorf("text output lacks %q:\n%s", want, txt.String())
		}
	}
	var cmp bytes.Buffer
	Compare(&cmp, r, back)
	if !strings.Contains(cmp.String(), "+0.0%") {
		t.Errorf("Compare of a report with itself:\n%s", cmp.String())
	}
	if _, err := ReadJSON(strings.NewReader(`{"runs":1}`)); err == nil {
		t.Error("ReadJSON accepted a report without figures")
	}
}

func TestReplaceSection(t *testing.T) {
	r := sampleReport()
	doc := "# x\n\n" + BeginMark + "\nold\n" + EndMark + "\ntail\n"
	out, err := ReplaceSection(doc, r.Markdown())
	if err != nil {
		t.Fatal(err)
	}
	names, err := SectionRows(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != len(Table) || !strings.HasSuffix(out, EndMark+"\ntail\n") || !strings.HasPrefix(out, "# x\n\n"+BeginMark+"\n") {
		t.Fatalf("replaced:\n%s", out)
	}
	again, _ := ReplaceSection(out, r.Markdown())
	if again != out {
		t.Error("replacing twice changes the document")
	}
	if _, err := ReplaceSection("no marks", "t"); err == nil {
		t.Error("a document without marks accepted")
	}
	if _, err := SectionRows(BeginMark + "\n| `x` | broken |\n" + EndMark); err == nil {
		t.Error("a malformed row accepted")
	}
}

// TestREADMETable: the README's generated table parses and has every row of Table, in order.
func TestREADMETable(t *testing.T) {
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	names, err := SectionRows(string(doc))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, row := range Table {
		want = append(want, row.Name)
	}
	if !slices.Equal(names, want) {
		t.Fatalf("README's bench table has rows\n%v\nwant (figures.Table; regenerate with go run ./tests/bench/readme -in FILE)\n%v", names, want)
	}
}
