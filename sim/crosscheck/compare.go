// Package crosscheck compares a scenario's run on the real kernel
// (sim/realsock) with its run in the simulator, metric by metric, and holds
// the built-in cross-check suite.
//
// Facts that do not depend on timing must agree exactly: attempts, the
// successes before the first failure, which parity the first pass uses,
// how many destinations share a port, and the set of ports once a range is
// used up. Counts that depend on when something happens (successes and
// failures per interval, sockets by state at a sample) may differ by the
// attempts that fall inside the run's timing uncertainty, derived from
// the measured real-time lag (see Tolerance). The order within a parity
// class is keyed by a secret the kernel draws at boot (RFC 6056 §3.3.4,
// secure_ipv4_port_ephemeral), so it is compared as a distribution: the
// Kolmogorov–Smirnov distance between the gaps of successive ports and
// those of the model, judged against the simulator's own spread over other
// keys (a Monte Carlo test, see Ensemble). Counts that depend on the key as
// well (how many distinct ports sockets hold when destinations share them,
// whether a connect() takes a free port or a reusable TIME_WAIT one) must
// lie within the range of the simulator's runs over those keys.
package crosscheck

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"gonum.org/v1/gonum/stat"

	"github.com/portsim/portsim/alloc"
	"github.com/portsim/portsim/scenarios"
	"github.com/portsim/portsim/sim"
)

// Metric is one line of a comparison.
type Metric struct {
	Name      string `json:"metric"`
	Kernel    string `json:"kernel"`
	Model     string `json:"simulator"`
	Tolerance string `json:"tolerance"`
	Agree     bool   `json:"agree"`
}

// Verdict is "agree" or "DISAGREE".
func (m Metric) Verdict() string {
	if m.Agree {
		return "agree"
	}
	return "DISAGREE"
}

// ClockGranularity is the resolution of the kernel clock behind
// tcp_tw_reuse_delay (tcp_clock_ms in tcp_twsk_unique, Linux 6.13+). The
// simulator rounds to whole milliseconds as the kernel does, but the
// kernel's millisecond ticks are not aligned with the run's start, so a
// TIME_WAIT becomes reusable up to 1 ms earlier or later than modelled.
const ClockGranularity = time.Millisecond

// Tolerance is how many attempts a timing-dependent count may differ by:
// those that arrive within the timing uncertainty (the run's largest
// real-time lag plus ClockGranularity) at the scenario's total arrival
// rate, rounded up, plus one for an attempt on the boundary.
func Tolerance(s *scenarios.Scenario, lag time.Duration) int {
	rate := 0.0
	for _, w := range s.Workloads {
		rate += max(w.Arrival.Rate, w.Arrival.RateTo)
	}
	return int(math.Ceil(rate*(lag+ClockGranularity).Seconds())) + 1
}

// Ensemble is how many simulator runs with other seeds (so other allocator
// keys) Compare makes for its keyed-random facts.
const Ensemble = 1999

// Alpha is the size of the Monte Carlo test on the port order: with
// Ensemble runs the p-value is (1 + #{T_i >= T_kernel}) / (Ensemble + 1),
// and the kernel disagrees when p <= Alpha, that is when it is further from
// the model than every one of the 1,999 runs. The suite makes about twenty
// such tests, so a faithful model fails one of them in fewer than one
// suite run in a hundred (Bonferroni: 20 x 0.0005 = 0.01).
const Alpha = 0.0005

// Compare returns the metrics of kernel (a realsock run of s) against model
// (sim.Run of s, the scenario realsock.Run returned), with lag the real
// run's largest scheduling lag. It runs the simulator Ensemble more times
// with seeds s.Seed+1, s.Seed+2, ... for the keyed-random facts; it fails
// only if those runs do.
func Compare(s *scenarios.Scenario, kernel, model *sim.Result, lag time.Duration) ([]Metric, error) {
	ens, err := ensemble(s)
	if err != nil {
		return nil, err
	}
	tol := Tolerance(s, lag)
	runs := append([]*sim.Result{model}, ens...)
	total := func(f func(*sim.Summary) int) func(*sim.Result) int {
		return func(r *sim.Result) int { return f(&r.Summary) }
	}
	k, m := &kernel.Summary, &model.Summary
	var out []Metric
	out = append(out, exact("attempts", k.Attempts, m.Attempts))
	out = append(out, spread("successes", kernel, runs, tol, total(func(s *sim.Summary) int { return int(s.Successes) })))
	for _, e := range errnos(k.Failures, m.Failures) {
		out = append(out, spread("failures "+e, kernel, runs, tol, total(func(s *sim.Summary) int { return int(s.Failures[e]) })))
	}
	if k.FirstFailureS != nil || m.FirstFailureS != nil {
		// Exact where no key is involved; where the allocator's random
		// draws decide when the first collision comes (bind(0)'s relax
		// pass), within the ensemble's range.
		out = append(out, spread("successes before the first failure", kernel, runs, 0, successesBefore))
		out = append(out, firstFailure(kernel, runs, lag+ClockGranularity+gap(s)))
	}
	for _, c := range []struct {
		name string
		col  func(sim.Row) int
	}{
		{"failures per interval", func(r sim.Row) int { return int(r.Failures) }},
		{"TIME_WAIT at each sample", func(r sim.Row) int { return r.TimeWait }},
		{"ESTABLISHED at each sample", func(r sim.Row) int { return r.Established }},
		{"sockets holding a port at each sample", held},
		{"ports in use at each sample", func(r sim.Row) int { return r.PortsInUse }},
	} {
		out = append(out, series(c.name, kernel, runs, tol, c.col))
	}
	out = append(out, portFacts(s, kernel, model, ens, tol)...)
	return out, nil
}

// held is the number of client sockets in a state that holds a port.
func held(r sim.Row) int { return r.SynSent + r.Established + r.Closing + r.TimeWait }

// ensemble runs the simulator Ensemble times with seeds s.Seed+1, ...,
// on every CPU; the runs are independent, so the result does not depend on
// the scheduling.
func ensemble(s *scenarios.Scenario) ([]*sim.Result, error) {
	ens := make([]*sim.Result, Ensemble)
	errs := make([]error, Ensemble)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < Ensemble; i = int(next.Add(1) - 1) {
				c := *s
				c.Seed = s.Seed + uint64(i) + 1
				ens[i], errs[i] = sim.Run(&c)
			}
		})
	}
	wg.Wait()
	return ens, errors.Join(errs...)
}

// gap is the longest time between two attempts of the scenario's
// constant-rate workloads (one second when none is constant).
func gap(s *scenarios.Scenario) time.Duration {
	g := time.Duration(0)
	for _, w := range s.Workloads {
		if w.Arrival.Rate > 0 {
			g = max(g, time.Duration(float64(time.Second)/w.Arrival.Rate))
		}
	}
	return g
}

func exact[T comparable](name string, k, m T) Metric {
	return Metric{Name: name, Kernel: fmt.Sprint(k), Model: fmt.Sprint(m), Tolerance: "exact", Agree: k == m}
}

// spread compares a count of kernel with the same count over runs (the
// simulator's run, then the ensemble's): it agrees when the kernel's value
// lies within the runs' range widened by tol. Where the count does not
// depend on the allocator's key every run gives the same value, and this
// is an exact comparison up to the timing tolerance.
func spread(name string, kernel *sim.Result, runs []*sim.Result, tol int, f func(*sim.Result) int) Metric {
	lo, hi := bounds(runs, f)
	kv := f(kernel)
	return Metric{Name: name, Kernel: strconv.Itoa(kv), Model: span(lo, hi),
		Tolerance: tolText(tol, lo, hi, len(runs)), Agree: kv >= lo-tol && kv <= hi+tol}
}

// bounds is the range of f over runs.
func bounds(runs []*sim.Result, f func(*sim.Result) int) (lo, hi int) {
	lo, hi = math.MaxInt, math.MinInt
	for _, r := range runs {
		v := f(r)
		lo, hi = min(lo, v), max(hi, v)
	}
	return lo, hi
}

// span prints a range, or its one value.
func span(lo, hi int) string {
	if lo == hi {
		return strconv.Itoa(lo)
	}
	return strconv.Itoa(lo) + "–" + strconv.Itoa(hi)
}

// tolText says what a spread comparison allowed.
func tolText(tol, lo, hi, runs int) string {
	if lo == hi && tol == 0 {
		return "exact"
	}
	if lo == hi {
		return "±" + strconv.Itoa(tol)
	}
	return "±" + strconv.Itoa(tol) + " around the range over " + strconv.Itoa(runs) + " keys"
}

// errnos lists the errno names either side failed with, sorted.
func errnos(a, b map[string]uint64) []string {
	var es []string
	for _, m := range []map[string]uint64{a, b} {
		for e, n := range m {
			if n > 0 && !slices.Contains(es, e) {
				es = append(es, e)
			}
		}
	}
	sort.Strings(es)
	return es
}

// successesBefore counts the port choices made before the run's first
// failure (all of them when nothing failed).
func successesBefore(r *sim.Result) int {
	ff := r.Summary.FirstFailureS
	n := 0
	for _, p := range r.Ports {
		if ff != nil && p.TS >= *ff {
			break
		}
		n++
	}
	return n
}

func firstFailure(kernel *sim.Result, runs []*sim.Result, tol time.Duration) Metric {
	// A run without failures counts as failing at +Inf, so "none" agrees
	// only with runs that had none.
	at := func(r *sim.Result) float64 {
		if f := r.Summary.FirstFailureS; f != nil {
			return *f
		}
		return math.Inf(1)
	}
	f := func(x float64) string {
		if math.IsInf(x, 1) {
			return "none"
		}
		return strconv.FormatFloat(x, 'f', 3, 64) + " s"
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, r := range runs {
		lo, hi = min(lo, at(r)), max(hi, at(r))
	}
	k, t := at(kernel), tol.Seconds()
	model := f(lo)
	if hi != lo {
		model += "–" + f(hi)
	}
	// With +Inf for "none" the range test covers every case: a kernel
	// without failures agrees only if some run had none.
	ok := k >= lo-t && k <= hi+t
	return Metric{Name: "first failure", Kernel: f(k), Model: model,
		Tolerance: "±" + strconv.FormatFloat(t*1000, 'f', 1, 64) + " ms", Agree: ok}
}

// series compares one column row by row, each row as spread does, and
// reports the row furthest outside; it disagrees when the row counts
// differ.
func series(name string, kernel *sim.Result, runs []*sim.Result, tol int, col func(sim.Row) int) Metric {
	kr := kernel.Series.Rows
	worst := math.MinInt
	var m Metric
	for i, row := range kr {
		lo, hi := bounds(runs, func(r *sim.Result) int {
			if i < len(r.Series.Rows) {
				return col(r.Series.Rows[i])
			}
			return col(sim.Row{})
		})
		kv := col(row)
		if out := max(lo-kv, kv-hi); out > worst {
			worst = out
			m = Metric{
				Name:      name + " (worst row: " + strconv.FormatFloat(row.TS, 'f', 2, 64) + " s)",
				Kernel:    strconv.Itoa(kv),
				Model:     span(lo, hi),
				Tolerance: tolText(tol, lo, hi, len(runs)) + " per row",
			}
		}
	}
	m.Agree = len(kr) == len(runs[0].Series.Rows) && worst <= tol
	return m
}

// portFacts compares what the port choices show: the parity of the first
// pass, sharing across destinations, the set of ports once the range is
// used up, and the distribution of gaps between successive choices, for
// the most loaded domain.
func portFacts(s *scenarios.Scenario, kernel, model *sim.Result, ens []*sim.Result, tol int) []Metric {
	gi := model.Summary.MostLoaded
	if gi < 0 || gi >= len(model.Summary.Domains) {
		return nil
	}
	ds := model.Summary.Domains[gi]
	host := hostByName(s, ds.Host)
	if host == nil {
		return nil
	}
	r := host.Profile.PortRange
	for _, w := range s.Workloads {
		if w.Socket == scenarios.PortRange && s.Hosts[w.From].Name == ds.Host {
			r = w.PortRange
		}
	}
	kp, mp := choices(kernel, gi), choices(model, gi)
	var out []Metric
	half := min(len(kp), len(mp), ds.UsablePorts/2)
	if half > 0 {
		out = append(out, exact(fmt.Sprintf("parity of the first %d choices (low = %d)", half, r.Low),
			parityClass(kp[:half], r.Low), parityClass(mp[:half], r.Low)))
	}
	out = append(out, exact("most destinations sharing one port", sharing(kernel), sharing(model)))
	kd, md := distinct(kp), distinct(mp)
	out = append(out, spread("distinct ports chosen", kernel, append([]*sim.Result{model}, ens...), tol,
		func(r *sim.Result) int { return len(distinct(choices(r, gi))) }))
	// Once both runs have used every usable port, the set is a fact (a
	// reserved port taken, or one never offered, shows here). Before
	// that, which ports were used depends on the key and, where
	// TIME_WAIT is reused, on timing.
	if len(kd) == ds.UsablePorts && len(md) == ds.UsablePorts {
		out = append(out, Metric{Name: "set of ports chosen (range used up)", Kernel: fmt.Sprint(len(kd), " ports"),
			Model: fmt.Sprint(len(md), " ports"), Tolerance: "same set", Agree: slices.Equal(kd, md)})
	}
	// The order is a fact of the allocator only while every candidate is
	// a free port: once TIME_WAIT sockets turn reusable, which of them
	// is reusable at a given connect() depends on the real run's timing,
	// which the ensemble does not vary.
	kp = kp[:countBefore(kernel, gi, orderCutoff(host, kernel))]
	if n := min(len(kp), len(mp)); n >= 20 {
		out = append(out, orderTest(kp[:n], gi, ens, r))
	}
	return out
}

// orderCutoff is the time from which the port order depends on timing:
// the earliest moment a TIME_WAIT could be taken over (the first choice
// plus tcp_tw_reuse_delay, when tcp_tw_reuse and timestamps are on; the
// suite's destinations are all on loopback), or the first failure; +Inf
// when neither happens.
func orderCutoff(h *scenarios.Host, r *sim.Result) float64 {
	cut := math.Inf(1)
	if ff := r.Summary.FirstFailureS; ff != nil {
		cut = *ff
	}
	if p := &h.Profile; p.TCPTwReuse > 0 && p.TCPTimestamps && len(r.Ports) > 0 {
		cut = min(cut, r.Ports[0].TS+p.TCPTwReuseDelay.Seconds())
	}
	return cut
}

// countBefore counts the choices of domain gi made before time t.
func countBefore(r *sim.Result, gi int, t float64) int {
	n := 0
	for _, p := range r.Ports {
		if p.TS >= t {
			break
		}
		if p.Domain == gi {
			n++
		}
	}
	return n
}

// choices returns the ports chosen in domain gi, in order.
func choices(r *sim.Result, gi int) []uint16 {
	var ps []uint16
	for _, p := range r.Ports {
		if p.Domain == gi {
			ps = append(ps, p.Port)
		}
	}
	return ps
}

func hostByName(s *scenarios.Scenario, name string) *scenarios.Host {
	for i := range s.Hosts {
		if s.Hosts[i].Name == name {
			return &s.Hosts[i]
		}
	}
	return nil
}

// parityClass says whether every port of ps has low's parity ("all of
// low's parity": Linux connect(), __inet_hash_connect), none has ("all of
// the other parity": bind(0), inet_csk_find_open_port), or both occur
// ("mixed": no parity split, as with IP_LOCAL_PORT_RANGE since 6.8 or UDP
// autobind). Which ports of a mixed pass have which parity is keyed random,
// so only the class is a fact.
func parityClass(ps []uint16, low uint16) string {
	n := 0
	for _, p := range ps {
		if p%2 == low%2 {
			n++
		}
	}
	switch n {
	case len(ps):
		return "all of low's parity"
	case 0:
		return "all of the other parity"
	}
	return "mixed"
}

// sharing is the largest number of distinct domains (destinations of one
// host and local address) that were given the same port.
func sharing(r *sim.Result) int {
	type key struct {
		host, local string
		port        uint16
	}
	doms := map[key]map[int]bool{}
	for _, p := range r.Ports {
		d := r.Summary.Domains[p.Domain]
		k := key{d.Host, d.Local, p.Port}
		if doms[k] == nil {
			doms[k] = map[int]bool{}
		}
		doms[k][p.Domain] = true
	}
	most := 0
	for _, d := range doms {
		most = max(most, len(d))
	}
	return most
}

// distinct returns the ports of ps without repeats, sorted.
func distinct(ps []uint16) []uint16 {
	out := slices.Clone(ps)
	slices.Sort(out)
	return slices.Compact(out)
}

// gapHist counts the gaps between successive choices, taken modulo the
// range size so that a wrap is a small step: sequential, hashed and random
// orders have very different gap distributions. Index: the gap.
func gapHist(ps []uint16, r alloc.Range) []float64 {
	h := make([]float64, r.Size())
	for i := 1; i < len(ps); i++ {
		h[(int(ps[i])-int(ps[i-1])+r.Size())%r.Size()]++
	}
	return h
}

// orderTest compares the order of the kernel's choices k in domain gi with
// the simulator's over many keys. The statistic is the Kolmogorov–Smirnov
// distance between a run's gaps and the pooled gaps of the ensemble; the
// p-value is the share of ensemble runs at least as far from the pool as
// the kernel (counting the kernel, (1 + #{T_i >= T_k}) / (R + 1)). One key
// gives a strongly correlated sequence (the same cycle of offsets repeats),
// so a two-sample test of one kernel run against one simulator run would
// reject a faithful model; comparing against the spread over keys does not.
// Each ensemble run is in the pool it is measured against, which makes the
// test stricter toward the kernel, not looser.
func orderTest(k []uint16, gi int, ens []*sim.Result, r alloc.Range) Metric {
	support := make([]float64, r.Size())
	for i := range support {
		support[i] = float64(i)
	}
	pool := make([]float64, r.Size())
	runs := make([][]float64, 0, len(ens))
	for _, e := range ens {
		c := choices(e, gi)
		if len(c) > len(k) {
			c = c[:len(k)]
		}
		if len(c) < 2 {
			continue
		}
		h := gapHist(c, r)
		runs = append(runs, h)
		for i, n := range h {
			pool[i] += n
		}
	}
	// Gaps are integers: the distributions are weighted point masses on
	// 0..size-1, which gonum's KolmogorovSmirnov takes as weights.
	ks := func(h []float64) float64 { return stat.KolmogorovSmirnov(support, h, support, pool) }
	tk := ks(gapHist(k, r))
	as := 0
	for _, h := range runs {
		if ks(h) >= tk {
			as++
		}
	}
	p := float64(1+as) / float64(len(runs)+1)
	return Metric{
		Name:      fmt.Sprintf("order of the first %d ports (gaps between successive ports, KS)", len(k)),
		Kernel:    "D = " + strconv.FormatFloat(tk, 'f', 3, 64),
		Model:     fmt.Sprintf("p = %.4f over %d keys", p, len(runs)),
		Tolerance: "p > " + strconv.FormatFloat(Alpha, 'g', -1, 64),
		Agree:     p > Alpha,
	}
}
