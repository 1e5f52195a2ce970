package main

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portsim/portsim/sim"
)

func TestNewCmdTrace(t *testing.T) {
	_, o := parseOnly(t, NewCmdTrace, "", "")
	assert.Equal(t, "linux-burst", o.Scenario)
	assert.Equal(t, 40, o.Limit)
	assert.Zero(t, o.Socket)
	assert.Equal(t, formatTable, o.Format)
	_, o = parseOnly(t, NewCmdTrace, "k6-no-reuse --limit 5 --socket 3 --format json --set seed=2", "")
	assert.Equal(t, "k6-no-reuse", o.Scenario)
	assert.Equal(t, 5, o.Limit)
	assert.EqualValues(t, 3, o.Socket)
	assert.Equal(t, formatJSON, o.Format)
	assert.Equal(t, []string{"seed=2"}, o.Overrides)
	parseOnly(t, NewCmdTrace, "--limit -1", "--limit must be >= 0")
	parseOnly(t, NewCmdTrace, "a b", "accepts at most 1 arg")
}

// The trace of the default scenario follows a socket through its states;
// the JSON form parses back into steps.
func TestTraceEndToEnd(t *testing.T) {
	code, out, errOut := runCLI(t, "trace --limit 6")
	require.Equal(t, 0, code, errOut)
	for _, want := range []string{"scenario linux-burst, seed 1: 6 steps", "connect()", "CLOSED → SYN_SENT", "recv SYN-ACK", "why"} {
		assert.Contains(t, out, want)
	}
	code, out, errOut = runCLI(t, "trace --socket 1 --limit 0 --format json")
	require.Equal(t, 0, code, errOut)
	var steps []sim.TraceStep
	require.NoError(t, json.Unmarshal([]byte(out), &steps))
	require.Len(t, steps, 6, "connect, SYN-ACK, close, ACK, FIN, TIME_WAIT end")
	assert.Equal(t, "TIME_WAIT", steps[4].To)
	assert.Equal(t, "CLOSED", steps[5].To)
}
