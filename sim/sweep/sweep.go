// Package sweep runs a scenario over a grid of one or two varied
// parameters with independent replications per point, and summarises each
// point by means with 95 % confidence intervals: the curves a capacity
// planner reads (failure probability against rate, the exhaustion knee).
//
// Replication r of every point runs with seed Seed+r, the scenario's seed
// plus r: the same random numbers at every point (common random numbers),
// which makes the differences between points smoother than independent
// seeds would, and replication 0 is exactly what "portsim run" gives at
// that point. Results land in per-(point, replication) slots, so the
// output does not depend on how many workers ran them or in which order,
// nor on how the grid was split into shards.
package sweep

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/portsim/portsim/scenarios"
	"github.com/portsim/portsim/sim"
)

// Options say what to sweep.
type Options struct {
	// Scenario is a scenario file or a built-in name; Overrides are --set
	// PATH=VALUE settings applied before the grid's values.
	Scenario  string
	Overrides []string
	// Vary are the varied parameters: one or two.
	Vary []Vary
	// Replications per point, >= 1.
	Replications int
	// Jobs is the number of runs at once (<= 0: one per CPU).
	Jobs int
	// Shard restricts the sweep to one shard of the grid; the zero value
	// is the whole grid.
	Shard Shard
	// Progress, if set, is called after each run with the runs done and
	// the total (from one goroutine at a time).
	Progress func(done, total int)
}

// ErrInterrupted is returned (wrapped) with a partial Result when the
// context was cancelled: Result.Complete is false and Points holds the
// points whose replications all finished.
var ErrInterrupted = errors.New("sweep interrupted")

// Run sweeps the grid. Every point's scenario is loaded (and so checked)
// before any run starts, so a bad path or value fails at once, as a
// *scenarios.Error naming it. Cancelling ctx stops the sweep cleanly: runs
// in progress finish, no new one starts, and the points done so far are
// returned with ErrInterrupted.
//
// Errors: no or more than two varied parameters, Replications < 1, a grid
// too large, a scenario that does not load at some point, a run that fails.
func Run(ctx context.Context, o Options) (*Result, error) {
	if len(o.Vary) < 1 || len(o.Vary) > 2 {
		return nil, fmt.Errorf("sweep: vary one or two parameters, not %d", len(o.Vary))
	}
	if o.Replications < 1 {
		return nil, fmt.Errorf("sweep: --replications must be >= 1, got %d", o.Replications)
	}
	all, err := points(o.Vary)
	if err != nil {
		return nil, fmt.Errorf("sweep: %w", err)
	}
	base, err := scenarios.Load(o.Scenario, o.Overrides)
	if err != nil {
		return nil, err
	}
	res := &Result{
		Scenario: base.Name, File: base.File, Overrides: nonNil(o.Overrides),
		Seed: base.Seed, Replications: o.Replications, Vary: o.Vary,
		Shard: o.Shard.String(), Complete: true,
	}
	var pts []Point
	var sets [][]string // per point of pts: the overrides of its runs, seed last
	for _, p := range all {
		if !o.Shard.has(p.Index) {
			continue
		}
		ov := append(append([]string(nil), o.Overrides...), pointSets(o.Vary, p)...)
		if _, err := scenarios.Load(o.Scenario, ov); err != nil {
			return nil, err
		}
		p.Reps = make([]Rep, o.Replications)
		pts = append(pts, p)
		sets = append(sets, ov)
	}
	jobs := o.Jobs
	if jobs <= 0 {
		jobs = runtime.GOMAXPROCS(0)
	}
	total := len(pts) * o.Replications
	done := make([]int, len(pts)) // replications finished per point
	var (
		mu       sync.Mutex
		firstErr error
		finished int
		next     int
		wg       sync.WaitGroup
	)
	// take hands out the next run, or false when the sweep is over, failed
	// or cancelled.
	take := func() (int, bool) {
		mu.Lock()
		defer mu.Unlock()
		if next == total || firstErr != nil || ctx.Err() != nil {
			return 0, false
		}
		next++
		return next - 1, true
	}
	for range min(jobs, total) {
		wg.Go(func() {
			for {
				j, ok := take()
				if !ok {
					return
				}
				pi, r := j/o.Replications, j%o.Replications
				seed := ReplicationSeed(base.Seed, r)
				sum, err := runOne(o.Scenario, append(sets[pi][:len(sets[pi]):len(sets[pi])], "seed="+strconv.FormatUint(seed, 10)))
				mu.Lock()
				switch {
				case err != nil:
					if firstErr == nil {
						firstErr = fmt.Errorf("sweep: point %d (%s), replication %d: %w", pts[pi].Index, pointLabel(o.Vary, pts[pi]), r, err)
					}
				case r == 0:
					// The analytic figures are the same at every
					// replication: the point takes replication 0's.
					pts[pi].ErlangB, pts[pi].OfferedLoad = analyticOf(sum)
					fallthrough
				default:
					pts[pi].Reps[r] = RepOf(seed, sum)
				}
				done[pi]++
				finished++
				if o.Progress != nil {
					o.Progress(finished, total)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	for i := range pts {
		if done[i] < o.Replications {
			res.Complete = false
			continue
		}
		summarise(&pts[i])
		res.Points = append(res.Points, pts[i])
	}
	if !res.Complete {
		return res, fmt.Errorf("%w after %d of %d runs: %d of %d points are complete", ErrInterrupted, finished, total, len(res.Points), len(pts))
	}
	return res, nil
}

// ReplicationSeed is the seed of replication r of a sweep whose scenario
// has seed base.
func ReplicationSeed(base uint64, r int) uint64 { return base + uint64(r) }

// pointSets are the --set values of point p.
func pointSets(vary []Vary, p Point) []string {
	out := make([]string, len(vary))
	for k, v := range vary {
		out[k] = v.Path + "=" + p.Values[k]
	}
	return out
}

// pointLabel names point p for messages.
func pointLabel(vary []Vary, p Point) string { return strings.Join(pointSets(vary, p), ", ") }

// runOne loads the scenario with the given overrides, runs it and returns
// its summary.
func runOne(scenario string, overrides []string) (*sim.Summary, error) {
	s, err := scenarios.Load(scenario, overrides)
	if err != nil {
		return nil, err
	}
	res, err := sim.Run(s)
	if err != nil {
		return nil, err
	}
	return &res.Summary, nil
}

// analyticOf returns the most loaded domain's Erlang B blocking (nil where
// it does not apply) and offered load in erlangs.
func analyticOf(s *sim.Summary) (*float64, float64) {
	if s.MostLoaded < 0 {
		return nil, 0
	}
	a := s.Domains[s.MostLoaded].Analytic
	if !a.Applicable {
		return nil, a.OfferedLoadErlangs
	}
	b := a.ErlangBBlocking
	return &b, a.OfferedLoadErlangs
}

// RepOf extracts a replication's figures from a run's summary.
func RepOf(seed uint64, s *sim.Summary) Rep {
	r := Rep{
		Seed:           seed,
		Attempts:       s.Attempts + s.Reused,
		PeakPortsInUse: s.PeakPortsInUse,
		ProbesPerAlloc: s.ProbesPerAlloc.Mean,
		FirstFailureS:  s.FirstFailureS,
	}
	for _, n := range s.Failures {
		r.Failures += n
	}
	if r.Attempts > 0 {
		r.FailureProb = float64(r.Failures) / float64(r.Attempts)
	}
	if s.MostLoaded >= 0 {
		d := &s.Domains[s.MostLoaded]
		if d.Steady != nil {
			b := d.Steady.Blocking
			r.SteadyBlocking = &b
			r.SteadyAttempts = d.Steady.Attempts
		}
	}
	return r
}

// nonNil returns s, or an empty slice for nil, so that JSON has [] not
// null.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
