package tcpstate

import (
	"fmt"
	"net/netip"
	"time"

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
// a bitset of the ports in use toward it, TIME_WAIT included.
//
// Where connect() takes a port no other socket uses, a domain is every
// local address of one address family: the implicit bind runs before the
// source address is chosen, so a port held on any address of the host is
// taken for all of them. XNU tcp_connect calls in_pcbbind with inp_laddr
// still INADDR_ANY, whose wildcard in_pcblookup_local matches a PCB on any
// address (os-semantics.md §6.1); ns-3 LookupPortLocal matches an endpoint
// of any address in the family's demux (§8.2); Windows keeps one
// wildcard-port pool across local addresses per IP version (§0 item 7,
// §6.2).
//
// Either way "is port p usable" is one bit test, and finding the next usable
// port is word-at-a-time (alloc.Union).
//
// A Table never reads a clock or schedules anything: the caller tells it
// what happened (Connect, Apply) and it returns the new state.
//
// On a Linux host with net.ipv4.ip_autobind_reuse (Profile.AutobindReuse)
// bind(addr, 0) with SO_REUSEADDR may share a port once the range is used
// up (the relax pass of inet_csk_find_open_port, Linux 6.18), so the table
// then also counts each port's holders by kind (Held) and each domain's
// TIME_WAIT sockets (NoteTimeWait); other hosts pay nothing for it.
type Table struct {
	prof     *Profile
	alloc    alloc.Allocator
	bind     alloc.Allocator // bind(addr, 0); nil until SetBindAllocator
	last     alloc.Allocator // the allocator of the latest Connect, for Explain
	fail     alloc.Errno     // what connect()/autobind fails with
	udp      bool
	shares   bool
	reserved *alloc.PortSet // prof.Reserved, or nil when it is empty
	locals   []netip.Addr   // the host's addresses, as given
	poolOf   []int          // pool index of each local address
	pools    []*pool
	domains  []*Domain
	index    map[domainKey]int32

	// relax: Linux with ip_autobind_reuse on a port-sharing host, where
	// bindConnect may run the relax pass; the pools keep holders by kind.
	relax bool
	// twTrack: relax with tcp_timestamps, where a bound socket's connect()
	// may take a TIME_WAIT 4-tuple over; the domains keep their TIME_WAIT
	// sockets (NoteTimeWait).
	twTrack bool
	note    bindNote // what the latest bind-connect's relax pass led to, for Explain

	// Count is the number of sockets in each state, over all domains.
	// Count[Closed] is always 0: a closed socket is gone.
	Count [NumStates]int
	// PortsInUse is the number of distinct (local address, port) pairs held
	// by at least one socket. On a port-exclusive host, where a domain
	// spans several addresses, each held port counts once.
	PortsInUse int
	// TwOverflows counts sockets that skipped TIME_WAIT because
	// tcp_max_tw_buckets was reached (Linux TCPTIMEWAITOVERFLOW).
	TwOverflows uint64
	// TwRecycled counts TIME_WAIT sockets whose 4-tuple connect() took over
	// (Linux TIMEWAITRECYCLED): under tcp_tw_reuse, or on a port that
	// bind(0)'s ip_autobind_reuse relax pass shared.
	TwRecycled uint64
}

// pool is what a set of domains shares on one local address (or, on a
// port-exclusive host, one address family): how many sockets hold each
// port.
type pool struct {
	addr netip.Addr    // the local address, or the family's unspecified address
	refs []uint32      // sockets holding each port, indexed by port
	used alloc.PortSet // ports with refs > 0
	// bound holds ports taken by bind(addr, 0): their bind bucket has
	// fastreuse >= 0, so Linux connect() autobind skips them while the
	// socket, or its TIME_WAIT, lives (__inet_hash_connect, os-semantics.md
	// §2.3, §10 item 1).
	bound    alloc.PortSet
	bindBusy alloc.Union   // reserved and used: bind(0) takes no port any socket on the address holds
	bindReq  alloc.Request // the bind(0) request, Fail EADDRINUSE

	rx *poolRelax // with Table.relax only, nil otherwise
}

// poolRelax is what a pool keeps on an ip_autobind_reuse host: each port's
// holders by kind, which the relax pass of inet_csk_find_open_port needs
// (inet_bind_conflict with relax = true, reuseport_ok = false), and the
// bind(0) views built on them.
type poolRelax struct {
	strictRefs []uint32      // holders without SO_REUSEADDR: never shared
	strict     alloc.PortSet // ports with strictRefs > 0
	rportRefs  []uint32      // holders with SO_REUSEPORT: not shared with a SO_REUSEPORT binder
	rport      alloc.PortSet // ports with rportRefs > 0
	// boundRefs counts the bind(0) holders of each port: bind(0) may share
	// a port under the relax pass, and the port stays in pool.bound
	// (skipped by connect() autobind) while any of them, TIME_WAIT
	// included, lives.
	boundRefs []uint32
	// views are the bind(0) views, indexed by relaxKind.
	views [3]relaxView
}

// relaxView is the alloc.Busy of bind(addr, 0) on an ip_autobind_reuse
// host: the strict view (reserved and every held port), and through
// alloc.Relaxer the view of the relax pass.
type relaxView struct {
	alloc.Union             // strict: reserved and pool.used
	relaxed     alloc.Union // the relax pass: reserved and the ports some holder keeps
}

// Relaxed implements alloc.Relaxer: the view built with the pool.
func (v *relaxView) Relaxed() alloc.Busy { return &v.relaxed }

// relaxKind indexes poolRelax.views by the binding socket's options. In
// the relax pass inet_bind_conflict (Linux 6.18) lets sk share with sk2
// only when both set SO_REUSEADDR and sk2 is not listening, and even then
// not when both also set SO_REUSEPORT (same uid, or sk2 in TIME_WAIT:
// reuseport_ok is false in inet_csk_find_open_port). Without SO_REUSEADDR
// every holder conflicts: the pass runs, as in the kernel, and finds what
// the strict one found.
func relaxKind(c *ConnectReq) int {
	switch {
	case !c.ReuseAddr:
		return 0
	case !c.ReusePort:
		return 1
	}
	return 2
}

// Held says how a socket holds its local port: the options that decide
// whom an ip_autobind_reuse bind(0) may share it with, and whether it came
// from bind(addr, 0). ConnectReq.Held gives it; ApplyHeld and NoteTimeWait
// take it back.
type Held uint8

const (
	// HeldBound: the port came from bind(addr, 0) (ConnectReq.Bind).
	HeldBound Held = 1 << iota
	// HeldReuseAddr: the socket set SO_REUSEADDR (ConnectReq.ReuseAddr).
	HeldReuseAddr
	// HeldReusePort: the socket set SO_REUSEPORT (ConnectReq.ReusePort).
	HeldReusePort
)

// twSock is a TIME_WAIT socket of a domain: the caller's id and its kind.
type twSock struct {
	id   int32
	held Held
}

// bindNote is what the relax pass of the latest bind-connect led to.
type bindNote struct {
	kind      uint8 // noteNone, ...
	reusePort bool  // the binding socket set SO_REUSEPORT too
	port      uint16
	shared    uint32 // sockets already holding the port
}

const (
	noteNone     uint8 = iota
	noteShared         // the relax pass gave a port other sockets hold
	noteTakeover       // ... whose 4-tuple a TIME_WAIT held: taken over
	noteLive           // ... whose 4-tuple a socket not in TIME_WAIT holds: EADDRNOTAVAIL
	noteNoTS           // ... whose 4-tuple is held, tcp_timestamps off: EADDRNOTAVAIL
)

type domainKey struct {
	pool   int
	remote netip.AddrPort
}

// Domain is one conflict domain of a Table: the sockets that compete for
// the same local ports.
type Domain struct {
	// LocalAddr is the local address of the domain's sockets. For a
	// port-exclusive host with several addresses of the family it is the
	// unspecified address (0.0.0.0 or ::), as netstat shows a wildcard.
	LocalAddr netip.Addr
	// Remote is the destination, or the zero AddrPort for a port-exclusive
	// host where every destination competes for the same ports.
	Remote netip.AddrPort
	// Count is the number of sockets of this domain in each state
	// (Count[Closed] is always 0).
	Count [NumStates]int
	// InUse is the number of sockets holding a port (all states but
	// CLOSED); for a port-exclusive host it equals the distinct ports held.
	InUse int

	pool      int
	localPeer bool          // Remote is 127.0.0.1, ::1 or one of the host's addresses
	own       alloc.PortSet // ports a new connect() toward Remote may not take (sharing hosts only)
	busy      alloc.Union
	req       alloc.Request
	// reusable maps a port whose TIME_WAIT socket connect() may take over
	// (tcp_twsk_unique) to the caller's id for that socket. Such a port is
	// still held but no longer in own, so the allocator's scan treats it as
	// usable, in the kernel's candidate order.
	reusable map[uint16]int32
	// tw maps the port of each TIME_WAIT socket to its id and kind
	// (Table.twTrack only, from NoteTimeWait): a bound socket's connect()
	// after an ip_autobind_reuse bind(0) takes it over at once.
	tw map[uint16]twSock
}

// NewTable returns an empty table for a host with profile p, local
// addresses locals (at least one, all valid) and the connect() allocator a.
// The profile is referenced, not copied; it must not change during the run.
//
// Errors: no local address, an invalid address, or an invalid
// p.PortRange.
func NewTable(p *Profile, locals []netip.Addr, a alloc.Allocator) (*Table, error) {
	if len(locals) == 0 {
		return nil, fmt.Errorf("tcpstate: a host needs at least one local address")
	}
	if err := p.PortRange.Validate(); err != nil {
		return nil, fmt.Errorf("tcpstate: %w", err)
	}
	t := &Table{prof: p, alloc: a, fail: alloc.EADDRNOTAVAIL, shares: p.ConnectSharesPort, index: map[domainKey]int32{}}
	if p.Reserved.Len() > 0 {
		t.reserved = &p.Reserved
	}
	t.locals = append([]netip.Addr(nil), locals...)
	family := map[bool]int{} // Is4 -> pool, port-exclusive hosts
	for _, addr := range locals {
		if !addr.IsValid() {
			return nil, fmt.Errorf("tcpstate: invalid local address %v", addr)
		}
		if t.shares {
			t.poolOf = append(t.poolOf, t.newPool(addr))
			continue
		}
		v4 := addr.Unmap().Is4()
		i, ok := family[v4]
		if !ok {
			i = t.newPool(addr)
			family[v4] = i
		} else if v4 {
			t.pools[i].addr = netip.IPv4Unspecified()
		} else {
			t.pools[i].addr = netip.IPv6Unspecified()
		}
		t.poolOf = append(t.poolOf, i)
	}
	// The relax pass shares by 4-tuple, so it is modelled where connect()
	// shares ports (Linux); NewUDPTable's port-exclusive copy has none.
	t.relax = p.Family == "linux" && p.AutobindReuse && t.shares
	t.twTrack = t.relax && p.TCPTimestamps
	for _, pl := range t.pools {
		pl.bindBusy = alloc.NewUnion(t.reserved, &pl.used)
		pl.bindReq = alloc.Request{Local: pl.addr, Fail: alloc.EADDRINUSE}
		if t.relax {
			rx := &poolRelax{
				strictRefs: make([]uint32, alloc.NumPorts),
				rportRefs:  make([]uint32, alloc.NumPorts),
				boundRefs:  make([]uint32, alloc.NumPorts),
			}
			rx.views = [3]relaxView{
				{pl.bindBusy, pl.bindBusy},
				{pl.bindBusy, alloc.NewUnion(t.reserved, &rx.strict)},
				{pl.bindBusy, alloc.NewUnion(t.reserved, &rx.strict, &rx.rport)},
			}
			pl.rx = rx
		}
	}
	return t, nil
}

// NewUDPTable returns the table of a host's UDP port space, independent of
// TCP's: autobind (connect() or sendto() on an unbound datagram socket)
// takes a port no other UDP socket on the address holds, whatever the
// destination (Linux udp_lib_get_port, os-semantics.md §3.6, §10 item 8;
// XNU and FreeBSD in_pcbbind likewise), with allocator a (the profile's
// UDPAllocator). Exhaustion is EAGAIN on Linux (inet_autobind) and
// EADDRNOTAVAIL elsewhere. UDP sockets have no TIME_WAIT.
func NewUDPTable(p *Profile, locals []netip.Addr, a alloc.Allocator) (*Table, error) {
	q := *p
	q.ConnectSharesPort = false
	t, err := NewTable(&q, locals, a)
	if err != nil {
		return nil, err
	}
	t.udp = true
	if p.Family == "linux" {
		t.fail = alloc.EAGAIN
	}
	return t, nil
}

// Explain describes how the latest Connect chose its port (or failed), in
// the allocator's own terms (alloc.Explainer), or names the allocator when
// it has no explanation; after a bind(addr, 0) that the ip_autobind_reuse
// relax pass served, it adds what the port's sharing led to.
func (t *Table) Explain() string {
	if t.last == nil {
		return ""
	}
	var s string
	if e, ok := t.last.(alloc.Explainer); ok {
		s = e.Explain()
	} else {
		s = t.last.Name()
	}
	if t.last == t.bind && t.note.kind != noteNone {
		s += t.note.String()
	}
	return s
}

// String is the rule a bindNote records, to follow the allocator's
// explanation.
func (n bindNote) String() string {
	also := ""
	if n.reusePort {
		also = ", none with SO_REUSEPORT"
	}
	s := fmt.Sprintf("; port %d already held by %d socket(s), all with SO_REUSEADDR%s and none listening: shared by the ip_autobind_reuse relax pass (inet_csk_find_open_port)", n.port, n.shared, also)
	switch n.kind {
	case noteTakeover:
		s += "; connect() finds the 4-tuple in TIME_WAIT: bound socket takes over TIME_WAIT 4-tuple without tcp_tw_reuse (tcp_twsk_unique with twp == NULL), TIMEWAITRECYCLED"
	case noteLive:
		s += "; connect() finds the 4-tuple held by a socket not in TIME_WAIT (__inet_check_established) → EADDRNOTAVAIL; closing the socket frees its port"
	case noteNoTS:
		s += "; connect() finds the 4-tuple held, and with tcp_timestamps off not even a TIME_WAIT can be taken over (tcp_twsk_unique needs tw_ts_recent_stamp) → EADDRNOTAVAIL; closing the socket frees its port"
	}
	return s
}

// SetBindAllocator sets the allocator bind(addr, 0) uses (the profile's
// BindAllocator, e.g. Linux inet_csk_find_open_port).
func (t *Table) SetBindAllocator(a alloc.Allocator) { t.bind = a }

func (t *Table) newPool(addr netip.Addr) int {
	t.pools = append(t.pools, &pool{addr: addr, refs: make([]uint32, alloc.NumPorts)})
	return len(t.pools) - 1
}

// Domain returns the index of the conflict domain of connections from local
// address index l (into the addresses given to NewTable) to remote,
// creating it on first use. On a port-exclusive host every destination, and
// every address of l's family, maps to the same domain. Call it while
// setting up a run, not per connection (it uses a map). The error reports an
// l out of range.
func (t *Table) Domain(l int, remote netip.AddrPort) (int32, error) {
	if l < 0 || l >= len(t.poolOf) {
		return 0, fmt.Errorf("tcpstate: local address index %d out of range", l)
	}
	key := domainKey{pool: t.poolOf[l]}
	if t.shares {
		key.remote = remote
	}
	if d, ok := t.index[key]; ok {
		return d, nil
	}
	pl := t.pools[key.pool]
	d := &Domain{LocalAddr: pl.addr, Remote: key.remote, pool: key.pool}
	d.req = alloc.Request{Local: pl.addr, Remote: key.remote, Fail: t.fail}
	if t.shares {
		var bound *alloc.PortSet
		if t.prof.Family == "linux" {
			bound = &pl.bound
		}
		d.busy = alloc.NewUnion(t.reserved, &d.own, bound)
		d.localPeer = t.isLocal(remote.Addr())
	} else {
		d.busy = alloc.NewUnion(t.reserved, &pl.used)
	}
	t.domains = append(t.domains, d)
	i := int32(len(t.domains) - 1)
	t.index[key] = i
	return i, nil
}

// isLocal reports whether a is one of the host's own addresses or the
// loopback address lo0 carries by default (127.0.0.1, ::1): the addresses
// FreeBSD in_localip / in6_localip find assigned to an interface.
func (t *Table) isLocal(a netip.Addr) bool {
	a = a.Unmap()
	if a == netip.AddrFrom4([4]byte{127, 0, 0, 1}) || a == netip.IPv6Loopback() {
		return true
	}
	for _, l := range t.locals {
		if l.Unmap() == a {
			return true
		}
	}
	return false
}

// SkipsTimeWait reports whether an active close in domain d never enters
// TIME_WAIT, whatever else is going on: tcp_max_tw_buckets is 0 (Linux
// inet_twsk_alloc refuses every minisock), or the profile has
// NoLocalTimeWait and d's peer is local (FreeBSD nolocaltimewait). A caller
// predicting occupancy (Little's law, Erlang B) must then leave TIME_WAIT
// out of the holding time. A tcp_max_tw_buckets cap that is merely reached
// is not covered: whether it is depends on the load.
func (t *Table) SkipsTimeWait(d int32) bool {
	return t.prof.TCPMaxTwBuckets == 0 || (t.prof.NoLocalTimeWait && t.domains[d].localPeer)
}

// Domains returns the table's conflict domains in creation order. The
// caller must not modify them.
func (t *Table) Domains() []*Domain { return t.domains }

// Shares reports whether connect() shares ports across destinations.
func (t *Table) Shares() bool { return t.shares }

// Connect models connect() on an unbound socket in domain d: the allocator
// picks a local port usable for the 4-tuple (not reserved, not held in the
// domain), and the socket enters SYN_SENT holding it. On exhaustion the
// result carries EADDRNOTAVAIL (tcp_v4_connect -> inet_hash_connect; XNU
// in_pcbbind; FreeBSD in_pcb_lport_dest; EAGAIN for Linux UDP autobind)
// and nothing changes. c names the 4-tuple and the virtual time, which
// time-keyed allocators read (Linux 5.18+'s 10-second epoch, FreeBSD 13's
// per-second count); with c.Bind the port comes from bind(addr, 0) first
// (EADDRINUSE on exhaustion) and the socket must be released with
// ApplyBound (in general, ApplyHeld with c.Held()); with
// net.ipv4.ip_autobind_reuse that bind(0) may share a
// port, and connect() may then take a TIME_WAIT over or fail with
// EADDRNOTAVAIL (see bindConnect).
//
// When the port chosen belongs to a TIME_WAIT socket that MarkReusable made
// reusable, connect() takes its 4-tuple over (tcp_twsk_unique: the
// TIME_WAIT minisock is killed, TIMEWAITRECYCLED): the result's takeover is
// the id given to MarkReusable (for a bound socket's takeover after the
// ip_autobind_reuse relax pass, the id given to NoteTimeWait), and that
// socket is gone from the counts — the caller must not Apply anything to it
// again. takeover is -1 otherwise.
func (t *Table) Connect(d int32, c ConnectReq) (r alloc.Result, takeover int32) {
	dom := t.domains[d]
	pl := t.pools[dom.pool]
	if c.Bind {
		return t.bindConnect(dom, pl, &c)
	}
	// On a port-exclusive host one domain serves every destination (and,
	// with several addresses, every source), so the request names the
	// actual 4-tuple for allocators keyed on it (RFC 6056 §3.3.3-3.3.4).
	dom.req.Local, dom.req.Remote, dom.req.Now, dom.req.LocalRange = c.Local, c.Remote, c.Now, c.LocalRange
	t.last = t.alloc
	r = t.alloc.Allocate(&dom.req, &dom.busy)
	if r.Err != alloc.OK {
		return r, -1
	}
	p := r.Port
	if t.shares {
		dom.own.Add(int(p))
	}
	if id, ok := dom.reusable[p]; ok {
		delete(dom.reusable, p)
		t.takeOver(dom, pl, p, c.Held())
		return r, id
	}
	t.hold(dom, pl, p)
	if t.relax {
		t.holdKind(pl, p, c.Held())
	}
	return r, -1
}

// takeOver replaces dom's TIME_WAIT socket on port p by a new socket of
// kind h in SYN_SENT on the same 4-tuple (tcp_twsk_unique: the TIME_WAIT
// minisock is killed, TIMEWAITRECYCLED): the port stays held, nothing else
// changes but the counts and, with relax, the holders' kinds.
func (t *Table) takeOver(dom *Domain, pl *pool, p uint16, h Held) {
	dom.Count[TimeWait]--
	t.Count[TimeWait]--
	dom.Count[SynSent]++
	t.Count[SynSent]++
	t.TwRecycled++
	if t.relax {
		old, ok := dom.tw[p]
		if !ok {
			panic(fmt.Sprintf("tcpstate: TIME_WAIT takeover on port %d, which NoteTimeWait never named", p))
		}
		delete(dom.tw, p)
		t.dropKind(pl, p, old.held)
		t.holdKind(pl, p, h)
	}
}

// ConnectReq describes one connect() (or UDP autobind) for Table.Connect.
type ConnectReq struct {
	// Local and Remote are the connection's addresses.
	Local  netip.Addr
	Remote netip.AddrPort
	// Now is the virtual time since the start of the run.
	Now time.Duration
	// LocalRange is IP_LOCAL_PORT_RANGE, zero when unset.
	LocalRange alloc.Range
	// Bind asks for bind(Local, 0) before connect(): the port comes from
	// the bind allocator, exclusive on the address (unless the
	// ip_autobind_reuse relax pass shares it), and the socket must be
	// released with ApplyBound (ApplyHeld with Held).
	Bind bool
	// ReuseAddr is SO_REUSEADDR (Linux bind(0) tries the lower half first;
	// with ip_autobind_reuse it may share a port with other SO_REUSEADDR
	// sockets).
	ReuseAddr bool
	// ReusePort is SO_REUSEPORT: it only keeps the ip_autobind_reuse relax
	// pass off ports whose holders set it too.
	ReusePort bool
}

// Held is the kind of holder a socket that Connect gave a port for c is,
// for ApplyHeld and NoteTimeWait.
func (c *ConnectReq) Held() Held {
	var h Held
	if c.Bind {
		h |= HeldBound
	}
	if c.ReuseAddr {
		h |= HeldReuseAddr
	}
	if c.ReusePort {
		h |= HeldReusePort
	}
	return h
}

// bindConnect is bind(addr, 0) then connect(): inet_csk_find_open_port
// takes a port no socket on the address holds (relax=false: SO_REUSEADDR
// and SO_REUSEPORT do not let bind(0) share, os-semantics.md §3.2), failing
// with EADDRINUSE; connect() on the bound port then only checks the 4-tuple,
// which is unique because no socket on the address holds the port.
//
// With net.ipv4.ip_autobind_reuse (Table.relax) a search that finds no
// such port runs again in relax mode (inet_csk_find_open_port, Linux 6.18:
// "goto ports_exhausted" with relax = true), where a port held only by
// non-listening SO_REUSEADDR sockets is usable by a SO_REUSEADDR socket,
// whatever their destinations (inet_bind_conflict; a TIME_WAIT holder
// counts with its socket's SO_REUSEADDR, tw_reuse). connect() on such a port
// calls __inet_hash_connect with the port set, so only check_established
// with twp == NULL runs (__inet_check_established): a same-4-tuple socket
// not in TIME_WAIT makes it fail with EADDRNOTAVAIL (the result carries
// the port; nothing stays held, as the application closes the socket);
// a same-4-tuple TIME_WAIT is taken over at once when it saw the peer's
// timestamps (tcp_twsk_unique: "ts_recent_stamp && (!twp || ...)", so
// neither tcp_tw_reuse nor tcp_tw_reuse_delay matter), and its id comes
// back as the takeover, as in Connect. An orphaned FIN_WAIT_2, a TIME_WAIT
// minisock of substate FIN_WAIT2 in the kernel, counts as not in TIME_WAIT
// here (a known simplification).
func (t *Table) bindConnect(dom *Domain, pl *pool, c *ConnectReq) (alloc.Result, int32) {
	pl.bindReq.Local, pl.bindReq.Now, pl.bindReq.ReuseAddr, pl.bindReq.LocalRange = c.Local, c.Now, c.ReuseAddr, c.LocalRange
	t.last = t.bind
	if !t.relax {
		r := t.bind.Allocate(&pl.bindReq, &pl.bindBusy)
		if r.Err != alloc.OK {
			return r, -1
		}
		if t.shares {
			dom.own.Add(int(r.Port))
		}
		pl.bound.Add(int(r.Port))
		t.hold(dom, pl, r.Port)
		return r, -1
	}
	t.note = bindNote{}
	r := t.bind.Allocate(&pl.bindReq, &pl.rx.views[relaxKind(c)])
	if r.Err != alloc.OK {
		return r, -1
	}
	p, h := r.Port, c.Held()
	if n := pl.refs[p]; n > 0 {
		// The strict view has every held port: the relax pass chose it.
		t.note = bindNote{kind: noteShared, reusePort: c.ReusePort, port: p, shared: n}
		_, marked := dom.reusable[p]
		if marked || dom.own.Has(int(p)) {
			tw, isTW := dom.tw[p] // only with twTrack: tcp_timestamps
			switch {
			case isTW:
				t.note.kind = noteTakeover
				if marked {
					delete(dom.reusable, p)
					dom.own.Add(int(p))
				}
				t.takeOver(dom, pl, p, h)
				return r, tw.id
			case t.twTrack:
				t.note.kind = noteLive
			default:
				t.note.kind = noteNoTS
			}
			r.Err = alloc.EADDRNOTAVAIL
			return r, -1
		}
	}
	dom.own.Add(int(p))
	t.hold(dom, pl, p)
	t.holdKind(pl, p, h)
	return r, -1
}

// holdKind records a new holder of kind h on port p (Table.relax only).
func (t *Table) holdKind(pl *pool, p uint16, h Held) {
	rx := pl.rx
	if h&HeldReuseAddr == 0 {
		if rx.strictRefs[p] == 0 {
			rx.strict.Add(int(p))
		}
		rx.strictRefs[p]++
	}
	if h&HeldReusePort != 0 {
		if rx.rportRefs[p] == 0 {
			rx.rport.Add(int(p))
		}
		rx.rportRefs[p]++
	}
	if h&HeldBound != 0 {
		if rx.boundRefs[p] == 0 {
			pl.bound.Add(int(p))
		}
		rx.boundRefs[p]++
	}
}

// dropKind removes a holder of kind h from port p (Table.relax only).
func (t *Table) dropKind(pl *pool, p uint16, h Held) {
	rx := pl.rx
	if h&HeldReuseAddr == 0 {
		if rx.strictRefs[p]--; rx.strictRefs[p] == 0 {
			rx.strict.Remove(int(p))
		}
	}
	if h&HeldReusePort != 0 {
		if rx.rportRefs[p]--; rx.rportRefs[p] == 0 {
			rx.rport.Remove(int(p))
		}
	}
	if h&HeldBound != 0 {
		if rx.boundRefs[p]--; rx.boundRefs[p] == 0 {
			pl.bound.Remove(int(p))
		}
	}
}

// hold records a new socket of dom on port p in SYN_SENT.
func (t *Table) hold(dom *Domain, pl *pool, p uint16) {
	if pl.refs[p] == 0 {
		pl.used.Add(int(p))
		t.PortsInUse++
	}
	pl.refs[p]++
	dom.InUse++
	dom.Count[SynSent]++
	t.Count[SynSent]++
}

// MarkReusable records that the TIME_WAIT socket id of domain d on port may
// now be taken over by connect() toward the same destination: Linux
// tcp_twsk_unique allows it when the TIME_WAIT saw the peer's timestamps
// and tcp_tw_reuse is 1 (or 2 with a loopback peer) and
// tcp_tw_reuse_delay has passed since it entered TIME_WAIT
// (os-semantics.md §4.5). The caller decides when; see ReuseApplies.
func (t *Table) MarkReusable(d int32, port uint16, id int32) {
	dom := t.domains[d]
	if dom.reusable == nil {
		dom.reusable = map[uint16]int32{}
	}
	dom.reusable[port] = id
	dom.own.Remove(int(port))
}

// TracksTimeWait reports whether the caller must tell the table, with
// NoteTimeWait, of every socket that enters TIME_WAIT: on a Linux host with
// ip_autobind_reuse and tcp_timestamps, where connect() on a port that the
// relax pass of bind(0) shared takes a same-4-tuple TIME_WAIT over at once
// (tcp_twsk_unique with twp == NULL, Linux 6.18).
func (t *Table) TracksTimeWait() bool { return t.twTrack }

// NoteTimeWait records that socket id of domain d, of kind h (the
// ConnectReq.Held of its Connect), entered TIME_WAIT on port: a bound
// socket's connect() may take its 4-tuple over, and Connect then returns
// id as the takeover. It does nothing unless TracksTimeWait. The entry
// goes when the socket reaches CLOSED or is taken over.
func (t *Table) NoteTimeWait(d int32, port uint16, id int32, h Held) {
	if !t.twTrack {
		return
	}
	dom := t.domains[d]
	if dom.tw == nil {
		dom.tw = map[uint16]twSock{}
	}
	dom.tw[port] = twSock{id: id, held: h}
}

// ReuseApplies reports whether connect() in domain d may take over TIME_WAIT
// 4-tuples (tcp_twsk_unique, os-semantics.md §4.5): only where connect()
// shares ports by 4-tuple (Linux), with tcp_timestamps on (the TIME_WAIT
// must have seen the peer's timestamps; peers are assumed to use them when
// the host does), and tcp_tw_reuse 1, or 2 when the peer or the local
// address is loopback.
func (t *Table) ReuseApplies(d int32) bool {
	p := t.prof
	if !t.shares || p.Family != "linux" || !p.TCPTimestamps {
		return false
	}
	dom := t.domains[d]
	switch p.TCPTwReuse {
	case 1:
		return true
	case 2:
		return dom.Remote.Addr().IsLoopback() || dom.LocalAddr.IsLoopback()
	}
	return false
}

// Apply feeds input in to a socket of domain d on port, currently in state
// s, and returns its new state (RFC 9293 §3.3.2 via Transition). Entering
// CLOSED releases the port.
//
// TIME_WAIT is skipped, the socket closing at once, in two cases: when
// tcp_max_tw_buckets sockets already wait (Linux inet_twsk_alloc returns
// NULL and tcp_time_wait calls tcp_done, os-semantics.md §4.3; counted in
// TwOverflows), and when the profile has NoLocalTimeWait and the peer is a
// local address (FreeBSD tcp_twstart with net.inet.tcp.nolocaltimewait,
// §5.4).
//
// An input that is not valid in s, or any input to a CLOSED socket (a
// socket enters SYN_SENT only through Connect, which takes its port), is a
// bug in the caller and panics.
//
// Apply is for a socket connected without Bind, ReuseAddr or ReusePort; in
// general use ApplyHeld.
func (t *Table) Apply(d int32, port uint16, s State, in Input) State {
	return t.apply(d, port, s, in, 0)
}

// ApplyBound is Apply for a socket that Connect gave a port with Bind set
// (and neither ReuseAddr nor ReusePort): when it reaches CLOSED its bind
// bucket goes too, and Linux connect() autobind may use the port again.
func (t *Table) ApplyBound(d int32, port uint16, s State, in Input) State {
	return t.apply(d, port, s, in, HeldBound)
}

// ApplyHeld is Apply for a socket of kind h, the ConnectReq.Held of the
// Connect that gave it its port: where ip_autobind_reuse lets bind(0)
// share ports, the table counts each port's holders by kind.
func (t *Table) ApplyHeld(d int32, port uint16, s State, in Input, h Held) State {
	return t.apply(d, port, s, in, h)
}

func (t *Table) apply(d int32, port uint16, s State, in Input, h Held) State {
	n, ok := Transition(s, in)
	if !ok || s == Closed {
		panic(fmt.Sprintf("tcpstate: Apply: %v is not valid in %v", in, s))
	}
	dom := t.domains[d]
	if n == TimeWait {
		switch {
		case t.prof.TCPMaxTwBuckets != NoTwCap && t.Count[TimeWait] >= t.prof.TCPMaxTwBuckets:
			t.TwOverflows++
			n = Closed
		case t.prof.NoLocalTimeWait && dom.localPeer:
			n = Closed
		}
	}
	dom.Count[s]--
	t.Count[s]--
	if n == Closed {
		t.release(dom, port, h)
		return n
	}
	dom.Count[n]++
	t.Count[n]++
	return n
}

// release frees port in dom after its socket, of kind h, reached CLOSED.
func (t *Table) release(dom *Domain, port uint16, h Held) {
	dom.InUse--
	if t.shares {
		dom.own.Remove(int(port))
		delete(dom.reusable, port)
	}
	pl := t.pools[dom.pool]
	if pl.refs[port] == 0 {
		panic(fmt.Sprintf("tcpstate: release of port %d, which no socket holds", port))
	}
	switch {
	case t.relax:
		delete(dom.tw, port)
		t.dropKind(pl, port, h)
	case h&HeldBound != 0:
		pl.bound.Remove(int(port))
	}
	pl.refs[port]--
	if pl.refs[port] == 0 {
		pl.used.Remove(int(port))
		t.PortsInUse--
	}
}

// UsablePorts is how many ports a domain can hold at once: the ephemeral
// range minus the reserved ports in it (Profile.UsablePorts).
func (t *Table) UsablePorts() int { return t.prof.UsablePorts() }
