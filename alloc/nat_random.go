package alloc

import (
	"fmt"
	"math/rand/v2"
)

func init() { registerNAT(NATPickerRandom, newNATRandom) }

// natRandom is the "random" picker: a uniform draw among the free ports of
// req.Pool, the model of a NAT that picks "at random from free inventory"
// — Azure NAT Gateway's documented port choice (nat-gateway-snat.md,
// nat.md §3.3) and the undocumented choice of the other cloud presets
// (nat.md §3.1).
//
// It first draws up to natRandomTries candidates uniformly from the class
// and takes the first free one (rejection sampling); if all of them are
// busy it counts the free candidates (Busy.CountFree, a popcount per word),
// draws k = Rand.IntN(free) and takes the k-th free one (Busy.NthFree).
// Both stages are uniform over the free candidates, so their mixture is
// too; the first stage costs a few word tests where the pool is mostly free
// (a full count of a 64,512-port pool is about 2,000 word operations, 2-4
// µs, which the profile showed dominating cloud-NAT runs). Probes is the
// number of draws on success (1 when the first was free) and the class size
// on failure, which the count covered.
//
// req.Parity draws among the free ports of the inside port's parity
// instead; a *PortSet or *Union busy view counts those a word at a time
// (CountFreeParity, NthFreeParity), any other Busy by walking its free ports
// of that parity with NextFreeParity. req.Mode and req.Evictable are
// ignored.
type natRandom struct {
	rng *rand.Rand

	last natLast // for Explain
	free int     // free candidates counted by the last call; -1 when a uniform draw found one
	draw int     // its draw: the port is the draw-th free one (or the number of uniform draws)
}

// newNATRandom builds "random"; cfg.Rand must be non-nil.
func newNATRandom(cfg NATConfig) (NATPicker, error) {
	if cfg.Rand == nil {
		return nil, fmt.Errorf("alloc: NAT picker %s: NATConfig.Rand is nil; a seeded *rand.Rand is required", NATPickerRandom)
	}
	return &natRandom{rng: cfg.Rand}, nil
}

func (p *natRandom) Name() string { return NATPickerRandom }

// Pick draws uniformly among the free candidates of req.
func (p *natRandom) Pick(req *NATRequest, busy Busy) Result {
	c := natClassOf(req)
	p.last.cls, p.free = c, 0
	if c.n == 0 {
		return p.last.set(Result{Err: EADDRNOTAVAIL})
	}
	for try := 1; try <= natRandomTries; try++ {
		if q := c.port(p.rng.IntN(c.n)); !busy.Has(q) {
			p.free, p.draw = -1, try
			return p.last.set(Result{Port: uint16(q), Probes: try, Err: OK})
		}
	}
	p.free = c.countFree(busy)
	if p.free <= 0 {
		return p.last.set(Result{Probes: c.n, Err: EADDRNOTAVAIL})
	}
	p.draw = p.rng.IntN(p.free)
	q := c.nthFree(busy, p.draw)
	if q < c.first || q > c.port(c.n-1) || (q-c.first)%c.step != 0 {
		panicSpan("NthFree", q, c.first, c.port(c.n-1))
	}
	return p.last.set(Result{Port: uint16(q), Probes: natRandomTries + 1, Err: OK})
}

// natRandomTries is how many uniform draws "random" tries before it counts
// the free ports: at occupancy u the count is needed with probability
// u^natRandomTries (1 % at u = 0.75).
const natRandomTries = 16

// Explain implements Explainer, e.g. "random from free inventory (Azure NAT
// Gateway): pool 1024-65535 (64512), draw 1234 of 60000 free → 2300".
func (p *natRandom) Explain() string {
	l := &p.last
	if !l.done {
		return notYet(NATPickerRandom)
	}
	const src = "random from free inventory (Azure NAT Gateway): "
	if l.Err != OK {
		return fmt.Sprintf("%s%s, no free port → %s", src, natSpan(l.cls), l.Err)
	}
	if p.free < 0 {
		return fmt.Sprintf("%s%s, uniform draw %d free → %d", src, natSpan(l.cls), p.draw, l.Port)
	}
	return fmt.Sprintf("%s%s, draw %d of %d free → %d", src, natSpan(l.cls), p.draw, p.free, l.Port)
}
