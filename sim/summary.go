package sim

import (
	"math"
	"time"

	"github.com/portsim/portsim/alloc"
	"github.com/portsim/portsim/scenarios"
	"github.com/portsim/portsim/sim/analytic"
	"github.com/portsim/portsim/tcpstate"
)

// offeredLoad computes each domain's analytic inputs: the arrival rate that
// reaches it and the offered load in Erlangs, rate x mean holding time. A
// connection holds its port for one RTT in SYN_SENT, the holding time, and
// then one RTT plus TIME_WAIT when the client closes, one RTT (LAST_ACK)
// when the server closes, nothing more after an RST. Erlang B applies when
// arrivals are Poisson over the whole run and every blocked attempt is
// dropped (validation-and-security.md §2.2), and when tcp_max_tw_buckets
// cannot shorten TIME_WAIT.
func (m *model) offeredLoad() {
	expectedTW := make([]float64, len(m.hosts))
	for _, wr := range m.works {
		w := wr.w
		h := m.hosts[w.From].h
		mh, finite := MeanHold(w.Hold)
		rtt := w.RTT.Seconds()
		rate := meanRate(w) / float64(len(w.To))
		// With a keep-alive pool the arrivals are requests, not
		// connections: the ports a domain holds no longer follow from
		// them as an Erlang loss system.
		ok := finite && w.Arrival.Process == scenarios.Poisson && w.Start == 0 && w.Stop == m.sc.Duration && w.Pool == 0
		for _, gi := range wr.doms {
			d := m.doms[gi]
			tw := h.Profile.TimeWait.Seconds()
			if d.tbl.SkipsTimeWait(d.dom) {
				tw = 0
			}
			// The client's close: one RTT in FIN_WAIT_1, FIN_WAIT_2
			// until the peer's late FIN (or tcp_fin_timeout, and then
			// no TIME_WAIT), then TIME_WAIT.
			fw2 := w.PeerCloseDelay.Seconds()
			if fin := h.Profile.TCPFinTimeout; w.PeerCloseDelay > 0 && w.PeerCloseDelay >= fin {
				fw2, tw = fin.Seconds(), 0
			}
			hold := rtt + mh + w.Close.Client*(rtt+fw2+tw) + w.Close.Server*rtt
			if w.Socket.UDP() {
				// A UDP socket holds its port from autobind to close().
				hold, tw = mh, 0
			}
			d.rate += rate
			if finite {
				d.load += rate * hold
			}
			// TIME_WAIT reuse makes the holding time depend on the
			// load, so the pool is no longer an Erlang loss system.
			d.applicable = d.applicable && ok && !(d.reuse && w.Close.Client > 0)
			expectedTW[w.From] += rate * w.Close.Client * tw
		}
	}
	for _, d := range m.doms {
		d.warm = math.MaxInt64
		if d.load > 0 {
			d.warm = Time(math.Ceil(d.load / d.rate * 1e9))
		}
		cap := m.hosts[d.host].h.Profile.TCPMaxTwBuckets
		if e := expectedTW[d.host]; cap != tcpstate.NoTwCap && e > 0 && e+5*math.Sqrt(e) >= float64(cap) {
			d.applicable = false
		}
	}
	// The series follows the domain with the highest offered load (then
	// the highest rate; ties: the first), chosen before the run so that
	// only its rows are kept.
	m.plotted = -1
	for i, d := range m.doms {
		if m.plotted < 0 {
			m.plotted = i
			continue
		}
		if p := m.doms[m.plotted]; d.load > p.load || (d.load == p.load && d.rate > p.rate) {
			m.plotted = i
		}
	}
}

// analyticFor returns the closed-form figures of one domain.
func (m *model) analyticFor(d *domRun) Analytic {
	n := d.usable
	a := Analytic{Applicable: d.applicable, OfferedLoadErlangs: d.load}
	if d.load > 0 {
		a.ErlangBBlocking = analytic.ErlangB(n, d.load)
		a.LittlesLawPorts = d.load * (1 - a.ErlangBBlocking)
		a.FluidLimitRate = float64(n) * d.rate / d.load
	}
	return a
}

// result assembles the Result after the loop.
func (m *model) result() *Result {
	s := m.sc
	sum := Summary{
		Scenario:   s.Name,
		File:       s.File,
		Overrides:  s.Overrides,
		Seed:       s.Seed,
		DurationS:  s.Duration.Seconds(),
		MostLoaded: m.plotted,
		Events:     m.events,
	}
	hostTotals := make([]Totals, len(m.hosts))
	for i := range hostTotals {
		hostTotals[i].Failures = map[string]uint64{}
	}
	sum.Failures = map[string]uint64{}
	for _, d := range m.doms {
		hr := m.hosts[d.host]
		ds := DomainSummary{
			Host:           hr.h.Name,
			Local:          d.d.LocalAddr.String(),
			Destination:    "*",
			UsablePorts:    d.usable,
			Totals:         d.totals(),
			MeanPortsInUse: d.area / float64(m.end),
			Steady:         m.steady(d),
			Analytic:       m.analyticFor(d),
		}
		if d.d.Remote.IsValid() {
			ds.Destination = d.d.Remote.String()
		}
		sum.Domains = append(sum.Domains, ds)
		hostTotals[d.host].Add(&ds.Totals)
		sum.Totals.Add(&ds.Totals)
	}
	all := []uint64{}
	for i, hr := range m.hosts {
		t := hostTotals[i]
		t.PeakTimeWait, t.PeakPortsInUse = hr.peakTW, hr.peakPorts
		sum.Hosts = append(sum.Hosts, HostSummary{
			Name:           hr.h.Name,
			Totals:         t,
			ProbesPerAlloc: quantiles(hr.probes),
			TwOverflows:    hr.tbl.TwOverflows,
			TwRecycled:     hr.tbl.TwRecycled,
			Settings:       settings(hr.h),
		})
		for len(all) < len(hr.probes) {
			all = append(all, 0)
		}
		for p, n := range hr.probes {
			all[p] += n
		}
	}
	sum.PeakTimeWait, sum.PeakPortsInUse = m.peakTW, m.peakPorts
	for _, sr := range m.servers {
		sr.sum.PeakTimeWait = sr.peakTW
		sum.Servers = append(sum.Servers, sr.sum)
	}
	sum.ProbesPerAlloc = quantiles(all)
	res := &Result{Summary: sum, Series: Series{IntervalS: s.Sample.Seconds(), Rows: m.rows}, Ports: m.ports}
	res.Summary.NATs, res.Series.NATs = m.natResults()
	res.Summary.Bursts = Bursts(s, res)
	if sum.MostLoaded >= 0 {
		res.Summary.Analytic = sum.Domains[sum.MostLoaded].Analytic
		res.Series.Domain = m.doms[sum.MostLoaded].rows
	}
	return res
}

// steady returns the domain's figures after its warm-up, or nil when the
// run is shorter than two warm-ups.
func (m *model) steady(d *domRun) *Steady {
	if d.warm > m.end/2 {
		return nil
	}
	st := &Steady{
		FromS:          float64(d.warm) / 1e9,
		Attempts:       d.ssAttempts,
		Failures:       d.ssFailures,
		MeanPortsInUse: d.ssArea / float64(m.end-d.warm),
	}
	if st.Attempts > 0 {
		st.Blocking = float64(st.Failures) / float64(st.Attempts)
	}
	return st
}

// totals returns the domain's counters as Totals.
func (d *domRun) totals() Totals {
	t := Totals{
		Attempts:       d.attempts,
		Successes:      d.successes,
		Retrying:       d.retrying,
		Requests:       d.requests,
		Reused:         d.reused,
		Failures:       map[string]uint64{},
		PeakTimeWait:   d.peakTW,
		PeakPortsInUse: d.peakInUse,
	}
	for e, n := range d.fails {
		if n > 0 {
			t.Failures[alloc.Errno(e).String()] = n
		}
	}
	if d.firstFail >= 0 {
		f := float64(d.firstFail) / 1e9
		t.FirstFailureS = &f
	}
	return t
}

// Add adds the counters of src to t (attempts, successes, failures by
// errno, requests and reused) and keeps the earlier first failure; peaks are left to the caller,
// since peaks of parts do not add. t.Failures must be non-nil.
func (t *Totals) Add(src *Totals) {
	t.Attempts += src.Attempts
	t.Successes += src.Successes
	t.Retrying += src.Retrying
	t.Requests += src.Requests
	t.Reused += src.Reused
	for k, n := range src.Failures {
		t.Failures[k] += n
	}
	if src.FirstFailureS != nil && (t.FirstFailureS == nil || *src.FirstFailureS < *t.FirstFailureS) {
		f := *src.FirstFailureS
		t.FirstFailureS = &f
	}
}

// quantiles returns the mean, nearest-rank p50 and p99, and the maximum of
// a histogram indexed by value.
func quantiles(h []uint64) Quantiles {
	var n uint64
	var sum float64
	for v, c := range h {
		n += c
		sum += float64(v) * float64(c)
	}
	if n == 0 {
		return Quantiles{}
	}
	rank := func(q float64) uint64 { return uint64(math.Ceil(q * float64(n))) }
	r50, r99 := rank(0.50), rank(0.99)
	q := Quantiles{Mean: sum / float64(n)}
	var cum uint64
	for v, c := range h {
		if c == 0 {
			continue
		}
		if cum < r50 && cum+c >= r50 {
			q.P50 = v
		}
		if cum < r99 && cum+c >= r99 {
			q.P99 = v
		}
		cum += c
		q.Max = v
	}
	return q
}

// settings echoes a host's resolved profile.
func settings(h *scenarios.Host) HostSettings {
	p := &h.Profile
	return HostSettings{
		OS:                   h.OS,
		Source:               p.Source,
		PortRange:            p.PortRange.String(),
		ReservedPorts:        p.Reserved.String(),
		UsablePorts:          p.UsablePorts(),
		TimeWaitS:            p.TimeWait.Seconds(),
		TimeWaitHypothetical: h.TimeWaitHypothetical,
		ConnectSharesPort:    p.ConnectSharesPort,
		Allocator:            p.Allocator,
		TCPTwReuse:           p.TCPTwReuse,
		TCPTwReuseDelayMS:    int(p.TCPTwReuseDelay / time.Millisecond),
		TCPTimestamps:        p.TCPTimestamps,
		TCPMaxTwBuckets:      p.TCPMaxTwBuckets,
		Sysctls:              h.Sysctls,
	}
}
