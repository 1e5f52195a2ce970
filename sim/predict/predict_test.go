package predict

import (
	"context"
	"encoding/json"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// linuxPorts is the Linux default range's size (32768-60999).
const linuxPorts = 28232

// run is Run on the default victim with the given allocators and loads.
func run(t *testing.T, allocs []string, scales []float64, obs int) *Report {
	t.Helper()
	rep, err := Run(context.Background(), Options{Scenario: "predict-victim", Allocators: allocs, Scales: scales, Observations: obs, Workers: 2})
	require.NoError(t, err)
	require.Len(t, rep.Rows, len(allocs)*len(scales))
	return rep
}

// TestUniformMinEntropy: a uniform allocator over Linux's 28,232 ports has
// log2(28232) = 14.785 bits of min-entropy (validation-and-security.md
// §3.6: "14.8 bits"). random-pick on a nearly idle victim is uniform over
// the free ports; the held-out success of the k best guesses must be k/N
// for every k of the grid, within the Bonferroni-adjusted 95 % interval,
// and the estimate must be log2 N.
func TestUniformMinEntropy(t *testing.T) {
	rep := run(t, []string{"random-pick"}, []float64{0.01}, 16384)
	r := rep.Rows[0]
	want := math.Log2(linuxPorts)
	assert.InDelta(t, want, r.MinEntropy.Value, 0.01, "min-entropy %+v", r.MinEntropy)
	assert.False(t, r.MinEntropy.Open)
	assert.LessOrEqual(t, r.MinEntropy.Low, want)
	assert.GreaterOrEqual(t, r.MinEntropy.High, want-1e-9)
	// No hit among 8,192 held-out guesses: P1 < 4.5e-4, at least 11 bits.
	assert.Greater(t, r.MinEntropy.Low, 11.0)
	alpha := 0.05 / float64(len(r.Curve))
	for _, pt := range r.Curve {
		hits := int(math.Round(pt.P.Value * float64(r.Test)))
		ci := binomialAt(hits, r.Test, alpha)
		k := float64(pt.K) / linuxPorts
		assert.True(t, ci.Low <= k && k <= ci.High, "P_%d = %v, want %v in [%v, %v]", pt.K, pt.P.Value, k, ci.Low, ci.High)
	}
	assert.Equal(t, "GREAT", r.OARC.Rating, "uniform ports: std. dev. %v (8,150 expected)", r.OARC.StdDev)
}

// TestSequentialPoissonMode: a sequential allocator with Poisson
// background of mean 1 between the observation and the target gives
// next = observed + 1 + Po(1), whose mode has probability e^-1: 1.44 bits
// (validation-and-security.md §3.6, the Klinec-Matyas model). The default
// victim opens 10 connections/s and the gap is 100 ms.
func TestSequentialPoissonMode(t *testing.T) {
	rep := run(t, []string{"sequential"}, []float64{1}, 8192)
	r := rep.Rows[0]
	// The load is a Poisson mean: its standard error is sqrt(1/n).
	assert.InDelta(t, 1, r.Load, 3/math.Sqrt(float64(r.Samples)), "mean background between observation and target")
	want := -math.Log2(math.Exp(-1))
	assert.True(t, r.MinEntropy.Low <= want && want <= r.MinEntropy.High, "min-entropy %+v, want %.4f inside", r.MinEntropy, want)
	assert.InDelta(t, 1.0, r.Success.Value, 1e-9, "100 guesses cover Po(1)")
	assert.Equal(t, "POOR", r.OARC.Rating)
	assert.Greater(t, r.Leakage.Low, 0.9, "the global counter leaks the connections elsewhere: %+v", r.Leakage)
	assert.Zero(t, r.ReuseCycle.Value, "a sequential walk comes back to a port only after a lap of the range")
}

// TestFreeBSD13FallsBack: FreeBSD 13's ipport_tick turns allocation
// sequential while more than randomcps (10) ports a second are allocated
// (model d). At 1/s of background plus the attacker's 2/s it stays random;
// at 10/s plus 2/s it is sequential and as predictable as the sequential
// allocator.
func TestFreeBSD13FallsBack(t *testing.T) {
	rep := run(t, []string{"freebsd-13"}, []float64{0.1, 1}, 8192)
	quiet, busy := rep.Rows[0], rep.Rows[1]
	assert.Greater(t, quiet.MinEntropy.Value, 14.0, "random below randomcps: %+v", quiet.MinEntropy)
	assert.Less(t, quiet.Leakage.High, 0.01)
	want := -math.Log2(math.Exp(-1))
	assert.True(t, busy.MinEntropy.Low <= want && want <= busy.MinEntropy.High, "sequential above randomcps: %+v", busy.MinEntropy)
	assert.Greater(t, busy.Leakage.Low, 0.9)
}

// TestLeakageAndParity: Linux's Algorithm 3 (one global hint) leaks the
// victim's connections elsewhere into the increments the attacker sees
// (commit 190cc82489f4); 5.18+ does not. Linux's parity split halves the
// candidates: log2(28232/2) = 13.79 bits. Random ports reuse a port toward
// the same peer within TIME_WAIT with probability about
// 1-exp(-lambda_X TW/N) in steady state.
func TestLeakageAndParity(t *testing.T) {
	rep := run(t, []string{"linux-alg3", "linux", "random-start"}, []float64{10}, 8192)
	alg3, linux, random := rep.Rows[0], rep.Rows[1], rep.Rows[2]
	assert.Greater(t, alg3.Leakage.Low, 0.9, "%+v", alg3.Leakage)
	assert.Less(t, linux.Leakage.High, 0.01, "%+v", linux.Leakage)
	assert.Less(t, random.Leakage.High, 0.01, "%+v", random.Leakage)
	half := math.Log2(linuxPorts / 2)
	assert.True(t, linux.MinEntropy.Low <= half && half <= linux.MinEntropy.High, "%+v, want %.3f", linux.MinEntropy, half)
	assert.Zero(t, alg3.ReuseCycle.Value)

	// random-start on 8 destinations at 100/s (lx = 12.5/s each), TIME_WAIT
	// 60 s, holding 1 s on average. t seconds into the run, the ports
	// used toward X in the last min(t, TW) number N(1-exp(-lx min(t,TW)/N))
	// (distinct ones), lx*hold of them still held toward X and not
	// choosable; the others of the N-lx*hold choosable ports collide. The
	// run's fraction is the time average. (Ports held toward other
	// destinations stay choosable: Linux connect() shares them.)
	lx, tw, hold, d := 100.0/8, 60.0, 1.0, rep.WarmS+float64(rep.PerBoot)*rep.IntervalS
	var sum float64
	const steps = 100000
	for i := range steps {
		t := (float64(i) + 0.5) * d / steps
		used := linuxPorts * (1 - math.Exp(-lx*math.Min(t, tw)/linuxPorts))
		sum += math.Max(0, used-lx*hold) / (linuxPorts - lx*hold)
	}
	want := sum / steps
	assert.True(t, random.ReuseCycle.Low <= want && want <= random.ReuseCycle.High, "reuse %+v, want %.5f", random.ReuseCycle, want)
}

// TestReportDeterministic: the report depends on the seed only, not on the
// number of workers.
func TestReportDeterministic(t *testing.T) {
	o := Options{Scenario: "predict-victim", Allocators: []string{"linux-alg4-256", "double-hash"}, Scales: []float64{1}, Observations: 256}
	a, err := Run(context.Background(), o)
	require.NoError(t, err)
	o.Workers = 2
	b, err := Run(context.Background(), o)
	require.NoError(t, err)
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	assert.Equal(t, string(ja), string(jb))
}

// TestBadOptions: configuration mistakes are ErrOptions, not panics.
func TestBadOptions(t *testing.T) {
	for name, o := range map[string]Options{
		"unknown allocator": {Allocators: []string{"nope"}},
		"gap >= interval":   {Gap: 2e9, Interval: 1e9},
		"no such host":      {Host: "nobody"},
		"negative scale":    {Scales: []float64{-1}},
		"few observations":  {Observations: 2},
	} {
		o.Scenario = "predict-victim"
		_, err := Run(context.Background(), o)
		require.ErrorIs(t, err, ErrOptions, name)
	}
}

// TestSpoofWithTXID: a blind spoofer with K responses against a uniform
// port and a uniform 16-bit ID succeeds with K/(N x 65,536) per attempt
// (RFC 5452 §7 with one nameserver and one query): 2^-30.8 per response
// for Linux's range (validation-and-security.md §3.2).
func TestSpoofWithTXID(t *testing.T) {
	p := newPredictive(linuxPorts)
	for i := range 4 * linuxPorts {
		p.add(i%linuxPorts, i/linuxPorts%2 == 0)
	}
	p.finish()
	got := p.spoof(100)
	want := 100 / (linuxPorts * 65536.0)
	assert.InEpsilon(t, want, got.Value, 1e-9)
	assert.InDelta(t, 30.8, -math.Log2(got.Value/100), 0.05)
	// Past 65,536 responses the second port is tried too.
	assert.InEpsilon(t, 2/float64(linuxPorts), p.spoof(2*65536).Value, 1e-9)
	assert.Equal(t, 1.0, attempts50(Estimate{Value: 1, Low: 1, High: 1}).Value)
	a := attempts50(Estimate{Value: 0.5, Low: 0.4, High: 0.6})
	assert.Equal(t, Estimate{Value: 1, Low: 1, High: 2}, a)
}
