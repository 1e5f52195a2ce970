package predict

import (
	"math"
	"slices"
	"sort"

	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/distuv"
)

// confidence is the two-sided level of every interval.
const confidence = 0.95

// txids is the number of DNS transaction IDs, all equally likely to a
// blind spoofer (RFC 5452 §7: N = 65,536).
const txids = 1 << 16

// Estimate is a measured quantity with its 95 % interval [Low, High]. Open
// means the data bound it on one side only: Value is then that bound (Low
// for a lower bound such as "at least 13.3 bits") and High is not known.
type Estimate struct {
	Value float64 `json:"value"`
	Low   float64 `json:"low"`
	High  float64 `json:"high"`
	Open  bool    `json:"open,omitempty"`
}

// z is the standard normal quantile of the two-sided level.
var z = distuv.UnitNormal.Quantile(1 - (1-confidence)/2)

// binomial is k successes in n trials: k/n with the exact Clopper-Pearson
// interval (quantiles of Beta(k, n-k+1) and Beta(k+1, n-k)).
func binomial(k, n int) Estimate { return binomialAt(k, n, 1-confidence) }

// binomialAt is binomial at level 1-alpha.
func binomialAt(k, n int, alpha float64) Estimate {
	if n == 0 {
		return Estimate{Open: true}
	}
	a := alpha / 2
	e := Estimate{Value: float64(k) / float64(n), Low: 0, High: 1}
	if k > 0 {
		e.Low = distuv.Beta{Alpha: float64(k), Beta: float64(n - k + 1)}.Quantile(a)
	}
	if k < n {
		e.High = distuv.Beta{Alpha: float64(k + 1), Beta: float64(n - k)}.Quantile(1 - a)
	}
	return e
}

// predictive is the attacker's predictive distribution of the offset
// (target - observed) mod the range size: counts from the training boots,
// which fix the order of its guesses (most frequent offset first, ties by
// the smaller offset), and counts from the held-out boots, on which every
// success probability is measured.
type predictive struct {
	train, test   []uint32
	nTrain, nTest int
	order         []int32  // offsets, most likely first by the training counts
	cum           []uint64 // cum[k]: held-out samples whose offset is among the first k of order
}

func newPredictive(size int) *predictive {
	return &predictive{train: make([]uint32, size), test: make([]uint32, size)}
}

// add counts one sample.
func (p *predictive) add(offset int, train bool) {
	if train {
		p.train[offset]++
		p.nTrain++
	} else {
		p.test[offset]++
		p.nTest++
	}
}

// finish orders the guesses and accumulates the held-out counts.
func (p *predictive) finish() {
	p.order = make([]int32, len(p.train))
	for i := range p.order {
		p.order[i] = int32(i)
	}
	sort.SliceStable(p.order, func(i, j int) bool { return p.train[p.order[i]] > p.train[p.order[j]] })
	p.cum = make([]uint64, len(p.order)+1)
	for k, off := range p.order {
		p.cum[k+1] = p.cum[k] + uint64(p.test[off])
	}
}

// success is the held-out probability that one of the attacker's k best
// guesses is the target's port (P_k of validation-and-security.md §3.6).
func (p *predictive) success(k int) Estimate {
	k = min(max(k, 0), len(p.order))
	return binomial(int(p.cum[k]), p.nTest)
}

// minEntropy is -log2 of the most likely port's probability, in bits.
// The k best guesses cannot hold more than k times that probability, so
// every held-out P_k/k estimates it from below, P1 directly, and for a flat
// distribution a large k pins it down far better than the few held-out hits
// of a single guess. The estimate is P_k/k at the k whose 95 % lower bound
// divided by k is highest (k = 1 for a peaked distribution, a large k for a
// flat one; k = range size gives at least 1/range size, which no
// distribution over the range can beat, and whose lower bound is always
// positive); that lower bound gives the interval's high end, P1's upper
// bound its low end. With nothing held out only "at least 0 bits" is known
// (Open). Because the guesses
// are learned from other boots they can only be worse than the best ones,
// so the estimate errs toward more entropy when the training sample is
// small.
func (p *predictive) minEntropy() Estimate {
	if p.nTest == 0 {
		return Estimate{Open: true} // at least 0 bits: nothing was held out
	}
	p1 := p.success(1)
	e := Estimate{Low: -math.Log2(p1.High)}
	ks := p.grid()
	// The k is chosen after looking at every P_k, so each lower bound is
	// taken at the Bonferroni level 1 - 5 %/len(ks): the chosen one then
	// still holds with 95 % confidence.
	alpha := (1 - confidence) / float64(len(ks))
	best, bestLow := 0.0, 0.0
	for _, k := range ks {
		s := binomialAt(int(p.cum[k]), p.nTest, alpha)
		if lo := s.Low / float64(k); lo > bestLow {
			bestLow, best = lo, s.Value/float64(k)
		}
	}
	// No distribution over the range has more than log2(size) bits, and
	// none less than 0 (+0, not the -0 of -log2(1)).
	e.High = min(-math.Log2(bestLow), math.Log2(float64(len(p.order))))
	e.Low = max(min(e.Low, e.High), 0)
	e.Value = min(max(-math.Log2(best), e.Low), e.High)
	return e
}

// grid is the guess counts of curve and minEntropy: 1, 2, 5, 10, ... and
// the range size last.
func (p *predictive) grid() []int {
	var ks []int
	n := len(p.order)
	for k := 1; k < n; k = nextK(k) {
		ks = append(ks, k)
	}
	return append(ks, n)
}

// shannon is the Shannon entropy in bits of the offsets of all samples,
// with the Miller-Madow correction (m-1)/(2n ln 2) for the m offsets seen
// in n samples. When most samples fell on offsets seen once, or the
// offsets seen number more than a quarter of the samples, the sample cannot
// show the distribution's spread (the correction undershoots by up to a
// bit) and the value is only a lower bound (the second result is true).
func (p *predictive) shannon() (float64, bool) {
	n := float64(p.nTrain + p.nTest)
	if n == 0 {
		return 0, false
	}
	var h float64
	m, once := 0, 0
	for i := range p.train {
		c := float64(p.train[i] + p.test[i])
		if c == 0 {
			continue
		}
		m++
		if c == 1 {
			once++
		}
		h -= c / n * math.Log2(c/n)
	}
	h += float64(m-1) / (2 * n * math.Ln2)
	return min(h, math.Log2(float64(len(p.train)))), float64(once) >= n/2 || float64(m) > n/4
}

// spoof is model b's success probability per attempt with k spoofed
// responses, each a (port, transaction ID) guess: the best use spends up
// to 65,536 IDs on the most likely port, then on the next. With k <=
// 65,536 that is P(most likely port) x k/65,536, taken from minEntropy
// (whose estimate of that probability is far tighter than one guess's
// held-out hits); beyond, the sum over the ports tried of their held-out
// probability x IDs spent / 65,536, with the interval of those ports'
// total held-out probability scaled alike.
func (p *predictive) spoof(k int) Estimate {
	if p.nTest == 0 || k <= 0 {
		return Estimate{Open: true}
	}
	if k <= txids {
		h := p.minEntropy()
		f := float64(k) / txids
		e := Estimate{Value: math.Exp2(-h.Value) * f, High: math.Exp2(-h.Low) * f}
		if !h.Open {
			e.Low = math.Exp2(-h.High) * f
		}
		return e
	}
	full, part := k/txids, k%txids
	ports := min(full+min(part, 1), len(p.order))
	var v float64
	for j := range ports {
		ids := txids
		if j == full {
			ids = part
		}
		v += float64(p.test[p.order[j]]) / float64(p.nTest) * float64(ids) / txids
	}
	mass := p.success(ports)
	if mass.Value == 0 {
		return Estimate{High: min(mass.High*float64(k)/float64(ports)/txids, 1)}
	}
	f := v / mass.Value
	return Estimate{Value: v, Low: mass.Low * f, High: min(mass.High*f, 1)}
}

// attempts50 is how many independent attempts, each succeeding with
// probability p, an attacker needs for a 50 % chance of at least one
// success: ln 0.5 / ln(1-p), rounded up. A higher p needs fewer, so the
// interval swaps ends; with p possibly 0 the count has no upper bound
// (Open).
func attempts50(p Estimate) Estimate {
	n := func(q float64) float64 {
		if q >= 1 {
			return 1
		}
		return math.Ceil(math.Log(0.5) / math.Log1p(-q))
	}
	if p.High <= 0 {
		return Estimate{Value: 1, Low: 1, Open: true} // nothing measured: at least one attempt
	}
	if p.Low <= 0 {
		lo := n(p.High)
		if p.Value > 0 {
			return Estimate{Value: n(p.Value), Low: lo, Open: true}
		}
		return Estimate{Value: lo, Low: lo, Open: true}
	}
	return Estimate{Value: n(p.Value), Low: n(p.High), High: n(p.Low)}
}

// nextK steps through a grid of guess counts: 1, 2, 5, 10, 20, 50, ...
func nextK(k int) int {
	if k/pow10(k) == 2 {
		return k / 2 * 5
	}
	return 2 * k
}

// pow10 is the largest power of ten not above k >= 1.
func pow10(k int) int {
	p := 1
	for p*10 <= k {
		p *= 10
	}
	return p
}

// Point is one point of a guesses curve: the held-out probability that one
// of the attacker's K best guesses is right.
type Point struct {
	K int      `json:"k"`
	P Estimate `json:"p"`
}

// curve is P_k on the grid.
func (p *predictive) curve() []Point {
	var out []Point
	for _, k := range p.grid() {
		out = append(out, Point{K: k, P: p.success(k)})
	}
	return out
}

// leakage is the squared Pearson correlation between x, the port increment
// the attacker sees between two observations, and y, the victim's
// connections to other destinations in between, with the interval from
// Fisher's z transform of r (squared; 0 when r's interval spans 0).
func leakage(x, y []float64) Estimate {
	n := len(x)
	if n < 4 {
		return Estimate{Open: true}
	}
	r := stat.Correlation(x, y, nil)
	if math.IsNaN(r) {
		return Estimate{} // one side never varied: nothing to correlate, nothing leaks
	}
	if math.Abs(r) >= 0.999999 {
		return Estimate{Value: r * r, Low: r * r, High: r * r} // Fisher's z is infinite: the data fit a line exactly
	}
	zr := math.Atanh(r)
	h := z / math.Sqrt(float64(n-3))
	lo, hi := math.Tanh(zr-h), math.Tanh(zr+h)
	e := Estimate{Value: r * r, High: max(lo*lo, hi*hi)}
	if lo > 0 || hi < 0 {
		e.Low = min(lo*lo, hi*hi)
	}
	return e
}

// OARC is the DNS-OARC porttest rating (https://dns-oarc.net/oarc/services/porttest,
// validation-and-security.md §3.2): the standard deviation of the source
// ports of 26 consecutive queries, GREAT from 3,980 (13.75 bits), GOOD from
// 296 (10 bits), POOR below; Bits is log2(sd x sqrt 12), the width of a
// uniform range with that spread.
type OARC struct {
	// StdDev is the median over the windows of 26 consecutive observations.
	StdDev  float64 `json:"std_dev"`
	Bits    float64 `json:"bits"`
	Rating  string  `json:"rating"`
	Windows int     `json:"windows"`
}

// oarcQueries is porttest's number of queries per test.
const oarcQueries = 26

// oarc rates the standard deviations of windows of 26 observed ports.
func oarc(sds []float64) OARC {
	if len(sds) == 0 {
		return OARC{Rating: "n/a"}
	}
	s := slices.Clone(sds)
	slices.Sort(s)
	med := stat.Quantile(0.5, stat.Empirical, s, nil)
	o := OARC{StdDev: med, Windows: len(s), Bits: max(0, math.Log2(med*math.Sqrt(12))), Rating: "POOR"}
	switch {
	case med >= 3980:
		o.Rating = "GREAT"
	case med >= 296:
		o.Rating = "GOOD"
	}
	return o
}
