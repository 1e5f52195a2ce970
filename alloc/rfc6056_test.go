package alloc

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/dchest/siphash"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/stat/distuv"
)

// refErrno is the errno a reference reports on failure.
func refErrno(req *Request) Errno {
	if req.Fail == OK {
		return EADDRNOTAVAIL
	}
	return req.Fail
}

// refTuple is the hashed input of RFC 6056 F() and G(), built independently
// of tupleHash: local address, remote address (16-byte forms), remote port.
func refTuple(req *Request) []byte {
	l, r := req.Local.As16(), req.Remote.Addr().As16()
	b := append(append(make([]byte, 0, 34), l[:]...), r[:]...)
	return binary.BigEndian.AppendUint16(b, req.Remote.Port())
}

// refRandomPick is RFC 6056 §3.3.2 as a plain loop, with randomPick's
// documented full-range shortcut (after a busy first draw, no free port at
// all ends the call without further draws).
type refRandomPick struct {
	r   Range
	rng *rand.Rand
}

func newRefRandomPick(cfg Config) reference { return &refRandomPick{r: cfg.Range, rng: cfg.Rand} }

func (a *refRandomPick) allocate(req *Request, busy model) Result {
	low, num := int(a.r.Low), a.r.Size()
	for count := 1; count <= num; count++ {
		p := low + a.rng.IntN(num)
		if !busy[p] {
			return Result{Port: uint16(p), Probes: count}
		}
		if count == 1 && busy.freeIn(a.r) == 0 {
			break
		}
	}
	return Result{Probes: num, Err: refErrno(req)}
}

// refHash is RFC 6056 §3.3.3 as written: next_ephemeral++ after every
// candidate, an unbounded counter, offset = F mod num.
type refHash struct {
	r      Range
	k0, k1 uint64
	next   uint64
}

func newRefHash(cfg Config) reference {
	a := &refHash{r: cfg.Range, k0: cfg.Rand.Uint64(), k1: cfg.Rand.Uint64()}
	a.next = uint64(cfg.Rand.IntN(cfg.Range.Size()))
	return a
}

func (a *refHash) allocate(req *Request, busy model) Result {
	num := uint64(a.r.Size())
	offset := siphash.Hash(a.k0, a.k1, refTuple(req)) % num
	for count := 1; count <= int(num); count++ {
		p := int(a.r.Low) + int((a.next+offset)%num)
		a.next++
		if !busy[p] {
			return Result{Port: uint16(p), Probes: count}
		}
	}
	return Result{Probes: int(num), Err: refErrno(req)}
}

// refDoubleHash is RFC 6056 §3.3.4 as written: table[index]++ after every
// candidate, unbounded counters.
type refDoubleHash struct {
	r          Range
	key1, key2 [2]uint64
	table      []uint64
}

func newRefDoubleHash(cfg Config) reference {
	t := cfg.TableSize
	if t == 0 {
		t = 10
	}
	rng := cfg.Rand
	a := &refDoubleHash{r: cfg.Range, key1: [2]uint64{rng.Uint64(), rng.Uint64()}, key2: [2]uint64{rng.Uint64(), rng.Uint64()}}
	for range t {
		a.table = append(a.table, uint64(rng.IntN(cfg.Range.Size())))
	}
	return a
}

func (a *refDoubleHash) allocate(req *Request, busy model) Result {
	num := uint64(a.r.Size())
	offset := siphash.Hash(a.key1[0], a.key1[1], refTuple(req)) % num
	index := siphash.Hash(a.key2[0], a.key2[1], refTuple(req)) % uint64(len(a.table))
	for count := 1; count <= int(num); count++ {
		p := int(a.r.Low) + int((offset+a.table[index])%num)
		a.table[index]++
		if !busy[p] {
			return Result{Port: uint16(p), Probes: count}
		}
	}
	return Result{Probes: int(num), Err: refErrno(req)}
}

// refRandomIncrements is RFC 6056 §3.3.5 as written, unbounded counter.
type refRandomIncrements struct {
	r    Range
	rng  *rand.Rand
	n    int
	next uint64
}

func newRefRandomIncrements(cfg Config) reference {
	n := cfg.Increments
	if n == 0 {
		n = 500
	}
	return &refRandomIncrements{r: cfg.Range, rng: cfg.Rand, n: n, next: uint64(cfg.Rand.IntN(cfg.Range.Size()))}
}

func (a *refRandomIncrements) allocate(req *Request, busy model) Result {
	num := a.r.Size()
	for count := 1; count <= num; count++ {
		a.next += uint64(a.rng.IntN(a.n)) + 1
		p := int(a.r.Low) + int(a.next%uint64(num))
		if !busy[p] {
			return Result{Port: uint16(p), Probes: count}
		}
	}
	return Result{Probes: num, Err: refErrno(req)}
}

// binomialInterval returns the central 1-alpha interval [lo, hi] of the
// number of successes in n Bernoulli(p) trials: lo is the alpha/2 quantile
// and hi the 1-alpha/2 quantile (smallest x with CDF(x) >= q), found by
// bisection on the exact binomial CDF.
func binomialInterval(n int, p, alpha float64) (lo, hi int) {
	b := distuv.Binomial{N: float64(n), P: p}
	quantile := func(q float64) int {
		l, h := 0, n
		for l < h {
			m := (l + h) / 2
			if b.CDF(float64(m)) >= q {
				h = m
			} else {
				l = m + 1
			}
		}
		return l
	}
	return quantile(alpha / 2), quantile(1 - alpha/2)
}

// countEarlyFailures runs n calls of a on a 16-port range with the given
// ports busy and returns how many failed, checking every result.
func countEarlyFailures(t *testing.T, a Allocator, r Range, busy *PortSet, n int) int {
	t.Helper()
	req := Request{Fail: EAGAIN}
	failed := 0
	for range n {
		res := a.Allocate(&req, busy)
		if res.Err != OK {
			require.Equal(t, Result{Probes: r.Size(), Err: EAGAIN}, res)
			failed++
			continue
		}
		require.True(t, r.Contains(int(res.Port)))
		require.False(t, busy.Has(int(res.Port)), "busy port %d", res.Port)
	}
	return failed
}

// TestRandomPickEarlyFailure checks RFC 6056 §3.3.2 / NetBSD
// algo_random_pick's documented weakness: with k of num ports busy, num
// independent uniform draws all miss the free ports with probability
// (k/num)^num, so a call fails while num-k ports are free. The observed
// failure count over n calls must lie in the exact 99.9% binomial interval
// of that formula (fixed seed; do not widen alpha to make it pass).
func TestRandomPickEarlyFailure(t *testing.T) {
	const (
		n     = 200_000
		alpha = 0.001
	)
	r := Range{5000, 5015}
	for _, k := range []int{13, 14} {
		t.Run(fmt.Sprintf("k=%d", k), func(t *testing.T) {
			var busy PortSet
			for _, i := range newRand(uint64(k), 9).Perm(16)[:k] {
				busy.Add(int(r.Low) + i)
			}
			a, err := New(NameRandomPick, Config{Range: r, Rand: newRand(77, uint64(k))})
			require.NoError(t, err)
			p := math.Pow(float64(k)/16, 16)
			lo, hi := binomialInterval(n, p, alpha)
			failed := countEarlyFailures(t, a, r, &busy, n)
			t.Logf("p = (%d/16)^16 = %.5f: %d failures in %d calls, interval [%d, %d]", k, p, failed, n, lo, hi)
			assert.GreaterOrEqual(t, failed, lo)
			assert.LessOrEqual(t, failed, hi)

			// Power: the interval excludes the neighbouring formulas, so
			// an allocator making 15 or 17 draws would be caught.
			for _, draws := range []float64{15, 17} {
				e := n * math.Pow(float64(k)/16, draws)
				assert.False(t, float64(lo) <= e && e <= float64(hi), "interval cannot tell %v draws from 16", draws)
			}
		})
	}
}

// TestRandomPickFullRange: with no free port the call fails with Probes =
// Size (the draws the RFC loop makes) and the request's errno, after one
// draw and one NextFree (randomPick's shortcut, see its doc).
func TestRandomPickFullRange(t *testing.T) {
	r := Range{32768, 60999}
	var full PortSet
	full.AddRange(r)
	a, err := New(NameRandomPick, Config{Range: r, Rand: newRand(3, 3)})
	require.NoError(t, err)
	res := a.Allocate(&Request{Fail: EADDRINUSE}, &full)
	assert.Equal(t, Result{Probes: r.Size(), Err: EADDRINUSE}, res)

	// One draw consumed: the next draw equals the second value of a
	// parallel stream.
	shadow := newRand(3, 3)
	shadow.IntN(r.Size())
	want := int(r.Low) + shadow.IntN(r.Size())
	var empty Union
	got := a.Allocate(&Request{}, &empty)
	assert.Equal(t, Result{Port: uint16(want), Probes: 1}, got)
}

// TestRandomIncrementsEarlyFailure checks RFC 6056 §3.3.5 (NetBSD
// algo_randinc) failing while ports remain. On 16 ports:
//   - N = 16 (a multiple of num): each step 1..16 is uniform mod 16, so the
//     16 candidates are independent and uniform and the failure probability
//     is (k/16)^16, as for random-pick; checked with the exact 99.9%
//     binomial interval.
//   - N = 24: steps are not uniform mod 16, so the chance depends on where
//     the counter stands; for each call it is computed exactly from the
//     current counter by dynamic programming over the 16 probes, and the
//     failure count must lie within 3.29 standard deviations (99.9%,
//     normal approximation of the Poisson-binomial sum) of the sum.
//   - N = 1: the walk is sequential and covers the range, so it never fails
//     while a port is free.
func TestRandomIncrementsEarlyFailure(t *testing.T) {
	const n = 200_000
	r := Range{7000, 7015}
	var busy PortSet
	for _, i := range newRand(13, 13).Perm(16)[:13] {
		busy.Add(int(r.Low) + i)
	}

	t.Run("N=16", func(t *testing.T) {
		a, err := New(NameRandomIncrements, Config{Range: r, Rand: newRand(5, 16), Increments: 16})
		require.NoError(t, err)
		p := math.Pow(13.0/16, 16)
		lo, hi := binomialInterval(n, p, 0.001)
		failed := countEarlyFailures(t, a, r, &busy, n)
		t.Logf("%d failures in %d calls, interval [%d, %d]", failed, n, lo, hi)
		assert.GreaterOrEqual(t, failed, lo)
		assert.LessOrEqual(t, failed, hi)
	})

	t.Run("N=24", func(t *testing.T) {
		const bound = 24
		// step[d] = P(step ≡ d mod 16) for steps 1..24.
		var step [16]float64
		for s := 1; s <= bound; s++ {
			step[s%16] += 1.0 / bound
		}
		// fail[j][c] = P(the next j candidates are all busy | counter c).
		var fail [17][16]float64
		for c := range 16 {
			fail[0][c] = 1
		}
		for j := 1; j <= 16; j++ {
			for c := range 16 {
				for d, pd := range step {
					if c2 := (c + d) % 16; busy.Has(int(r.Low) + c2) {
						fail[j][c] += pd * fail[j-1][c2]
					}
				}
			}
		}
		a, err := New(NameRandomIncrements, Config{Range: r, Rand: newRand(5, 24), Increments: bound})
		require.NoError(t, err)
		ri := a.(*randomIncrements)
		req := Request{}
		mean, variance, failed := 0.0, 0.0, 0
		for range n {
			p := fail[16][ri.next]
			mean += p
			variance += p * (1 - p)
			res := a.Allocate(&req, &busy)
			if res.Err != OK {
				failed++
			} else {
				require.False(t, busy.Has(int(res.Port)))
			}
		}
		z := distuv.UnitNormal.Quantile(1 - 0.001/2)
		t.Logf("%d failures, expected %.1f ± %.1f (z = %.2f)", failed, mean, z*math.Sqrt(variance), z)
		assert.InDelta(t, mean, float64(failed), z*math.Sqrt(variance))
	})

	t.Run("N=1", func(t *testing.T) {
		var one PortSet
		one.AddRange(r)
		one.Remove(7009)
		a, err := New(NameRandomIncrements, Config{Range: r, Rand: newRand(5, 1), Increments: 1})
		require.NoError(t, err)
		for i := range 1000 {
			res := a.Allocate(&Request{}, &one)
			require.Equal(t, OK, res.Err)
			require.Equal(t, uint16(7009), res.Port)
			if i > 0 {
				require.Equal(t, 16, res.Probes, "the walk returns to 7009 after a full lap")
			}
		}
	})
}

// TestRandomIncrementsSteps checks RFC 6056 §3.3.5's step: with nothing busy
// each call makes one probe and moves the port by 1 + random() % N, i.e.
// 1..N (mod num). The steps are independent, so a chi-square test over the
// N values (alpha = 0.001, fixed seed) checks they are uniform; seeing both
// 1 and N catches an off-by-one in the bound.
func TestRandomIncrementsSteps(t *testing.T) {
	const (
		n     = 500_000
		alpha = 0.001
	)
	r := Range{32768, 60999}
	num := r.Size()
	a, err := New(NameRandomIncrements, Config{Range: r, Rand: newRand(11, 11)}) // N = 500 by default
	require.NoError(t, err)
	var empty Union
	req := Request{}
	counts := make([]int, defaultIncrements)
	prev := int(a.Allocate(&req, &empty).Port)
	for range n {
		res := a.Allocate(&req, &empty)
		require.Equal(t, 1, res.Probes)
		d := ((int(res.Port)-prev)%num + num) % num
		require.True(t, d >= 1 && d <= defaultIncrements, "step %d", d)
		counts[d-1]++
		prev = int(res.Port)
	}
	assert.Positive(t, counts[0], "step 1 never seen")
	assert.Positive(t, counts[defaultIncrements-1], "step N never seen")
	stat := chiSquare(counts, float64(n)/defaultIncrements)
	crit := distuv.ChiSquared{K: defaultIncrements - 1}.Quantile(1 - alpha)
	t.Logf("chi-square = %.1f, critical value = %.1f", stat, crit)
	assert.Less(t, stat, crit)
}

var (
	hostA = netip.MustParseAddr("192.0.2.10")
	destA = netip.MustParseAddrPort("198.51.100.1:443")
	destB = netip.MustParseAddrPort("203.0.113.5:443")
)

// ring returns p+k wrapped into r.
func ring(r Range, p, k int) int {
	return int(r.Low) + ((p-int(r.Low)+k)%r.Size()+r.Size())%r.Size()
}

// TestHashSequence checks RFC 6056 §3.3.3's steps with nothing busy: port =
// min + (next_ephemeral + F(tuple)) mod num with one global next_ephemeral
// incremented per candidate. So the k-th call overall, for any destination,
// lands at start(dest) + k: consecutive calls to one destination get
// consecutive ports, and each call to another destination in between skips
// one.
func TestHashSequence(t *testing.T) {
	r := Range{32768, 60999}
	a, err := New(NameHash, Config{Range: r, Rand: newRand(21, 1)})
	require.NoError(t, err)
	var empty Union
	call := func(d netip.AddrPort) int {
		res := a.Allocate(&Request{Local: hostA, Remote: d}, &empty)
		require.Equal(t, OK, res.Err)
		require.Equal(t, 1, res.Probes)
		return int(res.Port)
	}
	a0 := call(destA)
	assert.Equal(t, ring(r, a0, 1), call(destA))
	assert.Equal(t, ring(r, a0, 2), call(destA))
	b3 := call(destB)
	assert.Equal(t, ring(r, a0, 4), call(destA), "the call for B in between moved A on by one")
	assert.Equal(t, ring(r, b3, 2), call(destB), "A's call moved B on by one")
	assert.NotEqual(t, ring(r, a0, 3), b3, "A and B have the same offset")
}

// TestHashOffsets checks that F keys on every element of the 3-tuple and
// spreads destinations over the range (RFC 6056 §3.3.3: different
// destinations get unrelated offsets). offset(dest) = port - k mod num for
// the k-th call. Over 20000 destinations, a chi-square test over 100 equal
// bins (alpha = 0.001) checks the offsets are uniform.
func TestHashOffsets(t *testing.T) {
	r := Range{32768, 60999}
	num := r.Size()
	a, err := New(NameHash, Config{Range: r, Rand: newRand(22, 1)})
	require.NoError(t, err)
	var empty Union
	k := 0
	offset := func(req Request) int {
		res := a.Allocate(&req, &empty)
		require.Equal(t, OK, res.Err)
		o := ((int(res.Port)-int(r.Low)-k)%num + num) % num
		k++
		return o
	}
	base := offset(Request{Local: hostA, Remote: destA})
	require.Equal(t, base, offset(Request{Local: hostA, Remote: destA}), "same tuple, same offset")
	assert.NotEqual(t, base, offset(Request{Local: netip.MustParseAddr("192.0.2.11"), Remote: destA}), "local address ignored")
	assert.NotEqual(t, base, offset(Request{Local: hostA, Remote: netip.AddrPortFrom(destA.Addr(), 80)}), "remote port ignored")
	assert.NotEqual(t, base, offset(Request{Local: hostA, Remote: netip.AddrPortFrom(destB.Addr(), 443)}), "remote address ignored")

	const (
		n     = 20_000
		bins  = 100
		alpha = 0.001
	)
	counts := make([]int, bins)
	for i := range n {
		d := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 443)
		counts[offset(Request{Local: hostA, Remote: d})*bins/num]++
	}
	// Bin b holds the offsets o with o*bins/num == b: 282 or 283 of them, as
	// num = 28232 is not a multiple of 100, so expected counts are exact
	// per bin.
	width := make([]int, bins)
	for o := range num {
		width[o*bins/num]++
	}
	stat := 0.0
	for b, c := range counts {
		e := float64(n) * float64(width[b]) / float64(num)
		stat += (float64(c) - e) * (float64(c) - e) / e
	}
	crit := distuv.ChiSquared{K: bins - 1}.Quantile(1 - alpha)
	t.Logf("chi-square = %.1f, critical value = %.1f", stat, crit)
	assert.Less(t, stat, crit)
}

// TestHashAdvancesByProbes: RFC 6056 §3.3.3 increments next_ephemeral for
// every candidate, not once per call, so after a call that walked over busy
// ports the next call starts past all of them even if they were freed.
func TestHashAdvancesByProbes(t *testing.T) {
	for _, name := range []string{NameHash, NameDoubleHash} {
		t.Run(name, func(t *testing.T) {
			r := Range{32768, 60999}
			a, err := New(name, Config{Range: r, Rand: newRand(23, 1)})
			require.NoError(t, err)
			var held PortSet
			req := Request{Local: hostA, Remote: destA}
			a0 := int(a.Allocate(&req, &held).Port)
			held.Add(a0)
			held.Add(ring(r, a0, 1))
			held.Add(ring(r, a0, 2))
			res := a.Allocate(&req, &held)
			assert.Equal(t, Result{Port: uint16(ring(r, a0, 3)), Probes: 3}, res)
			held.Clear()
			res = a.Allocate(&req, &held)
			assert.Equal(t, Result{Port: uint16(ring(r, a0, 4)), Probes: 1}, res, "counter advanced by one per call, not per probe")
		})
	}
}

// TestHashDeterminism: the key and counter come from Config.Rand only, so the
// same seed gives the same ports and another seed other ports.
func TestHashDeterminism(t *testing.T) {
	r := Range{32768, 60999}
	for _, name := range []string{NameHash, NameDoubleHash} {
		t.Run(name, func(t *testing.T) {
			run := func(seed uint64) []uint16 {
				a, err := New(name, Config{Range: r, Rand: newRand(seed, 4)})
				require.NoError(t, err)
				gen := newScenarioRequests(1)
				var empty Union
				var ports []uint16
				for range 200 {
					req := gen.next(OK)
					ports = append(ports, a.Allocate(&req, &empty).Port)
				}
				return ports
			}
			first := run(1)
			assert.Equal(t, first, run(1))
			other := run(2)
			same := 0
			for i := range first {
				if first[i] == other[i] {
					same++
				}
			}
			assert.LessOrEqual(t, same, 2, "another seed gave the same ports")
		})
	}
}

// destsBySlot returns two destinations in different slots of a and one in the
// same slot as the first, searching over remote ports.
func destsBySlot(t *testing.T, a *doubleHash) (x, y, sameAsX netip.AddrPort) {
	t.Helper()
	slot := func(d netip.AddrPort) int { return a.slot(&Request{Local: hostA, Remote: d}) }
	x = netip.AddrPortFrom(destA.Addr(), 1000)
	for p := uint16(1001); p < 2000 && (!y.IsValid() || !sameAsX.IsValid()); p++ {
		d := netip.AddrPortFrom(destA.Addr(), p)
		if slot(d) == slot(x) {
			if !sameAsX.IsValid() {
				sameAsX = d
			}
		} else if !y.IsValid() {
			y = d
		}
	}
	require.True(t, y.IsValid() && sameAsX.IsValid())
	return x, y, sameAsX
}

// TestDoubleHashSlots checks RFC 6056 §3.3.4's steps with nothing busy:
// port = min + (F(tuple) + table[G(tuple)]) mod num, table[index]++ per
// candidate. Destinations in different slots each get consecutive ports
// however their calls interleave; destinations in the same slot share the
// counter, as all do in Algorithm 3.
func TestDoubleHashSlots(t *testing.T) {
	r := Range{32768, 60999}
	a, err := New(NameDoubleHash, Config{Range: r, Rand: newRand(31, 1)}) // T = 10
	require.NoError(t, err)
	require.Len(t, a.(*doubleHash).table, defaultTableSize)
	x, y, z := destsBySlot(t, a.(*doubleHash))
	var empty Union
	call := func(d netip.AddrPort) int {
		res := a.Allocate(&Request{Local: hostA, Remote: d}, &empty)
		require.Equal(t, OK, res.Err)
		return int(res.Port)
	}
	x0, y0 := call(x), call(y)
	assert.Equal(t, ring(r, x0, 1), call(x))
	assert.Equal(t, ring(r, y0, 1), call(y), "x's calls moved y's counter")
	assert.Equal(t, ring(r, x0, 2), call(x), "y's calls moved x's counter")
	z3 := call(z) // same slot as x: takes x's counter value 3
	assert.Equal(t, ring(r, x0, 4), call(x), "a destination in the same slot did not share the counter")
	assert.Equal(t, ring(r, z3, 2), call(z))
	assert.Equal(t, ring(r, y0, 2), call(y))
}

// TestDoubleHashOneSlot: with TABLE_LENGTH 1 every destination uses the same
// counter, which is Algorithm 3 (RFC 6056 §3.3.3): the k-th call lands at
// start(dest) + k.
func TestDoubleHashOneSlot(t *testing.T) {
	r := Range{32768, 60999}
	num := r.Size()
	a, err := New(NameDoubleHash, Config{Range: r, Rand: newRand(32, 1), TableSize: 1})
	require.NoError(t, err)
	var empty Union
	dests := []netip.AddrPort{destA, destB, netip.MustParseAddrPort("[2001:db8::5]:53")}
	offsets := map[netip.AddrPort]int{}
	rng := newRand(32, 2)
	for k := range 3000 {
		d := dests[rng.IntN(len(dests))]
		res := a.Allocate(&Request{Local: hostA, Remote: d}, &empty)
		require.Equal(t, OK, res.Err)
		o := ((int(res.Port)-int(r.Low)-k)%num + num) % num
		if prev, ok := offsets[d]; ok {
			require.Equal(t, prev, o, "call %d to %s is not at start + %d", k, d, k)
		}
		offsets[d] = o
	}
	assert.Len(t, offsets, 3)
	assert.NotEqual(t, offsets[dests[0]], offsets[dests[1]])
	assert.NotEqual(t, offsets[dests[1]], offsets[dests[2]])
}

// TestKeyedAndTimedNoAllocs: the allocators of this issue allocate nothing
// per call with full tuples (IPv4 and IPv6) and advancing time, on empty,
// busy and full views (the Allocator contract).
func TestKeyedAndTimedNoAllocs(t *testing.T) {
	r := Range{32768, 60999}
	var bound PortSet
	fillRandom(newRand(6, 6), newModel(), []*PortSet{&bound}, int(r.Low), int(r.High), 0.99, false)
	var full PortSet
	full.AddRange(r)
	var empty Union
	busy, fullU := NewUnion(&bound), NewUnion(&full)
	for _, name := range []string{NameRandomPick, NameHash, NameDoubleHash, NameRandomIncrements, NameFreeBSD13} {
		a, err := New(name, Config{Range: r, Rand: newRand(1, 2)})
		require.NoError(t, err)
		gen := newScenarioRequests(7)
		var req Request
		for _, v := range []*Union{&empty, &busy, &fullU} {
			allocs := testing.AllocsPerRun(200, func() {
				req = gen.next(EADDRNOTAVAIL)
				_ = a.Allocate(&req, v)
			})
			assert.Zero(t, allocs, "%s allocates", name)
		}
	}
}
