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
	fails := make([]uint64, n)
	var peak float64
	for i, r := range s.Rows {
		d := s.Domain[i]
		est[i] = plotter.XY{X: r.TS, Y: float64(d.Established)}
		tw[i] = plotter.XY{X: r.TS, Y: float64(d.Established + d.TimeWait)}
		all[i] = plotter.XY{X: r.TS, Y: float64(d.Established + d.TimeWait + d.Other)}
		fails[i] = d.Failures
		peak = max(peak, all[i].Y)
	}
	xmin, xmax := min(0, s.Rows[0].TS), s.Rows[n-1].TS

	f := newFigure(title(sum, dom), true)

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
	if err := ratePanel(f.Bottom, s.Rows, fails, s.IntervalS, "failed connects\nper second", false); err != nil {
		return nil, err
	}
	return f, nil
}

// ratePanel fills p with counts per second: each sample's count over the
// interval, drawn as filled steps over the interval it was counted in (the
// first sample's starts one interval before it, when that is not before
// 0). ylabel names the y axis; the x axis spans the samples; dense asks
// for the denser tick marks.
func ratePanel(p *plot.Plot, rows []sim.Row, counts []uint64, interval float64, ylabel string, dense bool) error {
	xys := make(plotter.XYs, 0, len(rows)+1)
	if first := rows[0].TS - interval; first >= 0 {
		xys = append(xys, plotter.XY{X: first, Y: float64(counts[0]) / interval})
	}
	var peak float64
	for j, r := range rows {
		y := float64(counts[j]) / interval
		xys = append(xys, plotter.XY{X: r.TS, Y: y})
		peak = max(peak, y)
	}
	l, err := plotter.NewLine(xys)
	if err != nil {
		return err
	}
	l.StepStyle = plotter.PreStep
	l.LineStyle = draw.LineStyle{Color: colFailures, Width: vg.Points(1.5)}
	l.FillColor = colFailureFill
	p.Add(grid(), l)
	p.X.Label.Text = "time (s)"
	p.Y.Label.Text = ylabel
	p.X.Tick.Marker = numberTicks{dense: dense}
	p.Y.Tick.Marker = numberTicks{dense: dense}
	p.X.Min, p.X.Max = min(0, rows[0].TS), rows[len(rows)-1].TS
	p.Y.Min, p.Y.Max = 0, max(1, peak*1.1)
	p.X.Padding, p.Y.Padding = 0, 0
	return nil
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
