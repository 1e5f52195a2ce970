package alloc

import (
	"net/netip"
	"testing"
)

// BenchmarkNATPickers measures one Pick on the default MASQUERADE pool
// 1024-65535 at 50% and 99% occupancy (a fixed random set of busy ports in
// a two-set Union, the shape the NAT table passes). Picked ports are not
// marked busy, so the occupancy stays fixed. picks/s is the throughput;
// probes/op is the mean Result.Probes, the modelled kernel cost (≤ 248 for
// the 5.0+ search, a whole-pool walk for the rover at 99%), which the Go
// cost does not follow. fail% is the share of failed picks: the 5.0+
// search fails at 99% although 645 ports are free. The rover picker runs
// with --random-fully (a fresh start per call): with its default rover and
// ports never marked busy it would land on the same free port every time.
func BenchmarkNATPickers(b *testing.B) {
	levels := []struct {
		name string
		frac float64
	}{{"50pct", 0.5}, {"99pct", 0.99}}
	for _, name := range natNames {
		b.Run(name, func(b *testing.B) {
			for _, lv := range levels {
				b.Run(lv.name, func(b *testing.B) {
					u := NewUnion(benchBusy(poolBig, lv.frac), new(PortSet))
					p, err := NewNATPicker(name, NATConfig{Rand: newRand(1, 2)})
					if err != nil {
						b.Fatal(err)
					}
					req := reqOn(poolBig)
					req.External = netip.MustParseAddr("192.0.2.10")
					if name == NATPickerNetfilterRover {
						req.Mode = NATRandomFully
					}
					probes, fails, n := 0, 0, 0
					b.ReportAllocs()
					for b.Loop() {
						res := p.Pick(&req, &u)
						probes += res.Probes
						if res.Err != OK {
							fails++
						}
						n++
					}
					b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "picks/s")
					b.ReportMetric(float64(probes)/float64(n), "probes/op")
					b.ReportMetric(100*float64(fails)/float64(n), "fail%")
				})
			}
		})
	}
}
