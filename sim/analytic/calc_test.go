package analytic

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCalcLinuxOneDestination(t *testing.T) {
	res, err := Calc(CalcInput{Ports: 28232, Rate: 1000, Hold: 0, TimeWait: 60 * time.Second})
	require.NoError(t, err)

	assert.Equal(t, 1, res.Destinations)
	assert.Equal(t, DefaultTargetBlocking, res.TargetBlocking)
	assert.Equal(t, 60.0, res.HoldingTimeS)
	assert.Equal(t, 1000.0, res.RatePerDestination)
	assert.InDelta(t, 60000, res.OfferedLoadErlangs, 1e-9)
	assert.Equal(t, ErlangB(28232, 60000), res.ErlangBBlocking)
	assert.InDelta(t, 1-28232.0/60000, res.ErlangBBlocking, 1e-3) // hard wall
	// Little's law with the carried rate: just under the pool size.
	assert.InDelta(t, 28232, res.PortsHeldLittlesLaw, 1)
	assert.Less(t, res.PortsHeldLittlesLaw, 28232.0)
	assert.InDelta(t, 473.9, res.MaxRateForTarget, 0.05)
	assert.InDelta(t, 470.5, res.FluidLimitRate, 0.05)
	require.NotNil(t, res.FirstFailureS)
	assert.Equal(t, 28.232, *res.FirstFailureS)
}

func TestCalcDestinations(t *testing.T) {
	res, err := Calc(CalcInput{
		Ports: 28232, Rate: 1000, Hold: 2 * time.Second, TimeWait: 58 * time.Second,
		Destinations: 4, TargetBlocking: 0.001,
	})
	require.NoError(t, err)

	assert.Equal(t, 2.0, res.HoldS)
	assert.Equal(t, 58.0, res.TimeWaitS)
	assert.Equal(t, 60.0, res.HoldingTimeS)
	assert.Equal(t, 250.0, res.RatePerDestination)
	assert.InDelta(t, 15000, res.OfferedLoadErlangs, 1e-9)
	assert.Less(t, res.ErlangBBlocking, 1e-100)
	assert.InDelta(t, 60000, res.PortsHeldLittlesLaw, 1e-6) // total over 4 destinations
	assert.InDelta(t, 4*466.7, res.MaxRateForTarget, 4*0.05)
	assert.InDelta(t, 4*470.5, res.FluidLimitRate, 4*0.05)
	assert.Nil(t, res.FirstFailureS) // 250/s × 60 s = 15000 <= 28232
}

func TestCalcFirstFailureRoundRobin(t *testing.T) {
	// 2 destinations at 2000/s total: each sees 1000/s, so the same wall
	// as one destination at 1000/s.
	res, err := Calc(CalcInput{Ports: 28232, Rate: 2000, TimeWait: time.Minute, Destinations: 2})
	require.NoError(t, err)
	require.NotNil(t, res.FirstFailureS)
	assert.InDelta(t, 28.232, *res.FirstFailureS, 1e-9)
}

func TestCalcJSON(t *testing.T) {
	res, err := Calc(CalcInput{Ports: 100, Rate: 1, TimeWait: time.Second})
	require.NoError(t, err)
	b, err := json.Marshal(res)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	for _, key := range []string{
		"ports", "rate", "hold_s", "time_wait_s", "destinations", "target_blocking",
		"holding_time_s", "rate_per_destination", "ports_held_littles_law",
		"offered_load_erlangs", "erlang_b_blocking", "max_rate_for_target",
		"fluid_limit_rate", "first_failure_s",
	} {
		assert.Contains(t, m, key)
	}
	assert.Len(t, m, 14)
	assert.Nil(t, m["first_failure_s"])
}

func TestCalcErrors(t *testing.T) {
	ok := CalcInput{Ports: 28232, Rate: 100, TimeWait: time.Minute}
	tests := []struct {
		name string
		edit func(*CalcInput)
		want string
	}{
		{"ports zero", func(in *CalcInput) { in.Ports = 0 }, "--ports must be >= 1, got 0"},
		{"ports too many", func(in *CalcInput) { in.Ports = MaxCalcPorts + 1 }, "--ports must be <= 16777216, got 16777217"},
		{"rate negative", func(in *CalcInput) { in.Rate = -3 }, "--rate must be > 0, got -3"},
		{"rate zero", func(in *CalcInput) { in.Rate = 0 }, "--rate must be > 0, got 0"},
		{"rate NaN", func(in *CalcInput) { in.Rate = math.NaN() }, "--rate must be > 0, got NaN"},
		{"rate Inf", func(in *CalcInput) { in.Rate = math.Inf(1) }, "--rate must be finite, got +Inf"},
		{"hold negative", func(in *CalcInput) { in.Hold = -time.Second }, "--hold must be >= 0, got -1s"},
		{"time wait negative", func(in *CalcInput) { in.TimeWait = -time.Millisecond }, "--time-wait must be >= 0, got -1ms"},
		{"nothing holds a port", func(in *CalcInput) { in.TimeWait = 0 }, "--hold plus --time-wait must be > 0, got 0s"},
		{"destinations negative", func(in *CalcInput) { in.Destinations = -2 }, "--destinations must be >= 1, got -2"},
		{"target one", func(in *CalcInput) { in.TargetBlocking = 1 }, "--target-blocking must be in (0, 1), got 1"},
		{"target negative", func(in *CalcInput) { in.TargetBlocking = -0.1 }, "--target-blocking must be in (0, 1), got -0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := ok
			tt.edit(&in)
			_, err := Calc(in)
			require.EqualError(t, err, tt.want)
		})
	}
	_, err := Calc(ok)
	require.NoError(t, err)
}
