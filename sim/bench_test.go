package sim

import (
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/portsim/portsim/scenarios"
	"github.com/portsim/portsim/sim/nat"
)

// referenceScenario is the benchmark of DESIGN.md: Linux defaults, 10
// destinations, 2,000 connections/s (Poisson), exponential holding time of
// 100 ms, client closes, RTT 1 ms, one simulated hour: 7.2 M connections,
// about 120,000 sockets alive at once (mostly TIME_WAIT).
func referenceScenario(b *testing.B) *scenarios.Scenario {
	w := scenarios.Workload{
		Arrival: scenarios.Arrival{Process: scenarios.Poisson, Rate: 2000},
		Hold:    scenarios.Hold{Dist: scenarios.Exponential, Mean: 100 * time.Millisecond},
		Close:   clientClose,
		RTT:     time.Millisecond,
		To:      dests(10),
	}
	return scenario(host(b, "linux", nil), w, time.Hour)
}

// BenchmarkReferenceScenario reports simulated connections per wall-clock
// second (conns/s), events per second, and the heap the model retains per
// live socket at the end of the run (B/socket: connection slab, pending
// events, bitsets, histograms and series included).
func BenchmarkReferenceScenario(b *testing.B) {
	benchScenario(b, referenceScenario(b))
}

// BenchmarkReferenceScenarioNAT is the reference scenario with the client
// behind a Linux MASQUERADE (linux-masquerade preset, one external IP):
// every connection also opens, closes and expires a NAT flow, held 120 s
// in conntrack TIME_WAIT after the close, about 240,000 flows at once. The
// issue's budget is at most twice the reference's cost per connection.
func BenchmarkReferenceScenarioNAT(b *testing.B) {
	s := referenceScenario(b)
	cfg, err := nat.Preset(nat.PresetLinuxMasquerade)
	require.NoError(b, err)
	cfg.ExternalIPs = []netip.Addr{netip.MustParseAddr("198.18.0.1")}
	s.NATs = []scenarios.NAT{{Name: "masq", Config: cfg, Inside: []int{0}}}
	m := benchScenario(b, s)
	st := m.nats[0].n.Stats()
	require.Zero(b, st.Drops[nat.DropOutOfResources]+st.Drops[nat.DropTableFull], "the benchmark must not exhaust the NAT")
}

// benchScenario runs s once per iteration, timing only newModel and the
// loop, and reports conns/s, events/s and B/socket; it returns the last
// run's model.
func benchScenario(b *testing.B, s *scenarios.Scenario) *model {
	var conns, events uint64
	var perSocket float64
	var m *model
	for b.Loop() {
		var before, after runtime.MemStats
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&before)
		b.StartTimer()
		var err error
		m, err = newModel(s)
		require.NoError(b, err)
		m.loop()
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&after)
		live := 0
		for _, d := range m.doms {
			live += d.d.InUse
		}
		perSocket = float64(after.HeapAlloc-before.HeapAlloc) / float64(live)
		for _, d := range m.doms {
			conns += d.attempts
		}
		events += m.events
		runtime.KeepAlive(m)
		b.StartTimer()
	}
	sec := b.Elapsed().Seconds()
	b.ReportMetric(float64(conns)/sec, "conns/s")
	b.ReportMetric(float64(events)/sec, "events/s")
	b.ReportMetric(perSocket, "B/socket")
	return m
}
