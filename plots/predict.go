package plots

import (
	"cmp"
	"errors"
	"fmt"
	"image/color"
	"math"
	"slices"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/portsim/portsim/sim/predict"
)

// Names of the predict figures, without extension.
const (
	predictTradeoffName = "predict-tradeoff"
	predictGuessesName  = "predict-guesses"
)

// Look of the predict figures.
const (
	predictLineWidth = vg.Length(1)     // joins an allocator's points: a guide, not data
	barWidth         = vg.Length(1)     // 95 % interval bars
	loadFontSize     = 9                // the load annotations, below the tick labels' 11
	loadGap          = vg.Length(2)     // between a marker's edge (or its centre line) and its annotation
	arrowLength      = vg.Length(16)    // of a lower bound's arrow, from the point
	arrowHead        = vg.Length(3.5)   // half width and height of its head
	topMargin        = 0.5              // bits above the uniform line on the trade-off's y axis
	probFloor        = 1e-5             // the guesses figure's lowest probability, unless a value is lower
	guessesDotRadius = markerRadius - 1 // up to 16 points per line: smaller markers than the trade-off's
)

// uniformStyle draws the reference of a uniform choice over the range:
// dashed and grey like the sweep's Erlang B, the other analytic reference
// of the package, so that it reads as a model and belongs to no allocator.
var uniformStyle = draw.LineStyle{Color: colKey, Width: vg.Points(1.5), Dashes: erlangDash}

// WritePredict writes the figures of a predict report (portsim's
// port-prediction analysis, package sim/predict) into dir and returns the
// names of the files it wrote (base names, in a stable order).
//
// Each figure is written as NAME.png and NAME.svg, 10 × 7 inches, like the
// package's other figures:
//
//   - predict-tradeoff: the randomness-versus-reuse trade-off, one point
//     per allocator and load level. x: Row.ReuseCycle, the share of the
//     victim's connections whose port was used toward the same destination
//     less than one TIME_WAIT before, in percent on a linear axis from 0.
//     y: Row.MinEntropy, the min-entropy in bits of the attacker's
//     prediction of the next port (higher is less predictable), from 0 to
//     half a bit above log2 of the range size, where a dashed line marks a
//     uniform choice over the range. One colour and marker shape per
//     allocator, its points joined by a thin line in increasing load and
//     annotated with the load ("×0.1": Row.Scale times the scenario's
//     rates); 95 % intervals as bars, vertical for min-entropy and
//     horizontal for reuse. A min-entropy known only from below
//     (Estimate.Open) has no bar but an upward arrow and reads "≥ N bits"
//     in its annotation. An annotation that would overlap another is left
//     out (its marker stays); a row without a finite estimate is not
//     drawn and the legend counts it.
//   - predict-guesses: P_K, the held-out probability that one of the
//     attacker's K best guesses is the port, against K (Row.Curve), one
//     line per allocator at one load level (scale 1 when the report has
//     it, else the middle one; see guessScale), on log-log axes: K from 1
//     to the range size, P from 1e-5 (lower when a value is) to 1. P = 0,
//     no held-out hit, cannot sit on a log axis and is drawn on its bottom
//     edge, which the legend says. The dashed line is a uniform choice,
//     P = K/N; a dotted one marks the report's K (Report.Guesses).
//
// Allocators keep the order of their first row in rep.Rows, so colours
// follow the order predict.Run compared them in. Both figures are built
// before any file is written, so a report that cannot be drawn (nil, no
// rows, a range of fewer than 2 ports) is an error and leaves dir as it
// was. The same report gives byte-identical files.
func WritePredict(rep *predict.Report, dir string) ([]string, error) {
	lines, err := predictLines(rep)
	if err != nil {
		return nil, err
	}
	type named struct {
		name string
		fig  *Figure
	}
	figs := []named{
		{predictTradeoffName, predictTradeoff(rep, lines)},
		{predictGuessesName, predictGuesses(rep, lines)},
	}
	var written []string
	for _, n := range figs {
		if err := writeFigure(n.fig, dir, n.name); err != nil {
			return written, err
		}
		written = append(written, n.name+".png", n.name+".svg")
	}
	return written, nil
}

// predictLine is one allocator's rows, in increasing load.
type predictLine struct {
	allocator string
	rows      []*predict.Row
}

// predictLines checks rep and groups its rows by allocator, in the order
// of each allocator's first row; within one, rows are sorted by Scale
// (stably, so that duplicates keep the report's order).
func predictLines(rep *predict.Report) ([]predictLine, error) {
	switch {
	case rep == nil:
		return nil, errors.New("plots: no predict report")
	case len(rep.Rows) == 0:
		return nil, errors.New("plots: the predict report has no rows")
	case rep.RangeSize < 2:
		// A uniform choice over fewer than 2 ports has no entropy to
		// compare with, and the guesses' log axis no room from K = 1.
		return nil, fmt.Errorf("plots: the predict report's range size is %d; need at least 2 ports", rep.RangeSize)
	}
	var lines []predictLine
	for i := range rep.Rows {
		r := &rep.Rows[i]
		k := slices.IndexFunc(lines, func(l predictLine) bool { return l.allocator == r.Allocator })
		if k < 0 {
			k = len(lines)
			lines = append(lines, predictLine{allocator: r.Allocator})
		}
		lines[k].rows = append(lines[k].rows, r)
	}
	for _, l := range lines {
		slices.SortStableFunc(l.rows, func(a, b *predict.Row) int { return cmp.Compare(a.Scale, b.Scale) })
	}
	return lines, nil
}

// predictStyle is the colour and marker shape of the i-th allocator: the
// sweep's cycle, so that 28 allocators differ.
func predictStyle(i int) (color.NRGBA, draw.GlyphDrawer) {
	return destColours[i%len(destColours)], sweepGlyphs[i%len(sweepGlyphs)]
}

// predictTitle is "WHAT — scenario S, host H, N observations per
// allocator and load".
func predictTitle(rep *predict.Report, what string) string {
	t := what + " — scenario " + rep.Scenario
	if rep.Host != "" {
		t += ", host " + rep.Host
	}
	return t + fmt.Sprintf(", %s observations per allocator and load", groupDigits(strconv.Itoa(rep.Observations)))
}

// loadLabel writes a load level as a factor of the scenario's rates:
// "×0.1", "×1", "×10".
func loadLabel(scale float64) string {
	return "×" + strconv.FormatFloat(scale, 'g', -1, 64)
}

// uniformLabel names the reference of a uniform choice over n ports.
func uniformLabel(n int) string {
	return "uniform over " + groupDigits(strconv.Itoa(n)) + " ports"
}

// isFinite reports whether every v is a number plotters can draw.
func isFinite(vs ...float64) bool {
	for _, v := range vs {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return false
		}
	}
	return true
}

// predictTradeoff draws min-entropy against reuse within TIME_WAIT (see
// WritePredict): every allocator's bars first, so that no bar hides a
// marker, then the lines and markers, the arrows and, on top, the load
// annotations.
func predictTradeoff(rep *predict.Report, lines []predictLine) *Figure {
	f := newFigure(predictTitle(rep, "Predictability vs port reuse within TIME_WAIT, per allocator and load"), false)
	p := f.Top
	p.X.Label.Text = "port reuse within TIME_WAIT toward the same destination (% of connections)"
	p.Y.Label.Text = "min-entropy of the next port (bits; higher = less predictable)"
	p.X.Tick.Marker = numberTicks{dense: true}
	p.Y.Tick.Marker = numberTicks{dense: true}
	p.Add(grid())

	uniform := math.Log2(float64(rep.RangeSize))
	xPeak, yPeak := 0.0, uniform+topMargin
	var bars, fronts []plot.Plotter
	labels := &loadLabels{}
	arrows := &lowerBounds{style: draw.LineStyle{Color: colKey, Width: barWidth}}
	skipped := 0
	for i, ln := range lines {
		col, shape := predictStyle(i)
		barStyle := draw.LineStyle{Color: col, Width: barWidth}
		ybars := &plotter.YErrorBars{LineStyle: barStyle, CapWidth: 2 * markerRadius}
		xbars := &plotter.XErrorBars{LineStyle: barStyle, CapWidth: 2 * markerRadius}
		var xys plotter.XYs
		for _, r := range ln.rows {
			// Percent: the shares are small, and "0.4 %" reads better
			// than "0.004".
			x, y := 100*r.ReuseCycle.Value, r.MinEntropy.Value
			if !isFinite(x, y) {
				skipped++
				continue
			}
			xy := plotter.XY{X: x, Y: y}
			xys = append(xys, xy)
			xPeak, yPeak = max(xPeak, x), max(yPeak, y)
			me, rc := r.MinEntropy, r.ReuseCycle
			if !me.Open && isFinite(me.Low, me.High) {
				ybars.XYs = append(ybars.XYs, xy)
				ybars.YErrors = append(ybars.YErrors, struct{ Low, High float64 }{max(0, y-me.Low), max(0, me.High-y)})
				yPeak = max(yPeak, me.High)
			}
			if !rc.Open && isFinite(rc.Low, rc.High) {
				xbars.XYs = append(xbars.XYs, xy)
				xbars.XErrors = append(xbars.XErrors, struct{ Low, High float64 }{max(0, x-100*rc.Low), max(0, 100*rc.High-x)})
				xPeak = max(xPeak, 100*rc.High)
			}
			text := loadLabel(r.Scale)
			if me.Open {
				text += fmt.Sprintf(": ≥ %.1f bits", y)
				arrows.xys = append(arrows.xys, xy)
				arrows.colours = append(arrows.colours, col)
			}
			if rc.Open {
				// No connection of the victim's was counted: the
				// point sits at 0 without saying reuse was 0.
				text += ", reuse not measured"
			}
			labels.add(xy, text, me.Open)
		}
		if len(xys) == 0 {
			f.Legend = append(f.Legend, LegendEntry{Name: ln.allocator + " (no finite estimate)"})
			continue
		}
		if len(ybars.XYs) > 0 {
			bars = append(bars, ybars)
		}
		if len(xbars.XYs) > 0 {
			bars = append(bars, xbars)
		}
		// NewLinePoints fails only on values that are not finite, left
		// out above.
		l, s, _ := plotter.NewLinePoints(xys)
		l.LineStyle = draw.LineStyle{Color: col, Width: predictLineWidth}
		s.GlyphStyle = draw.GlyphStyle{Color: col, Radius: markerRadius, Shape: shape}
		fronts = append(fronts, l, s)
		f.Legend = append(f.Legend, LegendEntry{Name: ln.allocator, Thumbs: []plot.Thumbnailer{l, s}})
	}

	// Linear from 0, not logarithmic: allocators that never reuse a port
	// within TIME_WAIT (sequential, the hash-based ones at low load) score
	// exactly 0, which a log axis cannot place; here they sit on the left
	// edge, their bars' upper ends showing how small the measured 0 is.
	xMax := xPeak * 1.1
	if xMax == 0 {
		xMax = 1 // all zero without intervals: the axis still spans something
	}
	// hline fails only on values that are not finite: the range size is
	// at least 2 and xMax finite.
	ref, _ := hline(0, xMax, uniform, uniformStyle)
	p.Add(ref)
	p.Add(bars...)
	p.Add(fronts...)
	if len(arrows.xys) > 0 {
		p.Add(arrows)
	}
	p.Add(labels)
	p.X.Min, p.X.Max = 0, xMax
	p.Y.Min, p.Y.Max = 0, yPeak

	f.Legend = append(f.Legend,
		LegendEntry{Name: fmt.Sprintf("%s (%.2f bits)", uniformLabel(rep.RangeSize), uniform), Thumbs: []plot.Thumbnailer{ref}},
		LegendEntry{Name: "bars: 95 % intervals; ×N: load, N × the scenario's rates"},
	)
	if len(arrows.xys) > 0 {
		f.Legend = append(f.Legend, LegendEntry{Name: "min-entropy at least this (too few held-out hits for an upper end)", Thumbs: []plot.Thumbnailer{arrows}})
	}
	if skipped > 0 {
		f.Legend = append(f.Legend, LegendEntry{Name: fmt.Sprintf("not drawn: %d rows without a finite estimate", skipped)})
	}
	return f
}

// guessScale is the load level the guesses figure draws: 1 when a row
// has it, else the middle of the distinct scales in increasing order (the
// lower of the two middle ones when their number is even), so that the
// figure shows a typical load rather than an extreme.
func guessScale(rep *predict.Report) float64 {
	var scales []float64
	for _, r := range rep.Rows {
		if r.Scale == 1 {
			return 1
		}
		scales = append(scales, r.Scale)
	}
	slices.Sort(scales)
	scales = slices.Compact(scales)
	return scales[(len(scales)-1)/2]
}

// rowAt returns the row of rows at scale or, when there is none, the one
// closest to it by ratio (load levels are spaced geometrically).
func rowAt(rows []*predict.Row, scale float64) *predict.Row {
	dist := func(r *predict.Row) float64 {
		if r.Scale > 0 && scale > 0 {
			return math.Abs(math.Log(r.Scale / scale))
		}
		return math.Abs(r.Scale - scale)
	}
	best := rows[0]
	for _, r := range rows[1:] {
		if dist(r) < dist(best) {
			best = r
		}
	}
	return best
}

// floorDecade returns the exponent of the guesses figure's lowest
// probability: that of probFloor, or of the power of ten at or below the
// smallest of vs that is positive and lower.
func floorDecade(vs ...float64) int {
	e := int(math.Round(math.Log10(probFloor)))
	for _, v := range vs {
		if v > 0 && v < math.Pow10(e) {
			e = int(math.Floor(math.Log10(v)))
		}
	}
	return e
}

// predictGuesses draws P_K against K at one load level (see WritePredict).
//
// Both axes are logarithmic, drawn as linear axes of log10 values with
// decadeTicks rather than with plot.LogScale: gonum/plot v0.17 pads a log
// axis for its centred label as if the label sat at the arithmetic mean of
// the range (Axis.GlyphBoxes normalises (Min+Max)/2), which over five
// decades is near the top end, and shrinks the data area by a third.
func predictGuesses(rep *predict.Report, lines []predictLine) *Figure {
	scale := guessScale(rep)
	n := float64(rep.RangeSize)
	f := newFigure(predictTitle(rep, fmt.Sprintf("Attacker's success with K guesses, per allocator at load %s", loadLabel(scale))), false)
	p := f.Top
	p.X.Label.Text = "K: the attacker's best guesses per attempt (ports, log scale)"
	p.Y.Label.Text = "P_K: probability that one of K guesses is the port\n(held out, log scale)"
	p.X.Tick.Marker, p.Y.Tick.Marker = decadeTicks{}, decadeTicks{}
	p.Add(grid())

	// The curves, in the data's units, with the values that fix the axes.
	type curve struct {
		name  string
		xys   plotter.XYs
		index int
	}
	var curves []curve
	kMax, pMax := n, 1.0
	lows := []float64{1 / n}
	for i, ln := range lines {
		r := rowAt(ln.rows, scale)
		name := ln.allocator
		if r.Scale != scale {
			name += " (" + loadLabel(r.Scale) + ")"
		}
		var xys plotter.XYs
		for _, pt := range r.Curve {
			// An open P has no held-out sample at all: nothing to draw,
			// not a 0.
			if pt.K < 1 || pt.P.Open || !isFinite(pt.P.Value) {
				continue
			}
			xys = append(xys, plotter.XY{X: float64(pt.K), Y: pt.P.Value})
			kMax, pMax = max(kMax, float64(pt.K)), max(pMax, pt.P.Value)
			lows = append(lows, pt.P.Value)
		}
		if len(xys) == 0 {
			f.Legend = append(f.Legend, LegendEntry{Name: name + " (no held-out samples)"})
			continue
		}
		curves = append(curves, curve{name, xys, i})
	}
	bottom := float64(floorDecade(lows...))
	top := math.Log10(pMax)

	// The references under the curves: a uniform choice finds the port
	// with probability K/N, a straight line from 1/N to 1.
	ref, _ := styledLine(plotter.XYs{{X: 0, Y: -math.Log10(n)}, {X: math.Log10(n), Y: 0}}, uniformStyle)
	p.Add(ref)
	var guesses *plotter.Line
	if k := float64(rep.Guesses); k >= 1 && k <= kMax {
		guesses, _ = styledLine(plotter.XYs{{X: math.Log10(k), Y: bottom}, {X: math.Log10(k), Y: top}},
			draw.LineStyle{Color: colKey, Width: vg.Points(1), Dashes: []vg.Length{vg.Points(1), vg.Points(2)}})
		p.Add(guesses)
	}
	clamped := false
	for _, c := range curves {
		for j, xy := range c.xys {
			y := bottom
			if xy.Y > 0 {
				y = max(math.Log10(xy.Y), bottom)
			}
			clamped = clamped || xy.Y < math.Pow10(int(bottom))
			c.xys[j] = plotter.XY{X: math.Log10(xy.X), Y: y}
		}
		col, shape := predictStyle(c.index)
		l, s, _ := plotter.NewLinePoints(c.xys)
		l.LineStyle = draw.LineStyle{Color: col, Width: vg.Points(1.5)}
		s.GlyphStyle = draw.GlyphStyle{Color: col, Radius: guessesDotRadius, Shape: shape}
		p.Add(l, s)
		f.Legend = append(f.Legend, LegendEntry{Name: c.name, Thumbs: []plot.Thumbnailer{l, s}})
	}
	p.X.Min, p.X.Max = 0, math.Log10(kMax)
	p.Y.Min, p.Y.Max = bottom, top

	f.Legend = append(f.Legend, LegendEntry{Name: uniformLabel(rep.RangeSize) + ": P = K/N", Thumbs: []plot.Thumbnailer{ref}})
	if guesses != nil {
		f.Legend = append(f.Legend, LegendEntry{Name: fmt.Sprintf("K = %s, the report's guesses", groupDigits(strconv.Itoa(rep.Guesses))), Thumbs: []plot.Thumbnailer{guesses}})
	}
	if clamped {
		f.Legend = append(f.Legend, LegendEntry{Name: "P below " + probLabel(math.Pow10(int(bottom))) + " (0: no held-out hit) drawn on the bottom axis"})
	}
	return f
}

// decadeTicks mark an axis of log10 values as a log axis of the values:
// a tick labelled with the value at each power of ten ("0.001", "1",
// "10,000"; "1e-05" below 0.0001), minor ticks at 2 to 9 times it.
type decadeTicks struct{}

// Ticks implements plot.Ticker.
func (decadeTicks) Ticks(min, max float64) []plot.Tick {
	const eps = 1e-9 // log10 of a power of ten may miss the integer by an ulp
	var ticks []plot.Tick
	for d := math.Floor(min + eps); d <= max+eps; d++ {
		if d >= min-eps {
			ticks = append(ticks, plot.Tick{Value: d, Label: groupDigits(strconv.FormatFloat(math.Pow10(int(d)), 'g', -1, 64))})
		}
		for m := 2; m <= 9; m++ {
			if v := d + math.Log10(float64(m)); v >= min-eps && v <= max+eps {
				ticks = append(ticks, plot.Tick{Value: v})
			}
		}
	}
	return ticks
}

// lowerBounds draws an upward arrow from each of its points, in the
// point's colour: the value is at least there.
type lowerBounds struct {
	xys     plotter.XYs
	colours []color.NRGBA
	style   draw.LineStyle // the legend's sample; each arrow takes its colour
}

// Plot implements plot.Plotter.
func (b *lowerBounds) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	for i, xy := range b.xys {
		sty := b.style
		sty.Color = b.colours[i]
		x, y := trX(xy.X), trY(xy.Y)
		arrow(&c, sty, x, y+markerRadius, y+arrowLength)
	}
}

// Thumbnail implements plot.Thumbnailer.
func (b *lowerBounds) Thumbnail(c *draw.Canvas) {
	arrow(c, b.style, c.Center().X, c.Min.Y, c.Max.Y)
}

// arrow draws a vertical arrow at x from y0 up to y1, its head at y1.
func arrow(c *draw.Canvas, sty draw.LineStyle, x, y0, y1 vg.Length) {
	c.StrokeLine2(sty, x, y0, x, y1)
	c.StrokeLines(sty, []vg.Point{{X: x - arrowHead, Y: y1 - arrowHead}, {X: x, Y: y1}, {X: x + arrowHead, Y: y1 - arrowHead}})
}

// loadLabels writes small annotations next to points, placed when the
// figure is drawn (only then are their sizes in the data's units known):
// each takes the first of above right, below right, above left and below
// left of its point that stays inside the data area and overlaps no
// annotation already placed, preferring one that covers no marker (nor
// the arrow of a lower bound); an annotation with no such place is left
// out, since overlapping text would be read as neither.
type loadLabels struct {
	xys   plotter.XYs
	texts []string
	up    []bool // the point has a lower bound's arrow above it
}

// add appends an annotation at xy.
func (l *loadLabels) add(xy plotter.XY, text string, up bool) {
	l.xys = append(l.xys, xy)
	l.texts = append(l.texts, text)
	l.up = append(l.up, up)
}

// Plot implements plot.Plotter.
func (l *loadLabels) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	pts := make([]vg.Point, len(l.xys))
	marks := make([]vg.Rectangle, len(l.xys))
	for i, xy := range l.xys {
		pts[i] = vg.Point{X: trX(xy.X), Y: trY(xy.Y)}
		r := vg.Rectangle{Min: pts[i].Sub(vg.Point{X: markerRadius, Y: markerRadius}), Max: pts[i].Add(vg.Point{X: markerRadius, Y: markerRadius})}
		if l.up[i] {
			r.Max.Y = pts[i].Y + arrowLength
			r.Min.X, r.Max.X = min(r.Min.X, pts[i].X-arrowHead), max(r.Max.X, pts[i].X+arrowHead)
		}
		marks[i] = r
	}
	// Diagonal places: straight beside or above a point the text would
	// cross its interval's bar.
	dx, dy := markerRadius+loadGap, loadGap
	candidates := []struct {
		off vg.Point
		xa  draw.XAlignment
		ya  draw.YAlignment
	}{
		{vg.Point{X: dx, Y: dy}, draw.XLeft, draw.YBottom},
		{vg.Point{X: dx, Y: -dy}, draw.XLeft, draw.YTop},
		{vg.Point{X: -dx, Y: dy}, draw.XRight, draw.YBottom},
		{vg.Point{X: -dx, Y: -dy}, draw.XRight, draw.YTop},
	}
	type place struct {
		at  vg.Point
		sty text.Style
		box vg.Rectangle
	}
	var placed []vg.Rectangle
	for i, txt := range l.texts {
		var first, free *place
		for _, cand := range candidates {
			sty := text.Style{
				Color: colKey, Font: sans(loadFontSize), XAlign: cand.xa, YAlign: cand.ya,
				Handler: plot.DefaultTextHandler,
			}
			at := pts[i].Add(cand.off)
			r := sty.Rectangle(txt)
			pl := &place{at: at, sty: sty, box: vg.Rectangle{Min: r.Min.Add(at), Max: r.Max.Add(at)}}
			if !inside(pl.box, c.Rectangle) || overlapsAny(pl.box, placed) {
				continue
			}
			if first == nil {
				first = pl
			}
			if !overlapsAny(pl.box, marks) {
				free = pl
				break
			}
		}
		if free == nil {
			free = first
		}
		if free != nil {
			c.FillText(free.sty, free.at, txt)
			placed = append(placed, free.box)
		}
	}
}

// inside reports whether r lies within outer.
func inside(r, outer vg.Rectangle) bool {
	return r.Min.X >= outer.Min.X && r.Max.X <= outer.Max.X && r.Min.Y >= outer.Min.Y && r.Max.Y <= outer.Max.Y
}

// overlapsAny reports whether r overlaps one of rs.
func overlapsAny(r vg.Rectangle, rs []vg.Rectangle) bool {
	for _, o := range rs {
		if r.Min.X < o.Max.X && o.Min.X < r.Max.X && r.Min.Y < o.Max.Y && o.Min.Y < r.Max.Y {
			return true
		}
	}
	return false
}
