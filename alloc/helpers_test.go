package alloc

import (
	"math/rand/v2"
	"net/netip"
	"time"
)

// model is the obviously-correct reference for a port set: one bool per
// port. Tests build PortSets and models side by side and compare answers.
type model []bool

func newModel() model { return make(model, NumPorts) }

// nextFree is the naive reference for NextClear/NextFree: a port-by-port loop
// over [from, to] clipped to 0..MaxPort.
func (m model) nextFree(from, to int) int {
	for q := max(from, 0); q <= min(to, MaxPort); q++ {
		if !m[q] {
			return q
		}
	}
	return -1
}

// nextSet is the naive reference for NextSet.
func (m model) nextSet(from, to int) int {
	for q := max(from, 0); q <= min(to, MaxPort); q++ {
		if m[q] {
			return q
		}
	}
	return -1
}

// freeIn counts ports of r not in m.
func (m model) freeIn(r Range) int {
	n := 0
	for p := int(r.Low); p <= int(r.High); p++ {
		if !m[p] {
			n++
		}
	}
	return n
}

// fillRandom marks ports in [lo, hi] busy in m and in one (sometimes two) of
// sets, with the given density. clustered produces runs of busy ports (the
// shape that stresses linear probing) instead of independent ports.
func fillRandom(rng *rand.Rand, m model, sets []*PortSet, lo, hi int, density float64, clustered bool) {
	add := func(p int) {
		m[p] = true
		sets[rng.IntN(len(sets))].Add(p)
		if rng.IntN(4) == 0 { // overlap between sets must not matter
			sets[rng.IntN(len(sets))].Add(p)
		}
	}
	if !clustered {
		for p := lo; p <= hi; p++ {
			if density >= 1 || rng.Float64() < density {
				add(p)
			}
		}
		return
	}
	// Alternate busy runs and free gaps. Free gaps average
	// max(1, meanGap·(1-density)) ports and busy runs are sized so that
	// busy/(busy+free) = density on average.
	const meanGap = 40.0
	if density <= 0 {
		return
	}
	meanFree := max(1, meanGap*(1-density))
	meanBusy := meanFree * density / max(1-density, 1e-9)
	busy := rng.IntN(2) == 0
	for p := lo; p <= hi; {
		mean := meanFree
		if busy {
			mean = meanBusy
		}
		n := max(1, int(rng.ExpFloat64()*mean+0.5))
		for ; n > 0 && p <= hi; n-- {
			if busy {
				add(p)
			}
			p++
		}
		busy = !busy
	}
}

// interesting are port values where word-at-a-time code tends to break.
var interesting = []int{-70000, -1, 0, 1, 62, 63, 64, 65, 127, 128, 1023, 1024, 32767, 32768,
	49152, 60999, 65471, 65472, 65473, 65534, 65535, 65536, 70000}

// randomSpan returns a query span biased toward boundaries and short spans.
func randomSpan(rng *rand.Rand) (int, int) {
	pick := func() int {
		if rng.IntN(3) == 0 {
			return interesting[rng.IntN(len(interesting))]
		}
		return rng.IntN(NumPorts)
	}
	from := pick()
	switch rng.IntN(4) {
	case 0:
		return from, pick() // may be from > to
	case 1:
		return from, from + rng.IntN(200)
	case 2:
		return from, from
	default:
		return from, MaxPort
	}
}

func newRand(a, b uint64) *rand.Rand { return rand.New(rand.NewPCG(a, b)) }

// scenarioRequests generates the requests of a scenario: one of a few
// destinations (and the zero one of bind(0)) from one of two local
// addresses, at a virtual time that alternates bursts of about 50 calls/s
// with quiet spells of about 2 calls/s, so that keyed allocators see several
// tuples and freebsd-13 switches between its random and sequential modes.
// It draws from its own stream, so the scenario's busy pattern does not
// depend on it.
type scenarioRequests struct {
	rng   *rand.Rand
	now   time.Duration
	burst bool
}

func newScenarioRequests(seed uint64) *scenarioRequests {
	return &scenarioRequests{rng: newRand(seed, 3)}
}

var (
	scenarioLocals = []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")}
	scenarioDests  = []netip.AddrPort{
		{},
		netip.MustParseAddrPort("198.51.100.7:443"),
		netip.MustParseAddrPort("198.51.100.7:80"),
		netip.MustParseAddrPort("203.0.113.9:443"),
		netip.MustParseAddrPort("[2001:db8:1::2]:443"),
	}
)

// next returns the next request, failing with fail.
func (g *scenarioRequests) next(fail Errno) Request {
	if g.rng.IntN(64) == 0 {
		g.burst = !g.burst
	}
	mean := 500 * time.Millisecond
	if g.burst {
		mean = 20 * time.Millisecond
	}
	g.now += time.Duration(g.rng.ExpFloat64() * float64(mean))
	return Request{
		Local:  scenarioLocals[g.rng.IntN(len(scenarioLocals))],
		Remote: scenarioDests[g.rng.IntN(len(scenarioDests))],
		Fail:   fail,
		Now:    g.now,
	}
}
