package tcpstate

import (
	"fmt"
	"net/netip"

	"github.com/portsim/portsim/alloc"
)

// Table is one host's socket table for outbound TCP connections made with
// connect() on an unbound socket: which local ports are held, toward whom,
// in which state, and how many sockets sit in TIME_WAIT.
//
// Ports are grouped into conflict domains: the connections that compete for
// the same ports. Where connect() shares a local port across destinations as
// long as the 4-tuple is unique (Linux __inet_hash_connect with
// __inet_check_established; FreeBSD in_pcb_lport_dest), a domain is one
// (local address, destination address, destination port) 3-tuple and holds
// a bitset of the ports in use toward it, TIME_WAIT included. Where
// connect() takes a port no other socket uses (XNU in_pcbbind, Windows
// without SO_REUSE_UNICASTPORT, ns-3 LookupPortLocal), a domain is a whole
// local address. Either way "is port p usable" is one bit test, and finding
// the next usable port is word-at-a-time (alloc.Union).
//
// A Table never reads a clock or schedules anything: the caller tells it
// what happened (Connect, Apply) and it returns the new state.
type Table struct {
	prof    *Profile
	alloc   alloc.Allocator
	shares  bool
	locals  []*local
	domains []*Domain
	index   map[domainKey]int32

	// Count is the number of sockets in each state, over all domains.
	Count [NumStates]int
	// PortsInUse is the number of distinct (local address, port) pairs held
	// by at least one socket.
	PortsInUse int
	// TwOverflows counts sockets that skipped TIME_WAIT because
	// tcp_max_tw_buckets was reached (Linux TCPTIMEWAITOVERFLOW).
	TwOverflows uint64
}

type local struct {
	addr  netip.Addr
	refs  []uint32      // sockets holding each port, indexed by port
	used  alloc.PortSet // ports with refs > 0
	inUse int
}

type domainKey struct {
	local  int
	remote netip.AddrPort
}

// Domain is one conflict domain of a Table.
type Domain struct {
	// Local indexes the table's local addresses.
	Local int
	// LocalAddr is that address.
	LocalAddr netip.Addr
	// Remote is the destination, or the zero AddrPort for a port-exclusive
	// host where every destination competes for the same ports.
	Remote netip.AddrPort
	// Count is the number of sockets of this domain in each state.
	Count [NumStates]int
	// InUse is the number of sockets holding a port (all states but
	// CLOSED); for a port-exclusive host it equals the distinct ports held
	// on the local address.
	InUse int

	own  alloc.PortSet // ports held toward Remote (sharing hosts only)
	busy alloc.Union
	req  alloc.Request
}

// NewTable returns an empty table for a host with profile p, local
// addresses locals (at least one) and the connect() allocator a. The
// profile is referenced, not copied; it must not change during the run.
func NewTable(p *Profile, locals []netip.Addr, a alloc.Allocator) (*Table, error) {
	if len(locals) == 0 {
		return nil, fmt.Errorf("tcpstate: a host needs at least one local address")
	}
	if err := p.PortRange.Validate(); err != nil {
		return nil, fmt.Errorf("tcpstate: %w", err)
	}
	t := &Table{prof: p, alloc: a, shares: p.ConnectSharesPort, index: map[domainKey]int32{}}
	for _, addr := range locals {
		t.locals = append(t.locals, &local{addr: addr, refs: make([]uint32, 1<<16)})
	}
	return t, nil
}

// Domain returns the index of the conflict domain of connections from local
// address index l to remote, creating it on first use. Call it while setting
// up a run, not per connection (it uses a map).
func (t *Table) Domain(l int, remote netip.AddrPort) (int32, error) {
	if l < 0 || l >= len(t.locals) {
		return 0, fmt.Errorf("tcpstate: local address index %d out of range", l)
	}
	key := domainKey{local: l}
	if t.shares {
		key.remote = remote
	}
	if d, ok := t.index[key]; ok {
		return d, nil
	}
	loc := t.locals[l]
	d := &Domain{Local: l, LocalAddr: loc.addr, Remote: key.remote}
	d.req = alloc.Request{Local: loc.addr, Remote: remote, Fail: alloc.EADDRNOTAVAIL}
	if t.shares {
		d.busy = alloc.NewUnion(&t.prof.Reserved, &d.own)
	} else {
		d.busy = alloc.NewUnion(&t.prof.Reserved, &loc.used)
	}
	t.domains = append(t.domains, d)
	i := int32(len(t.domains) - 1)
	t.index[key] = i
	return i, nil
}

// Domains returns the table's conflict domains in creation order. The
// caller must not modify them.
func (t *Table) Domains() []*Domain { return t.domains }

// Shares reports whether connect() shares ports across destinations.
func (t *Table) Shares() bool { return t.shares }

// Connect models connect() on an unbound socket in domain d: the allocator
// picks a local port usable for the 4-tuple (not reserved, not held in the
// domain), and the socket enters SYN_SENT holding it. On exhaustion the
// result carries EADDRNOTAVAIL (tcp_v4_connect -> inet_hash_connect) and
// nothing changes.
func (t *Table) Connect(d int32) alloc.Result {
	dom := t.domains[d]
	r := t.alloc.Allocate(&dom.req, &dom.busy)
	if r.Err != alloc.OK {
		return r
	}
	loc := t.locals[dom.Local]
	p := r.Port
	if t.shares {
		dom.own.Add(int(p))
	}
	if loc.refs[p] == 0 {
		loc.used.Add(int(p))
		loc.inUse++
		t.PortsInUse++
	}
	loc.refs[p]++
	dom.InUse++
	dom.Count[SynSent]++
	t.Count[SynSent]++
	return r
}

// Apply feeds input in to a socket of domain d on port, currently in state
// s, and returns its new state (RFC 9293 §3.3.2 via Transition). Entering
// TIME_WAIT when tcp_max_tw_buckets sockets already wait skips TIME_WAIT and
// closes at once (Linux inet_twsk_alloc/tcp_time_wait, os-semantics.md
// §4.3). Entering CLOSED releases the port. An input that is not valid in s
// is a bug in the caller and panics.
func (t *Table) Apply(d int32, port uint16, s State, in Input) State {
	n, ok := Transition(s, in)
	if !ok {
		panic(fmt.Sprintf("tcpstate: %v is not valid in %v", in, s))
	}
	if n == TimeWait && t.prof.TCPMaxTwBuckets != NoTwCap && t.Count[TimeWait] >= t.prof.TCPMaxTwBuckets {
		t.TwOverflows++
		n = Closed
	}
	dom := t.domains[d]
	dom.Count[s]--
	t.Count[s]--
	dom.Count[n]++
	t.Count[n]++
	if n == Closed {
		t.release(dom, port)
	}
	return n
}

// release frees port in dom after its socket reached CLOSED.
func (t *Table) release(dom *Domain, port uint16) {
	dom.Count[Closed]--
	t.Count[Closed]--
	dom.InUse--
	if t.shares {
		dom.own.Remove(int(port))
	}
	loc := t.locals[dom.Local]
	loc.refs[port]--
	if loc.refs[port] == 0 {
		loc.used.Remove(int(port))
		loc.inUse--
		t.PortsInUse--
	}
}

// UsablePorts is how many ports a domain can hold at once: the ephemeral
// range minus the reserved ports in it.
func (t *Table) UsablePorts() int { return t.prof.UsablePorts() }
