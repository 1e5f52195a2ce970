package plots

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portsim/portsim/sim"
)

// burst returns the result of a constant-rate burst from 10.0.0.1 to
// 203.0.113.10:443: 600 connects per second against the 28,232 ports of
// Linux's default range, each ESTABLISHED for 0.5 s, closing for 20 ms,
// then in TIME_WAIT for 60 s, sampled every second for 150 s. The pool
// fills at about 47 s; failures then come in waves, as the first cohort
// leaves TIME_WAIT.
func burst() *sim.Result {
	const (
		ports      = 28232
		rate       = 600.0
		lifetime   = 0.5
		closing    = 0.02
		timeWait   = 60.0
		duration   = 150
		intervalS  = 1.0
		holdingS   = lifetime + closing + timeWait
		littlesLaw = ports // offered 36,312 erlangs: the pool carries ~N
	)
	var starts []float64 // successful connects, in order
	failures := make([]uint64, duration+1)
	released := 0 // index into starts of the oldest port still held
	for k := 0; float64(k)/rate < duration; k++ {
		t := float64(k) / rate
		for released < len(starts) && starts[released]+holdingS <= t {
			released++
		}
		if len(starts)-released >= ports {
			failures[int(t/intervalS)+1]++ // counted at the end of the interval
			continue
		}
		starts = append(starts, t)
	}
	// count returns the connects started in (from, to].
	count := func(from, to float64) int {
		lo := sort.SearchFloat64s(starts, from)
		for lo < len(starts) && starts[lo] <= from {
			lo++
		}
		hi := sort.SearchFloat64s(starts, to)
		for hi < len(starts) && starts[hi] <= to {
			hi++
		}
		return hi - lo
	}

	res := &sim.Result{
		Summary: sim.Summary{
			Scenario: "linux-burst",
			Seed:     1,
			Domains: []sim.DomainSummary{
				{Host: "client", Local: "10.0.0.1", Destination: "198.51.100.7:80", UsablePorts: ports},
				{
					Host: "client", Local: "10.0.0.1", Destination: "203.0.113.10:443", UsablePorts: ports,
					Analytic: sim.Analytic{Applicable: true, LittlesLawPorts: littlesLaw},
				},
			},
			MostLoaded: 1,
		},
		Series: sim.Series{IntervalS: intervalS},
	}
	for i := 1; i <= duration; i++ {
		ts := float64(i) * intervalS
		res.Series.Rows = append(res.Series.Rows, sim.Row{TS: ts})
		res.Series.Domain = append(res.Series.Domain, sim.DomainRow{
			Established: count(ts-lifetime, ts),
			Other:       count(ts-lifetime-closing, ts-lifetime),
			TimeWait:    count(ts-holdingS, ts-lifetime-closing),
			Failures:    failures[i],
		})
	}
	return res
}

func TestBurstFixture(t *testing.T) {
	res := burst()
	d := res.Series.Domain
	require.Len(t, d, 150)
	// The pool is full from about 47 s (28232 / 600 = 47.05 s).
	assert.Zero(t, d[46].Failures)
	assert.NotZero(t, d[47].Failures)
	assert.Equal(t, 28232, d[50].Established+d[50].TimeWait+d[50].Other)
	assert.Greater(t, d[50].TimeWait, 25*d[50].Established)
}

// chartDir is where a test writes its charts: a temporary directory, or
// PORTSIM_PLOTS_DIR to look at them (PORTSIM_PLOTS_DIR=/tmp/plots-check).
func chartDir(t *testing.T) string {
	if keep := os.Getenv("PORTSIM_PLOTS_DIR"); keep != "" {
		return keep
	}
	return t.TempDir()
}

// checkChartFiles checks that dir/name.png decodes at the figure's size
// and that dir/name.svg is an SVG document, and returns the SVG.
func checkChartFiles(t *testing.T, dir, name string) []byte {
	t.Helper()
	pngBytes, err := os.ReadFile(filepath.Join(dir, name+".png"))
	require.NoError(t, err)
	img, err := png.Decode(bytes.NewReader(pngBytes))
	require.NoError(t, err)
	assert.Equal(t, 10*pngDPI, img.Bounds().Dx())
	assert.Equal(t, 7*pngDPI, img.Bounds().Dy())
	svg, err := os.ReadFile(filepath.Join(dir, name+".svg"))
	require.NoError(t, err)
	assert.True(t, bytes.HasPrefix(svg, []byte("<?xml")), "SVG header")
	return svg
}

func TestWriteOccupancy(t *testing.T) {
	dir := chartDir(t)
	require.NoError(t, WriteOccupancy(burst(), dir))
	svg := checkChartFiles(t, dir, "occupancy")
	for _, want := range []string{"Ports toward 203.0.113.10:443 from 10.0.0.1 (client)", "28,232", "TIME_WAIT", "Little"} {
		assert.Contains(t, string(svg), want)
	}
	assert.NotContains(t, string(svg), "25000.00")
	assert.Contains(t, string(svg), "font-family:'Liberation Sans',Arial,Helvetica,sans-serif;")
	assert.NotContains(t, string(svg), "font-family:Liberation Sans;")
}

func TestOccupancyDeterministic(t *testing.T) {
	for _, format := range []string{"svg", "png"} {
		t.Run(format, func(t *testing.T) {
			assert.Equal(t, render(t, burst(), format), render(t, burst(), format))
		})
	}
}

func TestOccupancyWithoutAnalytic(t *testing.T) {
	res := burst()
	res.Summary.Domains[1].Analytic.Applicable = false
	svg := render(t, res, "svg")
	assert.NotContains(t, string(svg), "Little")
	assert.Contains(t, string(svg), "port budget")
}

func TestOccupancyErrors(t *testing.T) {
	tests := []struct {
		name string
		edit func(*sim.Result)
	}{
		{"no rows", func(r *sim.Result) { r.Series.Rows, r.Series.Domain = nil, nil }},
		{"domain rows missing", func(r *sim.Result) { r.Series.Domain = r.Series.Domain[:3] }},
		{"no domains", func(r *sim.Result) { r.Summary.Domains, r.Summary.MostLoaded = nil, -1 }},
		{"most loaded out of range", func(r *sim.Result) { r.Summary.MostLoaded = 2 }},
		{"zero interval", func(r *sim.Result) { r.Series.IntervalS = 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := burst()
			tt.edit(res)
			_, err := Occupancy(res)
			require.Error(t, err)
			require.Error(t, WriteOccupancy(res, t.TempDir()))
		})
	}
	_, err := Occupancy(nil)
	require.Error(t, err)
	_, err = Occupancy(&sim.Result{})
	require.Error(t, err)
}

func TestWriterToFormat(t *testing.T) {
	f, err := Occupancy(burst())
	require.NoError(t, err)
	_, err = f.WriterTo("gif")
	require.EqualError(t, err, `plots: unsupported format "gif" (want png or svg)`)
}

func TestTitle(t *testing.T) {
	sum := sim.Summary{Scenario: "s", Seed: 7}
	assert.Equal(t, "Ports toward 192.0.2.1:53 from 10.0.0.2 (h) — scenario s, seed 7",
		title(sum, sim.DomainSummary{Host: "h", Local: "10.0.0.2", Destination: "192.0.2.1:53"}))
	assert.Equal(t, "Ports of 10.0.0.2 (h), all destinations — scenario s, seed 7",
		title(sum, sim.DomainSummary{Host: "h", Local: "10.0.0.2", Destination: "*"}))
	assert.Equal(t, "Ports toward 192.0.2.1:53 from h — scenario s, seed 7",
		title(sum, sim.DomainSummary{Host: "h", Destination: "192.0.2.1:53"}))
	assert.Equal(t, "Ports, all destinations — scenario s, seed 7",
		title(sum, sim.DomainSummary{Destination: "*"}))
}

func TestOccupancyOneSample(t *testing.T) {
	for _, ts := range []float64{0, 1} {
		res := burst()
		res.Series.Rows, res.Series.Domain = res.Series.Rows[:1], res.Series.Domain[:1]
		res.Series.Rows[0].TS = ts
		assert.NotEmpty(t, render(t, res, "svg"), "sample at %g s", ts)
	}
}

func TestNumberTicks(t *testing.T) {
	labels := func(tk numberTicks, lo, hi float64) []string {
		var out []string
		for _, x := range tk.Ticks(lo, hi) {
			if x.Label != "" {
				out = append(out, x.Label)
			}
		}
		return out
	}
	assert.Equal(t, []string{"0", "10,000", "20,000", "30,000"}, labels(numberTicks{integer: true}, 0, 31055))
	for _, l := range labels(numberTicks{integer: true}, 0, 1.5) {
		assert.NotContains(t, l, ".")
	}
	assert.Contains(t, labels(numberTicks{}, 0, 1.5), "0.5")

	for in, want := range map[string]string{
		"0": "0", "999": "999", "1000": "1,000", "28232": "28,232", "-1234567.25": "-1,234,567.25", "1e+07": "1e+07",
	} {
		assert.Equal(t, want, groupDigits(in), in)
	}
	for in, want := range map[string]string{"25000.00": "25000", "0.50": "0.5", "12": "12", "1.0e+07": "1.0e+07"} {
		assert.Equal(t, want, trimZeros(in), in)
	}
}

// render returns res's occupancy figure in format.
func render(t *testing.T, res *sim.Result, format string) []byte {
	t.Helper()
	return renderWith(t, Occupancy, res, format)
}

// renderWith builds a figure of res with build and returns it in format.
func renderWith(t *testing.T, build func(*sim.Result) (*Figure, error), res *sim.Result, format string) []byte {
	t.Helper()
	f, err := build(res)
	require.NoError(t, err)
	wt, err := f.WriterTo(format)
	require.NoError(t, err)
	var buf bytes.Buffer
	_, err = wt.WriteTo(&buf)
	require.NoError(t, err)
	return buf.Bytes()
}
