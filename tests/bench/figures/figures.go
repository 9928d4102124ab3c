// Package figures is the table of `make bench` (tests/bench): every row it measures with its
// unit and goal, the statistics over a run's samples (min, median, max), the JSON file the
// bench writes, and the README's performance table generated from that file.
package figures

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Row is one figure: its samples (one per run, or per round where a run has several) and
// what they are.
type Row struct {
	Name    string    `json:"name"`
	Unit    string    `json:"unit"` // "s", "x" (a ratio), "MB/s", "B", "lines"
	Goal    string    `json:"goal,omitempty"`
	Note    string    `json:"note"`
	Samples []float64 `json:"samples"`
	Min     float64   `json:"-"` // NaN without samples (JSON: null)
	Median  float64   `json:"-"`
	Max     float64   `json:"-"`
	Met     *bool     `json:"goal_met,omitempty"` // the median against Goal; nil: no goal or no sample
}

// MarshalJSON writes the row with min, median and max (null without samples).
func (row *Row) MarshalJSON() ([]byte, error) {
	type plain Row
	num := func(v float64) *float64 {
		if math.IsNaN(v) {
			return nil
		}
		return &v
	}
	return json.Marshal(struct {
		*plain
		Min    *float64 `json:"min"`
		Median *float64 `json:"median"`
		Max    *float64 `json:"max"`
	}{(*plain)(row), num(row.Min), num(row.Median), num(row.Max)})
}

// Report is one invocation of the bench.
type Report struct {
	Runs    int     `json:"runs"`
	Seconds float64 `json:"seconds"` // the whole invocation
	Machine string  `json:"machine"`
	Rows    []*Row  `json:"figures"`
	index   map[string]*Row
}

// New returns a report with every row of Table, no samples yet.
func New(runs int, machine string) *Report {
	r := &Report{Runs: runs, Machine: machine, index: map[string]*Row{}}
	for _, s := range Table {
		row := s
		r.Rows = append(r.Rows, &row)
		r.index[row.Name] = &row
	}
	return r
}

// Add records one sample of the row name (one of Table).
func (r *Report) Add(name string, v float64) {
	row, ok := r.index[name]
	if !ok {
		panic("figures: no row " + name + " in Table")
	}
	row.Samples = append(row.Samples, v)
}

// Row returns the row name, nil if Table has none.
func (r *Report) Row(name string) *Row { return r.index[name] }

// Finish computes each row's statistics and checks its goal.
func (r *Report) Finish() {
	for _, row := range r.Rows {
		row.Min, row.Median, row.Max = Stats(row.Samples)
		row.Met = nil
		if len(row.Samples) > 0 {
			if ok, err := MeetsGoal(row.Median, row.Goal); err == nil && row.Goal != "" {
				row.Met = &ok
			}
		}
	}
}

// Stats returns min, median and max of v (the median of an even count is the mean of the
// two middle values); all NaN for no samples.
func Stats(v []float64) (min, median, max float64) {
	if len(v) == 0 {
		return math.NaN(), math.NaN(), math.NaN()
	}
	c := append([]float64(nil), v...)
	sort.Float64s(c)
	median = c[len(c)/2]
	if len(c)%2 == 0 {
		median = (c[len(c)/2-1] + c[len(c)/2]) / 2
	}
	return c[0], median, c[len(c)-1]
}

// MeetsGoal reports whether v meets goal, "<= X" or ">= X" (X a number, a unit after it is
// ignored: "<= 0.35 s"); an empty goal is always met.
func MeetsGoal(v float64, goal string) (bool, error) {
	if goal == "" {
		return true, nil
	}
	f := strings.Fields(goal)
	if len(f) < 2 {
		return false, fmt.Errorf("goal %q: want \"<= X\" or \">= X\"", goal)
	}
	x, err := strconv.ParseFloat(f[1], 64)
	if err != nil {
		return false, fmt.Errorf("goal %q: %v", goal, err)
	}
	switch f[0] {
	case "<=":
		return v <= x, nil
	case ">=":
		return v >= x, nil
	}
	return false, fmt.Errorf("goal %q: want \"<= X\" or \">= X\"", goal)
}

// Format writes v in the row's unit.
func (row *Row) Format(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	switch row.Unit {
	case "s", "x":
		return strconv.FormatFloat(v, 'f', 3, 64)
	case "MB/s":
		return strconv.FormatFloat(v, 'f', 0, 64)
	default:
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
}

func (row *Row) verdict() string {
	switch {
	case row.Met == nil:
		return ""
	case *row.Met:
		return "met"
	default:
		return "missed"
	}
}

// WriteText prints the report as aligned lines: name, min / median / max, unit, goal and
// whether the median meets it, the count of samples, what the row is.
func (r *Report) WriteText(w io.Writer) error {
	wn := 0
	for _, row := range r.Rows {
		wn = max(wn, len(row.Name))
	}
	fmt.Fprintf(w, "%-*s %27s %-5s %-12s %-6s %s\n", wn, "figure", "min / median / max", "unit", "goal", "", "n  what")
	for _, row := range r.Rows {
		mmm := fmt.Sprintf("%s / %s / %s", row.Format(row.Min), row.Format(row.Median), row.Format(row.Max))
		if len(row.Samples) == 1 {
			mmm = row.Format(row.Median)
		}
		_, err := fmt.Fprintf(w, "%-*s %27s %-5s %-12s %-6s %-2d %s\n", wn, row.Name, mmm, row.Unit, row.Goal, row.verdict(), len(row.Samples), row.Note)
		if err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(w, "runs: %d, bench time %.0f s, %s\n", r.Runs, r.Seconds, r.Machine)
	return err
}

// WriteJSON writes the report, every sample included.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// ReadJSON reads a report WriteJSON wrote; its rows are its own (not Table's).
func ReadJSON(rd io.Reader) (*Report, error) {
	var r Report
	if err := json.NewDecoder(rd).Decode(&r); err != nil {
		return nil, fmt.Errorf("bench JSON: %w", err)
	}
	if len(r.Rows) == 0 {
		return nil, errors.New("bench JSON: no figures")
	}
	r.index = map[string]*Row{}
	for _, row := range r.Rows {
		row.Min, row.Median, row.Max = Stats(row.Samples)
		r.index[row.Name] = row
	}
	return &r, nil
}

// Compare prints, per row with samples in both, the medians of a and b and their difference
// relative to a (how well two invocations agree).
func Compare(w io.Writer, a, b *Report) {
	for _, ra := range a.Rows {
		rb := b.Row(ra.Name)
		if rb == nil || len(ra.Samples) == 0 || len(rb.Samples) == 0 {
			continue
		}
		d := "n/a"
		if ra.Median != 0 {
			d = fmt.Sprintf("%+6.1f%%", 100*(rb.Median-ra.Median)/ra.Median)
		}
		fmt.Fprintf(w, "%-34s %10s %10s %7s\n", ra.Name, ra.Format(ra.Median), rb.Format(rb.Median), d)
	}
}
