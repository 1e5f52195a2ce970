package alloc

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/stat/distuv"
)

func TestErrnoString(t *testing.T) {
	assert.Equal(t, "OK", OK.String())
	assert.Equal(t, "EADDRNOTAVAIL", EADDRNOTAVAIL.String())
	assert.Equal(t, "EADDRINUSE", EADDRINUSE.String())
	assert.Equal(t, "EAGAIN", EAGAIN.String())
	assert.Equal(t, "Errno(200)", Errno(200).String())
	assert.Equal(t, Errno(0), OK, "OK must be the zero value")
}

func TestNames(t *testing.T) {
	assert.Equal(t, []string{"double-hash", "freebsd-13", "hash", "linux", "linux-alg3", "linux-alg4-256", "linux-bind", "linux-udp", "random-increments", "random-pick", "random-start", "sequential"}, Names())
	for _, n := range Names() {
		a, err := New(n, Config{Range: Range{32768, 60999}, Rand: newRand(1, 1)})
		require.NoError(t, err)
		assert.Equal(t, n, a.Name())
	}
}

func TestNewErrors(t *testing.T) {
	good := Range{32768, 60999}
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"nope", Config{Range: good}, `unknown allocator "nope" (known: double-hash, freebsd-13, hash, linux, linux-alg3, linux-alg4-256, linux-bind, linux-udp, random-increments, random-pick, random-start, sequential)`},
		{NameSequential, Config{Range: Range{61000, 32768}}, "low 61000 is above high 32768"},
		{NameSequential, Config{}, "low 0 is below 1"},
		{NameSequential, Config{Range: good, First: 61000}, "first port 61000 is outside range 32768-60999"},
		{NameSequential, Config{Range: good, First: 32767}, "first port 32767 is outside range"},
		{NameSequential, Config{Range: good, First: -1}, "first port -1 is outside range"},
		{NameRandomStart, Config{Range: good}, "Config.Rand is nil"},
		{NameRandomStart, Config{Range: Range{0, 5}, Rand: newRand(1, 1)}, "low 0 is below 1"},
		{NameRandomPick, Config{Range: good}, "random-pick: Config.Rand is nil"},
		{NameHash, Config{Range: good}, "hash: Config.Rand is nil"},
		{NameDoubleHash, Config{Range: good}, "double-hash: Config.Rand is nil"},
		{NameDoubleHash, Config{Range: good, Rand: newRand(1, 1), TableSize: -1}, "table size -1 is outside 1..65536"},
		{NameDoubleHash, Config{Range: good, Rand: newRand(1, 1), TableSize: 65537}, "table size 65537 is outside 1..65536"},
		{NameRandomIncrements, Config{Range: good}, "random-increments: Config.Rand is nil"},
		{NameRandomIncrements, Config{Range: good, Rand: newRand(1, 1), Increments: -5}, "increment bound -5 is not positive"},
		{NameFreeBSD13, Config{Range: good}, "freebsd-13: Config.Rand is nil"},
		{NameFreeBSD13, Config{Range: good, Rand: newRand(1, 1), RandomCPS: -1}, "randomcps -1 is negative"},
		{NameFreeBSD13, Config{Range: good, Rand: newRand(1, 1), RandomTime: -time.Second}, "randomtime -1s is not a non-negative whole number of seconds"},
		{NameFreeBSD13, Config{Range: good, Rand: newRand(1, 1), RandomTime: 1500 * time.Millisecond}, "randomtime 1.5s is not"},
	}
	for _, tt := range tests {
		t.Run(tt.name+"/"+tt.wantErr, func(t *testing.T) {
			a, err := New(tt.name, tt.cfg)
			require.ErrorContains(t, err, tt.wantErr)
			assert.Nil(t, a)
		})
	}
	_, err := New("nope", Config{})
	assert.ErrorIs(t, err, ErrUnknownAllocator)
}

// reference is a naive model of one allocator: the same specification as the
// real allocator, implemented as the port-by-port loop the kernels use.
type reference interface {
	allocate(req *Request, busy model) Result
}

// otherRefs builds the references of allocators refAllocator does not
// cover, from the Config the allocator under test gets (so they draw their
// keys and counters from an identical stream).
var otherRefs = map[string]func(Config) reference{
	NameRandomPick:       newRefRandomPick,
	NameHash:             newRefHash,
	NameDoubleHash:       newRefDoubleHash,
	NameRandomIncrements: newRefRandomIncrements,
	NameFreeBSD13:        newRefFreeBSD13,
	NameLinuxAlg3:        newRefLinuxConnect(eraHint),
	NameLinuxAlg4:        newRefLinuxConnect(eraTable256),
	NameLinux:            newRefLinuxConnect(eraTable64K),
	NameLinuxBind:        newRefLinuxBind,
	NameLinuxUDP:         newRefLinuxUDP,
}

// failChecker is implemented by references whose allocators fail by rules
// of their own (the Linux selectors round an odd-sized range down to an even
// number of candidates, linux_ref_test.go); runScenario lets them check a
// failure instead of requiring no free port and Probes = Size.
type failChecker interface {
	checkFailure(t testing.TB, req *Request, busy model, got Result)
}

// failsEarly lists the allocators that may fail while usable ports remain
// (RFC 6056 §3.3.2 and §3.3.5: they keep no record of the ports tried).
var failsEarly = map[string]bool{NameRandomPick: true, NameRandomIncrements: true}

// refAllocator is the naive reference: the same specification as the real
// allocators, implemented as the port-by-port loop the kernels and ns-3 use.
type refAllocator struct {
	name string
	r    Range
	next int        // sequential
	rng  *rand.Rand // random-start
}

func (a *refAllocator) allocate(req *Request, busy model) Result {
	low, high, size := int(a.r.Low), int(a.r.High), a.r.Size()
	start := a.next
	if a.name == NameRandomStart {
		start = low + a.rng.IntN(size)
	}
	p := start
	for probes := 1; probes <= size; probes++ {
		if !busy[p] {
			if a.name == NameSequential {
				a.next = p + 1
				if a.next > high {
					a.next = low
				}
			}
			return Result{Port: uint16(p), Probes: probes, Err: OK}
		}
		p++
		if p > high {
			p = low
		}
	}
	fail := req.Fail
	if fail == OK {
		fail = EADDRNOTAVAIL
	}
	return Result{Probes: size, Err: fail}
}

// scenario drives one allocator and its reference through the same random
// history of allocations (which occupy the chosen port) and releases.
type scenario struct {
	r         Range
	first     int
	seed      uint64
	density   float64 // initial busy fraction around the range
	clustered bool
	nsets     int     // 1..4 PortSets behind the Union
	steps     int     // allocate/release steps
	allocP    float64 // probability that a step allocates (else it releases)
}

// runScenario returns how many allocations succeeded and failed, after
// checking every result against the reference and the invariants: a
// successful port is in range and was not busy; a failure happens only when no
// port of the range is free (except for failsEarly allocators), with Probes =
// Size and the request's errno. Requests vary destination and time
// (scenarioRequests) so keyed and rate-limited allocators change state.
func runScenario(t testing.TB, name string, sc scenario) (ok, failed int) {
	t.Helper()
	rng := newRand(sc.seed, 1)
	sets := make([]*PortSet, sc.nsets)
	for k := range sets {
		sets[k] = new(PortSet)
	}
	m := newModel()
	// Fill a margin outside the range too: bits sharing a word with the
	// range ends must not leak into the result.
	lo, hi := max(int(sc.r.Low)-130, 0), min(int(sc.r.High)+130, MaxPort)
	fillRandom(rng, m, sets, lo, hi, sc.density, sc.clustered)
	u := NewUnion(sets...)

	a, err := New(name, Config{Range: sc.r, First: sc.first, Rand: newRand(sc.seed, 2)})
	require.NoError(t, err)
	var ref reference
	if mk, ok := otherRefs[name]; ok {
		ref = mk(Config{Range: sc.r, First: sc.first, Rand: newRand(sc.seed, 2)})
	} else {
		ra := &refAllocator{name: name, r: sc.r, next: sc.first, rng: newRand(sc.seed, 2)}
		if ra.next == 0 {
			ra.next = int(sc.r.Low)
		}
		ref = ra
	}
	reqs := newScenarioRequests(sc.seed)
	errnos := []Errno{EADDRNOTAVAIL, EADDRINUSE, EAGAIN, OK}
	for step := 0; step < sc.steps; step++ {
		if rng.Float64() >= sc.allocP {
			p := int(sc.r.Low) + rng.IntN(sc.r.Size())
			m[p] = false
			for _, s := range sets {
				s.Remove(p)
			}
			continue
		}
		req := reqs.next(errnos[rng.IntN(len(errnos))])
		got := a.Allocate(&req, &u)
		want := ref.allocate(&req, m)
		require.Equal(t, want, got, "%s %s step %d", name, sc.r, step)
		if got.Err == OK {
			ok++
			require.True(t, sc.r.Contains(int(got.Port)), "port %d out of range", got.Port)
			require.False(t, m[got.Port], "port %d was busy", got.Port)
			require.GreaterOrEqual(t, got.Probes, 1)
			require.LessOrEqual(t, got.Probes, sc.r.Size())
			m[got.Port] = true
			sets[rng.IntN(len(sets))].Add(int(got.Port))
		} else {
			failed++
			if fc, ok := ref.(failChecker); ok {
				fc.checkFailure(t, &req, m, got)
			} else {
				if !failsEarly[name] {
					require.Zero(t, m.freeIn(sc.r), "failed with free ports left")
				}
				require.Equal(t, sc.r.Size(), got.Probes)
			}
			require.Zero(t, got.Port)
			if req.Fail == OK {
				require.Equal(t, EADDRNOTAVAIL, got.Err)
			} else {
				require.Equal(t, req.Fail, got.Err)
			}
		}
	}
	return ok, failed
}

// TestAllocatorsAgainstReference runs every allocator through random busy
// patterns, from empty to completely full, on small, word-aligned,
// word-straddling and full-size ranges.
func TestAllocatorsAgainstReference(t *testing.T) {
	ranges := []struct {
		r     Range
		first int
	}{
		{Range{1, 1}, 0},
		{Range{65535, 65535}, 0},
		{Range{1, 64}, 5},
		{Range{63, 65}, 65},
		{Range{60, 200}, 0},
		{Range{1000, 1999}, 1999},
		{Range{65472, 65535}, 0},
		{Range{49152, 65535}, 49153},
		{Range{32768, 60999}, 0},
		{Range{1, 65535}, 65535},
	}
	type pattern struct {
		density   float64
		clustered bool
	}
	patterns := []pattern{{0, false}, {0.5, false}, {0.9, true}, {0.99, false}, {0.999, true}, {1, false}}
	for _, name := range Names() {
		for ri, rr := range ranges {
			for pi, pat := range patterns {
				size := rr.r.Size()
				// Enough allocations to drive each range to exhaustion from
				// its initial density, then keep churning around it.
				steps := min(int(float64(size)*(1-pat.density)*1.6)+200, 3000)
				sc := scenario{
					r: rr.r, first: rr.first, seed: uint64(ri*100 + pi),
					density: pat.density, clustered: pat.clustered,
					nsets: 1 + (ri+pi)%4, steps: steps, allocP: 0.85,
				}
				t.Run(fmt.Sprintf("%s/%s/d%g", name, rr.r, pat.density), func(t *testing.T) {
					ok, failed := runScenario(t, name, sc)
					assert.Positive(t, ok, "never allocated")
					if steps < 3000 {
						// Uncapped runs have enough allocations to use up
						// every free port, so the failure path ran too.
						assert.Positive(t, failed, "never reached exhaustion")
					}
				})
			}
		}
	}
}

// TestSequentialNS3 checks the ns-3 sequence: with First = 49153 over
// 49152-65535 the ports are 49153, 49154, ..., 65535, then 49152, 49153, ...
func TestSequentialNS3(t *testing.T) {
	r := Range{49152, 65535}
	a, err := New(NameSequential, Config{Range: r, First: 49153})
	require.NoError(t, err)
	var none Union
	req := Request{Fail: EADDRNOTAVAIL}
	want := 49153
	for i := 0; i < 2*r.Size()+10; i++ {
		res := a.Allocate(&req, &none)
		require.Equal(t, Result{Port: uint16(want), Probes: 1, Err: OK}, res, "allocation %d", i)
		want++
		if want > 65535 {
			want = 49152
		}
	}
}

// TestSequentialExhaustion holds every port (as ns-3 endpoints would), checks
// the failure and that the counter did not move, then frees one port.
func TestSequentialExhaustion(t *testing.T) {
	r := Range{49152, 65535}
	a, err := New(NameSequential, Config{Range: r, First: 49153})
	require.NoError(t, err)
	var held PortSet
	u := NewUnion(&held)
	req := Request{Fail: EADDRNOTAVAIL}
	for i := 0; i < r.Size(); i++ {
		res := a.Allocate(&req, &u)
		require.Equal(t, OK, res.Err)
		held.Add(int(res.Port))
	}
	require.Equal(t, r.Size(), held.CountIn(r))
	res := a.Allocate(&req, &u)
	assert.Equal(t, Result{Port: 0, Probes: r.Size(), Err: EADDRNOTAVAIL}, res)
	res = a.Allocate(&Request{Fail: EADDRINUSE}, &u)
	assert.Equal(t, EADDRINUSE, res.Err)
	res = a.Allocate(nil, &u)
	assert.Equal(t, EADDRNOTAVAIL, res.Err, "a nil request must not fail with OK")

	// Last port handed out was 49152, so the counter is at 49153; freeing
	// 50000 makes it the answer after walking 49153..50000.
	held.Remove(50000)
	res = a.Allocate(&req, &u)
	assert.Equal(t, Result{Port: 50000, Probes: 50000 - 49153 + 1, Err: OK}, res)
	held.Add(50000)
	// Counter now at 50001: freeing 49200 needs a wrap.
	held.Remove(49200)
	res = a.Allocate(&req, &u)
	assert.Equal(t, Result{Port: 49200, Probes: (65535 - 50001 + 1) + (49200 - 49152) + 1, Err: OK}, res)
}

// chiSquare returns Pearson's statistic for observed counts against equal
// expected counts.
func chiSquare(counts []int, expected float64) float64 {
	x := 0.0
	for _, c := range counts {
		d := float64(c) - expected
		x += d * d / expected
	}
	return x
}

// TestRandomStartUniform is a chi-square goodness-of-fit test of
// random-start's port over an empty busy set on a 1000-port range: RFC 6056
// §3.3.1 requires the start to be uniform over the range.
//
// Significance alpha = 0.001 (df = 999); the critical value is the
// chi-square quantile, not a tuned number. The seed is fixed, so the test is
// deterministic; if it fails, the generator is biased (or the seed hit the
// 0.1% tail; do not widen alpha to make it pass).
func TestRandomStartUniform(t *testing.T) {
	const (
		alpha = 0.001
		n     = 1_000_000
	)
	r := Range{10000, 10999}
	k := r.Size()
	crit := distuv.ChiSquared{K: float64(k - 1)}.Quantile(1 - alpha)

	a, err := New(NameRandomStart, Config{Range: r, Rand: newRand(20260101, 7)})
	require.NoError(t, err)
	var empty Union
	req := Request{Fail: EADDRNOTAVAIL}
	counts := make([]int, k)
	for i := 0; i < n; i++ {
		res := a.Allocate(&req, &empty)
		require.Equal(t, 1, res.Probes)
		counts[int(res.Port)-int(r.Low)]++
	}
	stat := chiSquare(counts, float64(n)/float64(k))
	t.Logf("chi-square = %.1f, critical value (df=%d, alpha=%g) = %.1f", stat, k-1, alpha, crit)
	assert.Less(t, stat, crit, "random-start is not uniform")

	// Negative control: the same test must reject a start that is never
	// Low (the first+1.. start of FreeBSD's pre-incremented loop). If it did
	// not, the test above would be too weak to mean anything.
	rng := newRand(20260101, 7)
	for i := range counts {
		counts[i] = 0
	}
	for i := 0; i < n; i++ {
		counts[1+rng.IntN(k-1)]++
	}
	biased := chiSquare(counts, float64(n)/float64(k))
	t.Logf("negative control chi-square = %.1f", biased)
	assert.Greater(t, biased, crit, "chi-square test cannot see a missing port")
}

// TestRandomStartClustering checks the bias linear probing must produce
// (RFC 6056 §3.3.1; ip-sysctl.rst on ip_local_reserved_ports): with a busy
// run of b ports, the port right after it is chosen with probability
// (b+1)/Size and every other free port with 1/Size. Chi-square over the free
// ports, alpha = 0.001.
func TestRandomStartClustering(t *testing.T) {
	const (
		alpha = 0.001
		n     = 500_000
	)
	r := Range{2000, 2499}
	var busy PortSet
	busy.AddRange(Range{2100, 2149}) // b = 50: port 2150 gets 51/500
	busy.AddRange(Range{2490, 2499}) // run at the top wraps to Low: 2000 gets 11/500
	u := NewUnion(&busy)
	a, err := New(NameRandomStart, Config{Range: r, Rand: newRand(99, 1)})
	require.NoError(t, err)

	counts := make(map[int]int)
	req := Request{Fail: EADDRNOTAVAIL}
	for i := 0; i < n; i++ {
		res := a.Allocate(&req, &u)
		require.Equal(t, OK, res.Err)
		counts[int(res.Port)]++
	}
	stat, free := 0.0, 0
	for p := int(r.Low); p <= int(r.High); p++ {
		if busy.Has(p) {
			require.Zero(t, counts[p], "busy port %d chosen", p)
			continue
		}
		free++
		w := 1.0
		switch p {
		case 2150:
			w = 51
		case 2000:
			w = 11
		}
		e := float64(n) * w / float64(r.Size())
		d := float64(counts[p]) - e
		stat += d * d / e
	}
	crit := distuv.ChiSquared{K: float64(free - 1)}.Quantile(1 - alpha)
	t.Logf("chi-square = %.1f, critical value (df=%d) = %.1f", stat, free-1, crit)
	assert.Less(t, stat, crit)
}

// TestAllocateNoAllocs checks the hot path allocates nothing, for every
// allocator, on empty, busy and full views.
func TestAllocateNoAllocs(t *testing.T) {
	r := Range{32768, 60999}
	var bound, reserved PortSet
	fillRandom(newRand(5, 5), newModel(), []*PortSet{&bound, &reserved}, int(r.Low), int(r.High), 0.99, false)
	var full PortSet
	full.AddRange(r)
	var empty Union
	busy, fullU := NewUnion(&bound, &reserved), NewUnion(&full)
	for _, name := range Names() {
		a, err := New(name, Config{Range: r, Rand: newRand(1, 2)})
		require.NoError(t, err)
		req := Request{Fail: EADDRNOTAVAIL}
		for _, v := range []*Union{&empty, &busy, &fullU} {
			allocs := testing.AllocsPerRun(200, func() { _ = a.Allocate(&req, v) })
			assert.Zero(t, allocs, "%s allocates", name)
		}
	}
}

// misbehavingBusy breaks the Busy contract: every span answer is port 7.
type misbehavingBusy struct{}

func (misbehavingBusy) Has(int) bool                   { return false }
func (misbehavingBusy) NextFree(_, _ int) int          { return 7 }
func (misbehavingBusy) NextFreeParity(_, _, _ int) int { return 7 }
func (misbehavingBusy) CountFree(_, _ int) int         { return 1 }
func (misbehavingBusy) NthFree(_, _, _ int) int        { return 7 }

func TestBrokenBusyPanics(t *testing.T) {
	a, err := New(NameSequential, Config{Range: Range{100, 200}})
	require.NoError(t, err)
	assert.PanicsWithValue(t, "alloc: Busy.NextFree(100, 200) returned 7, outside the span", func() {
		a.Allocate(&Request{}, misbehavingBusy{})
	})
}

// FuzzAllocators runs random scenarios (range, first port, density, shape,
// number of sets, history length) through every allocator and its reference.
// Ranges are capped at 8192 ports so one input stays in the millisecond range.
func FuzzAllocators(f *testing.F) {
	f.Add(uint64(1), uint16(32768), uint16(33767), uint16(0), uint8(230), uint8(200), uint8(1))
	f.Add(uint64(2), uint16(1), uint16(1), uint16(0), uint8(0), uint8(10), uint8(4))
	f.Add(uint64(3), uint16(65535), uint16(65472), uint16(65500), uint8(255), uint8(100), uint8(2))
	f.Add(uint64(4), uint16(49152), uint16(65535), uint16(49153), uint8(254), uint8(255), uint8(3))
	f.Fuzz(func(t *testing.T, seed uint64, low, high, first uint16, density, steps, shape uint8) {
		if low > high {
			low, high = high, low
		}
		low = max(low, 1)
		high = max(high, low)
		if int(high)-int(low) >= 8192 {
			high = uint16(int(low) + 8191)
		}
		r := Range{low, high}
		fp := int(first)
		if !r.Contains(fp) {
			fp = 0 // Range.Low
		}
		sc := scenario{
			r: r, first: fp, seed: seed,
			density:   float64(density) / 255,
			clustered: shape&4 != 0,
			nsets:     1 + int(shape&3),
			steps:     1 + int(steps)*4,
			allocP:    0.6 + float64(shape>>3)/31*0.39,
		}
		for _, name := range Names() {
			runScenario(t, name, sc)
		}
	})
}

// NumErrnos sizes arrays indexed by Errno: every value below it has a name.
func TestNumErrnos(t *testing.T) {
	var counts [NumErrnos]uint64
	for e := range Errno(len(counts)) {
		assert.NotContains(t, e.String(), "Errno(", "Errno %d has no name", e)
	}
	assert.Equal(t, "Errno(7)", NumErrnos.String())
}
