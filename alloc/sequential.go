package alloc

import "fmt"

// sequential is one global counter over the range that wraps from High to
// Low, the BSD "lastport" scheme:
//
//   - ns-3 Ipv4EndPointDemux::AllocateEphemeralPort
//     (src/internet/model/ipv4-end-point-demux.cc): m_ephemeral starts at
//     49152 and is pre-incremented before each test, so the first port handed
//     out is 49153; after 65535 it wraps to 49152; a port is skipped while
//     LookupPortLocal finds an endpoint on it; after trying every port it
//     gives up (returns 0) and m_ephemeral is left unchanged.
//   - XNU in_pcbbind with net.inet.tcp.randomize_ports=0 (the macOS TCP
//     default): the per-protocol lastport steps by one through
//     portrange.first..last.
//   - FreeBSD in_pcb_lport_dest with net.inet.ip.portrange.randomized=0.
//
// Only the ascending direction is modelled (NetBSD's "bsd" algorithm and old
// XNU/BSD low ranges count down).
type sequential struct {
	r    Range
	next int // first candidate of the next allocation; always inside r

	last  lastCall // for Explain
	start int      // the counter at the last call: its first candidate
}

// newSequential builds the "sequential" allocator. cfg.Range is already
// validated; cfg.First (0 = Range.Low) must lie in the range.
func newSequential(cfg Config) (Allocator, error) {
	first := cfg.First
	if first == 0 {
		first = int(cfg.Range.Low)
	}
	if !cfg.Range.Contains(first) {
		return nil, fmt.Errorf("alloc: %s: first port %d is outside range %s", NameSequential, first, cfg.Range)
	}
	return &sequential{r: cfg.Range, next: first}, nil
}

func (a *sequential) Name() string { return NameSequential }

// Allocate tries next, next+1, ... wrapping High -> Low, takes the first port
// busy does not report, and moves next to the port after it (wrapping). Keeping
// the counter past the chosen port, rather than restarting at the old next,
// is what gives the sequential scheme its long reuse cycle: a port just
// released is not handed out again until the counter comes round.
//
// On failure the counter is left where it was, as ns-3 leaves m_ephemeral.
func (a *sequential) Allocate(req *Request, busy Busy) Result {
	a.start = a.next
	port, probes := probeFrom(a.r, a.next, busy)
	if port < 0 {
		return a.last.set(Result{Probes: probes, Err: failErrno(req)})
	}
	a.next = port + 1
	if a.next > int(a.r.High) {
		a.next = int(a.r.Low)
	}
	return a.last.set(Result{Port: uint16(port), Probes: probes, Err: OK})
}

// Explain implements Explainer, e.g. "sequential (lastport++): global
// counter at 49153, linear probe → 49156, 4 candidates probed; counter now
// 49157".
func (a *sequential) Explain() string {
	l := &a.last
	if !l.done {
		return notYet(NameSequential)
	}
	const src = "sequential (lastport++): global counter at %d, linear probe "
	if l.Err != OK {
		return fmt.Sprintf(src+"found all %d ports busy → %s; counter unchanged", a.start, l.Probes, l.Err)
	}
	return fmt.Sprintf(src+"→ %d, %s%s; counter now %d",
		a.start, l.Port, probed(l.Probes), wrapNote(a.r, a.start, int(l.Port)), a.next)
}
