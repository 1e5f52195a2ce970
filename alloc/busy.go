package alloc

import "fmt"

// Busy is the view an allocator gets of which ports one request may NOT
// take. What counts as busy depends on the socket path and OS model (ports
// with a conflicting owner, ports in ip_local_reserved_ports, ports whose
// 4-tuple to this destination is taken, ...); the caller works that out and
// the allocator only asks these two questions. This mirrors the kernel split
// between the selector loop (__inet_hash_connect, inet_csk_find_open_port)
// and its suitability checks (check_suitable_port in RFC 6056 §3.3).
type Busy interface {
	// Has reports whether port p is busy (unusable) for this request.
	Has(p int) bool
	// NextFree returns the smallest q in [from, to] with !Has(q), or -1 if
	// there is none or from > to. Bitset-backed implementations must scan a
	// word at a time: allocators rely on this being O((to-from)/64).
	NextFree(from, to int) int
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
	if u.n == 0 {
		if from, _, ok := clipSpan(from, to); ok {
			return from
		}
		return -1
	}
	return scanWords(u.sets[:u.n], ^uint64(0), from, to)
}
