package plots

import (
	"errors"
	"fmt"
	"image/color"
	"math"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/portsim/portsim/alloc"
	"github.com/portsim/portsim/sim"
)

// destColours are the colours of the destinations in the port-choice
// figure, in order, cycled when there are more destinations: the
// Okabe–Ito palette without its yellow, which is too faint on white for
// dots a few pixels wide.
var destColours = []color.NRGBA{
	{R: 0x00, G: 0x72, B: 0xB2, A: 0xff}, // blue
	{R: 0xE6, G: 0x9F, B: 0x00, A: 0xff}, // orange
	{R: 0x00, G: 0x9E, B: 0x73, A: 0xff}, // bluish green
	{R: 0xD5, G: 0x5E, B: 0x00, A: 0xff}, // vermillion
	{R: 0xCC, G: 0x79, B: 0xA7, A: 0xff}, // reddish purple
	{R: 0x56, G: 0xB4, B: 0xE9, A: 0xff}, // sky blue
	{R: 0x00, G: 0x00, B: 0x00, A: 0xff}, // black
}

// Glyphs of the port-choice figure. With sim.MaxPortChoices points, a dot
// is about 3.5 pixels wide in the PNG: a run of consecutive ports reads as
// a line, scattered ones as grain, and the partly transparent colours show
// where destinations overlap. Fewer points get larger dots (see
// dotRadiusFor).
const (
	minDotRadius = vg.Length(1.05) // points
	maxDotRadius = vg.Length(2.5)
	dotAlpha     = 0xC0           // of 0xff
	thumbRadius  = vg.Length(3.5) // legend sample
	// maxLegendDests is how many destinations the legend names; the rest
	// are counted in a last "+N more" entry.
	maxLegendDests = 7
)

// PortChoices returns the port-choice figure of res, 10 × 7 inches: each
// port allocated against the time of its connect(), one colour per
// destination (conflict domain), for the choices res.Ports holds (the
// first sim.MaxPortChoices successful allocations). A sequential allocator
// draws straight lines, Linux's hashed one a staircase per destination
// that jumps to a new offset every 10-second epoch, a random one noise.
//
// The y axis spans the ephemeral range of the host that made the choices
// (Settings.PortRange, "LOW-HIGH"), with its ends labelled; when several
// hosts made them, or the range cannot be read, it spans the ports chosen.
// The legend names the first destinations as "host → destination" and
// counts the others; the title names the allocator.
//
// It fails when res has no port choices (no successful allocations) or a
// choice names a domain that res.Summary.Domains does not have.
func PortChoices(res *sim.Result) (*Figure, error) {
	if res == nil {
		return nil, errors.New("plots: no result")
	}
	if len(res.Ports) == 0 {
		return nil, errors.New("plots: no port choices to plot: the result has no successful allocations")
	}
	sum := &res.Summary

	// One series per domain that has choices, in domain order.
	series := map[int]plotter.XYs{}
	var order []int
	lowPort, highPort := math.Inf(1), math.Inf(-1)
	var tmax float64
	for i, pc := range res.Ports {
		if pc.Domain < 0 || pc.Domain >= len(sum.Domains) {
			return nil, fmt.Errorf("plots: port choice %d names domain %d of %d", i, pc.Domain, len(sum.Domains))
		}
		if _, ok := series[pc.Domain]; !ok {
			order = append(order, pc.Domain)
		}
		series[pc.Domain] = append(series[pc.Domain], plotter.XY{X: pc.TS, Y: float64(pc.Port)})
		lowPort, highPort = min(lowPort, float64(pc.Port)), max(highPort, float64(pc.Port))
		tmax = max(tmax, pc.TS)
	}
	// Domains in index order, so that colours follow Summary.Domains.
	slices.Sort(order)

	hosts := choosingHosts(sum, order)
	f := newFigure(portsTitle(res, hosts), false)
	p := f.Top
	p.X.Label.Text = "time (s)"
	p.Y.Label.Text = "local port"
	p.X.Tick.Marker = numberTicks{dense: true}

	// The y axis: the host's range when one host made every choice.
	ticks := portTicks{}
	lo, hi := lowPort, highPort
	if len(hosts) == 1 {
		if rlo, rhi, ok := parseRange(hosts[0].Settings.PortRange); ok {
			ticks = portTicks{lo: rlo, hi: rhi, ends: true}
			lo, hi = min(lo, rlo), max(hi, rhi)
		}
	}
	p.Y.Tick.Marker = ticks
	pad := max(1, (hi-lo)*0.02) // so that dots at the ends stay inside
	p.Y.Min, p.Y.Max = max(0, lo-pad), hi+pad
	p.X.Min, p.X.Max = 0, tmax
	if tmax <= 0 {
		p.X.Max = 1
	}
	p.X.Padding, p.Y.Padding = 0, 0
	p.Add(grid())

	labels := destLabels(sum, order)
	radius := dotRadiusFor(len(res.Ports))
	for i, d := range order {
		col := destColours[i%len(destColours)]
		fill := col
		fill.A = dotAlpha
		p.Add(&dots{xys: series[d], colour: fill, radius: radius})
		if i < maxLegendDests {
			f.Legend = append(f.Legend, LegendEntry{
				Name:   labels[i],
				Thumbs: []plot.Thumbnailer{dotThumb{colour: col}},
			})
		}
	}
	if n := len(order) - maxLegendDests; n > 0 {
		f.Legend = append(f.Legend, LegendEntry{Name: fmt.Sprintf("+%d more (colours repeat)", n)})
	}
	return f, nil
}

// WritePorts writes the PortChoices figure of res to dir/ports.png and
// dir/ports.svg, creating dir if needed.
func WritePorts(res *sim.Result, dir string) error {
	f, err := PortChoices(res)
	if err != nil {
		return err
	}
	return writeFigure(f, dir, "ports")
}

// dotRadiusFor returns the radius of the dots for n points: minDotRadius
// for sim.MaxPortChoices, growing as 1/√n (so that the ink stays about the
// same) up to maxDotRadius, reached at about 3,500 points.
func dotRadiusFor(n int) vg.Length {
	r := minDotRadius * vg.Length(math.Sqrt(float64(sim.MaxPortChoices)/float64(max(n, 1))))
	return min(max(r, minDotRadius), maxDotRadius)
}

// choosingHosts returns the hosts of the domains in order, each once, in
// the order of sum.Hosts. A domain whose host is not in sum.Hosts adds
// nothing.
func choosingHosts(sum *sim.Summary, domains []int) []sim.HostSummary {
	used := map[string]bool{}
	for _, d := range domains {
		used[sum.Domains[d].Host] = true
	}
	var hosts []sim.HostSummary
	for _, h := range sum.Hosts {
		if used[h.Name] {
			hosts = append(hosts, h)
			used[h.Name] = false // a repeated name counts once
		}
	}
	return hosts
}

// portsTitle is "Ports chosen by random-start — scenario s, seed 1 (first
// 20,000 allocations)": the allocator of the hosts that made the choices
// ("linux (client), sequential (server)" when they differ), and whether
// res.Ports holds every successful allocation of the run.
func portsTitle(res *sim.Result, hosts []sim.HostSummary) string {
	var allocs []string
	seen := map[string]bool{}
	for _, h := range hosts {
		if a := h.Settings.Allocator; a != "" && !seen[a] {
			seen[a] = true
			allocs = append(allocs, a)
		}
	}
	what := "Ports chosen"
	switch {
	case len(allocs) == 1:
		what += " by " + allocs[0]
	case len(allocs) > 1:
		named := make([]string, len(hosts))
		for i, h := range hosts {
			named[i] = fmt.Sprintf("%s (%s)", orUnknown(h.Settings.Allocator), h.Name)
		}
		what += " by " + strings.Join(named, ", ")
	}
	n := len(res.Ports)
	count := groupDigits(strconv.Itoa(n)) + " allocations"
	switch {
	case n == 1:
		count = "1 allocation"
	case n >= sim.MaxPortChoices || res.Summary.Successes > uint64(n):
		count = "first " + count
	default:
		count = "all " + count
	}
	return fmt.Sprintf("%s — scenario %s, seed %d (%s)", what, res.Summary.Scenario, res.Summary.Seed, count)
}

// destLabels names each domain "host → destination": "all destinations"
// for a port-exclusive host's domain ("*"), and the local address after
// the host when the host's domains have several.
func destLabels(sum *sim.Summary, domains []int) []string {
	locals := map[string]map[string]bool{}
	for _, d := range domains {
		dom := sum.Domains[d]
		if locals[dom.Host] == nil {
			locals[dom.Host] = map[string]bool{}
		}
		locals[dom.Host][dom.Local] = true
	}
	labels := make([]string, len(domains))
	for i, d := range domains {
		dom := sum.Domains[d]
		from := dom.Host
		switch {
		case from == "":
			from = dom.Local
		case len(locals[dom.Host]) > 1 && dom.Local != "":
			from = fmt.Sprintf("%s (%s)", dom.Host, dom.Local)
		}
		to := dom.Destination
		if to == "*" || to == "" {
			to = "all destinations"
		}
		labels[i] = from + " → " + to
	}
	return labels
}

// parseRange reads a port range written "LOW-HIGH".
func parseRange(s string) (lo, hi float64, ok bool) {
	r, err := alloc.ParseRange(strings.Replace(s, "-", " ", 1))
	if err != nil {
		return 0, 0, false
	}
	return float64(r.Low), float64(r.High), true
}

// orUnknown returns s, or "unknown allocator" when s is empty.
func orUnknown(s string) string {
	if s == "" {
		return "unknown allocator"
	}
	return s
}

// portTicks are integer ticks with port numbers written plainly ("35000",
// not "35,000"). With ends set, lo and hi (the ephemeral range) are
// labelled too, and default labels too close to them to read are dropped.
type portTicks struct {
	lo, hi float64
	ends   bool
}

// Ticks implements plot.Ticker.
func (t portTicks) Ticks(min, max float64) []plot.Tick {
	ticks := numberTicks{integer: true, ungrouped: true}.Ticks(min, max)
	if !t.ends {
		return ticks
	}
	near := (max - min) * 0.04
	for i, tk := range ticks {
		if tk.Label != "" && (math.Abs(tk.Value-t.lo) < near || math.Abs(tk.Value-t.hi) < near) {
			ticks[i].Label = ""
		}
	}
	for _, v := range []float64{t.lo, t.hi} {
		if v >= min && v <= max {
			ticks = append(ticks, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', 0, 64)})
		}
	}
	return ticks
}

// dots draws points as small filled discs, all of one colour, as a single
// path (so the SVG has one element per series): overlapping dots of the
// series are filled once, and dots are merged on a grid whose cells are a
// third of a dot wide: a dot whose centre falls in a cell an earlier dot
// took is not drawn again. Nothing visible is lost, and a run of
// consecutive ports costs far fewer dots in the SVG.
type dots struct {
	xys    plotter.XYs
	colour color.Color
	radius vg.Length
}

// Plot implements plot.Plotter.
func (d *dots) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	cellSize := 2 * d.radius / 3
	taken := make(map[[2]int64]bool, len(d.xys))
	var path vg.Path
	for _, xy := range d.xys {
		pt := vg.Point{X: trX(xy.X), Y: trY(xy.Y)}
		cell := [2]int64{int64(math.Floor(float64(pt.X / cellSize))), int64(math.Floor(float64(pt.Y / cellSize)))}
		if taken[cell] {
			continue
		}
		taken[cell] = true
		path.Move(vg.Point{X: pt.X + d.radius, Y: pt.Y})
		path.Arc(pt, d.radius, 0, 2*math.Pi)
		path.Close()
	}
	c.SetColor(d.colour)
	c.Fill(path)
}

// DataRange implements plot.DataRanger.
func (d *dots) DataRange() (xmin, xmax, ymin, ymax float64) {
	return plotter.XYRange(d.xys)
}

// dotThumb is a legend sample for dots: one opaque disc, larger than the
// dots, so that the colour reads.
type dotThumb struct {
	colour color.Color
}

// Thumbnail implements plot.Thumbnailer.
func (t dotThumb) Thumbnail(c *draw.Canvas) {
	var path vg.Path
	ctr := c.Center()
	path.Move(vg.Point{X: ctr.X + thumbRadius, Y: ctr.Y})
	path.Arc(ctr, thumbRadius, 0, 2*math.Pi)
	path.Close()
	c.SetColor(t.colour)
	c.Fill(path)
}
