package sim

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/portsim/portsim/alloc"
	"github.com/portsim/portsim/internal/slab"
	"github.com/portsim/portsim/scenarios"
	"github.com/portsim/portsim/sim/nat"
	"github.com/portsim/portsim/tcpstate"
)

// Event kinds.
const (
	kArrival     uint8 = iota // a workload's next connect() (next request with a pool); ID = workload
	kSynAck                   // SYN_SENT -> ESTABLISHED after one RTT; ID = connection
	kClose                    // the holding time is over: someone closes, or the connection goes idle in the pool; ID = connection
	kFinAck                   // FIN_WAIT_1: our FIN acknowledged and the peer's FIN in; ID = connection
	kLastAck                  // LAST_ACK: our FIN acknowledged; ID = connection
	kTimeWaitEnd              // TIME_WAIT expired; ID = connection
	kTwReusable               // tcp_tw_reuse_delay passed since TIME_WAIT began; ID = connection
	kRefused                  // the server's RST (or silence) ends a SYN_SENT; ID = connection
	kPeerFin                  // the peer's late FIN reaches FIN_WAIT_2; ID = connection
	kFinTimeout               // tcp_fin_timeout ends an orphaned FIN_WAIT_2; ID = connection
)

// conn is one live connection: 16 bytes in a slab indexed by int32.
type conn struct {
	dom   int32 // index into model.doms
	work  uint16
	port  uint16
	state tcpstate.State
	held  tcpstate.Held // bind(addr, 0), SO_REUSEADDR, SO_REUSEPORT: for ApplyHeld and NoteTimeWait
	srv   int16         // index into model.servers, -1 when the peer is not modelled
	child tcpstate.SockID
}

// hostRun is a host during a run.
type hostRun struct {
	h         *scenarios.Host
	tbl       *tcpstate.Table // TCP
	udp       *tcpstate.Table // UDP, an independent port space; nil without UDP workloads
	twLane    LaneID
	finLane   LaneID   // tcp_fin_timeout
	probes    []uint64 // histogram of probes per allocation, indexed by probes
	natIdx    int      // the NAT the host is behind (index into model.nats), -1 for none
	subs      []int    // per address: its inside index at that NAT
	peakTW    int
	peakPorts int
}

// domRun is a conflict domain during a run, with its counters.
type domRun struct {
	host         int
	tbl          *tcpstate.Table // the host's TCP or UDP table
	dom          int32           // index in tbl
	d            *tcpstate.Domain
	usable       int // ports the domain's sockets can hold at once
	attempts     uint64
	successes    uint64
	fails        [alloc.NumErrnos]uint64
	firstFail    Time // -1: none
	peakTW       int
	peakInUse    int
	requests     uint64  // arrivals of pooled workloads: attempts + reused
	reused       uint64  // requests served on an idle pooled connection, without connect()
	area         float64 // integral of InUse over time, socket-nanoseconds
	last         Time
	warm         Time    // end of the warm-up (one mean holding time)
	ssArea       float64 // area after warm
	ssAttempts   uint64  // attempts at or after warm
	ssFailures   uint64
	intervalFail uint64
	retrying     uint64 // attempts still retransmitting a NAT-dropped SYN at the end
	rows         []DomainRow
	reuse        bool    // connect() may take over this domain's TIME_WAIT 4-tuples
	twNote       bool    // the table wants NoteTimeWait (ip_autobind_reuse: a bound connect() may take a TIME_WAIT over)
	rate         float64 // offered arrivals per second (analytic)
	load         float64 // offered load in Erlangs (analytic)
	applicable   bool
}

// integrate adds to the time integral the occupancy inUse, which has held
// since the last change, up to now. It is called only when the occupancy
// changes (a connect() that succeeds, a socket reaching CLOSED), not per
// event.
func (d *domRun) integrate(now Time, inUse int) {
	n := float64(inUse)
	d.area += n * float64(now-d.last)
	if now > d.warm {
		d.ssArea += n * float64(now-max(d.last, d.warm))
	}
	d.last = now
}

// workRun is a workload during a run.
type workRun struct {
	w    *scenarios.Workload
	doms []int32 // model.doms index per destination
	rr   int     // round-robin position in doms
	draws
	holdLane LaneID // lane for a fixed holding time, -1 when it varies
	rttLane  LaneID
	peerLane LaneID              // the peer's close delay; -1 when the peer closes at once
	req      tcpstate.ConnectReq // the socket path's fixed part: Bind, LocalRange, ReuseAddr, ReusePort
	held     tcpstate.Held       // req.Held()
	udp      bool
	srv      []int   // per destination: index into model.servers, -1 when no server is modelled
	routes   []route // per destination, nil when no destination crosses a NAT
	// pools are the keep-alive idle lists, one per distinct destination
	// (Go keys its idle lists by host, so a destination listed twice has
	// one); poolOf indexes pools per destination. Both nil without a pool.
	pools  []idleList
	poolOf []int32
}

// idleList is a pooled workload's idle connections toward one destination,
// a stack: Go's Transport reuses the most recently idled connection first
// (getIdleConn takes the last entry of idleConn[key]).
type idleList struct {
	dst   netip.AddrPort
	conns []int32
}

// model is the whole simulated system during one run.
type model struct {
	eng   Engine
	sc    *scenarios.Scenario
	end   Time
	hosts []*hostRun
	doms  []*domRun
	works []*workRun
	conns []conn
	slots slab.NextFit // the conns slab's free slots

	totalTW, totalPorts int
	peakTW, peakPorts   int

	ivAttempts, ivSuccesses, ivFailures uint64
	rows                                []Row
	nextSample                          Time
	// plotted indexes doms: the domain whose rows the series keeps (the
	// highest offered load), -1 when there are no domains.
	plotted int
	events  uint64
	tables  []*tcpstate.Table // every host's TCP and UDP tables, for the series
	tr      *tracer           // nil unless Trace
	obs     func(Connect)     // nil unless Observe

	servers  []*serverRun
	srvHosts map[int]*serverHost // by host index
	ports    []PortChoice

	nats []*natRun
	cnat []connNAT // per connection slot, nil without NATs
	// cpool is, per connection slot, the index in its workload's pools of
	// a pooled workload's connection; nil when no workload has a pool (a
	// parallel slice, so that conn stays 16 bytes).
	cpool []int32
}

// stream returns the random source of one model component, seeded with the
// scenario seed and the FNV-1a hash of the component's name (the two 64-bit
// halves of PCG's 128-bit state), so adding a workload does not change the
// draws of another.
func stream(seed uint64, name string) *rand.PCG {
	h := fnv.New64a()
	h.Write([]byte(name))
	return rand.NewPCG(seed, h.Sum64())
}

// Run executes a scenario in virtual time on the calling goroutine and
// returns its Result. The result depends only on the scenario (seed
// included): no wall clock, no global randomness. Errors report a scenario
// that the models cannot run faithfully (for example TIME_WAIT reuse, which
// is not modelled yet) or an unknown allocator.
func Run(s *scenarios.Scenario) (*Result, error) {
	m, err := newModel(s)
	if err != nil {
		return nil, err
	}
	m.loop()
	return m.result(), nil
}

func newModel(s *scenarios.Scenario) (*model, error) {
	if s.Duration <= 0 || s.Sample <= 0 {
		return nil, fmt.Errorf("sim: duration and sample must be > 0")
	}
	if len(s.Workloads) > math.MaxUint16+1 {
		return nil, fmt.Errorf("sim: %d workloads; at most %d are supported", len(s.Workloads), math.MaxUint16+1)
	}
	m := &model{sc: s, end: Time(s.Duration), nextSample: min(Time(s.Sample), Time(s.Duration))}
	lanes := map[Time]LaneID{}
	lane := func(d Time) LaneID {
		if l, ok := lanes[d]; ok {
			return l
		}
		l := m.eng.NewLane(d)
		lanes[d] = l
		return l
	}
	for i := range s.Hosts {
		h := &s.Hosts[i]
		a, err := m.allocator(h, h.Profile.Allocator, "alloc")
		if err != nil {
			return nil, err
		}
		tbl, err := tcpstate.NewTable(&h.Profile, h.Addresses, a)
		if err != nil {
			return nil, fmt.Errorf("sim: host %s: %w", h.Name, err)
		}
		b, err := m.allocator(h, h.Profile.BindAllocator, "bind")
		if err != nil {
			return nil, err
		}
		tbl.SetBindAllocator(b)
		hr := &hostRun{
			h:       h,
			tbl:     tbl,
			twLane:  lane(Time(h.Profile.TimeWait)),
			finLane: lane(Time(h.Profile.TCPFinTimeout)),
			natIdx:  -1,
		}
		if hasUDP(s, i) {
			u, err := m.allocator(h, h.Profile.UDPAllocator, "udp")
			if err != nil {
				return nil, err
			}
			if hr.udp, err = tcpstate.NewUDPTable(&h.Profile, h.Addresses, u); err != nil {
				return nil, fmt.Errorf("sim: host %s: %w", h.Name, err)
			}
		}
		m.hosts = append(m.hosts, hr)
		m.tables = append(m.tables, hr.tbl)
		if hr.udp != nil {
			m.tables = append(m.tables, hr.udp)
		}
	}
	if err := m.newServers(lane); err != nil {
		return nil, err
	}
	type domKey struct {
		tbl *tcpstate.Table
		d   int32
	}
	domIndex := map[domKey]int32{} // (table, table domain) -> model.doms index
	for i := range s.Workloads {
		w := &s.Workloads[i]
		hr := m.hosts[w.From]
		l := indexOf(hr.h.Addresses, w.Source)
		if l < 0 {
			return nil, fmt.Errorf("sim: workload %s: source %v is not an address of host %s", w.Name, w.Source, hr.h.Name)
		}
		wr := &workRun{
			w:        w,
			draws:    newDraws(s.Seed, w),
			holdLane: -1,
			rttLane:  lane(Time(w.RTT)),
			udp:      w.Socket.UDP(),
		}
		if w.Hold.Dist == scenarios.Fixed {
			wr.holdLane = lane(Time(w.Hold.Value))
		}
		wr.peerLane = -1
		if w.PeerCloseDelay > 0 {
			wr.peerLane = lane(Time(w.PeerCloseDelay))
		}
		wr.req = tcpstate.ConnectReq{Bind: w.Socket == scenarios.BindConnect, ReuseAddr: w.Options.ReuseAddr, ReusePort: w.Options.ReusePort}
		if w.Socket == scenarios.PortRange {
			wr.req.LocalRange = w.PortRange
		}
		wr.held = wr.req.Held()
		tbl := hr.tbl
		if wr.udp {
			tbl = hr.udp
		}
		for _, dst := range w.To {
			td, err := tbl.Domain(l, dst)
			if err != nil {
				return nil, fmt.Errorf("sim: workload %s: %w", w.Name, err)
			}
			key := domKey{tbl, td}
			gi, ok := domIndex[key]
			if !ok {
				gi = int32(len(m.doms))
				domIndex[key] = gi
				m.doms = append(m.doms, &domRun{host: w.From, tbl: tbl, dom: td, d: tbl.Domains()[td],
					usable: tbl.UsablePorts(), firstFail: -1, applicable: true, reuse: tbl.ReuseApplies(td), twNote: tbl.TracksTimeWait()})
			}
			d := m.doms[gi]
			switch w.Socket {
			case scenarios.PortRange:
				// IP_LOCAL_PORT_RANGE narrows the range for this socket
				// only (inet_sk_get_local_port_range).
				d.usable = narrowedPorts(&hr.h.Profile, w.PortRange)
			case scenarios.BindConnect:
				// bind(0) makes every destination compete for the
				// address's ports: a loss network, not one Erlang
				// system per destination.
				d.applicable = false
			}
			wr.doms = append(wr.doms, gi)
			srv := -1
			if !wr.udp {
				srv = m.serverFor(dst)
			}
			wr.srv = append(wr.srv, srv)
		}
		if w.Pool > 0 {
			if wr.udp {
				return nil, fmt.Errorf("sim: workload %s: a keep-alive pool needs a TCP socket path, not %v", w.Name, w.Socket)
			}
			wr.newPools()
			m.cpool = make([]int32, len(m.conns))
		}
		m.works = append(m.works, wr)
		if t, ok := wr.arr.next(); ok {
			m.eng.At(t, kArrival, int32(i))
		}
	}
	if err := m.newNATs(lane); err != nil {
		return nil, err
	}
	m.offeredLoad()
	return m, nil
}

func indexOf(addrs []netip.Addr, a netip.Addr) int {
	for i, x := range addrs {
		if x == a {
			return i
		}
	}
	return -1
}

// loop processes events in (time, sequence) order until the end of the run,
// taking a sample row whenever the clock passes a sample time.
func (m *model) loop() {
	for {
		ev, ok := m.eng.Next()
		for m.nextSample <= m.end && (!ok || ev.T > m.nextSample) {
			m.sample(m.nextSample)
		}
		if !ok || ev.T > m.end {
			break
		}
		m.events++
		switch ev.Kind {
		case kArrival:
			m.arrival(ev.ID)
		case kSynAck:
			m.synAck(ev.ID)
		case kClose:
			m.close(ev.ID)
		case kFinAck:
			m.finAck(ev.ID)
		case kLastAck:
			m.natClose(ev.ID, nat.CloseFIN)
			m.step(ev.ID, tcpstate.RecvAck)
		case kTimeWaitEnd:
			m.timeWaitEnd(ev.ID)
		case kTwReusable:
			m.twReusable(ev.ID)
		case kRefused:
			m.step(ev.ID, tcpstate.AppAbort)
		case kPeerFin:
			m.peerFin(ev.ID)
		case kFinTimeout:
			m.finTimeout(ev.ID)
		default:
			if !m.natEvent(ev.Kind, ev.ID) {
				m.serverEvent(ev.Kind, ev.ID)
			}
		}
	}
	for _, d := range m.doms {
		d.integrate(m.end, d.d.InUse)
	}
	m.countRetrying()
}

// newPools sets up the workload's empty idle lists, one per distinct
// destination.
func (wr *workRun) newPools() {
	at := map[netip.AddrPort]int32{}
	for _, dst := range wr.w.To {
		p, ok := at[dst]
		if !ok {
			p = int32(len(wr.pools))
			at[dst] = p
			wr.pools = append(wr.pools, idleList{dst: dst})
		}
		wr.poolOf = append(wr.poolOf, p)
	}
}

// arrival is one connect() by workload id: allocate a local port in the
// destination's conflict domain, or count the errno. For a workload with a
// keep-alive pool it is one request, which connect()s only when the
// destination has no idle connection (reuse).
func (m *model) arrival(id int32) {
	now := m.eng.Now()
	wr := m.works[id]
	di := wr.rr
	gi, dst, srv := wr.doms[di], wr.w.To[di], wr.srv[di]
	if wr.rr++; wr.rr == len(wr.doms) {
		wr.rr = 0
	}
	if t, ok := wr.arr.next(); ok {
		m.eng.At(t, kArrival, id)
	}
	d := m.doms[gi]
	if wr.pools != nil {
		d.requests++
		if m.reuse(wr, di) {
			return
		}
	}
	hr := m.hosts[d.host]
	ports, inUse := d.tbl.PortsInUse, d.d.InUse
	req := wr.req
	req.Local, req.Remote, req.Now = wr.w.Source, dst, time.Duration(now)
	r, took := d.tbl.Connect(d.dom, req)
	if took >= 0 {
		// The TIME_WAIT socket is gone (tcp_tw_reuse, or a bound socket's
		// connect() after the ip_autobind_reuse relax pass); its slot is
		// freed when its expiry event comes up (Closed marks it dead until
		// then).
		m.conns[took].state = tcpstate.Closed
		m.totalTW--
	}
	hr.countProbes(r.Probes)
	if m.obs != nil {
		m.obs(Connect{At: time.Duration(now), Workload: int(id), Dest: di, Port: r.Port, Err: r.Err})
	}
	d.attempts++
	m.ivAttempts++
	if now >= d.warm {
		d.ssAttempts++
	}
	if r.Err == alloc.OK && wr.routes != nil && wr.routes[di].viaNAT() {
		// The SYN (or first datagram) crosses a NAT: its fate is decided
		// there (natrun.go), possibly after retransmissions.
		c := m.takePort(wr, id, di, d, r.Port, ports, inUse, -1, tcpstate.NoSock)
		m.cnat[c] = connNAT{flow: -1, dst: int32(di), opened: now}
		if m.tr != nil {
			m.traceConnect(wr, d, dst, r, alloc.OK, c, took, "")
		}
		m.natSyn(c)
		return
	}
	// The server, where one is modelled, answers the SYN: the outcome is
	// decided when it is sent (a restart within one RTT is not resolved).
	errno, child, srule := r.Err, tcpstate.NoSock, ""
	if errno == alloc.OK && srv >= 0 {
		child, errno, srule = m.accept(srv, dst, netip.AddrPortFrom(wr.w.Source, r.Port))
	}
	var c int32 = -1
	if r.Err == alloc.OK {
		// The port is taken, refused or not.
		c = m.takePort(wr, id, di, d, r.Port, ports, inUse, srv, child)
	}
	if m.tr != nil {
		m.traceConnect(wr, d, dst, r, errno, c, took, srule)
	}
	if errno != alloc.OK {
		m.fail(d, now, errno)
		if c >= 0 {
			// SYN_SENT until the RST (or the SYN's fate) one RTT later.
			m.eng.After(wr.rttLane, kRefused, c)
		}
		return
	}
	m.established(wr, d, c)
}

// takePort records a port that connect() took for workload wr (id) toward
// its destination di, in domain d: the port-choice sample, the occupancy
// integral and peaks, and a new connection record in SYN_SENT. ports and
// inUse are the table's and domain's counts before the connect().
func (m *model) takePort(wr *workRun, id int32, di int, d *domRun, port uint16, ports, inUse, srv int, child tcpstate.SockID) int32 {
	now := m.eng.Now()
	gi := wr.doms[di]
	hr := m.hosts[d.host]
	if len(m.ports) < MaxPortChoices {
		m.ports = append(m.ports, PortChoice{TS: float64(now) / 1e9, Domain: int(gi), Port: port})
	}
	d.integrate(now, inUse)
	d.peakInUse = max(d.peakInUse, d.d.InUse)
	if d.tbl.PortsInUse != ports {
		m.totalPorts++
		hr.peakPorts = max(hr.peakPorts, hr.portsInUse())
		m.peakPorts = max(m.peakPorts, m.totalPorts)
	}
	c := m.newConn()
	m.conns[c] = conn{dom: gi, work: uint16(id), port: port, state: tcpstate.SynSent, held: wr.held, srv: int16(srv), child: child}
	if wr.pools != nil {
		m.cpool[c] = wr.poolOf[di]
	}
	return c
}

// fail counts a failed connection attempt of domain d that was made at
// time at.
func (m *model) fail(d *domRun, at Time, errno alloc.Errno) {
	if at >= d.warm {
		d.ssFailures++
	}
	d.fails[errno]++
	d.intervalFail++
	m.ivFailures++
	if d.firstFail < 0 {
		d.firstFail = m.eng.Now()
	}
}

// established counts connection c's SYN as answered and schedules the
// handshake's end one RTT later (at once for UDP).
func (m *model) established(wr *workRun, d *domRun, c int32) {
	d.successes++
	m.ivSuccesses++
	if wr.udp {
		// A UDP socket has no handshake: it is open (counted as
		// ESTABLISHED) from autobind until close().
		m.synAck(c)
		return
	}
	m.eng.After(wr.rttLane, kSynAck, c)
}

// countProbes adds one allocation that examined n candidates to the
// host's histogram, which grows to the largest n seen (a fixed
// range-sized histogram would cost 450 KB per host, too much for a
// scenario with thousands of hosts).
func (hr *hostRun) countProbes(n int) {
	if n >= len(hr.probes) {
		hr.probes = append(hr.probes, make([]uint64, n+1-len(hr.probes))...)
	}
	hr.probes[n]++
}

// portsInUse is the host's distinct (address, port) pairs held, TCP and
// UDP port spaces counted separately.
func (hr *hostRun) portsInUse() int {
	n := hr.tbl.PortsInUse
	if hr.udp != nil {
		n += hr.udp.PortsInUse
	}
	return n
}

// allocator builds the host's allocator called name for one socket path
// (what: "alloc", "bind", "udp"), on its own random stream.
func (m *model) allocator(h *scenarios.Host, name, what string) (alloc.Allocator, error) {
	a, err := alloc.New(name, alloc.Config{
		Range:         h.Profile.PortRange,
		First:         h.Profile.FirstPort,
		Rand:          rand.New(stream(m.sc.Seed, "host/"+h.Name+"/"+what)),
		AutobindReuse: h.Profile.AutobindReuse,
	})
	if err != nil {
		return nil, fmt.Errorf("sim: host %s: %w", h.Name, err)
	}
	return a, nil
}

// hasUDP reports whether a workload of host i opens UDP sockets.
func hasUDP(s *scenarios.Scenario, i int) bool {
	for _, w := range s.Workloads {
		if w.From == i && w.Socket.UDP() {
			return true
		}
	}
	return false
}

// narrowedPorts is how many ports IP_LOCAL_PORT_RANGE r leaves usable: each
// bound of r counts only if it lies inside the host's range
// (inet_sk_get_local_port_range, os-semantics.md §2.8), reserved ports
// excluded.
func narrowedPorts(p *tcpstate.Profile, r alloc.Range) int {
	n := p.PortRange
	if n.Contains(int(r.Low)) {
		n.Low = r.Low
	}
	if n.Contains(int(r.High)) {
		n.High = r.High
	}
	if n.Low > n.High {
		n = p.PortRange
	}
	return n.Size() - p.Reserved.CountIn(n)
}

// newConn takes a connection slot (next-fit: see slab.NextFit).
func (m *model) newConn() int32 {
	c := m.slots.Take()
	if c == len(m.conns) {
		m.conns = append(m.conns, conn{})
		if m.cnat != nil {
			m.cnat = append(m.cnat, connNAT{flow: -1})
		}
		if m.cpool != nil {
			m.cpool = append(m.cpool, -1)
		}
	}
	return int32(c)
}

// freeConn returns connection c's slot. Its NAT side record is cleared
// here rather than when the slot is taken again: the slot's conn record
// was just read, so the two cache misses overlap.
func (m *model) freeConn(c int32) {
	m.slots.Put(int(c))
	if m.cnat != nil {
		m.cnat[c] = connNAT{flow: -1}
	}
}

// apply feeds one input to connection c and keeps the run's counters in
// step; a connection that reaches CLOSED returns its slot.
func (m *model) apply(c int32, in tcpstate.Input) tcpstate.State {
	cn := &m.conns[c]
	d := m.doms[cn.dom]
	ports, inUse, from := d.tbl.PortsInUse, d.d.InUse, cn.state
	cn.state = d.tbl.ApplyHeld(d.dom, cn.port, cn.state, in, cn.held)
	if m.tr != nil {
		m.traceTransition(c, in, from, cn.state)
	}
	if cn.state == tcpstate.Closed {
		d.integrate(m.eng.Now(), inUse)
		m.totalPorts -= ports - d.tbl.PortsInUse
		m.freeConn(c)
	}
	return cn.state
}

// step applies one input; used for transitions with nothing to schedule.
func (m *model) step(c int32, in tcpstate.Input) {
	m.apply(c, in)
}

// timeWaitEnd ends a TIME_WAIT, or frees the slot of a TIME_WAIT socket
// that a connect() already took over.
func (m *model) timeWaitEnd(c int32) {
	if m.conns[c].state == tcpstate.Closed {
		m.freeConn(c)
		return
	}
	m.totalTW--
	m.apply(c, tcpstate.TimeWaitTimeout)
}

// twReusable: tcp_tw_reuse_delay has passed since c entered TIME_WAIT, so
// connect() toward the same destination may now take its 4-tuple over.
func (m *model) twReusable(c int32) {
	cn := &m.conns[c]
	if cn.state != tcpstate.TimeWait {
		return
	}
	d := m.doms[cn.dom]
	d.tbl.MarkReusable(d.dom, cn.port, c)
}

// synAck completes the handshake and schedules the close after the
// holding time.
func (m *model) synAck(c int32) {
	m.apply(c, tcpstate.RecvSynAck)
	m.hold(m.works[m.conns[c].work], c)
}

// hold schedules the end of connection c's holding time (its request's,
// with a pool) one holding time from now.
func (m *model) hold(wr *workRun, c int32) {
	if wr.holdLane >= 0 {
		m.eng.After(wr.holdLane, kClose, c)
		return
	}
	m.eng.At(m.eng.Now()+wr.hold.draw(), kClose, c)
}

// close ends the connection the way the workload says: the client closes
// first (active close, FIN_WAIT_1 for one RTT), the server closes first
// (CLOSE_WAIT, then LAST_ACK for one RTT, no client TIME_WAIT), or RST
// (SO_LINGER 0: CLOSED at once). A pooled workload's connection goes idle
// instead while its idle list has room (park).
func (m *model) close(c int32) {
	wr := m.works[m.conns[c].work]
	if wr.pools != nil && m.park(wr, c) {
		return
	}
	cn := &m.conns[c]
	if wr.udp {
		// The last datagram: the NAT keeps the mapping for its UDP
		// timeout from now.
		m.natClose(c, nat.CloseUDP)
	}
	switch wr.side() {
	case CloseClient:
		m.apply(c, tcpstate.AppClose)
		m.eng.After(wr.rttLane, kFinAck, c)
	case CloseServer:
		if cn.srv >= 0 {
			m.serverClose(int(cn.srv), cn.child, true)
		}
		m.apply(c, tcpstate.RecvFin)
		m.apply(c, tcpstate.AppClose)
		m.eng.After(wr.rttLane, kLastAck, c)
	default:
		if cn.srv >= 0 {
			m.serverClose(int(cn.srv), cn.child, false)
		}
		m.natClose(c, nat.CloseRST)
		m.apply(c, tcpstate.AppAbort)
	}
}

// The keep-alive pool (Workload.Pool) follows Go net/http's Transport with
// MaxIdleConnsPerHost = Pool (src/net/http/transport.go): a request takes
// the destination's most recently idled connection if there is one
// (getIdleConn takes the last entry of the idle list), else dials a new
// one; when the request is done the connection goes back to the idle list
// if that holds fewer than MaxIdleConnsPerHost connections, and is closed
// otherwise (tryPutIdleConn: errTooManyIdleHost). An idle connection keeps
// its port, its server-side socket (accepted once, closed once) and its
// NAT flow. Not modelled: IdleConnTimeout (idle connections stay open to
// the end of the run), MaxConnsPerHost, an idle connection overtaking a
// dial in progress (Go hands it to the waiting request; here the request
// waits for its own dial, one RTT), and a server restart closing the
// connections idle toward it (restarts close the listeners only).

// reuse serves a request of workload wr toward destination di on that
// destination's most recently idled connection, for one holding time and
// without connect(), and reports whether there was one.
func (m *model) reuse(wr *workRun, di int) bool {
	l := &wr.pools[wr.poolOf[di]]
	n := len(l.conns)
	if n == 0 {
		return false
	}
	c := l.conns[n-1]
	l.conns = l.conns[:n-1]
	m.doms[m.conns[c].dom].reused++
	m.hold(wr, c)
	if m.tr != nil {
		m.tracePool(c, l, "request", idleState, tcpstate.Established.String(),
			"keep-alive pool: the request reuses the most recently idled connection, no connect() (Go net/http Transport getIdleConn)")
	}
	return true
}

// idleState is how a trace shows a connection idle in a keep-alive pool:
// ESTABLISHED, with no request on it.
const idleState = "ESTABLISHED (idle)"

// park: connection c of pooled workload wr finished its request. Its
// destination's idle list takes it if the list holds fewer than Pool
// connections, and park reports whether it did; otherwise the caller
// closes it.
func (m *model) park(wr *workRun, c int32) bool {
	l := &wr.pools[m.cpool[c]]
	full := len(l.conns) >= wr.w.Pool
	if m.tr != nil {
		est := tcpstate.Established.String()
		why, to := fmt.Sprintf("keep-alive pool: back to the idle list (%d of at most %d idle toward this destination; tryPutIdleConn)", len(l.conns)+1, wr.w.Pool), idleState
		if full {
			why, to = fmt.Sprintf("keep-alive pool: %d connections already idle toward this destination, the most it keeps: this one is closed (tryPutIdleConn: errTooManyIdleHost)", wr.w.Pool), est
		}
		m.tracePool(c, l, "request done", est, to, why)
	}
	if full {
		return false
	}
	l.conns = append(l.conns, c)
	return true
}

// tracePool records a keep-alive step of connection c, whose idle list is
// l: a request starting on it or ending.
func (m *model) tracePool(c int32, l *idleList, event, from, to, why string) {
	cn := &m.conns[c]
	wr := m.works[cn.work]
	m.tr.add(m.tr.ids[c], TraceStep{
		TS: float64(m.eng.Now()) / 1e9, Host: m.hosts[m.doms[cn.dom].host].h.Name, Workload: wr.w.Name,
		Event: event, Local: netip.AddrPortFrom(wr.w.Source, cn.port).String(), Remote: l.dst.String(),
		From: from, To: to, Why: why,
	})
}

// finAck: the peer acknowledged our FIN; the client is in FIN_WAIT_2
// until the peer's application closes (PeerCloseDelay, at once by
// default), or until tcp_fin_timeout gives up on an orphaned socket.
func (m *model) finAck(c int32) {
	cn := &m.conns[c]
	m.apply(c, tcpstate.RecvAck)
	wr := m.works[cn.work]
	if wr.peerLane < 0 {
		m.peerFin(c)
		return
	}
	// FIN_WAIT_2 until the peer's application closes, unless
	// tcp_fin_timeout comes first.
	hr := m.hosts[m.doms[cn.dom].host]
	if wr.w.PeerCloseDelay < hr.h.Profile.TCPFinTimeout {
		m.eng.After(wr.peerLane, kPeerFin, c)
	} else {
		m.eng.After(hr.finLane, kFinTimeout, c)
	}
}

// finTimeout ends an orphaned FIN_WAIT_2 whose peer never sent its FIN in
// time: Linux tcp_fin_timeout (the FIN_WAIT2-substate minisock expires),
// BSD finwait2_timeout; the port is free, no TIME_WAIT. The server's side
// is closed then too.
func (m *model) finTimeout(c int32) {
	if cn := &m.conns[c]; cn.srv >= 0 {
		m.serverClose(int(cn.srv), cn.child, false)
	}
	// Modelled as a FIN close from now: an approximation, since conntrack
	// keeps a half-closed flow in CLOSE_WAIT, 60 s from the peer's ACK of
	// our FIN (nat.md §2.9), which the Timeouts do not separate.
	m.natClose(c, nat.CloseFIN)
	m.apply(c, tcpstate.AppAbort)
}

// peerFin: the peer's FIN reaches FIN_WAIT_2 (the server closes after ours:
// passive close, no TIME_WAIT on its side); the client enters TIME_WAIT,
// unless tcp_max_tw_buckets is full.
func (m *model) peerFin(c int32) {
	if cn := &m.conns[c]; cn.srv >= 0 {
		m.serverClose(int(cn.srv), cn.child, false)
	}
	m.natClose(c, nat.CloseFIN)
	if m.apply(c, tcpstate.RecvFin) != tcpstate.TimeWait {
		return
	}
	cn := &m.conns[c]
	d := m.doms[cn.dom]
	hr := m.hosts[d.host]
	if d.twNote {
		d.tbl.NoteTimeWait(d.dom, cn.port, c, cn.held)
	}
	m.totalTW++
	d.peakTW = max(d.peakTW, d.d.Count[tcpstate.TimeWait])
	hr.peakTW = max(hr.peakTW, hr.tbl.Count[tcpstate.TimeWait])
	m.peakTW = max(m.peakTW, m.totalTW)
	m.eng.After(hr.twLane, kTimeWaitEnd, c)
	if d.reuse {
		m.eng.At(reusableAt(m.eng.Now(), hr.h.Profile.TCPTwReuseDelay), kTwReusable, c)
	}
}

// reusableAt is when connect() may first take over a TIME_WAIT that began
// at entry. tcp_twsk_unique (Linux 6.13+) allows it once
// time_after32(tcp_clock_ms(), tw_entry_stamp + tcp_tw_reuse_delay), both
// in whole milliseconds: at the first millisecond strictly after
// floor(entry) + delay, between delay and delay + 1 ms after entry. The
// cross-check found the kernel one tick later than an exact delay.
func reusableAt(entry Time, delay time.Duration) Time {
	const ms = Time(time.Millisecond)
	return (entry/ms + Time(delay/time.Millisecond) + 1) * ms
}

// sample appends the rows for time t: interval counters since the last
// row, socket counts now. The next sample time is advanced.
func (m *model) sample(t Time) {
	var row Row
	row.TS = float64(t) / 1e9
	row.Attempts, row.Successes, row.Failures = m.ivAttempts, m.ivSuccesses, m.ivFailures
	m.ivAttempts, m.ivSuccesses, m.ivFailures = 0, 0, 0
	for _, tbl := range m.tables {
		cnt := &tbl.Count
		row.SynSent += cnt[tcpstate.SynSent]
		row.Established += cnt[tcpstate.Established]
		row.TimeWait += cnt[tcpstate.TimeWait]
		row.Closing += cnt[tcpstate.FinWait1] + cnt[tcpstate.FinWait2] + cnt[tcpstate.Closing] +
			cnt[tcpstate.CloseWait] + cnt[tcpstate.LastAck]
	}
	row.PortsInUse = m.totalPorts
	m.rows = append(m.rows, row)
	m.sampleNATs()
	if m.plotted >= 0 {
		d := m.doms[m.plotted]
		est, tw := d.d.Count[tcpstate.Established], d.d.Count[tcpstate.TimeWait]
		d.rows = append(d.rows, DomainRow{Established: est, TimeWait: tw, Other: d.d.InUse - est - tw, Failures: d.intervalFail})
		d.intervalFail = 0
	}
	if t == m.end {
		m.nextSample = m.end + 1
		return
	}
	m.nextSample = min(t+Time(m.sc.Sample), m.end)
}
