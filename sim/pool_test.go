package sim

import (
	"fmt"
	"math"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/stat/distuv"

	"github.com/portsim/portsim/scenarios"
	"github.com/portsim/portsim/tcpstate"
)

// poolDialRate is the long-run connect() rate of a keep-alive pool of size
// k toward one destination, with Poisson requests at rate lambda (per
// second), exponential holding times of mean hold seconds and no
// handshake delay (rtt 0), from the exact Markov chain.
//
// The requests in service, N, are the M/M/∞ queue, Poisson(lambda·hold) in
// steady state: a request is served whether or not it dials. The pool adds
// I, the idle connections. A request takes one (I−1) if I > 0, else dials;
// a request that ends parks its connection (I+1) if I < k, else closes it.
// In J = k − I this is N seen through a play (backlash) of width k: J
// follows every step of N except that it stops at k (a dial) and at 0 (a
// close). From any start J <= N once N has reached k, so the chain lives on
// {(n, j): 0 <= j <= min(k, n)}, and the dial rate is lambda·P(J = k).
// Since J = k needs N >= k, that is at most lambda·P(N >= k), the rate of a
// pool that never holds more than k connections and would dial whenever
// all k are busy; the play dials less, because the connections it keeps
// idle above k were opened at earlier peaks of N.
//
// The chain is a level-dependent quasi-birth-death process in n; it is
// solved exactly by linear level reduction (Latouche and Ramaswami,
// "Introduction to Matrix Analytic Methods in Stochastic Modeling", 1999,
// §10.2): pi_n = pi_{n-1}·R_n, truncated where the Poisson tail is below
// 1e-30.
func poolDialRate(lambda, hold float64, k int) float64 {
	rho := lambda * hold
	mu := 1 / hold
	top := int(rho+20*math.Sqrt(rho)) + k + 40
	size := func(n int) int { return min(k, n) + 1 }
	// up is level n's transitions to n+1 (a request arrives), down its
	// transitions to n-1 (a request ends), out the total rate out.
	up := func(n int) *mat.Dense {
		u := mat.NewDense(size(n), size(n+1), nil)
		for j := range size(n) {
			u.Set(j, min(j+1, k), lambda)
		}
		return u
	}
	down := func(n int) *mat.Dense {
		d := mat.NewDense(size(n), size(n-1), nil)
		for j := range size(n) {
			d.Set(j, max(j-1, 0), float64(n)*mu)
		}
		return d
	}
	out := func(n int) float64 {
		if n == top {
			return float64(n) * mu // arrivals beyond the truncation are lost
		}
		return lambda + float64(n)*mu
	}
	// R_n = up(n-1)·(out(n)·I − R_{n+1}·down(n+1))^-1, from the top down.
	r := make([]*mat.Dense, top+1)
	var below *mat.Dense // R_{n+1}·down(n+1)
	for n := top; n >= 1; n-- {
		a := mat.NewDense(size(n), size(n), nil)
		for j := range size(n) {
			a.Set(j, j, out(n))
		}
		if below != nil {
			a.Sub(a, below)
		}
		var inv mat.Dense
		if err := inv.Inverse(a); err != nil {
			panic(err)
		}
		r[n] = &mat.Dense{}
		r[n].Mul(up(n-1), &inv)
		below = &mat.Dense{}
		below.Mul(r[n], down(n))
	}
	pi := mat.NewVecDense(1, []float64{1})
	var total, full float64
	for n := 0; n <= top; n++ {
		if n > 0 {
			next := mat.NewVecDense(size(n), nil)
			next.MulVec(r[n].T(), pi)
			pi = next
		}
		total += mat.Sum(pi)
		if n < top && n >= k {
			full += pi.AtVec(k)
		}
	}
	return lambda * full / total
}

func TestPoolDialRateChain(t *testing.T) {
	const lambda, hold = 1000.0, 0.02 // 20 requests in service on average
	// No pool: every request dials.
	assert.InDelta(t, lambda, poolDialRate(lambda, hold, 0), 1e-9*lambda)
	prev := lambda
	for _, k := range []int{1, 2, 5, 10, 20, 30} {
		got := poolDialRate(lambda, hold, k)
		bound := lambda * (1 - distuv.Poisson{Lambda: lambda * hold}.CDF(float64(k-1)))
		t.Logf("k=%d dial rate %.3f/s, lambda·P(N>=k) %.3f/s", k, got, bound)
		assert.Less(t, got, prev, "a larger pool dials less")
		assert.LessOrEqual(t, got, bound*(1+1e-9), "dialling needs N >= k")
		prev = got
	}
	require.Greater(t, prev, 0.0)
}

// pooled is the one-destination workload of the pool tests: Poisson
// requests at rate, exponential holding times of mean hold, the close as
// given, no handshake delay, a pool of k.
func pooled(rate float64, hold time.Duration, close scenarios.CloseMix, k int) scenarios.Workload {
	return scenarios.Workload{Arrival: scenarios.Arrival{Process: scenarios.Poisson, Rate: rate},
		Hold: scenarios.Hold{Dist: scenarios.Exponential, Mean: hold}, Close: close, Pool: k}
}

// meanCI returns the mean of xs and the half-width of its confidence
// interval at level (Student t with len(xs)-1 degrees of freedom).
func meanCI(xs []float64, level float64) (mean, half float64) {
	var sum, sq float64
	for _, x := range xs {
		sum += x
	}
	mean = sum / float64(len(xs))
	for _, x := range xs {
		sq += (x - mean) * (x - mean)
	}
	sd := math.Sqrt(sq / float64(len(xs)-1))
	tq := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: float64(len(xs) - 1)}.Quantile(0.5 + level/2)
	return mean, tq * sd / math.Sqrt(float64(len(xs)))
}

// With Poisson requests, exponential holding times and no handshake delay,
// a pool of k dials at lambda·P(J = k) (poolDialRate). The simulated
// connect() rate, by batch means over 20 batches after a warm-up, must
// hold that rate in its 99 % confidence interval; every request is either
// a connect() or reused, and with RSTs nothing waits in TIME_WAIT, so
// nothing fails.
func TestPoolDialRate(t *testing.T) {
	const (
		rate    = 1000.0
		hold    = 20 * time.Millisecond
		warmup  = 20 // s
		batches = 20
		batch   = 20 // s
	)
	for _, k := range []int{1, 2, 5, 10, 20} {
		t.Run(fmt.Sprint(k), func(t *testing.T) {
			w := pooled(rate, hold, scenarios.CloseMix{RST: 1}, k)
			res, err := Run(scenario(host(t, "linux", nil), w, (warmup+batches*batch)*time.Second))
			require.NoError(t, err)
			rows := res.Series.Rows[warmup:]
			var xs []float64
			for b := range batches {
				var n uint64
				for _, r := range rows[b*batch : (b+1)*batch] {
					n += r.Attempts
				}
				xs = append(xs, float64(n)/batch)
			}
			mean, half := meanCI(xs, 0.99)
			want := poolDialRate(rate, hold.Seconds(), k)
			t.Logf("k=%d connect()/s %.2f ± %.2f, chain %.2f", k, mean, half, want)
			assert.InDelta(t, want, mean, half)

			s := res.Summary
			assert.Equal(t, s.Requests, s.Attempts+s.Reused)
			assert.Empty(t, s.Failures)
			assert.False(t, s.Analytic.Applicable, "Erlang B describes connections, not requests")
		})
	}
}

// k6-no-reuse (1,200 requests/s, 20 ms each, 1 ms RTT, client closes)
// runs out of ports at 28,232 / 1,200 = 23.5 s. With a pool of 32 the
// requests need only the connections dialled before the first one is free
// again, 1 RTT + 20 ms after it was dialled: the 26 arrivals in [0, 21 ms).
// From then on 24 requests are in flight at any time, so an idle
// connection is always there and nothing is closed.
func TestPoolK6NoReuse(t *testing.T) {
	res := runBuiltin(t, "k6-no-reuse")
	s := res.Summary
	require.NotNil(t, s.FirstFailureS)
	assert.InDelta(t, 23.5, *s.FirstFailureS, 0.05)
	assert.Zero(t, s.Requests, "no pool, no requests counted")
	assert.Zero(t, s.Reused)

	res = runBuiltin(t, "k6-no-reuse", "workloads.0.pool=32")
	s = res.Summary
	const requests = 1200 * 60
	assert.Empty(t, s.Failures)
	assert.Nil(t, s.FirstFailureS)
	assert.Equal(t, uint64(26), s.Attempts)
	assert.Equal(t, uint64(requests), s.Requests)
	assert.Equal(t, uint64(requests-26), s.Reused)
	assert.Equal(t, 26, s.PeakPortsInUse)
	assert.Zero(t, s.PeakTimeWait)
	for _, tot := range []Totals{s.Hosts[0].Totals, s.Domains[0].Totals} {
		assert.Equal(t, s.Requests, tot.Requests)
		assert.Equal(t, s.Reused, tot.Reused)
	}
}

// With fewer idle slots than requests in flight, the surplus connections
// close into TIME_WAIT, so a high enough rate still runs out of ports.
// k6-no-reuse with Poisson requests and exponential holding times and a
// pool of 1 dials at about poolDialRate (the 1 ms handshake aside), so all
// 28,232 ports are in TIME_WAIT or open at about 28,232 / that rate; a pool
// of 32 dials so rarely that it never fails.
func TestPoolFailuresReturn(t *testing.T) {
	random := []string{"workloads.0.arrival={process: poisson, rate: 1200}", "workloads.0.hold={dist: exponential, mean: 20ms}"}
	s := runBuiltin(t, "k6-no-reuse", append(random, "workloads.0.pool=1")...).Summary
	require.NotNil(t, s.FirstFailureS)
	want := 28232 / poolDialRate(1200, 0.020, 1)
	assert.InEpsilon(t, want, *s.FirstFailureS, 0.05, "first failure at %.1f s, expected about %.1f s", *s.FirstFailureS, want)
	assert.Greater(t, s.PeakTimeWait, 28000)
	assert.Equal(t, s.Requests, s.Attempts+s.Reused)

	s = runBuiltin(t, "k6-no-reuse", append(random, "workloads.0.pool=32")...).Summary
	assert.Empty(t, s.Failures)
	assert.Less(t, s.Attempts, uint64(100))
}

// runModel runs s and returns the model as the run left it, for checks of
// the state at the end.
func runModel(t *testing.T, s *scenarios.Scenario) *model {
	t.Helper()
	m, err := newModel(s)
	require.NoError(t, err)
	m.loop()
	return m
}

// A pooled connection is accepted once by the server, however many
// requests it serves, and its server-side socket lives as long as it does:
// at the end the server holds one connected socket per client connection
// open (SYN_SENT, ESTABLISHED busy or idle). When the server closes first,
// the connections the full pool turns away leave TIME_WAIT on the server.
func TestPoolServerSide(t *testing.T) {
	srv := scenarios.Server{Name: "s", Listen: netip.MustParseAddrPort("203.0.113.10:8080")}
	s := serverScenario(t, srv, 500, scenarios.CloseMix{Server: 1}, 30*time.Second)
	w := &s.Workloads[0]
	w.Arrival.Process, w.Hold, w.Pool = scenarios.Poisson, scenarios.Hold{Dist: scenarios.Exponential, Mean: 20 * time.Millisecond}, 2
	m := runModel(t, s)
	sum := m.result().Summary
	require.Greater(t, sum.Reused, uint64(0))
	assert.Equal(t, sum.Attempts, sum.Servers[0].Accepted, "accepted once per connect(), not per request")
	assert.Greater(t, sum.Servers[0].PeakTimeWait, 0)
	cl := &m.hosts[0].tbl.Count
	assert.Equal(t, cl[tcpstate.SynSent]+cl[tcpstate.Established], m.servers[0].socks.Count[tcpstate.SockConnected])
	assert.GreaterOrEqual(t, cl[tcpstate.Established], 2, "the idle connections stay open")
}

// poolNATYAML has a client behind a Linux MASQUERADE sending bursts of
// requests (100/s for 1 s out of every 2 s, 0.5 s each, so about 50 in
// flight at the end of a burst) through a pool of 10 to each of two
// servers; the bursts stop at 10 s and the run goes on past every NAT hold.
const poolNATYAML = `
name: pool-nat
duration: 300s
hosts:
  - {name: lan, os: linux, addresses: [192.168.1.20]}
nats:
  - {name: router, preset: linux-masquerade, external_ips: [203.0.113.5], inside: [lan]}
workloads:
  - name: api
    from: lan
    to: ["198.51.100.1:443", "198.51.100.2:443"]
    arrival: {process: onoff, rate: 100, on: 1s, off: 1s}
    hold: {dist: fixed, value: 500ms}
    close: client
    stop: 10s
    pool: 10
`

// An idle pooled connection keeps its NAT flow (no idle timeout is
// modelled), and the connections a full pool closes go through the NAT's
// close path as without a pool: at the end the NAT holds exactly the
// flows of the 10 idle connections per destination, every other flow has
// expired, and each connect() opened one flow.
func TestPoolThroughNAT(t *testing.T) {
	s, err := scenarios.Parse([]byte(poolNATYAML), "pool-nat.yaml", nil)
	require.NoError(t, err)
	m := runModel(t, s)
	sum := m.result().Summary
	st := m.nats[0].n.Stats()
	assert.Empty(t, sum.NATs[0].Drops)
	assert.Equal(t, 2*10, st.Flows, "the idle connections' flows")
	assert.Equal(t, 2*10, m.hosts[0].tbl.Count[tcpstate.Established])
	assert.Equal(t, sum.Attempts, st.Preserved+st.Reused+st.Searched, "one flow per connect()")
	assert.Greater(t, sum.Attempts, uint64(2*10), "bursts dial beyond the pool")
	assert.Greater(t, sum.Reused, uint64(0))
	assert.Equal(t, sum.Requests, sum.Attempts+sum.Reused)
}

// A trace shows a reused request as a step of the connection it runs on,
// with no connect(): the connect() steps are the attempts.
func TestPoolTrace(t *testing.T) {
	w := pooled(200, 20*time.Millisecond, clientClose, 2)
	w.RTT = time.Millisecond
	s := scenario(host(t, "linux", nil), w, 5*time.Second)
	res, steps, err := Trace(s, TraceOptions{})
	require.NoError(t, err)
	events := map[string]uint64{}
	for _, st := range steps {
		events[st.Event]++
	}
	assert.Equal(t, res.Summary.Attempts, events["connect()"])
	assert.Equal(t, res.Summary.Reused, events["request"])
	assert.Positive(t, res.Summary.Reused)

	_, steps, err = Trace(s, TraceOptions{Socket: 1})
	require.NoError(t, err)
	var got []string
	for _, st := range steps[:5] {
		got = append(got, st.Event+": "+st.From+">"+st.To)
	}
	assert.Equal(t, []string{
		"connect(): CLOSED>SYN_SENT", "recv SYN-ACK: SYN_SENT>ESTABLISHED",
		"request done: ESTABLISHED>ESTABLISHED (idle)", "request: ESTABLISHED (idle)>ESTABLISHED",
		"request done: ESTABLISHED>ESTABLISHED (idle)",
	}, got)
}

// The same scenario and seed give the same result with a pool too, and a
// destination listed twice has one idle list (Go keys them by host): the
// run matches the one with the destination listed once.
func TestPoolDeterministicAndKeyedByDestination(t *testing.T) {
	w := pooled(800, 50*time.Millisecond, scenarios.CloseMix{Client: 0.8, RST: 0.2}, 4)
	once := scenario(host(t, "linux", nil), w, 30*time.Second)
	a, err := Run(once)
	require.NoError(t, err)
	b, err := Run(once)
	require.NoError(t, err)
	assert.Equal(t, a, b)

	w.To = []netip.AddrPort{dests(1)[0], dests(1)[0]}
	c, err := Run(scenario(host(t, "linux", nil), w, 30*time.Second))
	require.NoError(t, err)
	assert.Equal(t, a.Summary.Totals, c.Summary.Totals)
}

// Run refuses a pool on a UDP socket path (Parse does too).
func TestPoolUDPRefused(t *testing.T) {
	w := pooled(10, time.Second, clientClose, 2)
	w.Socket = scenarios.UDPConnect
	_, err := Run(scenario(host(t, "linux", nil), w, time.Second))
	assert.EqualError(t, err, "sim: workload w: a keep-alive pool needs a TCP socket path, not udp-connect")
}
