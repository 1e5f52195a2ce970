package plots

import (
	"errors"
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/portsim/portsim/sim"
)

// Colours from the Okabe–Ito palette, which stays distinguishable under
// the common forms of colour blindness.
var (
	colEstablished = color.NRGBA{R: 0x00, G: 0x72, B: 0xB2, A: 0xff} // blue
	colTimeWait    = color.NRGBA{R: 0xE6, G: 0x9F, B: 0x00, A: 0xff} // orange
	colOther       = color.NRGBA{R: 0xCC, G: 0x79, B: 0xA7, A: 0xff} // reddish purple
	colLittle      = color.NRGBA{R: 0x00, G: 0x9E, B: 0x73, A: 0xff} // bluish green
	colFailures    = color.NRGBA{R: 0xD5, G: 0x5E, B: 0x00, A: 0xff} // vermillion
	colFailureFill = color.NRGBA{R: 0xD5, G: 0x5E, B: 0x00, A: 0x59}
	colGrid        = color.NRGBA{A: 0x30}
)

// Occupancy returns the occupancy figure of res's most loaded conflict
// domain, 10 × 7 inches. Top: the sockets holding a port toward that
// destination over time, stacked by state (ESTABLISHED, TIME_WAIT, other),
// with the domain's usable ports as a dashed line and, when the analytic
// model applies, the Little's-law mean as a dotted line. Bottom: failed
// connects per second (each sample's failures over the sample interval),
// drawn as steps over the interval they were counted in.
//
// It fails when res has no rows, no per-domain rows to match them, no
// most loaded domain or a sample interval <= 0.
func Occupancy(res *sim.Result) (*Figure, error) {
	if res == nil {
		return nil, errors.New("plots: no result")
	}
	s, sum := res.Series, res.Summary
	switch {
	case len(s.Rows) == 0:
		return nil, errors.New("plots: the result has no samples")
	case len(s.Domain) != len(s.Rows):
		return nil, fmt.Errorf("plots: %d domain rows for %d samples", len(s.Domain), len(s.Rows))
	case sum.MostLoaded < 0 || sum.MostLoaded >= len(sum.Domains):
		return nil, fmt.Errorf("plots: no most loaded domain (index %d of %d domains)", sum.MostLoaded, len(sum.Domains))
	case !(s.IntervalS > 0):
		return nil, fmt.Errorf("plots: sample interval must be > 0 s, got %v", s.IntervalS)
	}
	dom := sum.Domains[sum.MostLoaded]

	// Stack the states: each series is the top of its band.
	n := len(s.Rows)
	est, tw, all := make(plotter.XYs, n), make(plotter.XYs, n), make(plotter.XYs, n)
	fails := make(plotter.XYs, 0, n+1)
	if first := s.Rows[0].TS - s.IntervalS; first >= 0 {
		// The first sample's failures happened during the interval before it.
		fails = append(fails, plotter.XY{X: first, Y: float64(s.Domain[0].Failures) / s.IntervalS})
	}
	var peak float64
	for i, r := range s.Rows {
		d := s.Domain[i]
		est[i] = plotter.XY{X: r.TS, Y: float64(d.Established)}
		tw[i] = plotter.XY{X: r.TS, Y: float64(d.Established + d.TimeWait)}
		all[i] = plotter.XY{X: r.TS, Y: float64(d.Established + d.TimeWait + d.Other)}
		fails = append(fails, plotter.XY{X: r.TS, Y: float64(d.Failures) / s.IntervalS})
		peak = max(peak, all[i].Y)
	}
	xmin, xmax := min(0, s.Rows[0].TS), s.Rows[n-1].TS

	f := &Figure{
		Title:  title(sum, dom),
		Top:    plot.New(),
		Bottom: plot.New(),
		Width:  10 * vg.Inch,
		Height: 7 * vg.Inch,
	}
	setFonts(f.Top)
	setFonts(f.Bottom)

	// Top panel: stacked areas, each filled down to 0 and drawn back to
	// front; the legend lists them from the bottom of the stack up.
	top := f.Top
	top.X.Label.Text = "time (s)"
	top.Y.Label.Text = "ports held (sockets)"
	top.X.Tick.Marker = numberTicks{}
	top.Y.Tick.Marker = numberTicks{integer: true}
	bands := []struct {
		name string
		xys  plotter.XYs
		col  color.Color
	}{
		{"ESTABLISHED", est, colEstablished},
		{"TIME_WAIT", tw, colTimeWait},
		{"other (SYN_SENT, closing)", all, colOther},
	}
	areas := make([]plot.Plotter, len(bands))
	for i, b := range bands {
		l, err := area(b.xys, b.col)
		if err != nil {
			return nil, err
		}
		areas[len(bands)-1-i] = l
		f.Legend = append(f.Legend, LegendEntry{Name: b.name, Thumbs: []plot.Thumbnailer{l}})
	}
	top.Add(areas...)
	top.Add(grid())

	budget := float64(dom.UsablePorts)
	budgetLine, err := hline(xmin, xmax, budget, draw.LineStyle{
		Color: color.Black, Width: vg.Points(1.75), Dashes: []vg.Length{vg.Points(7), vg.Points(4)},
	})
	if err != nil {
		return nil, err
	}
	top.Add(budgetLine)
	f.Legend = append(f.Legend, LegendEntry{
		Name:   fmt.Sprintf("port budget: %s usable ports", groupDigits(fmt.Sprint(dom.UsablePorts))),
		Thumbs: []plot.Thumbnailer{budgetLine},
	})
	ymax := max(peak, budget)
	if a := dom.Analytic; a.Applicable && !math.IsNaN(a.LittlesLawPorts) && !math.IsInf(a.LittlesLawPorts, 0) {
		little, err := hline(xmin, xmax, a.LittlesLawPorts, draw.LineStyle{
			Color: colLittle, Width: vg.Points(2.5), Dashes: []vg.Length{vg.Points(1.5), vg.Points(3)},
		})
		if err != nil {
			return nil, err
		}
		top.Add(little)
		f.Legend = append(f.Legend, LegendEntry{
			Name:   fmt.Sprintf("Little's law mean: %s sockets", groupDigits(fmt.Sprintf("%.0f", a.LittlesLawPorts))),
			Thumbs: []plot.Thumbnailer{little},
		})
		ymax = max(ymax, a.LittlesLawPorts)
	}
	top.X.Min, top.X.Max = xmin, xmax
	top.Y.Min, top.Y.Max = 0, max(1, ymax*1.1)
	top.X.Padding, top.Y.Padding = 0, 0

	// Bottom panel: failure rate.
	bot := f.Bottom
	bot.X.Label.Text = "time (s)"
	bot.Y.Label.Text = "failed connects\nper second"
	bot.X.Tick.Marker = numberTicks{}
	bot.Y.Tick.Marker = numberTicks{}
	fl, err := plotter.NewLine(fails)
	if err != nil {
		return nil, err
	}
	fl.StepStyle = plotter.PreStep
	fl.LineStyle = draw.LineStyle{Color: colFailures, Width: vg.Points(1.5)}
	fl.FillColor = colFailureFill
	bot.Add(grid(), fl)
	var maxRate float64
	for _, p := range fails {
		maxRate = max(maxRate, p.Y)
	}
	bot.X.Min, bot.X.Max = xmin, xmax
	bot.Y.Min, bot.Y.Max = 0, max(1, maxRate*1.1)
	bot.X.Padding, bot.Y.Padding = 0, 0
	return f, nil
}

// WriteOccupancy writes the Occupancy figure of res to dir/occupancy.png
// and dir/occupancy.svg, creating dir if needed.
func WriteOccupancy(res *sim.Result, dir string) error {
	f, err := Occupancy(res)
	if err != nil {
		return err
	}
	return writeFigure(f, dir, "occupancy")
}

// title names the domain and the run: "Ports toward 203.0.113.10:443
// from 10.0.0.1 (client) — scenario linux-burst, seed 1", or for a
// port-exclusive host "Ports of 10.0.0.1 (client), all destinations — …".
func title(sum sim.Summary, dom sim.DomainSummary) string {
	from := dom.Local
	switch {
	case dom.Local != "" && dom.Host != "":
		from = fmt.Sprintf("%s (%s)", dom.Local, dom.Host)
	case dom.Local == "":
		from = dom.Host
	}
	var t string
	switch {
	case dom.Destination != "*" && from != "":
		t = fmt.Sprintf("Ports toward %s from %s", dom.Destination, from)
	case dom.Destination != "*":
		t = "Ports toward " + dom.Destination
	case from != "":
		t = fmt.Sprintf("Ports of %s, all destinations", from)
	default:
		t = "Ports, all destinations"
	}
	return fmt.Sprintf("%s — scenario %s, seed %d", t, sum.Scenario, sum.Seed)
}

// area returns a borderless line filled down to the y axis minimum.
func area(xys plotter.XYs, c color.Color) (*plotter.Line, error) {
	l, err := plotter.NewLine(xys)
	if err != nil {
		return nil, err
	}
	l.FillColor = c
	l.LineStyle.Width = 0
	return l, nil
}

// hline returns a horizontal line at y from x0 to x1.
func hline(x0, x1, y float64, sty draw.LineStyle) (*plotter.Line, error) {
	l, err := plotter.NewLine(plotter.XYs{{X: x0, Y: y}, {X: x1, Y: y}})
	if err != nil {
		return nil, err
	}
	l.LineStyle = sty
	return l, nil
}

// grid returns faint grid lines that read over filled areas.
func grid() *plotter.Grid {
	g := plotter.NewGrid()
	g.Vertical.Color, g.Horizontal.Color = colGrid, colGrid
	g.Vertical.Width, g.Horizontal.Width = vg.Points(0.5), vg.Points(0.5)
	return g
}
