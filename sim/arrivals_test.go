package sim

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portsim/portsim/scenarios"
)

// countArrivals runs a workload's arrival process and returns its times.
func countArrivals(t *testing.T, a scenarios.Arrival, start, stop time.Duration) []Time {
	t.Helper()
	w := &scenarios.Workload{Name: "w", Arrival: a, Start: start, Stop: stop}
	arr := newArrivals(w, stream(1, "test"))
	var ts []Time
	for {
		x, ok := arr.next()
		if !ok {
			return ts
		}
		require.GreaterOrEqual(t, x, Time(start))
		require.Less(t, x, Time(stop))
		if len(ts) > 0 {
			require.GreaterOrEqual(t, x, ts[len(ts)-1], "arrivals go forward")
		}
		ts = append(ts, x)
	}
}

// Deterministic processes put the k-th arrival where the cumulative rate
// reaches k, so their counts are exact.
func TestArrivalCounts(t *testing.T) {
	for _, tc := range []struct {
		name        string
		a           scenarios.Arrival
		start, stop time.Duration
		want        int
		first, last Time
	}{
		{"constant 1000/s for 28.5 s", scenarios.Arrival{Process: scenarios.Constant, Rate: 1000}, 0, 28500 * time.Millisecond, 28500, 0, 28499e6},
		{"constant from start=5s", scenarios.Arrival{Process: scenarios.Constant, Rate: 3}, 5 * time.Second, 7 * time.Second, 6, 5e9, 5e9 + 1666666667},
		// Λ(10 s) = 0·10 + (100/20)·10² = 500
		{"ramp 0 -> 100/s over 10 s", scenarios.Arrival{Process: scenarios.Ramp, Rate: 0, RateTo: 100}, 0, 10 * time.Second, 500, 0, -1},
		// Λ(10 s) = 1·10 + (99/20)·10² = 505
		{"ramp 1 -> 100/s over 10 s", scenarios.Arrival{Process: scenarios.Ramp, Rate: 1, RateTo: 100}, 0, 10 * time.Second, 505, 0, -1},
		// Λ(10 s) = 100·10 − (100/20)·10² = 500
		{"ramp 100 -> 0/s over 10 s", scenarios.Arrival{Process: scenarios.Ramp, Rate: 100, RateTo: 0}, 0, 10 * time.Second, 500, 0, -1},
		{"onoff 10/s, 1 s on, 2 s off, 9 s", scenarios.Arrival{Process: scenarios.OnOff, Rate: 10, On: time.Second, Off: 2 * time.Second}, 0, 9 * time.Second, 30, 0, 6900e6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := countArrivals(t, tc.a, tc.start, tc.stop)
			require.Len(t, ts, tc.want)
			assert.Equal(t, tc.first, ts[0])
			if tc.last >= 0 {
				assert.Equal(t, tc.last, ts[len(ts)-1])
			}
		})
	}
}

// Poisson arrivals: the count over T is Poisson(rate·T); with a fixed seed
// it must fall within 3.29 standard deviations (99.9 %).
func TestPoissonCount(t *testing.T) {
	const rate, secs = 1000.0, 100.0
	ts := countArrivals(t, scenarios.Arrival{Process: scenarios.Poisson, Rate: rate}, 0, time.Duration(secs*float64(time.Second)))
	mean := rate * secs
	assert.InDelta(t, mean, float64(len(ts)), 3.29*math.Sqrt(mean))
}

// Events counts what the loop handled, not the first event past the end.
func TestEventsCount(t *testing.T) {
	w := scenarios.Workload{Arrival: scenarios.Arrival{Process: scenarios.Constant, Rate: 1},
		Hold: scenarios.Hold{Dist: scenarios.Fixed}, Close: scenarios.CloseMix{RST: 1}}
	res, err := Run(scenario(host(t, "linux", nil), w, 11*time.Second))
	require.NoError(t, err)
	assert.Equal(t, uint64(11), res.Summary.Attempts)
	// arrival, SYN-ACK, close (RST) for each of the 11 connections.
	assert.Equal(t, uint64(33), res.Summary.Events)
}
