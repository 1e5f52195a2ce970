package alloc

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
)

// numWords is the number of 64-bit words needed for one bit per port.
const numWords = NumPorts / 64

// PortSet is a set of ports 0..65535 stored as a 65536-bit bitset (1024
// uint64 words, 8 KiB). It is a value type: the zero value is the empty set,
// and assigning a PortSet copies it. Methods take a pointer so the 8 KiB array
// is never copied by a call.
//
// The bitset layout is the same idea as the kernel's
// sysctl_local_reserved_ports bitmap (one bit per port, tested with
// test_bit in inet_is_local_reserved_port); it lets NextClear skip 64 busy
// ports per step, which is what keeps allocation O(words) near exhaustion.
type PortSet struct {
	words [numWords]uint64
}

// Add puts port p in the set. It panics if p is outside 0..65535: a port
// number out of range is a bug in the caller, not a simulated condition.
func (s *PortSet) Add(p int) {
	if uint(p) > MaxPort {
		panicPort("Add", p)
	}
	s.words[p>>6] |= 1 << (uint(p) & 63)
}

// Remove takes port p out of the set (a no-op if absent). It panics if p is
// outside 0..65535, like Add.
func (s *PortSet) Remove(p int) {
	if uint(p) > MaxPort {
		panicPort("Remove", p)
	}
	s.words[p>>6] &^= 1 << (uint(p) & 63)
}

// Has reports whether port p is in the set. Values outside 0..65535 are never
// members, so Has returns false for them instead of panicking; this lets
// callers probe p-1 or p+1 at the edges without special cases.
func (s *PortSet) Has(p int) bool {
	if uint(p) > MaxPort {
		return false
	}
	return s.words[p>>6]&(1<<(uint(p)&63)) != 0
}

// AddRange puts every port of r in the set, a word at a time. Unlike Range
// users elsewhere, r need not be a valid ephemeral range: Low may be 0 (the
// reserved-ports sysctl accepts 0). An inverted r (Low > High) adds nothing.
func (s *PortSet) AddRange(r Range) {
	forWords(int(r.Low), int(r.High), func(i int, m uint64) { s.words[i] |= m })
}

// RemoveRange takes every port of r out of the set; an inverted r removes
// nothing.
func (s *PortSet) RemoveRange(r Range) {
	forWords(int(r.Low), int(r.High), func(i int, m uint64) { s.words[i] &^= m })
}

// Clear empties the set.
func (s *PortSet) Clear() { s.words = [numWords]uint64{} }

// Equal reports whether s and o hold exactly the same ports.
func (s *PortSet) Equal(o *PortSet) bool { return s.words == o.words }

// Len returns the number of ports in the set (population count).
func (s *PortSet) Len() int {
	n := 0
	for _, w := range s.words {
		n += bits.OnesCount64(w)
	}
	return n
}

// CountIn returns how many members of s lie inside r, e.g. how many reserved
// ports fall in the ephemeral range (the capacity loss described for
// ip_local_reserved_ports in ip-sysctl.rst). An inverted r counts 0.
func (s *PortSet) CountIn(r Range) int {
	n := 0
	forWords(int(r.Low), int(r.High), func(i int, m uint64) { n += bits.OnesCount64(s.words[i] & m) })
	return n
}

// NextClear returns the smallest port q with from <= q <= to that is not in
// the set, or -1 if there is none (including when from > to). The search is
// clipped to 0..65535, so the answer is always a real port number or -1.
// It examines 64 ports per step (math/bits.TrailingZeros64 on the inverted
// word).
func (s *PortSet) NextClear(from, to int) int {
	return scanWords([]*PortSet{s}, ^uint64(0), ^uint64(0), from, to)
}

// NextSet returns the smallest member q of the set with from <= q <= to, or
// -1 if there is none. Same clipping and cost as NextClear.
func (s *PortSet) NextSet(from, to int) int {
	return scanWords([]*PortSet{s}, 0, ^uint64(0), from, to)
}

// NextFree is NextClear under the Busy interface's name, so a single *PortSet
// can be passed directly wherever a Busy is wanted.
func (s *PortSet) NextFree(from, to int) int { return s.NextClear(from, to) }

// NextFreeParity returns the smallest q in [from, to] with q%2 == parity (0
// or 1) that is not in the set, or -1; a word at a time, like NextClear
// (see Busy.NextFreeParity).
func (s *PortSet) NextFreeParity(from, to, parity int) int {
	return scanWords([]*PortSet{s}, ^uint64(0), parityMask(parity), from, to)
}

// CountFree returns how many ports of [from, to] (clipped to 0..65535) are
// not in the set, by population count a word at a time.
func (s *PortSet) CountFree(from, to int) int { return countFree([]*PortSet{s}, from, to) }

// NthFree returns the n-th (from 0) port of [from, to] not in the set, or
// -1 (see Busy.NthFree); whole words are skipped by population count.
func (s *PortSet) NthFree(from, to, n int) int { return nthFree([]*PortSet{s}, from, to, n) }

// String formats the set in the kernel's ip_local_reserved_ports syntax, in
// canonical form: ascending, runs of adjacent ports merged into "LOW-HIGH",
// elements joined by commas, e.g. "8080,40010-40019". A run of two ports is
// written "8080-8081", as the kernel's proc_do_large_bitmap prints it. The
// empty set is "". ParsePortList(s.String()) returns a set equal to s.
func (s *PortSet) String() string {
	var b []byte
	for p := s.NextSet(0, MaxPort); p >= 0; {
		end := s.NextClear(p, MaxPort) // first non-member after the run
		if end < 0 {
			end = NumPorts
		}
		if len(b) > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(p), 10)
		if end-1 > p {
			b = append(b, '-')
			b = strconv.AppendInt(b, int64(end-1), 10)
		}
		if end > MaxPort {
			break
		}
		p = s.NextSet(end, MaxPort)
	}
	return string(b)
}

// ParsePortList parses the ip_local_reserved_ports syntax (net.ipv4 sysctl,
// written through the kernel's proc_do_large_bitmap): a comma-separated list
// of ports "P" and inclusive ranges "LOW-HIGH", e.g. "8080,40010-40019".
//
// Accepted, following proc_do_large_bitmap:
//   - every value 0..65535 (the bitmap is 65536 bits long, so 0 is legal);
//   - ranges with LOW <= HIGH (LOW == HIGH is one port);
//   - overlapping or unsorted elements (they are simply OR-ed together);
//   - a single trailing comma, "80," (the kernel stops at end of input);
//   - surrounding whitespace, including the newline that echo appends;
//   - "" (or only whitespace), the empty set, which is how the sysctl is
//     cleared.
//
// Rejected with an error naming the 1-based element and its text: empty
// elements (",80", "80,,90"), values above 65535, LOW > HIGH, signs, spaces
// inside the list (the kernel rejects them too), and numbers with a leading
// zero or 0x prefix. The kernel would read those last ones as octal/hex
// (strtoul base 0); portsim refuses them rather than risk meaning a different
// port than the kernel would. The kernel's parse loop also lets a newline end
// an element; portsim accepts only commas between elements.
//
// On error the returned set is empty.
func ParsePortList(s string) (PortSet, error) {
	var set PortSet
	s = strings.TrimSpace(s)
	if s == "" {
		return set, nil
	}
	elems := strings.Split(s, ",")
	if len(elems) > 1 && elems[len(elems)-1] == "" {
		elems = elems[:len(elems)-1] // trailing comma, accepted by the kernel
	}
	for i, e := range elems {
		lo, hi, err := parsePortElem(e)
		if err != nil {
			return PortSet{}, fmt.Errorf("alloc: port list element %d %q: %w", i+1, e, err)
		}
		forWords(lo, hi, func(i int, m uint64) { set.words[i] |= m })
	}
	return set, nil
}

// parsePortElem parses one "P" or "LOW-HIGH" element of a port list.
func parsePortElem(e string) (lo, hi int, err error) {
	if e == "" {
		return 0, 0, fmt.Errorf("empty element")
	}
	a, b, isRange := strings.Cut(e, "-")
	if lo, err = parsePort(a); err != nil {
		return 0, 0, err
	}
	if !isRange {
		return lo, lo, nil
	}
	if hi, err = parsePort(b); err != nil {
		return 0, 0, err
	}
	if lo > hi {
		return 0, 0, fmt.Errorf("range low %d is above high %d", lo, hi)
	}
	return lo, hi, nil
}

// forWords calls fn once per 64-bit word overlapping ports [lo, hi], with the
// mask of the bits inside [lo, hi] in that word. It does nothing when lo > hi.
// lo and hi must be within 0..MaxPort.
func forWords(lo, hi int, fn func(i int, mask uint64)) {
	for lo <= hi {
		i := lo >> 6
		end := min(hi, i<<6|63)
		mask := (^uint64(0) << uint(lo&63)) & (^uint64(0) >> uint(63-end&63))
		fn(i, mask)
		lo = end + 1
	}
}

// Word masks of the even and the odd ports: a word starts at a multiple of
// 64, so bit k of any word holds a port of parity k%2.
const (
	evenPorts uint64 = 0x5555555555555555
	oddPorts  uint64 = evenPorts << 1
)

// parityMask returns the word mask of the ports of parity p (0 or 1).
func parityMask(p int) uint64 {
	if p&1 == 0 {
		return evenPorts
	}
	return oddPorts
}

// scanWords returns the smallest port q in [from, to] (clipped to
// 0..MaxPort) whose bit in the OR of sets, XORed with invert and ANDed with
// mask, is 1; -1 if none. With invert = all ones it finds ports no set holds
// (NextClear, Union.NextFree), with 0 ports some set holds (NextSet); mask
// all ones considers every port, evenPorts or oddPorts one parity
// (NextFreeParity). No sets means an empty OR. One word of each set is read
// per iteration, so the cost is O(len(sets)·(to-from)/64). It is the
// package's one word-at-a-time search.
func scanWords(sets []*PortSet, invert, mask uint64, from, to int) int {
	from, to, ok := clipSpan(from, to)
	if !ok {
		return -1
	}
	i, last := from>>6, to>>6
	// Drop the bits below from in the first word.
	x := (orWord(sets, i) ^ invert) & mask &^ (uint64(1)<<uint(from&63) - 1)
	for {
		if x != 0 {
			if q := i<<6 | bits.TrailingZeros64(x); q <= to {
				return q
			}
			return -1
		}
		if i >= last {
			return -1
		}
		i++
		x = (orWord(sets, i) ^ invert) & mask
	}
}

// countFree returns how many ports of [from, to] (clipped to 0..MaxPort) no
// set holds, one popcount per word.
func countFree(sets []*PortSet, from, to int) int {
	from, to, ok := clipSpan(from, to)
	if !ok {
		return 0
	}
	first, last := from>>6, to>>6
	head, tail := ^uint64(0)<<uint(from&63), ^uint64(0)>>uint(63-to&63)
	if first == last {
		return bits.OnesCount64(^orWord(sets, first) & head & tail)
	}
	n := bits.OnesCount64(^orWord(sets, first) & head)
	for i := first + 1; i < last; i++ {
		n += bits.OnesCount64(^orWord(sets, i))
	}
	return n + bits.OnesCount64(^orWord(sets, last)&tail)
}

// nthFree returns the n-th (from 0) port of [from, to] (clipped to
// 0..MaxPort) that no set holds, or -1. Words with at most n free ports are
// skipped by popcount; inside the word that holds the answer, the n lowest
// free bits are cleared and the next one is returned.
func nthFree(sets []*PortSet, from, to, n int) int {
	from, to, ok := clipSpan(from, to)
	if !ok || n < 0 {
		return -1
	}
	last := to >> 6
	x := ^orWord(sets, from>>6) & (^uint64(0) << uint(from&63))
	for i := from >> 6; ; {
		if i == last {
			x &= ^uint64(0) >> uint(63-to&63)
		}
		if c := bits.OnesCount64(x); n >= c {
			if i == last {
				return -1
			}
			n -= c
			i++
			x = ^orWord(sets, i)
			continue
		}
		for ; n > 0; n-- {
			x &= x - 1
		}
		return i<<6 | bits.TrailingZeros64(x)
	}
}

// orWord returns the OR of word i of every set, 0 for no sets. The common
// sizes are spelled out: a loop costs more than the OR itself.
func orWord(sets []*PortSet, i int) uint64 {
	switch len(sets) {
	case 0:
		return 0
	case 1:
		return sets[0].words[i]
	case 2:
		return sets[0].words[i] | sets[1].words[i]
	}
	w := sets[0].words[i] | sets[1].words[i]
	for _, s := range sets[2:] {
		w |= s.words[i]
	}
	return w
}

// clipSpan intersects [from, to] with 0..MaxPort and reports whether the
// result is non-empty.
func clipSpan(from, to int) (int, int, bool) {
	from = max(from, 0)
	to = min(to, MaxPort)
	return from, to, from <= to
}

// panicPort is kept out of line so the tiny Add/Remove stay inlinable.
//
//go:noinline
func panicPort(op string, p int) {
	panic(fmt.Sprintf("alloc: PortSet.%s(%d): port outside 0..%d", op, p, MaxPort))
}
