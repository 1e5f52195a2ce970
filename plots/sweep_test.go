package plots

import (
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/plot"

	"github.com/portsim/portsim/sim/sweep"
)

// prob returns a probability's Stat: mean p, a 95 % interval of ±20 %.
func prob(p float64) sweep.Stat {
	return sweep.Stat{Mean: p, Lo: 0.8 * p, Hi: 1.2 * p, N: 5}
}

// rateSweep returns a sweep of one numeric parameter, the arrival rate, at
// 100, 200, 400 and 800 connections per second, 5 replications per point,
// with steady-state blocking everywhere and Erlang B at all but the last
// point. At 100/s no replication failed.
func rateSweep() *sweep.Result {
	res := &sweep.Result{
		Scenario: "rate-sweep", Replications: 5, Complete: true,
		Vary: []sweep.Vary{{Path: "workloads.0.arrival.rate", Values: []string{"100", "200", "400", "800"}}},
	}
	for i, v := range res.Vary[0].Values {
		x, _ := strconv.ParseFloat(v, 64)
		b := 0.1 * float64(i)
		pt := sweep.Point{
			Index: i, Values: []string{v}, X: []float64{x}, Numeric: []bool{true},
			FailureProb: prob(b * 0.9), SteadyBlocking: prob(b),
			FirstFailureS: sweep.Stat{Mean: 60 / float64(i+1), Lo: 50 / float64(i+1), Hi: 70 / float64(i+1), N: 5},
		}
		if i == 0 {
			pt.FirstFailureS = sweep.Stat{}
		}
		if i < 3 {
			eb := b * 1.05
			pt.ErlangB = &eb
		}
		res.Points = append(res.Points, pt)
	}
	return res
}

// gridSweep returns a sweep of two parameters: the allocator (not a
// number) and the hold time (durations, in seconds), 2 × 3 points, 3
// replications each, without steady-state blocking at the first point
// (so the figures draw the whole run's failure probability) and without
// Erlang B. Only the random allocator failed.
func gridSweep() *sweep.Result {
	res := &sweep.Result{
		Scenario: "grid-sweep", Replications: 3, Complete: true,
		Vary: []sweep.Vary{
			{Path: "hosts.0.allocator", Values: []string{"sequential", "random"}},
			{Path: "workloads.0.hold.value", Values: []string{"10s", "30s", "1m"}},
		},
	}
	secs := []float64{10, 30, 60}
	for i, alloc := range res.Vary[0].Values {
		for j, hold := range res.Vary[1].Values {
			p := float64(i) * secs[j] / 100
			pt := sweep.Point{
				Index: i*3 + j, Values: []string{alloc, hold}, X: []float64{0, secs[j]}, Numeric: []bool{false, true},
				FailureProb: prob(p), SteadyBlocking: prob(p),
			}
			if i == 1 {
				pt.FirstFailureS = sweep.Stat{Mean: 100 - secs[j], Lo: 90 - secs[j], Hi: 110 - secs[j], N: 3}
			}
			res.Points = append(res.Points, pt)
		}
	}
	res.Points[0].SteadyBlocking = sweep.Stat{}
	return res
}

// allocatorSweep returns a sweep of one parameter that is not a number.
func allocatorSweep() *sweep.Result {
	res := &sweep.Result{
		Scenario: "allocators", Replications: 1, Complete: true,
		Vary: []sweep.Vary{{Path: "hosts.0.allocator", Values: []string{"sequential", "linux", "random"}}},
	}
	for i, v := range res.Vary[0].Values {
		res.Points = append(res.Points, sweep.Point{
			Index: i, Values: []string{v}, X: []float64{0}, Numeric: []bool{false},
			FailureProb: prob(0.01 * float64(i)),
		})
	}
	return res
}

// sweepFiles are the file names of the figures named, as WriteSweep
// returns them.
func sweepFiles(names ...string) []string {
	var files []string
	for _, n := range names {
		files = append(files, n+".png", n+".svg")
	}
	return files
}

// readAll returns the contents of the files in dir.
func readAll(t *testing.T, dir string, files []string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(dir, f))
		require.NoError(t, err)
		out[f] = b
	}
	return out
}

func TestWriteSweep(t *testing.T) {
	incomplete := gridSweep()
	incomplete.Points = incomplete.Points[:5]
	incomplete.Complete = false
	single := rateSweep() // one value: whiskers for a band
	single.Vary[0].Values, single.Points = single.Vary[0].Values[2:3], single.Points[2:3]
	single.Points[0].Index = 0

	tests := []struct {
		name  string
		res   *sweep.Result
		files []string
		// svg holds strings each figure's SVG must contain, by figure.
		svg map[string][]string
	}{
		{
			name:  "one numeric parameter, Erlang B",
			res:   rateSweep(),
			files: sweepFiles("sweep-failure", "sweep-first-failure"),
			svg: map[string][]string{
				"sweep-failure": {
					"Steady-state blocking vs workloads.0.arrival.rate", "scenario rate-sweep, 5 replications per point",
					"workloads.0.arrival.rate (connections/s)", "steady-state blocking probability",
					"mean over the replications", "95 % confidence interval", "Erlang B",
				},
				"sweep-first-failure": {"Time to first failure vs workloads.0.arrival.rate", "time to first failure (s)", "replications that failed"},
			},
		},
		{
			name:  "two parameters, one not a number",
			res:   gridSweep(),
			files: sweepFiles("sweep-failure", "sweep-first-failure", "sweep-heatmap"),
			svg: map[string][]string{
				"sweep-failure": {
					"Failure probability vs workloads.0.hold.value, a line per hosts.0.allocator",
					"failure probability (whole run)", "workloads.0.hold.value (s)",
					"hosts.0.allocator:", ">sequential<", ">random<", "95 % confidence interval",
				},
				"sweep-first-failure": {">random<"},
				"sweep-heatmap": {
					"Failure probability: mean over hosts.0.allocator × workloads.0.hold.value",
					">10s<", ">1m<", ">sequential<", "mean failure probability:", ">0.6<", ">0.3<",
				},
			},
		},
		{
			name:  "incomplete grid",
			res:   incomplete,
			files: sweepFiles("sweep-failure", "sweep-first-failure", "sweep-heatmap"),
			svg: map[string][]string{
				"sweep-failure": {"3 replications per point, 5 of 6 points"},
				"sweep-heatmap": {"not run"},
			},
		},
		{
			name:  "a single point",
			res:   single,
			files: sweepFiles("sweep-failure", "sweep-first-failure"),
			svg:   map[string][]string{"sweep-failure": {"Erlang B", ">400<"}},
		},
		{
			name:  "one parameter, not a number, no failure",
			res:   allocatorSweep(),
			files: sweepFiles("sweep-failure"),
			svg: map[string][]string{
				"sweep-failure": {">sequential<", ">linux<", ">random<", "1 replication per point", "hosts.0.allocator<"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			files, err := WriteSweep(tt.res, dir)
			require.NoError(t, err)
			require.Equal(t, tt.files, files)
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			assert.Len(t, entries, len(files), "only the files returned")
			for name, wants := range tt.svg {
				svg := string(checkChartFiles(t, dir, name))
				for _, want := range wants {
					assert.Contains(t, svg, want, name)
				}
			}
			assert.NotContains(t, string(readAll(t, dir, files)["sweep-failure.svg"]), "NaN")

			first := readAll(t, dir, files)
			again, err := WriteSweep(tt.res, dir)
			require.NoError(t, err)
			require.Equal(t, files, again)
			second := readAll(t, dir, files)
			for _, f := range files {
				assert.Equal(t, first[f], second[f], "%s byte-identical on a second call", f)
			}
		})
	}
}

func TestWriteSweepRemovesStale(t *testing.T) {
	dir := t.TempDir()
	_, err := WriteSweep(gridSweep(), dir)
	require.NoError(t, err)

	// One parameter: no heatmap; no failure: no first-failure figure.
	res := allocatorSweep()
	files, err := WriteSweep(res, dir)
	require.NoError(t, err)
	assert.Equal(t, sweepFiles("sweep-failure"), files)
	for _, f := range sweepFiles("sweep-heatmap", "sweep-first-failure") {
		assert.NoFileExists(t, filepath.Join(dir, f))
	}

	// Removing what is not there is no error.
	_, err = WriteSweep(res, dir)
	require.NoError(t, err)
}

func TestWriteSweepErrors(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name string
		res  *sweep.Result
		err  string
	}{
		{"nil", nil, "no sweep result"},
		{"no points", func() *sweep.Result { r := rateSweep(); r.Points = nil; return r }(), "no points"},
		{"no vary", func() *sweep.Result { r := rateSweep(); r.Vary = nil; return r }(), "this one 0"},
		{"three varied", func() *sweep.Result {
			r := gridSweep()
			r.Vary = append(r.Vary, r.Vary[0])
			return r
		}(), "this one 3"},
		{"no values", func() *sweep.Result { r := rateSweep(); r.Vary[0].Values = nil; return r }(), "has no values"},
		{"index outside the grid", func() *sweep.Result { r := rateSweep(); r.Points[1].Index = 4; return r }(), "outside the 4 points"},
		{"index twice", func() *sweep.Result { r := rateSweep(); r.Points[1].Index = 0; return r }(), "two points have grid index 0"},
		{"numbers missing", func() *sweep.Result { r := gridSweep(); r.Points[2].X = r.Points[2].X[:1]; return r }(), "1 numbers"},
		{"NaN", func() *sweep.Result { r := rateSweep(); r.Points[2].FailureProb.Hi = nan; return r }(), "not a finite number"},
		{"infinite Erlang B", func() *sweep.Result {
			r := rateSweep()
			inf := math.Inf(1)
			r.Points[1].ErlangB = &inf
			return r
		}(), "not a finite number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			files, err := WriteSweep(tt.res, dir)
			require.ErrorContains(t, err, tt.err)
			assert.Empty(t, files)
			assert.NoDirExists(t, dir, "nothing written")
		})
	}
}

func TestSweepLayout(t *testing.T) {
	axis := func(numeric bool, n int) sweepAxis {
		return sweepAxis{Vary: sweep.Vary{Values: make([]string, n)}, numeric: numeric}
	}
	tests := []struct {
		name   string
		axes   []sweepAxis
		xa, sa int
	}{
		{"one parameter", []sweepAxis{axis(true, 3)}, 0, -1},
		{"both numeric: the second", []sweepAxis{axis(true, 3), axis(true, 3)}, 1, 0},
		{"both numeric: the one with more values", []sweepAxis{axis(true, 5), axis(true, 3)}, 0, 1},
		{"only the first numeric", []sweepAxis{axis(true, 2), axis(false, 5)}, 0, 1},
		{"only the second numeric", []sweepAxis{axis(false, 5), axis(true, 2)}, 1, 0},
		{"neither numeric", []sweepAxis{axis(false, 2), axis(false, 2)}, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			xa, sa := (&sweepGrid{axes: tt.axes}).layout()
			assert.Equal(t, tt.xa, xa, "x")
			assert.Equal(t, tt.sa, sa, "lines")
		})
	}
}

func TestSweepLineAxes(t *testing.T) {
	g, err := newSweepGrid(allocatorSweep())
	require.NoError(t, err)
	f, err := g.lineFigure(g.failureQuantity())
	require.NoError(t, err)
	assert.Equal(t, -0.5, f.Top.X.Min)
	assert.Equal(t, 2.5, f.Top.X.Max)
	assert.Zero(t, f.Top.Y.Min)
	assert.InDelta(t, 0.02*1.2*1.1, f.Top.Y.Max, 1e-12, "the highest interval bound, and a margin")
	assert.Equal(t, []string{"sequential", "linux", "random"}, tickLabels(f.Top.X.Tick.Marker.Ticks(-0.5, 2.5)))

	// All zero: the axis still spans [0, 1].
	res := allocatorSweep()
	for i := range res.Points {
		res.Points[i].FailureProb = sweep.Stat{N: 1}
	}
	g, err = newSweepGrid(res)
	require.NoError(t, err)
	f, err = g.lineFigure(g.failureQuantity())
	require.NoError(t, err)
	assert.Equal(t, 1.0, f.Top.Y.Max)
}

func TestSweepHeatmapColours(t *testing.T) {
	cs := heatPalette
	assert.Equal(t, cs[0], shadeOf(0, 0.4))
	assert.Equal(t, cs[len(cs)-1], shadeOf(0.4, 0.4))
	assert.Equal(t, cs[len(cs)/2], shadeOf(0.2, 0.4))
	for i, c := range cs {
		require.NotNil(t, c, "colour %d", i)
	}
	assert.Equal(t, "0.12", probLabel(0.123))
	assert.Equal(t, "1.2e-05", probLabel(0.0000123))
	assert.Equal(t, "0", probLabel(0))
}

// tickLabels returns the labels of ticks that have one.
func tickLabels(ticks []plot.Tick) []string {
	var out []string
	for _, tk := range ticks {
		if tk.Label != "" {
			out = append(out, tk.Label)
		}
	}
	return out
}
