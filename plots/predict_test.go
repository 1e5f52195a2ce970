package plots

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portsim/portsim/sim/predict"
)

// predictPorts is the range size of the synthetic reports: Linux's
// default 32768-60999.
const predictPorts = 28232

// predictKs is the grid of predict's curves: 1, 2, 5, 10, … below n, then
// n itself.
func predictKs(n int) []int {
	var ks []int
	for decade := 1; decade < n; decade *= 10 {
		for _, m := range []int{1, 2, 5} {
			if k := m * decade; k < n {
				ks = append(ks, k)
			}
		}
	}
	return append(ks, n)
}

// flatCurve is the curve of a uniform choice over spread ports, P_K =
// K/spread (1 from K = spread on), except that the single guess had no
// held-out hit (P_1 = 0, to be clamped to the axis bottom).
func flatCurve(spread float64) []predict.Point {
	var pts []predict.Point
	for _, k := range predictKs(predictPorts) {
		p := min(1, float64(k)/spread)
		if k == 1 {
			p = 0
		}
		pts = append(pts, predict.Point{K: k, P: predict.Estimate{Value: p, Low: 0.8 * p, High: min(1, 1.2*p+1e-4)}})
	}
	return pts
}

// peakedCurve is a sequential allocator's: the first guess is right 60 %
// of the time, ten guesses always.
func peakedCurve() []predict.Point {
	var pts []predict.Point
	for _, k := range predictKs(predictPorts) {
		p := map[int]float64{1: 0.6, 2: 0.8, 5: 0.95}[k]
		if k >= 10 {
			p = 1
		}
		pts = append(pts, predict.Point{K: k, P: predict.Estimate{Value: p, Low: 0.9 * p, High: min(1, 1.1*p)}})
	}
	return pts
}

// bits returns a min-entropy estimate of v bits, ±0.3 bits.
func bits(v float64) predict.Estimate {
	return predict.Estimate{Value: v, Low: v - 0.3, High: v + 0.3}
}

// share returns a reuse-cycle estimate of v, with a Clopper-Pearson-like
// upper end above 0 even where v is exactly 0.
func share(v float64) predict.Estimate {
	return predict.Estimate{Value: v, Low: 0.7 * v, High: 1.3*v + 0.0004}
}

// predictFixture returns a report of three allocators. sequential (a
// peaked curve, no reuse at all) and random-pick (a flat curve over the
// range, reuse growing with load, only a lower bound on min-entropy at
// ×0.1) run at ×0.1, ×1 and ×10; linux (flat over a quarter of the range)
// at ×3 and ×0.1 only (listed out of order), so the guesses figure takes
// its ×3 row. Rows of one allocator are not
// adjacent, as a hand-made report may have them.
func predictFixture() *predict.Report {
	rep := &predict.Report{
		Scenario: "predict-victim", Host: "victim", Range: "32768-60999", RangeSize: predictPorts,
		TimeWaitS: 60, Observations: 2000, Guesses: 100, Boots: 2, PerBoot: 1000,
	}
	for i, s := range []float64{0.1, 1, 10} {
		rep.Rows = append(rep.Rows,
			predict.Row{Allocator: "sequential", Scale: s, MinEntropy: bits(0.7 + float64(i)), ReuseCycle: share(0), Curve: peakedCurve()},
			predict.Row{Allocator: "random-pick", Scale: s, MinEntropy: bits(14.5), ReuseCycle: share(0.005 * math.Pow(4, float64(i))), Curve: flatCurve(predictPorts)},
		)
	}
	rep.Rows[1].MinEntropy = predict.Estimate{Value: 11.2, Low: 11.2, Open: true}
	rep.Rows = append(rep.Rows,
		predict.Row{Allocator: "linux", Scale: 3, MinEntropy: bits(12.5), ReuseCycle: share(0.001), Curve: flatCurve(predictPorts / 4)},
		predict.Row{Allocator: "linux", Scale: 0.1, MinEntropy: bits(9), ReuseCycle: share(0), Curve: flatCurve(predictPorts / 8)},
	)
	return rep
}

func TestWritePredict(t *testing.T) {
	rep := predictFixture()
	want := []string{"predict-tradeoff.png", "predict-tradeoff.svg", "predict-guesses.png", "predict-guesses.svg"}

	dir := chartDir(t)
	files, err := WritePredict(rep, dir)
	require.NoError(t, err)
	require.Equal(t, want, files)
	for name, wants := range map[string][]string{
		"predict-tradeoff": {
			"Predictability vs port reuse within TIME_WAIT, per allocator and load",
			"scenario predict-victim, host victim, 2,000 observations per allocator and load",
			"port reuse within TIME_WAIT toward the same destination (% of connections)",
			"min-entropy of the next port (bits; higher = less predictable)",
			">sequential<", ">random-pick<", ">linux<",
			"uniform over 28,232 ports (14.79 bits)", "95 % intervals",
			">×0.1<", ">×10<", ">×3<", "×0.1: ≥ 11.2 bits", "min-entropy at least this",
		},
		"predict-guesses": {
			"Attacker&#39;s success with K guesses, per allocator at load ×1",
			"K: the attacker&#39;s best guesses per attempt (ports, log scale)",
			"P_K: probability that one of K guesses is the port",
			">sequential<", ">random-pick<", ">linux (×3)<",
			"uniform over 28,232 ports: P = K/N", "K = 100, the report&#39;s guesses",
			"P below 1e-05 (0: no held-out hit) drawn on the bottom axis", ">10,000<", ">1e-05<",
		},
	} {
		svg := string(checkChartFiles(t, dir, name))
		for _, w := range wants {
			assert.Contains(t, svg, w, name)
		}
		assert.NotContains(t, svg, "NaN", name)
	}

	// Same report, another directory: the same bytes.
	again := t.TempDir()
	files2, err := WritePredict(predictFixture(), again)
	require.NoError(t, err)
	require.Equal(t, want, files2)
	entries, err := os.ReadDir(again)
	require.NoError(t, err)
	assert.Len(t, entries, len(want), "only the files returned")
	first, second := readAll(t, dir, files), readAll(t, again, files)
	for _, f := range files {
		assert.NotEmpty(t, second[f], f)
		assert.Equal(t, first[f], second[f], "%s byte-identical on a second call", f)
	}
}

// An empty report is an error, not an empty figure: a figure of nothing
// would pass for a result. Nothing is written, not even dir.
func TestWritePredictErrors(t *testing.T) {
	empty := predictFixture()
	empty.Rows = nil
	tiny := predictFixture()
	tiny.RangeSize = 1
	for _, tt := range []struct {
		name string
		rep  *predict.Report
		err  string
	}{
		{"nil", nil, "no predict report"},
		{"no rows", empty, "has no rows"},
		{"range of one port", tiny, "range size is 1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			files, err := WritePredict(tt.rep, dir)
			require.ErrorContains(t, err, tt.err)
			assert.Empty(t, files)
			assert.NoDirExists(t, dir, "nothing written")
		})
	}
}

func TestPredictLines(t *testing.T) {
	lines, err := predictLines(predictFixture())
	require.NoError(t, err)
	require.Len(t, lines, 3)
	var names []string
	for _, l := range lines {
		names = append(names, l.allocator)
	}
	assert.Equal(t, []string{"sequential", "random-pick", "linux"}, names, "order of first appearance")
	assert.Equal(t, 0.1, lines[2].rows[0].Scale, "sorted by load")
	assert.Equal(t, 3.0, lines[2].rows[1].Scale)
}

func TestPredictAxes(t *testing.T) {
	rep := predictFixture()
	lines, err := predictLines(rep)
	require.NoError(t, err)

	f := predictTradeoff(rep, lines)
	assert.Zero(t, f.Top.X.Min)
	assert.InDelta(t, 100*(1.3*0.08+0.0004)*1.1, f.Top.X.Max, 1e-9, "the highest interval end, and a margin")
	assert.Zero(t, f.Top.Y.Min)
	assert.InDelta(t, math.Log2(predictPorts)+0.5, f.Top.Y.Max, 1e-9)

	// In log10 units: K from 1 to N, P from 1e-5 to 1.
	g := predictGuesses(rep, lines)
	assert.Zero(t, g.Top.X.Min)
	assert.Equal(t, math.Log10(predictPorts), g.Top.X.Max)
	assert.Equal(t, -5.0, g.Top.Y.Min)
	assert.Zero(t, g.Top.Y.Max)

	// A larger range puts 1/N, the uniform line's start, below 1e-5: the
	// axis goes down to the next power of ten.
	rep.RangeSize = 1 << 17
	assert.Equal(t, -6.0, predictGuesses(rep, lines).Top.Y.Min)
}

func TestPredictGuessScale(t *testing.T) {
	rows := func(scales ...float64) *predict.Report {
		rep := &predict.Report{}
		for _, s := range scales {
			rep.Rows = append(rep.Rows, predict.Row{Scale: s})
		}
		return rep
	}
	assert.Equal(t, 1.0, guessScale(rows(10, 0.1, 1)), "1 when a row has it")
	assert.Equal(t, 2.0, guessScale(rows(8, 0.5, 2, 8, 0.5)), "else the middle of the distinct scales")
	assert.Equal(t, 0.5, guessScale(rows(2, 0.5)), "the lower middle of an even number")

	at := func(scale float64, scales ...float64) float64 {
		var rs []*predict.Row
		for _, s := range scales {
			rs = append(rs, &predict.Row{Scale: s})
		}
		return rowAt(rs, scale).Scale
	}
	assert.Equal(t, 1.0, at(1, 0.1, 1, 10))
	assert.Equal(t, 3.0, at(1, 0.1, 3), "closest by ratio, not difference")
	assert.Equal(t, 0.5, at(1, 0.5, 3))
}

func TestPredictLabels(t *testing.T) {
	assert.Equal(t, "×0.1", loadLabel(0.1))
	assert.Equal(t, "×1", loadLabel(1))
	assert.Equal(t, "×10", loadLabel(10))
	assert.Equal(t, "uniform over 28,232 ports", uniformLabel(28232))

	assert.Equal(t, -5, floorDecade(0, 0.5, 3.5e-5), "zeros do not lower the floor")
	assert.Equal(t, -6, floorDecade(7.6e-6))
	assert.Equal(t, -6, floorDecade(1e-6))

	ticks := decadeTicks{}.Ticks(0, math.Log10(28232))
	assert.Equal(t, []string{"1", "10", "100", "1,000", "10,000"}, tickLabels(ticks))
	assert.Len(t, ticks, 4*9+2, "2 to 9 in four decades, 10,000 and 20,000")
	assert.Equal(t, []string{"1e-05", "0.0001", "0.001", "0.01", "0.1", "1"}, tickLabels(decadeTicks{}.Ticks(math.Log10(1e-5), 0)))
}

// Annotations that would overlap are left out: eight points at one spot
// get four, one at each corner, in the order of the rows.
func TestPredictLabelPlacement(t *testing.T) {
	rep := predictFixture()
	for i := range rep.Rows {
		rep.Rows[i].ReuseCycle, rep.Rows[i].MinEntropy = share(0.01), bits(5)
	}
	dir := t.TempDir()
	_, err := WritePredict(rep, dir)
	require.NoError(t, err)
	svg := string(checkChartFiles(t, dir, "predict-tradeoff"))
	assert.Equal(t, 4, strings.Count(svg, ">×"), "labels placed")
	assert.NotContains(t, svg, ">×3<", "linux's, the last, left out")
}
