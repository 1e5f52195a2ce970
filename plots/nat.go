package plots

import (
	"cmp"
	"errors"
	"fmt"
	"image/color"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/portsim/portsim/sim"
)

// How many lines the NAT figure draws at most; the rest are counted in a
// "+N more" legend entry.
const (
	maxNATIPLines     = 8 // external IPs, the highest peaks
	maxNATInsideLines = 5 // inside hosts, the highest peaks
)

// Line styles of the NAT figure: external IPs solid, inside hosts dashed
// and thinner, so that the two kinds read apart even where colours repeat.
var (
	natIPWidth     = vg.Points(2)
	natInsideWidth = vg.Points(1.75)
	natInsideDash  = []vg.Length{vg.Points(6), vg.Points(3)}
)

// NAT returns the figure of NAT i of res (an index into
// res.Summary.NATs and res.Series.NATs), 10 × 7 inches.
//
// Top: the distinct external ports in use on each external IP over time,
// one solid line per IP (the maxNATIPLines with the highest peak when
// there are more, in the NAT's order), and the flows of the busiest
// inside hosts (the maxNATInsideLines with the highest peak, busiest
// first), dashed, in the colours after the IPs'. The legend counts the
// IPs and hosts left out ("+N more"). An inside host with several
// addresses behind the NAT is named "host (address)" per address.
//
// The pool's size is not drawn: the summary does not carry it.
//
// Bottom: NAT drops per second (each sample's drops over the sample
// interval), drawn as steps over the interval they were counted in, as
// the occupancy figure draws failures.
//
// It fails when res has no NATs, i is not one of them, the NAT has no
// samples or not one per row of res.Series, a sample's columns do not
// match the NAT's IPs and inside hosts, or the sample interval is <= 0.
func NAT(res *sim.Result, i int) (*Figure, error) {
	sum, ser, err := natAt(res, i)
	if err != nil {
		return nil, err
	}
	rows := res.Series.Rows
	xmin, xmax := min(0, rows[0].TS), rows[len(rows)-1].TS

	f := newFigure(natTitle(&res.Summary, sum), true)

	top := f.Top
	top.X.Label.Text = "time (s)"
	top.Y.Label.Text = "ports in use (per IP),\nflows (per inside host)"
	top.X.Tick.Marker = numberTicks{dense: true}
	top.Y.Tick.Marker = numberTicks{integer: true, dense: true}
	top.Add(grid())

	ipPeaks := columnPeaks(ser.Rows, len(ser.IPs), func(r *sim.NATRow) []int { return r.IPPorts })
	ips := busiest(ipPeaks, maxNATIPLines)
	slices.Sort(ips) // the NAT's order, so colours follow its IPs
	inPeaks := columnPeaks(ser.Rows, len(ser.Inside), func(r *sim.NATRow) []int { return r.InsideFlows })
	inside := busiest(inPeaks, maxNATInsideLines)
	names := NATInsideNames(sum, ser)

	var ymax float64
	var lines []natLine
	for _, c := range ips {
		lines = append(lines, natLine{
			name: "ports on " + ser.IPs[c],
			col:  func(r *sim.NATRow) int { return r.IPPorts[c] },
			sty:  draw.LineStyle{Width: natIPWidth},
		})
		ymax = max(ymax, float64(ipPeaks[c]))
	}
	for _, c := range inside {
		lines = append(lines, natLine{
			name: "flows of " + names[c],
			col:  func(r *sim.NATRow) int { return r.InsideFlows[c] },
			sty:  draw.LineStyle{Width: natInsideWidth, Dashes: natInsideDash},
		})
		ymax = max(ymax, float64(inPeaks[c]))
	}
	var legend []LegendEntry
	for k, ln := range lines {
		xys := make(plotter.XYs, len(rows))
		for j := range rows {
			xys[j] = plotter.XY{X: rows[j].TS, Y: float64(ln.col(&ser.Rows[j]))}
		}
		l, err := plotter.NewLine(xys)
		if err != nil {
			return nil, err
		}
		l.LineStyle = ln.sty
		l.LineStyle.Color = destColours[k%len(destColours)]
		top.Add(l)
		legend = append(legend, LegendEntry{Name: ln.name, Thumbs: []plot.Thumbnailer{l}})
	}
	var poolEntry []LegendEntry
	if pool := float64(sum.PoolPorts); pool > 0 && ymax >= pool/4 {
		// Near the pool, show it; far below, it would flatten the lines.
		l, err := plotter.NewLine(plotter.XYs{{X: xmin, Y: pool}, {X: xmax, Y: pool}})
		if err != nil {
			return nil, err
		}
		l.LineStyle = draw.LineStyle{Color: color.Black, Width: vg.Points(1.75), Dashes: []vg.Length{vg.Points(7), vg.Points(4)}}
		top.Add(l)
		poolEntry = append(poolEntry, LegendEntry{Name: fmt.Sprintf("pool: %s ports per IP", groupDigits(fmt.Sprint(sum.PoolPorts))), Thumbs: []plot.Thumbnailer{l}})
		ymax = max(ymax, pool)
	}
	// The IPs' entries, their "+N more", the hosts' entries, theirs.
	f.Legend = appendMore(legend[:len(ips):len(ips)], len(ser.IPs)-len(ips), "external IP")
	f.Legend = append(f.Legend, legend[len(ips):]...)
	f.Legend = appendMore(f.Legend, len(ser.Inside)-len(inside), "inside host")
	f.Legend = append(f.Legend, poolEntry...)
	top.X.Min, top.X.Max = xmin, xmax
	top.Y.Min, top.Y.Max = 0, max(1, ymax*1.1)
	top.X.Padding, top.Y.Padding = 0, 0

	drops := make([]uint64, len(ser.Rows))
	for j := range ser.Rows {
		drops[j] = ser.Rows[j].Drops
	}
	if err := ratePanel(f.Bottom, rows, drops, res.Series.IntervalS, "NAT drops\nper second", true); err != nil {
		return nil, err
	}
	return f, nil
}

// natLine is one line of the NAT figure's top panel: its legend name, the
// column of a sample it draws, and its style (colour set later).
type natLine struct {
	name string
	col  func(*sim.NATRow) int
	sty  draw.LineStyle
}

// natAt returns NAT i of res, its summary and its series, after checking
// that the series can be drawn.
func natAt(res *sim.Result, i int) (*sim.NATSummary, *sim.NATSeries, error) {
	if res == nil {
		return nil, nil, errors.New("plots: no result")
	}
	sums, sers := res.Summary.NATs, res.Series.NATs
	switch {
	case len(sums) == 0 || len(sers) == 0:
		return nil, nil, errors.New("plots: the result has no NATs")
	case len(sums) != len(sers):
		return nil, nil, fmt.Errorf("plots: %d NAT summaries for %d NAT series", len(sums), len(sers))
	case i < 0 || i >= len(sums):
		return nil, nil, fmt.Errorf("plots: no NAT %d: the result has %d", i, len(sums))
	case sums[i].Name != sers[i].Name:
		return nil, nil, fmt.Errorf("plots: NAT %d is %q in the summary but %q in the series", i, sums[i].Name, sers[i].Name)
	}
	sum, ser := &sums[i], &sers[i]
	switch {
	case len(ser.Rows) == 0:
		return nil, nil, fmt.Errorf("plots: NAT %s has no samples", ser.Name)
	case len(ser.Rows) != len(res.Series.Rows):
		return nil, nil, fmt.Errorf("plots: NAT %s has %d rows for %d samples", ser.Name, len(ser.Rows), len(res.Series.Rows))
	case !(res.Series.IntervalS > 0):
		return nil, nil, fmt.Errorf("plots: sample interval must be > 0 s, got %v", res.Series.IntervalS)
	}
	for j, r := range ser.Rows {
		if len(r.IPPorts) != len(ser.IPs) || len(r.InsideFlows) != len(ser.Inside) {
			return nil, nil, fmt.Errorf("plots: NAT %s sample %d has %d IP and %d inside columns for %d IPs and %d inside hosts",
				ser.Name, j, len(r.IPPorts), len(r.InsideFlows), len(ser.IPs), len(ser.Inside))
		}
	}
	return sum, ser, nil
}

// columnPeaks returns the highest value of each of n columns over rows.
func columnPeaks(rows []sim.NATRow, n int, cols func(*sim.NATRow) []int) []int {
	peaks := make([]int, n)
	for j := range rows {
		for c, v := range cols(&rows[j]) {
			peaks[c] = max(peaks[c], v)
		}
	}
	return peaks
}

// busiest returns the indexes of the at most n highest peaks, highest
// first (ties: the lower index).
func busiest(peaks []int, n int) []int {
	idx := make([]int, len(peaks))
	for c := range idx {
		idx[c] = c
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(peaks[b], peaks[a]) })
	return idx[:min(n, len(idx))]
}

// appendMore appends a "+N more NOUNs" entry when n > 0.
func appendMore(legend []LegendEntry, n int, noun string) []LegendEntry {
	switch {
	case n == 1:
		return append(legend, LegendEntry{Name: "+1 more " + noun})
	case n > 1:
		return append(legend, LegendEntry{Name: fmt.Sprintf("+%s more %ss", groupDigits(strconv.Itoa(n)), noun)})
	}
	return legend
}

// NATInsideNames names the inside columns of ser (NATRow.InsideFlows): the
// host, or "host (address)" for a host with several addresses behind the
// NAT (addresses from sum.Inside, which lists the same columns).
func NATInsideNames(sum *sim.NATSummary, ser *sim.NATSeries) []string {
	seen := map[string]int{}
	for _, h := range ser.Inside {
		seen[h]++
	}
	names := make([]string, len(ser.Inside))
	for c, h := range ser.Inside {
		names[c] = h
		if seen[h] > 1 && c < len(sum.Inside) && sum.Inside[c].Address != "" {
			names[c] = fmt.Sprintf("%s (%s)", h, sum.Inside[c].Address)
		}
	}
	return names
}

// natTitle is "NAT gw (aws-nat-gateway): ports per external IP, flows
// per inside host — scenario s, seed 1".
func natTitle(run *sim.Summary, sum *sim.NATSummary) string {
	name := "NAT " + sum.Name
	if sum.Preset != "" {
		name += " (" + sum.Preset + ")"
	}
	return fmt.Sprintf("%s: ports per external IP, flows per inside host — scenario %s, seed %d", name, run.Scenario, run.Seed)
}

// NATFileNames returns the names, without extension, of the files WriteNAT
// writes for each NAT of res, in order: "nat" for a single NAT; for
// several, "nat-NAME" with NAME the NAT's name, characters other than
// letters, digits, '.', '_' and '-' replaced by '_' — or, when two NATs
// would then share a name, "nat-K-NAME" for every NAT, K counting from 1.
func NATFileNames(res *sim.Result) []string {
	nats := res.Summary.NATs
	if len(nats) == 1 {
		return []string{"nat"}
	}
	names := make([]string, len(nats))
	seen := map[string]bool{}
	clash := false
	for i, n := range nats {
		names[i] = "nat-" + fileSafe(n.Name)
		clash = clash || seen[names[i]]
		seen[names[i]] = true
	}
	if clash {
		for i, n := range nats {
			names[i] = "nat-" + strconv.Itoa(i+1) + "-" + fileSafe(n.Name)
		}
	}
	return names
}

// fileSafe replaces the characters of s that are not letters, digits,
// '.', '_' or '-' with '_'.
func fileSafe(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			return r
		}
		return '_'
	}, s)
}

// WriteNAT writes the NAT figure of each NAT of res to dir as NAME.png and
// NAME.svg, with NAME from NATFileNames ("nat" for a single NAT), creating
// dir if needed. Every figure is built before any file is written, so a
// bad result leaves none.
func WriteNAT(res *sim.Result, dir string) error {
	if res == nil || len(res.Summary.NATs) == 0 {
		return errors.New("plots: the result has no NATs")
	}
	figs := make([]*Figure, len(res.Summary.NATs))
	for i := range figs {
		f, err := NAT(res, i)
		if err != nil {
			return err
		}
		figs[i] = f
	}
	for i, name := range NATFileNames(res) {
		if err := writeFigure(figs[i], dir, name); err != nil {
			return err
		}
	}
	return nil
}
