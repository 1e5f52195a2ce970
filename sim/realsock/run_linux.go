//go:build linux

package realsock

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"

	"github.com/portsim/portsim/alloc"
	"github.com/portsim/portsim/scenarios"
	"github.com/portsim/portsim/sim"
)

// action kinds of the real-time schedule.
const (
	actArrival   = iota // a workload's next connection attempt; id = workload
	actClose            // a connection's close time; id = connection
	actPeerClose        // the peer closes after the client's FIN; id = connection
	actSample           // a sample row; id = sample number
)

// action is one scheduled step, at an offset from the start of the run.
type action struct {
	at   time.Duration
	seq  uint64
	kind int
	id   int
}

// schedule orders actions by time, samples after everything else due at
// the same time, then by insertion order: the simulator counts an event at
// exactly a sample time in the row that ends there.
type schedule []action

func (q schedule) Len() int { return len(q) }
func (q schedule) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	if si, sj := q[i].kind == actSample, q[j].kind == actSample; si != sj {
		return sj
	}
	return q[i].seq < q[j].seq
}
func (q schedule) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *schedule) Push(x any)   { *q = append(*q, x.(action)) }
func (q *schedule) Pop() any {
	old := *q
	a := old[len(old)-1]
	*q = old[:len(old)-1]
	return a
}

// work is a workload during a real run.
type work struct {
	w  *scenarios.Workload
	i  int // index in Scenario.Workloads
	k  int // index in runner.works
	tl *sim.Timeline
	rr int // round-robin position in w.To
	// bindSource: a connect() path whose source is not the address the
	// route would pick (127.0.0.1, ::1) binds it with
	// IP_BIND_ADDRESS_NO_PORT first, which leaves the port choice to
	// connect() (inet_hash_connect) as a plain connect() does.
	bindSource bool
	// portRange is IP_LOCAL_PORT_RANGE for every socket (0: not set).
	portRange alloc.Range
}

// rconn is a live connection.
type rconn struct {
	fd    int
	wk    *work
	key   peerKey
	dom   int
	alive bool
}

// runner executes the workloads of one host in real time.
type runner struct {
	ctx   context.Context
	s     *scenarios.Scenario
	host  int
	res   *sim.Result
	domOf [][]int
	start time.Time
	q     schedule
	seq   uint64
	works []*work
	conns []rconn
	peers *peers
	obs   *observer
	lag   time.Duration
	// counters per domain (indexes res.Summary.Domains) and per interval
	doms                                []domCount
	ivAttempts, ivSuccesses, ivFailures uint64
	ivDomFailures                       uint64
	closers                             []func()
}

type domCount struct {
	attempts, successes uint64
	fails               map[string]uint64
	firstFail           time.Duration // -1: none
}

// runHost runs the workloads of s.Hosts[host] in the calling process's
// network namespace and returns the Result, with only that host's counters
// filled. perSocketRange narrows each socket's range with
// IP_LOCAL_PORT_RANGE (the host-loopback fallback).
func runHost(ctx context.Context, s *scenarios.Scenario, host int, perSocketRange bool) (*Report, error) {
	res, domOf, err := sim.Skeleton(s)
	if err != nil {
		return nil, err
	}
	r := &runner{ctx: ctx, s: s, host: host, res: res, domOf: domOf, peers: newPeers()}
	defer r.teardown()
	rep := &Report{Result: res}
	r.doms = make([]domCount, len(res.Summary.Domains))
	for i := range r.doms {
		r.doms[i] = domCount{fails: map[string]uint64{}, firstFail: -1}
	}
	h := &s.Hosts[host]
	for i := range s.Workloads {
		w := &s.Workloads[i]
		if w.From != host {
			continue
		}
		tl, err := sim.NewTimeline(s, i)
		if err != nil {
			return nil, err
		}
		wk := &work{w: w, i: i, k: len(r.works), tl: tl}
		if w.Socket == scenarios.Connect && w.Source != routeSource(w.Source) {
			wk.bindSource = true
			rep.Notes = append(rep.Notes, fmt.Sprintf("workload %s: source %v is not the address the loopback route picks, so each socket binds it with IP_BIND_ADDRESS_NO_PORT before connect() (the port is still chosen by connect())", w.Name, w.Source))
		}
		switch {
		case w.Socket == scenarios.PortRange:
			wk.portRange = w.PortRange
		case perSocketRange:
			wk.portRange = h.Profile.PortRange
		}
		r.works = append(r.works, wk)
		if t, ok := tl.NextArrival(); ok {
			r.push(t, actArrival, wk.k)
		}
	}
	if err := r.listen(); err != nil {
		return nil, err
	}
	if r.obs, err = newObserver(s, host, res, domOf); err != nil {
		return nil, err
	}
	if perSocketRange {
		// On the machine's own loopback, sockets of an earlier run may
		// still hold these 4-tuples (TIME_WAIT lasts 60 s): they would
		// be counted and would change the kernel's choices.
		snap, err := r.obs.snapshot()
		if err != nil {
			return nil, err
		}
		if n := snap.row.SynSent + snap.row.Established + snap.row.Closing + snap.row.TimeWait; n > 0 {
			return nil, fmt.Errorf("%w: %d sockets toward this scenario's destinations are still open or in TIME_WAIT on the machine's loopback; wait for TIME_WAIT to end (60 s) or run as root in a private namespace", ErrLeftovers, n)
		}
	}
	for k, t := 1, s.Sample; ; k++ {
		r.push(min(t, s.Duration), actSample, k)
		if t >= s.Duration {
			break
		}
		t += s.Sample
	}
	r.start = time.Now()
	if err := r.loop(); err != nil {
		return nil, err
	}
	r.finish()
	rep.MaxLag = r.lag
	return rep, nil
}

// routeSource is the source address the kernel picks for a loopback
// destination of a's family: the local route 127.0.0.0/8 has preferred
// source 127.0.0.1 (fib_select_default / the route's prefsrc).
func routeSource(a netip.Addr) netip.Addr {
	if a.Is4() {
		return netip.AddrFrom4([4]byte{127, 0, 0, 1})
	}
	return netip.IPv6Loopback()
}

func (r *runner) push(at time.Duration, kind, id int) {
	r.seq++
	heap.Push(&r.q, action{at: at, seq: r.seq, kind: kind, id: id})
}

// loop runs the schedule on the wall clock until the last sample.
func (r *runner) loop() error {
	for r.q.Len() > 0 {
		a := heap.Pop(&r.q).(action)
		if a.at > r.s.Duration {
			break
		}
		due := r.start.Add(a.at)
		if d := time.Until(due); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-r.ctx.Done():
				t.Stop()
				return r.ctx.Err()
			case <-t.C:
			}
		} else if err := r.ctx.Err(); err != nil {
			return err
		}
		r.lag = max(r.lag, time.Since(due))
		switch a.kind {
		case actArrival:
			r.arrival(a.at, r.works[a.id])
		case actClose:
			r.close(a.at, a.id)
		case actPeerClose:
			r.peerClose(a.id)
		case actSample:
			if err := r.sample(a.at); err != nil {
				return err
			}
			if a.at >= r.s.Duration {
				return nil
			}
		}
	}
	return nil
}

// arrival is one connection attempt of wk at virtual time at.
func (r *runner) arrival(at time.Duration, wk *work) {
	dst := wk.w.To[wk.rr]
	gi := r.domOf[wk.i][wk.rr]
	if wk.rr++; wk.rr == len(wk.w.To) {
		wk.rr = 0
	}
	if t, ok := wk.tl.NextArrival(); ok {
		r.push(t, actArrival, wk.k)
	}
	d := &r.doms[gi]
	d.attempts++
	r.ivAttempts++
	fd, local, err := open(wk, dst)
	if err == nil || errors.Is(err, unix.ECONNREFUSED) || errors.Is(err, unix.ETIMEDOUT) {
		// The port was allocated, as the simulator records it: a
		// connect() the peer refused still took one; a bind(0) whose
		// connect() found its 4-tuple taken did not get the
		// connection's port.
		r.res.Ports = appendChoice(r.res.Ports, at, gi, local.Port())
	}
	if err != nil {
		if fd >= 0 {
			closeRST(fd)
		}
		d.fails[errnoName(err)]++
		r.ivFailures++
		if gi == r.res.Summary.MostLoaded {
			r.ivDomFailures++
		}
		if d.firstFail < 0 {
			d.firstFail = at
		}
		return
	}
	d.successes++
	r.ivSuccesses++
	c := len(r.conns)
	r.conns = append(r.conns, rconn{fd: fd, wk: wk, key: peerKey{client: local, server: dst}, dom: gi, alive: true})
	hold := wk.tl.Hold()
	if wk.w.Socket.UDP() {
		r.push(at+hold, actClose, c)
		return
	}
	// ESTABLISHED one RTT after the SYN, as in the simulator.
	r.push(at+wk.w.RTT+hold, actClose, c)
}

// appendChoice records a port choice while there is room.
func appendChoice(ps []sim.PortChoice, at time.Duration, dom int, port uint16) []sim.PortChoice {
	if len(ps) >= sim.MaxPortChoices {
		return ps
	}
	return append(ps, sim.PortChoice{TS: at.Seconds(), Domain: dom, Port: port})
}

// close ends connection c the way its workload draws.
func (r *runner) close(at time.Duration, c int) {
	cn := &r.conns[c]
	side := cn.wk.tl.Close()
	if cn.wk.w.Socket.UDP() {
		unix.Close(cn.fd)
		cn.alive = false
		return
	}
	switch side {
	case sim.CloseClient:
		// Our FIN; the peer's application closes when it reads the
		// EOF, after PeerCloseDelay.
		unix.Close(cn.fd)
		if cn.wk.w.PeerCloseDelay > 0 {
			r.push(at+cn.wk.w.RTT+cn.wk.w.PeerCloseDelay, actPeerClose, c)
			cn.alive = false
			return
		}
		r.peers.close(cn.key, true)
	case sim.CloseServer:
		// The peer's FIN first; the client closes once it has read it
		// (CLOSE_WAIT, then LAST_ACK): no client TIME_WAIT.
		r.peers.close(cn.key, false)
		waitHangup(cn.fd)
		unix.Close(cn.fd)
	default:
		closeRST(cn.fd)
		r.peers.close(cn.key, true)
	}
	cn.alive = false
}

// peerClose is the peer's late close of connection c.
func (r *runner) peerClose(c int) { r.peers.close(r.conns[c].key, true) }

// closeRST closes fd with SO_LINGER 0: an RST, no TIME_WAIT.
func closeRST(fd int) {
	unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	unix.Close(fd)
}

// waitHangup waits (at most 100 ms) until fd has read the peer's FIN, so
// that the close after it is a passive close, as the workload says.
func waitHangup(fd int) {
	p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN | unix.POLLRDHUP}}
	for deadline := time.Now().Add(100 * time.Millisecond); time.Now().Before(deadline); {
		n, err := unix.Poll(p, 100)
		if err == unix.EINTR {
			continue
		}
		if n > 0 || err != nil {
			return
		}
	}
}

// sample records the row for time at from the kernel's socket tables.
func (r *runner) sample(at time.Duration) error {
	snap, err := r.obs.snapshot()
	if err != nil {
		return err
	}
	row := snap.row
	row.TS = at.Seconds()
	row.Attempts, row.Successes, row.Failures = r.ivAttempts, r.ivSuccesses, r.ivFailures
	r.ivAttempts, r.ivSuccesses, r.ivFailures = 0, 0, 0
	r.res.Series.Rows = append(r.res.Series.Rows, row)
	if ml := r.res.Summary.MostLoaded; ml >= 0 {
		dr := snap.doms[ml]
		dr.Failures = r.ivDomFailures
		r.ivDomFailures = 0
		r.res.Series.Domain = append(r.res.Series.Domain, dr)
	}
	r.obs.accumulate(snap)
	return nil
}

// finish fills the Result's counters from what the run counted.
func (r *runner) finish() {
	sum := &r.res.Summary
	hostName := r.s.Hosts[r.host].Name
	var host sim.Totals
	host.Failures = map[string]uint64{}
	for i := range sum.Domains {
		ds := &sum.Domains[i]
		if ds.Host != hostName {
			continue
		}
		d := &r.doms[i]
		ds.Attempts, ds.Successes, ds.Failures = d.attempts, d.successes, d.fails
		if d.firstFail >= 0 {
			f := d.firstFail.Seconds()
			ds.FirstFailureS = &f
		}
		ds.PeakTimeWait, ds.PeakPortsInUse = r.obs.peakTW[i], r.obs.peakInUse[i]
		if n := len(r.res.Series.Rows); n > 0 {
			ds.MeanPortsInUse = r.obs.sumInUse[i] / float64(n)
		}
		host.Add(&ds.Totals)
	}
	host.PeakTimeWait, host.PeakPortsInUse = r.obs.hostPeakTW, r.obs.hostPeakPorts
	for i := range sum.Hosts {
		if sum.Hosts[i].Name == hostName {
			sum.Hosts[i].Totals = host
		}
	}
	sum.Totals = sim.Totals{Failures: map[string]uint64{}}
	sum.Totals.Add(&host)
	sum.PeakTimeWait, sum.PeakPortsInUse = host.PeakTimeWait, host.PeakPortsInUse
}

// teardown closes every socket the run opened: connections with an RST
// (no TIME_WAIT is left behind), then the peers and the listeners.
func (r *runner) teardown() {
	for i := range r.conns {
		if cn := &r.conns[i]; cn.alive {
			closeRST(cn.fd)
			cn.alive = false
		}
	}
	r.peers.closeAll()
	for _, f := range r.closers {
		f()
	}
}

// errnoName names a failed call's errno as the simulator's Result does
// (alloc.Errno names where they exist, the kernel's name otherwise).
func errnoName(err error) string {
	var e unix.Errno
	if !errors.As(err, &e) {
		return err.Error()
	}
	switch e {
	case unix.EADDRNOTAVAIL:
		return alloc.EADDRNOTAVAIL.String()
	case unix.EADDRINUSE:
		return alloc.EADDRINUSE.String()
	case unix.EAGAIN:
		return alloc.EAGAIN.String()
	case unix.EACCES:
		return alloc.EACCES.String()
	case unix.ECONNREFUSED:
		return alloc.ECONNREFUSED.String()
	case unix.ETIMEDOUT:
		return alloc.ETIMEDOUT.String()
	}
	return unix.ErrnoName(e)
}
