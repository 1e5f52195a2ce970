package sim

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portsim/portsim/scenarios"
	"github.com/portsim/portsim/tcpstate"
)

// A traced socket goes through RFC 9293's active close step by step, and a
// failed connect() carries its errno and the rule behind it.
func TestTraceOneSocket(t *testing.T) {
	h := host(t, "linux", nil)
	h.Profile.SetPortRange(portRange(t, "40000 40001"))
	w := scenarios.Workload{Arrival: scenarios.Arrival{Process: scenarios.Constant, Rate: 1},
		Hold: scenarios.Hold{Dist: scenarios.Fixed, Value: time.Second}, Close: clientClose, RTT: 10 * time.Millisecond}
	s := scenario(h, w, 100*time.Second)

	_, steps, err := Trace(s, TraceOptions{Socket: 1})
	require.NoError(t, err)
	var got []string
	for _, st := range steps {
		assert.EqualValues(t, 1, st.Socket)
		got = append(got, st.From+">"+st.To)
	}
	assert.Equal(t, []string{
		"CLOSED>SYN_SENT", "SYN_SENT>ESTABLISHED", "ESTABLISHED>FIN_WAIT_1",
		"FIN_WAIT_1>FIN_WAIT_2", "FIN_WAIT_2>TIME_WAIT", "TIME_WAIT>CLOSED",
	}, got)
	assert.InDelta(t, 61.02, steps[5].TS, 1e-9, "TIME_WAIT ends 60 s after it began")
	assert.Contains(t, steps[4].Why, "TCP_TIMEWAIT_LEN")

	// Two ports, one connect per second, 61 s each: the third connect() fails.
	_, steps, err = Trace(s, TraceOptions{Socket: 3})
	require.NoError(t, err)
	require.Len(t, steps, 1)
	assert.Equal(t, "EADDRNOTAVAIL", steps[0].Errno)
	assert.Contains(t, steps[0].Why, "__inet_hash_connect")
	assert.Equal(t, 2.0, steps[0].TS)

	_, steps, err = Trace(s, TraceOptions{Limit: 5})
	require.NoError(t, err)
	assert.Len(t, steps, 5)
}

// TIME_WAIT takeover under tcp_tw_reuse is named in the trace.
func TestTraceTakeover(t *testing.T) {
	h := host(t, "linux", map[string]string{"net.ipv4.tcp_tw_reuse": "1"})
	h.Profile.SetPortRange(portRange(t, "40000 40001"))
	w := scenarios.Workload{Arrival: scenarios.Arrival{Process: scenarios.Constant, Rate: 1},
		Hold: scenarios.Hold{Dist: scenarios.Fixed}, Close: clientClose}
	_, steps, err := Trace(scenario(h, w, 10*time.Second), TraceOptions{})
	require.NoError(t, err)
	found := false
	for _, st := range steps {
		if st.Errno == "" && st.From == tcpstate.Closed.String() && st.Socket > 2 {
			assert.Contains(t, st.Why, "took over socket")
			assert.Contains(t, st.Why, "tcp_twsk_unique")
			found = true
		}
	}
	assert.True(t, found, "a later connect() takes a TIME_WAIT 4-tuple over")
}
