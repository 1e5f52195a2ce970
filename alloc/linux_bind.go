package alloc

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// NameLinuxBind is Linux bind() with port 0 (and listen() on an unbound
// socket), after inet_csk_find_open_port (net/ipv4/inet_connection_sock.c;
// the parity split since 4.6, the companion of commit 1580ab63fc9a; the
// relax retry since ip_autobind_reuse, about 5.9; os-semantics.md §3.2,
// §2.5): the range is the netns range narrowed by
// IP_LOCAL_PORT_RANGE (inet_sk_get_local_port_range, 6.3+), remaining is its
// size rounded down to even, offset = rand_below(remaining) | 1, and the
// ports of the parity opposite to low's (odd for 32768) are tried first,
// step 2, then the other parity (offset - 1): "__inet_hash_connect() favors
// ports having @low parity, we do the opposite to not pollute connect()
// users". With SO_REUSEADDR (Request.ReuseAddr) and at least 4 ports, the
// lower half [low, low + ((high-low)>>2)<<1) is tried first, then the upper
// half, each with a fresh random offset. When all that fails and
// Config.AutobindReuse (net.ipv4.ip_autobind_reuse) is set, the whole search
// runs once more in relax mode, against the Relaxed view of a Busy that
// implements Relaxer. Failure is EADDRINUSE through Request.Fail. The parity
// split stays with a per-socket range: 207184853dbd changed only connect().
const NameLinuxBind = "linux-bind"

func init() { register(NameLinuxBind, newLinuxBind) }

// Relaxer is implemented by a Busy that also knows the relax-mode answer for
// the same request: the retry of inet_csk_find_open_port under
// net.ipv4.ip_autobind_reuse, where inet_csk_bind_conflict runs with relax
// = true and a port held only by non-listening sockets that all set
// SO_REUSEADDR (as the binding socket does) is usable. Everything else busy
// in the strict view stays busy. The linux-bind allocator uses it only when
// Config.AutobindReuse is set; a Busy without it gets no relax pass, as
// there is nothing to relax.
type Relaxer interface {
	// Relaxed returns the relax-mode view. It must not allocate: return a
	// view built beforehand (a Union kept next to the strict one).
	Relaxed() Busy
}

// linuxBind is inet_csk_find_open_port; see NameLinuxBind.
//
// Random draws: one rand_below(remaining) per half tried (Config.Rand
// IntN), so one or two per search, and as many again in relax mode.
//
// Probes counts the iterations of every pass run: remaining/2 per parity
// pass that fails, plus the index of the success. A search that fails costs
// remaining (the whole range, or both halves, each rounded down to even; 2
// for a one-port range, which both passes try), doubled when the relax pass
// runs too.
//
// Like __inet_hash_connect (see linuxConnect), a range or half of odd size
// leaves one port of the second parity unexamined per search, at its low or
// high end; bind(0) can then fail while that port is free. With an even-sized
// range both halves are even and every port is examined.
type linuxBind struct {
	r     Range
	rng   *rand.Rand
	relax bool // Config.AutobindReuse

	last lastCall  // for Explain
	ex   bindTrace // for Explain
}

// bindTrace is what Explain needs of the last inet_csk_find_open_port run
// beyond its Result: scalars only, a few stores per half searched.
type bindTrace struct {
	low, high int  // the range, after IP_LOCAL_PORT_RANGE, inclusive
	local     bool // IP_LOCAL_PORT_RANGE set
	relax     bool // the ip_autobind_reuse relax search ran
	strict    int  // probes of the failed strict search, when relax ran
	half      int  // the last half searched: 0 whole range, 1 lower, 2 upper
	halfLow   int  // its bounds, [halfLow, halfEnd)
	halfEnd   int
	lower     int // probes of the failed lower half, when half == 2
	remaining int // of the last half
	offset    int // its random odd offset
	first     int // probes of its first parity pass, when the second ran
	pass      int // 1 or 2: the parity pass that found the port; 0 none
}

// newLinuxBind builds the "linux-bind" allocator; cfg.Rand must be non-nil.
func newLinuxBind(cfg Config) (Allocator, error) {
	if cfg.Rand == nil {
		return nil, fmt.Errorf("alloc: %s: Config.Rand is nil; a seeded *rand.Rand is required", NameLinuxBind)
	}
	return &linuxBind{r: cfg.Range, rng: cfg.Rand, relax: cfg.AutobindReuse}, nil
}

func (a *linuxBind) Name() string { return NameLinuxBind }

// Allocate searches busy, then, if allowed, the relaxed view; a nil req is
// the zero request.
func (a *linuxBind) Allocate(req *Request, busy Busy) Result {
	if req == nil {
		req = &noRequest
	}
	a.ex.relax, a.ex.strict = false, 0
	port, probes := a.findOpenPort(req, busy)
	if port < 0 && a.relax {
		if rx, ok := busy.(Relaxer); ok {
			var more int
			a.ex.relax, a.ex.strict = true, probes
			port, more = a.findOpenPort(req, rx.Relaxed())
			probes += more
		}
	}
	if port < 0 {
		return a.last.set(Result{Probes: probes, Err: failErrno(req)})
	}
	return a.last.set(Result{Port: uint16(port), Probes: probes, Err: OK})
}

// findOpenPort is one search of inet_csk_find_open_port (the code from the
// ports_exhausted label to the relax test): half by half, each with its two
// parity passes. It returns the port, or -1, and the iterations run.
func (a *linuxBind) findOpenPort(req *Request, busy Busy) (port, probes int) {
	half := 0 // attempt_half: 0 whole range, 1 lower half, 2 upper half
	if req.ReuseAddr {
		half = 1
	}
	for {
		low, high, local := localPortRange(a.r, req.LocalRange)
		end := high + 1 // half-open [low, end)
		if end-low < 4 {
			half = 0
		}
		a.ex.low, a.ex.high, a.ex.local = low, high, local
		if half != 0 {
			mid := low + ((end-low)>>2)<<1
			if half == 1 {
				end = mid
			} else {
				low = mid
			}
		}
		remaining := end - low
		if remaining > 1 {
			remaining &^= 1
		}
		offset := a.rng.IntN(remaining) | 1 // the parity opposite to low's
		a.ex.half, a.ex.halfLow, a.ex.halfEnd = half, low, end
		a.ex.remaining, a.ex.offset, a.ex.first = remaining, offset, 0
		for k, off := range [2]int{offset, offset - 1} {
			p, _, n := scanPass(busy, low, end, remaining, off, 2)
			probes += n
			if p >= 0 {
				a.ex.pass = k + 1
				return p, probes
			}
			a.ex.first = n
		}
		a.ex.pass = 0
		if half != 1 {
			return -1, probes
		}
		a.ex.lower = probes
		half = 2
	}
}

// Explain implements Explainer, e.g. "inet_csk_find_open_port: random odd
// offset 12345 of 28232 → start 45113; odd pass, 2 candidates probed →
// 45115", or with SO_REUSEADDR "inet_csk_find_open_port: lower half
// 32768-46883 first (SO_REUSEADDR): random odd offset ...".
func (a *linuxBind) Explain() string {
	l, x := &a.last, &a.ex
	if !l.done {
		return notYet(NameLinuxBind)
	}
	var b strings.Builder
	b.WriteString("inet_csk_find_open_port: ")
	if x.local {
		fmt.Fprintf(&b, "IP_LOCAL_PORT_RANGE %d-%d, ", x.low, x.high)
	}
	if x.relax {
		fmt.Fprintf(&b, "strict search found nothing (%d probed), ip_autobind_reuse relax pass: ", x.strict)
	}
	here := l.Probes - x.strict // probes of the last half
	switch x.half {
	case 1:
		fmt.Fprintf(&b, "lower half %d-%d first (SO_REUSEADDR): ", x.halfLow, x.halfEnd-1)
	case 2:
		here -= x.lower
		fmt.Fprintf(&b, "lower half %d-%d all busy (%d probed, SO_REUSEADDR), upper half %d-%d: ",
			x.low, x.halfLow-1, x.lower, x.halfLow, x.halfEnd-1)
	}
	start := x.halfLow + x.offset
	if start >= x.halfEnd { // a one-port range: the loop wraps at once
		start -= x.remaining
	}
	fmt.Fprintf(&b, "random odd offset %d of %d → start %d; ", x.offset, x.remaining, start)
	first, second := parityName(start), parityName(start+1)
	switch {
	case l.Err != OK:
		fmt.Fprintf(&b, "all %d candidates busy → %s", here, l.Err)
	case x.remaining == 1:
		fmt.Fprintf(&b, "one-port range, %s → %d", probed(here), l.Port)
	case x.pass == 2:
		fmt.Fprintf(&b, "%s ports all busy (%d probed), %s pass found %d after %d more", first, x.first, second, l.Port, here-x.first)
	default:
		fmt.Fprintf(&b, "%s pass, %s → %d", first, probed(here), l.Port)
	}
	if here != l.Probes {
		fmt.Fprintf(&b, " (%d probed in all)", l.Probes)
	}
	return b.String()
}
