package sim

import (
	"cmp"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/portsim/portsim/scenarios"
)

// Burst is how a run recovered from one burst end: the moment a workload's
// offered load drops, after which a capacity planner asks how long until
// connections stop failing. Times are seconds of virtual time; figures
// taken from the Series have its sample interval as resolution.
//
// A burst end is where a workload's arrivals stop while the run goes on:
//
//   - the end of each on-period of an onoff process (a last on-period cut
//     short by stop ends at stop). An onoff process whose off-period is
//     shorter than the sample interval is treated as one continuous burst
//     from start to stop, since the series cannot tell its on-periods apart;
//   - the stop of a constant, poisson or ramp workload that stops before
//     the end of the run. A ramp's rate changes only gradually between
//     start and stop, so whether it goes up or down, its burst ends at stop,
//     where its arrivals cease; a ramp that lasts to the end of the run has
//     no burst end.
//
// The burst began at the start of its on-period (onoff) or at the
// workload's start (the others). A burst starts wherever a workload's
// arrivals begin: at each on-period's start and at every workload's start.
type Burst struct {
	// Workload is the workload whose burst ended, as written in the
	// scenario: a workload from a host with count: N is reported once for
	// its N copies, which start and stop together.
	Workload string `json:"workload"`
	// EndS is the burst end E, in seconds since the start of the run.
	EndS float64 `json:"end_s"`
	// RecoveryS is how long after E the run's failures stop, in seconds:
	// the end of the last sample interval, among those ending after E and
	// no later than the next burst start (or the run's end), in which any
	// connection attempt of the run failed, minus E; 0 when none failed.
	// An interval that straddles E counts whole, so RecoveryS may run up to
	// one sample interval long. When Recovered is false, failures were
	// still being counted in the last interval before the next burst or
	// the run's end: RecoveryS is then the time observed so far, a lower
	// bound. Nil when no sample interval ends in that window (the next
	// burst starts within the same interval).
	RecoveryS *float64 `json:"recovery_s"`
	// Recovered is whether failures stopped within the window: no interval
	// in it failed, or one without failures followed the last that did.
	Recovered bool `json:"recovered"`
	// PortsBackS is how long after E, in seconds, the ports held by the
	// whole run (Row.PortsInUse, sampled at T >= E and no later than the
	// next burst start or the run's end) first fall back to at most their
	// level at the last sample before the burst began (0 ports before the
	// first sample). With a single onoff workload failures stop as soon as
	// its arrivals do; this is then the figure that says when the burst's
	// TIME_WAITs have drained. Nil when they do not fall back within that
	// window.
	PortsBackS *float64 `json:"ports_back_s"`
}

// burstSpan is one burst of a workload: its arrivals begin at start and
// end at end, since the start of the run.
type burstSpan struct {
	workload   string
	start, end time.Duration
}

// burstSpans returns the bursts of s's workloads that end before the run
// does, ordered by end (then by workload, in the scenario's order), and the
// times at which any workload's arrivals begin, sorted.
func burstSpans(s *scenarios.Scenario) (spans []burstSpan, starts []time.Duration) {
	seen := map[burstSpan]bool{}
	add := func(b burstSpan) {
		if seen[b] {
			return // another copy of a workload from a host with count: N
		}
		seen[b] = true
		starts = append(starts, b.start)
		if b.end < s.Duration {
			spans = append(spans, b)
		}
	}
	for i := range s.Workloads {
		w := &s.Workloads[i]
		name := w.Name
		if h := &s.Hosts[w.From]; h.Count > 1 {
			name = strings.TrimSuffix(name, "@"+h.Name)
		}
		a := &w.Arrival
		if a.Process != scenarios.OnOff || a.Off < s.Sample {
			add(burstSpan{name, w.Start, w.Stop})
			continue
		}
		// The off-periods are at least one sample interval, so there are
		// no more on-periods than rows.
		for on := w.Start; on < w.Stop; on += a.On + a.Off {
			add(burstSpan{name, on, min(on+a.On, w.Stop)})
		}
	}
	slices.SortStableFunc(spans, func(a, b burstSpan) int { return cmp.Compare(a.end, b.end) })
	slices.Sort(starts)
	return spans, starts
}

// Bursts returns how the run res of s recovered from each of its burst
// ends (see Burst), ordered by end time; nil when the scenario has none.
// Run fills Summary.Bursts with it; a backend that fills a Result's Series
// itself (sim/realsock) can call it once the series is complete.
func Bursts(s *scenarios.Scenario, res *Result) []Burst {
	spans, starts := burstSpans(s)
	var out []Burst
	for _, sp := range spans {
		// The window lasts until the next burst starts, at E or later:
		// failures from then on may be that burst's.
		until := s.Duration
		if i, _ := slices.BinarySearch(starts, sp.end); i < len(starts) {
			until = min(until, starts[i])
		}
		out = append(out, recovery(res.Series.Rows, sp, until))
	}
	return out
}

// recovery measures one burst on the rows, in the window from its end to
// until.
func recovery(rows []Row, sp burstSpan, until time.Duration) Burst {
	b := Burst{Workload: sp.workload, EndS: sp.end.Seconds()}
	after := func(t time.Duration) *float64 {
		d := (t - sp.end).Seconds()
		return &d
	}
	level := 0 // the run starts with no port held
	observed, failing := false, false
	failedUntil := sp.end
	for i := range rows {
		r := &rows[i]
		t := rowTime(r)
		if t > until {
			break // rows are in time order
		}
		if t < sp.start {
			level = r.PortsInUse
			continue
		}
		// Socket counts are the state at t, so a sample at E itself
		// counts; counters cover the interval ending at t, so only the
		// intervals that end after E do.
		if t >= sp.end && b.PortsBackS == nil && r.PortsInUse <= level {
			b.PortsBackS = after(t)
		}
		if t <= sp.end {
			continue
		}
		observed, failing = true, r.Failures > 0
		if failing {
			failedUntil = t
		}
	}
	if observed {
		b.RecoveryS, b.Recovered = after(failedUntil), !failing
	}
	return b
}

// rowTime is a row's sample time. TS is a whole number of nanoseconds
// divided by 1e9, so rounding recovers it exactly.
func rowTime(r *Row) time.Duration {
	return time.Duration(math.Round(r.TS * 1e9))
}
