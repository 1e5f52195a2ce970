package alloc

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/stat/distuv"
)

// linuxRange is the Linux default ip_local_port_range, 32768-60999: 28232
// ports, 14116 of each parity, low end even.
var linuxRange = Range{32768, 60999}

var linuxNames = []string{NameLinuxAlg3, NameLinuxAlg4, NameLinux, NameLinuxBind, NameLinuxUDP}

func newLinux(t testing.TB, name string, cfg Config) Allocator {
	t.Helper()
	if cfg.Range == (Range{}) {
		cfg.Range = linuxRange
	}
	if cfg.Rand == nil {
		cfg.Rand = newRand(7, 7)
	}
	a, err := New(name, cfg)
	require.NoError(t, err)
	return a
}

// connectTo returns a connect() request from 192.0.2.1 to dst at now.
func connectTo(dst string, now time.Duration) Request {
	return Request{
		Local:  netip.MustParseAddr("192.0.2.1"),
		Remote: netip.MustParseAddrPort(dst),
		Now:    now,
		Fail:   EADDRNOTAVAIL,
	}
}

// dest returns the i-th of many distinct destinations.
func dest(i int) string { return fmt.Sprintf("198.51.%d.%d:443", 100+i/250, 1+i%250) }

// circ is the distance from a to b walking up through r, wrapping.
func circ(r Range, a, b int) int { return ((b-a)%r.Size() + r.Size()) % r.Size() }

// near reports whether a and b are within d of each other around r.
func near(r Range, a, b, d int) bool { return circ(r, a, b) <= d || circ(r, b, a) <= d }

func TestLinuxNewErrors(t *testing.T) {
	for _, name := range linuxNames {
		a, err := New(name, Config{Range: linuxRange})
		require.ErrorContains(t, err, name+": Config.Rand is nil")
		assert.Nil(t, a)
		a = newLinux(t, name, Config{})
		assert.Equal(t, name, a.Name())
	}
}

// TestLinuxAgainstReference runs every Linux allocator against its naive
// reference through histories that reach and stay at exhaustion, with
// SO_REUSEADDR, IP_LOCAL_PORT_RANGE and ip_autobind_reuse, on even- and
// odd-sized ranges (the odd ones exercise the kernel's rounding of
// remaining down to even).
func TestLinuxAgainstReference(t *testing.T) {
	ranges := []Range{{1, 1}, {1, 2}, {5, 7}, {63, 65}, {60, 200}, {1000, 1999}, {65472, 65535}, {32768, 61000}, {32768, 60999}}
	densities := []float64{0, 0.5, 0.9, 0.999, 1}
	for _, name := range linuxNames {
		for ri, r := range ranges {
			for di, d := range densities {
				sc := linuxScenario{
					r: r, seed: uint64(ri*100 + di), density: d, clustered: di%2 == 1,
					steps:  min(int(float64(r.Size())*(1-d)*1.6)+200, 3000),
					allocP: 0.85, reuseP: 0.5, localP: 0.3, autobindReuse: (ri+di)%2 == 0,
				}
				t.Run(fmt.Sprintf("%s/%s/d%g", name, r, d), func(t *testing.T) {
					ok, failed := runLinuxScenario(t, name, sc)
					assert.Positive(t, ok, "never allocated")
					if sc.steps < 3000 {
						assert.Positive(t, failed, "never reached exhaustion")
					}
				})
			}
		}
	}
}

// FuzzLinuxAllocators is the Linux counterpart of FuzzAllocators, with the
// request options the shared scenarios leave out (SO_REUSEADDR,
// IP_LOCAL_PORT_RANGE, a relax-mode view for ip_autobind_reuse).
func FuzzLinuxAllocators(f *testing.F) {
	f.Add(uint64(1), uint16(32768), uint16(33767), uint8(230), uint8(200), uint8(0x11))
	f.Add(uint64(2), uint16(1), uint16(1), uint8(0), uint8(10), uint8(0x0f))
	f.Add(uint64(3), uint16(65535), uint16(65473), uint8(255), uint8(100), uint8(0xa2))
	f.Add(uint64(4), uint16(32768), uint16(40000), uint8(254), uint8(255), uint8(0x37))
	f.Fuzz(func(t *testing.T, seed uint64, low, high uint16, density, steps, shape uint8) {
		if low > high {
			low, high = high, low
		}
		low = max(low, 1)
		high = max(high, low)
		if int(high)-int(low) >= 8192 {
			high = uint16(int(low) + 8191)
		}
		sc := linuxScenario{
			r: Range{low, high}, seed: seed, density: float64(density) / 255,
			clustered: shape&1 != 0, steps: 1 + int(steps)*4,
			allocP: 0.6 + float64(shape>>4)/15*0.39,
			reuseP: float64(shape>>1&1) * 0.7, localP: float64(shape>>2&1) * 0.5,
			autobindReuse: shape&8 != 0,
		}
		for _, name := range linuxNames {
			runLinuxScenario(t, name, sc)
		}
	})
}

// TestLinuxConnectEvenPortsFirst follows __inet_hash_connect of Linux 5.18+
// (commit 1580ab63fc9a's parity split, kept by the 2022 series): with the
// even low end 32768 every even port is a candidate before any odd port.
// With every even port busy the connect must succeed on an odd port after
// all 14116 even candidates, Probes = 14116 + k, the k-1 odd candidates
// before it (stepping down by 2, wrapping) busy; with one even port free
// among free odd ports it must take the even one.
func TestLinuxConnectEvenPortsFirst(t *testing.T) {
	r := linuxRange
	a := newLinux(t, NameLinux, Config{})
	var held PortSet
	for p := int(r.Low); p <= int(r.High); p += 2 {
		held.Add(p)
	}
	rng := newRand(3, 3)
	for p := int(r.Low) + 1; p <= int(r.High); p += 2 {
		if rng.IntN(4) != 0 {
			held.Add(p)
		}
	}
	u := NewUnion(&held)
	for i := 0; i < 300; i++ {
		req := connectTo(dest(i), time.Duration(i)*time.Second)
		res := a.Allocate(&req, &u)
		require.Equal(t, OK, res.Err)
		p := int(res.Port)
		require.Equal(t, 1, p%2, "connect %d took an even port", i)
		require.False(t, held.Has(p))
		k := res.Probes - 14116
		require.GreaterOrEqual(t, k, 1, "connect %d: odd port before the even pass ended", i)
		for j := 1; j < k; j++ {
			q := int(r.Low) + circ(r, int(r.Low), p-2*j)
			require.True(t, held.Has(q), "connect %d: odd candidate %d was free but skipped", i, q)
		}
	}

	// One free even port, every odd port free: the even pass finds it.
	for i := 0; i < 50; i++ {
		var evens PortSet
		for p := int(r.Low); p <= int(r.High); p += 2 {
			evens.Add(p)
		}
		free := int(r.Low) + 2*rng.IntN(r.Size()/2)
		evens.Remove(free)
		v := NewUnion(&evens)
		req := connectTo(dest(i), 0)
		res := a.Allocate(&req, &v)
		require.Equal(t, OK, res.Err)
		require.Equal(t, free, int(res.Port))
		require.LessOrEqual(t, res.Probes, 14116)
	}
}

// TestLinuxBindOddPortsFirst follows inet_csk_find_open_port (4.6+, odd
// offset): the reverse of connect. With every odd port busy bind(0) ends on
// an even port with Probes = 14116 + k; with one odd port free among free
// even ports it takes the odd one; with nothing busy every port is odd.
func TestLinuxBindOddPortsFirst(t *testing.T) {
	r := linuxRange
	a := newLinux(t, NameLinuxBind, Config{})
	var held PortSet
	for p := int(r.Low) + 1; p <= int(r.High); p += 2 {
		held.Add(p)
	}
	rng := newRand(4, 4)
	for p := int(r.Low); p <= int(r.High); p += 2 {
		if rng.IntN(4) != 0 {
			held.Add(p)
		}
	}
	u := NewUnion(&held)
	req := Request{Fail: EADDRINUSE}
	for i := 0; i < 300; i++ {
		res := a.Allocate(&req, &u)
		require.Equal(t, OK, res.Err)
		p := int(res.Port)
		require.Equal(t, 0, p%2, "bind %d took an odd port", i)
		k := res.Probes - 14116
		require.GreaterOrEqual(t, k, 1)
		for j := 1; j < k; j++ {
			q := int(r.Low) + circ(r, int(r.Low), p-2*j)
			require.True(t, held.Has(q), "bind %d: even candidate %d was free but skipped", i, q)
		}
	}
	var odds PortSet
	for p := int(r.Low) + 1; p <= int(r.High); p += 2 {
		odds.Add(p)
	}
	odds.Remove(45001)
	v := NewUnion(&odds)
	for i := 0; i < 20; i++ {
		res := a.Allocate(&req, &v)
		require.Equal(t, 45001, int(res.Port))
	}
	var none Union
	for i := 0; i < 1000; i++ {
		res := a.Allocate(&req, &none)
		require.Equal(t, Result{Port: res.Port, Probes: 1, Err: OK}, res)
		require.Equal(t, 1, int(res.Port)%2)
	}
}

// TestLinuxConnectIncrementsWithinEpoch follows __inet_hash_connect of Linux
// 5.18+ (commit ca7af0402550): with nothing busy, i = 0 and the table slot
// advances by max(0, rand_below(8)·2) + 2, so consecutive connects to one
// destination within one 10-second epoch are 2, 4, ..., 16 ports apart, each
// distance equally likely (chi-square, alpha = 0.001, df = 7).
func TestLinuxConnectIncrementsWithinEpoch(t *testing.T) {
	r := linuxRange
	a := newLinux(t, NameLinux, Config{})
	var none Union
	const n = 40000
	t0 := epochStart(t, a) + time.Second
	req := connectTo("198.51.100.7:443", t0)
	prev := int(a.Allocate(&req, &none).Port)
	counts := map[int]int{}
	for i := 0; i < n; i++ {
		req.Now = t0 + time.Duration(i)*100*time.Microsecond // stays in one epoch (4 s)
		res := a.Allocate(&req, &none)
		require.Equal(t, 1, res.Probes)
		p := int(res.Port)
		require.Equal(t, 0, p%2)
		counts[circ(r, prev, p)]++
		prev = p
	}
	var observed []int
	for d := 2; d <= 16; d += 2 {
		require.Positive(t, counts[d], "distance %d never seen", d)
		observed = append(observed, counts[d])
		delete(counts, d)
	}
	require.Empty(t, counts, "distances other than 2..16")
	stat := chiSquare(observed, n/8.0)
	crit := distuv.ChiSquared{K: 7}.Quantile(0.999)
	t.Logf("distances 2..16: %v, chi-square %.1f (critical %.1f)", observed, stat, crit)
	assert.Less(t, stat, crit)
}

// epochStart is when the second 10-second epoch of a Linux 5.18+ connect()
// allocator begins: its boot phase comes from the secret.
func epochStart(t *testing.T, a Allocator) time.Duration {
	t.Helper()
	lc, ok := a.(*linuxConnect)
	require.True(t, ok)
	return shufflePeriod - time.Duration(lc.key.k1%uint64(shufflePeriod))
}

// TestLinuxConnectNewEpochAndDestination follows secure_ipv4_port_ephemeral
// of Linux 5.18+ (commit 4dfa9b438ee3, the 10-second time seed) and the
// 2^16 table (4c2c8f03a5ab): the next connect in the same epoch is 2-16
// ports on, while a connect in the next epoch, or to another destination,
// starts from an unrelated offset. Unrelated means uniform: such a port
// lands within 16 of the last one (17 of the 14116 even distances) only by
// chance, so over n trials the number of near misses must not exceed the
// binomial 0.999 quantile; a time seed or a table that did nothing would
// make all n of them near.
func TestLinuxConnectNewEpochAndDestination(t *testing.T) {
	const n = 300
	r := linuxRange
	a := newLinux(t, NameLinux, Config{})
	var none Union
	port := func(dst string, now time.Duration) int {
		req := connectTo(dst, now)
		return int(a.Allocate(&req, &none).Port)
	}
	nearEpoch, nearDest := 0, 0
	t0 := epochStart(t, a)
	for e := 0; e < n; e++ {
		now := t0 + time.Duration(e)*10*time.Second + 3*time.Second
		p1 := port("198.51.100.7:443", now)
		p2 := port("198.51.100.7:443", now+6*time.Second) // same epoch
		d := circ(r, p1, p2)
		require.True(t, d >= 2 && d <= 16, "epoch %d: same-epoch step %d", e, d)
		if near(r, p2, port("198.51.100.7:443", now+10*time.Second), 16) { // next epoch
			nearEpoch++
		}
		if near(r, p2, port(dest(e+1), now+6*time.Second), 16) { // another destination
			nearDest++
		}
	}
	chance := distuv.Binomial{N: n, P: 17.0 / 14116}
	limit := 0
	for chance.CDF(float64(limit)) < 0.999 {
		limit++
	}
	t.Logf("within 16 of the last port: next epoch %d, other destination %d of %d (limit %d)", nearEpoch, nearDest, n, limit)
	assert.LessOrEqual(t, nearEpoch, limit, "a new epoch does not move the offset")
	assert.LessOrEqual(t, nearDest, limit, "another destination does not get its own offset")
}

// TestLinuxConnectLocalRange follows __inet_hash_connect of Linux 6.8+
// (commit 207184853dbd) with inet_sk_get_local_port_range: with
// IP_LOCAL_PORT_RANGE set the range is narrowed and scanned in one step-1
// pass, with no parity split.
func TestLinuxConnectLocalRange(t *testing.T) {
	// The narrowing rules: each bound only if inside the netns range.
	for _, tt := range []struct {
		lr        Range
		low, high int
		set       bool
	}{
		{Range{}, 32768, 60999, false},
		{Range{40000, 40999}, 40000, 40999, true},
		{Range{1000, 40000}, 32768, 40000, true},
		{Range{40000, 65000}, 40000, 60999, true},
		{Range{0, 50000}, 32768, 50000, true},
		{Range{50000, 0}, 50000, 60999, true},
		{Range{50000, 40000}, 50000, 60999, true}, // inverted: high falls below the new low
		{Range{1, 2}, 32768, 60999, true},
	} {
		low, high, set := localPortRange(linuxRange, tt.lr)
		assert.Equal(t, []any{tt.low, tt.high, tt.set}, []any{low, high, set}, "IP_LOCAL_PORT_RANGE %v", tt.lr)
	}

	lr := Range{40000, 40999}
	a := newLinux(t, NameLinux, Config{})
	var none Union
	req := connectTo("198.51.100.7:443", 5*time.Second)
	req.LocalRange = lr
	prev := int(a.Allocate(&req, &none).Port)
	seen := map[int]bool{}
	for i := 0; i < 2000; i++ {
		res := a.Allocate(&req, &none)
		p := int(res.Port)
		require.True(t, lr.Contains(p))
		seen[circ(lr, prev, p)] = true // i = max(0, rand_below(8)·1), += i + 1
		prev = p
	}
	assert.Equal(t, map[int]bool{1: true, 2: true, 3: true, 4: true, 5: true, 6: true, 7: true, 8: true}, seen)

	// Every even port of the narrowed range busy and half the odd ones: a
	// step-1 scan, so the port is found after walking only the busy ports
	// right before it, whatever their parity.
	var held PortSet
	rng := newRand(8, 8)
	for p := int(lr.Low); p <= int(lr.High); p++ {
		if p%2 == 0 || rng.IntN(2) == 0 {
			held.Add(p)
		}
	}
	u := NewUnion(&held)
	for i := 0; i < 200; i++ {
		req := connectTo(dest(i), time.Duration(i)*time.Second)
		req.LocalRange = lr
		res := a.Allocate(&req, &u)
		require.Equal(t, OK, res.Err)
		p := int(res.Port)
		require.True(t, lr.Contains(p) && !held.Has(p))
		require.Less(t, res.Probes, 500, "a parity split would walk 500 even ports first")
		for j := 1; j < res.Probes; j++ {
			require.True(t, held.Has(int(lr.Low)+circ(lr, int(lr.Low), p-j)))
		}
	}
}

// TestLinuxConnectOddRange documents a kernel quirk the model keeps
// (__inet_hash_connect, every era since 4.6): remaining = high - low is
// rounded down to even, so with an odd-sized range such as "32768 61000"
// (28233 ports) one port of low's parity is never a candidate in a given
// call: High when the offset is 0, Low otherwise. With only Low free most
// connects fail after 28232 probes; with only High free a connect fails
// only when its offset is 0 (1 in 14116 calls; none of these 100).
func TestLinuxConnectOddRange(t *testing.T) {
	r := Range{32768, 61000}
	for _, name := range []string{NameLinuxAlg3, NameLinuxAlg4, NameLinux} {
		a := newLinux(t, name, Config{Range: r})
		for _, free := range []int{int(r.Low), int(r.High)} {
			var held PortSet
			held.AddRange(r)
			held.Remove(free)
			u := NewUnion(&held)
			failed := 0
			for i := 0; i < 100; i++ {
				req := connectTo(dest(i), time.Duration(i)*time.Second)
				res := a.Allocate(&req, &u)
				if res.Err != OK {
					require.Equal(t, Result{Probes: 28232, Err: EADDRNOTAVAIL}, res)
					failed++
					continue
				}
				require.Equal(t, free, int(res.Port))
			}
			if free == int(r.Low) {
				assert.Greater(t, failed, 90, "%s: only Low free", name)
			} else {
				assert.Zero(t, failed, "%s: only High free", name)
			}
		}
	}
}

// TestLinuxAlg3GlobalHint follows __inet_hash_connect of Linux 4.6-5.11
// (RFC 6056 §3.3.3 Algorithm 3, one `static u32 hint`): consecutive connects
// to one destination are exactly 2 ports apart (hint += 0 + 2), and a
// connect to any other destination in between moves them 2 further, because
// the hint is shared: the leak RFC 6056 §3.3.3 warns about and commit
// 190cc82489f4 removed. Time plays no part before 5.18.
func TestLinuxAlg3GlobalHint(t *testing.T) {
	r := linuxRange
	a := newLinux(t, NameLinuxAlg3, Config{})
	var none Union
	port := func(dst string, now time.Duration) int {
		req := connectTo(dst, now)
		res := a.Allocate(&req, &none)
		require.Equal(t, 1, res.Probes)
		return int(res.Port)
	}
	prev := port("198.51.100.7:443", 0)
	for i := 1; i < 100; i++ {
		p := port("198.51.100.7:443", time.Duration(i)*7*time.Second)
		require.Equal(t, 2, circ(r, prev, p), "connect %d", i)
		prev = p
	}
	// Interleave k connects elsewhere: the next port to A moves 2 + 2k.
	for k := 1; k <= 5; k++ {
		for j := 0; j < k; j++ {
			port(dest(10*k+j), 0)
		}
		p := port("198.51.100.7:443", 0)
		require.Equal(t, 2+2*k, circ(r, prev, p), "after %d connects to other destinations", k)
		prev = p
	}
	// And the other way: B's ports reveal how many connects A made.
	b1 := port("203.0.113.9:80", 0)
	for j := 0; j < 3; j++ {
		port("198.51.100.7:443", 0)
	}
	assert.Equal(t, 2+2*3, circ(r, b1, port("203.0.113.9:80", 0)))
}

// TestLinuxAlg4Slots follows __inet_hash_connect of Linux 5.12-5.17 (commit
// 190cc82489f4, table_perturb[256] indexed by hash_32(port_offset, 8)): two
// destinations whose indices differ advance independently by 2, while two
// that share an index (likely among a few dozen, with 256 slots) advance
// each other, which is what made the small table attackable
// (CVE-2022-1012).
func TestLinuxAlg4Slots(t *testing.T) {
	r := linuxRange
	a := newLinux(t, NameLinuxAlg4, Config{})
	lc := a.(*linuxConnect)
	index := func(dst string) uint32 {
		req := connectTo(dst, 0)
		return hash32(uint32(lc.key.portOffset(&req, false)), 8)
	}
	var none Union
	port := func(dst string, now time.Duration) int {
		req := connectTo(dst, now)
		return int(a.Allocate(&req, &none).Port)
	}
	A := "198.51.100.7:443"
	var B, C string
	for i := 0; B == "" || C == ""; i++ {
		switch d := dest(i); {
		case index(d) != index(A) && B == "":
			B = d
		case index(d) == index(A) && d != A && C == "":
			C = d
		}
	}
	pa, pb := port(A, 0), port(B, 0)
	for i := 1; i < 50; i++ {
		now := time.Duration(i) * 9 * time.Second // no time seed before 5.18
		qa, qb := port(A, now), port(B, now)
		require.Equal(t, 2, circ(r, pa, qa), "A, round %d", i)
		require.Equal(t, 2, circ(r, pb, qb), "B, round %d", i)
		pa, pb = qa, qb
	}
	port(C, 0)
	assert.Equal(t, 4, circ(r, pa, port(A, 0)), "a connect to C, same slot, must move A by 2 more")
	assert.Equal(t, uint32(0x61), hash32(1, 8), "hash_32(1, 8) = GOLDEN_RATIO_32 >> 24")
}

// TestLinuxBindLowerHalfFirst follows inet_csk_find_open_port (attempt_half):
// with SO_REUSEADDR the lower half [32768, 46884) is searched first, odd
// then even, then the upper half with a new offset; without it the whole
// range.
func TestLinuxBindLowerHalfFirst(t *testing.T) {
	r := linuxRange
	mid := int(r.Low) + 14116
	a := newLinux(t, NameLinuxBind, Config{})
	var none Union
	reuse := Request{Fail: EADDRINUSE, ReuseAddr: true}
	plain := Request{Fail: EADDRINUSE}
	upper := 0
	for i := 0; i < 2000; i++ {
		p := int(a.Allocate(&reuse, &none).Port)
		require.True(t, p < mid && p%2 == 1, "SO_REUSEADDR bind(0) took %d", p)
		if a.Allocate(&plain, &none).Port >= uint16(mid) {
			upper++
		}
	}
	assert.InDelta(t, 1000, upper, 150, "without SO_REUSEADDR about half the ports should be in the upper half")

	// Lower half full: two parity passes of 7058 there, then the upper half.
	var low PortSet
	low.AddRange(Range{r.Low, uint16(mid - 1)})
	u := NewUnion(&low)
	for i := 0; i < 100; i++ {
		res := a.Allocate(&reuse, &u)
		require.True(t, int(res.Port) >= mid && res.Port%2 == 1)
		assert.Equal(t, 14116+1, res.Probes)
	}
}

// TestLinuxBindRelax follows inet_csk_find_open_port's ports_exhausted retry
// under net.ipv4.ip_autobind_reuse: when every port is busy for a strict
// bind, a second full search runs against the Relaxer view, only with
// Config.AutobindReuse and only if the Busy offers that view.
func TestLinuxBindRelax(t *testing.T) {
	r := linuxRange
	var all, allButTwo PortSet
	all.AddRange(r)
	allButTwo.AddRange(r)
	allButTwo.Remove(40001)
	allButTwo.Remove(50000)
	busy := &relaxBusy{Union: NewUnion(&all), relaxed: NewUnion(&allButTwo)}
	req := Request{Fail: EADDRINUSE}

	strict := newLinux(t, NameLinuxBind, Config{})
	assert.Equal(t, Result{Probes: 28232, Err: EADDRINUSE}, strict.Allocate(&req, busy), "relax pass without ip_autobind_reuse")

	relax := newLinux(t, NameLinuxBind, Config{AutobindReuse: true})
	for i := 0; i < 20; i++ {
		res := relax.Allocate(&req, busy)
		require.Equal(t, 40001, int(res.Port), "odd first in the relax pass too")
		require.Greater(t, res.Probes, 28232)
		require.LessOrEqual(t, res.Probes, 28232+14116)
	}
	plainView := NewUnion(&all)
	assert.Equal(t, Result{Probes: 28232, Err: EADDRINUSE}, relax.Allocate(&req, &plainView), "no Relaxer, no relax pass")

	// With SO_REUSEADDR both searches go half by half: 2·28232 on failure.
	var full PortSet
	full.AddRange(r)
	none := &relaxBusy{Union: NewUnion(&full), relaxed: NewUnion(&full)}
	reuse := Request{Fail: EADDRINUSE, ReuseAddr: true}
	assert.Equal(t, Result{Probes: 2 * 28232, Err: EADDRINUSE}, relax.Allocate(&reuse, none))
}

// TestLinuxUDPUniform checks udp_lib_get_port's first candidate: with
// nothing busy the port is first = low + reciprocal_scale(rand, 500), uniform
// over the range (chi-square, alpha = 0.001 from gonum's quantile, fixed
// seed). With a busy run the walk is a linear probe from first (a 500-port
// range has one port per chain of a 16384-entry table), so the port just
// after the run takes the run's share too: 2150 is chosen with probability
// 51/450 of the free-port draws' starts, not 1/400; the count must lie in
// the binomial 99.9 % interval.
func TestLinuxUDPUniform(t *testing.T) {
	const n = 300_000
	r := Range{2000, 2499}
	var none PortSet
	nu := NewUnion(&none)
	a := newLinux(t, NameLinuxUDP, Config{Range: r, Rand: newRand(11, 11)})
	req := Request{Fail: EAGAIN}
	counts := make([]int, r.Size())
	for i := 0; i < n; i++ {
		res := a.Allocate(&req, &nu)
		require.Equal(t, OK, res.Err)
		require.Equal(t, 1, res.Probes)
		counts[int(res.Port)-int(r.Low)]++
	}
	stat := chiSquare(counts, float64(n)/float64(r.Size()))
	crit := distuv.ChiSquared{K: float64(r.Size() - 1)}.Quantile(0.999)
	t.Logf("first port over %d ports: chi-square %.1f, critical value %.1f", r.Size(), stat, crit)
	assert.Less(t, stat, crit)

	var busy PortSet
	busy.AddRange(Range{2100, 2149})
	u := NewUnion(&busy)
	hits := 0
	for i := 0; i < n; i++ {
		res := a.Allocate(&req, &u)
		require.Equal(t, OK, res.Err)
		require.False(t, busy.Has(int(res.Port)))
		if res.Port == 2150 {
			hits++
		}
	}
	// first is uniform over 500 ports; 2150 is taken when first is in
	// 2100-2150: p = 51/500.
	lo, hi := binomialInterval(n, 51.0/500, 0.001)
	t.Logf("2150 chosen %d times, 99.9 %% interval [%d, %d]", hits, lo, hi)
	assert.True(t, hits >= lo && hits <= hi, "linear probe after a busy run")

	// Full range: EAGAIN after covering it; a per-socket range narrows it.
	var full PortSet
	full.AddRange(r)
	fu := NewUnion(&full)
	assert.Equal(t, Result{Probes: 500, Err: EAGAIN}, a.Allocate(&req, &fu))
	req.LocalRange = Range{2200, 2209}
	for i := 0; i < 100; i++ {
		p := int(a.Allocate(&req, &u).Port)
		require.True(t, p >= 2200 && p <= 2209 && !busy.Has(p), "port %d", p)
	}
}

// TestLinuxPortOffsetInputs checks what secure_ipv4_port_ephemeral and
// secure_ipv6_port_ephemeral key on: IPv4-mapped addresses hash as IPv4
// (the v4 path), the epoch counts only with the time seed (5.18+) and only
// per 10 s, for both families.
func TestLinuxPortOffsetInputs(t *testing.T) {
	k := newNetSecret(newRand(1, 1))
	v4 := connectTo("198.51.100.7:443", 0)
	mapped := Request{Local: netip.MustParseAddr("::ffff:192.0.2.1"), Remote: netip.MustParseAddrPort("[::ffff:198.51.100.7]:443")}
	assert.Equal(t, k.portOffset(&v4, true), k.portOffset(&mapped, true))
	other := connectTo("198.51.100.7:80", 0)
	assert.NotEqual(t, k.portOffset(&v4, true), k.portOffset(&other, true))
	v6 := Request{Local: netip.MustParseAddr("2001:db8::1"), Remote: netip.MustParseAddrPort("[2001:db8:1::2]:443")}
	for _, req := range []Request{v4, v6} {
		base, pre := k.portOffset(&req, true), k.portOffset(&req, false)
		// The first epoch ends 10 s minus the boot phase into the run.
		next := 10*time.Second - time.Duration(k.k1%uint64(10*time.Second))
		req.Now = next - 1
		assert.Equal(t, base, k.portOffset(&req, true), "same epoch")
		req.Now = next
		assert.NotEqual(t, base, k.portOffset(&req, true), "next epoch")
		req.Now = next + 10*time.Second - 1
		assert.Equal(t, k.portOffset(&req, true), func() uint64 { r := req; r.Now = next; return k.portOffset(&r, true) }(), "epochs last 10 s")
		assert.Equal(t, pre, k.portOffset(&req, false), "no time seed before 5.18")
	}
}

// TestLinuxNoAllocs checks the Linux hot paths allocate nothing with full
// requests: both families, a per-socket range, SO_REUSEADDR and the relax
// pass.
func TestLinuxNoAllocs(t *testing.T) {
	var held, all PortSet
	fillRandom(newRand(5, 5), newModel(), []*PortSet{&held}, 32768, 60999, 0.99, false)
	all.AddRange(linuxRange)
	busy := &relaxBusy{Union: NewUnion(&all), relaxed: NewUnion(&held)}
	reqs := []Request{
		connectTo("198.51.100.7:443", 3*time.Second),
		{Local: netip.MustParseAddr("2001:db8::1"), Remote: netip.MustParseAddrPort("[2001:db8:1::2]:443"), ReuseAddr: true, Fail: EADDRINUSE},
		{Local: netip.MustParseAddr("192.0.2.1"), Remote: netip.MustParseAddrPort("198.51.100.7:80"), LocalRange: Range{40000, 50000}, Fail: EAGAIN},
	}
	for _, name := range linuxNames {
		a := newLinux(t, name, Config{AutobindReuse: true})
		for i := range reqs {
			allocs := testing.AllocsPerRun(100, func() { _ = a.Allocate(&reqs[i], busy) })
			assert.Zero(t, allocs, "%s allocates", name)
		}
		assert.NotPanics(t, func() { a.Allocate(nil, busy) }, "%s: nil request", name)
	}
}

// TestLinuxBrokenBusyPanics: a Busy that answers outside the span it was
// asked about (misbehavingBusy says 7) must stop the simulation, not hand
// out its port, on every Linux search path.
func TestLinuxBrokenBusyPanics(t *testing.T) {
	local := connectTo("198.51.100.7:443", 0)
	local.LocalRange = Range{40000, 40999}
	for _, tt := range []struct {
		name, method string
		req          Request
	}{
		{NameLinuxAlg3, "NextFreeParity", Request{}},
		{NameLinux, "NextFreeParity", Request{}},
		{NameLinux, "NextFree", local},
		{NameLinuxBind, "NextFreeParity", Request{ReuseAddr: true}},
	} {
		a := newLinux(t, tt.name, Config{})
		var msg any
		func() {
			defer func() { msg = recover() }()
			a.Allocate(&tt.req, misbehavingBusy{})
		}()
		assert.Contains(t, fmt.Sprint(msg), "alloc: Busy."+tt.method+" over [", tt.name)
		assert.Contains(t, fmt.Sprint(msg), "returned 7, which it may not", tt.name)
	}
}

// TestLinuxAlg4TableSize checks the enlarged-table what-if: a power of two
// up to 2^16 is accepted for linux-alg4-256 and indexes that many slots; the
// other Linux eras refuse a table size.
func TestLinuxAlg4TableSize(t *testing.T) {
	r := Range{Low: 32768, High: 60999}
	for _, tc := range []struct {
		name string
		size int
		ok   bool
	}{
		{NameLinuxAlg4, 0, true}, {NameLinuxAlg4, 2, true}, {NameLinuxAlg4, 65536, true},
		{NameLinuxAlg4, 1, false}, {NameLinuxAlg4, 300, false}, {NameLinuxAlg4, 1 << 17, false},
		{NameLinux, 256, false}, {NameLinuxAlg3, 256, false},
	} {
		a, err := New(tc.name, Config{Range: r, Rand: rand.New(rand.NewPCG(1, 2)), TableSize: tc.size})
		if !tc.ok {
			require.Error(t, err, "%s size %d", tc.name, tc.size)
			continue
		}
		require.NoError(t, err, "%s size %d", tc.name, tc.size)
		want := tc.size
		if want == 0 {
			want = 256
		}
		assert.Len(t, a.(*linuxConnect).table, want)
	}
}
