package alloc

import "fmt"

func init() {
	registerNAT(NATPickerSequential, func(NATConfig) (NATPicker, error) { return &natSequential{}, nil })
}

// natSequential is the "sequential" picker: one cursor per picker, the NAT
// counterpart of the host "sequential" allocator (the BSD lastport scheme,
// ns-3's counter): a NAT that hands out the next free port after the last
// one. No NAT in nat.md is documented to do exactly this; it is the
// simple, predictable baseline (the next port is trivial to guess, what
// RFC 6888 REQ-15 warns against, nat.md §1.5) and an assumption wherever a
// preset uses it. A Pick starts at the cursor if it lies in req.Pool, else at
// req.Pool.Low, probes upward, wrapping from High to Low, and takes the
// first free port; the cursor then moves to the port after it. A failed
// Pick leaves the cursor alone. Because the pool may differ per call (a
// host's port block, another external IP's pool), the cursor is a port
// number, not an index: a cursor outside this request's pool simply means
// "start at the bottom".
//
// req.Parity probes only the ports of the inside port's parity, from the
// first one at or above the cursor. The walk is two word-at-a-time
// searches; Probes counts the candidates a port-by-port walk would have
// examined. NATConfig.Rand, req.Mode and req.Evictable are ignored.
type natSequential struct {
	cursor int // the first port to try next; 0 before the first success

	last  natLast // for Explain
	start int     // the first candidate of the last call
}

func (p *natSequential) Name() string { return NATPickerSequential }

// Pick probes the pool (or its parity class) from the cursor.
func (p *natSequential) Pick(req *NATRequest, busy Busy) Result {
	c := natClassOf(req)
	p.last.cls = c
	if c.n == 0 {
		return p.last.set(Result{Err: EADDRNOTAVAIL})
	}
	s := 0
	if req.Pool.Contains(p.cursor) {
		if s = (p.cursor - c.first + c.step - 1) / c.step; s >= c.n {
			s = 0
		}
	}
	p.start = c.port(s)
	probes, q := c.linear(busy, s)
	if q < 0 {
		return p.last.set(Result{Probes: probes, Err: EADDRNOTAVAIL})
	}
	p.cursor = q + 1
	return p.last.set(Result{Port: uint16(q), Probes: probes, Err: OK})
}

// Explain implements Explainer, e.g. "sequential NAT cursor: pool
// 1024-65535 (64512), start 2001 → 2003, 3 candidates probed; cursor now
// 2004".
func (p *natSequential) Explain() string {
	l := &p.last
	if !l.done {
		return notYet(NATPickerSequential)
	}
	const src = "sequential NAT cursor: "
	if l.cls.n == 0 {
		return src + natSpan(l.cls) + " → " + l.Err.String()
	}
	if l.Err != OK {
		return fmt.Sprintf("%s%s, start %d, all busy → %s, %s; cursor unchanged", src, natSpan(l.cls), p.start, l.Err, probed(l.Probes))
	}
	wrap := ""
	if int(l.Port) < p.start {
		wrap = ", wrapped"
	}
	return fmt.Sprintf("%s%s, start %d → %d, %s%s; cursor now %d", src, natSpan(l.cls), p.start, l.Port, probed(l.Probes), wrap, p.cursor)
}
