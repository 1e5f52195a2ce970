package alloc

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// refFreeBSD13 is FreeBSD 12.x/13.x in_pcb_lport plus ipport_tick written
// out as in the kernel: one tick at a time, the tcpallocs/tcplastcount pair,
// and the ++*lastport loop with its wrap to `first`. Its random start is
// random-start's (Low + IntN(Size), i.e. *lastport = start - 1), the
// documented deviation of freebsd-13.
type refFreeBSD13 struct {
	r                     Range
	rng                   *rand.Rand
	randomCPS, randomTime int

	lastport                int
	tcpallocs, tcplastcount int
	stoprandom              int
	lastTick                int64
}

func newRefFreeBSD13(cfg Config) reference {
	return &refFreeBSD13{r: cfg.Range, rng: cfg.Rand, randomCPS: 10, randomTime: 45}
}

func (a *refFreeBSD13) allocate(req *Request, busy model) Result {
	for sec := a.lastTick + 1; sec <= int64(req.Now/time.Second); sec++ { // ipport_tick
		if a.tcpallocs <= a.tcplastcount+a.randomCPS {
			if a.stoprandom > 0 {
				a.stoprandom--
			}
		} else {
			a.stoprandom = a.randomTime
		}
		a.tcplastcount = a.tcpallocs
		a.lastTick = sec
	}
	first, last := int(a.r.Low), int(a.r.High)
	dorandom := a.stoprandom == 0
	a.tcpallocs++
	if dorandom {
		a.lastport = first + a.rng.IntN(a.r.Size()) - 1
	}
	count := last - first
	probes := 0
	for {
		if count < 0 {
			return Result{Probes: probes, Err: refErrno(req)}
		}
		count--
		a.lastport++
		if a.lastport < first || a.lastport > last {
			a.lastport = first
		}
		probes++
		if !busy[a.lastport] {
			return Result{Port: uint16(a.lastport), Probes: probes}
		}
	}
}

// fbsdClock drives a freebsd-13 allocator at given virtual times over an
// empty view and reports whether each call continued from the previous port.
type fbsdClock struct {
	t    *testing.T
	a    Allocator
	r    Range
	busy Busy
	prev int
}

func newFBSDClock(t *testing.T, cfg Config) *fbsdClock {
	a, err := New(NameFreeBSD13, cfg)
	require.NoError(t, err)
	return &fbsdClock{t: t, a: a, r: cfg.Range, busy: &Union{}, prev: -1}
}

// at allocates at now and reports whether the port is the previous one + 1
// (wrapping High -> Low): the sequential mode's *lastport += 1.
func (c *fbsdClock) at(now time.Duration) (sequential bool) {
	c.t.Helper()
	res := c.a.Allocate(&Request{Now: now}, c.busy)
	require.Equal(c.t, OK, res.Err, "at %v", now)
	p := int(res.Port)
	sequential = c.prev >= 0 && p == ring(c.r, c.prev, 1)
	c.prev = p
	return sequential
}

const ms = time.Millisecond

// TestFreeBSD13SwitchTimes checks the ipport_tick rule (FreeBSD 12.x/13.x
// sys/netinet/in_pcb.c) at the default randomcps = 10, randomtime = 45:
// 20 allocations/s during [0 s, 3 s), then 5/s until 60 s. Ticks 1, 2 and 3
// each see 20 > 10 and set stoprandom = 45; ticks 4..48 each see 5 <= 10 and
// count it down to 0 at tick 48. So calls before 1 s are random, calls in
// [1 s, 48 s) continue from the last port (the first of them from the last
// random port), and calls from 48 s on (the tick runs before a call at the
// same instant) are random again.
func TestFreeBSD13SwitchTimes(t *testing.T) {
	c := newFBSDClock(t, Config{Range: Range{10000, 65535}, Rand: newRand(41, 1)})
	check := func(now time.Duration) {
		wantSeq := now >= 1*time.Second && now < 48*time.Second
		got := c.at(now)
		require.Equal(t, wantSeq, got, "at %v: sequential = %v, want %v", now, got, wantSeq)
	}
	for now := time.Duration(0); now < 3*time.Second; now += 50 * ms {
		check(now)
	}
	for now := 3 * time.Second; now < 60*time.Second; now += 200 * ms {
		check(now)
	}
}

// TestFreeBSD13LowRateStaysRandom: at 5 allocations/s no tick ever sees more
// than randomcps = 10, so every allocation draws a fresh random start; no
// two consecutive ports follow each other (chance 1/55536 per pair).
func TestFreeBSD13LowRateStaysRandom(t *testing.T) {
	c := newFBSDClock(t, Config{Range: Range{10000, 65535}, Rand: newRand(42, 1)})
	for now := time.Duration(0); now < 120*time.Second; now += 200 * ms {
		require.False(t, c.at(now), "at %v the port followed the previous one", now)
	}
}

// TestFreeBSD13Threshold: ipport_tick compares with <=, so exactly randomcps
// allocations in a second keep random allocation and randomcps+1 stop it,
// for the default and for a configured randomcps.
func TestFreeBSD13Threshold(t *testing.T) {
	for _, tc := range []struct {
		cps, calls int
		wantSeq    bool
	}{{0, 10, false}, {0, 11, true}, {3, 3, false}, {3, 4, true}} {
		c := newFBSDClock(t, Config{Range: Range{10000, 65535}, Rand: newRand(43, uint64(tc.calls)), RandomCPS: tc.cps})
		for i := range tc.calls {
			c.at(time.Duration(i) * 90 * ms)
		}
		assert.Equal(t, tc.wantSeq, c.at(time.Second), "randomcps %d, %d calls in the first second", tc.cps, tc.calls)
	}
}

// TestFreeBSD13CatchUp: ticks due while no calls were made are all run on
// the next call. After 20 calls in [0 s, 1 s), tick 1 sets stoprandom = 45
// and ticks 2..46 count it down, so a call at 45.5 s is still sequential
// (ticks 2..45 leave 1) and one at 46 s is random; with randomtime = 3 s
// the same burst ends at tick 4.
func TestFreeBSD13CatchUp(t *testing.T) {
	for _, tc := range []struct {
		randomTime time.Duration
		lastSeq    time.Duration // a call here is still sequential
		firstRand  time.Duration // a call here is random again
	}{{0, 45500 * ms, 46 * time.Second}, {3 * time.Second, 3999 * ms, 4 * time.Second}} {
		c := newFBSDClock(t, Config{Range: Range{10000, 65535}, Rand: newRand(44, 1), RandomTime: tc.randomTime})
		for now := time.Duration(0); now < time.Second; now += 50 * ms {
			c.at(now)
		}
		assert.True(t, c.at(tc.lastSeq), "randomtime %v: call at %v", tc.randomTime, tc.lastSeq)
		for i := range 3 {
			now := tc.firstRand + time.Duration(i)*100*ms
			assert.False(t, c.at(now), "randomtime %v: call at %v", tc.randomTime, now)
		}
	}
}

// TestFreeBSD13FailedCallsCount: in_pcb_lport increments ipport_tcpallocs
// before its loop, so calls that fail with EADDRNOTAVAIL on a full range
// count toward randomcps too.
func TestFreeBSD13FailedCallsCount(t *testing.T) {
	r := Range{10000, 65535}
	for _, tc := range []struct {
		fails   int
		wantSeq bool
	}{{10, false}, {11, true}} {
		a, err := New(NameFreeBSD13, Config{Range: r, Rand: newRand(45, uint64(tc.fails))})
		require.NoError(t, err)
		var full PortSet
		full.AddRange(r)
		for i := range tc.fails {
			res := a.Allocate(&Request{Now: time.Duration(i) * 90 * ms}, &full)
			require.Equal(t, Result{Probes: r.Size(), Err: EADDRNOTAVAIL}, res)
		}
		var empty Union
		p := int(a.Allocate(&Request{Now: time.Second}, &empty).Port)
		q := int(a.Allocate(&Request{Now: 1100 * ms}, &empty).Port)
		assert.Equal(t, tc.wantSeq, q == ring(r, p, 1), "%d failed calls in the first second", tc.fails)
	}
}

// TestFreeBSD13SequentialSkipsBusy: in sequential mode the walk starts at
// *lastport + 1, skips busy ports, and leaves *lastport on the port taken
// (in_pcb_lport's do ... while loop), so ports freed behind it are not
// revisited until the counter comes round.
func TestFreeBSD13SequentialSkipsBusy(t *testing.T) {
	r := Range{10000, 65535}
	a, err := New(NameFreeBSD13, Config{Range: r, Rand: newRand(46, 1)})
	require.NoError(t, err)
	var held PortSet
	for i := range 11 {
		res := a.Allocate(&Request{Now: time.Duration(i) * 90 * ms}, &held)
		require.Equal(t, OK, res.Err)
	}
	x := int(a.Allocate(&Request{Now: time.Second}, &held).Port) // sequential from here on
	held.Add(x)
	held.Add(ring(r, x, 1))
	held.Add(ring(r, x, 2))
	res := a.Allocate(&Request{Now: 1100 * ms}, &held)
	assert.Equal(t, Result{Port: uint16(ring(r, x, 3)), Probes: 3}, res)
	held.Clear()
	res = a.Allocate(&Request{Now: 1200 * ms}, &held)
	assert.Equal(t, Result{Port: uint16(ring(r, x, 4)), Probes: 1}, res)
}

// TestFreeBSD13Wrap: the sequential walk wraps from `last` to `first`
// (*lastport outside [first, last] is reset to first).
func TestFreeBSD13Wrap(t *testing.T) {
	r := Range{100, 103}
	a, err := New(NameFreeBSD13, Config{Range: r, Rand: newRand(47, 1)})
	require.NoError(t, err)
	var empty Union
	for i := range 11 {
		a.Allocate(&Request{Now: time.Duration(i) * 90 * ms}, &empty)
	}
	p := int(a.Allocate(&Request{Now: time.Second}, &empty).Port)
	for i := 1; i <= 9; i++ {
		res := a.Allocate(&Request{Now: time.Second + time.Duration(i)*ms}, &empty)
		require.Equal(t, Result{Port: uint16(100 + (p-100+i)%4), Probes: 1}, res)
	}
}

// BenchmarkFreeBSD13Sequential is BenchmarkAllocate for freebsd-13 while it
// is in its sequential mode (1000 calls per virtual second, far above
// randomcps). BenchmarkAllocate itself keeps Now = 0 and so measures the
// random mode.
func BenchmarkFreeBSD13Sequential(b *testing.B) {
	r := Range{32768, 60999}
	for _, lv := range []struct {
		name string
		frac float64
	}{{"empty", 0}, {"90pct", 0.9}, {"99.9pct", 0.999}} {
		b.Run(lv.name, func(b *testing.B) {
			held, reserved := benchBusy(r, lv.frac), new(PortSet)
			u := NewUnion(held, reserved)
			a, err := New(NameFreeBSD13, Config{Range: r, Rand: newRand(1, 2)})
			if err != nil {
				b.Fatal(err)
			}
			req := Request{Fail: EADDRNOTAVAIL}
			for range 2000 { // two seconds at 1000/s: stoprandom is set
				req.Now += ms
				a.Allocate(&req, &u)
			}
			probes, n := 0, 0
			b.ReportAllocs()
			for b.Loop() {
				req.Now += ms
				res := a.Allocate(&req, &u)
				probes += res.Probes
				n++
			}
			b.ReportMetric(float64(probes)/float64(n), "probes/op")
		})
	}
}
