package alloc

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

// Naive references for the NAT pickers: the kernel loops (and the simple
// pickers) transcribed port by port over a list of candidate ports and a
// model, drawing from the same random stream in the same order as the
// pickers, so that the word-at-a-time pickers can be compared with them
// call by call (same seed ⇒ same offsets, keys and draws ⇒ same port,
// probes and error).

// natRef is a reference picker. busy and evictable are port models;
// evictable may be nil.
type natRef interface {
	pick(req *NATRequest, busy, evictable model) Result
}

// newNATRef returns the reference of the named picker over cfg.
func newNATRef(name string, cfg NATConfig) natRef {
	switch name {
	case NATPickerNetfilter:
		return &refNetfilter{rng: cfg.Rand}
	case NATPickerNetfilter65:
		return &refNetfilter{rng: cfg.Rand, evict: true}
	case NATPickerNetfilterRover:
		return &refRover{rng: cfg.Rand, key: refKey(cfg.Rand)}
	case NATPickerRandom:
		return &refNATRandom{rng: cfg.Rand}
	case NATPickerSequential:
		return &refNATSequential{}
	}
	panic("no reference for NAT picker " + name)
}

// refCands lists the candidate ports of req in ascending order: every port
// of the pool, or with Parity those of the inside port's parity.
func refCands(req *NATRequest) []int {
	var c []int
	for p := int(req.Pool.Low); p <= int(req.Pool.High); p++ {
		if !req.Parity || p%2 == int(req.Inside.Port())%2 {
			c = append(c, p)
		}
	}
	return c
}

// refNetfilter is nf_nat_l4proto_unique_tuple of Linux 5.0+ (and with
// evict, 6.5+ nf_nat_used_tuple_harder), transcribed with a u16 offset.
type refNetfilter struct {
	rng   *rand.Rand
	evict bool
}

func (r *refNetfilter) pick(req *NATRequest, busy, evictable model) Result {
	c := refCands(req)
	rangeSize := len(c)
	if rangeSize == 0 {
		return Result{Err: EADDRNOTAVAIL}
	}
	attempts := min(rangeSize, 128)
	probes := 0
	off := uint16(r.rng.Uint32())
	for {
		for i := 0; i < attempts; i, off = i+1, off+1 {
			p := c[int(off)%rangeSize]
			probes++
			if !busy[p] {
				return Result{Port: uint16(p), Probes: probes}
			}
			attemptsLeft := attempts - i
			if r.evict && !req.UDP && evictable != nil && attemptsLeft <= 32 && evictable[p] {
				return Result{Port: uint16(p), Probes: probes}
			}
		}
		if attempts >= rangeSize || attempts < 16 {
			return Result{Probes: probes, Err: EADDRNOTAVAIL}
		}
		attempts /= 2
		off = uint16(r.rng.Uint32())
	}
}

// refRover is the pre-5.0 nf_nat_l4proto_unique_tuple, transcribed: the
// `for (i = 0; ; ++off)` loop with `++i != range_size`, the per-protocol
// rovers and the keyed --random offset (refPortOffset, without time seed).
type refRover struct {
	rng    *rand.Rand
	key    [16]byte
	rovers [2]uint16
}

func (r *refRover) pick(req *NATRequest, busy, _ model) Result {
	c := refCands(req)
	rangeSize := len(c)
	if rangeSize == 0 {
		return Result{Err: EADDRNOTAVAIL}
	}
	rover := &r.rovers[0]
	if req.UDP {
		rover = &r.rovers[1]
	}
	var off uint16
	switch req.Mode {
	case NATRandom:
		off = uint16(refPortOffset(r.key, &Request{Local: req.hashSource(), Remote: req.Remote}, false))
	case NATRandomFully:
		off = uint16(r.rng.Uint32())
	default:
		off = *rover
	}
	for i := 0; ; off++ {
		p := c[int(off)%rangeSize]
		i++
		if i != rangeSize && busy[p] {
			continue
		}
		if req.Mode != NATRandom && req.Mode != NATRandomFully {
			*rover = off
		}
		if busy[p] { // the unchecked last candidate was taken: dropped at confirm
			return Result{Probes: rangeSize, Err: EADDRNOTAVAIL}
		}
		return Result{Port: uint16(p), Probes: i}
	}
}

// refNATRandom tries natRandomTries uniform candidates, then lists the
// free candidates and draws one with IntN.
type refNATRandom struct{ rng *rand.Rand }

func (r *refNATRandom) pick(req *NATRequest, busy, _ model) Result {
	c := refCands(req)
	if len(c) == 0 {
		return Result{Err: EADDRNOTAVAIL}
	}
	for try := 1; try <= natRandomTries; try++ {
		if p := c[r.rng.IntN(len(c))]; !busy[p] {
			return Result{Port: uint16(p), Probes: try}
		}
	}
	var free []int
	for _, p := range c {
		if !busy[p] {
			free = append(free, p)
		}
	}
	if len(free) == 0 {
		return Result{Probes: len(c), Err: EADDRNOTAVAIL}
	}
	return Result{Port: uint16(free[r.rng.IntN(len(free))]), Probes: natRandomTries + 1}
}

// refNATSequential walks the candidates from the cursor port by port.
type refNATSequential struct{ cursor int }

func (r *refNATSequential) pick(req *NATRequest, busy, _ model) Result {
	c := refCands(req)
	if len(c) == 0 {
		return Result{Err: EADDRNOTAVAIL}
	}
	s := 0
	if req.Pool.Contains(r.cursor) {
		for s < len(c) && c[s] < r.cursor {
			s++
		}
		if s == len(c) {
			s = 0
		}
	}
	for k := range c {
		if p := c[(s+k)%len(c)]; !busy[p] {
			r.cursor = p + 1
			return Result{Port: uint16(p), Probes: k + 1}
		}
	}
	return Result{Probes: len(c), Err: EADDRNOTAVAIL}
}

// hideParity is a Busy without the optional parity counts, so the "random"
// picker's NextFreeParity walk is exercised too.
type hideParity struct{ b Busy }

func (h hideParity) Has(p int) bool            { return h.b.Has(p) }
func (h hideParity) NextFree(from, to int) int { return h.b.NextFree(from, to) }
func (h hideParity) NextFreeParity(from, to, parity int) int {
	return h.b.NextFreeParity(from, to, parity)
}
func (h hideParity) CountFree(from, to int) int  { return h.b.CountFree(from, to) }
func (h hideParity) NthFree(from, to, n int) int { return h.b.NthFree(from, to, n) }

// natScenario drives one picker and its reference through a run of
// requests on a small pool that fills up (flows are kept) and drains
// (flows end at random), so both are compared near and at exhaustion.
type natScenario struct {
	seed     uint64
	pool     Range // the base pool; requests sometimes narrow it
	steps    int
	density  float64 // initial busy fraction
	parity   bool    // requests may ask for parity
	release  float64 // chance per step that a held port is freed (more in drain spells)
	evict    float64 // fraction of busy ports that are evictable
	hideMask bool    // pass a Busy without the parity counts
}

var natRemotes = []netip.AddrPort{
	netip.MustParseAddrPort("198.51.100.7:443"),
	netip.MustParseAddrPort("198.51.100.7:80"),
	netip.MustParseAddrPort("203.0.113.9:443"),
	netip.MustParseAddrPort("[2001:db8:1::2]:443"),
}

var natInsides = []netip.AddrPort{
	netip.MustParseAddrPort("10.0.0.1:40000"),
	netip.MustParseAddrPort("10.0.0.2:40001"),
	netip.MustParseAddrPort("10.0.0.3:5061"),
	netip.MustParseAddrPort("[fd00::1]:33333"),
}

var natExternals = []netip.Addr{{}, netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("192.0.2.11")}

// runNATScenario runs sc on the named picker and its reference and
// requires the same Result at every step, plus the invariants that do not
// depend on the reference. It returns how many picks succeeded (evicted of
// them by taking an evictable busy port) and how many failed.
func runNATScenario(t testing.TB, name string, sc natScenario) (ok, evicted, failed int) {
	t.Helper()
	p, err := NewNATPicker(name, NATConfig{Rand: newRand(sc.seed, 1)})
	require.NoError(t, err)
	ref := newNATRef(name, NATConfig{Rand: newRand(sc.seed, 1)})
	rng := newRand(sc.seed, 2) // the scenario's own stream

	var held, reserved, evictable PortSet
	busyM, evM := newModel(), newModel()
	fillRandom(rng, busyM, []*PortSet{&held, &reserved}, int(sc.pool.Low), int(sc.pool.High), sc.density, rng.IntN(2) == 0)
	u := NewUnion(&held, &reserved)
	var busy Busy = &u
	if sc.hideMask {
		busy = hideParity{&u}
	}
	var holding []int
	for step := range sc.steps {
		req := NATRequest{
			Inside:   natInsides[rng.IntN(len(natInsides))],
			Remote:   natRemotes[rng.IntN(len(natRemotes))],
			External: natExternals[rng.IntN(len(natExternals))],
			UDP:      rng.IntN(3) == 0,
			Pool:     sc.pool,
			Mode:     NATMode(rng.IntN(3)),
			Parity:   sc.parity && rng.IntN(2) == 0,
		}
		if rng.IntN(4) == 0 { // a narrower pool for this call (a port block)
			lo := int(sc.pool.Low) + rng.IntN(sc.pool.Size())
			hi := lo + rng.IntN(int(sc.pool.High)-lo+1)
			req.Pool = Range{uint16(lo), uint16(hi)}
		}
		// Evictable: a random part of the busy ports of the pool.
		evictable.Clear()
		clear(evM)
		if sc.evict > 0 {
			for q := int(sc.pool.Low); q <= int(sc.pool.High); q++ {
				if busyM[q] && rng.Float64() < sc.evict {
					evictable.Add(q)
					evM[q] = true
				}
			}
			req.Evictable = &evictable
		}
		var evRef model
		if req.Evictable != nil {
			evRef = evM
		}

		got := p.Pick(&req, busy)
		want := ref.pick(&req, busyM, evRef)
		checkNATInvariants(t, name, &req, busyM, evRef, got, want)
		require.Equal(t, want, got, "%s step %d: %+v", name, step, req)
		require.NotEmpty(t, p.(Explainer).Explain())

		if got.Err == OK {
			ok++
			if busyM[int(got.Port)] { // an evicted port stays held by the new flow
				evicted++
			} else {
				held.Add(int(got.Port))
				busyM[got.Port] = true
				holding = append(holding, int(got.Port))
			}
		} else {
			failed++
		}
		rate := sc.release
		if step%60 >= 45 { // drain spells: the pool swings between full and partly free
			rate = 0.75
		}
		for len(holding) > 0 && rng.Float64() < rate {
			i := rng.IntN(len(holding))
			q := holding[i]
			holding[i] = holding[len(holding)-1]
			holding = holding[:len(holding)-1]
			held.Remove(q)
			busyM[q] = reserved.Has(q)
		}
	}
	return ok, evicted, failed
}

// checkNATInvariants are the properties every picker must have whatever
// the reference says: in the pool, of the right parity, not busy unless an
// evicting picker took an evictable port, Probes sane, and a failure only
// when the reference failed too.
func checkNATInvariants(t testing.TB, name string, req *NATRequest, busy, evictable model, got, want Result) {
	t.Helper()
	if got.Err != OK {
		require.Equal(t, EADDRNOTAVAIL, got.Err)
		require.Zero(t, got.Port)
		require.NotEqual(t, OK, want.Err, "%s failed where the reference found %d", name, want.Port)
		return
	}
	port := int(got.Port)
	require.True(t, req.Pool.Contains(port), "%s: port %d outside pool %s", name, port, req.Pool)
	require.GreaterOrEqual(t, got.Probes, 1)
	if req.Parity {
		require.Equal(t, int(req.Inside.Port())%2, port%2, "%s: parity not kept", name)
	}
	if busy[port] {
		require.Equal(t, NATPickerNetfilter65, name, "%s took busy port %d", name, port)
		require.NotNil(t, evictable)
		require.True(t, evictable[port], "%s took busy port %d that is not evictable", name, port)
		require.False(t, req.UDP, "UDP never evicts")
	}
}
