package realsock

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portsim/portsim/scenarios"
)

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name, scenario string
		sets           []string
		err            string
	}{
		{"suite scenario", "crosscheck/exhaust-one", nil, ""},
		{"destination off loopback", "linux-burst", []string{"duration=10s"}, "not on loopback"},
		{"too long", "crosscheck/exhaust-one", []string{"duration=10m"}, "longer than"},
		{"not Linux", "crosscheck/exhaust-one", []string{"hosts.0.os=windows", "hosts.0.sysctls={}"}, "only os linux"},
		{"keep-alive pool", "crosscheck/exhaust-one", []string{"workloads.0.pool=4"}, "has a keep-alive pool"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := scenarios.Load(tc.scenario, tc.sets)
			require.NoError(t, err)
			err = Check(s, 0)
			if tc.err == "" {
				assert.NoError(t, err)
				return
			}
			assert.ErrorContains(t, err, tc.err)
		})
	}
	s, err := scenarios.Load("crosscheck/exhaust-one", nil)
	require.NoError(t, err)
	assert.ErrorContains(t, Check(s, time.Second), "longer than the 1s")
	// A loopback server that restarts: everything else qualifies, so the
	// refusal can only come from the restart.
	s.Servers = append(s.Servers, scenarios.Server{Name: "web", Listen: s.Workloads[0].To[0], Listeners: 1,
		Restarts: []scenarios.Restart{{At: time.Second, Down: time.Second, Retry: time.Second}}})
	assert.ErrorContains(t, Check(s, 0), "server web restarts")
	// Likewise a NAT in front of an otherwise valid loopback scenario.
	s, err = scenarios.Load("crosscheck/exhaust-one", nil)
	require.NoError(t, err)
	s.NATs = []scenarios.NAT{{Name: "masq"}}
	assert.ErrorContains(t, Check(s, 0), "NAT masq: crosscheck does not build NAT middleboxes")
}

func TestEverySuiteScenarioQualifies(t *testing.T) {
	require.GreaterOrEqual(t, len(scenarios.Suite()), 12)
	for _, in := range scenarios.Suite() {
		s, err := scenarios.Load(in.Name, nil)
		require.NoError(t, err, in.Name)
		assert.NoError(t, Check(s, 0), in.Name)
		assert.LessOrEqual(t, s.Duration, 3*time.Second, "%s: the suite must stay quick", in.Name)
	}
}
