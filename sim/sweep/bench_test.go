package sweep

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkSweep is the benchmark: 20 points (100 to 2,000
// connections/s) by 10 replications of the default scenario (Linux
// defaults, one destination, Poisson arrivals, client closes) run for 10
// minutes, with 1 and 2 workers. It reports the sweep's wall time per
// iteration (ns/op), runs/s and simulated connections per second.
func BenchmarkSweep(b *testing.B) {
	for _, jobs := range []int{1, 2} {
		b.Run(fmt.Sprintf("j%d", jobs), func(b *testing.B) {
			var conns uint64
			for b.Loop() {
				res, err := Run(context.Background(), Options{
					Scenario:     "linux-burst",
					Overrides:    []string{"duration=10m"},
					Vary:         []Vary{{"workloads.0.arrival.rate", rates()}},
					Replications: 10,
					Jobs:         jobs,
				})
				if err != nil {
					b.Fatal(err)
				}
				for _, p := range res.Points {
					for _, r := range p.Reps {
						conns += r.Attempts
					}
				}
			}
			s := b.Elapsed().Seconds()
			b.ReportMetric(float64(200*b.N)/s, "runs/s")
			b.ReportMetric(float64(conns)/s, "conns/s")
		})
	}
}

// rates are the benchmark's 20 rates.
func rates() []string {
	v, err := ParseVary("r=100:2000:100")
	if err != nil {
		panic(err)
	}
	return v.Values
}
