package alloc

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// NameFreeBSD13 is FreeBSD up to 13.x: in_pcb_lport(_dest) with
// net.inet.ip.portrange.randomized=1 together with the ipport_tick
// rate limiter (randomcps/randomtime), which turns allocation sequential
// while the host allocates ports fast.
const NameFreeBSD13 = "freebsd-13"

const (
	// defaultRandomCPS is net.inet.ip.portrange.randomcps' default.
	defaultRandomCPS = 10
	// defaultRandomTime is net.inet.ip.portrange.randomtime's default.
	defaultRandomTime = 45 * time.Second
)

func init() { register(NameFreeBSD13, newFreeBSD13) }

// freeBSD13 models FreeBSD's port selection as it stood in the 12.x/13.x
// sys/netinet/in_pcb.c (os-semantics.md §5.1, §5.2):
//
// in_pcb_lport / in_pcb_lport_dest, per call:
//
//	dorandom = randomized && !ipport_stoprandom
//	ipport_tcpallocs++                 (every call, also one that fails)
//	if dorandom: *lastport = first + arc4random() % (last - first)
//	count = last - first
//	do { if (count-- < 0) return EADDRNOTAVAIL
//	     ++*lastport; if outside [first, last]: *lastport = first
//	} while (port *lastport is in use)
//
// ipport_tick, a callout once per second:
//
//	if ipport_tcpallocs <= ipport_tcplastcount + randomcps:
//	        if ipport_stoprandom > 0: ipport_stoprandom--
//	else:   ipport_stoprandom = randomtime
//	ipport_tcplastcount = ipport_tcpallocs
//
// So once a second with more than randomcps allocations has been seen,
// allocation continues sequentially from the global lastport (the last port
// examined, shared by all destinations; a random allocation updates it too)
// until randomtime ticks in a row have each seen at most randomcps
// allocations. The limiter is gone from current FreeBSD (present in 13.0,
// absent in 15.0; the removal, probably in 14.x, is unverified:
// os-semantics.md §5.1), which is random-start without it.
//
// Parameters: Config.RandomCPS (randomcps, >= 0, 0 meaning the default 10)
// and Config.RandomTime (randomtime, a whole number of seconds because the
// sysctl is an integer count of ticks, 0 meaning the default 45 s).
//
// Time: ticks happen at every whole second of virtual time, Request.Now;
// a tick at second s counts the calls made in [s-1 s, s) and runs before a
// call made exactly at s. Each call first runs every tick due since the
// previous call, in O(1) (after the first of them, the following ticks see
// no new calls and only count stoprandom down). The first tick, at 0 s,
// has nothing to count, which matches the boot-time callout.
//
// Deviations, stated: the random start is random-start's, uniform over the
// whole range (FreeBSD's pre-incremented arc4random() % (last - first) never
// starts at `first` itself); the counter is per allocator instance, i.e. per
// host and protocol path, so the 12.x quirk that UDP was counted too (the
// "exclude UDP" test is `pcbinfo != &V_udbinfo || pcbinfo !=
// &V_ulitecbinfo`, which is always true) does not arise: a UDP path with its
// own instance does not feed the TCP count. A real kernel's UDP would also
// stay random regardless of stoprandom; that too is a property of the path,
// not modelled here.
//
// Cost: a linear probe done as word-at-a-time NextFree scans (probeFrom),
// O(num/64), in both modes; one random draw per call in random mode, none in
// sequential mode.
//
// Failure: only when no port of the range is free, with req.Fail and
// Probes = num. The call still counts toward the rate, as in the kernel. A
// failed sequential call leaves lastport where it was (num pre-increments
// bring it back); a failed random call leaves it just before the random
// start.
type freeBSD13 struct {
	r   Range
	rng *rand.Rand

	randomCPS  int // net.inet.ip.portrange.randomcps
	randomTime int // net.inet.ip.portrange.randomtime, in ticks (seconds)

	lastport   int   // ipi_lastport; 0 (outside the range) until the first call
	calls      int   // ipport_tcpallocs - ipport_tcplastcount
	stopRandom int   // ipport_stoprandom
	lastTick   int64 // the whole second of the last tick run

	last   lastCall // for Explain
	random bool     // the last call drew a random start
	start  int      // its first candidate
}

// newFreeBSD13 builds "freebsd-13"; cfg.Rand is required, cfg.RandomCPS must
// not be negative and cfg.RandomTime must be a non-negative whole number of
// seconds.
func newFreeBSD13(cfg Config) (Allocator, error) {
	if err := needRand(NameFreeBSD13, cfg.Rand); err != nil {
		return nil, err
	}
	cps := cfg.RandomCPS
	if cps == 0 {
		cps = defaultRandomCPS
	}
	if cps < 0 {
		return nil, fmt.Errorf("alloc: %s: randomcps %d is negative", NameFreeBSD13, cfg.RandomCPS)
	}
	rt := cfg.RandomTime
	if rt == 0 {
		rt = defaultRandomTime
	}
	if rt < 0 || rt%time.Second != 0 {
		return nil, fmt.Errorf("alloc: %s: randomtime %v is not a non-negative whole number of seconds", NameFreeBSD13, cfg.RandomTime)
	}
	return &freeBSD13{r: cfg.Range, rng: cfg.Rand, randomCPS: cps, randomTime: int(rt / time.Second)}, nil
}

func (a *freeBSD13) Name() string { return NameFreeBSD13 }

// tick runs every ipport_tick due at or before now.
func (a *freeBSD13) tick(now time.Duration) {
	sec := int64(now / time.Second)
	if sec <= a.lastTick {
		return
	}
	if a.calls > a.randomCPS {
		a.stopRandom = a.randomTime
	} else if a.stopRandom > 0 {
		a.stopRandom--
	}
	a.calls = 0
	// The remaining ticks see no new calls: each only counts down.
	a.stopRandom -= int(min(sec-a.lastTick-1, int64(a.stopRandom)))
	a.lastTick = sec
}

// Allocate runs the ticks due, counts the call, then probes from a random
// start (stoprandom == 0) or from lastport+1, and leaves lastport on the port
// taken.
func (a *freeBSD13) Allocate(req *Request, busy Busy) Result {
	if req != nil {
		a.tick(req.Now)
	}
	a.calls++
	low, high := int(a.r.Low), int(a.r.High)
	var start int
	if a.stopRandom == 0 {
		start = low + a.rng.IntN(a.r.Size())
		a.lastport = start - 1
	} else if start = a.lastport + 1; start < low || start > high {
		start = low
	}
	a.random, a.start = a.stopRandom == 0, start
	port, probes := probeFrom(a.r, start, busy)
	if port < 0 {
		return a.last.set(Result{Probes: probes, Err: failErrno(req)})
	}
	a.lastport = port
	return a.last.set(Result{Port: uint16(port), Probes: probes, Err: OK})
}

// Explain implements Explainer, e.g. "in_pcb_lport_dest: random start 51234
// (rate 3/s ≤ randomcps 10), linear probe → 51234, 1 candidate probed" or
// "in_pcb_lport_dest: sequential fallback from lastport+1 = 40001
// (stoprandom 44 s left; rate 25/s, randomcps 10), linear probe → 40001, 1
// candidate probed". The rate is the calls counted since the last
// ipport_tick, this one included; the next tick compares it with randomcps.
func (a *freeBSD13) Explain() string {
	l := &a.last
	if !l.done {
		return notYet(NameFreeBSD13)
	}
	var mode string
	switch {
	case !a.random:
		mode = fmt.Sprintf("sequential fallback from lastport+1 = %d (stoprandom %d s left; rate %d/s, randomcps %d)",
			a.start, a.stopRandom, a.calls, a.randomCPS)
	case a.calls > a.randomCPS:
		mode = fmt.Sprintf("random start %d (rate %d/s > randomcps %d: the next ipport_tick turns allocation sequential for %d s)",
			a.start, a.calls, a.randomCPS, a.randomTime)
	default:
		mode = fmt.Sprintf("random start %d (rate %d/s ≤ randomcps %d)", a.start, a.calls, a.randomCPS)
	}
	if l.Err != OK {
		return fmt.Sprintf("in_pcb_lport_dest: %s, linear probe found all %d ports busy → %s", mode, l.Probes, l.Err)
	}
	return fmt.Sprintf("in_pcb_lport_dest: %s, linear probe → %d, %s%s", mode, l.Port, probed(l.Probes), wrapNote(a.r, a.start, int(l.Port)))
}
