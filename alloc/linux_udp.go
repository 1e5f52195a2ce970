package alloc

import (
	"fmt"
	"math/rand/v2"
)

// NameLinuxUDP is Linux UDP autobind (connect() or sendto() on an unbound
// datagram socket, inet_autobind -> udp_lib_get_port with port 0,
// net/ipv4/udp.c; os-semantics.md §3.6), modelled as a uniformly random
// free port of the range (the netns range narrowed by IP_LOCAL_PORT_RANGE,
// inet_sk_get_local_port_range, 6.3+). The port is exclusive: the caller's
// Busy holds every port with a conflicting UDP owner, whatever its
// destination. Failure is EAGAIN through Request.Fail.
//
// Why uniform: the kernel draws first = low + a uniform value below the
// range size, and a stride that is a random odd multiple of the UDP hash
// table size. Ports that share a hash chain are congruent modulo the table
// size, so the stride walks the chain of first, visiting all of its ports
// in a random order from a random place; the first in-range port not in use
// (a bitmap built from the chain) and not reserved is taken, and only when
// the chain has none does the search move on to the next chain. Every free
// port is therefore reached with about the same probability while the free
// ports are spread over many chains. The exact distribution weighs chains
// rather than ports (a free port alone in its chain is likelier than one
// of many) and depends on the table size, which the kernel sizes from
// memory (uhash_entries); the model takes the uniform limit.
const NameLinuxUDP = "linux-udp"

func init() { register(NameLinuxUDP, newLinuxUDP) }

// linuxUDP is udp_lib_get_port's port-0 search; see NameLinuxUDP.
type linuxUDP struct {
	r   Range
	rng *rand.Rand

	last      lastCall // for Explain
	low, high int      // the range of the last call, after IP_LOCAL_PORT_RANGE
	local     bool     // IP_LOCAL_PORT_RANGE set
	free      int      // free ports counted in it
	draw      int      // the uniform draw: the port is the draw-th free one
}

// newLinuxUDP builds the "linux-udp" allocator; cfg.Rand must be non-nil.
func newLinuxUDP(cfg Config) (Allocator, error) {
	if cfg.Rand == nil {
		return nil, fmt.Errorf("alloc: %s: Config.Rand is nil; a seeded *rand.Rand is required", NameLinuxUDP)
	}
	return &linuxUDP{r: cfg.Range, rng: cfg.Rand}, nil
}

func (a *linuxUDP) Name() string { return NameLinuxUDP }

// Allocate counts the free ports of the range (Busy.CountFree, a popcount
// per word), draws r = Rand.IntN(free) and returns the r-th free port
// (Busy.NthFree): exactly uniform over the free ports, O(range/64), one
// random draw per successful call and none when the range is full.
//
// Probes is 1 on success: the kernel's walk over a chain's bitmap is not
// modelled port by port, so there is no count to report. A failure reports
// the size of the range searched, which the kernel's loop covered entirely.
// A nil req is the zero request.
func (a *linuxUDP) Allocate(req *Request, busy Busy) Result {
	if req == nil {
		req = &noRequest
	}
	low, high, local := localPortRange(a.r, req.LocalRange)
	free := busy.CountFree(low, high)
	a.low, a.high, a.local, a.free = low, high, local, free
	if free <= 0 {
		return a.last.set(Result{Probes: high - low + 1, Err: failErrno(req)})
	}
	a.draw = a.rng.IntN(free)
	q := busy.NthFree(low, high, a.draw)
	if q < low || q > high {
		panicSpan("NthFree", q, low, high)
	}
	return a.last.set(Result{Port: uint16(q), Probes: 1, Err: OK})
}

// Explain implements Explainer, e.g. "udp_lib_get_port: uniform over 27000
// free ports of 32768-60999, draw 1234 → 34100".
func (a *linuxUDP) Explain() string {
	l := &a.last
	if !l.done {
		return notYet(NameLinuxUDP)
	}
	note := ""
	if a.local {
		note = " (IP_LOCAL_PORT_RANGE)"
	}
	if l.Err != OK {
		return fmt.Sprintf("udp_lib_get_port: no free port in %d-%d%s (%d searched) → %s", a.low, a.high, note, l.Probes, l.Err)
	}
	return fmt.Sprintf("udp_lib_get_port: uniform over %d free ports of %d-%d%s, draw %d → %d", a.free, a.low, a.high, note, a.draw, l.Port)
}
