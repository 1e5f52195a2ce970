package sim

import (
	"fmt"
	"math"
	"net/netip"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/stat/distuv"

	"github.com/portsim/portsim/alloc"
	"github.com/portsim/portsim/scenarios"
	"github.com/portsim/portsim/sim/analytic"
	"github.com/portsim/portsim/tcpstate"
)

// host returns a host with the named preset and optional sysctls.
func host(t testing.TB, os string, sysctls map[string]string) scenarios.Host {
	p, err := tcpstate.Preset(os)
	require.NoError(t, err)
	for k, v := range sysctls {
		require.NoError(t, p.SetSysctl(k, v))
	}
	return scenarios.Host{Name: "client", OS: os, Addresses: []netip.Addr{netip.MustParseAddr("10.0.0.1")}, Profile: p}
}

// portRange parses a range or fails the test.
func portRange(t testing.TB, s string) alloc.Range {
	r, err := alloc.ParseRange(s)
	require.NoError(t, err)
	return r
}

// dests returns n destinations 203.0.113.10:8000, :8001, ...
func dests(n int) []netip.AddrPort {
	var d []netip.AddrPort
	for i := range n {
		d = append(d, netip.AddrPortFrom(netip.MustParseAddr("203.0.113.10"), uint16(8000+i)))
	}
	return d
}

// scenario builds a one-host, one-workload scenario.
func scenario(h scenarios.Host, w scenarios.Workload, dur time.Duration) *scenarios.Scenario {
	w.Name = "w"
	w.Source = h.Addresses[0]
	if w.Stop == 0 {
		w.Stop = dur
	}
	if len(w.To) == 0 {
		w.To = dests(1)
	}
	return &scenarios.Scenario{Name: "test", Seed: 1, Duration: dur, Sample: time.Second,
		Hosts: []scenarios.Host{h}, Workloads: []scenarios.Workload{w}}
}

var clientClose = scenarios.CloseMix{Client: 1}

// Constant-rate arrivals, zero hold time, active close, no reuse: every
// port stays in TIME_WAIT for 60 s, so attempt N+1 (at N/rate) is the first
// to fail — at exactly 28232 / 1000 s.
func TestFirstFailureExactlyPortsOverRate(t *testing.T) {
	for _, tc := range []struct {
		os   string
		rate float64
		want float64
	}{
		{"linux", 1000, 28.232},
		{"linux", 600, 28232.0 / 600},
		{"macos", 1000, 16.384},
		{"ns3", 100, 163.84},
		{"freebsd", 2000, 27.768},
	} {
		t.Run(fmt.Sprintf("%s/%v", tc.os, tc.rate), func(t *testing.T) {
			w := scenarios.Workload{Arrival: scenarios.Arrival{Process: scenarios.Constant, Rate: tc.rate},
				Hold: scenarios.Hold{Dist: scenarios.Fixed}, Close: clientClose}
			res, err := Run(scenario(host(t, tc.os, nil), w, 200*time.Second))
			require.NoError(t, err)
			s := res.Summary
			require.NotNil(t, s.FirstFailureS)
			assert.InDelta(t, tc.want, *s.FirstFailureS, 1e-9)
			assert.Equal(t, s.Hosts[0].Settings.UsablePorts, s.PeakPortsInUse)
			assert.Greater(t, s.Failures["EADDRNOTAVAIL"], uint64(0))
		})
	}
}

// batchBlocking runs the scenario and returns the blocking probability
// estimated by batch means after a warm-up: the mean over batches and the
// half-width of its confidence interval at the given level (Student t with
// batches-1 degrees of freedom).
func batchBlocking(t *testing.T, s *scenarios.Scenario, warmup time.Duration, batches int, level float64) (mean, half float64, res *Result) {
	res, err := Run(s)
	require.NoError(t, err)
	rows := res.Series.Rows
	skip := int(warmup / s.Sample)
	per := (len(rows) - skip) / batches
	require.Greater(t, per, 0)
	var xs []float64
	for b := range batches {
		var att, fail uint64
		for _, r := range rows[skip+b*per : skip+(b+1)*per] {
			att += r.Attempts
			fail += r.Failures
		}
		xs = append(xs, float64(fail)/float64(att))
	}
	var sum, sq float64
	for _, x := range xs {
		sum += x
	}
	mean = sum / float64(batches)
	for _, x := range xs {
		sq += (x - mean) * (x - mean)
	}
	sd := math.Sqrt(sq / float64(batches-1))
	tq := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: float64(batches - 1)}.Quantile(0.5 + level/2)
	return mean, tq * sd / math.Sqrt(float64(batches)), res
}

// With Poisson arrivals, exponential holding and active close, a conflict
// domain is an M/G/N/N loss system: the blocking probability is Erlang B
// (validation-and-security.md §2.1-2.2). The simulated blocking must fall in
// its 99 % confidence interval (batch means, 20 batches).
func TestErlangBAgreement(t *testing.T) {
	for _, tc := range []struct {
		ports  int
		load   float64
		hold   time.Duration // mean exponential hold; TIME_WAIT adds to it
		tw     time.Duration
		batch  time.Duration
		warmup time.Duration
	}{
		{64, 64, time.Second, time.Second, 200 * time.Second, 20 * time.Second},
		{1024, 1000, time.Second, time.Second, 200 * time.Second, 20 * time.Second},
		{28232, 28232, time.Second, 60 * time.Second, 600 * time.Second, 600 * time.Second},
	} {
		t.Run(fmt.Sprintf("N=%d,A=%v", tc.ports, tc.load), func(t *testing.T) {
			if testing.Short() && tc.ports > 10000 {
				t.Skip("long Erlang run skipped in -short mode")
			}
			h := host(t, "freebsd", nil)
			h.Profile.SetPortRange(alloc.Range{Low: 32768, High: uint16(32768 + tc.ports - 1)})
			h.Profile.TimeWait = tc.tw
			holding := (tc.hold + tc.tw).Seconds()
			w := scenarios.Workload{
				Arrival: scenarios.Arrival{Process: scenarios.Poisson, Rate: tc.load / holding},
				Hold:    scenarios.Hold{Dist: scenarios.Exponential, Mean: tc.hold},
				Close:   clientClose,
			}
			const batches = 20
			s := scenario(h, w, tc.warmup+batches*tc.batch)
			mean, half, res := batchBlocking(t, s, tc.warmup, batches, 0.99)
			want := analytic.ErlangB(tc.ports, tc.load)
			t.Logf("simulated blocking %.6f ± %.6f (99%%), Erlang B %.6f", mean, half, want)
			assert.InDelta(t, want, mean, half, "Erlang B outside the 99%% CI")
			a := res.Summary.Analytic
			assert.True(t, a.Applicable)
			assert.InDelta(t, tc.load, a.OfferedLoadErlangs, 1e-6*tc.load)
			assert.InDelta(t, want, a.ErlangBBlocking, 1e-12)
		})
	}
}

// meanOccupancy averages the most loaded domain's sockets over the rows
// after the warm-up.
func meanOccupancy(res *Result, skip int) float64 {
	var sum float64
	rows := res.Series.Domain[skip:]
	for _, r := range rows {
		sum += float64(r.Established + r.TimeWait + r.Other)
	}
	return sum / float64(len(rows))
}

// Below exhaustion the mean number of ports held equals rate x mean holding
// time (Little's law), per state too: ESTABLISHED ~ rate x hold, TIME_WAIT ~
// rate x 60 s.
func TestLittlesLaw(t *testing.T) {
	for _, tc := range []struct {
		name string
		w    scenarios.Workload
	}{
		{"poisson-exponential", scenarios.Workload{
			Arrival: scenarios.Arrival{Process: scenarios.Poisson, Rate: 300},
			Hold:    scenarios.Hold{Dist: scenarios.Exponential, Mean: 2 * time.Second},
			Close:   clientClose, RTT: time.Millisecond}},
		{"constant-fixed", scenarios.Workload{
			Arrival: scenarios.Arrival{Process: scenarios.Constant, Rate: 250},
			Hold:    scenarios.Hold{Dist: scenarios.Fixed, Value: 5 * time.Second},
			Close:   clientClose, RTT: 10 * time.Millisecond}},
		{"lognormal-mixed-close", scenarios.Workload{
			Arrival: scenarios.Arrival{Process: scenarios.Poisson, Rate: 400},
			Hold:    scenarios.Hold{Dist: scenarios.Lognormal, Median: time.Second, Sigma: 1},
			Close:   scenarios.CloseMix{Client: 0.7, Server: 0.2, RST: 0.1}, RTT: 5 * time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const warm = 300
			res, err := Run(scenario(host(t, "linux", nil), tc.w, 2400*time.Second))
			require.NoError(t, err)
			require.Zero(t, res.Summary.Attempts-res.Summary.Successes, "run must stay below exhaustion")
			want := res.Summary.Analytic.LittlesLawPorts
			got := meanOccupancy(res, warm)
			t.Logf("mean ports held %.1f (sampled), Little's law %.1f", got, want)
			assert.InEpsilon(t, want, got, 0.01)
			// The exact time average after the warm-up agrees too.
			st := res.Summary.Domains[0].Steady
			require.NotNil(t, st)
			assert.InEpsilon(t, want, st.MeanPortsInUse, 0.01)
			assert.Zero(t, st.Failures)
		})
	}
}

// The server closing first leaves no TIME_WAIT on the client, RST neither;
// a client close does.
func TestCloseSides(t *testing.T) {
	for _, tc := range []struct {
		close  scenarios.CloseMix
		wantTW bool
	}{
		{scenarios.CloseMix{Client: 1}, true},
		{scenarios.CloseMix{Server: 1}, false},
		{scenarios.CloseMix{RST: 1}, false},
	} {
		w := scenarios.Workload{Arrival: scenarios.Arrival{Process: scenarios.Constant, Rate: 100},
			Hold: scenarios.Hold{Dist: scenarios.Fixed, Value: 100 * time.Millisecond}, Close: tc.close, RTT: time.Millisecond}
		res, err := Run(scenario(host(t, "linux", nil), w, 30*time.Second))
		require.NoError(t, err)
		if tc.wantTW {
			// 100/s for 30 s, nothing expires within 60 s; a connection
			// enters TIME_WAIT 102 ms after connect(), so the arrivals at
			// t <= 29.898 s do: 2990 of them.
			assert.Equal(t, 2990, res.Summary.PeakTimeWait, "%+v", tc.close)
		} else {
			assert.Zero(t, res.Summary.PeakTimeWait, "%+v", tc.close)
			// ~ 100/s x (1 ms + 100 ms + 1 ms) sockets at once.
			assert.LessOrEqual(t, res.Summary.PeakPortsInUse, 12)
		}
	}
}

// tcp_max_tw_buckets: past the cap a closing socket skips TIME_WAIT.
func TestMaxTwBucketsOverflow(t *testing.T) {
	h := host(t, "linux", map[string]string{"net.ipv4.tcp_max_tw_buckets": "500"})
	w := scenarios.Workload{Arrival: scenarios.Arrival{Process: scenarios.Constant, Rate: 100},
		Hold: scenarios.Hold{Dist: scenarios.Fixed}, Close: clientClose}
	res, err := Run(scenario(h, w, 20*time.Second))
	require.NoError(t, err)
	assert.Equal(t, 500, res.Summary.PeakTimeWait)
	assert.Equal(t, uint64(2000-500), res.Summary.Hosts[0].TwOverflows)
	assert.False(t, res.Summary.Analytic.Applicable)
}

// connect() shares ports across destinations on Linux, not on macOS: ten
// destinations multiply Linux's capacity, not macOS's.
func TestSharingAcrossDestinations(t *testing.T) {
	w := scenarios.Workload{Arrival: scenarios.Arrival{Process: scenarios.Constant, Rate: 2000},
		Hold: scenarios.Hold{Dist: scenarios.Fixed}, Close: clientClose, To: dests(10)}
	res, err := Run(scenario(host(t, "linux", nil), w, 50*time.Second))
	require.NoError(t, err)
	assert.Nil(t, res.Summary.FirstFailureS, "10 x 28232 ports outlast 100,000 connections")
	assert.Len(t, res.Summary.Domains, 10)
	assert.Equal(t, 10000, res.Summary.Domains[0].PeakPortsInUse)
	// Distinct local ports: random starts spread ten sets of 10,000 ports
	// over the range, so more than 10,000 but at most the range.
	assert.Greater(t, res.Summary.PeakPortsInUse, 10000)
	assert.LessOrEqual(t, res.Summary.PeakPortsInUse, 28232)

	res, err = Run(scenario(host(t, "macos", nil), w, 50*time.Second))
	require.NoError(t, err)
	require.NotNil(t, res.Summary.FirstFailureS)
	assert.InDelta(t, 16384.0/2000, *res.Summary.FirstFailureS, 1e-9)
	assert.Len(t, res.Summary.Domains, 1)
	assert.Equal(t, "*", res.Summary.Domains[0].Destination)
}

// tcp_tw_reuse (tcp_twsk_unique, os-semantics.md §4.5): with timestamps,
// connect() takes over a TIME_WAIT 4-tuple once tcp_tw_reuse_delay has
// passed, so 1,000 connections/s to one destination never run out of the
// 28,232 ports — where reuse applies (1 anywhere, 2 toward loopback); with
// 2 toward another address, or without timestamps, the first EADDRNOTAVAIL
// still comes at 28.232 s.
func TestTimeWaitReuse(t *testing.T) {
	loop := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:8080")}
	for _, tc := range []struct {
		name    string
		sysctls map[string]string
		to      []netip.AddrPort
		reuses  bool
	}{
		{"tcp_tw_reuse=1", map[string]string{"net.ipv4.tcp_tw_reuse": "1"}, nil, true},
		{"tcp_tw_reuse=2 toward loopback", nil, loop, true},
		{"tcp_tw_reuse=2 toward 203.0.113.10", nil, nil, false},
		{"tcp_tw_reuse=1 without timestamps", map[string]string{"net.ipv4.tcp_tw_reuse": "1", "net.ipv4.tcp_timestamps": "0"}, nil, false},
		{"tcp_tw_reuse=0 toward loopback", map[string]string{"net.ipv4.tcp_tw_reuse": "0"}, loop, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := host(t, "linux", tc.sysctls)
			if len(tc.to) > 0 && tc.to[0].Addr().IsLoopback() {
				h.Addresses = []netip.Addr{netip.MustParseAddr("127.0.0.1")}
			}
			w := scenarios.Workload{Arrival: scenarios.Arrival{Process: scenarios.Constant, Rate: 1000},
				Hold: scenarios.Hold{Dist: scenarios.Fixed}, Close: clientClose, To: tc.to}
			res, err := Run(scenario(h, w, 90*time.Second))
			require.NoError(t, err)
			s := res.Summary
			if !tc.reuses {
				require.NotNil(t, s.FirstFailureS)
				assert.InDelta(t, 28.232, *s.FirstFailureS, 1e-9)
				assert.Zero(t, s.Hosts[0].TwRecycled)
				return
			}
			assert.Nil(t, s.FirstFailureS, "reuse keeps up")
			assert.Equal(t, s.Attempts, s.Successes)
			// __inet_hash_connect takes the first candidate that is free
			// or a reusable TIME_WAIT, in scan order: the even pass meets
			// reusable even ports before it runs out, so the odd ports are
			// never needed and TIME_WAIT stays within the 14,116 even ports.
			assert.Greater(t, s.Hosts[0].TwRecycled, s.Attempts/2)
			assert.LessOrEqual(t, s.PeakTimeWait, 14116)
			assert.Greater(t, s.PeakTimeWait, 1000, "about one second of connects wait")
			assert.False(t, s.Analytic.Applicable, "reuse makes holding times load-dependent")
		})
	}
}

// Series rows add up to the totals, one row per sample.
func TestSeriesConsistent(t *testing.T) {
	w := scenarios.Workload{Arrival: scenarios.Arrival{Process: scenarios.Poisson, Rate: 700},
		Hold: scenarios.Hold{Dist: scenarios.Exponential, Mean: 100 * time.Millisecond}, Close: clientClose, RTT: time.Millisecond}
	s := scenario(host(t, "linux", nil), w, 90*time.Second+500*time.Millisecond)
	res, err := Run(s)
	require.NoError(t, err)
	rows := res.Series.Rows
	require.Len(t, rows, 91)
	assert.Equal(t, 90.5, rows[90].TS)
	var att, fail uint64
	for _, r := range rows {
		att += r.Attempts
		fail += r.Failures
	}
	assert.Equal(t, res.Summary.Attempts, att)
	assert.Equal(t, res.Summary.Attempts-res.Summary.Successes, fail)
	assert.Len(t, res.Series.Domain, len(rows))
	assert.Greater(t, fail, uint64(0))
}

func TestDeterministic(t *testing.T) {
	w := scenarios.Workload{Arrival: scenarios.Arrival{Process: scenarios.Poisson, Rate: 800},
		Hold:  scenarios.Hold{Dist: scenarios.Pareto, Scale: 50 * time.Millisecond, Shape: 1.5},
		Close: scenarios.CloseMix{Client: 0.5, Server: 0.3, RST: 0.2}, RTT: 2 * time.Millisecond, To: dests(3)}
	a, err := Run(scenario(host(t, "linux", nil), w, 60*time.Second))
	require.NoError(t, err)
	b, err := Run(scenario(host(t, "linux", nil), w, 60*time.Second))
	require.NoError(t, err)
	assert.Equal(t, a, b)
	s := scenario(host(t, "linux", nil), w, 60*time.Second)
	s.Seed = 2
	c, err := Run(s)
	require.NoError(t, err)
	assert.NotEqual(t, a.Summary.Attempts, c.Summary.Attempts)
}

// tcp_max_tw_buckets = 0 means no TIME_WAIT at all (inet_twsk_alloc always
// fails): no socket waits, and the analytic holding time leaves TIME_WAIT
// out, so Little's law still holds.
func TestNoTimeWaitBuckets(t *testing.T) {
	h := host(t, "linux", map[string]string{"net.ipv4.tcp_max_tw_buckets": "0"})
	w := scenarios.Workload{Arrival: scenarios.Arrival{Process: scenarios.Poisson, Rate: 500},
		Hold: scenarios.Hold{Dist: scenarios.Exponential, Mean: 2 * time.Second}, Close: clientClose, RTT: time.Millisecond}
	res, err := Run(scenario(h, w, 600*time.Second))
	require.NoError(t, err)
	s := res.Summary
	assert.Zero(t, s.PeakTimeWait)
	// Every connection that closed within the run overflowed: all but
	// those still open at the end (at most the peak occupancy).
	ov := s.Hosts[0].TwOverflows
	assert.LessOrEqual(t, ov, s.Successes)
	assert.GreaterOrEqual(t, ov, s.Successes-uint64(s.PeakPortsInUse))
	a := s.Analytic
	assert.True(t, a.Applicable)
	assert.InDelta(t, 500*2.002, a.OfferedLoadErlangs, 1e-6)
	require.NotNil(t, s.Domains[0].Steady)
	assert.InEpsilon(t, a.LittlesLawPorts, s.Domains[0].Steady.MeanPortsInUse, 0.01)
}

// Socket paths (Cloudflare 2022's table; os-semantics.md §2.7-2.8, §3.2,
// §3.6): bind(0)+connect locks each port for every destination, so ten
// destinations still share 28,232 ports and bind() fails with EADDRINUSE;
// IP_BIND_ADDRESS_NO_PORT and plain connect() give each destination its own
// 28,232; IP_LOCAL_PORT_RANGE narrows the range; UDP autobind is exclusive
// across destinations and fails with EAGAIN.
func TestSocketPaths(t *testing.T) {
	for _, tc := range []struct {
		name      string
		path      scenarios.SocketPath
		portRange alloc.Range
		hold      time.Duration
		wantFirst float64 // 0: no failure
		wantErrno string
		usable    int
	}{
		{"bind-connect", scenarios.BindConnect, alloc.Range{}, 0, 28.232, "EADDRINUSE", 28232},
		{"bind-no-port", scenarios.BindNoPort, alloc.Range{}, 0, 0, "", 28232},
		{"connect", scenarios.Connect, alloc.Range{}, 0, 0, "", 28232},
		{"port-range", scenarios.PortRange, alloc.Range{Low: 40000, High: 41999}, 0, 20, "EADDRNOTAVAIL", 2000},
		{"udp-connect", scenarios.UDPConnect, alloc.Range{}, time.Minute, 28.232, "EAGAIN", 28232},
		{"udp-sendto", scenarios.UDPSendto, alloc.Range{}, time.Minute, 28.232, "EAGAIN", 28232},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := scenarios.Workload{Arrival: scenarios.Arrival{Process: scenarios.Constant, Rate: 1000},
				Hold: scenarios.Hold{Dist: scenarios.Fixed, Value: tc.hold}, Close: clientClose,
				To: dests(10), Socket: tc.path, PortRange: tc.portRange}
			res, err := Run(scenario(host(t, "linux", nil), w, 45*time.Second))
			require.NoError(t, err)
			s := res.Summary
			if tc.wantFirst == 0 {
				assert.Nil(t, s.FirstFailureS)
				return
			}
			require.NotNil(t, s.FirstFailureS)
			assert.InDelta(t, tc.wantFirst, *s.FirstFailureS, 1e-9)
			assert.Contains(t, s.Failures, tc.wantErrno)
			assert.Len(t, s.Failures, 1)
			assert.Equal(t, tc.usable, s.Domains[s.MostLoaded].UsablePorts)
			if tc.path.UDP() {
				assert.Zero(t, s.PeakTimeWait, "UDP has no TIME_WAIT")
			}
		})
	}
}

// A peer that closes late keeps the client in FIN_WAIT_2; past
// tcp_fin_timeout the orphaned socket is dropped without TIME_WAIT
// (os-semantics.md §4.4). Little's law follows both.
func TestFinWait2(t *testing.T) {
	for _, tc := range []struct {
		name     string
		delay    time.Duration
		wantTW   bool
		wantFW2s float64 // seconds a socket spends in FIN_WAIT_2
	}{
		{"peer closes after 10 s", 10 * time.Second, true, 10},
		{"peer closes after 100 s", 100 * time.Second, false, 60},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := scenarios.Workload{Arrival: scenarios.Arrival{Process: scenarios.Constant, Rate: 10},
				Hold: scenarios.Hold{Dist: scenarios.Fixed}, Close: clientClose, PeerCloseDelay: tc.delay}
			res, err := Run(scenario(host(t, "linux", nil), w, 400*time.Second))
			require.NoError(t, err)
			last := res.Series.Rows[len(res.Series.Rows)-1]
			assert.InDelta(t, 10*tc.wantFW2s, float64(last.Closing), 1, "FIN_WAIT_2 sockets at the end")
			if tc.wantTW {
				assert.InDelta(t, 600, float64(last.TimeWait), 1)
			} else {
				assert.Zero(t, res.Summary.PeakTimeWait)
			}
			st := res.Summary.Domains[0].Steady
			require.NotNil(t, st)
			assert.InEpsilon(t, res.Summary.Analytic.LittlesLawPorts, st.MeanPortsInUse, 0.01)
		})
	}
}

// net.ipv4.ip_autobind_reuse with SO_REUSEADDR on bind(0) + connect()
// (Linux 6.18, found by `portsim crosscheck`): once the 64 ports are used,
// inet_csk_find_open_port's relax pass shares ports across the four
// destinations, and connect() on a bound port takes a same-4-tuple
// TIME_WAIT over at once (tcp_twsk_unique with twp == NULL), so the kernel
// never fails. Without SO_REUSEADDR, or without the sysctl, bind(0) fails
// with EADDRINUSE from 0.64 s; without timestamps no TIME_WAIT can be taken
// over and connect() fails with EADDRNOTAVAIL where the 4-tuple is held.
func TestAutobindReuse(t *testing.T) {
	const reuse, abr = "workloads.0.options=[SO_REUSEADDR]", "hosts.0.sysctls.net.ipv4.ip_autobind_reuse=1"
	load := func(name string, sets ...string) *Summary {
		t.Helper()
		s, err := scenarios.Load(name, sets)
		require.NoError(t, err)
		res, err := Run(s)
		require.NoError(t, err)
		return &res.Summary
	}
	s := load("crosscheck/bind-connect", reuse, abr)
	assert.Equal(t, uint64(200), s.Attempts)
	assert.Equal(t, uint64(200), s.Successes)
	assert.Empty(t, s.Failures)
	assert.Nil(t, s.FirstFailureS)
	assert.Equal(t, 64, s.PeakPortsInUse, "ports are shared, not added")
	rec := s.Hosts[0].TwRecycled
	assert.Greater(t, rec, uint64(60), "most of the 136 relaxed binds take a TIME_WAIT over")
	assert.Less(t, rec, uint64(136), "some find their 4-tuple free")
	assert.Equal(t, 200-int(rec), s.PeakTimeWait+2, "every success but the 2 still open ends in TIME_WAIT or took one over")

	suite := load("crosscheck/autobind-reuse")
	assert.Equal(t, s.Successes, suite.Successes, "the suite scenario is the reproduction")
	assert.Equal(t, rec, suite.Hosts[0].TwRecycled)

	for _, tc := range []struct {
		name string
		sets []string
	}{
		{"no SO_REUSEADDR", []string{abr}},
		{"no ip_autobind_reuse", []string{reuse}},
	} {
		s := load("crosscheck/bind-connect", tc.sets...)
		assert.Equal(t, uint64(64), s.Successes, tc.name)
		assert.Equal(t, map[string]uint64{"EADDRINUSE": 136}, s.Failures, tc.name)
	}

	s = load("crosscheck/autobind-reuse", "hosts.0.sysctls.net.ipv4.tcp_timestamps=0")
	assert.Zero(t, s.Hosts[0].TwRecycled)
	assert.Positive(t, s.Failures["EADDRNOTAVAIL"])
	assert.Len(t, s.Failures, 1, "the relax pass always finds a port; only connect() fails")
	require.NotNil(t, s.FirstFailureS)
	assert.GreaterOrEqual(t, *s.FirstFailureS, 0.64)
}

// The connection slab stays at 16 bytes a socket.
func TestConnSize(t *testing.T) {
	assert.EqualValues(t, 16, unsafe.Sizeof(conn{}))
}
