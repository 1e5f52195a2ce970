package alloc

import "fmt"

// Busy is the view an allocator gets of which ports one request may NOT
// take. What counts as busy depends on the socket path and OS model (ports
// with a conflicting owner, ports in ip_local_reserved_ports, ports whose
// 4-tuple to this destination is taken, ...); the caller works that out and
// the allocator only asks the questions below. This mirrors the kernel split
// between the selector loop (__inet_hash_connect, inet_csk_find_open_port)
// and its suitability checks (check_suitable_port in RFC 6056 §3.3).
//
// Spans are clipped to 0..65535, and a span with from > to is empty.
// Bitset-backed implementations must answer the span questions a word at a
// time: allocators rely on each costing O((to-from)/64), not one test per
// port.
type Busy interface {
	// Has reports whether port p is busy (unusable) for this request.
	Has(p int) bool
	// NextFree returns the smallest q in [from, to] with !Has(q), or -1 if
	// there is none.
	NextFree(from, to int) int
	// NextFreeParity returns the smallest q in [from, to] with q%2 ==
	// parity and !Has(q), or -1 if there is none; parity is 0 or 1. It is
	// the step-2 walk of the Linux selectors, which try every port of one
	// parity before the other (__inet_hash_connect,
	// inet_csk_find_open_port; os-semantics.md §2.5).
	NextFreeParity(from, to, parity int) int
	// CountFree returns how many q in [from, to] have !Has(q).
	CountFree(from, to int) int
	// NthFree returns the n-th (counting from 0) q of [from, to] in
	// ascending order with !Has(q), or -1 if n < 0 or there are at most n
	// such ports. With CountFree it draws a uniformly random free port
	// without a walk over the ports (Linux UDP autobind).
	NthFree(from, to, n int) int
}

// maxUnion is how many sets a Union can combine.
const maxUnion = 4

// Union is a Busy made of up to 4 PortSets: a port is busy if any of the sets
// has it (e.g. reserved ports, ports held by bound sockets, ports whose tuple
// to this destination is in use). It holds pointers, so later changes to the
// sets are seen without rebuilding it.
//
// Build a Union once with NewUnion and keep it: passing &u as a Busy then costs
// no allocation per call. The zero Union has no sets and reports every port
// free.
type Union struct {
	sets [maxUnion]*PortSet
	n    int
}

// NewUnion returns a Union of the given sets. nil entries are skipped (an
// absent set is treated as empty). It panics if more than 4 non-nil sets are
// given: that is a programming error, not a simulated condition.
func NewUnion(sets ...*PortSet) Union {
	var u Union
	for _, s := range sets {
		if s == nil {
			continue
		}
		if u.n == maxUnion {
			panic(fmt.Sprintf("alloc: NewUnion: more than %d sets", maxUnion))
		}
		u.sets[u.n] = s
		u.n++
	}
	return u
}

// Has reports whether any set of the union contains p. Values outside
// 0..65535 are never busy (see PortSet.Has).
func (u *Union) Has(p int) bool {
	for _, s := range u.sets[:u.n] {
		if s.Has(p) {
			return true
		}
	}
	return false
}

// NextFree returns the smallest q in [from, to] (clipped to 0..65535) that no
// set of the union contains, or -1. It ORs the sets together one 64-bit word
// at a time, so its cost is O(n·(to-from)/64), never per port. With no sets
// every port is free, so it returns the clipped from (or -1 for an empty
// span).
func (u *Union) NextFree(from, to int) int {
	return scanWords(u.sets[:u.n], ^uint64(0), ^uint64(0), from, to)
}

// NextFreeParity is NextFree restricted to the ports of one parity (0 or
// 1), at the same word-at-a-time cost: the OR of the sets is inverted and
// masked with the even-port or odd-port pattern (0x5555... or 0xAAAA...).
func (u *Union) NextFreeParity(from, to, parity int) int {
	return scanWords(u.sets[:u.n], ^uint64(0), parityMask(parity), from, to)
}

// CountFree returns how many ports of [from, to] no set contains: the
// population count of the inverted OR of the sets, a word at a time.
func (u *Union) CountFree(from, to int) int { return countFree(u.sets[:u.n], from, to) }

// NthFree returns the n-th (from 0) port of [from, to] that no set contains,
// or -1. Whole words are skipped by population count, so it costs what
// CountFree costs.
func (u *Union) NthFree(from, to, n int) int { return nthFree(u.sets[:u.n], from, to, n) }
