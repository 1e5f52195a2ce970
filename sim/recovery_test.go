package sim

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portsim/portsim/scenarios"
)

// burstLoad is a workload for the recovery tests: only the fields that
// decide its bursts are set. A zero stop means the end of the run.
func burstLoad(name string, a scenarios.Arrival, start, stop time.Duration) scenarios.Workload {
	return scenarios.Workload{Name: name, Arrival: a, Start: start, Stop: stop}
}

func onOff(on, off time.Duration) scenarios.Arrival {
	return scenarios.Arrival{Process: scenarios.OnOff, Rate: 1000, On: on, Off: off}
}

var steady = scenarios.Arrival{Process: scenarios.Constant, Rate: 200}

// sec is a time in seconds, as Burst holds them.
func sec(s float64) *float64 { return &s }

// TestBursts measures recovery on hand-built series of a 60 s run sampled
// every second (rows at 1 s .. 60 s): failures in the intervals ending at
// the seconds listed, and 100 ports held except 500 in the spans listed.
func TestBursts(t *testing.T) {
	const dur = 60 * time.Second
	type span struct{ from, to int } // seconds, [from, to)
	tests := []struct {
		name    string
		hosts   []scenarios.Host
		loads   []scenarios.Workload
		failing []span
		busy    []span
		want    []Burst
	}{
		{
			name:  "a steady load has no bursts",
			loads: []scenarios.Workload{burstLoad("bg", scenarios.Arrival{Process: scenarios.Poisson, Rate: 200}, 0, 0), burstLoad("up", scenarios.Arrival{Process: scenarios.Ramp, Rate: 10, RateTo: 500}, 5*time.Second, 0)},
		},
		{
			name:  "no failures",
			loads: []scenarios.Workload{burstLoad("burst", onOff(10*time.Second, 100*time.Second), 10*time.Second, 0)},
			busy:  []span{{10, 25}},
			want:  []Burst{{Workload: "burst", EndS: 20, RecoveryS: sec(0), Recovered: true, PortsBackS: sec(5)}},
		},
		{
			name:    "failures stop mid-way",
			loads:   []scenarios.Workload{burstLoad("burst", onOff(10*time.Second, 100*time.Second), 10*time.Second, 0)},
			failing: []span{{15, 28}},
			busy:    []span{{10, 25}},
			want:    []Burst{{Workload: "burst", EndS: 20, RecoveryS: sec(7), Recovered: true, PortsBackS: sec(5)}},
		},
		{
			// On-periods [10, 20), [30, 40), [50, 60): the last ends with
			// the run, so it is no burst end. The second began with 500
			// ports held already, so its ports are back at once.
			name:    "still failing when the next burst starts",
			loads:   []scenarios.Workload{burstLoad("burst", onOff(10*time.Second, 10*time.Second), 10*time.Second, 0)},
			failing: []span{{15, 61}},
			busy:    []span{{10, 61}},
			want: []Burst{
				{Workload: "burst", EndS: 20, RecoveryS: sec(10)},
				{Workload: "burst", EndS: 40, RecoveryS: sec(10), PortsBackS: sec(0)},
			},
		},
		{
			// a's window ends where b starts, at 30 s; b's level before
			// it began is the 100 ports of the sample at 29 s.
			name: "two bursts",
			loads: []scenarios.Workload{
				burstLoad("b", steady, 30*time.Second, 40*time.Second),
				burstLoad("a", onOff(10*time.Second, 100*time.Second), 10*time.Second, 0),
			},
			failing: []span{{15, 24}, {35, 49}},
			busy:    []span{{10, 25}, {30, 50}},
			want: []Burst{
				{Workload: "a", EndS: 20, RecoveryS: sec(3), Recovered: true, PortsBackS: sec(5)},
				{Workload: "b", EndS: 40, RecoveryS: sec(8), Recovered: true, PortsBackS: sec(10)},
			},
		},
		{
			name:    "the run ends during failures",
			loads:   []scenarios.Workload{burstLoad("burst", steady, 10*time.Second, 40*time.Second)},
			failing: []span{{15, 61}},
			busy:    []span{{10, 61}},
			want:    []Burst{{Workload: "burst", EndS: 40, RecoveryS: sec(20)}},
		},
		{
			// The interval (20 s, 21 s] holds failures from before the
			// end at 20.5 s too: the series cannot tell them apart.
			name:    "an interval straddling the end counts whole",
			loads:   []scenarios.Workload{burstLoad("burst", onOff(10500*time.Millisecond, 100*time.Second), 10*time.Second, 0)},
			failing: []span{{11, 22}},
			busy:    []span{{10, 21}},
			want:    []Burst{{Workload: "burst", EndS: 20.5, RecoveryS: sec(0.5), Recovered: true, PortsBackS: sec(0.5)}},
		},
		{
			name: "the next burst starts within the same interval",
			loads: []scenarios.Workload{
				burstLoad("a", onOff(10500*time.Millisecond, 100*time.Second), 10*time.Second, 0),
				burstLoad("b", steady, 20700*time.Millisecond, 0),
			},
			failing: []span{{11, 61}},
			busy:    []span{{10, 61}},
			want:    []Burst{{Workload: "a", EndS: 20.5}},
		},
		{
			name:  "a ramp down ends at its stop",
			loads: []scenarios.Workload{burstLoad("down", scenarios.Arrival{Process: scenarios.Ramp, Rate: 500, RateTo: 0}, 5*time.Second, 30*time.Second)},
			want:  []Burst{{Workload: "down", EndS: 30, RecoveryS: sec(0), Recovered: true, PortsBackS: sec(0)}},
		},
		{
			// Off-periods shorter than the sample interval cannot be told
			// apart in the series: one burst, from start to stop.
			name:  "short off-periods are one burst",
			loads: []scenarios.Workload{burstLoad("burst", onOff(5*time.Second, 500*time.Millisecond), 5*time.Second, 30*time.Second)},
			want:  []Burst{{Workload: "burst", EndS: 30, RecoveryS: sec(0), Recovered: true, PortsBackS: sec(0)}},
		},
		{
			name: "the copies of a counted host are one burst",
			hosts: []scenarios.Host{
				{Name: "vm-1", Group: "vm", Instance: 1, Count: 2},
				{Name: "vm-2", Group: "vm", Instance: 2, Count: 2},
			},
			loads: []scenarios.Workload{
				burstLoad("api@vm-1", steady, 5*time.Second, 30*time.Second),
				burstLoad("api@vm-2", steady, 5*time.Second, 30*time.Second),
			},
			want: []Burst{{Workload: "api", EndS: 30, RecoveryS: sec(0), Recovered: true, PortsBackS: sec(0)}},
		},
	}
	in := func(spans []span, t int) bool {
		return slices.ContainsFunc(spans, func(s span) bool { return s.from <= t && t < s.to })
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &scenarios.Scenario{Duration: dur, Sample: time.Second, Hosts: tt.hosts}
			if s.Hosts == nil {
				s.Hosts = []scenarios.Host{{Name: "client", Instance: 1, Count: 1}}
			}
			for i, w := range tt.loads {
				w.From = min(i, len(s.Hosts)-1)
				if w.Stop == 0 {
					w.Stop = dur
				}
				s.Workloads = append(s.Workloads, w)
			}
			res := &Result{}
			for ts := 1; ts <= 60; ts++ {
				r := Row{TS: float64(ts), PortsInUse: 100}
				if in(tt.failing, ts) {
					r.Failures = 1
				}
				if in(tt.busy, ts) {
					r.PortsInUse = 500
				}
				res.Series.Rows = append(res.Series.Rows, r)
			}
			assert.Equal(t, tt.want, Bursts(s, res))
		})
	}
}

// A scenario without bursts keeps summary.json as it was: no "bursts" key.
func TestBurstsOmittedWhenNone(t *testing.T) {
	b, err := json.Marshal(&Summary{})
	require.NoError(t, err)
	assert.NotContains(t, string(b), `"bursts"`)
}

// TestBurstRecoveryBuiltin checks the built-in burst-recovery against the
// arithmetic in its description.
//
// The background holds 200/s x (1 ms + 100 ms + 1 ms + 60 s) = 12,020.4
// ports (a paced rate: its count hardly moves). A burst begins at B (90 s,
// 270 s) and adds 1,000/s while the expiries (the background's own, 200/s)
// match the background, so the other 16,211.6 ports go in 16.21 s: the
// first failure is at 106.21 s.
//
// Recovery: until B + 60.1 s the only ports freed are the background's
// TIME_WAITs from 60.1 s earlier, at its own rate, so whether it still
// fails is chance, not arithmetic; at B + 60.1 s the burst's first
// TIME_WAITs expire and free 1,000/s more than the background asks for, so
// failures stop then at the latest. With exponential holds the earliest of
// them (B + 60.002 s, a hold of almost 0) and the bulk (B + 60.1 s) are
// within the same 1 s interval, which ends at B + 61 s: 0 <= recovery_s <=
// B + 61 s - E = 31 s, and the burst has recovered.
//
// Ports back: the ports held fall at 1,000/s from B + 60.1 s, as the
// burst's first 16.21 s of TIME_WAITs expire, and reach the level before
// the burst (12,020, give or take the few ports a sample catches in
// SYN_SENT or a hold) at B + 60.1 s + 16.21 s = E + 46.31 s; the first
// sample at or after that is at E + 47 s. A hold's jitter (0.1 s) or
// the background's failures after the burst (each leaves a port free, so
// the level is crossed a little earlier) can move that by one sample
// either way: 46 s to 48 s.
func TestBurstRecoveryBuiltin(t *testing.T) {
	s, err := scenarios.Load("burst-recovery", nil)
	require.NoError(t, err)
	require.EqualValues(t, 1, s.Seed, "the tolerances are for the fixed seed")
	res, err := Run(s)
	require.NoError(t, err)
	sum := &res.Summary
	require.NotNil(t, sum.FirstFailureS)
	assert.InDelta(t, 106.21, *sum.FirstFailureS, 0.05)

	require.Len(t, sum.Bursts, 2)
	for i, b := range sum.Bursts {
		assert.Equal(t, "burst", b.Workload)
		assert.Equal(t, []float64{120, 300}[i], b.EndS)
		assert.True(t, b.Recovered, "burst %d", i)
		require.NotNil(t, b.RecoveryS)
		assert.GreaterOrEqual(t, *b.RecoveryS, 0.0)
		assert.LessOrEqual(t, *b.RecoveryS, 31.0)
		require.NotNil(t, b.PortsBackS)
		assert.InDelta(t, 47, *b.PortsBackS, 1)
		t.Logf("burst ending at %gs: failures stop +%gs, ports back +%gs", b.EndS, *b.RecoveryS, *b.PortsBackS)
	}
	assert.Equal(t, sum.Bursts, Bursts(s, res), "Run fills Summary.Bursts")
}
