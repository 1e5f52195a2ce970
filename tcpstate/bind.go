package tcpstate

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/portsim/portsim/alloc"
)

// Proto is a transport protocol. TCP and UDP port spaces are independent
// (Linux keeps tcp_hashinfo and udp_table apart, BSD tcbinfo and udbinfo;
// os-semantics.md §3.3, §3.6), so a host keeps one Sockets per protocol.
type Proto uint8

const (
	// TCP sockets listen, accept and leave TIME_WAIT entries.
	TCP Proto = iota
	// UDP sockets have neither LISTEN nor TIME_WAIT.
	UDP
)

// String returns "tcp" or "udp".
func (p Proto) String() string {
	if p == UDP {
		return "udp"
	}
	return "tcp"
}

// SockOpts are the socket options that decide bind conflicts, set before
// bind() as the kernels require.
type SockOpts struct {
	// ReuseAddr is SO_REUSEADDR.
	ReuseAddr bool
	// ReusePort is SO_REUSEPORT (Linux 3.9+, BSD). Windows has no such
	// option and ignores it.
	ReusePort bool
	// ExclusiveAddrUse is Windows SO_EXCLUSIVEADDRUSE; other stacks ignore
	// it. Windows refuses it together with SO_REUSEADDR (WSAEINVAL), so
	// Socket panics on that combination for a Windows profile.
	ExclusiveAddrUse bool
	// UID is the owner's effective uid: Linux SO_REUSEPORT sharing needs the
	// same uid (TIME_WAIT entries exempt, §3.5), BSD refuses a port held by
	// another non-root user (§5.3), Windows has different-user rules (§7.3).
	UID int
	// Device is the SO_BINDTODEVICE interface index, 0 for none. Sockets on
	// different devices never conflict on Linux (§7.2 row 12), in gVisor
	// and in ns-3 (BindToNetDevice); BSD and Windows have no such option.
	Device int
}

// SockID names a socket of one Sockets. IDs of sockets that are gone are
// handed out again, as file descriptors are.
type SockID int32

// NoSock is the SockID of no socket (Lookup found none, Accept refused).
const NoSock SockID = -1

// SockState is where a socket stands with respect to its local port.
type SockState uint8

// Socket states. SockClosed is the zero value: a slot with no socket.
const (
	// SockClosed: no socket (closed, or its TIME_WAIT ended).
	SockClosed SockState = iota
	// SockUnbound: socket() done, no local port.
	SockUnbound
	// SockBound: bind() done, not listening, not connected.
	SockBound
	// SockListen: listen() done (TCP).
	SockListen
	// SockConnected: connected, or accepted from a listener (for TCP this
	// stands for every state from SYN_SENT to LAST_ACK: all of them hold the
	// 4-tuple).
	SockConnected
	// SockTimeWait: a TCP TIME_WAIT entry left by an active close; it holds
	// the port and the 4-tuple with its socket's options until
	// ExpireTimeWait.
	SockTimeWait
	// NumSockStates is the number of states, for arrays indexed by SockState.
	NumSockStates
)

var sockStateNames = [NumSockStates]string{
	SockClosed:    "CLOSED",
	SockUnbound:   "UNBOUND",
	SockBound:     "BOUND",
	SockListen:    "LISTEN",
	SockConnected: "CONNECTED",
	SockTimeWait:  "TIME_WAIT",
}

// String returns the state's name, as in the rule strings.
func (s SockState) String() string {
	if s < NumSockStates {
		return sockStateNames[s]
	}
	return fmt.Sprintf("SockState(%d)", uint8(s))
}

// ConnectOwned is the view Sockets needs of the ports that connect() on
// unbound sockets holds (the fast Table): those sockets own bind buckets
// too, and an explicit bind() conflicts with them like with any other
// owner (Linux inet_csk_bind_conflict walks every owner of the bucket,
// §2.3). Sockets treats them as connected sockets without socket options,
// of the binding socket's user.
type ConnectOwned interface {
	// ConnectHeld returns the ports connect()-autobound sockets hold on
	// local addresses overlapping a (a itself if specific; every address
	// of a's family if a is the unspecified address, and on Linux every
	// address at all for "::"), TIME_WAIT included, or nil for none. The
	// set is read, never kept or changed.
	ConnectHeld(a netip.Addr) *alloc.PortSet
}

// osFamily is Profile.Family as a number.
type osFamily uint8

const (
	osLinux osFamily = iota
	osFreeBSD
	osMacOS
	osWindows
	osNS3
	osGVisor
)

var osFamilies = map[string]osFamily{
	"linux": osLinux, "freebsd": osFreeBSD, "macos": osMacOS,
	"windows": osWindows, "ns3": osNS3, "gvisor": osGVisor,
}

// sockEntry is one socket, or one TIME_WAIT entry.
type sockEntry struct {
	opts    SockOpts
	state   SockState
	inGroup bool           // member of a SO_REUSEPORT group (Linux, gVisor)
	local   netip.AddrPort // bound address; port 0 while unbound
	remote  netip.AddrPort // peer once connected
	seq     uint64         // bind order: BSD lookups prefer the most recent
	twAt    time.Duration  // when it entered TIME_WAIT
	slot    int32          // index in its bucket's owners
}

// connected reports whether the socket has a peer (CONNECTED or TIME_WAIT).
func (o *sockEntry) connected() bool { return o.state == SockConnected || o.state == SockTimeWait }

// bindBucket is a port's owners: Linux's bind bucket (tb->owners), BSD's
// port hash list, ns-3's m_endPointsByPort, TIME_WAIT entries included.
type bindBucket struct {
	owners []SockID
	perFam [2]int32 // owners with an IPv4 / IPv6 local address
}

// tupleKey is a TCP 4-tuple.
type tupleKey struct{ local, remote netip.AddrPort }

// groupKey identifies a Linux SO_REUSEPORT group: listeners with the same
// address, port and device (inet_reuseport_add_sock).
type groupKey struct {
	local  netip.AddrPort
	device int
}

// twEntry is a TIME_WAIT entry in expiry order.
type twEntry struct {
	id SockID
	at time.Duration
}

// Sockets is one host's table of explicitly bound sockets for one protocol:
// bind(), listen(), accept(), connect() of a bound socket, close() and the
// TIME_WAIT entries they leave, with the bind conflict rules of the
// profile's OS family (conflict.go):
//
//   - Linux: inet_csk_get_port / inet_bind_conflict (§3.3-3.4) for TCP,
//     udp_lib_lport_inuse (§3.6) for UDP; bind(0) over inet_csk_find_open_port
//     (§3.2).
//   - FreeBSD: in_pcbbind_setup with in_pcblookup_local (§5.3); macOS: XNU
//     in_pcbbind (§6.1).
//   - Windows: the Server 2003+ SO_REUSEADDR / SO_EXCLUSIVEADDRUSE tables
//     (§7.3).
//   - ns-3: Ipv4EndPointDemux::Allocate (§8.2); gVisor: netstack port
//     reservations (§8.1).
//
// Every decision comes with a rule string naming its source, for `portsim
// trace`. IPv4 and IPv6 share the table; only Linux (and gVisor, which
// follows it) let "::" cover IPv4 (net.ipv6.bindv6only = 0), the others are
// modelled as IPV6_V6ONLY (FreeBSD net.inet6.ip6.v6only = 1, Windows'
// default). IPv4-mapped addresses are unmapped.
//
// connect() on an unbound TCP socket is the Table's (Table.Connect); a
// Sockets and a Table of one host see each other through BindTouched and
// SetConnectOwned. Sockets never reads a clock: the caller passes the
// virtual time and calls ExpireTimeWait. Calls that a kernel would refuse
// with EINVAL or EBADF (binding twice, listen() on UDP, using a closed id)
// are bugs in the caller and panic.
type Sockets struct {
	prof       *Profile
	os         osFamily
	proto      Proto
	alloc      alloc.Allocator
	privileged bool
	dual       bool           // "::" covers IPv4 (Linux, gVisor)
	reserved   *alloc.PortSet // prof.Reserved, or nil when empty
	ext        ConnectOwned

	// UnprivilegedPortStart is the first port bind() may take without
	// privilege (CAP_NET_BIND_SERVICE, root): Linux and gVisor
	// net.ipv4.ip_unprivileged_port_start (default 1024), FreeBSD
	// net.inet.ip.portrange.reservedhigh + 1 (1024), XNU IPPORT_RESERVED
	// (1024; current XNU checks it only for a specific address, since
	// which macOS release is [U]); 0 on
	// Windows and ns-3, which have no privileged ports. Set it after
	// NewSockets to model another sysctl value.
	UnprivilegedPortStart int

	// Count is the number of sockets in each state (Count[SockClosed] is
	// always 0).
	Count [NumSockStates]int
	// TwRecycled counts TIME_WAIT entries whose 4-tuple a new connection
	// took over: a pre-bound connect() (tcp_twsk_unique, §4.5) or a SYN
	// accepted on it (tcp_timewait_state_process, §4.6).
	TwRecycled uint64

	socks   []sockEntry
	free    []SockID
	seq     uint64
	buckets map[uint16]*bindBucket
	conns   map[tupleKey]SockID // TCP: connected sockets and TIME_WAIT entries
	groups  map[groupKey][]SockID
	tw      []twEntry // TIME_WAIT entries by entry time, from twHead
	twHead  int

	addrPorts map[netip.Addr]*alloc.PortSet // ports held on each exact address
	addrRefs  map[netip.AddrPort]int32      // owners per (address, port)
	fam       [2]alloc.PortSet              // ports held on any IPv4 / IPv6 address
	wild      [2]alloc.PortSet              // ports held by a wildcard covering IPv4 / IPv6
	touched   alloc.PortSet                 // ports with a bucket: BindTouched

	view     bindView
	req      alloc.Request
	scratch  alloc.PortSet // strict bind(0) view built by a scan
	relaxSet alloc.PortSet // ip_autobind_reuse view
	pseudo   sockEntry     // stands for connect()-autobound owners
}

// NewSockets returns an empty socket table for one host and protocol with
// profile p (referenced, not copied: it must not change during the run), the
// allocator a that bind(addr, 0) and UDP autobind use (the profile's
// BindAllocator for TCP, UDPAllocator for UDP; pass the Table's allocator
// to share XNU's or ns-3's single counter), and whether the host's
// processes have the privilege to bind low ports and to bypass the BSD
// cross-user check (CAP_NET_BIND_SERVICE, root). An unknown p.Family is a
// programming error and panics.
func NewSockets(p *Profile, proto Proto, a alloc.Allocator, privileged bool) *Sockets {
	osf, ok := osFamilies[p.Family]
	if !ok {
		panic(fmt.Sprintf("tcpstate: NewSockets: unknown OS family %q", p.Family))
	}
	s := &Sockets{
		prof: p, os: osf, proto: proto, alloc: a, privileged: privileged,
		dual:      osf == osLinux || osf == osGVisor,
		buckets:   map[uint16]*bindBucket{},
		conns:     map[tupleKey]SockID{},
		groups:    map[groupKey][]SockID{},
		addrPorts: map[netip.Addr]*alloc.PortSet{},
		addrRefs:  map[netip.AddrPort]int32{},
	}
	s.UnprivilegedPortStart = p.UnprivilegedPortStart
	if p.Reserved.Len() > 0 {
		s.reserved = &p.Reserved
	}
	return s
}

// SetConnectOwned tells the table where to see the ports connect()-autobound
// sockets hold (normally the host's Table); nil, the default, means none.
func (s *Sockets) SetConnectOwned(c ConnectOwned) { s.ext = c }

// BindTouched returns the ports held by a socket of this table, bound,
// listening, connected or in TIME_WAIT: on Linux the ports whose bind
// bucket a bind() or listen() touched and that still lives (fastreuse >= 0),
// which connect() autobind skips even for another local address
// (__inet_hash_connect, §2.3, §10 item 1). A port leaves the set when its
// last socket here is gone; the kernel keeps it non-shareable while
// connect()-autobound sockets remain in the same bucket, which is not
// modelled. On port-exclusive stacks (XNU, Windows, ns-3) connect() skips
// every held port anyway; on FreeBSD, where connect() may share a port of a
// connected bound socket toward another destination, the set is
// conservative. The set is live (it changes with the table) and read-only.
func (s *Sockets) BindTouched() *alloc.PortSet { return &s.touched }

// PortsInUse is the number of ports with at least one socket of this table
// (the size of BindTouched).
func (s *Sockets) PortsInUse() int { return len(s.buckets) }

// State returns the state of socket id (SockClosed for an id not in use).
func (s *Sockets) State(id SockID) SockState {
	if id < 0 || int(id) >= len(s.socks) {
		return SockClosed
	}
	return s.socks[id].state
}

// LocalAddr returns the local address and port of socket id (the zero
// AddrPort while unbound; after connect() on a wildcard binding, the source
// address it was given).
func (s *Sockets) LocalAddr(id SockID) netip.AddrPort { return s.get(id).local }

// RemoteAddr returns the peer of socket id, the zero AddrPort while it is
// not connected.
func (s *Sockets) RemoteAddr(id SockID) netip.AddrPort { return s.get(id).remote }

// Socket creates an unbound socket with options opts and returns its id.
func (s *Sockets) Socket(opts SockOpts) SockID {
	if s.os == osWindows && opts.ReuseAddr && opts.ExclusiveAddrUse {
		panic("tcpstate: Socket: Windows refuses SO_EXCLUSIVEADDRUSE with SO_REUSEADDR (WSAEINVAL)")
	}
	var id SockID
	if k := len(s.free); k > 0 {
		id = s.free[k-1]
		s.free = s.free[:k-1]
	} else {
		s.socks = append(s.socks, sockEntry{})
		id = SockID(len(s.socks) - 1)
	}
	s.socks[id] = sockEntry{opts: opts}
	s.setState(&s.socks[id], SockUnbound)
	return id
}

// Bind models bind(addr) on unbound socket id at virtual time now. A
// non-zero port is checked against every socket holding it by the OS
// family's rule (see Sockets); port 0 asks the allocator for a port no
// conflicting socket holds (Linux inet_csk_find_open_port: relax = false,
// so no sharing at all, with an ip_autobind_reuse pass through the
// alloc.Relaxer view; FreeBSD in_pcb_lport with the bind's lookup flags;
// XNU, gVisor: any socket on an overlapping address; Windows, ns-3: any
// socket of the family, one pool across addresses).
//
// It returns the port bound, OK or the errno, and the rule that decided:
// EACCES (see the constant) for a port below UnprivilegedPortStart without
// privilege, or a Windows WSAEACCES cell; EADDRINUSE for a conflict;
// exhaustion of bind(0) fails with EADDRINUSE on Linux, gVisor and Windows
// [U: WSAEADDRINUSE or WSAENOBUFS, §9] and EADDRNOTAVAIL on FreeBSD
// (in_pcb_lport_dest), XNU and ns-3 (TcpSocketBase::Bind). A failed bind
// leaves the socket unbound. addr must be valid; IPv4-mapped addresses are
// unmapped. bind(0) ignores SO_BINDTODEVICE: a port held on another device
// counts as busy, where Linux would let the two devices share it.
func (s *Sockets) Bind(id SockID, addr netip.AddrPort, now time.Duration) (uint16, alloc.Errno, string) {
	n := s.get(id)
	if n.state != SockUnbound {
		panic(fmt.Sprintf("tcpstate: Bind: socket %d is already bound (EINVAL)", id))
	}
	a := addr.Addr().Unmap()
	if !a.IsValid() {
		panic("tcpstate: Bind: invalid address")
	}
	port := addr.Port()
	if port == 0 {
		fail := alloc.EADDRINUSE
		if s.os == osFreeBSD || s.os == osMacOS || s.os == osNS3 {
			fail = alloc.EADDRNOTAVAIL
		}
		return s.autobind(id, n, a, fail, now)
	}
	if e, rule := s.privilegeCheck(a, port); e != alloc.OK {
		return 0, e, rule
	}
	e, rule := s.checkBind(id, n, a, port, false)
	if e != alloc.OK {
		return 0, e, rule
	}
	s.attach(id, netip.AddrPortFrom(a, port))
	return port, alloc.OK, rule
}

// privilegeCheck refuses a port below UnprivilegedPortStart without
// privilege: Linux __inet_bind (inet_port_requires_bind_service, §3.7),
// FreeBSD in_pcbbind_setup (PRIV_NETINET_RESERVEDPORT, §5.1), XNU
// in_pcbbind (only for a specific address in current sources).
func (s *Sockets) privilegeCheck(a netip.Addr, port uint16) (alloc.Errno, string) {
	if s.privileged || int(port) >= s.UnprivilegedPortStart {
		return alloc.OK, ""
	}
	switch s.os {
	case osMacOS:
		if a.IsUnspecified() {
			return alloc.OK, ""
		}
		return alloc.EACCES, fmt.Sprintf("XNU in_pcbbind: port %d < IPPORT_RESERVED on a specific address needs root (the wildcard does not) → EACCES", port)
	case osFreeBSD:
		return alloc.EACCES, fmt.Sprintf("FreeBSD in_pcbbind_setup (§5.1): port %d ≤ portrange.reservedhigh without PRIV_NETINET_RESERVEDPORT → EACCES", port)
	}
	src := "Linux __inet_bind (§3.7)"
	if s.os == osGVisor {
		src = "gVisor, as Linux __inet_bind (§3.7) [U]"
	}
	return alloc.EACCES, fmt.Sprintf("%s: port %d < ip_unprivileged_port_start %d without CAP_NET_BIND_SERVICE → EACCES", src, port, s.UnprivilegedPortStart)
}

// autobind gives socket id a port from the allocator on address a (bind(0),
// UDP autobind), failing with fail.
func (s *Sockets) autobind(id SockID, n *sockEntry, a netip.Addr, fail alloc.Errno, now time.Duration) (uint16, alloc.Errno, string) {
	s.buildView(n, a)
	s.req = alloc.Request{Local: a, Fail: fail, Now: now, ReuseAddr: n.opts.ReuseAddr}
	r := s.alloc.Allocate(&s.req, &s.view)
	relax := ""
	if s.view.built {
		relax = "; then the ip_autobind_reuse pass, where ports held only by non-listening SO_REUSEADDR sockets are free (§3.2)"
	}
	if r.Err != alloc.OK {
		return 0, r.Err, fmt.Sprintf("%s: no usable port after %d probes; busy: %s%s → %v", s.alloc.Name(), r.Probes, s.view.why, relax, r.Err)
	}
	s.attach(id, netip.AddrPortFrom(a, r.Port))
	if s.view.built && s.view.strict.Has(int(r.Port)) {
		return r.Port, alloc.OK, fmt.Sprintf("%s: port %d after %d probes; busy: %s%s: shared", s.alloc.Name(), r.Port, r.Probes, s.view.why, relax)
	}
	return r.Port, alloc.OK, fmt.Sprintf("%s: port %d after %d probe(s); busy: %s", s.alloc.Name(), r.Port, r.Probes, s.view.why)
}

// checkBind decides whether socket id (options n) may hold a:port: bind()
// of a non-zero port, or on Linux the listen() re-check.
func (s *Sockets) checkBind(id SockID, n *sockEntry, a netip.Addr, port uint16, listen bool) (alloc.Errno, string) {
	switch s.os {
	case osFreeBSD, osMacOS:
		return s.bsdBindSetup(n, a, port)
	case osWindows:
		return s.pairwise(id, n, a, port, windowsConflict, "Windows bind (§7.3)")
	case osNS3:
		return s.pairwise(id, n, a, port, ns3Conflict, "ns-3 Ipv4EndPointDemux::Allocate (§8.2)")
	case osGVisor:
		return s.pairwise(id, n, a, port, gvisorConflict, "gVisor ports.ReservePort (§8.1)")
	}
	switch {
	case s.proto == UDP:
		return s.pairwise(id, n, a, port, linuxUDPConflict, "Linux udp_lib_lport_inuse (§3.6)")
	case listen:
		return s.pairwise(id, n, a, port, linuxBindRule, "Linux listen() → inet_csk_get_port in LISTEN (§3.3 item 6), inet_bind_conflict (§3.4)")
	}
	return s.pairwise(id, n, a, port, linuxBindRule, "Linux inet_csk_get_port / inet_bind_conflict (§3.3-3.4)")
}

// pairRule is a pairwise bind rule of conflict.go: may a socket with options
// n binding nAddr share the port with o?
type pairRule func(n SockOpts, nAddr netip.Addr, o *sockEntry) (alloc.Errno, string)

// linuxBindRule is linuxBindConflict for explicit bind() and listen()
// (relax = true, reuseport_ok = true).
func linuxBindRule(n SockOpts, _ netip.Addr, o *sockEntry) (alloc.Errno, string) {
	return linuxBindConflict(n, o, true)
}

// linuxRelaxRule is linuxBindConflict for the ip_autobind_reuse pass of
// bind(0) (relax = true, reuseport_ok = false).
func linuxRelaxRule(n SockOpts, _ netip.Addr, o *sockEntry) (alloc.Errno, string) {
	return linuxBindConflict(n, o, false)
}

// pairwise applies rule against every other socket holding port on an
// address overlapping a, and against the connect()-autobound owners; the
// first conflict decides.
func (s *Sockets) pairwise(id SockID, n *sockEntry, a netip.Addr, port uint16, rule pairRule, src string) (alloc.Errno, string) {
	shared, first := 0, ""
	check := func(oid SockID, o *sockEntry) (alloc.Errno, string) {
		if !s.overlaps(a, o.local.Addr()) {
			return alloc.OK, ""
		}
		e, why := rule(n.opts, a, o)
		if e != alloc.OK {
			return e, fmt.Sprintf("%s: %s: %s → %s", src, s.describe(oid, o), why, e)
		}
		if shared == 0 {
			first = s.describe(oid, o) + ": " + why
		}
		shared++
		return alloc.OK, ""
	}
	if b := s.buckets[port]; b != nil {
		for _, oid := range b.owners {
			if oid == id {
				continue
			}
			if e, rule := check(oid, &s.socks[oid]); e != alloc.OK {
				return e, rule
			}
		}
	}
	if o := s.connectOwner(n, a, port); o != nil {
		if e, rule := check(NoSock, o); e != alloc.OK {
			return e, rule
		}
	}
	switch shared {
	case 0:
		return alloc.OK, fmt.Sprintf("%s: no socket holds port %d on an address overlapping %v → no conflict", src, port, a)
	case 1:
		return alloc.OK, src + ": " + first
	}
	return alloc.OK, fmt.Sprintf("%s: %s (%d sockets share the port)", src, first, shared)
}

// overlaps reports whether a binding on a and one on b compete: exact
// equality for ns-3 (LookupLocal), wildcard-aware otherwise.
func (s *Sockets) overlaps(a, b netip.Addr) bool {
	if s.os == osNS3 {
		return a == b
	}
	return addrOverlap(a, b, s.dual)
}

// connectOwner returns the stand-in for the connect()-autobound sockets that
// hold port on an address overlapping a, or nil. They are connected, have no
// options and are taken to belong to n's user; their address is a if
// specific, otherwise a stand-in specific address of a's family (only its
// being specific matters to the rules).
func (s *Sockets) connectOwner(n *sockEntry, a netip.Addr, port uint16) *sockEntry {
	if s.ext == nil {
		return nil
	}
	held := s.ext.ConnectHeld(a)
	if held == nil || !held.Has(int(port)) {
		return nil
	}
	addr := a
	if a.IsUnspecified() {
		addr = a.Next()
	}
	s.pseudo = sockEntry{opts: SockOpts{UID: n.opts.UID}, state: SockConnected, local: netip.AddrPortFrom(addr, port)}
	return &s.pseudo
}

// describe names an owner in rule strings.
func (s *Sockets) describe(id SockID, o *sockEntry) string {
	if id == NoSock {
		return fmt.Sprintf("connect()-autobound sockets on port %d (no options)", o.local.Port())
	}
	if o.connected() {
		return fmt.Sprintf("socket %d (%v↔%v, %v)", id, o.local, o.remote, o.state)
	}
	return fmt.Sprintf("socket %d (%v, %v)", id, o.local, o.state)
}

// Listen models listen() on bound TCP socket id. Linux re-runs
// inet_csk_get_port with the socket in LISTEN (§3.3 item 6), so two
// SO_REUSEADDR sockets that both bound a port cannot both listen: the
// second listen() fails with EADDRINUSE and the socket stays bound. FreeBSD
// (tcp_usr_listen), XNU, Windows [U], ns-3 and gVisor [U] do not check
// again. On Linux and gVisor a listener with SO_REUSEPORT joins the group
// of listeners on its address, port and device (inet_reuseport_add_sock),
// which Lookup spreads connections over. listen() on an unbound socket,
// which autobinds in Linux and BSD, is not modelled: call Bind(id, port 0)
// first.
func (s *Sockets) Listen(id SockID) (alloc.Errno, string) {
	n := s.get(id)
	if s.proto != TCP || n.state != SockBound {
		panic(fmt.Sprintf("tcpstate: Listen: socket %d is a %v socket in %v; listen() needs a bound TCP socket", id, s.proto, n.state))
	}
	var rule string
	switch s.os {
	case osLinux:
		var e alloc.Errno
		e, rule = s.checkBind(id, n, n.local.Addr(), n.local.Port(), true)
		if e != alloc.OK {
			return e, rule
		}
	case osFreeBSD, osMacOS:
		rule = "BSD tcp_usr_listen: the socket is bound, in_pcbbind does not run again → listening"
	case osNS3:
		rule = "ns-3 TcpSocketBase::Listen: the endpoint exists, nothing is checked → listening"
	default:
		rule = "listen(): no conflict check after bind [U] → listening"
	}
	s.setState(n, SockListen)
	s.joinGroup(id, n)
	return alloc.OK, rule
}

// Accept models a connection from remote to local arriving at listener l
// and accepted: the child socket shares the listener's port without a bind
// check (Linux inet_csk_clone → __inet_inherit_port), inherits its options
// and uid, and is bound to the listener's address or, for a wildcard
// listener, to local. It returns the child's id, or NoSock and false when
// the 4-tuple is taken: by a live connection (the segment belongs to it), or
// by a TIME_WAIT entry that the SYN cannot end. A SYN ends a TIME_WAIT
// entry when timestamps show it is new (Linux tcp_timewait_state_process,
// RFC 6191, §4.6; the entry counts in TwRecycled); without timestamps only
// a higher sequence number would, which is not modelled, so it is dropped;
// ns-3 refuses the duplicate 5-tuple (Ipv4EndPointDemux::Allocate, §8.2).
func (s *Sockets) Accept(l SockID, local netip.Addr, remote netip.AddrPort, now time.Duration) (SockID, bool, string) {
	ls := s.get(l)
	if ls.state != SockListen {
		panic(fmt.Sprintf("tcpstate: Accept: socket %d is %v, not listening", l, ls.state))
	}
	la := ls.local.Addr()
	if la.IsUnspecified() {
		la = local.Unmap()
		if !la.IsValid() || !addrOverlap(ls.local.Addr(), la, s.dual) {
			panic(fmt.Sprintf("tcpstate: Accept: local address %v is not covered by listener %v", local, ls.local))
		}
	}
	key := tupleKey{netip.AddrPortFrom(la, ls.local.Port()), unmapPort(remote)}
	prefix := ""
	if cid, ok := s.conns[key]; ok {
		c := &s.socks[cid]
		switch {
		case c.state != SockTimeWait:
			return NoSock, false, fmt.Sprintf("4-tuple %v↔%v is socket %d (%v): the segment is for it, not for the listener", key.local, key.remote, cid, c.state)
		case s.os == osNS3:
			return NoSock, false, fmt.Sprintf("ns-3 Ipv4EndPointDemux::Allocate (§8.2): TIME_WAIT endpoint %d has the same 5-tuple → refused", cid)
		case !s.prof.TCPTimestamps:
			return NoSock, false, fmt.Sprintf("SYN on TIME_WAIT socket %d without timestamps: only a higher sequence number could end it (tcp_timewait_state_process, §4.6), not modelled → dropped", cid)
		}
		s.TwRecycled++
		s.release(cid)
		prefix = fmt.Sprintf("SYN with a newer timestamp ends TIME_WAIT socket %d (tcp_timewait_state_process, RFC 6191, §4.6); ", cid)
	}
	opts := ls.opts // s.socks may move in Socket
	id := s.Socket(opts)
	c := &s.socks[id]
	c.remote = key.remote
	s.attach(id, key.local)
	s.setState(c, SockConnected)
	s.conns[key] = id
	return id, true, fmt.Sprintf("%saccept(): socket %d on %v↔%v inherits listener %d's port and options (__inet_inherit_port, no bind check)", prefix, id, key.local, key.remote, l)
}

// Connect models connect() of socket id to remote at time now. For TCP the
// socket must be bound (connect() autobind is the Table's); for UDP an
// unbound socket is first autobound on the wildcard address of remote's
// family (inet_autobind / in_pcbconnect), which fails with EAGAIN on Linux
// and gVisor (§3.6) and EADDRNOTAVAIL elsewhere. A socket bound to the
// wildcard address takes src as its local address (route source
// selection; Linux inet_bhash2_update_saddr), which must then be a valid
// address of remote's family.
//
// TCP then requires the 4-tuple to be unique: a live duplicate fails with
// EADDRNOTAVAIL on Linux and gVisor (__inet_check_established) and
// EADDRINUSE on FreeBSD (in_pcbconnect_setup), XNU, Windows [U] and ns-3
// (which does not check; a duplicate would abort its demux, so the model
// refuses it) (§10 item 11). A TIME_WAIT duplicate is taken over on Linux
// and gVisor when TimeWaitReusable allows it for a pre-bound port (peer
// timestamps; §4.5, §10 item 5), counted in TwRecycled; elsewhere it fails
// like a live one. UDP checks the 4-tuple only on FreeBSD and XNU
// (in_pcbconnect, EADDRINUSE); Linux (ip4_datagram_connect) allows
// duplicates of sockets that share the port, and so does the model for
// Windows, ns-3 and gVisor [U].
// It returns the local port, OK or the errno, and the rule; on failure the
// socket is unchanged (an autobound UDP port stays bound).
func (s *Sockets) Connect(id SockID, src netip.Addr, remote netip.AddrPort, now time.Duration) (uint16, alloc.Errno, string) {
	n := s.get(id)
	remote = unmapPort(remote)
	prefix := ""
	switch {
	case n.state == SockBound:
	case n.state == SockUnbound && s.proto == UDP:
		fail := alloc.EADDRNOTAVAIL
		if s.os == osLinux || s.os == osGVisor {
			fail = alloc.EAGAIN
		}
		_, e, rule := s.autobind(id, n, unspecified(remote.Addr()), fail, now)
		if e != alloc.OK {
			return 0, e, "UDP autobind: " + rule
		}
		prefix = "UDP autobind: " + rule + "; "
	default:
		panic(fmt.Sprintf("tcpstate: Connect: %v socket %d is %v; TCP connect() on an unbound socket is Table.Connect", s.proto, id, n.state))
	}
	la := n.local.Addr()
	if la.IsUnspecified() {
		la = src.Unmap()
		if !la.IsValid() || la.IsUnspecified() || !addrOverlap(n.local.Addr(), la, s.dual) {
			panic(fmt.Sprintf("tcpstate: Connect: socket %d is bound to %v and needs a source address it covers, got %v", id, n.local, src))
		}
	}
	if la.Is4() != remote.Addr().Is4() {
		panic(fmt.Sprintf("tcpstate: Connect: local %v and remote %v are of different families", la, remote))
	}
	key := tupleKey{netip.AddrPortFrom(la, n.local.Port()), remote}
	if e, rule := s.checkTuple(id, key, now); e != alloc.OK {
		return 0, e, prefix + rule
	} else if rule != "" {
		prefix += rule + "; "
	}
	s.leaveGroup(id, n)
	if la != n.local.Addr() {
		s.moveAddr(n, la)
	}
	n.remote = remote
	s.setState(n, SockConnected)
	if s.proto == TCP {
		s.conns[key] = id
	}
	check := "is unique"
	if s.proto == UDP && s.os != osFreeBSD && s.os != osMacOS {
		check = "is not checked for UDP"
	}
	return key.local.Port(), alloc.OK, fmt.Sprintf("%sconnect(): %v↔%v %s → connected", prefix, key.local, key.remote, check)
}

// checkTuple is the 4-tuple check of connect() on a bound socket; see
// Connect. A non-empty rule with OK reports a TIME_WAIT takeover.
func (s *Sockets) checkTuple(id SockID, key tupleKey, now time.Duration) (alloc.Errno, string) {
	var cid SockID = NoSock
	if s.proto == TCP {
		if c, ok := s.conns[key]; ok {
			cid = c
		}
	} else if s.os == osFreeBSD || s.os == osMacOS {
		for _, oid := range s.buckets[key.local.Port()].owners {
			if o := &s.socks[oid]; oid != id && o.local == key.local && o.remote == key.remote {
				cid = oid
				break
			}
		}
	}
	if cid == NoSock {
		return alloc.OK, ""
	}
	c := &s.socks[cid]
	switch s.os {
	case osLinux, osGVisor:
		src := "Linux inet_hash_connect → __inet_check_established (§2.1)"
		if s.os == osGVisor {
			src = "gVisor, as " + src + " [U]"
		}
		if c.state != SockTimeWait {
			return alloc.EADDRNOTAVAIL, fmt.Sprintf("%s: 4-tuple in use by %s → EADDRNOTAVAIL", src, s.describe(cid, c))
		}
		ok, why := TimeWaitReusable(s.prof, true, false, now-c.twAt)
		if !ok {
			return alloc.EADDRNOTAVAIL, fmt.Sprintf("%s: %s holds the 4-tuple; %s → EADDRNOTAVAIL", src, s.describe(cid, c), why)
		}
		s.TwRecycled++
		s.release(cid)
		return alloc.OK, fmt.Sprintf("%s: TIME_WAIT socket %d taken over; %s", src, cid, why)
	case osFreeBSD:
		return alloc.EADDRINUSE, fmt.Sprintf("FreeBSD in_pcbconnect_setup (§5.2): exact lookup finds %s → EADDRINUSE", s.describe(cid, c))
	case osMacOS:
		return alloc.EADDRINUSE, fmt.Sprintf("XNU in_pcbconnect: in_pcblookup_hash finds %s → EADDRINUSE", s.describe(cid, c))
	case osWindows:
		return alloc.EADDRINUSE, fmt.Sprintf("Windows connect(): 4-tuple in use by %s → WSAEADDRINUSE [U]", s.describe(cid, c))
	}
	return alloc.EADDRINUSE, fmt.Sprintf("ns-3: %s has the 4-tuple; ns-3 does not check and its demux would abort on the duplicate, so the model refuses → EADDRINUSE", s.describe(cid, c))
}

// SendTo models sendto() on UDP socket id toward remote: an unbound socket
// is autobound as in Connect (EAGAIN on Linux and gVisor, EADDRNOTAVAIL
// elsewhere) and stays unconnected. It returns the local port, OK or the
// errno, and the rule.
func (s *Sockets) SendTo(id SockID, remote netip.AddrPort, now time.Duration) (uint16, alloc.Errno, string) {
	n := s.get(id)
	if s.proto != UDP {
		panic("tcpstate: SendTo on a TCP socket")
	}
	if n.state != SockUnbound {
		return n.local.Port(), alloc.OK, "sendto(): socket already has port " + fmt.Sprint(n.local.Port())
	}
	fail := alloc.EADDRNOTAVAIL
	if s.os == osLinux || s.os == osGVisor {
		fail = alloc.EAGAIN
	}
	port, e, rule := s.autobind(id, n, unspecified(unmapPort(remote).Addr()), fail, now)
	return port, e, "UDP autobind: " + rule
}

// Close models close() of socket id at time now. With timeWait (a connected
// TCP socket closing first, the caller having decided that TIME_WAIT is
// entered: tcp_max_tw_buckets and FreeBSD nolocaltimewait are host-wide
// questions, see Table) the socket becomes a TIME_WAIT entry that keeps its
// port, its 4-tuple and its options until ExpireTimeWait removes it (Linux
// inet_twsk_alloc copies sk_reuse and sk_reuseport, §3.4, §4.2; BSD
// TIME_WAIT PCBs keep so_options; Windows TIME_WAIT connections block no
// bind [S]). Otherwise the socket is gone at once, and with it its port if
// no other socket holds it. A listener's accepted sockets are separate
// sockets and stay. It returns the rule string.
func (s *Sockets) Close(id SockID, now time.Duration, timeWait bool) string {
	n := s.get(id)
	if n.state == SockTimeWait {
		panic(fmt.Sprintf("tcpstate: Close: socket %d is a TIME_WAIT entry; ExpireTimeWait removes it", id))
	}
	if !timeWait {
		st := n.state
		s.release(id)
		return fmt.Sprintf("close(): socket %d (%v) is gone", id, st)
	}
	if s.proto != TCP || n.state != SockConnected {
		panic(fmt.Sprintf("tcpstate: Close: only a connected TCP socket enters TIME_WAIT, socket %d is %v %v", id, s.proto, n.state))
	}
	s.setState(n, SockTimeWait)
	n.twAt = now
	s.tw = append(s.tw, twEntry{id, now})
	for i := len(s.tw) - 1; i > s.twHead && s.tw[i-1].at > now; i-- {
		s.tw[i-1], s.tw[i] = s.tw[i], s.tw[i-1]
	}
	keeps := "its options"
	switch s.os {
	case osLinux, osGVisor:
		keeps = fmt.Sprintf("SO_REUSEADDR %s and SO_REUSEPORT %s (inet_twsk_alloc, §3.4)", onOff(n.opts.ReuseAddr), onOff(n.opts.ReusePort))
	case osFreeBSD, osMacOS:
		keeps = fmt.Sprintf("so_options SO_REUSEADDR %s, SO_REUSEPORT %s (§7.2 rows 9-10, inferred)", onOff(n.opts.ReuseAddr), onOff(n.opts.ReusePort))
	case osWindows:
		keeps = "no say in later binds [S]"
	}
	return fmt.Sprintf("close(): active close; socket %d stays in TIME_WAIT on %v↔%v for %v with %s", id, n.local, n.remote, s.prof.TimeWait, keeps)
}

// ExpireTimeWait removes every TIME_WAIT entry that has lasted the
// profile's TimeWait by now (entered at or before now - TimeWait) and
// returns how many it removed. Call it with non-decreasing times.
func (s *Sockets) ExpireTimeWait(now time.Duration) int {
	k := 0
	for s.twHead < len(s.tw) {
		e := s.tw[s.twHead]
		o := &s.socks[e.id]
		if o.state != SockTimeWait || o.twAt != e.at { // taken over earlier
			s.twHead++
			continue
		}
		if e.at+s.prof.TimeWait > now {
			break
		}
		s.twHead++
		s.release(e.id)
		k++
	}
	if s.twHead > 64 && 2*s.twHead > len(s.tw) {
		s.tw = s.tw[:copy(s.tw, s.tw[s.twHead:])]
		s.twHead = 0
	}
	return k
}

// Lookup demultiplexes a segment for local from remote (carrying the flow
// hash hash) to a socket: the socket with the exact 4-tuple first (TCP
// established hash, TIME_WAIT included; connected UDP sockets), else the
// most specific listener (TCP) or unconnected bound socket (UDP): the exact
// local address before the family's wildcard, and on Linux an IPv4
// wildcard before a dual-stack "::". On Linux and gVisor a listener in a
// SO_REUSEPORT group hands over to the group member at
// reciprocal_scale(hash, size) = hash·size >> 32 (reuseport_select_sock,
// §3.5); otherwise the most recently bound of equally specific sockets
// wins (BSD LIST_INSERT_HEAD order; Windows and ns-3 [U]). It returns the
// socket, or NoSock when none matches (TCP answers RST, UDP ICMP port
// unreachable), and the lookup step by step.
func (s *Sockets) Lookup(local, remote netip.AddrPort, hash uint32) (SockID, string) {
	local, remote = unmapPort(local), unmapPort(remote)
	if s.proto == TCP {
		if id, ok := s.conns[tupleKey{local, remote}]; ok {
			return id, fmt.Sprintf("1. established hash: %v↔%v is socket %d (%v)", local, remote, id, s.socks[id].state)
		}
	}
	b := s.buckets[local.Port()]
	if b == nil {
		return NoSock, fmt.Sprintf("1. no socket on port %d → %s", local.Port(), s.refusal())
	}
	best, bestScore := NoSock, -1
	for _, oid := range b.owners {
		o := &s.socks[oid]
		if s.proto == UDP && o.state == SockConnected && o.local == local && o.remote == remote {
			return oid, fmt.Sprintf("1. connected UDP socket %d matches %v↔%v", oid, local, remote)
		}
		if (s.proto == TCP && o.state != SockListen) || (s.proto == UDP && o.state != SockBound) {
			continue
		}
		sc := s.specificity(o.local.Addr(), local.Addr())
		if sc > bestScore || (sc == bestScore && sc >= 0 && o.seq > s.socks[best].seq) {
			best, bestScore = oid, sc
		}
	}
	if best == NoSock || bestScore < 0 {
		return NoSock, fmt.Sprintf("1. no exact 4-tuple; 2. no socket listening on an address covering %v → %s", local, s.refusal())
	}
	o := &s.socks[best]
	kind := "listener"
	if s.proto == UDP {
		kind = "bound socket"
	}
	step := fmt.Sprintf("1. no exact 4-tuple; 2. most specific %s: socket %d on %v", kind, best, o.local)
	if o.inGroup {
		if g := s.groups[groupKey{o.local, o.opts.Device}]; len(g) > 1 {
			i := int(uint64(hash) * uint64(len(g)) >> 32)
			return g[i], fmt.Sprintf("%s; 3. SO_REUSEPORT group of %d: reciprocal_scale(%#x, %d) = %d → socket %d (reuseport_select_sock, §3.5)", step, len(g), hash, len(g), i, g[i])
		}
	}
	return best, step
}

// specificity ranks how a socket bound to b covers destination address d:
// 2 exact, 1 the family's wildcard, 0 a dual-stack "::" for IPv4, -1 no.
func (s *Sockets) specificity(b, d netip.Addr) int {
	switch {
	case b == d:
		return 2
	case b.IsUnspecified() && b.Is4() == d.Is4():
		return 1
	case s.dual && b == netip.IPv6Unspecified() && d.Is4():
		return 0
	}
	return -1
}

// refusal is what the stack answers a segment no socket takes.
func (s *Sockets) refusal() string {
	if s.proto == TCP {
		return "RST"
	}
	return "ICMP port unreachable"
}

// get returns socket id, which must be in use.
func (s *Sockets) get(id SockID) *sockEntry {
	if id < 0 || int(id) >= len(s.socks) || s.socks[id].state == SockClosed {
		panic(fmt.Sprintf("tcpstate: socket %d is not open", id))
	}
	return &s.socks[id]
}

// setState moves o to state st, keeping Count.
func (s *Sockets) setState(o *sockEntry, st SockState) {
	if o.state != SockClosed {
		s.Count[o.state]--
	}
	if st != SockClosed {
		s.Count[st]++
	}
	o.state = st
}

// attach binds socket id to local: it joins the port's bucket and the
// address indexes, and on Linux and gVisor a UDP socket with SO_REUSEPORT
// joins its group (udp_reuseport_add_sock).
func (s *Sockets) attach(id SockID, local netip.AddrPort) {
	o := &s.socks[id]
	o.local = local
	s.seq++
	o.seq = s.seq
	s.setState(o, SockBound)
	p := local.Port()
	b := s.buckets[p]
	if b == nil {
		b = &bindBucket{}
		s.buckets[p] = b
		s.touched.Add(int(p))
	}
	o.slot = int32(len(b.owners))
	b.owners = append(b.owners, id)
	f := famIndex(local.Addr())
	if b.perFam[f]++; b.perFam[f] == 1 {
		s.fam[f].Add(int(p))
	}
	s.addAddr(local.Addr(), p)
	if s.proto == UDP {
		s.joinGroup(id, o)
	}
}

// release removes socket id from every index and frees its slot.
func (s *Sockets) release(id SockID) {
	o := &s.socks[id]
	if o.state != SockUnbound {
		s.leaveGroup(id, o)
		if s.proto == TCP && o.connected() {
			delete(s.conns, tupleKey{o.local, o.remote})
		}
		p := o.local.Port()
		b := s.buckets[p]
		last := b.owners[len(b.owners)-1]
		b.owners[o.slot] = last
		s.socks[last].slot = o.slot
		b.owners = b.owners[:len(b.owners)-1]
		f := famIndex(o.local.Addr())
		if b.perFam[f]--; b.perFam[f] == 0 {
			s.fam[f].Remove(int(p))
		}
		if len(b.owners) == 0 {
			delete(s.buckets, p)
			s.touched.Remove(int(p))
		}
		s.delAddr(o.local.Addr(), p)
	}
	s.setState(o, SockClosed)
	*o = sockEntry{}
	s.free = append(s.free, id)
}

// joinGroup adds a Linux or gVisor SO_REUSEPORT listener (TCP) or bound
// socket (UDP) to its group, at the end (reuseport_add_sock).
func (s *Sockets) joinGroup(id SockID, o *sockEntry) {
	if !o.opts.ReusePort || (s.os != osLinux && s.os != osGVisor) {
		return
	}
	k := groupKey{o.local, o.opts.Device}
	s.groups[k] = append(s.groups[k], id)
	o.inGroup = true
}

// leaveGroup takes o out of its group, moving the last member into its place
// (reuseport_detach_sock).
func (s *Sockets) leaveGroup(id SockID, o *sockEntry) {
	if !o.inGroup {
		return
	}
	k := groupKey{o.local, o.opts.Device}
	g := s.groups[k]
	for i, m := range g {
		if m == id {
			g[i] = g[len(g)-1]
			g = g[:len(g)-1]
			break
		}
	}
	if len(g) == 0 {
		delete(s.groups, k)
	} else {
		s.groups[k] = g
	}
	o.inGroup = false
}

// moveAddr gives bound socket o the specific address a in place of its
// wildcard (connect(): Linux inet_bhash2_update_saddr, BSD in_pcbconnect),
// which for a dual-stack "::" may be IPv4; the bucket stays.
func (s *Sockets) moveAddr(o *sockEntry, a netip.Addr) {
	p := o.local.Port()
	if f, g := famIndex(o.local.Addr()), famIndex(a); f != g {
		b := s.buckets[p]
		if b.perFam[f]--; b.perFam[f] == 0 {
			s.fam[f].Remove(int(p))
		}
		if b.perFam[g]++; b.perFam[g] == 1 {
			s.fam[g].Add(int(p))
		}
	}
	s.delAddr(o.local.Addr(), p)
	s.addAddr(a, p)
	o.local = netip.AddrPortFrom(a, p)
}

// addAddr counts one more owner of port on address a.
func (s *Sockets) addAddr(a netip.Addr, port uint16) {
	k := netip.AddrPortFrom(a, port)
	if s.addrRefs[k]++; s.addrRefs[k] == 1 {
		set := s.addrPorts[a]
		if set == nil {
			set = new(alloc.PortSet)
			s.addrPorts[a] = set
		}
		set.Add(int(port))
	}
	for f := range s.wild {
		if s.covers(a, f) && s.wildRefs(f, port) == 1 {
			s.wild[f].Add(int(port))
		}
	}
}

// delAddr counts one owner of port on address a less.
func (s *Sockets) delAddr(a netip.Addr, port uint16) {
	k := netip.AddrPortFrom(a, port)
	if s.addrRefs[k]--; s.addrRefs[k] == 0 {
		delete(s.addrRefs, k)
		s.addrPorts[a].Remove(int(port))
	}
	for f := range s.wild {
		if s.covers(a, f) && s.wildRefs(f, port) == 0 {
			s.wild[f].Remove(int(port))
		}
	}
}

// covers reports whether a binding on a covers every address of family f
// (0 IPv4, 1 IPv6).
func (s *Sockets) covers(a netip.Addr, f int) bool {
	if !a.IsUnspecified() {
		return false
	}
	return famIndex(a) == f || (s.dual && f == 0)
}

// wildRefs counts the owners of port whose address covers family f.
func (s *Sockets) wildRefs(f int, port uint16) int32 {
	n := s.addrRefs[netip.AddrPortFrom(netip.IPv6Unspecified(), port)]
	if f == 1 {
		return n
	}
	if !s.dual {
		n = 0
	}
	return n + s.addrRefs[netip.AddrPortFrom(netip.IPv4Unspecified(), port)]
}

// famIndex is 0 for IPv4, 1 for IPv6.
func famIndex(a netip.Addr) int {
	if a.Is4() {
		return 0
	}
	return 1
}

// unspecified is the unspecified address of a's family.
func unspecified(a netip.Addr) netip.Addr {
	if a.Is4() {
		return netip.IPv4Unspecified()
	}
	return netip.IPv6Unspecified()
}

// unmapPort unmaps an IPv4-mapped IPv6 address.
func unmapPort(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// bindView is the alloc.Busy (and alloc.Relaxer) an autobind hands to the
// allocator: the ports the binding socket may not take.
type bindView struct {
	strict  alloc.Union
	relaxed alloc.Union
	s       *Sockets
	n       *sockEntry
	addr    netip.Addr
	relaxOK bool   // Linux TCP: Relaxed builds the ip_autobind_reuse view
	built   bool   // relaxed is built
	why     string // what counts as busy, for the rule string
}

// Has reports whether port p is busy in the strict view.
func (v *bindView) Has(p int) bool { return v.strict.Has(p) }

// NextFree is alloc.Union.NextFree on the strict view.
func (v *bindView) NextFree(from, to int) int { return v.strict.NextFree(from, to) }

// NextFreeParity is alloc.Union.NextFreeParity on the strict view.
func (v *bindView) NextFreeParity(from, to, parity int) int {
	return v.strict.NextFreeParity(from, to, parity)
}

// CountFree is alloc.Union.CountFree on the strict view.
func (v *bindView) CountFree(from, to int) int { return v.strict.CountFree(from, to) }

// NthFree is alloc.Union.NthFree on the strict view.
func (v *bindView) NthFree(from, to, n int) int { return v.strict.NthFree(from, to, n) }

// Relaxed is the view of the ip_autobind_reuse pass of Linux
// inet_csk_find_open_port (§3.2): a port is busy if an owner on an
// overlapping address conflicts under inet_bind_conflict with relax = true
// and reuseport_ok = false, so ports held only by non-listening
// SO_REUSEADDR sockets are free to a SO_REUSEADDR socket. It is built on
// first use by a walk over every owner (the pass runs only after the
// strict search failed). Other stacks have no such pass and get the strict
// view.
func (v *bindView) Relaxed() alloc.Busy {
	if !v.relaxOK {
		return &v.strict
	}
	if !v.built {
		s := v.s
		s.relaxSet.Clear()
		s.scan(&s.relaxSet, v.n, v.addr, linuxRelaxRule)
		v.relaxed = alloc.NewUnion(s.reserved, &s.relaxSet, s.connectHeld(v.addr))
		v.built = true
	}
	return &v.relaxed
}

// buildView prepares s.view for an autobind of socket n on address a. All
// views include the reserved ports (ip_local_reserved_ports) and the
// connect()-autobound ones on overlapping addresses, except FreeBSD's exact
// lookup, which never finds connected sockets.
func (s *Sockets) buildView(n *sockEntry, a netip.Addr) {
	v := &s.view
	*v = bindView{s: s, n: n, addr: a, relaxOK: s.os == osLinux && s.proto == TCP}
	f := famIndex(a)
	ext := s.connectHeld(a)
	flags := n.opts.ReuseAddr || n.opts.ReusePort
	switch {
	case s.os == osWindows || s.os == osNS3:
		v.strict = alloc.NewUnion(s.reserved, &s.fam[f], ext)
		v.why = "ports any socket of the family holds on any address (Windows: one wildcard-port pool across local addresses, §6.2; ns-3 LookupPortLocal, §8.2)"
	case s.os == osFreeBSD && flags:
		s.scratch.Clear()
		s.scan(&s.scratch, n, a, bsdExactBusy)
		v.strict = alloc.NewUnion(s.reserved, &s.scratch)
		v.why = "ports of unconnected sockets bound to exactly " + a.String() + " (FreeBSD in_pcb_lport, exact lookup with SO_REUSEADDR/SO_REUSEPORT, §5.3)"
	case s.os == osLinux && s.proto == UDP && flags:
		s.scratch.Clear()
		s.scan(&s.scratch, n, a, linuxUDPConflict)
		v.strict = alloc.NewUnion(s.reserved, &s.scratch, ext)
		v.why = "ports whose owners on overlapping addresses conflict under udp_lib_lport_inuse (§3.6)"
	default:
		if a.IsUnspecified() {
			var other *alloc.PortSet // what else "::" or 0.0.0.0 overlaps
			if s.dual {
				if f == 0 {
					other = s.addrPorts[netip.IPv6Unspecified()]
				} else {
					other = &s.fam[0]
				}
			}
			v.strict = alloc.NewUnion(s.reserved, &s.fam[f], other, ext)
		} else {
			v.strict = alloc.NewUnion(s.reserved, s.addrPorts[a], &s.wild[f], ext)
		}
		v.why = "ports any socket holds on an address overlapping " + a.String()
		switch s.os {
		case osLinux:
			v.why += " (inet_csk_find_open_port, relax = false: SO_REUSEADDR and SO_REUSEPORT do not share, §3.2)"
		case osFreeBSD:
			v.why += " (FreeBSD in_pcb_lport, wildcard lookup, §5.2)"
		case osMacOS:
			v.why += " (XNU in_pcbbind, wildcard lookup, §6.1)"
		case osGVisor:
			v.why += " (gVisor: an unspecified port refuses any reservation on the address, §8.1)"
		}
	}
}

// connectHeld is the ConnectOwned view for address a, nil without one.
func (s *Sockets) connectHeld(a netip.Addr) *alloc.PortSet {
	if s.ext == nil {
		return nil
	}
	return s.ext.ConnectHeld(a)
}

// scan adds to dst every port with an owner on an address overlapping a
// that rule says n may not share with. It walks every owner, so it serves
// only the rarer views (flags set, the relax pass).
func (s *Sockets) scan(dst *alloc.PortSet, n *sockEntry, a netip.Addr, rule pairRule) {
	for p, b := range s.buckets {
		for _, oid := range b.owners {
			o := &s.socks[oid]
			if !s.overlaps(a, o.local.Addr()) {
				continue
			}
			if e, _ := rule(n.opts, a, o); e != alloc.OK {
				dst.Add(int(p))
				break
			}
		}
	}
}
