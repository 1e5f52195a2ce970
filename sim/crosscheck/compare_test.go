package crosscheck

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portsim/portsim/scenarios"
	"github.com/portsim/portsim/sim"
)

func load(t *testing.T, name string, sets ...string) (*scenarios.Scenario, *sim.Result) {
	t.Helper()
	s, err := scenarios.Load(name, sets)
	require.NoError(t, err)
	r, err := sim.Run(s)
	require.NoError(t, err)
	return s, r
}

func byName(ms []Metric) map[string]Metric {
	out := map[string]Metric{}
	for _, m := range ms {
		out[m.Name] = m
	}
	return out
}

// A run compared with itself agrees on every metric, in every suite
// scenario.
func TestCompareIdentical(t *testing.T) {
	for _, in := range scenarios.Suite() {
		s, r := load(t, in.Name)
		ms, err := Compare(s, r, r, time.Millisecond)
		require.NoError(t, err)
		require.NotEmpty(t, ms)
		for _, m := range ms {
			assert.True(t, m.Agree, "%s: %s: %s vs %s", in.Name, m.Name, m.Kernel, m.Model)
		}
	}
}

// A run of another scenario stands for a kernel that behaves differently:
// the comparison must say so, on the metrics that show it.
func TestCompareDisagrees(t *testing.T) {
	for _, tc := range []struct {
		name, scenario string
		kernelSets     []string
		metric         string
	}{
		{"more ports", "crosscheck/exhaust-one", []string{`hosts.0.sysctls.net.ipv4.ip_local_port_range="40000 40065"`}, "successes before the first failure"},
		{"TIME_WAIT reused", "crosscheck/exhaust-one", []string{"hosts.0.sysctls.net.ipv4.tcp_tw_reuse=2"}, "successes"},
		{"server closes first", "crosscheck/exhaust-one", []string{"workloads.0.close=server"}, "TIME_WAIT at each sample (worst row: 0.50 s)"},
		{"no sharing", "crosscheck/connect-several", []string{"workloads.0.socket=bind-connect", "hosts.0.sysctls.net.ipv4.tcp_tw_reuse=2"}, "most destinations sharing one port"},
		{"bind parity", "crosscheck/connect-one", []string{"workloads.0.socket=bind-connect"}, "parity of the first 128 choices (low = 40000)"},
		{"sequential order", "crosscheck/connect-one", []string{"hosts.0.allocator=sequential"}, "order of the first 100 ports (gaps between successive ports, KS)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, model := load(t, tc.scenario)
			_, kernel := load(t, tc.scenario, tc.kernelSets...)
			ms, err := Compare(s, kernel, model, time.Millisecond)
			require.NoError(t, err)
			m, ok := byName(ms)[tc.metric]
			require.True(t, ok, "no metric %q in %v", tc.metric, ms)
			assert.False(t, m.Agree, "%s: kernel %s, simulator %s", m.Name, m.Kernel, m.Model)
		})
	}
}

func TestParityClass(t *testing.T) {
	assert.Equal(t, "all of low's parity", parityClass([]uint16{40000, 40002}, 40000))
	assert.Equal(t, "all of the other parity", parityClass([]uint16{40001, 40003}, 40000))
	assert.Equal(t, "mixed", parityClass([]uint16{40001, 40002}, 40000))
}

// The tolerance is the attempts within the timing uncertainty, plus one.
func TestTolerance(t *testing.T) {
	s, _ := load(t, "crosscheck/exhaust-one") // 200/s
	assert.Equal(t, 1+1, Tolerance(s, 0), "200/s x 1 ms = 0.2, rounded up")
	assert.Equal(t, 3+1, Tolerance(s, 14*time.Millisecond), "200/s x 15 ms = 3")
}
