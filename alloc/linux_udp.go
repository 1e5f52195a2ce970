package alloc

import (
	"fmt"
	"math/rand/v2"
)

// NameLinuxUDP is Linux UDP autobind (connect() or sendto() on an unbound
// datagram socket, inet_autobind -> udp_lib_get_port with port 0,
// net/ipv4/udp.c; os-semantics.md §3.6) over the range (the netns range
// narrowed by IP_LOCAL_PORT_RANGE, inet_sk_get_local_port_range, 6.3+). The
// port is exclusive: the caller's Busy holds every port with a conflicting
// UDP owner, whatever its destination. Failure is EAGAIN through
// Request.Fail.
//
// The kernel draws rand = get_random_u32(), first = low +
// reciprocal_scale(rand, remaining) and a stride (rand|1) * table size,
// truncated to the u16 port. It then walks hash chains: for chain first,
// first+1, ... (table size chains in all, u16 arithmetic) it visits the
// chain's ports snum, snum+stride, ... (all ports congruent to the chain
// modulo the table size, in a random order) and takes the first one in the
// range, not in use and not reserved.
//
// The cross-check found that this is not uniform over the free ports, as an
// earlier model assumed: when the range has no more ports than the table
// has chains, a chain holds at most one port of the range, and the walk is
// a linear probe from first (first..high, then low..first-1), with the
// clustering of RFC 6056 Algorithm 1. The table size is uhash_entries,
// sized from memory at boot ("UDP hash table entries" in the boot log):
// Config.UDPHashSize, default DefaultUDPHashSize.
const NameLinuxUDP = "linux-udp"

// DefaultUDPHashSize is the UDP hash table size the model assumes when
// Config.UDPHashSize is 0: 16384, what alloc_large_system_hash gives a host
// with 16-32 GiB (the machine the cross-check ran on logs "UDP hash table
// entries: 16384"). A smaller table only matters for ranges larger than it.
const DefaultUDPHashSize = 16384

func init() { register(NameLinuxUDP, newLinuxUDP) }

// linuxUDP is udp_lib_get_port's port-0 search; see NameLinuxUDP.
type linuxUDP struct {
	r    Range
	rng  *rand.Rand
	hash int // UDP hash table size, a power of two

	last      lastCall // for Explain
	low, high int      // the range of the last call, after IP_LOCAL_PORT_RANGE
	local     bool     // IP_LOCAL_PORT_RANGE set
	first     int      // the random first port of the last call
}

// newLinuxUDP builds the "linux-udp" allocator; cfg.Rand must be non-nil and
// cfg.UDPHashSize 0 or a power of two from 1 to 65536.
func newLinuxUDP(cfg Config) (Allocator, error) {
	if cfg.Rand == nil {
		return nil, fmt.Errorf("alloc: %s: Config.Rand is nil; a seeded *rand.Rand is required", NameLinuxUDP)
	}
	h := cfg.UDPHashSize
	if h == 0 {
		h = DefaultUDPHashSize
	}
	if h < 1 || h > NumPorts || h&(h-1) != 0 {
		return nil, fmt.Errorf("alloc: %s: UDP hash table size %d is not a power of two from 1 to 65536", NameLinuxUDP, cfg.UDPHashSize)
	}
	return &linuxUDP{r: cfg.Range, rng: cfg.Rand, hash: h}, nil
}

func (a *linuxUDP) Name() string { return NameLinuxUDP }

// Allocate runs udp_lib_get_port's search. Probes counts the ports of the
// range examined. When the range is no larger than the table, the walk is
// the linear probe from first and costs O(range/64) word operations; a
// larger range walks the chains port by port (up to 65,536 steps for a
// call that fails), as the kernel does. A nil req is the zero request.
func (a *linuxUDP) Allocate(req *Request, busy Busy) Result {
	if req == nil {
		req = &noRequest
	}
	low, high, local := localPortRange(a.r, req.LocalRange)
	remaining := high - low + 1
	rnd := a.rng.Uint32()
	first := low + int(uint64(rnd)*uint64(remaining)>>32) // reciprocal_scale
	a.low, a.high, a.local, a.first = low, high, local, first
	if remaining <= a.hash {
		// One port of the range per chain: chain first+k holds the port
		// first+k for first+k <= high, and the ports below first come
		// last (their chains are first+k for k > high-first).
		port, probes := probeFrom(Range{Low: uint16(low), High: uint16(high)}, first, busy)
		if port < 0 {
			return a.last.set(Result{Probes: probes, Err: failErrno(req)})
		}
		return a.last.set(Result{Port: uint16(port), Probes: probes, Err: OK})
	}
	stride := uint16(uint32(rnd|1) * uint32(a.hash))
	probes := 0
	f := uint16(first)
	last := f + uint16(a.hash) // wraps to f for a 65,536-entry table: one full turn
	for {
		snum := f
		for {
			if p := int(snum); p >= low && p <= high {
				probes++
				if !busy.Has(p) {
					return a.last.set(Result{Port: snum, Probes: probes, Err: OK})
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
	return a.last.set(Result{Probes: probes, Err: failErrno(req)})
}

// Explain implements Explainer, e.g. "udp_lib_get_port: first 34100 of
// 32768-60999, hash chains from there (16384-entry table) → 34101, 2
// candidates probed".
func (a *linuxUDP) Explain() string {
	l := &a.last
	if !l.done {
		return notYet(NameLinuxUDP)
	}
	note := ""
	if a.local {
		note = " (IP_LOCAL_PORT_RANGE)"
	}
	walk := "linear probe (one port of the range per hash chain)"
	if a.high-a.low+1 > a.hash {
		walk = fmt.Sprintf("hash chains from there (%d-entry table)", a.hash)
	}
	if l.Err != OK {
		return fmt.Sprintf("udp_lib_get_port: first %d of %d-%d%s, %s: no free port (%d searched) → %s", a.first, a.low, a.high, note, walk, l.Probes, l.Err)
	}
	return fmt.Sprintf("udp_lib_get_port: first %d of %d-%d%s, %s → %d, %s", a.first, a.low, a.high, note, walk, l.Port, probed(l.Probes))
}
