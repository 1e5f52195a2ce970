package alloc

import (
	"fmt"
	"math/rand/v2"
)

// randomStart is RFC 6056 §3.3.1 Algorithm 1, Simple Port Randomization:
// every allocation draws a fresh uniform start in the range and probes
// linearly from it, wrapping High -> Low, until a suitable port is found or
// all num = High-Low+1 ports were tried. No state is kept between calls.
//
// Stacks that do this (os-semantics.md §5.2, §8.1):
//   - FreeBSD in_pcb_lport_dest with net.inet.ip.portrange.randomized=1
//     (the default). FreeBSD draws first + arc4random() % (last-first) and
//     then pre-increments, so its first candidate is never `first` itself; we
//     follow the RFC's uniform start over all num ports instead.
//   - gVisor ports.PickEphemeralPort: probe first + (offset+i) mod count for
//     a random offset.
//
// Linear probing makes ports just after a busy run more likely than others,
// the clustering RFC 6056 and ip-sysctl.rst (ip_local_reserved_ports) warn
// about; that bias is intended and is what the simulator should show.
type randomStart struct {
	r   Range
	rng *rand.Rand

	last  lastCall // for Explain
	start int      // the random start of the last call
}

// newRandomStart builds the "random-start" allocator; cfg.Range is already
// validated and cfg.Rand must be non-nil.
func newRandomStart(cfg Config) (Allocator, error) {
	if cfg.Rand == nil {
		return nil, fmt.Errorf("alloc: %s: Config.Rand is nil; a seeded *rand.Rand is required", NameRandomStart)
	}
	return &randomStart{r: cfg.Range, rng: cfg.Rand}, nil
}

func (a *randomStart) Name() string { return NameRandomStart }

// Allocate draws start = Low + Rand.IntN(Size) and probes start..High, then
// Low..start-1. It consumes exactly one value from the random stream per call,
// also when it fails, so the stream position depends only on the number of
// calls; that keeps runs reproducible when busy patterns change.
func (a *randomStart) Allocate(req *Request, busy Busy) Result {
	start := int(a.r.Low) + a.rng.IntN(a.r.Size())
	a.start = start
	port, probes := probeFrom(a.r, start, busy)
	if port < 0 {
		return a.last.set(Result{Probes: probes, Err: failErrno(req)})
	}
	return a.last.set(Result{Port: uint16(port), Probes: probes, Err: OK})
}

// Explain implements Explainer, e.g. "RFC 6056 §3.3.1 Alg. 1: random start
// 51234, linear probe → 51235, 2 candidates probed".
func (a *randomStart) Explain() string {
	l := &a.last
	if !l.done {
		return notYet(NameRandomStart)
	}
	const src = "RFC 6056 §3.3.1 Alg. 1: random start %d, linear probe "
	if l.Err != OK {
		return fmt.Sprintf(src+"found all %d ports busy → %s", a.start, l.Probes, l.Err)
	}
	return fmt.Sprintf(src+"→ %d, %s%s", a.start, l.Port, probed(l.Probes), wrapNote(a.r, a.start, int(l.Port)))
}
