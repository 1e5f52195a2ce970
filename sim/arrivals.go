package sim

import (
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/portsim/portsim/scenarios"
)

// arrivals generates one workload's connection attempt times in [start,
// stop). Deterministic processes compute the k-th arrival in closed form
// from k, so no rounding error accumulates over a long run: a constant
// 1000/s process puts attempt 28232 at exactly 28.232 s.
type arrivals struct {
	proc        scenarios.ArrivalProcess
	start, stop Time
	rate        float64 // per second; Ramp: rate at start
	rampA       float64 // Ramp: (rateTo - rate) / (2 (stop-start)), per s^2
	on, period  Time    // OnOff
	k           int64   // index of the next arrival (within the window for OnOff)
	window      int64   // OnOff window number
	last        Time    // Poisson: previous arrival
	gap         distuv.Exponential
}

func newArrivals(w *scenarios.Workload, src rand.Source) *arrivals {
	a := &arrivals{
		proc:  w.Arrival.Process,
		start: Time(w.Start),
		stop:  Time(w.Stop),
		rate:  w.Arrival.Rate,
		last:  Time(w.Start),
	}
	switch a.proc {
	case scenarios.Poisson:
		a.gap = distuv.Exponential{Rate: w.Arrival.Rate, Src: src}
	case scenarios.Ramp:
		span := float64(a.stop-a.start) / 1e9
		a.rampA = (w.Arrival.RateTo - w.Arrival.Rate) / (2 * span)
	case scenarios.OnOff:
		a.on = Time(w.Arrival.On)
		a.period = Time(w.Arrival.On + w.Arrival.Off)
	}
	return a
}

// offset returns the time of the k-th event of a constant-rate process,
// relative to its start, rounded to the nanosecond.
func offset(k int64, rate float64) Time {
	return Time(math.Round(float64(k) * 1e9 / rate))
}

// next returns the time of the next arrival, or false when the process has
// no more arrivals before stop.
func (a *arrivals) next() (Time, bool) {
	var t Time
	switch a.proc {
	case scenarios.Constant:
		t = a.start + offset(a.k, a.rate)
	case scenarios.Poisson:
		// Exponential gaps (the first arrival one gap after start).
		t = a.last + Time(math.Round(a.gap.Rand()*1e9))
		a.last = t
	case scenarios.Ramp:
		// The k-th arrival is where the cumulative rate
		// Λ(τ) = rate·τ + rampA·τ² reaches k; τ = 2k / (rate + sqrt(rate² + 4·rampA·k))
		// is the root that stays finite when rampA is 0.
		if a.k == 0 {
			// Λ(0) = 0: the first arrival is at start even when the
			// ramp starts from rate 0 (where the formula below is 0/0).
			t = a.start
			break
		}
		disc := a.rate*a.rate + 4*a.rampA*float64(a.k)
		if disc < 0 {
			return 0, false // a falling ramp that never reaches k
		}
		den := a.rate + math.Sqrt(disc)
		if den <= 0 {
			return 0, false
		}
		t = a.start + Time(math.Round(2*float64(a.k)/den*1e9))
	case scenarios.OnOff:
		off := offset(a.k, a.rate)
		if off >= a.on {
			a.window++
			a.k = 0
			off = 0
		}
		t = a.start + Time(a.window)*a.period + off
	}
	a.k++
	if t >= a.stop {
		return 0, false
	}
	return t, true
}

// meanRate is the long-run arrival rate over [start, stop) in connections
// per second.
func meanRate(w *scenarios.Workload) float64 {
	switch w.Arrival.Process {
	case scenarios.Ramp:
		return (w.Arrival.Rate + w.Arrival.RateTo) / 2
	case scenarios.OnOff:
		return w.Arrival.Rate * float64(w.Arrival.On) / float64(w.Arrival.On+w.Arrival.Off)
	default:
		return w.Arrival.Rate
	}
}
