package alloc

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/dchest/siphash"
	"github.com/stretchr/testify/require"
)

// Naive references for the Linux selectors: the kernel loops transcribed
// port by port over a model, with their gotos turned into loops, so that the
// word-at-a-time allocators can be checked against them step for step (same
// Config.Rand seed ⇒ same keys, tables and draws ⇒ same port and probes).

// refNarrow is inet_sk_get_local_port_range, transcribed.
func refNarrow(r, lr Range) (lo, hi int, set bool) {
	lo, hi = int(r.Low), int(r.High)
	sk := uint32(lr.High)<<16 | uint32(lr.Low) // IP_LOCAL_PORT_RANGE's u32: hi << 16 | lo
	if sk != 0 {
		skLo, skHi := int(sk&0xffff), int(sk>>16)
		if lo <= skLo && skLo <= hi {
			lo = skLo
		}
		if lo <= skHi && skHi <= hi {
			hi = skHi
		}
		set = true
	}
	return lo, hi, set
}

// refPortOffset is secure_ipv4_port_ephemeral / secure_ipv6_port_ephemeral
// written with siphash's streaming digest and append, independently of the
// fixed-array packing in netSecret.portOffset.
func refPortOffset(key [16]byte, req *Request, timeSeed bool) uint64 {
	l, r := req.Local.Unmap(), req.Remote.Addr().Unmap()
	dport := req.Remote.Port()
	// The boot phase of the 10-second epochs is the second key word mod 10 s.
	phase := time.Duration(binary.LittleEndian.Uint64(key[8:]) % uint64(10*time.Second))
	epoch := uint32((req.Now + phase) / (10 * time.Second))
	var msg []byte
	if r.Is4() && !l.Is6() {
		var saddr [4]byte
		if l.Is4() {
			saddr = l.As4()
		}
		daddr := r.As4()
		msg = append(msg, saddr[:]...)
		msg = append(msg, daddr[:]...)
		msg = append(msg, byte(dport>>8), byte(dport), 0, 0) // (u32)(u16)dport, little-endian word
		if timeSeed {
			msg = binary.LittleEndian.AppendUint32(msg, epoch)
		}
	} else {
		saddr, daddr := l.As16(), r.As16()
		msg = append(msg, saddr[:]...)
		msg = append(msg, daddr[:]...)
		if timeSeed {
			msg = binary.LittleEndian.AppendUint32(msg, epoch)
		}
		msg = binary.BigEndian.AppendUint16(msg, dport)
	}
	h := siphash.New(key[:])
	h.Write(msg)
	return h.Sum64()
}

// refKey draws the net secret as the allocators do and returns it as the
// 16-byte key siphash.New takes (k0 then k1, little-endian).
func refKey(rng *rand.Rand) [16]byte {
	var k [16]byte
	binary.LittleEndian.PutUint64(k[0:8], rng.Uint64())
	binary.LittleEndian.PutUint64(k[8:16], rng.Uint64())
	return k
}

// refLinuxConnect is __inet_hash_connect of one era, port by port.
type refLinuxConnect struct {
	era   connectEra
	r     Range
	key   [16]byte
	hint  uint32
	table []uint32
	rng   *rand.Rand
}

func newRefLinuxConnect(era connectEra) func(Config) reference {
	return func(cfg Config) reference {
		a := &refLinuxConnect{era: era, r: cfg.Range, key: refKey(cfg.Rand), rng: cfg.Rand}
		switch era {
		case eraTable256:
			a.table = make([]uint32, 256)
		case eraTable64K:
			a.table = make([]uint32, 65536)
		}
		for i := range a.table {
			a.table[i] = cfg.Rand.Uint32()
		}
		return a
	}
}

// span returns the range the era searches for req and whether the
// per-socket range is in force.
func (a *refLinuxConnect) span(req *Request) (low, high int, local bool) {
	if a.era == eraTable64K {
		return refNarrow(a.r, req.LocalRange)
	}
	return int(a.r.Low), int(a.r.High), false
}

func (a *refLinuxConnect) allocate(req *Request, busy model) Result {
	if req == nil {
		req = &Request{}
	}
	low, high, local := a.span(req)
	var index uint32
	var offset uint32
	switch a.era {
	case eraHint:
		offset = a.hint + uint32(refPortOffset(a.key, req, false))
	case eraTable256:
		po := uint32(refPortOffset(a.key, req, false))
		index = (po * 0x61C88647) >> 24
		offset = a.table[index] + po
	default:
		po := refPortOffset(a.key, req, true)
		index = uint32(po & 0xffff)
		offset = a.table[index] + uint32(po>>32)
	}
	step := 2
	if local {
		step = 1
	}
	high++ // [32768, 60999] -> [32768, 61000[
	remaining := uint32(high - low)
	if !local && remaining > 1 {
		remaining &^= 1
	}
	offset %= remaining
	if !local {
		offset &^= 1
	}
	probes := 0
	for { // other_parity_scan:
		port := low + int(offset)
		for i := 0; i < int(remaining); i, port = i+step, port+step {
			if port >= high {
				port -= int(remaining)
			}
			probes++
			if busy[port] {
				continue
			}
			// ok:
			switch a.era {
			case eraHint:
				a.hint += uint32(i + 2)
			case eraTable256:
				a.table[index] += uint32(i + 2)
			default:
				i = max(i, a.rng.IntN(8)*step)
				a.table[index] += uint32(i + step)
			}
			return Result{Port: uint16(port), Probes: probes, Err: OK}
		}
		if local {
			break
		}
		offset++
		if offset&1 == 0 || remaining <= 1 {
			break
		}
	}
	return Result{Probes: probes, Err: failErrno(req)}
}

// unexamined lists the ports a parity pass pair over [low, high] may skip:
// with an odd size above 1, remaining is rounded down to even and either
// Low or High (one per search) is never a candidate.
func unexamined(low, high int) []int {
	if n := high - low + 1; n > 1 && n%2 == 1 {
		return []int{low, high}
	}
	return nil
}

// checkFailure is the failure rule of __inet_hash_connect, stated without
// the reference's loop: Probes is remaining (the searched size, rounded down
// to even under the parity split), and every port still usable in the
// searched range is one the rounding left out.
func (a *refLinuxConnect) checkFailure(t testing.TB, req *Request, busy model, got Result) {
	t.Helper()
	low, high, local := a.span(req)
	want := high - low + 1
	var skipped []int
	if !local {
		skipped = unexamined(low, high)
		if want > 1 {
			want &^= 1
		}
	}
	require.Equal(t, want, got.Probes, "probes of a failed connect over %d-%d", low, high)
	requireOnlyFree(t, busy, low, high, skipped)
}

// requireOnlyFree fails unless every port of [low, high] that busy does not
// hold is in allowed.
func requireOnlyFree(t testing.TB, busy model, low, high int, allowed []int) {
	t.Helper()
	for p := low; p <= high; p++ {
		if !busy[p] {
			require.True(t, slices.Contains(allowed, p), "failed with port %d usable in %d-%d", p, low, high)
		}
	}
}

// refLinuxBind is inet_csk_find_open_port, port by port, with the
// ip_autobind_reuse retry against a relaxed model.
type refLinuxBind struct {
	r             Range
	rng           *rand.Rand
	autobindReuse bool
}

func newRefLinuxBind(cfg Config) reference {
	return &refLinuxBind{r: cfg.Range, rng: cfg.Rand, autobindReuse: cfg.AutobindReuse}
}

func (a *refLinuxBind) allocate(req *Request, busy model) Result {
	return a.allocateRelaxed(req, busy, nil)
}

// allocateRelaxed runs the search against busy and, when relaxed is not nil
// and ip_autobind_reuse is on, once more against relaxed.
func (a *refLinuxBind) allocateRelaxed(req *Request, busy, relaxed model) Result {
	if req == nil {
		req = &Request{}
	}
	probes := 0
	relax := false
	view := busy
	for { // ports_exhausted:
		attemptHalf := 0
		if req.ReuseAddr {
			attemptHalf = 1
		}
		for { // other_half_scan:
			low, high, _ := refNarrow(a.r, req.LocalRange)
			high++
			if high-low < 4 {
				attemptHalf = 0
			}
			if attemptHalf != 0 {
				half := low + (((high - low) >> 2) << 1)
				if attemptHalf == 1 {
					high = half
				} else {
					low = half
				}
			}
			remaining := high - low
			if remaining > 1 {
				remaining &^= 1
			}
			offset := a.rng.IntN(remaining) | 1
			for { // other_parity_scan:
				port := low + offset
				for i := 0; i < remaining; i, port = i+2, port+2 {
					if port >= high {
						port -= remaining
					}
					probes++
					if !view[port] {
						return Result{Port: uint16(port), Probes: probes, Err: OK}
					}
				}
				offset--
				if offset&1 != 0 {
					break
				}
			}
			if attemptHalf == 1 {
				attemptHalf = 2
				continue
			}
			break
		}
		if a.autobindReuse && !relax && relaxed != nil {
			relax = true
			view = relaxed
			continue
		}
		return Result{Probes: probes, Err: failErrno(req)}
	}
}

// checkFailure is the failure rule of inet_csk_find_open_port without a
// relax pass (runScenario's Busy is not a Relaxer).
func (a *refLinuxBind) checkFailure(t testing.TB, req *Request, busy model, got Result) {
	t.Helper()
	a.checkFailureRelaxed(t, req, busy, got, false)
}

// checkFailureRelaxed states the failure rule: per half searched, two parity
// passes of ceil(remaining/2) iterations each (remaining = the half's size
// rounded down to even), all of it twice when the relax pass ran; and every
// port still usable in the view of the last pass is one the rounding left
// out.
func (a *refLinuxBind) checkFailureRelaxed(t testing.TB, req *Request, view model, got Result, relaxRan bool) {
	t.Helper()
	low, high, _ := refNarrow(a.r, req.LocalRange)
	halves := [][2]int{{low, high}}
	if size := high - low + 1; req != nil && req.ReuseAddr && size >= 4 {
		mid := low + (size>>2)<<1
		halves = [][2]int{{low, mid - 1}, {mid, high}}
	}
	want := 0
	var skipped []int
	for _, h := range halves {
		rem := h[1] - h[0] + 1
		if rem > 1 {
			rem &^= 1
		}
		want += 2 * ((rem + 1) / 2)
		skipped = append(skipped, unexamined(h[0], h[1])...)
	}
	if relaxRan {
		want *= 2
	}
	require.Equal(t, want, got.Probes, "probes of a failed bind(0) over %d-%d", low, high)
	requireOnlyFree(t, view, low, high, skipped)
}

// refLinuxUDP is udp_lib_get_port's loop as the kernel writes it: chains
// first, first+1, ... and within each the ports snum, snum+stride, ... in
// u16 arithmetic, port by port.
type refLinuxUDP struct {
	r    Range
	rng  *rand.Rand
	hash int
}

func newRefLinuxUDP(cfg Config) reference {
	h := cfg.UDPHashSize
	if h == 0 {
		h = DefaultUDPHashSize
	}
	return &refLinuxUDP{r: cfg.Range, rng: cfg.Rand, hash: h}
}

func (a *refLinuxUDP) allocate(req *Request, busy model) Result {
	if req == nil {
		req = &Request{}
	}
	low, high, _ := refNarrow(a.r, req.LocalRange)
	remaining := high - low + 1
	rnd := a.rng.Uint32()
	first := uint16(low + int(uint64(rnd)*uint64(remaining)>>32))
	stride := uint16(uint32(rnd|1) * uint32(a.hash))
	last := first + uint16(a.hash)
	probes := 0
	for f := first; ; {
		for snum := f; ; {
			if p := int(snum); p >= low && p <= high {
				probes++
				if !busy[p] {
					return Result{Port: snum, Probes: probes, Err: OK}
				}
			}
			if snum += stride; snum == f {
				break
			}
		}
		if f++; f == last {
			break
		}
	}
	return Result{Probes: probes, Err: failErrno(req)}
}

// checkFailure: UDP autobind fails only on a full (narrowed) range, after
// covering all of it.
func (a *refLinuxUDP) checkFailure(t testing.TB, req *Request, busy model, got Result) {
	t.Helper()
	low, high, _ := refNarrow(a.r, req.LocalRange)
	require.Equal(t, high-low+1, got.Probes)
	requireOnlyFree(t, busy, low, high, nil)
}

// relaxBusy is a Busy with a relax-mode view (Relaxer): the strict view holds
// every set, the relaxed one leaves out the ports held only by non-listening
// SO_REUSEADDR sockets.
type relaxBusy struct {
	Union
	relaxed Union
}

func (b *relaxBusy) Relaxed() Busy { return &b.relaxed }

// linuxRequests generates requests for the Linux scenarios: a few local and
// remote addresses of both families (IPv4-mapped and unspecified included),
// time that mostly stays within a 10-second epoch and sometimes jumps ahead,
// SO_REUSEADDR and IP_LOCAL_PORT_RANGE with the given probabilities (the
// per-socket range is sometimes partly or wholly outside the netns range, or
// inverted, which inet_sk_get_local_port_range must survive).
type linuxRequests struct {
	rng            *rand.Rand
	r              Range
	now            time.Duration
	reuseP, localP float64
}

var (
	linuxLocals = []netip.Addr{
		netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"),
		netip.MustParseAddr("::ffff:192.0.2.1"), netip.MustParseAddr("2001:db8::1"),
		netip.MustParseAddr("0.0.0.0"), {},
	}
	linuxRemotes = []netip.AddrPort{
		netip.MustParseAddrPort("198.51.100.7:443"), netip.MustParseAddrPort("198.51.100.7:80"),
		netip.MustParseAddrPort("203.0.113.9:443"), netip.MustParseAddrPort("[::ffff:203.0.113.9]:443"),
		netip.MustParseAddrPort("[2001:db8:1::2]:443"), {},
	}
)

func (g *linuxRequests) next(fail Errno) Request {
	if g.rng.IntN(20) == 0 {
		g.now += time.Duration(10+g.rng.IntN(50)) * time.Second
	} else {
		g.now += time.Duration(g.rng.ExpFloat64() * float64(300*time.Millisecond))
	}
	req := Request{
		Local:     linuxLocals[g.rng.IntN(len(linuxLocals))],
		Remote:    linuxRemotes[g.rng.IntN(len(linuxRemotes))],
		Fail:      fail,
		Now:       g.now,
		ReuseAddr: g.rng.Float64() < g.reuseP,
	}
	if g.rng.Float64() < g.localP {
		pick := func() uint16 {
			switch g.rng.IntN(6) {
			case 0:
				return 0
			case 1:
				return uint16(g.rng.IntN(NumPorts))
			default:
				return uint16(int(g.r.Low) + g.rng.IntN(g.r.Size()))
			}
		}
		lo, hi := pick(), pick()
		if lo > hi && g.rng.IntN(4) != 0 {
			lo, hi = hi, lo
		}
		req.LocalRange = Range{lo, hi}
	}
	return req
}

// linuxScenario drives one Linux allocator and its reference through a
// random history of allocations and releases, from a busy pattern of the
// given density, with a relax-mode view when the allocator is linux-bind.
type linuxScenario struct {
	r              Range
	seed           uint64
	density        float64
	clustered      bool
	steps          int
	allocP         float64
	reuseP, localP float64
	autobindReuse  bool
}

// runLinuxScenario checks every result against the reference and the
// invariants (a port inside the searched range, usable in the view the
// allocator may use; failures only as checkFailure allows) and returns how
// many calls succeeded and failed.
func runLinuxScenario(t testing.TB, name string, sc linuxScenario) (ok, failed int) {
	t.Helper()
	rng := newRand(sc.seed, 1)
	var held, reserved, reuse PortSet
	strict, relaxed := newModel(), newModel()
	lo, hi := max(int(sc.r.Low)-130, 0), min(int(sc.r.High)+130, MaxPort)
	fillRandom(rng, relaxed, []*PortSet{&held, &reserved}, lo, hi, sc.density, sc.clustered)
	copy(strict, relaxed)
	// Ports held only by non-listening SO_REUSEADDR sockets: busy unless
	// the bind(0) relax pass runs.
	fillRandom(rng, strict, []*PortSet{&reuse}, lo, hi, sc.density/2, false)
	busy := &relaxBusy{Union: NewUnion(&held, &reserved, &reuse), relaxed: NewUnion(&held, &reserved)}

	cfg := func() Config {
		return Config{Range: sc.r, Rand: newRand(sc.seed, 2), AutobindReuse: sc.autobindReuse}
	}
	a, err := New(name, cfg())
	require.NoError(t, err)
	ref := otherRefs[name](cfg())
	reqs := &linuxRequests{rng: newRand(sc.seed, 3), r: sc.r, reuseP: sc.reuseP, localP: sc.localP}
	errnos := []Errno{EADDRNOTAVAIL, EADDRINUSE, EAGAIN, OK}
	relaxing := name == NameLinuxBind && sc.autobindReuse
	for step := 0; step < sc.steps; step++ {
		if rng.Float64() >= sc.allocP {
			p := int(sc.r.Low) + rng.IntN(sc.r.Size())
			strict[p], relaxed[p] = false, false
			for _, s := range []*PortSet{&held, &reserved, &reuse} {
				s.Remove(p)
			}
			continue
		}
		req := reqs.next(errnos[rng.IntN(len(errnos))])
		got := a.Allocate(&req, busy)
		var want Result
		if rb, isBind := ref.(*refLinuxBind); isBind {
			want = rb.allocateRelaxed(&req, strict, relaxed)
		} else {
			want = ref.allocate(&req, strict)
		}
		require.Equal(t, want, got, "%s %s step %d, request %+v", name, sc.r, step, req)
		if got.Err != OK {
			failed++
			require.Zero(t, got.Port)
			if req.Fail == OK {
				require.Equal(t, EADDRNOTAVAIL, got.Err)
			} else {
				require.Equal(t, req.Fail, got.Err)
			}
			if rb, isBind := ref.(*refLinuxBind); isBind && relaxing {
				rb.checkFailureRelaxed(t, &req, relaxed, got, true)
			} else {
				ref.(failChecker).checkFailure(t, &req, strict, got)
			}
			continue
		}
		ok++
		p := int(got.Port)
		low, high := int(sc.r.Low), int(sc.r.High)
		if name != NameLinuxAlg3 && name != NameLinuxAlg4 {
			low, high, _ = refNarrow(sc.r, req.LocalRange)
		}
		require.True(t, low <= p && p <= high, "port %d outside %d-%d", p, low, high)
		require.GreaterOrEqual(t, got.Probes, 1)
		if relaxing {
			require.False(t, relaxed[p], "port %d busy even in relax mode", p)
		} else {
			require.False(t, strict[p], "port %d was busy", p)
		}
		strict[p], relaxed[p] = true, true
		held.Add(p)
	}
	return ok, failed
}
