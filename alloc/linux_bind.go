package alloc

import (
	"fmt"
	"math/rand/v2"
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
	port, probes := a.findOpenPort(req, busy)
	if port < 0 && a.relax {
		if rx, ok := busy.(Relaxer); ok {
			var more int
			port, more = a.findOpenPort(req, rx.Relaxed())
			probes += more
		}
	}
	if port < 0 {
		return Result{Probes: probes, Err: failErrno(req)}
	}
	return Result{Port: uint16(port), Probes: probes, Err: OK}
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
		low, high, _ := localPortRange(a.r, req.LocalRange)
		end := high + 1 // half-open [low, end)
		if end-low < 4 {
			half = 0
		}
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
		for _, off := range [2]int{offset, offset - 1} {
			p, _, n := scanPass(busy, low, end, remaining, off, 2)
			probes += n
			if p >= 0 {
				return p, probes
			}
		}
		if half != 1 {
			return -1, probes
		}
		half = 2
	}
}
