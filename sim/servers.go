package sim

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/portsim/portsim/alloc"
	"github.com/portsim/portsim/scenarios"
	"github.com/portsim/portsim/tcpstate"
)

// Server event kinds (they share the engine with the client kinds).
const (
	kServerStart   uint8 = 100 + iota // the listeners bind and listen; ID = server
	kServerStop                       // a restart closes the listeners; ID = server
	kServerRebind                     // a restart binds again (or retries); ID = server
	kServerTWCheck                    // server-side TIME_WAIT entries may have expired; ID = host
)

// serverRun is one server during a run: its listeners in the host's
// tcpstate.Sockets, whether it accepts, and its counters.
type serverRun struct {
	s         *scenarios.Server
	socks     *tcpstate.Sockets
	listeners []tcpstate.SockID // nil while down
	slot      map[tcpstate.SockID]int
	hash      *rand.Rand // flow hashes for SO_REUSEPORT selection
	restart   int        // index of the restart in progress
	sum       ServerSummary
	peakTW    int
}

// serverHost is the server side of a host: one socket table for all its
// servers, and the lane on which its TIME_WAIT entries expire.
type serverHost struct {
	socks  *tcpstate.Sockets
	twLane LaneID
}

// newServers sets up the scenario's servers: one tcpstate.Sockets per
// server host (bind conflicts between servers of a host are real), the
// start events at time 0, and the map from listen address to server used by
// the client workloads.
func (m *model) newServers(lane func(Time) LaneID) error {
	m.srvHosts = map[int]*serverHost{}
	for i := range m.sc.Servers {
		sv := &m.sc.Servers[i]
		h := &m.sc.Hosts[sv.Host]
		sh, ok := m.srvHosts[sv.Host]
		if !ok {
			b, err := m.allocator(h, h.Profile.BindAllocator, "server-bind")
			if err != nil {
				return err
			}
			sh = &serverHost{socks: tcpstate.NewSockets(&h.Profile, tcpstate.TCP, b, h.Privileged), twLane: lane(Time(h.Profile.TimeWait))}
			m.srvHosts[sv.Host] = sh
		}
		m.servers = append(m.servers, &serverRun{
			s: sv, socks: sh.socks, hash: rand.New(stream(m.sc.Seed, "server/"+sv.Name+"/hash")),
			sum: ServerSummary{Name: sv.Name, Host: h.Name, Listen: sv.Listen.String(), PerListener: make([]uint64, sv.Listeners)},
		})
		m.eng.At(0, kServerStart, int32(i))
	}
	return nil
}

// serverFor returns the server a connection to dst reaches, or -1: one
// whose listen address is dst's, or a wildcard on the host that has dst's
// address.
func (m *model) serverFor(dst netip.AddrPort) int {
	for i, sv := range m.sc.Servers {
		if sv.Listen.Port() != dst.Port() {
			continue
		}
		a := sv.Listen.Addr()
		if a == dst.Addr() || (a.IsUnspecified() && a.Is4() == dst.Addr().Is4() && indexOf(m.sc.Hosts[sv.Host].Addresses, dst.Addr()) >= 0) {
			return i
		}
	}
	return -1
}

// serverEvent handles the server event kinds.
func (m *model) serverEvent(kind uint8, id int32) {
	switch kind {
	case kServerStart:
		m.bindListeners(m.servers[id], m.servers[id].s.Options, "start")
	case kServerStop:
		sr := m.servers[id]
		r := sr.s.Restarts[sr.restart]
		for _, l := range sr.listeners {
			rule := sr.socks.Close(l, time.Duration(m.eng.Now()), false)
			m.traceServer(sr, "close() listener", "LISTEN", "CLOSED", alloc.OK, rule)
		}
		sr.listeners = nil
		sr.sum.Restarts = append(sr.sum.Restarts, RestartSummary{AtS: r.At.Seconds()})
		m.eng.At(m.eng.Now()+Time(r.Down), kServerRebind, id)
	case kServerRebind:
		sr := m.servers[id]
		r := sr.s.Restarts[sr.restart]
		rs := &sr.sum.Restarts[len(sr.sum.Restarts)-1]
		rs.Attempts++
		if errno, rule := m.bindListeners(sr, r.Options, "restart"); errno != alloc.OK {
			rs.LastErrno, rs.Rule = errno.String(), rule
			m.eng.At(m.eng.Now()+Time(r.Retry), kServerRebind, id)
			return
		}
		t := float64(m.eng.Now()) / 1e9
		rs.BoundS = &t
		m.nextRestart(sr, id)
	case kServerTWCheck:
		m.srvHosts[int(id)].socks.ExpireTimeWait(time.Duration(m.eng.Now()))
	}
}

// nextRestart schedules the server's next restart, if any.
func (m *model) nextRestart(sr *serverRun, id int32) {
	if sr.listeners == nil && len(sr.sum.Restarts) == 0 {
		return
	}
	if n := len(sr.sum.Restarts); n < len(sr.s.Restarts) {
		sr.restart = n
		at := max(Time(sr.s.Restarts[n].At), m.eng.Now())
		m.eng.At(at, kServerStop, id)
	}
}

// bindListeners creates the server's listeners with opts: socket(),
// bind() to the listen address, listen(), each by the host's rules, as
// separate processes of a server would. The ones that bind serve; the
// first failure stops the rest (its socket is closed) and is recorded. With
// none bound the server stays down (clients get ECONNREFUSED) and the errno
// and rule are returned.
func (m *model) bindListeners(sr *serverRun, opts scenarios.SockOptions, why string) (alloc.Errno, string) {
	now := time.Duration(m.eng.Now())
	so := tcpstate.SockOpts{ReuseAddr: opts.ReuseAddr, ReusePort: opts.ReusePort, ExclusiveAddrUse: opts.ExclusiveAddrUse}
	var made []tcpstate.SockID
	errno, rule := alloc.OK, ""
	for range sr.s.Listeners {
		l := sr.socks.Socket(so)
		_, errno, rule = sr.socks.Bind(l, sr.s.Listen, now)
		m.traceServer(sr, fmt.Sprintf("bind(%v) (%s)", sr.s.Listen, why), "UNBOUND", "BOUND", errno, rule)
		if errno == alloc.OK {
			errno, rule = sr.socks.Listen(l)
			m.traceServer(sr, "listen()", "BOUND", "LISTEN", errno, rule)
		}
		if errno != alloc.OK {
			sr.socks.Close(l, now, false)
			break
		}
		made = append(made, l)
	}
	if errno != alloc.OK && why == "start" {
		sr.sum.StartErrno, sr.sum.StartRule = errno.String(), rule
	}
	if len(made) == 0 {
		sr.listeners = nil
		return errno, rule
	}
	sr.listeners = made
	sr.slot = map[tcpstate.SockID]int{}
	for i, l := range made {
		sr.slot[l] = i
	}
	if why == "start" {
		m.nextRestart(sr, int32(indexOfServer(m.servers, sr)))
	}
	return alloc.OK, ""
}

func indexOfServer(all []*serverRun, sr *serverRun) int {
	for i, x := range all {
		if x == sr {
			return i
		}
	}
	return -1
}

// accept delivers a client's SYN from src to server sv: demultiplexing
// picks the socket (exact 4-tuple, most specific listener, SO_REUSEPORT
// group hash; tcpstate.Sockets.Lookup) and the listener accepts. It returns
// the child socket, or the errno the client's connect() gets: ECONNREFUSED
// when nothing listens (RST), ETIMEDOUT when the SYN is dropped (a TIME_WAIT
// entry that cannot be ended).
func (m *model) accept(sv int, dst, src netip.AddrPort) (tcpstate.SockID, alloc.Errno, string) {
	sr := m.servers[sv]
	now := time.Duration(m.eng.Now())
	if sr.listeners == nil {
		sr.sum.Refused++
		return tcpstate.NoSock, alloc.ECONNREFUSED, "no listener on " + dst.String() + ": RST (the server is down)"
	}
	hash := sr.hash.Uint32()
	id, rule := sr.socks.Lookup(dst, src, hash)
	l, ok := sr.slot[id]
	if !ok {
		// The 4-tuple belongs to an existing socket (a TIME_WAIT entry);
		// the SYN still reaches the listener the group hash picks, which
		// decides whether the TIME_WAIT can end (RFC 6191).
		l = int(uint64(hash) * uint64(len(sr.listeners)) >> 32)
	}
	child, accepted, arule := sr.socks.Accept(sr.listeners[l], dst.Addr(), src, now)
	rule += "; " + arule
	if !accepted {
		sr.sum.Dropped++
		return tcpstate.NoSock, alloc.ETIMEDOUT, rule
	}
	sr.sum.Accepted++
	sr.sum.PerListener[l]++
	return child, alloc.OK, rule
}

// serverClose closes the server's side of a connection: actively (the
// server closed first: its TIME_WAIT) or passively or by RST (no
// TIME_WAIT).
func (m *model) serverClose(sv int, child tcpstate.SockID, timeWait bool) {
	sr := m.servers[sv]
	sr.socks.Close(child, time.Duration(m.eng.Now()), timeWait)
	if timeWait {
		sh := m.srvHosts[sr.s.Host]
		sr.peakTW = max(sr.peakTW, sh.socks.Count[tcpstate.SockTimeWait])
		m.eng.After(sh.twLane, kServerTWCheck, int32(sr.s.Host))
	}
}

// traceServer records a server lifecycle step (Socket 0). Server steps are
// recorded whatever the trace's limit, which counts connection steps only,
// so a restart shows up however long the run.
func (m *model) traceServer(sr *serverRun, event, from, to string, errno alloc.Errno, why string) {
	if m.tr == nil || m.tr.opt.Socket != 0 {
		return
	}
	st := TraceStep{TS: float64(m.eng.Now()) / 1e9, Host: m.sc.Hosts[sr.s.Host].Name, Workload: "server " + sr.s.Name,
		Event: event, Local: sr.s.Listen.String(), From: from, To: to, Why: why}
	if errno != alloc.OK {
		st.Errno = errno.String()
	}
	m.tr.steps = append(m.tr.steps, st)
}
