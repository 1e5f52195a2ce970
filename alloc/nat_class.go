package alloc

import (
	"fmt"
	"math/bits"
)

// Pieces shared by the NAT port pickers (nat_netfilter.go, nat_rover.go,
// nat_random.go, nat_sequential.go): the candidate class of one request,
// the kernel's u16-offset walk over it, and the parity-aware free-port
// counts of the "random" picker.

// natClass is the list of candidate ports of one Pick, an arithmetic
// progression first, first+step, ..., first+(n-1)·step: the whole of
// req.Pool (step 1), or with req.Parity only its ports of the inside port's
// parity (step 2).
//
// Parity and the kernel's arithmetic. Linux has no parity option; a picker
// that honours req.Parity runs its algorithm unchanged over the class
// instead of the pool: the class plays the role of the kernel's range, n
// that of range_size, and index j that of the port offset, so
// "min + off % range_size" becomes first + 2·(off % n). Window sizes, the
// round-termination test and rover values all count class members, not
// ports.
type natClass struct{ first, step, n int }

// natClassOf returns the candidate class of req. It panics if req.Pool is
// not a valid range (Low 0 or Low > High): NATRequest requires one, and a
// port outside 1..65535 must never be handed out.
func natClassOf(req *NATRequest) natClass {
	lo, hi := int(req.Pool.Low), int(req.Pool.High)
	if lo < 1 || lo > hi {
		panicPool(req.Pool)
	}
	if !req.Parity {
		return natClass{first: lo, step: 1, n: hi - lo + 1}
	}
	first := lo + (lo^int(req.Inside.Port()))&1
	if first > hi {
		return natClass{first: first, step: 2}
	}
	return natClass{first: first, step: 2, n: (hi-first)/2 + 1}
}

// port returns the class member with index j (0 <= j < n).
func (c natClass) port(j int) int { return c.first + c.step*j }

// parity is the parity of the class's ports, meaningful for step 2.
func (c natClass) parity() int { return c.first & 1 }

// at is the kernel's candidate at loop iteration i from offset off:
// min + (u16)(off + i) % range_size, in class terms. The offset is a u16 in
// every kernel version (nf_nat_l4proto_unique_tuple's `u16 off`), so it
// wraps at 65536, which for a class size that does not divide 65536 makes
// the walk jump: from index 65535 % n back to index 0.
func (c natClass) at(off uint16, i int) int { return c.port(int(off+uint16(i)) % c.n) }

// wraps reports whether iters iterations from off went past the u16 wrap
// of the offset in a class whose size does not divide 65536, i.e. whether
// the kernel's walk jumped back to index 0 (see at). Explain mentions it.
func (c natClass) wraps(off uint16, iters int) bool {
	return int(off)+iters > NumPorts && NumPorts%c.n != 0
}

// wrapPhrase is Explain's note for a walk that wraps.
const wrapPhrase = " (u16 offset wrapped 65535 → 0: index jump)"

// walk searches iterations 0..iters-1 of the kernel loop
//
//	for (i = 0; i < iters; i++, off++)
//		if (!used(min + off % range_size)) return;
//
// and returns the first iteration whose candidate busy does not report,
// with that port; -1, -1 if there is none. The iterations split into runs
// of consecutive class members, broken where off % n wraps to 0 and where
// the u16 off wraps to 0; each run is one word-at-a-time search
// (nextUsable), and iters <= n gives at most four runs, so the cost is
// O(pool/64) whatever the loop would have walked.
func (c natClass) walk(busy Busy, off uint16, iters int) (int, int) {
	o := int(off)
	for i := 0; i < iters; {
		j := o % c.n
		run := min(iters-i, c.n-j, NumPorts-o)
		from := c.port(j)
		if q := nextUsable(busy, from, c.port(j+run-1), c.step); q >= 0 {
			return i + (q-from)/c.step, q
		}
		i += run
		o = (o + run) & MaxPort
	}
	return -1, -1
}

// linear searches the class from index s (0 <= s < n) upward, wrapping
// from the last member to the first, as the sequential picker walks, and
// returns the number of members examined up to and including the first
// free one, with that port; n, -1 when all are busy. Two word-at-a-time
// searches.
func (c natClass) linear(busy Busy, s int) (int, int) {
	from := c.port(s)
	if q := nextUsable(busy, from, c.port(c.n-1), c.step); q >= 0 {
		return (q-from)/c.step + 1, q
	}
	if s > 0 {
		if q := nextUsable(busy, c.first, c.port(s-1), c.step); q >= 0 {
			return c.n - s + (q-c.first)/c.step + 1, q
		}
	}
	return c.n, -1
}

// countFree returns how many members of the class busy does not report.
func (c natClass) countFree(busy Busy) int {
	lo, hi := c.first, c.port(c.n-1)
	if c.step == 1 {
		return busy.CountFree(lo, hi)
	}
	if pc, ok := busy.(parityCounter); ok {
		return pc.CountFreeParity(lo, hi, c.parity())
	}
	n := 0
	for q := busy.NextFreeParity(lo, hi, c.parity()); q >= 0; q = busy.NextFreeParity(q+2, hi, c.parity()) {
		n++
	}
	return n
}

// nthFree returns the k-th (from 0) free member of the class in ascending
// order, or -1.
func (c natClass) nthFree(busy Busy, k int) int {
	lo, hi := c.first, c.port(c.n-1)
	if c.step == 1 {
		return busy.NthFree(lo, hi, k)
	}
	if pc, ok := busy.(parityCounter); ok {
		return pc.NthFreeParity(lo, hi, c.parity(), k)
	}
	q := busy.NextFreeParity(lo, hi, c.parity())
	for ; q >= 0 && k > 0; k-- {
		q = busy.NextFreeParity(q+2, hi, c.parity())
	}
	return q
}

// String is "1024-65535" or "1024-65534 even ports" for Explain.
func (c natClass) String() string {
	if c.n == 0 {
		return "no ports"
	}
	s := fmt.Sprintf("%d-%d", c.first, c.port(c.n-1))
	if c.step == 2 {
		s += " " + parityName(c.first) + " ports"
	}
	return s
}

// parityCounter is the optional part of a Busy that the "random" picker
// uses for a parity request: CountFree and NthFree restricted to the ports
// of one parity. *PortSet and *Union implement it a word at a time (the
// free-port word masked with 0x5555... or 0xAAAA...); any other Busy gets a
// walk with NextFreeParity, one call per free port of the class.
type parityCounter interface {
	CountFreeParity(from, to, parity int) int
	NthFreeParity(from, to, parity, n int) int
}

// CountFreeParity returns how many ports q of [from, to] with q%2 ==
// parity (0 or 1) the set does not hold: one masked popcount per word.
func (s *PortSet) CountFreeParity(from, to, parity int) int {
	return countFreeMasked([]*PortSet{s}, from, to, parityMask(parity))
}

// NthFreeParity returns the n-th (from 0) port of [from, to] with q%2 ==
// parity that the set does not hold, in ascending order, or -1.
func (s *PortSet) NthFreeParity(from, to, parity, n int) int {
	return nthFreeMasked([]*PortSet{s}, from, to, parityMask(parity), n)
}

// CountFreeParity is CountFree restricted to the ports of one parity (0 or
// 1), at the same word-at-a-time cost.
func (u *Union) CountFreeParity(from, to, parity int) int {
	return countFreeMasked(u.sets[:u.n], from, to, parityMask(parity))
}

// NthFreeParity is NthFree restricted to the ports of one parity (0 or 1),
// at the same word-at-a-time cost.
func (u *Union) NthFreeParity(from, to, parity, n int) int {
	return nthFreeMasked(u.sets[:u.n], from, to, parityMask(parity), n)
}

// spanMask is the mask of the bits of word i that lie in [from, to].
func spanMask(i, from, to int) uint64 {
	m := ^uint64(0)
	if i == from>>6 {
		m &= ^uint64(0) << uint(from&63)
	}
	if i == to>>6 {
		m &= ^uint64(0) >> uint(63-to&63)
	}
	return m
}

// countFreeMasked counts the ports of [from, to] (clipped to 0..MaxPort)
// whose bit is in mask and in no set.
func countFreeMasked(sets []*PortSet, from, to int, mask uint64) int {
	from, to, ok := clipSpan(from, to)
	if !ok {
		return 0
	}
	n := 0
	for i := from >> 6; i <= to>>6; i++ {
		n += bits.OnesCount64(^orWord(sets, i) & mask & spanMask(i, from, to))
	}
	return n
}

// nthFreeMasked returns the n-th (from 0) port of [from, to] (clipped)
// whose bit is in mask and in no set, or -1; whole words are skipped by
// popcount.
func nthFreeMasked(sets []*PortSet, from, to int, mask uint64, n int) int {
	from, to, ok := clipSpan(from, to)
	if !ok || n < 0 {
		return -1
	}
	for i := from >> 6; i <= to>>6; i++ {
		x := ^orWord(sets, i) & mask & spanMask(i, from, to)
		if c := bits.OnesCount64(x); n >= c {
			n -= c
			continue
		}
		for ; n > 0; n-- {
			x &= x - 1
		}
		return i<<6 | bits.TrailingZeros64(x)
	}
	return -1
}

// panicPool reports a NATRequest whose Pool is not a valid range.
//
//go:noinline
func panicPool(r Range) {
	panic(fmt.Sprintf("alloc: NATRequest.Pool %d-%d is not a valid port range", r.Low, r.High))
}

// natLast is what every NAT picker keeps of its most recent Pick for
// Explain: the outcome and the candidate class searched.
type natLast struct {
	lastCall
	cls natClass
}

// natSpan is the Explain phrase for the class searched: "pool 1024-65535
// (64512)" or "pool 1024-65534 even ports (32256)".
func natSpan(c natClass) string {
	if c.n == 0 {
		return "pool has no port of the inside port's parity"
	}
	return fmt.Sprintf("pool %s (%d)", c, c.n)
}
