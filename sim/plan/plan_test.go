package plan

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rank returns the position of the named remedy in res.
func rank(t *testing.T, res *Result, name string) int {
	t.Helper()
	for i, f := range res.Remedies {
		if f.Remedy == name {
			return i
		}
	}
	require.Failf(t, "remedy missing", "%q not in the plan", name)
	return -1
}

// TestPlanK6NoReuse is the acceptance: on k6-no-reuse (1,200/s
// constant, 20 ms requests, client closes, 28,232 ports, 60 s) the plan
// ranks connection reuse and more destinations or source addresses above
// a wider range, by factors the search computed. The expected factors
// follow from the ports: a 60 s run starting empty sustains about
// ports/59.4 s at 1 % failures, so 4 sources or destinations give 4 times
// the ports and 1024-65535 gives 64,512/28,232 = 2.285 times; the
// bisection stops within 2 %, so each factor is checked within 3 %.
func TestPlanK6NoReuse(t *testing.T) {
	if testing.Short() {
		t.Skip("about 60 simulated runs")
	}
	res, err := Run(context.Background(), Options{Scenario: "k6-no-reuse", Target: 0.01, Replications: 1, Jobs: 2, Precision: 0.02, MaxFactor: 16})
	require.NoError(t, err)
	assert.Nil(t, res.AnalyticRate, "constant arrivals: Erlang B does not apply")
	assert.InEpsilon(t, 28232/59.4, res.Baseline.Rate, 0.03)
	assert.InDelta(t, 0.6, res.Baseline.FailureAtGiven, 0.02, "1,200/s for 60 s: ports run out at 23.5 s")

	pool := rank(t, res, "reuse connections (keep-alive pool)")
	src := rank(t, res, "add source addresses")
	dst := rank(t, res, "add destination addresses")
	wide := rank(t, res, "widen the ephemeral range")
	assert.Less(t, pool, wide)
	assert.Less(t, src, wide)
	assert.Less(t, dst, wide)
	assert.True(t, res.Remedies[pool].AtLeast, "a pool needs no new connections at any rate")
	assert.InEpsilon(t, 4.0, res.Remedies[src].Factor, 0.03)
	assert.InEpsilon(t, 4.0, res.Remedies[dst].Factor, 0.03)
	assert.InEpsilon(t, 64512.0/28232, res.Remedies[wide].Factor, 0.03)
	for i := 1; i < len(res.Remedies); i++ {
		assert.GreaterOrEqual(t, res.Remedies[i-1].Rate, res.Remedies[i].Rate, "ranked")
	}
}

// TestPlanErlang: with Poisson arrivals the search starts from Erlang B's
// estimate, and the simulated sustainable rate of a long run lands near it.
func TestPlanErlang(t *testing.T) {
	res, err := Run(context.Background(), Options{
		Scenario: "../sweep/testdata/erlang.yaml", Target: 0.01, Replications: 2, Jobs: 1, Precision: 0.02, MaxFactor: 4,
	})
	require.NoError(t, err)
	require.NotNil(t, res.AnalyticRate)
	// Erlang B for 1,000 ports at 1 %: 966 erlangs; the holding time is
	// 120 s + 60 s TIME_WAIT + the handshake and close.
	assert.InEpsilon(t, 966/181.0, *res.AnalyticRate, 0.02)
	// A one-hour run starting empty blocks a little less than the steady
	// state, so the simulated rate is at or a little above the estimate.
	assert.InEpsilon(t, *res.AnalyticRate, res.Baseline.Rate, 0.06)
	names := map[string]bool{}
	for _, f := range res.Remedies {
		names[f.Remedy] = true
	}
	assert.False(t, names["add NAT IPs"], "no NAT in the scenario")
	assert.True(t, names["enable tcp_tw_reuse"])
}

func TestPlanErrors(t *testing.T) {
	ok := Options{Scenario: "k6-no-reuse", Target: 0.01, Replications: 1, Jobs: 1, Precision: 0.02, MaxFactor: 4}
	for _, tc := range []struct {
		name string
		edit func(*Options)
		err  string
	}{
		{"target", func(o *Options) { o.Target = 1 }, "target-failure"},
		{"replications", func(o *Options) { o.Replications = 0 }, "replications"},
		{"cap", func(o *Options) { o.MaxFactor = 1 }, "cap"},
		{"workload", func(o *Options) { o.Workload = "nope" }, `no workload "nope"`},
		{"scenario", func(o *Options) { o.Scenario = "no-such-scenario" }, "no-such-scenario"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := ok
			tc.edit(&o)
			_, err := Run(context.Background(), o)
			require.ErrorContains(t, err, tc.err)
		})
	}
}

// TestPlanBurstRecovery: for a scenario with bursts the plan reports how
// long failures go on after the slowest burst at the scenario's own rate
// (burst-recovery: at most about 30 s, see its description), and a remedy
// that removes the failures reports none.
func TestPlanBurstRecovery(t *testing.T) {
	res, err := Run(context.Background(), Options{Scenario: "burst-recovery", Workload: "burst", Target: 0.01, Replications: 1, Jobs: 2, Precision: 0.05, MaxFactor: 2})
	require.NoError(t, err)
	require.NotNil(t, res.Baseline.RecoveryS)
	assert.True(t, res.Baseline.Recovered)
	assert.Greater(t, *res.Baseline.RecoveryS, 0.0)
	assert.LessOrEqual(t, *res.Baseline.RecoveryS, 31.0)
	tw := res.Remedies[rank(t, res, "enable tcp_tw_reuse")]
	require.NotNil(t, tw.RecoveryS)
	assert.Equal(t, 0.0, *tw.RecoveryS)
}
