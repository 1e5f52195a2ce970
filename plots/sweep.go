package plots

import (
	"cmp"
	"errors"
	"fmt"
	"image/color"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/palette/moreland"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/portsim/portsim/sim/sweep"
)

// Names of the sweep figures, without extension.
const (
	sweepFailureName      = "sweep-failure"
	sweepFirstFailureName = "sweep-first-failure"
	sweepHeatmapName      = "sweep-heatmap"
)

// Look of the sweep figures.
const (
	bandAlpha     = 0x40 // of 0xff: the confidence band, under its line
	markerRadius  = vg.Length(3.5)
	heatColours   = 256
	heatSwatches  = 5  // legend swatches: 0, ¼, ½, ¾ and all of the top value
	maxLabelCols  = 16 // the heatmap writes each cell's value when it has
	maxLabelRows  = 20 // at most this many columns and rows
	labelFontSize = 10
)

var (
	// sweepGlyphs mark the lines of a two-parameter sweep, cycled with
	// destColours: with 7 colours and 4 shapes, 28 lines differ.
	sweepGlyphs = []draw.GlyphDrawer{draw.CircleGlyph{}, draw.BoxGlyph{}, draw.PyramidGlyph{}, draw.RingGlyph{}}
	// erlangDash is the Erlang B line's dash pattern.
	erlangDash = []vg.Length{vg.Points(6), vg.Points(3)}
	// colNotRun fills heatmap cells of points the sweep does not have.
	colNotRun = color.NRGBA{R: 0xD0, G: 0xD0, B: 0xD0, A: 0xff}
	// heatPalette colours the heatmap's cells (see lightToDark).
	heatPalette = lightToDark()
)

// WriteSweep writes the sweep's figures into dir and returns the file names it wrote (base names, in a stable order).
//
// Each figure is written as NAME.png and NAME.svg, 10 × 7 inches:
//
//   - sweep-failure: the failure probability against the varied
//     parameter, its mean over the replications as a line with markers and
//     its 95 % confidence interval as a shaded band (whiskers where a line
//     has a single point), with Erlang B as a dashed line where points have
//     it. The quantity is the most loaded domain's steady-state blocking
//     when every point has one, else the failure probability over the
//     whole run; the y axis says which.
//   - sweep-first-failure: the time to the first failure in seconds, drawn
//     the same way over the points where a replication failed. When none
//     did, it is not written and an earlier one in dir is removed.
//   - sweep-heatmap, with two parameters only: the mean of the quantity of
//     sweep-failure over the grid, the first parameter up the y axis and
//     the second along x, one equal cell per pair of values (labelled with
//     the values as written, however they are spaced), each with its value
//     written in when the grid is small enough, and a legend of colour
//     swatches. With one parameter an earlier one in dir is removed.
//
// With two parameters, the line figures draw one line per value of one
// parameter against the other along x: the x axis takes the numeric
// parameter when only one is, else the one with more values, else the
// second (the grid's faster one). A numeric parameter is drawn at its
// numbers (durations in seconds), a non-numeric one at its position among
// the values, labelled with them.
//
// Every figure is built before any file is written, so a Result that
// cannot be drawn (nil, no points, not one or two varied parameters, a
// point outside the grid or with a number that is not finite) leaves dir
// as it was. The same Result gives byte-identical files.
func WriteSweep(res *sweep.Result, dir string) ([]string, error) {
	g, err := newSweepGrid(res)
	if err != nil {
		return nil, err
	}
	type named struct {
		name string
		fig  *Figure
	}
	var figs []named
	var stale []string
	f, err := g.lineFigure(g.failureQuantity())
	if err != nil {
		return nil, err
	}
	figs = append(figs, named{sweepFailureName, f})
	if g.anyFailed() {
		f, err := g.lineFigure(firstFailureQuantity)
		if err != nil {
			return nil, err
		}
		figs = append(figs, named{sweepFirstFailureName, f})
	} else {
		stale = append(stale, sweepFirstFailureName)
	}
	if len(g.axes) == 2 {
		figs = append(figs, named{sweepHeatmapName, g.heatmap()})
	} else {
		stale = append(stale, sweepHeatmapName)
	}

	var written []string
	for _, n := range figs {
		if err := writeFigure(n.fig, dir, n.name); err != nil {
			return written, err
		}
		written = append(written, n.name+".png", n.name+".svg")
	}
	// Files an earlier sweep wrote and this one does not would be taken
	// for this sweep's.
	for _, name := range stale {
		for _, ext := range []string{".png", ".svg"} {
			if err := os.Remove(filepath.Join(dir, name+ext)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return written, err
			}
		}
	}
	return written, nil
}

// sweepAxis is one varied parameter as the figures draw it.
type sweepAxis struct {
	sweep.Vary
	// numeric is set when every point has a number for the parameter, and
	// duration when some of those numbers were read from a duration.
	numeric, duration bool
}

// label is the axis label: the path, with its unit where it is known.
func (a sweepAxis) label() string {
	switch {
	case a.duration:
		return a.Path + " (s)"
	case strings.HasSuffix(a.Path, "arrival.rate"), strings.HasSuffix(a.Path, "arrival.to"):
		return a.Path + " (connections/s)"
	}
	return a.Path
}

// setAxis labels ax after a and sets its ticks: numbers for a numeric
// parameter, else its positions (see positions).
func (a sweepAxis) setAxis(ax *plot.Axis) {
	ax.Label.Text = a.label()
	if a.numeric {
		ax.Tick.Marker = numberTicks{dense: true}
		return
	}
	a.positions(ax)
}

// positions spans ax over the positions of a's values, 0, 1, …, labelled
// with the values as written.
func (a sweepAxis) positions(ax *plot.Axis) {
	ax.Tick.Marker = valueTicks(a.Values)
	ax.Min, ax.Max = -0.5, float64(len(a.Values))-0.5
	ax.Padding = 0
}

// valueTicks label positions 0, 1, … with a parameter's values as written.
type valueTicks []string

// Ticks implements plot.Ticker.
func (t valueTicks) Ticks(_, _ float64) []plot.Tick {
	ticks := make([]plot.Tick, len(t))
	for i, v := range t {
		ticks[i] = plot.Tick{Value: float64(i), Label: v}
	}
	return ticks
}

// sweepGrid is a Result checked for drawing.
type sweepGrid struct {
	res  *sweep.Result
	axes []sweepAxis
	// at holds the points by grid index, nil where the Result has none
	// (an interrupted sweep, a shard).
	at []*sweep.Point
	// steady is set when every point has a steady-state blocking.
	steady bool
}

// newSweepGrid checks res and indexes its points.
func newSweepGrid(res *sweep.Result) (*sweepGrid, error) {
	if res == nil {
		return nil, errors.New("plots: no sweep result")
	}
	if n := len(res.Vary); n != 1 && n != 2 {
		return nil, fmt.Errorf("plots: a sweep varies one or two parameters, this one %d", n)
	}
	size := 1
	for _, v := range res.Vary {
		if len(v.Values) == 0 {
			return nil, fmt.Errorf("plots: varied parameter %q has no values", v.Path)
		}
		size *= len(v.Values)
	}
	if len(res.Points) == 0 {
		return nil, errors.New("plots: the sweep has no points")
	}
	g := &sweepGrid{res: res, at: make([]*sweep.Point, size), steady: true}
	for i := range res.Points {
		p := &res.Points[i]
		switch {
		case p.Index < 0 || p.Index >= size:
			return nil, fmt.Errorf("plots: point %d has grid index %d, outside the %d points of the grid", i, p.Index, size)
		case g.at[p.Index] != nil:
			return nil, fmt.Errorf("plots: two points have grid index %d", p.Index)
		case len(p.X) != len(res.Vary) || len(p.Numeric) != len(res.Vary):
			return nil, fmt.Errorf("plots: point %d has %d numbers and %d numeric flags for %d varied parameters",
				i, len(p.X), len(p.Numeric), len(res.Vary))
		case !finite(p):
			return nil, fmt.Errorf("plots: point %d has a figure that is not a finite number", i)
		}
		g.at[p.Index] = p
		g.steady = g.steady && p.SteadyBlocking.N > 0
	}
	for k, v := range res.Vary {
		a := sweepAxis{Vary: v, numeric: true}
		for _, p := range res.Points {
			a.numeric = a.numeric && p.Numeric[k]
		}
		for _, s := range v.Values {
			if _, err := strconv.ParseFloat(s, 64); err != nil {
				a.duration = a.numeric
			}
		}
		g.axes = append(g.axes, a)
	}
	return g, nil
}

// finite reports whether the figures of p that may be drawn are finite:
// plotters reject NaN and infinities, and a heatmap would misplace them.
func finite(p *sweep.Point) bool {
	vals := slices.Clone(p.X)
	for _, s := range []sweep.Stat{p.FailureProb, p.SteadyBlocking, p.FirstFailureS} {
		vals = append(vals, s.Mean, s.Lo, s.Hi)
	}
	if p.ErlangB != nil {
		vals = append(vals, *p.ErlangB)
	}
	for _, v := range vals {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return false
		}
	}
	return true
}

// cell returns p's position among each parameter's values (row-major:
// the last parameter changes fastest).
func (g *sweepGrid) cell(p *sweep.Point) []int {
	if len(g.axes) == 1 {
		return []int{p.Index}
	}
	n := len(g.axes[1].Values)
	return []int{p.Index / n, p.Index % n}
}

// coord returns where p is drawn along parameter k.
func (g *sweepGrid) coord(p *sweep.Point, k int) float64 {
	if g.axes[k].numeric {
		return p.X[k]
	}
	return float64(g.cell(p)[k])
}

// layout returns the parameter along x and the one with a line per value
// (-1 for a single parameter): x takes the numeric one when only one is,
// else the one with more values, else the second.
func (g *sweepGrid) layout() (xa, sa int) {
	if len(g.axes) == 1 {
		return 0, -1
	}
	a, b := g.axes[0], g.axes[1]
	if a.numeric != b.numeric && a.numeric || a.numeric == b.numeric && len(a.Values) > len(b.Values) {
		return 0, 1
	}
	return 1, 0
}

// anyFailed reports whether a replication of some point failed.
func (g *sweepGrid) anyFailed() bool {
	return slices.ContainsFunc(g.res.Points, func(p sweep.Point) bool { return p.FirstFailureS.N > 0 })
}

// title is "WHAT — scenario S, N replications per point", with the points
// drawn out of the grid's when the Result has only some.
func (g *sweepGrid) title(what string) string {
	reps := fmt.Sprintf("%d replications per point", g.res.Replications)
	if g.res.Replications == 1 {
		reps = "1 replication per point"
	}
	t := fmt.Sprintf("%s — scenario %s, %s", what, g.res.Scenario, reps)
	if n := len(g.res.Points); n < len(g.at) {
		t += fmt.Sprintf(", %d of %d points", n, len(g.at))
	}
	return t
}

// sweepQuantity is what a line figure draws.
type sweepQuantity struct {
	title, axis string // "Failure probability", "failure probability (whole run)"
	mean        string // the legend's name of the mean
	// stat returns the point's figure, false for a point without it.
	stat    func(*sweep.Point) (sweep.Stat, bool)
	erlangB bool // overlay Point.ErlangB
}

// failureQuantity is the steady-state blocking when every point has one
// (the figure Erlang B predicts), else the failure probability of the
// whole run: a line mixing the two would compare unlike figures.
func (g *sweepGrid) failureQuantity() sweepQuantity {
	if g.steady {
		return sweepQuantity{
			title: "Steady-state blocking", axis: "steady-state blocking probability\n(most loaded domain)",
			mean: "mean over the replications", erlangB: true,
			stat: func(p *sweep.Point) (sweep.Stat, bool) { return p.SteadyBlocking, true },
		}
	}
	return sweepQuantity{
		title: "Failure probability", axis: "failure probability (whole run)",
		mean: "mean over the replications", erlangB: true,
		stat: func(p *sweep.Point) (sweep.Stat, bool) { return p.FailureProb, true },
	}
}

// firstFailureQuantity is the time to the first failure, over the
// replications that had one.
var firstFailureQuantity = sweepQuantity{
	title: "Time to first failure", axis: "time to first failure (s)",
	mean: "mean over the replications that failed",
	stat: func(p *sweep.Point) (sweep.Stat, bool) { return p.FirstFailureS, p.FirstFailureS.N > 0 },
}

// sweepMark is one point of a line.
type sweepMark struct {
	x       float64
	st      sweep.Stat
	erlangB *float64
}

// lineFigure draws q against the x parameter (see layout): per line, its
// band first, so that no band hides another line, then the mean and the
// Erlang B line over all bands.
func (g *sweepGrid) lineFigure(q sweepQuantity) (*Figure, error) {
	xa, sa := g.layout()
	what := q.title + " vs " + g.axes[xa].Path
	if sa >= 0 {
		what += ", a line per " + g.axes[sa].Path
	}
	f := newFigure(g.title(what), false)
	p := f.Top
	g.axes[xa].setAxis(&p.X)
	p.Y.Label.Text = q.axis
	p.Y.Tick.Marker = numberTicks{dense: true}
	p.Add(grid())

	lines := 1
	if sa >= 0 {
		lines = len(g.axes[sa].Values)
		f.Legend = append(f.Legend, LegendEntry{Name: g.axes[sa].label() + ":"})
	}
	var peak float64
	var fronts []plot.Plotter
	hasErlang := false
	for s := range lines {
		var marks []sweepMark
		for _, pt := range g.at {
			if pt == nil || sa >= 0 && g.cell(pt)[sa] != s {
				continue
			}
			if st, ok := q.stat(pt); ok {
				m := sweepMark{x: g.coord(pt, xa), st: st}
				if q.erlangB && pt.ErlangB != nil {
					m.erlangB = pt.ErlangB
					peak = max(peak, *pt.ErlangB)
				}
				marks = append(marks, m)
				peak = max(peak, st.Mean, st.Hi)
			}
		}
		if len(marks) == 0 {
			continue
		}
		slices.SortStableFunc(marks, func(a, b sweepMark) int { return cmp.Compare(a.x, b.x) })
		col := destColours[s%len(destColours)]
		band, err := confidenceBand(marks, col)
		if err != nil {
			return nil, err
		}
		p.Add(band)
		mean, erl, err := meanLines(marks, col, sweepGlyphs[s%len(sweepGlyphs)])
		if err != nil {
			return nil, err
		}
		fronts = append(fronts, mean...)
		fronts = append(fronts, erl...)
		hasErlang = hasErlang || len(erl) > 0
		if sa >= 0 {
			f.Legend = append(f.Legend, LegendEntry{Name: g.axes[sa].Values[s], Thumbs: thumbs(mean)})
		} else {
			f.Legend = append(f.Legend, LegendEntry{Name: q.mean, Thumbs: thumbs(mean)})
		}
	}
	p.Add(fronts...)

	// The shared samples: in the line's colour for one line, in a neutral
	// grey for several.
	key := colKey
	if sa < 0 {
		key = destColours[0]
	}
	shade := key
	shade.A = bandAlpha
	f.Legend = append(f.Legend, LegendEntry{Name: "95 % confidence interval", Thumbs: []plot.Thumbnailer{&plotter.Polygon{Color: shade}}})
	if hasErlang {
		l, s := erlangStyle(key)
		f.Legend = append(f.Legend, LegendEntry{Name: "Erlang B", Thumbs: []plot.Thumbnailer{
			&plotter.Line{LineStyle: l}, &plotter.Scatter{GlyphStyle: s},
		}})
	}

	p.Y.Min, p.Y.Max = 0, peak*1.1
	if peak == 0 {
		p.Y.Max = 1
	}
	return f, nil
}

// confidenceBand returns the shaded band between the marks' Lo and Hi, or
// for a single mark, which a band would not show, whiskers.
func confidenceBand(marks []sweepMark, col color.NRGBA) (plot.Plotter, error) {
	shade := col
	shade.A = bandAlpha
	if len(marks) == 1 {
		m := marks[0]
		return &plotter.YErrorBars{
			XYs:       plotter.XYs{{X: m.x, Y: m.st.Mean}},
			YErrors:   plotter.YErrors{{Low: m.st.Mean - m.st.Lo, High: m.st.Hi - m.st.Mean}},
			LineStyle: draw.LineStyle{Color: col, Width: vg.Points(1.25)},
			CapWidth:  4 * markerRadius,
		}, nil
	}
	ring := make(plotter.XYs, 0, 2*len(marks))
	for _, m := range marks {
		ring = append(ring, plotter.XY{X: m.x, Y: m.st.Lo})
	}
	for i := len(marks) - 1; i >= 0; i-- {
		ring = append(ring, plotter.XY{X: marks[i].x, Y: marks[i].st.Hi})
	}
	band, err := plotter.NewPolygon(ring)
	if err != nil {
		return nil, err
	}
	band.Color = shade
	band.LineStyle = draw.LineStyle{}
	return band, nil
}

// meanLines returns the line and markers of the marks' means and, when
// some marks have one, the Erlang B line and its markers.
func meanLines(marks []sweepMark, col color.NRGBA, shape draw.GlyphDrawer) (mean, erlangB []plot.Plotter, err error) {
	xys := make(plotter.XYs, len(marks))
	var erl plotter.XYs
	for i, m := range marks {
		xys[i] = plotter.XY{X: m.x, Y: m.st.Mean}
		if m.erlangB != nil {
			erl = append(erl, plotter.XY{X: m.x, Y: *m.erlangB})
		}
	}
	l, s, err := plotter.NewLinePoints(xys)
	if err != nil {
		return nil, nil, err
	}
	l.LineStyle = draw.LineStyle{Color: col, Width: vg.Points(2)}
	s.GlyphStyle = draw.GlyphStyle{Color: col, Radius: markerRadius, Shape: shape}
	if len(erl) == 0 {
		return []plot.Plotter{l, s}, nil, nil
	}
	// Crosses as well as dashes, so that an Erlang B value alone on its
	// line still shows.
	el, es, err := plotter.NewLinePoints(erl)
	if err != nil {
		return nil, nil, err
	}
	el.LineStyle, es.GlyphStyle = erlangStyle(col)
	return []plot.Plotter{l, s}, []plot.Plotter{el, es}, nil
}

// erlangStyle is the Erlang B line's style in col: dashed, with crosses.
func erlangStyle(col color.NRGBA) (draw.LineStyle, draw.GlyphStyle) {
	return draw.LineStyle{Color: col, Width: vg.Points(1.5), Dashes: erlangDash},
		draw.GlyphStyle{Color: col, Radius: markerRadius, Shape: draw.CrossGlyph{}}
}

// thumbs returns the legend samples of plotters that have one.
func thumbs(ps []plot.Plotter) []plot.Thumbnailer {
	var ts []plot.Thumbnailer
	for _, p := range ps {
		if t, ok := p.(plot.Thumbnailer); ok {
			ts = append(ts, t)
		}
	}
	return ts
}

// heatmap draws the mean of the failure quantity over a two-parameter
// grid: the first parameter up, the second along x, at their positions
// among the values, so that every cell has the same size whatever the
// values' spacing (often geometric).
func (g *sweepGrid) heatmap() *Figure {
	q := g.failureQuantity()
	rows, cols := g.axes[0], g.axes[1]
	f := newFigure(g.title(fmt.Sprintf("%s: mean over %s × %s", q.title, rows.Path, cols.Path)), false)
	p := f.Top
	p.X.Label.Text, p.Y.Label.Text = cols.label(), rows.label()
	cols.positions(&p.X)
	rows.positions(&p.Y)

	z := make([]float64, len(g.at))
	var peak float64
	missing := false
	for i, pt := range g.at {
		if pt == nil {
			z[i], missing = math.NaN(), true
			continue
		}
		st, _ := q.stat(pt)
		z[i] = st.Mean
		peak = max(peak, st.Mean)
	}
	if peak == 0 {
		peak = 1 // all zero: every cell white, and the legend still reads
	}
	hm := plotter.NewHeatMap(heatGrid{cols: len(cols.Values), z: z}, heatPalette)
	hm.Min, hm.Max, hm.NaN = 0, peak, colNotRun
	p.Add(hm)
	if len(cols.Values) <= maxLabelCols && len(rows.Values) <= maxLabelRows {
		p.Add(cellLabels(z, len(cols.Values), peak))
	}

	f.Legend = append(f.Legend, LegendEntry{Name: "mean " + strings.ToLower(q.title) + ":"})
	for k := range heatSwatches {
		v := peak * float64(k) / (heatSwatches - 1)
		f.Legend = append(f.Legend, LegendEntry{Name: probLabel(v), Thumbs: []plot.Thumbnailer{swatch(shadeOf(v, peak))}})
	}
	if missing {
		f.Legend = append(f.Legend, LegendEntry{Name: "not run", Thumbs: []plot.Thumbnailer{swatch(colNotRun)}})
	}
	return f
}

// lightToDark returns the heatmap's palette, for 0 up to the highest
// value: moreland's black-body scale from pale yellow through orange and
// red to a dark red. Its luminance falls steadily, so it reads in grey and
// under colour blindness; its white and black ends are left out, so that
// the lowest cells stand out from the page and the highest keep a hue.
func lightToDark() heatColors {
	const light, dark = 0.97, 0.22 // of the scale, from black (0) to white (1)
	cm := moreland.BlackBody()
	cm.SetMax(1)
	cs := make(heatColors, heatColours)
	for i := range cs {
		// At fails only outside [0, 1] (SetMax above), where these are not.
		cs[i], _ = cm.At(light - (light-dark)*float64(i)/float64(heatColours-1))
	}
	return cs
}

// heatColors is a palette.Palette of the colours it holds.
type heatColors []color.Color

// Colors implements palette.Palette.
func (h heatColors) Colors() []color.Color { return h }

// heatGrid is the heatmap's grid: cell (c, r) at (c, r), with value
// z[r*cols+c] (row-major, as the sweep's points).
type heatGrid struct {
	cols int
	z    []float64
}

// Dims implements plotter.GridXYZ.
func (h heatGrid) Dims() (c, r int) { return h.cols, len(h.z) / h.cols }

// Z implements plotter.GridXYZ.
func (h heatGrid) Z(c, r int) float64 { return h.z[r*h.cols+c] }

// X implements plotter.GridXYZ.
func (h heatGrid) X(c int) float64 { return float64(c) }

// Y implements plotter.GridXYZ.
func (h heatGrid) Y(r int) float64 { return float64(r) }

// shadeOf returns the colour the heatmap gives v on a scale from 0 to
// peak: the palette entry plotter.HeatMap picks.
func shadeOf(v, peak float64) color.Color {
	return heatPalette[int(v/peak*float64(len(heatPalette)-1)+0.5)]
}

// cellLabels writes each cell's value in its centre, black on light
// cells and white on dark ones.
func cellLabels(z []float64, cols int, peak float64) *plotter.Labels {
	l := &plotter.Labels{}
	for i, v := range z {
		if math.IsNaN(v) {
			continue
		}
		sty := text.Style{
			Color: color.Black, Font: sans(labelFontSize), XAlign: draw.XCenter, YAlign: draw.YCenter,
			Handler: plot.DefaultTextHandler,
		}
		if color.GrayModel.Convert(shadeOf(v, peak)).(color.Gray).Y < 0x80 {
			sty.Color = color.White
		}
		l.XYs = append(l.XYs, plotter.XY{X: float64(i % cols), Y: float64(i / cols)})
		l.Labels = append(l.Labels, probLabel(v))
		l.TextStyle = append(l.TextStyle, sty)
	}
	return l
}

// probLabel writes a probability with two significant digits: "0.12",
// "0.0031", "1.2e-05".
func probLabel(v float64) string {
	return strconv.FormatFloat(v, 'g', 2, 64)
}

// swatch is a legend sample filled with c, outlined so that a white one
// shows.
func swatch(c color.Color) *plotter.Polygon {
	return &plotter.Polygon{Color: c, LineStyle: draw.LineStyle{Color: colKey, Width: vg.Points(0.5)}}
}
