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
		{"server restarts", "server-restart-eaddrinuse", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := scenarios.Load(tc.scenario, tc.sets)
			require.NoError(t, err)
			err = Check(s, 0)
			if tc.err == "" && tc.name != "server restarts" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			if tc.err != "" {
				assert.Contains(t, err.Error(), tc.err)
			}
		})
	}
	s, err := scenarios.Load("crosscheck/exhaust-one", nil)
	require.NoError(t, err)
	assert.ErrorContains(t, Check(s, time.Second), "longer than the 1s")
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
