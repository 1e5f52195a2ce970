package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/portsim/portsim/alloc"
	"github.com/portsim/portsim/scenarios"
	"github.com/portsim/portsim/sim/nat"
	"github.com/portsim/portsim/tcpstate"
)

// NAT event kinds.
const (
	kNatConfirm uint8 = 50 + iota // a pending NAT flow reaches conntrack confirm; ID = connection
	kSynRetry                     // a SYN the NAT dropped is retransmitted; ID = connection
	kSynGiveUp                    // connect() gives up: ETIMEDOUT; ID = connection
	// kNatExpire + k: a flow's hold at NAT k is over; ID = flow. The NAT
	// is in the kind so that the ID holds any flow id; the kinds up to the
	// servers' (100) leave room for maxNATs.
	kNatExpire
)

// maxNATs is how many NATs a scenario may have (the expiry kinds left
// below the servers' kinds).
const maxNATs = int(kServerStart - kNatExpire)

// connNAT is what a connection that crosses a NAT keeps beside its conn
// record (a parallel slice, so scenarios without NATs keep 16-byte
// connections).
type connNAT struct {
	flow   nat.FlowID // the outbound flow, -1 when none is held
	dst    int32      // index into the workload's destinations
	syn    uint8      // SYNs sent and dropped so far
	retry  bool       // the last SYN was dropped: a retransmission (or the give-up) is due
	opened Time       // when the first SYN was sent
}

// route is how a workload's connections reach one destination: through
// the NAT the host is behind (out), to a NAT's external address (in), or
// both (hairpinning, or from behind one NAT to another's forwarded port).
type route struct {
	out, in int16      // indexes into model.nats, -1 for none
	sub     int        // the source's inside index at out
	dest    nat.DestID // the destination at out
	ext     netip.AddrPort
}

// viaNAT reports whether the route crosses a NAT.
func (r *route) viaNAT() bool { return r.out >= 0 || r.in >= 0 }

// natRun is a NAT during a run.
type natRun struct {
	sc  *scenarios.NAT
	n   *nat.NAT
	idx int
	// holds and lanes: the hold of each way a flow ends, with its FIFO
	// lane; UDP has a second, the stream timeout.
	holds      [nat.NumCloses]Time
	lanes      [nat.NumCloses]LaneID
	streamHold Time
	streamLane LaneID
	confirm    LaneID // -1 without a ConfirmWindow
	fwdSrv     []int  // per forward rule: the server it reaches, -1 for none
	hosts      []int  // per inside index: the host
	prevDrops  uint64
	firstDrop  Time
	rows       []NATRow
}

// newNATs builds the scenario's NATs and the routes of every workload.
func (m *model) newNATs(lane func(Time) LaneID) error {
	s := m.sc
	if len(s.NATs) == 0 {
		return nil
	}
	if len(s.NATs) > maxNATs {
		return fmt.Errorf("sim: %d NATs; at most %d are supported", len(s.NATs), maxNATs)
	}
	type extKey struct {
		nat, ip int
	}
	extOf := map[netip.Addr]extKey{}
	for k := range s.NATs {
		sn := &s.NATs[k]
		var inside []netip.Addr
		nr := &natRun{sc: sn, idx: k, confirm: -1, firstDrop: -1}
		for _, hi := range sn.Inside {
			hr := m.hosts[hi]
			hr.natIdx = k
			for _, a := range hr.h.Addresses {
				hr.subs = append(hr.subs, len(inside))
				inside = append(inside, a)
				nr.hosts = append(nr.hosts, hi)
			}
		}
		n, err := nat.New(&sn.Config, inside, rand.New(stream(s.Seed, "nat/"+sn.Name)))
		if err != nil {
			return fmt.Errorf("sim: NAT %s: %w", sn.Name, err)
		}
		nr.n = n
		for how := range nat.NumCloses {
			nr.holds[how] = Time(n.Hold(how, 0))
			nr.lanes[how] = lane(nr.holds[how])
		}
		nr.streamHold = Time(n.Hold(nat.CloseUDP, math.MaxInt64))
		nr.streamLane = lane(nr.streamHold)
		if w := sn.Config.ConfirmWindow; w > 0 {
			nr.confirm = lane(Time(w))
		}
		for _, f := range sn.Config.Forwards {
			nr.fwdSrv = append(nr.fwdSrv, m.serverFor(f.Inside))
		}
		for i, a := range sn.Config.ExternalIPs {
			extOf[a] = extKey{k, i}
		}
		m.nats = append(m.nats, nr)
	}
	for _, wr := range m.works {
		hr := m.hosts[wr.w.From]
		routes := make([]route, len(wr.w.To))
		any := false
		for j, dst := range wr.w.To {
			rt := route{out: -1, in: -1}
			ek, toNAT := extOf[dst.Addr()]
			if toNAT {
				rt.in, rt.ext = int16(ek.nat), dst
			}
			if k := hr.natIdx; k >= 0 && !m.insideOf(k, dst.Addr()) {
				rt.out = int16(k)
				rt.sub = hr.subs[indexOf(hr.h.Addresses, wr.w.Source)]
				rt.dest = m.nats[k].n.Dest(dst, wr.udp)
			}
			routes[j] = rt
			any = any || rt.viaNAT()
		}
		if any {
			wr.routes = routes
		}
	}
	m.cnat = make([]connNAT, len(m.conns))
	return nil
}

// insideOf reports whether a is an address of a host behind NAT k: traffic
// between such hosts does not cross it.
func (m *model) insideOf(k int, a netip.Addr) bool {
	for _, hi := range m.nats[k].sc.Inside {
		if indexOf(m.hosts[hi].h.Addresses, a) >= 0 {
			return true
		}
	}
	return false
}

// natSyn sends connection c's SYN (or first datagram) across its route: the
// outbound NAT translates the source, the inbound NAT (a forwarded port, or
// an existing mapping the filtering lets through) the destination. A drop
// leads to a retransmission (natDropped); a pass to the server, or to the
// ECONNREFUSED of an inside endpoint that does not listen.
func (m *model) natSyn(c int32) {
	now := m.eng.Now()
	cn := &m.conns[c]
	x := &m.cnat[c]
	wr := m.works[cn.work]
	rt := &wr.routes[x.dst]
	dst := wr.w.To[x.dst]
	src := netip.AddrPortFrom(wr.w.Source, cn.port)
	if rt.out >= 0 && x.flow >= 0 {
		// A retransmitted SYN whose flow the outbound NAT already holds
		// (it was dropped further on, at the inbound side) matches that
		// conntrack entry again.
		m.natOnward(c)
		return
	}
	if rt.out >= 0 {
		nr := m.nats[rt.out]
		st := nr.n.Stats()
		var preserved, reused uint64
		if m.tr != nil {
			preserved, reused = st.Preserved, st.Reused
		}
		f, drop := nr.n.Open(rt.sub, src, rt.dest, time.Duration(now))
		if drop != nat.NoDrop {
			m.natDrop(nr, c, drop, "")
			return
		}
		x.flow = f
		if m.tr != nil {
			how := "the picker's search (" + nr.sc.Config.Picker + ")"
			switch {
			case st.Preserved > preserved:
				how = "port preservation (RFC 4787 §4.2.1)"
			case st.Reused > reused:
				how = "the endpoint's existing mapping"
			}
			m.traceNAT(c, "nat "+nr.sc.Name, "translate", src, nr.n.External(f), netip.AddrPort{}, fmt.Sprintf("%s → %s toward %s by %s", src, nr.n.External(f), dst, how))
		}
		if nr.confirm >= 0 {
			m.eng.After(nr.confirm, kNatConfirm, c)
			return
		}
	}
	m.natOnward(c)
}

// natConfirm: connection c's pending NAT flow reaches conntrack confirm.
func (m *model) natConfirm(c int32) {
	x := &m.cnat[c]
	wr := m.works[m.conns[c].work]
	nr := m.nats[wr.routes[x.dst].out]
	if drop := nr.n.Confirm(x.flow); drop != nat.NoDrop {
		x.flow = -1
		m.natDrop(nr, c, drop, "")
		return
	}
	m.natOnward(c)
}

// natOnward delivers connection c's SYN past the outbound NAT: through the
// inbound NAT if the destination is an external address, then to the
// server (which sees the NAT's external address as the source).
func (m *model) natOnward(c int32) {
	cn := &m.conns[c]
	x := &m.cnat[c]
	x.retry = false
	wr := m.works[cn.work]
	rt := &wr.routes[x.dst]
	d := m.doms[cn.dom]
	src := netip.AddrPortFrom(wr.w.Source, cn.port)
	if rt.out >= 0 {
		src = m.nats[rt.out].n.External(x.flow)
	}
	dst, srv := wr.w.To[x.dst], wr.srv[x.dst]
	if rt.in >= 0 {
		nr := m.nats[rt.in]
		v, drop := nr.n.Inbound(rt.ext, src, wr.udp)
		if m.tr != nil && v.Kind != nat.Filtered {
			m.traceNAT(c, "nat "+nr.sc.Name, "inbound", src, rt.ext, v.Inside, v.Why)
		}
		switch v.Kind {
		case nat.Filtered:
			m.natDrop(nr, c, drop, v.Why)
			return
		case nat.Passed:
			// The packet reaches an inside endpoint that is a client
			// socket, not a listener: the inside host answers with an RST
			// (TCP) or port unreachable (UDP).
			m.natRefused(c, d, alloc.ECONNREFUSED)
			return
		}
		dst, srv = v.Inside, nr.fwdSrv[v.Rule]
	}
	errno, child, srule := alloc.OK, tcpstate.NoSock, ""
	if srv >= 0 {
		child, errno, srule = m.accept(srv, dst, src)
	}
	cn.srv, cn.child = int16(srv), child
	if m.tr != nil && srule != "" {
		m.traceNAT(c, m.hosts[m.sc.Servers[srv].Host].h.Name, "accept()", src, dst, netip.AddrPort{}, srule)
	}
	if errno != alloc.OK {
		m.natRefused(c, d, errno)
		return
	}
	m.established(wr, d, c)
}

// natRefused: connection c's SYN got an RST (ECONNREFUSED) or was dropped
// past the NAT (ETIMEDOUT at a server): the attempt fails, the NAT flow
// ends, and the socket stays in SYN_SENT for one RTT.
func (m *model) natRefused(c int32, d *domRun, errno alloc.Errno) {
	m.fail(d, m.cnat[c].opened, errno)
	how := nat.CloseRST
	switch {
	case m.works[m.conns[c].work].udp:
		how = nat.CloseUDP
	case errno == alloc.ETIMEDOUT:
		how = nat.CloseHalfOpen
	}
	m.natClose(c, how)
	m.eng.After(m.works[m.conns[c].work].rttLane, kRefused, c)
}

// natDrop: a NAT dropped connection c's SYN. TCP retransmits it after the
// host's SynRTO, doubling, up to SynRetries times, then connect() fails
// with ETIMEDOUT (tcpstate.Profile.SynTimeout); a UDP datagram is lost and
// the attempt counts as failed (ETIMEDOUT) at once.
func (m *model) natDrop(nr *natRun, c int32, drop nat.Drop, why string) {
	now := m.eng.Now()
	if nr.firstDrop < 0 {
		nr.firstDrop = now
	}
	cn := &m.conns[c]
	x := &m.cnat[c]
	wr := m.works[cn.work]
	d := m.doms[cn.dom]
	if m.tr != nil {
		if why == "" {
			why = "dropped: " + drop.String()
		}
		m.traceNAT(c, "nat "+nr.sc.Name, "drop", netip.AddrPortFrom(wr.w.Source, cn.port), wr.w.To[x.dst], netip.AddrPort{}, why)
	}
	if wr.udp {
		m.fail(d, x.opened, alloc.ETIMEDOUT)
		m.natClose(c, nat.CloseUDP)
		m.apply(c, tcpstate.AppAbort)
		return
	}
	x.syn++
	x.retry = true
	p := &m.hosts[d.host].h.Profile
	if int(x.syn) <= p.SynRetries {
		m.eng.At(x.opened+Time(p.SynTimeout(int(x.syn))), kSynRetry, c)
		return
	}
	m.eng.At(x.opened+Time(p.SynTimeout(p.SynRetries+1)), kSynGiveUp, c)
}

// synGiveUp: connect() ran out of SYN retransmissions.
func (m *model) synGiveUp(c int32) {
	m.fail(m.doms[m.conns[c].dom], m.cnat[c].opened, alloc.ETIMEDOUT)
	m.natClose(c, nat.CloseHalfOpen)
	m.apply(c, tcpstate.AppAbort)
}

// countRetrying counts, at the end of the run, the attempts still waiting
// for a SYN retransmission after a NAT drop, and takes them out of the
// steady-state attempts, whose blocking they would otherwise dilute.
func (m *model) countRetrying() {
	for c := range m.cnat {
		if x := &m.cnat[c]; x.retry && m.conns[c].state == tcpstate.SynSent {
			d := m.doms[m.conns[c].dom]
			d.retrying++
			if x.opened >= d.warm {
				d.ssAttempts--
			}
		}
	}
}

// natClose ends connection c's NAT flow, if it holds one, the way how, and
// schedules the end of its hold.
func (m *model) natClose(c int32, how nat.Close) {
	if m.cnat == nil {
		return
	}
	x := &m.cnat[c]
	if x.flow < 0 {
		return
	}
	wr := m.works[m.conns[c].work]
	nr := m.nats[wr.routes[x.dst].out]
	nr.n.Close(x.flow, how)
	hold := Time(nr.n.Hold(how, time.Duration(m.eng.Now()-x.opened)))
	kind := kNatExpire + uint8(nr.idx)
	switch {
	case hold == 0:
		nr.n.Expire(x.flow)
	case hold == nr.holds[how]:
		m.eng.After(nr.lanes[how], kind, int32(x.flow))
	default:
		m.eng.After(nr.streamLane, kind, int32(x.flow))
	}
	x.flow = -1
}

// natEvent handles the NAT event kinds; it reports false for another kind.
func (m *model) natEvent(kind uint8, id int32) bool {
	if kind >= kNatExpire && int(kind-kNatExpire) < len(m.nats) {
		m.nats[kind-kNatExpire].n.Expire(nat.FlowID(id))
		return true
	}
	switch kind {
	case kNatConfirm:
		m.natConfirm(id)
	case kSynRetry:
		m.natSyn(id)
	case kSynGiveUp:
		m.synGiveUp(id)
	default:
		return false
	}
	return true
}

// sampleNATs appends each NAT's row for the current sample.
func (m *model) sampleNATs() {
	for _, nr := range m.nats {
		st := nr.n.Stats()
		var drops uint64
		for _, v := range st.Drops {
			drops += v
		}
		row := NATRow{Flows: st.Flows, Drops: drops - nr.prevDrops, IPPorts: make([]int, len(st.IPs)), InsideFlows: make([]int, len(st.Inside))}
		nr.prevDrops = drops
		for i := range st.IPs {
			row.IPPorts[i] = st.IPs[i].Ports
		}
		for i := range st.Inside {
			row.InsideFlows[i] = st.Inside[i].Flows
		}
		nr.rows = append(nr.rows, row)
	}
}

// natResults builds the NAT parts of the summary and the series.
func (m *model) natResults() ([]NATSummary, []NATSeries) {
	var sums []NATSummary
	var series []NATSeries
	for _, nr := range m.nats {
		st := nr.n.Stats()
		cfg := &nr.sc.Config
		ns := NATSummary{
			Name: nr.sc.Name, Preset: cfg.Preset, Settings: nr.sc.Settings, Notes: cfg.Notes,
			MappingsPeak: st.PeakMappings, FlowsPeak: st.PeakFlows, Drops: dropMap(&st.Drops),
			Preserved: st.Preserved, Reused: st.Reused, Searched: st.Searched, Evicted: st.Evicted,
			ProbesMax: st.ProbesMax,
			PoolPorts: cfg.Ports.Size(), PerDestinationCap: cfg.PerDestinationCap, PortsPerHost: cfg.PortsPerHost,
		}
		if st.Searched > 0 {
			ns.ProbesPerSearch = float64(st.Probes) / float64(st.Searched)
		}
		if nr.firstDrop >= 0 {
			t := float64(nr.firstDrop) / 1e9
			ns.FirstDropS = &t
		}
		ser := NATSeries{Name: nr.sc.Name, Rows: nr.rows}
		for _, ip := range st.IPs {
			ns.ExternalIPs = append(ns.ExternalIPs, NATIPSummary{Address: ip.Addr.String(), PeakFlows: ip.PeakFlows, PeakPorts: ip.PeakPorts})
			ser.IPs = append(ser.IPs, ip.Addr.String())
		}
		for i, in := range st.Inside {
			host := m.hosts[nr.hosts[i]].h.Name
			ns.Inside = append(ns.Inside, NATInsideSummary{Host: host, Address: in.Addr.String(), PeakFlows: in.PeakFlows, PeakAllocated: in.PeakAllocated, Drops: dropMap(&in.Drops)})
			ser.Inside = append(ser.Inside, host)
		}
		for _, ds := range st.Dests {
			proto := "tcp"
			if ds.UDP {
				proto = "udp"
			}
			ns.Destinations = append(ns.Destinations, NATDestSummary{Destination: ds.Remote.String(), Proto: proto, PeakFlows: ds.PeakFlows, Drops: dropMap(&ds.Drops)})
		}
		sums = append(sums, ns)
		series = append(series, ser)
	}
	return sums, series
}

// dropMap turns drop counters into summary.json's reason -> count object,
// leaving out reasons that did not occur.
func dropMap(d *[nat.NumDrops]uint64) map[string]uint64 {
	out := map[string]uint64{}
	for r, n := range d {
		if n > 0 {
			out[nat.Drop(r).String()] = n
		}
	}
	return out
}

// traceNAT records a step of connection c at a NAT or at the server (host
// names it): what became of the packet from → to (via, where it was
// forwarded).
func (m *model) traceNAT(c int32, host, event string, from, to, via netip.AddrPort, why string) {
	// The state column of a NAT step says what became of the packet.
	outcome := map[string]string{"translate": "translated", "inbound": "let in", "drop": "dropped", "accept()": "accepted"}[event]
	t := m.tr
	cn := &m.conns[c]
	wr := m.works[cn.work]
	st := TraceStep{
		TS: float64(m.eng.Now()) / 1e9, Host: host, Workload: wr.w.Name,
		Event: event, Local: from.String(), Remote: to.String(), Why: why, To: outcome,
	}
	if via.IsValid() {
		st.Remote += " → " + via.String()
	}
	t.add(t.ids[c], st)
}
