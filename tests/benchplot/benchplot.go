// Package benchplot draws the export/receive benchmark (tests/bench, `make bench`) as an SVG
// picture: one horizontal bar per step of the story (reset to READY, export, receive, wake,
// verify, flash, hand-off, OVMF), the sevshim path and plain QEMU migration side by side.
// It uses gonum.org/v1/plot (pinned in go.mod) and its SVG backend without embedded fonts,
// so the file is small and the same input gives the same bytes.
package benchplot

import (
	"fmt"
	"image/color"
	"io"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// Step is one step of the story with its duration on each path (zero: the path has no
// such step).
type Step struct {
	Name           string
	Sevshim, Plain time.Duration
}

// Story is what the picture shows.
type Story struct {
	Title string // e.g. "256 MiB guest, 48 MiB dirty"
	Steps []Step
}

// Totals are the sums of the steps on each path.
func (s *Story) Totals() (sevshim, plain time.Duration) {
	for _, st := range s.Steps {
		sevshim += st.Sevshim
		plain += st.Plain
	}
	return
}

var (
	colSevshim = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	colPlain   = color.RGBA{R: 0xbb, G: 0xbb, B: 0xbb, A: 0xff}
)

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// WriteSVG renders s as SVG into w.
func WriteSVG(w io.Writer, s *Story) error {
	p, wd, ht, err := newPlot(s)
	if err != nil {
		return err
	}
	wt, err := p.WriterTo(wd, ht, "svg")
	if err != nil {
		return err
	}
	_, err = wt.WriteTo(w)
	return err
}

// newPlot lays out the picture of s and its size.
func newPlot(s *Story) (*plot.Plot, vg.Length, vg.Length, error) {
	if len(s.Steps) == 0 {
		return nil, 0, 0, fmt.Errorf("benchplot: no steps")
	}
	p := plot.New()
	ts, tp := s.Totals()
	p.Title.Text = fmt.Sprintf("%s: sevshim %.2f s vs plain QEMU %.2f s", s.Title, ts.Seconds(), tp.Seconds())
	p.X.Label.Text = "milliseconds"
	p.X.Min = 0
	p.X.Tick.Marker = plot.TickerFunc(func(lo, hi float64) []plot.Tick {
		ts := plot.DefaultTicks{}.Ticks(lo, hi)
		for i := range ts {
			if ts[i].Label != "" {
				ts[i].Label = fmt.Sprintf("%.0f", ts[i].Value)
			}
		}
		return ts
	})
	// The first step on top: bar i sits at y = n-1-i.
	n := len(s.Steps)
	vs, vp := make(plotter.Values, n), make(plotter.Values, n)
	names := make([]string, n)
	var lx plotter.XYs
	var ll []string
	for i, st := range s.Steps {
		y := n - 1 - i
		vs[y], vp[y] = ms(st.Sevshim), ms(st.Plain)
		names[y] = st.Name
	}
	const bar = 9
	width := vg.Points(bar)
	bs, err := plotter.NewBarChart(vs, width)
	if err != nil {
		return nil, 0, 0, err
	}
	bp, err := plotter.NewBarChart(vp, width)
	if err != nil {
		return nil, 0, 0, err
	}
	for _, b := range []*plotter.BarChart{bs, bp} {
		b.Horizontal = true
		b.LineStyle.Width = 0
	}
	bs.Color, bs.Offset = colSevshim, width/2
	bp.Color, bp.Offset = colPlain, -width/2
	// Each bar is labelled with its milliseconds, just right of its end.
	for y := 0; y < n; y++ {
		for _, v := range []struct {
			x   float64
			off float64
		}{{vs[y], 0.18}, {vp[y], -0.18}} {
			lx = append(lx, plotter.XY{X: v.x, Y: float64(y) + v.off})
			ll = append(ll, fmt.Sprintf(" %.0f", v.x))
		}
	}
	labels, err := plotter.NewLabels(plotter.XYLabels{XYs: lx, Labels: ll})
	if err != nil {
		return nil, 0, 0, err
	}
	for i := range labels.TextStyle {
		labels.TextStyle[i].YAlign = -0.5
	}
	p.Add(plotter.NewGrid(), bs, bp, labels)
	p.Legend.Add("sevshim (hostctl export + receive)", bs)
	p.Legend.Add("plain QEMU (migrate to file + -incoming)", bp)
	p.Legend.Top = true
	p.NominalY(names...)
	// Room right of the longest bar for its label.
	var mx float64
	for y := 0; y < n; y++ {
		mx = max(mx, vs[y], vp[y])
	}
	p.X.Max = mx * 1.15
	return p, 18 * vg.Centimeter, vg.Length(3+n) * vg.Centimeter, nil
}
