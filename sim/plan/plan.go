// Package plan answers a capacity planner's question about a scenario:
// what is the largest connection rate a workload sustains at a target
// failure probability, and which standard remedy raises it most?
//
// The sustainable rate is found by simulation: the workload's arrival
// rates are scaled by a factor, each trial runs R replications (seeds
// Seed..Seed+R-1, the same at every trial, so that the failure
// probability grows smoothly with the rate), and the factor is bracketed,
// starting from the Erlang B estimate (sim/analytic.MaxRate) of the most
// loaded destination, then bisected geometrically. The failure
// probability of a trial is the failed attempts over all attempts of
// every replication (requests served on pooled connections count as
// attempts that did not fail), over the whole run as the scenario
// describes it: a short scenario that starts empty sustains more than the
// steady state would.
package plan

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/portsim/portsim/scenarios"
	"github.com/portsim/portsim/sim"
	"github.com/portsim/portsim/sim/analytic"
)

// Options say what to plan.
type Options struct {
	// Scenario is a scenario file or a built-in name; Overrides are --set
	// PATH=VALUE settings applied first.
	Scenario  string
	Overrides []string
	// Workload names the workload whose rate is searched; "" for the
	// first.
	Workload string
	// Target is the failure probability to sustain, in (0, 1).
	Target float64
	// Replications per trial (>= 1).
	Replications int
	// Jobs is how many remedies are searched at once (>= 1).
	Jobs int
	// Precision is the relative width at which bisection stops (> 0).
	Precision float64
	// MaxFactor caps every search at MaxFactor times the sustainable rate
	// of the scenario as given: a remedy that sustains that much is
	// reported as "at least" (> 1).
	MaxFactor float64
	// Pool is the keep-alive pool size tried; 0 chooses twice the mean
	// number of requests in flight per destination at the search's cap
	// (so that the pool itself is not what limits the rate found).
	Pool int
}

// Result is a plan: the scenario's sustainable rate and the remedies,
// best first.
type Result struct {
	Scenario     string  `json:"scenario"`
	Workload     string  `json:"workload"`
	Target       float64 `json:"target_failure"`
	Replications int     `json:"replications"`
	// GivenRate is the workload's rate as the scenario gives it
	// (connections per second; for a ramp, its starting rate).
	GivenRate float64 `json:"given_rate"`
	// AnalyticRate is the Erlang B estimate of the sustainable rate that
	// started the search; nil when the scenario does not meet Erlang B's
	// assumptions (the search then starts from GivenRate).
	AnalyticRate *float64 `json:"analytic_rate"`
	// Baseline is the scenario as given.
	Baseline Finding `json:"baseline"`
	// Remedies are ranked by sustainable rate, highest first (ties: the
	// order they were tried in); each is applied alone, and the last ones
	// combined.
	Remedies []Finding `json:"remedies"`
}

// Finding is the outcome of one remedy (or of the scenario as given).
type Finding struct {
	Remedy string `json:"remedy"`
	Change string `json:"change"`
	// Rate is the sustainable rate in connections per second: the highest
	// rate tried whose failure probability was at most the target.
	Rate float64 `json:"sustainable_rate"`
	// AtLeast: the search stopped at its cap; the true rate is higher.
	AtLeast bool `json:"at_least"`
	// Factor is Rate over the baseline's.
	Factor float64 `json:"factor"`
	// FailureAtGiven is the failure probability at the scenario's own rate.
	FailureAtGiven float64 `json:"failure_at_given_rate"`
	// RecoveryS is, for a scenario whose load has bursts (sim.Burst), the
	// longest time after a burst's end until failures stop, over every
	// burst and replication at the scenario's own rate, in seconds; nil
	// without bursts. Recovered is false when some burst had not recovered
	// by the next burst or the run's end (RecoveryS is then a lower
	// bound).
	RecoveryS *float64 `json:"recovery_s,omitempty"`
	Recovered bool     `json:"recovered"`
	Caveat    string   `json:"caveat,omitempty"`
	// Trials is the number of rates simulated, the given rate included
	// (each Replications runs).
	Trials int `json:"trials"`
}

// Run makes the plan.
//
// Errors: the scenario does not load (a *scenarios.Error); no such
// workload; options out of range; a run fails.
func Run(ctx context.Context, o Options) (*Result, error) {
	if !(o.Target > 0 && o.Target < 1) {
		return nil, fmt.Errorf("plan: --target-failure must be in (0, 1), got %v", o.Target)
	}
	if o.Replications < 1 || o.Jobs < 1 || !(o.Precision > 0) || !(o.MaxFactor > 1) || math.IsInf(o.MaxFactor, 1) {
		return nil, fmt.Errorf("plan: replications and jobs must be >= 1, precision > 0 and the cap > 1")
	}
	base, err := scenarios.Load(o.Scenario, o.Overrides)
	if err != nil {
		return nil, err
	}
	// A workload of a host with count: N stands for its N copies,
	// NAME@HOST-1..N: they are scaled and changed together.
	name := o.Workload
	if name == "" && len(base.Workloads) > 0 {
		name, _, _ = strings.Cut(base.Workloads[0].Name, "@")
	}
	var ws []int
	for i, wl := range base.Workloads {
		if written, _, _ := strings.Cut(wl.Name, "@"); wl.Name == name || written == name {
			ws = append(ws, i)
		}
	}
	if len(ws) == 0 {
		names := []string{}
		for _, wl := range base.Workloads {
			names = append(names, wl.Name)
		}
		return nil, fmt.Errorf("plan: no workload %q in %s (workloads: %v)", o.Workload, base.Name, names)
	}
	w := ws[0]
	given := base.Workloads[w].Arrival.Rate
	if !(given > 0) {
		return nil, fmt.Errorf("plan: workload %s has no arrival rate to scale (a ramp must start above 0)", name)
	}
	p := &planner{o: o, ws: ws, given: given}
	res := &Result{Scenario: base.Name, Workload: name, Target: o.Target, Replications: o.Replications, GivenRate: given}

	// The baseline, from the analytic estimate.
	start := given
	if est, ok := p.analyticRate(ctx, base); ok {
		res.AnalyticRate = &est
		start = est
	}
	bl, err := p.search(ctx, remedy{name: "none (the scenario as given)"}, start, o.MaxFactor*given)
	if err != nil {
		return nil, err
	}
	res.Baseline = bl
	if bl.Rate == 0 {
		return nil, fmt.Errorf("plan: %s fails more than %v even at %.3g connections/s", base.Name, o.Target, given*minFactor)
	}
	res.Baseline.Factor = 1
	limit := bl.Rate * o.MaxFactor
	pool := o.Pool
	if pool == 0 {
		wl := &base.Workloads[w]
		h, _ := sim.MeanHold(wl.Hold)
		pool = poolSize(limit, h+wl.RTT.Seconds(), len(wl.To))
	}
	rs, err := p.applicable(remedies(pool))
	if err != nil {
		return nil, err
	}
	rs = append(rs, combined(rs)...)
	found := make([]Finding, len(rs))
	errs := make([]error, len(rs))
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(o.Jobs, len(rs)) {
		wg.Go(func() {
			for i := range next {
				found[i], errs[i] = p.search(ctx, rs[i], bl.Rate, limit)
			}
		})
	}
	for i := range rs {
		next <- i
	}
	close(next)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("plan: remedy %q: %w", rs[i].name, err)
		}
	}
	for i := range found {
		found[i].Factor = found[i].Rate / bl.Rate
	}
	sort.SliceStable(found, func(i, j int) bool { return found[i].Rate > found[j].Rate })
	res.Remedies = found
	return res, nil
}

// minFactor is where a search gives up looking downward: a scenario that
// fails at a thousandth of its rate sustains nothing worth reporting.
const minFactor = 1e-3

// planner runs trials.
type planner struct {
	o     Options
	ws    []int // the workload searched: its index, or its copies' on counted hosts
	given float64
}

// apply applies remedy r to every copy of the workload searched and
// reports whether it changed any.
func (p *planner) apply(r remedy, s *scenarios.Scenario) bool {
	changed := false
	for _, w := range p.ws {
		changed = r.apply(s, w) || changed
	}
	return changed
}

// trialResult is what a trial found: the failure probability over all
// replications, and the slowest recovery after a burst (nil without
// bursts) and whether every burst recovered.
type trialResult struct {
	fail      float64
	recovery  *float64
	recovered bool
}

// trial runs the scenario with remedy r at rate (connections per second).
func (p *planner) trial(ctx context.Context, r remedy, rate float64) (trialResult, error) {
	var attempts, failures uint64
	out := trialResult{recovered: true}
	for rep := range p.o.Replications {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		s, err := scenarios.Load(p.o.Scenario, p.o.Overrides)
		if err != nil {
			return out, err
		}
		s.Seed += uint64(rep)
		for _, w := range p.ws {
			scale(&s.Workloads[w].Arrival, rate/p.given)
		}
		if r.apply != nil {
			p.apply(r, s)
		}
		res, err := sim.Run(s)
		if err != nil {
			return out, err
		}
		a, f := outcome(&res.Summary)
		attempts += a
		failures += f
		for _, b := range res.Summary.Bursts {
			out.recovered = out.recovered && b.Recovered
			if b.RecoveryS != nil && (out.recovery == nil || *b.RecoveryS > *out.recovery) {
				v := *b.RecoveryS
				out.recovery = &v
			}
		}
	}
	if attempts > 0 {
		out.fail = float64(failures) / float64(attempts)
	}
	return out, nil
}

// outcome returns a run's attempts (connect() attempts plus the requests
// served on pooled connections) and failures.
func outcome(s *sim.Summary) (attempts, failures uint64) {
	for _, n := range s.Failures {
		failures += n
	}
	return s.Attempts + s.Reused, failures
}

// analyticRate is the Erlang B estimate of the workload's sustainable rate:
// the most loaded destination's usable ports and holding time at the given
// rate, the rate at which Erlang B reaches the target there, scaled to the
// workload. ok is false when the run's analytic figures do not apply.
func (p *planner) analyticRate(ctx context.Context, s *scenarios.Scenario) (float64, bool) {
	res, err := sim.Run(s)
	if err != nil || ctx.Err() != nil || res.Summary.MostLoaded < 0 {
		return 0, false
	}
	d := &res.Summary.Domains[res.Summary.MostLoaded]
	a := d.Analytic
	if !a.Applicable || !(a.FluidLimitRate > 0) || !(a.OfferedLoadErlangs > 0) {
		return 0, false
	}
	hold := float64(d.UsablePorts) / a.FluidLimitRate // seconds a port is held
	domainRate := a.OfferedLoadErlangs / hold
	est := analytic.MaxRate(d.UsablePorts, time.Duration(hold*float64(time.Second)), p.o.Target)
	if !(est > 0) {
		return 0, false
	}
	return p.given * est / domainRate, true
}

// search finds remedy r's sustainable rate: bracketing from start by
// doubling (up to limit, the cap: a remedy that sustains it is reported as
// at least the cap) or halving, then geometric bisection down to the
// precision.
func (p *planner) search(ctx context.Context, r remedy, start, limit float64) (Finding, error) {
	f := Finding{Remedy: r.name, Change: r.change, Caveat: r.caveat}
	var err error
	ok := func(rate float64) bool {
		if err != nil {
			return false
		}
		f.Trials++
		var tr trialResult
		tr, err = p.trial(ctx, r, rate)
		return err == nil && tr.fail <= p.o.Target
	}
	f.Trials++
	at, err := p.trial(ctx, r, p.given)
	if err != nil {
		return f, err
	}
	f.FailureAtGiven, f.RecoveryS = at.fail, at.recovery
	f.Recovered = at.recovery != nil && at.recovered
	lo, hi := 0.0, math.Min(start, limit)
	if ok(hi) {
		// Double until a rate fails, trying the cap last: a remedy that
		// sustains it is reported as at least the cap.
		for lo = hi; ; {
			next := math.Min(2*lo, limit)
			if !ok(next) {
				hi = next
				break
			}
			lo = next
			if next == limit {
				f.Rate, f.AtLeast = limit, true
				return f, err
			}
		}
	} else {
		// Halve until a rate holds.
		for {
			next := hi / 2
			if next < p.given*minFactor || err != nil {
				return f, err
			}
			if ok(next) {
				lo = next
				break
			}
			hi = next
		}
	}
	for hi/lo > 1+p.o.Precision && err == nil {
		if mid := math.Sqrt(lo * hi); ok(mid) {
			lo = mid
		} else {
			hi = mid
		}
	}
	f.Rate = lo
	return f, err
}

// applicable keeps the remedies that change something in the scenario.
func (p *planner) applicable(rs []remedy) ([]remedy, error) {
	var out []remedy
	for _, r := range rs {
		s, err := scenarios.Load(p.o.Scenario, p.o.Overrides)
		if err != nil {
			return nil, err
		}
		if p.apply(r, s) {
			out = append(out, r)
		}
	}
	return out, nil
}

// combined is every configuration-only remedy of rs at once (none when
// fewer than two).
func combined(rs []remedy) []remedy {
	var cfg []remedy
	for _, r := range rs {
		if !r.protocol {
			cfg = append(cfg, r)
		}
	}
	if len(cfg) < 2 {
		return nil
	}
	c := remedy{name: "all configuration remedies together", caveat: "the caveats of each"}
	for i, r := range cfg {
		if i > 0 {
			c.change += "; "
		}
		c.change += r.name
	}
	c.apply = func(s *scenarios.Scenario, w int) bool {
		changed := false
		for _, r := range cfg {
			changed = r.apply(s, w) || changed
		}
		return changed
	}
	return []remedy{c}
}
