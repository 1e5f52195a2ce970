package sim

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/stat/distuv"

	"github.com/portsim/portsim/scenarios"
)

// serverScenario is a Linux client opening connections at rate to srv on a
// Linux server host 203.0.113.10, closed as close says.
func serverScenario(t *testing.T, srv scenarios.Server, rate float64, close scenarios.CloseMix, dur time.Duration) *scenarios.Scenario {
	t.Helper()
	client := host(t, "linux", nil)
	server := host(t, "linux", nil)
	server.Name, server.Addresses, server.Privileged = "server", []netip.Addr{netip.MustParseAddr("203.0.113.10")}, true
	srv.Host = 1
	if srv.Listeners == 0 {
		srv.Listeners = 1
	}
	to := srv.Listen
	if to.Addr().IsUnspecified() {
		to = netip.AddrPortFrom(server.Addresses[0], to.Port())
	}
	w := scenarios.Workload{Name: "w", Source: client.Addresses[0], To: []netip.AddrPort{to},
		Arrival: scenarios.Arrival{Process: scenarios.Constant, Rate: rate},
		Hold:    scenarios.Hold{Dist: scenarios.Fixed, Value: 100 * time.Millisecond}, Close: close,
		RTT: time.Millisecond, Stop: dur}
	return &scenarios.Scenario{Name: "srv", Seed: 1, Duration: dur, Sample: time.Second,
		Hosts: []scenarios.Host{client, server}, Workloads: []scenarios.Workload{w}, Servers: []scenarios.Server{srv}}
}

// A server that closes first holds the TIME_WAIT entries; on Linux they keep
// the listener's SO_REUSEADDR (inet_twsk_alloc), so a restarted server can
// bind again at once only if both the old and the new listener set it
// (os-semantics.md §3.4, §7.2 rows 9-10, §10 item 6); otherwise bind()
// fails with EADDRINUSE until the last entry from before the restart
// expires, 60 s after it began, and clients are refused meanwhile.
func TestServerRestart(t *testing.T) {
	restart := []scenarios.Restart{{At: 5 * time.Second, Down: time.Second, Retry: time.Second}}
	for _, tc := range []struct {
		name      string
		old, new  bool // SO_REUSEADDR on the old and the new listener
		wantBound float64
	}{
		{"neither", false, false, 66},
		{"new only", false, true, 66},
		{"both", true, true, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := restart
			r[0].Options.ReuseAddr = tc.new
			srv := scenarios.Server{Name: "s", Listen: netip.MustParseAddrPort("203.0.113.10:8080"),
				Options: scenarios.SockOptions{ReuseAddr: tc.old}, Restarts: r}
			res, err := Run(serverScenario(t, srv, 20, scenarios.CloseMix{Server: 1}, 90*time.Second))
			require.NoError(t, err)
			ss := res.Summary.Servers[0]
			require.Len(t, ss.Restarts, 1)
			require.NotNil(t, ss.Restarts[0].BoundS)
			assert.Equal(t, tc.wantBound, *ss.Restarts[0].BoundS)
			down := tc.wantBound - 5
			assert.Equal(t, uint64(20*down), ss.Refused, "20/s refused while no listener is bound")
			assert.Equal(t, ss.Refused, res.Summary.Failures["ECONNREFUSED"])
			assert.GreaterOrEqual(t, ss.PeakTimeWait, 99, "the server holds the TIME_WAIT entries of the 100 connections before the restart")
			assert.Zero(t, res.Summary.PeakTimeWait, "the client holds none")
			if tc.wantBound > 6 {
				assert.Equal(t, "EADDRINUSE", ss.Restarts[0].LastErrno)
				assert.Contains(t, ss.Restarts[0].Rule, "inet_bind_conflict")
			}
		})
	}
}

// A SO_REUSEPORT group spreads connections over its listeners by the flow
// hash (reuseport_select_sock, §3.5): the counts fit a uniform split
// (chi-square at 0.999, fixed seed). Without SO_REUSEPORT the second
// listener cannot bind.
func TestReusePortGroup(t *testing.T) {
	srv := scenarios.Server{Name: "g", Listen: netip.MustParseAddrPort("0.0.0.0:8443"), Listeners: 4,
		Options: scenarios.SockOptions{ReusePort: true}}
	res, err := Run(serverScenario(t, srv, 400, clientClose, 30*time.Second))
	require.NoError(t, err)
	ss := res.Summary.Servers[0]
	require.Len(t, ss.PerListener, 4)
	var chi float64
	exp := float64(ss.Accepted) / 4
	for _, n := range ss.PerListener {
		chi += (float64(n) - exp) * (float64(n) - exp) / exp
	}
	limit := distuv.ChiSquared{K: 3}.Quantile(0.999)
	assert.Less(t, chi, limit, "per listener %v", ss.PerListener)
	assert.Equal(t, uint64(12000), ss.Accepted)
	assert.Empty(t, ss.StartErrno)

	srv.Options.ReusePort = false
	res, err = Run(serverScenario(t, srv, 400, clientClose, 10*time.Second))
	require.NoError(t, err)
	ss = res.Summary.Servers[0]
	assert.Equal(t, "EADDRINUSE", ss.StartErrno)
	assert.Equal(t, ss.Accepted, ss.PerListener[0], "the first listener serves alone")
}

// Binding a port below ip_unprivileged_port_start without privilege fails
// with EACCES (§3.7); clients are refused.
func TestServerPrivilegedPort(t *testing.T) {
	srv := scenarios.Server{Name: "web", Listen: netip.MustParseAddrPort("203.0.113.10:80")}
	s := serverScenario(t, srv, 10, clientClose, 5*time.Second)
	s.Hosts[1].Privileged = false
	res, err := Run(s)
	require.NoError(t, err)
	ss := res.Summary.Servers[0]
	assert.Equal(t, "EACCES", ss.StartErrno)
	assert.Equal(t, res.Summary.Attempts, res.Summary.Failures["ECONNREFUSED"])
	s.Hosts[1].Privileged = true
	res, err = Run(s)
	require.NoError(t, err)
	assert.Empty(t, res.Summary.Servers[0].StartErrno)
	assert.Empty(t, res.Summary.Failures)
}
