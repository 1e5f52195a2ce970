package sweep

import (
	"math"

	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/distuv"
)

// confidence is the two-sided level of every interval.
const confidence = 0.95

// summarise fills p's statistics from its replications.
func summarise(p *Point) {
	var fail, steady, first, peak, probes []float64
	var attempts, steadyAttempts uint64
	for i := range p.Reps {
		r := &p.Reps[i]
		fail = append(fail, r.FailureProb)
		attempts += r.Attempts
		if r.SteadyBlocking != nil {
			steady = append(steady, *r.SteadyBlocking)
			steadyAttempts += r.SteadyAttempts
		}
		if r.FirstFailureS != nil {
			first = append(first, *r.FirstFailureS)
		}
		peak = append(peak, float64(r.PeakPortsInUse))
		probes = append(probes, r.ProbesPerAlloc)
	}
	p.FailureProb = probabilityStat(fail, attempts)
	p.SteadyBlocking = probabilityStat(steady, steadyAttempts)
	p.FirstFailureS = meanStat(first)
	p.PeakPortsInUse = meanStat(peak)
	p.ProbesPerAlloc = meanStat(probes)
}

// meanStat is the mean of xs with Student's t interval over them.
func meanStat(xs []float64) Stat {
	n := len(xs)
	if n == 0 {
		return Stat{}
	}
	mean, sd := stat.MeanStdDev(xs, nil)
	if n < 2 || sd == 0 {
		return Stat{Mean: mean, Lo: mean, Hi: mean, N: n}
	}
	t := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: float64(n - 1)}.Quantile(1 - (1-confidence)/2)
	h := t * sd / math.Sqrt(float64(n))
	return Stat{Mean: mean, Lo: mean - h, Hi: mean + h, N: n}
}

// probabilityStat is meanStat for probabilities, clipped to [0, 1]. When
// every replication saw the same extreme (no failure at all, or nothing
// but failures) the t interval collapses to a point; the interval is then
// the exact Clopper-Pearson interval over all the attempts, which for x =
// 0 is [0, 1 - (alpha/2)^(1/n)] (alpha/2 = 0.025: the two-sided 95 %
// interval, like the t intervals). It treats the attempts as independent,
// so it is the narrowest honest statement.
func probabilityStat(ps []float64, attempts uint64) Stat {
	s := meanStat(ps)
	if s.N == 0 {
		return s
	}
	if s.Lo == s.Hi && attempts > 0 {
		bound := 1 - math.Pow((1-confidence)/2, 1/float64(attempts))
		switch s.Mean {
		case 0:
			s.Hi = bound
		case 1:
			s.Lo = 1 - bound
		}
	}
	s.Lo, s.Hi = max(s.Lo, 0), min(s.Hi, 1)
	return s
}
