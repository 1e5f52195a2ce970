package sim

import (
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/portsim/portsim/scenarios"
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
	s := referenceScenario(b)
	var conns, events uint64
	var perSocket float64
	for b.Loop() {
		var before, after runtime.MemStats
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&before)
		b.StartTimer()
		m, err := newModel(s)
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
}
