package sim

import (
	"fmt"
	"net/netip"

	"github.com/portsim/portsim/alloc"
	"github.com/portsim/portsim/scenarios"
	"github.com/portsim/portsim/tcpstate"
)

// TraceStep is one row of a teaching trace: one socket call, segment or
// timer and what it did, with the rule that decided it.
type TraceStep struct {
	// TS is the virtual time in seconds.
	TS float64 `json:"t_s"`
	// Socket numbers the connections of the run in the order they were
	// attempted, from 1; 0 marks a server's own step (bind, listen, close).
	Socket   int64  `json:"socket"`
	Host     string `json:"host"`
	Workload string `json:"workload"`
	// Event is the call, segment or timer: "connect()", "recv FIN", ...
	Event string `json:"event"`
	// Local and Remote are the addresses; Local has the port once one is
	// chosen.
	Local  string `json:"local"`
	Remote string `json:"remote"`
	// From and To are the TCP states before and after ("" for a failed
	// connect()).
	From string `json:"from"`
	To   string `json:"to"`
	// Errno is set when the call failed.
	Errno string `json:"errno,omitempty"`
	// Why says how the port was chosen (the allocator's own account) or
	// which rule produced the outcome, naming its source.
	Why string `json:"why"`
}

// TraceOptions select what Trace records.
type TraceOptions struct {
	// Limit is the most connection steps recorded (0: no limit); server
	// lifecycle steps are always recorded.
	Limit int
	// Socket records only that connection's steps (0: all).
	Socket int64
}

// Trace runs s like Run and also returns the first steps of the run, one
// per call, segment or timer, for teaching: which port each connect() got
// and why, every state transition, each errno and the rule behind it.
func Trace(s *scenarios.Scenario, opt TraceOptions) (*Result, []TraceStep, error) {
	m, err := newModel(s)
	if err != nil {
		return nil, nil, err
	}
	m.tr = &tracer{opt: opt, ids: map[int32]int64{}}
	m.loop()
	return m.result(), m.tr.steps, nil
}

// tracer collects TraceSteps; the model calls it only when tracing, so a
// plain Run pays one nil check per hook.
type tracer struct {
	opt   TraceOptions
	n     int // connection steps recorded (server steps do not count)
	next  int64
	ids   map[int32]int64 // connection slot -> socket number
	steps []TraceStep
}

// full reports whether no more steps are wanted.
func (t *tracer) full() bool { return t.opt.Limit > 0 && t.n >= t.opt.Limit }

// add records a step of socket id unless it is filtered out.
func (t *tracer) add(id int64, st TraceStep) {
	if t.full() || (t.opt.Socket != 0 && t.opt.Socket != id) {
		return
	}
	st.Socket = id
	t.n++
	t.steps = append(t.steps, st)
}

// traceConnect records a connect() attempt of workload wr toward dst: the
// port and the allocator's explanation, what the server's demultiplexing
// did (serverRule), or the errno and its rule. c is the new connection's
// slot (-1 when no port was allocated).
func (m *model) traceConnect(wr *workRun, d *domRun, dst netip.AddrPort, r alloc.Result, errno alloc.Errno, c int32, took int32, serverRule string) {
	t := m.tr
	t.next++
	id := t.next
	if c >= 0 {
		t.ids[c] = id
	}
	st := TraceStep{
		TS: float64(m.eng.Now()) / 1e9, Host: m.hosts[d.host].h.Name, Workload: wr.w.Name,
		Event: callName(wr.w), Remote: dst.String(), Local: wr.w.Source.String(),
		Why: d.tbl.Explain(),
	}
	if r.Err != alloc.OK {
		st.Errno = r.Err.String()
		if wr.req.Bind && r.Err == alloc.EADDRNOTAVAIL {
			// bind(0)'s ip_autobind_reuse relax pass gave a port whose
			// 4-tuple is taken; Explain names the rule.
			st.Local = netip.AddrPortFrom(wr.w.Source, r.Port).String()
		} else {
			st.Why += "; " + failRule(wr.w)
		}
		t.add(id, st)
		return
	}
	st.Local = netip.AddrPortFrom(wr.w.Source, r.Port).String()
	st.From, st.To = tcpstate.Closed.String(), tcpstate.SynSent.String()
	if serverRule != "" {
		st.Why += "; server: " + serverRule
	}
	if errno != alloc.OK {
		st.Errno = errno.String()
	}
	if wr.udp {
		st.To = "open"
	}
	if took >= 0 {
		p := &m.hosts[d.host].h.Profile
		if wr.req.Bind {
			// Explain named the rule: tcp_twsk_unique with twp == NULL.
			st.Why += fmt.Sprintf("; took over socket %d's TIME_WAIT 4-tuple", t.ids[took])
		} else {
			st.Why += fmt.Sprintf("; took over socket %d's TIME_WAIT 4-tuple (tcp_twsk_unique: tcp_tw_reuse=%d, timestamps on, at least %v since it entered TIME_WAIT)",
				t.ids[took], p.TCPTwReuse, p.TCPTwReuseDelay)
		}
		delete(t.ids, took)
	}
	t.add(id, st)
}

// transition records one input applied to connection c.
func (m *model) traceTransition(c int32, in tcpstate.Input, from, to tcpstate.State) {
	t := m.tr
	cn := &m.conns[c]
	d := m.doms[cn.dom]
	wr := m.works[cn.work]
	id := t.ids[c]
	if to == tcpstate.Closed {
		defer delete(t.ids, c)
	}
	if wr.udp && in == tcpstate.RecvSynAck {
		return // a UDP socket is open from autobind; nothing happens here
	}
	st := TraceStep{
		TS: float64(m.eng.Now()) / 1e9, Host: m.hosts[d.host].h.Name, Workload: wr.w.Name,
		Event: in.String(), Local: netip.AddrPortFrom(wr.w.Source, cn.port).String(),
		From: from.String(), To: to.String(), Why: transitionRule(&m.hosts[d.host].h.Profile, wr, in, from, to),
	}
	if wr.udp {
		st.Event, st.From, st.To = "close()", "open", tcpstate.Closed.String()
	}
	if !d.d.Remote.IsValid() {
		st.Remote = "(port-exclusive host)"
	} else {
		st.Remote = d.d.Remote.String()
	}
	t.add(id, st)
}

// callName is the socket call a workload's path makes.
func callName(w *scenarios.Workload) string {
	switch w.Socket {
	case scenarios.BindConnect:
		return "bind(addr, 0) + connect()"
	case scenarios.BindNoPort:
		return "IP_BIND_ADDRESS_NO_PORT bind + connect()"
	case scenarios.PortRange:
		return "IP_LOCAL_PORT_RANGE " + w.PortRange.String() + " connect()"
	case scenarios.UDPConnect:
		return "UDP connect()"
	case scenarios.UDPSendto:
		return "UDP sendto()"
	}
	return "connect()"
}

// failRule names why a path fails when no port is usable.
func failRule(w *scenarios.Workload) string {
	switch w.Socket {
	case scenarios.BindConnect:
		return "bind(0) found no port that no socket on the address holds (inet_csk_find_open_port, os-semantics §3.2)"
	case scenarios.UDPConnect, scenarios.UDPSendto:
		return "UDP autobind found no free port (udp_lib_get_port; inet_autobind returns EAGAIN on Linux, §3.6)"
	}
	return "no port gives a unique 4-tuple toward this destination (tcp_v4_connect → __inet_hash_connect, §2.3)"
}

// transitionRule explains one state transition with its source.
func transitionRule(p *tcpstate.Profile, wr *workRun, in tcpstate.Input, from, to tcpstate.State) string {
	switch {
	case in == tcpstate.RecvSynAck:
		return fmt.Sprintf("handshake complete one RTT (%v) after SYN (RFC 9293 §3.5)", wr.w.RTT)
	case in == tcpstate.AppClose && from == tcpstate.Established:
		return "the client closes first: FIN sent, this side will hold TIME_WAIT (active close, RFC 9293 §3.6)"
	case in == tcpstate.RecvFin && from == tcpstate.Established:
		return "the server closed first: its FIN arrives; TIME_WAIT will be the server's (passive close)"
	case in == tcpstate.AppClose && from == tcpstate.CloseWait:
		return "the client closes too: FIN sent, waiting for its ACK"
	case in == tcpstate.RecvAck && from == tcpstate.FinWait1:
		return "our FIN acknowledged"
	case in == tcpstate.RecvFin && to == tcpstate.TimeWait:
		return fmt.Sprintf("peer's FIN: the active closer keeps the 4-tuple in TIME_WAIT for %v (%s)", p.TimeWait, timeWaitSource(p))
	case in == tcpstate.RecvFin && to == tcpstate.Closed:
		if p.NoLocalTimeWait {
			return "peer's FIN: no TIME_WAIT toward a local peer (FreeBSD nolocaltimewait); port free"
		}
		return fmt.Sprintf("peer's FIN: tcp_max_tw_buckets (%d) full, TIME_WAIT skipped (inet_twsk_alloc fails, TCPTIMEWAITOVERFLOW); port free", p.TCPMaxTwBuckets)
	case in == tcpstate.RecvAck && from == tcpstate.LastAck:
		return "our FIN acknowledged: closed, port free at once"
	case in == tcpstate.AppAbort && wr.udp:
		return "close() on a UDP socket frees its port at once"
	case in == tcpstate.AppAbort && from == tcpstate.FinWait2:
		return fmt.Sprintf("no FIN from the peer within %v: the orphaned FIN_WAIT_2 is dropped without TIME_WAIT (tcp_fin_timeout, os-semantics §4.4); port free", p.TCPFinTimeout)
	case in == tcpstate.AppAbort && from == tcpstate.SynSent:
		return "the server's RST (or the dropped SYN) ends the attempt; port free"
	case in == tcpstate.AppAbort:
		return "close() with SO_LINGER {on, 0}: RST, no TIME_WAIT (tcp_disconnect); port free"
	case in == tcpstate.TimeWaitTimeout:
		return "TIME_WAIT timer expired: 4-tuple and port free"
	}
	return "RFC 9293 §3.3.2"
}

// timeWaitSource names where a profile's TIME_WAIT length comes from.
func timeWaitSource(p *tcpstate.Profile) string {
	if p.TimeWaitFixed {
		return "TCP_TIMEWAIT_LEN, fixed"
	}
	return p.Name + " 2*MSL"
}
