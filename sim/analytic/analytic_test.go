package analytic

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestErlangBVectors checks the 50-digit mpmath vectors of
// validation-and-security.md §2.1 to half a unit in the last digit given.
func TestErlangBVectors(t *testing.T) {
	tests := []struct {
		n    int
		a    float64
		want float64
		tol  float64
	}{
		{1, 1, 0.5, 5e-7},
		{5, 2, 0.036697, 5e-7},
		{10, 5, 0.018385, 5e-7},
		{10, 10, 0.214582, 5e-7},
		{15, 8.108, 0.0100, 5e-5},
		{30, 25, 0.052603, 5e-7},
		{100, 80, 0.0039920, 5e-8},
		{100, 100, 0.075700, 5e-7},
		{1000, 900, 5.9299e-5, 5e-10},
		{1000, 950, 0.0036493, 5e-8},
		{1000, 1000, 0.024812, 5e-7},
		{1000, 1050, 0.060260, 5e-7},
		{16384, 16384, 0.0062076, 5e-8},
		{28232, 27000, 2.24e-15, 5e-18},
		{28232, 28232, 0.0047336, 5e-8},
		{28232, 29000, 0.027648, 5e-7},
		{64512, 64512, 0.0031348, 5e-8},
	}
	for _, tt := range tests {
		got := ErlangB(tt.n, tt.a)
		assert.InDelta(t, tt.want, got, tt.tol, "B(%d, %g)", tt.n, tt.a)
	}
}

func TestErlangBEdges(t *testing.T) {
	assert.Equal(t, 1.0, ErlangB(0, 0))
	assert.Equal(t, 1.0, ErlangB(0, 5))
	assert.Equal(t, 0.0, ErlangB(1, 0))
	assert.Equal(t, 0.0, ErlangB(64512, 0))
	assert.Equal(t, 1.0, ErlangB(10, math.Inf(1)))
	assert.True(t, math.IsNaN(ErlangB(-1, 1)))
	assert.True(t, math.IsNaN(ErlangB(1, -1)))
	assert.True(t, math.IsNaN(ErlangB(1, math.NaN())))

	// Extremes: no overflow, no NaN, and the right end of [0, 1].
	tiny := ErlangB(64512, 1e-3) // underflows to 0 (true value ~1e-482000)
	assert.Equal(t, 0.0, tiny)
	huge := ErlangB(64512, 1e6) // ~1 − N/A
	assert.InDelta(t, 1-64512.0/1e6, huge, 1e-3)
	assert.Less(t, huge, 1.0)
	// Large-N sanity check (§2.1): B(N, N) ≈ sqrt(2/(πN)).
	assert.InDelta(t, math.Sqrt(2/(math.Pi*28232)), ErlangB(28232, 28232), 3e-5)
}

func TestErlangBMonotoneInLoad(t *testing.T) {
	for _, n := range []int{1, 5, 100, 1000, 28232} {
		prev := ErlangB(n, 0)
		for i := 1; i <= 200; i++ {
			a := float64(n) * float64(i) / 100 // 0.01 N .. 2 N
			b := ErlangB(n, a)
			require.GreaterOrEqual(t, b, prev, "B(%d, %g) < B(%d, previous load)", n, a, n)
			require.LessOrEqual(t, b, 1.0)
			prev = b
		}
	}
}

// TestCapacityTable checks the "Capacity at target blocking" rows of
// validation-and-security.md §2.1 to the precision printed there.
func TestCapacityTable(t *testing.T) {
	tests := []struct {
		name     string
		n        int
		hold     time.Duration
		fluid    float64 // per second, 1 decimal
		at01     float64 // rate at B = 0.1 %, 1 decimal
		at1      float64 // rate at B = 1 %, 1 decimal
		bAtNPerc float64 // B(N, N) in percent, 2 decimals
	}{
		{"Linux default, one destination", 28232, 60 * time.Second, 470.5, 466.7, 473.9, 0.47},
		{"Windows Vista+ range, TW 240 s", 16384, 240 * time.Second, 68.3, 67.4, 68.6, 0.62},
		{"Windows Vista+ range, TW 120 s", 16384, 120 * time.Second, 136.5, 134.9, 137.3, 0.62},
		{"Azure NAT GW, 1 IP, 65 s FIN cool-down", 64512, 65 * time.Second, 992.5, 988.2, 1001.1, 0.31},
		// §2.1 prints 1.26 % here; mpmath gives B(3977, 3977) = 1.2546 %
		// (1.26 % is the asymptote sqrt(2/(πN))), so the table is off.
		{"Windows 2000 (1024-5000), 240 s", 3977, 240 * time.Second, 16.6, 16.1, 16.5, 1.25},
		{"Textbook 1024-5119, 60 s", 4096, 60 * time.Second, 68.3, 66.2, 68.0, 1.24},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.InDelta(t, tt.fluid, FluidLimit(tt.n, tt.hold), 0.05)
			assert.InDelta(t, tt.at01, MaxRate(tt.n, tt.hold, 0.001), 0.05)
			assert.InDelta(t, tt.at1, MaxRate(tt.n, tt.hold, 0.01), 0.05)
			assert.InDelta(t, tt.bAtNPerc, 100*ErlangB(tt.n, float64(tt.n)), 0.005)
		})
	}
}

func TestMaxRateInvertsErlangB(t *testing.T) {
	tests := []struct {
		n      int
		hold   time.Duration
		target float64
	}{
		{1, time.Second, 0.5},
		{15, time.Second, 0.01},      // erlang.com: 15 lines at 1 % carry 8.108 E
		{64, 30 * time.Second, 1e-9}, // small NAT block, strict target
		{28232, 60 * time.Second, 0.001},
	}
	for _, tt := range tests {
		rate := MaxRate(tt.n, tt.hold, tt.target)
		a := rate * tt.hold.Seconds()
		assert.LessOrEqual(t, ErlangB(tt.n, a), tt.target, "at the answer")
		assert.Greater(t, ErlangB(tt.n, a*(1+1e-8)), tt.target, "just above the answer")
	}
	assert.InDelta(t, 8.108, MaxRate(15, time.Second, 0.01), 5e-4)
}

func TestMaxRateEdges(t *testing.T) {
	assert.Equal(t, 0.0, MaxRate(0, time.Second, 0.01))
	for _, got := range []float64{
		MaxRate(-1, time.Second, 0.01),
		MaxRate(10, 0, 0.01),
		MaxRate(10, -time.Second, 0.01),
		MaxRate(10, time.Second, 0),
		MaxRate(10, time.Second, 1),
		MaxRate(10, time.Second, math.NaN()),
	} {
		assert.True(t, math.IsNaN(got), "got %v", got)
	}
}

func TestLittlesLaw(t *testing.T) {
	tests := []struct {
		rate float64
		hold time.Duration
		want float64
	}{
		{10000, 60 * time.Second, 600000}, // Bernat: 10,000/s with 60 s TIME_WAIT
		{1000, 60 * time.Second, 60000},
		{0.5, 1500 * time.Millisecond, 0.75},
		{0, time.Minute, 0},
		{1000, 0, 0},
	}
	for _, tt := range tests {
		assert.InDelta(t, tt.want, LittlesLaw(tt.rate, tt.hold), 1e-9*tt.want, "λ=%g W=%v", tt.rate, tt.hold)
	}
}

func TestFluidLimit(t *testing.T) {
	assert.InDelta(t, 28232.0/60, FluidLimit(28232, time.Minute), 1e-12)
	assert.True(t, math.IsInf(FluidLimit(1, 0), 1))
}

func TestFirstFailure(t *testing.T) {
	tests := []struct {
		name   string
		n      int
		rate   float64
		hold   time.Duration
		want   time.Duration
		failed bool
	}{
		{"Linux burst", 28232, 1000, 60 * time.Second, 28232 * time.Millisecond, true},
		{"just above the boundary", 10, 1, 10*time.Second + 1, 10 * time.Second, true},
		{"release at the same instant frees the port", 10, 1, 10 * time.Second, 0, false},
		{"well below", 10, 1, 5 * time.Second, 0, false},
		{"fractional spacing", 3, 3, 1001 * time.Millisecond, time.Second, true},
		{"no ports", 0, 5, time.Second, 0, true},
		{"no attempts", 10, 0, time.Hour, 0, false},
		{"zero hold", 1, 1e6, 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, failed := FirstFailure(tt.n, tt.rate, tt.hold)
			assert.Equal(t, tt.failed, failed)
			assert.Equal(t, tt.want, got)
		})
	}
}

// TestFirstFailureBySimulation replays small bursts attempt by attempt,
// releases at the same instant first, and compares with the formula.
func TestFirstFailureBySimulation(t *testing.T) {
	for n := 1; n <= 6; n++ {
		for _, rate := range []float64{1, 2, 4} {
			for holdS := 1; holdS <= 8; holdS++ {
				hold := time.Duration(holdS) * time.Second
				wantAt, wantFail := replay(n, rate, hold, 100)
				gotAt, gotFail := FirstFailure(n, rate, hold)
				require.Equal(t, wantFail, gotFail, "N=%d λ=%g hold=%v", n, rate, hold)
				require.Equal(t, wantAt, gotAt, "N=%d λ=%g hold=%v", n, rate, hold)
			}
		}
	}
}

// replay runs attempts k/rate for k < attempts against n ports, each
// success holding its port until (exclusive) its start plus hold.
func replay(n int, rate float64, hold time.Duration, attempts int) (time.Duration, bool) {
	var releases []time.Duration
	for k := range attempts {
		at := time.Duration(math.Round(float64(k) * float64(time.Second) / rate))
		held := releases[:0]
		for _, r := range releases {
			if r > at {
				held = append(held, r)
			}
		}
		releases = held
		if len(releases) >= n {
			return at, true
		}
		releases = append(releases, at+hold)
	}
	return 0, false
}

func BenchmarkErlangB(b *testing.B) {
	for b.Loop() {
		ErlangB(28232, 28232)
	}
}
