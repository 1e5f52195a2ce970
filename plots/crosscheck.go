package plots

import (
	"fmt"
	"image/color"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/portsim/portsim/sim"
)

// Colours of the crosscheck figure that Occupancy does not use.
var (
	// colHeld is the ports held: the colour of the top of Occupancy's
	// stack, whose height is the ports held.
	colHeld = colOther
	// colKey draws the legend's samples of the two line styles, in a grey
	// that belongs to no quantity.
	colKey = color.NRGBA{R: 0x60, G: 0x60, B: 0x60, A: 0xff}
)

// kernelAlpha is the opacity (of 0xff) of the kernel's wide solid lines:
// the simulator's dashed line, drawn on top in the same colour, stays
// visible inside the kernel's where the two agree.
const kernelAlpha = 0x70

// kernelLine is the style of the kernel's lines: solid, wide and pale.
func kernelLine(c color.NRGBA) draw.LineStyle {
	c.A = kernelAlpha
	return draw.LineStyle{Color: c, Width: vg.Points(4)}
}

// The simulator's dashes: dashOn points drawn, then dashOff blank.
const (
	dashOn  = vg.Length(6)
	dashOff = vg.Length(3.5)
)

// modelLine is the style of the simulator's lines: dashed, narrower and
// opaque.
func modelLine(c color.NRGBA) draw.LineStyle {
	return draw.LineStyle{Color: c, Width: vg.Points(1.6), Dashes: []vg.Length{dashOn, dashOff}}
}

// crossRun is one side of a crosscheck: its result and how it is drawn.
type crossRun struct {
	name  string // "kernel" or "simulator"
	res   *sim.Result
	style func(color.NRGBA) draw.LineStyle
}

// check reports why r cannot be plotted: no result, no rows, or a sample
// interval <= 0 (failures per second divide by it).
func (r crossRun) check() error {
	switch {
	case r.res == nil:
		return fmt.Errorf("plots: no %s result", r.name)
	case len(r.res.Series.Rows) == 0:
		return fmt.Errorf("plots: the %s result has no samples", r.name)
	case !(r.res.Series.IntervalS > 0):
		return fmt.Errorf("plots: the %s result's sample interval must be > 0 s, got %v", r.name, r.res.Series.IntervalS)
	}
	return nil
}

// crossQuantities are the socket counts of the top panel, in legend and
// drawing order (usually the largest first).
var crossQuantities = []struct {
	name string
	col  color.NRGBA
	of   func(sim.Row) int
}{
	{"held ports", colHeld, func(r sim.Row) int { return r.PortsInUse }},
	{"TIME_WAIT", colTimeWait, func(r sim.Row) int { return r.TimeWait }},
	{"ESTABLISHED", colEstablished, func(r sim.Row) int { return r.Established }},
}

// Crosscheck returns the figure that overlays a scenario's run on real
// sockets in the Linux kernel (kernel) and its run in the simulator
// (model), 10 × 7 inches, with time in seconds on the shared x axis.
// Every quantity has one colour; the kernel's line is solid (wide and
// pale), the simulator's dashed (narrow, drawn on top), so where the two
// agree the dashes run inside the kernel's line. The legend names the
// two line styles, then the quantities, then the port budget.
//
// Top, in sockets: the whole run (Series.Rows, every host) as counted at
// each sample: ports held (distinct local address and port pairs),
// TIME_WAIT and ESTABLISHED; and, under them, the port budget as a thin
// black line, one per run in that run's style. The budget is the usable
// ports of the hosts that connect, summed, because the held-ports line
// sums those hosts too: the sum is that line's ceiling. With several
// such hosts one of them can run out before the sum is reached; the
// legend then says the budget is a sum. A host connecting from several
// local addresses has a budget per address, so its ports held can
// exceed this line.
//
// Bottom, in failed connects per second: each sample's Failures over its
// run's Series.IntervalS, drawn as steps over the interval they were
// counted in.
//
// Each run is drawn at its own sample times, so the two may have
// different numbers of rows, or even intervals. It fails when either
// result is nil, has no rows or a sample interval <= 0, or when the two
// name different scenarios.
func Crosscheck(kernel, model *sim.Result) (*Figure, error) {
	runs := []crossRun{
		{name: "kernel", res: kernel, style: kernelLine},
		{name: "simulator", res: model, style: modelLine},
	}
	for _, r := range runs {
		if err := r.check(); err != nil {
			return nil, err
		}
	}
	name, err := crossScenario(kernel.Summary.Scenario, model.Summary.Scenario)
	if err != nil {
		return nil, err
	}

	// Both panels span both runs, from 0 (or the first sample, if
	// earlier) to the later run's last sample, and at least 1 s, so that
	// runs of one sample at 0 s still have an x axis.
	xmin, xmax := 0.0, 0.0
	for _, r := range runs {
		rows := r.res.Series.Rows
		xmin, xmax = min(xmin, rows[0].TS), max(xmax, rows[len(rows)-1].TS)
	}
	xmax = max(xmax, xmin+1)

	f := newFigure(fmt.Sprintf("crosscheck: %s — kernel (solid) vs simulator (dashed)", name), true)
	top, bot := f.Top, f.Bottom
	top.X.Label.Text = "time (s)"
	top.Y.Label.Text = "sockets"
	top.X.Tick.Marker = numberTicks{dense: true}
	top.Y.Tick.Marker = numberTicks{integer: true}
	bot.X.Label.Text = "time (s)"
	bot.Y.Label.Text = "failed connects\nper second"
	bot.X.Tick.Marker = numberTicks{dense: true}
	bot.Y.Tick.Marker = numberTicks{}
	top.Add(grid())
	bot.Add(grid())

	f.Legend = []LegendEntry{
		{Name: "kernel", Thumbs: []plot.Thumbnailer{&plotter.Line{LineStyle: kernelLine(colKey)}}},
		{Name: "simulator", Thumbs: []plot.Thumbnailer{&plotter.Line{LineStyle: modelLine(colKey)}}},
	}
	for _, q := range crossQuantities {
		f.Legend = append(f.Legend, LegendEntry{Name: q.name, Thumbs: []plot.Thumbnailer{
			&plotter.Line{LineStyle: kernelLine(q.col)}, &plotter.Line{LineStyle: modelLine(q.col)},
		}})
	}

	// The budgets first, under the data: a pool that is full puts the
	// ports held right on them. Then the kernel's lines, so that the
	// simulator's are drawn on top.
	var ymax, maxRate float64
	budgets := make([]int, len(runs))
	var budgetThumbs []plot.Thumbnailer
	var summedHosts int
	for i, r := range runs {
		var hosts int
		budgets[i], hosts = portBudget(&r.res.Summary)
		summedHosts = max(summedHosts, hosts)
		if budgets[i] == 0 {
			continue
		}
		// The run's dashes, if any, but thin and opaque black: a limit,
		// not a measurement.
		sty := r.style(color.NRGBA{})
		sty.Color, sty.Width = color.Black, vg.Points(1.25)
		l, err := hline(xmin, xmax, float64(budgets[i]), sty)
		if err != nil {
			return nil, err
		}
		top.Add(l)
		budgetThumbs = append(budgetThumbs, l)
		ymax = max(ymax, float64(budgets[i]))
	}
	for _, r := range runs {
		rows := r.res.Series.Rows
		for k, q := range crossQuantities {
			xys := make(plotter.XYs, len(rows))
			for j, row := range rows {
				xys[j] = plotter.XY{X: row.TS, Y: float64(q.of(row))}
				ymax = max(ymax, xys[j].Y)
			}
			// Each quantity's dashes start at another phase, so that
			// two that coincide (ports held and TIME_WAIT, once the
			// pool is full) show both colours.
			sty := r.style(q.col)
			sty.DashOffs = vg.Length(k) * (dashOn + dashOff) / vg.Length(len(crossQuantities))
			l, err := styledLine(xys, sty)
			if err != nil {
				return nil, err
			}
			top.Add(l)
		}
		fails := failureRates(r.res.Series)
		for _, p := range fails {
			maxRate = max(maxRate, p.Y)
		}
		l, err := styledLine(fails, r.style(colFailures))
		if err != nil {
			return nil, err
		}
		l.StepStyle = plotter.PreStep
		bot.Add(l)
	}
	if len(budgetThumbs) > 0 {
		f.Legend = append(f.Legend, LegendEntry{
			Name:   budgetLabel(budgets[0], budgets[1], summedHosts),
			Thumbs: budgetThumbs,
		})
	}

	top.X.Min, top.X.Max = xmin, xmax
	top.Y.Min, top.Y.Max = 0, max(1, ymax*1.1)
	bot.X.Min, bot.X.Max = xmin, xmax
	bot.Y.Min, bot.Y.Max = 0, max(1, maxRate*1.1)
	top.X.Padding, top.Y.Padding = 0, 0
	bot.X.Padding, bot.Y.Padding = 0, 0
	return f, nil
}

// WriteCrosscheck writes the Crosscheck figure of kernel and model to
// dir/crosscheck.png and dir/crosscheck.svg, creating dir if needed.
func WriteCrosscheck(kernel, model *sim.Result, dir string) error {
	f, err := Crosscheck(kernel, model)
	if err != nil {
		return err
	}
	return writeFigure(f, dir, "crosscheck")
}

// crossScenario returns the scenario both runs name, either of which may
// leave it empty ("unnamed scenario" when both do). Two different names
// mean the runs are not of one scenario, and overlaying them would
// mislead.
func crossScenario(kernel, model string) (string, error) {
	switch {
	case kernel != "" && model != "" && kernel != model:
		return "", fmt.Errorf("plots: the kernel ran scenario %q and the simulator %q", kernel, model)
	case model != "":
		return model, nil
	case kernel != "":
		return kernel, nil
	}
	return "unnamed scenario", nil
}

// portBudget returns the usable ports of the hosts that connect, summed,
// and how many hosts that is. A host connects when it owns a conflict
// domain: a host that only listens holds no ephemeral ports, and adding
// its range would lift the line above anything the run can reach. A
// summary without domains counts every host.
func portBudget(sum *sim.Summary) (ports, hosts int) {
	hs := sum.Hosts
	if len(sum.Domains) > 0 {
		all := make([]int, len(sum.Domains))
		for i := range all {
			all[i] = i
		}
		hs = choosingHosts(sum, all)
	}
	for _, h := range hs {
		ports += h.Settings.UsablePorts
	}
	return ports, len(hs)
}

// budgetLabel names the port budgets of the kernel and the model (0 when
// a run has none, but not both): "port budget: 28,232 usable ports" when
// they agree, "port budget: 28,232 (kernel), 16,384 (simulator) usable
// ports" when they do not, then ", summed over N hosts" when hosts > 1.
func budgetLabel(kernel, model, hosts int) string {
	ports := func(n int) string { return groupDigits(strconv.Itoa(n)) }
	var what string
	switch {
	case kernel == model:
		what = ports(kernel)
	case model == 0:
		what = ports(kernel) + " (kernel)"
	case kernel == 0:
		what = ports(model) + " (simulator)"
	default:
		what = fmt.Sprintf("%s (kernel), %s (simulator)", ports(kernel), ports(model))
	}
	label := "port budget: " + what + " usable ports"
	if hosts > 1 {
		label += fmt.Sprintf(", summed over %d hosts", hosts)
	}
	return label
}

// failureRates returns s's failed connects per second at each sample:
// Failures over IntervalS. The first sample's failures happened in the
// interval before it, so a point at its start (when >= 0 s) lets steps
// show that interval too.
func failureRates(s sim.Series) plotter.XYs {
	xys := make(plotter.XYs, 0, len(s.Rows)+1)
	if first := s.Rows[0].TS - s.IntervalS; first >= 0 {
		xys = append(xys, plotter.XY{X: first, Y: float64(s.Rows[0].Failures) / s.IntervalS})
	}
	for _, r := range s.Rows {
		xys = append(xys, plotter.XY{X: r.TS, Y: float64(r.Failures) / s.IntervalS})
	}
	return xys
}

// styledLine returns a line through xys drawn in sty.
func styledLine(xys plotter.XYs, sty draw.LineStyle) (*plotter.Line, error) {
	l, err := plotter.NewLine(xys)
	if err != nil {
		return nil, err
	}
	l.LineStyle = sty
	return l, nil
}
