package tcpstate

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/portsim/portsim/alloc"
)

// This file holds the bind conflict rules of each OS family as functions of
// two sockets (the one binding and one that already holds the port), plus
// the TIME_WAIT reuse rule of a pre-bound connect(). Sockets (bind.go)
// applies them to every owner of a port. Each rule returns OK when the two
// sockets may share the port, an errno otherwise, and in both cases a short
// reason that Sockets turns into the rule string `portsim trace` prints.

// addrOverlap reports whether two bound local addresses overlap as Linux
// ipv4_rcv_saddr_equal / ipv6_rcv_saddr_equal with match_wildcard see them
// (os-semantics.md §3.4): equal, or one is the unspecified address of the
// other's family, or, with dual set, one is "::" and the other IPv4 (an
// IPv6 socket without IPV6_V6ONLY, net.ipv6.bindv6only = 0, the Linux
// default). Addresses are unmapped by the caller.
func addrOverlap(a, b netip.Addr, dual bool) bool {
	if a == b {
		return true
	}
	if a.Is4() == b.Is4() {
		return a.IsUnspecified() || b.IsUnspecified()
	}
	return dual && ((a == netip.IPv6Unspecified() && b.Is4()) || (b == netip.IPv6Unspecified() && a.Is4()))
}

// devicesApart reports that two sockets are bound to different devices
// (SO_BINDTODEVICE, both non-zero and unequal), which never conflict on
// Linux (inet_bind_conflict, §3.4; §7.2 row 12) nor in gVisor (reservations
// are keyed by NIC, §8.1).
func devicesApart(a, b SockOpts) bool {
	return a.Device != 0 && b.Device != 0 && a.Device != b.Device
}

// linuxBindConflict is Linux inet_bind_conflict (net/ipv4/
// inet_connection_sock.c, os-semantics.md §3.4) with relax = true, for a
// socket with options n binding a port that o holds on an overlapping
// address: explicit bind() and listen() pass reuseportOK = true, the
// ip_autobind_reuse pass of bind(0) passes false. Both SO_REUSEADDR with o
// not listening share, except in the autobind pass when both also set
// SO_REUSEPORT with the same uid (or o is TIME_WAIT); otherwise both
// SO_REUSEPORT with the same uid share, the uid not checked against a
// TIME_WAIT entry (which keeps its socket's flags, inet_twsk_alloc). The
// listening state of the binding socket itself does not matter: the rule
// reads only its sk_reuse, so at listen() the check is against the others'
// states (§3.3 item 6).
func linuxBindConflict(n SockOpts, o *sockEntry, reuseportOK bool) (alloc.Errno, string) {
	if devicesApart(n, o.opts) {
		return alloc.OK, "bound to different devices (SO_BINDTODEVICE) → shared"
	}
	tw := o.state == SockTimeWait
	portMatch := n.ReusePort && o.opts.ReusePort && (tw || n.UID == o.opts.UID)
	if n.ReuseAddr && o.opts.ReuseAddr && o.state != SockListen {
		if !reuseportOK && portMatch {
			return alloc.EADDRINUSE, "both SO_REUSEADDR and SO_REUSEPORT with the same owner: the autobind relax pass leaves that port to SO_REUSEPORT"
		}
		return alloc.OK, "both SO_REUSEADDR, existing not listening → shared"
	}
	if reuseportOK && portMatch {
		if tw {
			return alloc.OK, "both SO_REUSEPORT, existing is TIME_WAIT (uid not checked) → shared"
		}
		return alloc.OK, "both SO_REUSEPORT, same uid → shared"
	}
	switch {
	case n.ReuseAddr && o.opts.ReuseAddr:
		return alloc.EADDRINUSE, "both SO_REUSEADDR but existing is listening"
	case reuseportOK && n.ReusePort && o.opts.ReusePort:
		return alloc.EADDRINUSE, fmt.Sprintf("both SO_REUSEPORT but uid %d ≠ %d", n.UID, o.opts.UID)
	case !reuseportOK:
		return alloc.EADDRINUSE, "autobind relax pass needs SO_REUSEADDR on both and a non-listening owner"
	}
	return alloc.EADDRINUSE, fmt.Sprintf("neither SO_REUSEADDR on both (new %s, existing %s) nor SO_REUSEPORT on both", onOff(n.ReuseAddr), onOff(o.opts.ReuseAddr))
}

// linuxUDPConflict is Linux udp_lib_lport_inuse (net/ipv4/udp.c,
// os-semantics.md §3.6): UDP has no LISTEN, so both SO_REUSEADDR share
// always, even identical 4-tuples; otherwise both SO_REUSEPORT with the same
// uid share. (The kernel stops at the first SO_REUSEPORT match in the
// bind(port) walk; the model checks every owner.)
func linuxUDPConflict(n SockOpts, _ netip.Addr, o *sockEntry) (alloc.Errno, string) {
	switch {
	case devicesApart(n, o.opts):
		return alloc.OK, "bound to different devices (SO_BINDTODEVICE) → shared"
	case n.ReuseAddr && o.opts.ReuseAddr:
		return alloc.OK, "both SO_REUSEADDR (UDP: no LISTEN state, full duplicates allowed) → shared"
	case n.ReusePort && o.opts.ReusePort && n.UID == o.opts.UID:
		return alloc.OK, "both SO_REUSEPORT, same uid → shared"
	case n.ReusePort && o.opts.ReusePort:
		return alloc.EADDRINUSE, fmt.Sprintf("both SO_REUSEPORT but uid %d ≠ %d", n.UID, o.opts.UID)
	}
	return alloc.EADDRINUSE, "neither SO_REUSEADDR nor SO_REUSEPORT on both"
}

// gvisorConflict is gVisor netstack's reservation check (pkg/tcpip/ports/
// ports.go, os-semantics.md §8.1): sharing needs the two sockets' flags to
// intersect, SO_REUSEADDR on both or SO_REUSEPORT on both; there is no
// listening-state exception and no uid (gVisor runs one sandbox). TIME_WAIT
// endpoints keep their reservation and flags.
func gvisorConflict(n SockOpts, _ netip.Addr, o *sockEntry) (alloc.Errno, string) {
	switch {
	case devicesApart(n, o.opts):
		return alloc.OK, "bound to different NICs → shared"
	case n.ReuseAddr && o.opts.ReuseAddr:
		return alloc.OK, "flags intersect (SO_REUSEADDR on both) → shared"
	case n.ReusePort && o.opts.ReusePort:
		return alloc.OK, "flags intersect (SO_REUSEPORT on both) → shared"
	}
	return alloc.EADDRINUSE, "flags do not intersect"
}

// ns3Conflict is ns-3 Ipv4EndPointDemux::Allocate(device, address, port)
// (src/internet/model/ipv4-end-point-demux.cc, os-semantics.md §8.2): it
// refuses when LookupLocal finds an endpoint with exactly the same local
// address (a wildcard does not cover a specific address) on the same
// device or on none, connected or not; ns-3 sockets have no reuse options.
// The caller has already matched the address exactly.
func ns3Conflict(n SockOpts, _ netip.Addr, o *sockEntry) (alloc.Errno, string) {
	if o.opts.Device != 0 && o.opts.Device != n.Device {
		return alloc.OK, "endpoint bound to another device → shared"
	}
	return alloc.EADDRINUSE, "an endpoint with the same local address and port exists (LookupLocal)"
}

// winResult is a cell of the Windows bind tables.
type winResult uint8

const (
	winSuccess winResult = iota
	winInUse             // WSAEADDRINUSE
	winAccess            // WSAEACCES
)

// winCats names the six socket kinds of the Windows tables, in table order:
// option (default, SO_REUSEADDR, SO_EXCLUSIVEADDRUSE) × wildcard/specific.
var winCats = [6]string{"Default W", "Default S", "REUSEADDR W", "REUSEADDR S", "EXCLUSIVEADDRUSE W", "EXCLUSIVEADDRUSE S"}

// windowsSameUser is the Windows Server 2003+ table for two sockets of the
// same user (MicrosoftDocs win32 using-so-reuseaddr-and-so-exclusiveaddruse.md,
// os-semantics.md §7.3): row = first bind, column = second bind, both on
// the same port and overlapping addresses, in winCats order.
var windowsSameUser = [6][6]winResult{
	{winInUse, winSuccess, winAccess, winSuccess, winInUse, winSuccess},  // Default W
	{winSuccess, winInUse, winSuccess, winAccess, winInUse, winInUse},    // Default S
	{winInUse, winSuccess, winSuccess, winSuccess, winInUse, winSuccess}, // REUSEADDR W
	{winSuccess, winInUse, winSuccess, winSuccess, winInUse, winInUse},   // REUSEADDR S
	{winInUse, winAccess, winAccess, winAccess, winInUse, winAccess},     // EXCLUSIVEADDRUSE W
	{winSuccess, winInUse, winSuccess, winAccess, winInUse, winInUse},    // EXCLUSIVEADDRUSE S
}

// windowsOtherUser is windowsSameUser with the different-user deltas of the
// same page (§7.3): another user cannot carve a specific address out of a
// wildcard binding (Default W → Default S, REUSEADDR S, EXCLUSIVEADDRUSE S;
// REUSEADDR W → Default S, EXCLUSIVEADDRUSE S become WSAEACCES).
var windowsOtherUser = func() [6][6]winResult {
	t := windowsSameUser
	for _, d := range [][2]int{{0, 1}, {0, 3}, {0, 5}, {2, 1}, {2, 5}} {
		t[d[0]][d[1]] = winAccess
	}
	return t
}()

// windowsCategory is the table index of a socket with options o bound to a
// wildcard (wild) or specific address.
func windowsCategory(o SockOpts, wild bool) int {
	c := 0
	switch {
	case o.ExclusiveAddrUse:
		c = 4
	case o.ReuseAddr:
		c = 2
	}
	if !wild {
		c++
	}
	return c
}

// windowsConflict looks up the Windows Server 2003+ table (§7.3) for a
// socket with options n binding nAddr (a wildcard or specific address) on
// a port that o holds on an overlapping address. TIME_WAIT entries do not
// take part: a TIME_WAIT connection does not stop even an
// SO_EXCLUSIVEADDRUSE rebind, only an active one does [S: Microsoft's doc
// says "until the original connection becomes inactive"; a 2005 Microsoft
// blog quoted on Stack Overflow excludes TIME_WAIT]. A connection accepted
// from a listener counts as a specific binding with the listener's options.
func windowsConflict(n SockOpts, nAddr netip.Addr, o *sockEntry) (alloc.Errno, string) {
	if o.state == SockTimeWait {
		return alloc.OK, "TIME_WAIT connections do not block a bind [S]"
	}
	first, second := windowsCategory(o.opts, o.local.Addr().IsUnspecified()), windowsCategory(n, nAddr.IsUnspecified())
	table, who := &windowsSameUser, "same user"
	if n.UID != o.opts.UID {
		table, who = &windowsOtherUser, "different users"
	}
	cell := fmt.Sprintf("first %s, second %s (%s)", winCats[first], winCats[second], who)
	switch table[first][second] {
	case winInUse:
		return alloc.EADDRINUSE, cell + " → WSAEADDRINUSE"
	case winAccess:
		return alloc.EACCES, cell + " → WSAEACCES"
	}
	return alloc.OK, cell + " → Success"
}

// TimeWaitReusable is Linux tcp_twsk_unique (net/ipv4/tcp_ipv4.c,
// os-semantics.md §4.5): may a connect() take over the 4-tuple of a
// TIME_WAIT entry that has existed for age? Only if the entry saw the
// peer's timestamps (p.TCPTimestamps; peers are assumed to use them when
// the host does), and then either because the socket was bound to its port
// before connect() (prebound: the twp == NULL path, which needs neither
// tcp_tw_reuse nor the delay, §10 item 5) or because tcp_tw_reuse is 1, or
// 2 with a loopback peer or local address (loopback), and age exceeds
// p.TCPTwReuseDelay. The string names the deciding condition.
func TimeWaitReusable(p *Profile, prebound, loopback bool, age time.Duration) (bool, string) {
	const src = "Linux tcp_twsk_unique (§4.5): "
	if !p.TCPTimestamps {
		return false, src + "the TIME_WAIT entry saw no timestamps (tcp_timestamps = 0) → never reusable"
	}
	if prebound {
		return true, src + "pre-bound port with timestamps: reusable at once, tcp_tw_reuse and its delay do not apply"
	}
	switch {
	case p.TCPTwReuse == 0:
		return false, src + "tcp_tw_reuse = 0"
	case p.TCPTwReuse == 2 && !loopback:
		return false, src + "tcp_tw_reuse = 2 and the connection is not on loopback"
	case age <= p.TCPTwReuseDelay:
		return false, fmt.Sprintf(src+"TIME_WAIT for %v, not more than tcp_tw_reuse_delay %v", age, p.TCPTwReuseDelay)
	}
	return true, fmt.Sprintf(src+"tcp_tw_reuse = %d, TIME_WAIT for %v > tcp_tw_reuse_delay %v", p.TCPTwReuse, age, p.TCPTwReuseDelay)
}

// onOff spells a socket option's value.
func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// bsdLookupLocal is in_pcblookup_local (FreeBSD sys/netinet/in_pcb.c, XNU
// bsd/netinet/in_pcb.c) over the owners of port, in a's
// family (v6only, see Sockets). Without wild it finds an unconnected socket
// bound to exactly a. With wild it finds the best fit: a specific address
// other than a does not match; otherwise one wildcard each is counted for a
// connected socket and for a wildcard on either side but not both, and the
// fewest wins, ties going to the most recently bound (the port list is
// kept with LIST_INSERT_HEAD). The connect()-autobound stand-in takes part
// in the wildcard lookup only, as the oldest. It returns the socket and its
// id (NoSock for the stand-in), or nil.
func (s *Sockets) bsdLookupLocal(n *sockEntry, a netip.Addr, port uint16, wild bool) (SockID, *sockEntry) {
	bestID, best, bestWild := NoSock, (*sockEntry)(nil), 3
	consider := func(id SockID, o *sockEntry) {
		oa := o.local.Addr()
		if oa.Is4() != a.Is4() {
			return
		}
		if !wild {
			if !o.connected() && oa == a && (best == nil || o.seq > best.seq) {
				bestID, best = id, o
			}
			return
		}
		w := 0
		if o.connected() {
			w++
		}
		switch {
		case !oa.IsUnspecified() && !a.IsUnspecified() && oa != a:
			return
		case oa.IsUnspecified() != a.IsUnspecified():
			w++
		}
		if w < bestWild || (w == bestWild && best != nil && o.seq > best.seq) {
			bestID, best, bestWild = id, o, w
		}
	}
	if wild {
		if o := s.connectOwner(n, a, port); o != nil {
			consider(NoSock, o)
		}
	}
	if b := s.buckets[port]; b != nil {
		for _, oid := range b.owners {
			consider(oid, &s.socks[oid])
		}
	}
	return bestID, best
}

// bsdBindSetup is the bind(port != 0) decision of FreeBSD in_pcbbind_setup
// (§5.3) and XNU in_pcbbind (§6.1) for unbound socket n on a:port.
// Without SO_REUSEADDR and SO_REUSEPORT the lookup is wildcard-aware, so a
// wildcard and a specific binding collide; with either it is exact, over
// unconnected sockets, so wildcard and specific coexist and TIME_WAIT
// entries (connected, with their specific address) are never found
// (§7.2 rows 9-10, inferred). A socket found conflicts unless both have
// SO_REUSEPORT. Before that, unless privileged, a cross-user guard runs a
// wildcard lookup: FreeBSD refuses another uid's socket unless this is TCP
// and that socket is connected (SO_REUSEPORT_LB is not modelled, so the
// condition on it always holds); XNU refuses another uid's socket when
// either address is specific or that socket lacks SO_REUSEPORT.
// Multicast addresses (SO_REUSEADDR acting as SO_REUSEPORT) are not
// modelled.
func (s *Sockets) bsdBindSetup(n *sockEntry, a netip.Addr, port uint16) (alloc.Errno, string) {
	src := "FreeBSD in_pcbbind_setup (§5.3)"
	if s.os == osMacOS {
		src = "XNU in_pcbbind (§6.1)"
	}
	if !s.privileged {
		if tid, t := s.bsdLookupLocal(n, a, port, true); t != nil && t.opts.UID != n.opts.UID {
			guard := s.proto == UDP || !t.connected()
			if s.os == osMacOS {
				guard = !a.IsUnspecified() || !t.local.Addr().IsUnspecified() || !t.opts.ReusePort
			}
			if guard {
				return alloc.EADDRINUSE, fmt.Sprintf("%s: cross-user check: wildcard lookup finds %s of uid %d ≠ %d → EADDRINUSE", src, s.describe(tid, t), t.opts.UID, n.opts.UID)
			}
		}
	}
	wild := !n.opts.ReuseAddr && !n.opts.ReusePort
	lookup := "exact lookup of unconnected sockets (SO_REUSEADDR or SO_REUSEPORT set)"
	if wild {
		lookup = "wildcard-aware lookup (neither SO_REUSEADDR nor SO_REUSEPORT)"
	}
	tid, t := s.bsdLookupLocal(n, a, port, wild)
	switch {
	case t == nil:
		return alloc.OK, fmt.Sprintf("%s: %s finds no socket on %v → bound", src, lookup, netip.AddrPortFrom(a, port))
	case n.opts.ReusePort && t.opts.ReusePort:
		return alloc.OK, fmt.Sprintf("%s: %s finds %s; SO_REUSEPORT on both → shared", src, lookup, s.describe(tid, t))
	}
	return alloc.EADDRINUSE, fmt.Sprintf("%s: %s finds %s, SO_REUSEPORT not on both → EADDRINUSE", src, lookup, s.describe(tid, t))
}

// bsdExactBusy is the busy test of FreeBSD in_pcb_lport for bind(addr, 0)
// with SO_REUSEADDR or SO_REUSEPORT: the exact in_pcblookup_local finds an
// unconnected socket bound to exactly nAddr.
func bsdExactBusy(_ SockOpts, nAddr netip.Addr, o *sockEntry) (alloc.Errno, string) {
	if o.connected() || o.local.Addr() != nAddr {
		return alloc.OK, ""
	}
	return alloc.EADDRNOTAVAIL, ""
}
