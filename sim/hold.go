package sim

import (
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/portsim/portsim/scenarios"
)

// holdSampler draws how long a connection stays ESTABLISHED, using gonum's
// distributions on the workload's own random stream.
type holdSampler struct {
	dist  scenarios.HoldDist
	fixed Time
	exp   distuv.Exponential
	logn  distuv.LogNormal
	par   distuv.Pareto
}

func newHoldSampler(h scenarios.Hold, src rand.Source) *holdSampler {
	s := &holdSampler{dist: h.Dist, fixed: Time(h.Value)}
	switch h.Dist {
	case scenarios.Exponential:
		s.exp = distuv.Exponential{Rate: 1 / h.Mean.Seconds(), Src: src}
	case scenarios.Lognormal:
		s.logn = distuv.LogNormal{Mu: math.Log(h.Median.Seconds()), Sigma: h.Sigma, Src: src}
	case scenarios.Pareto:
		s.par = distuv.Pareto{Xm: h.Scale.Seconds(), Alpha: h.Shape, Src: src}
	}
	return s
}

// draw returns one holding time.
func (s *holdSampler) draw() Time {
	var sec float64
	switch s.dist {
	case scenarios.Exponential:
		sec = s.exp.Rand()
	case scenarios.Lognormal:
		sec = s.logn.Rand()
	case scenarios.Pareto:
		sec = s.par.Rand()
	default:
		return s.fixed
	}
	// A heavy tail can exceed what int64 nanoseconds hold (292 years):
	// clamp, since such a connection outlives any run anyway.
	if sec >= math.MaxInt64/1e9 {
		return math.MaxInt64 / 2
	}
	return Time(math.Round(sec * 1e9))
}

// MeanHold returns the holding-time distribution's mean in seconds, and
// false when it is infinite (Pareto with shape <= 1).
func MeanHold(h scenarios.Hold) (float64, bool) {
	switch h.Dist {
	case scenarios.Exponential:
		return h.Mean.Seconds(), true
	case scenarios.Lognormal:
		return h.Median.Seconds() * math.Exp(h.Sigma*h.Sigma/2), true
	case scenarios.Pareto:
		if h.Shape <= 1 {
			return 0, false
		}
		return h.Scale.Seconds() * h.Shape / (h.Shape - 1), true
	default:
		return h.Value.Seconds(), true
	}
}
