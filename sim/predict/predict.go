package predict

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/portsim/portsim/alloc"
	"github.com/portsim/portsim/scenarios"
	"gonum.org/v1/gonum/stat"
)

// DefaultAllocators are the allocators compared when Options.Allocators is
// empty: every connect() allocator of the alloc registry except those that
// only model bind(0) and UDP autobind.
var DefaultAllocators = []string{
	alloc.NameSequential, alloc.NameRandomStart, alloc.NameRandomPick, alloc.NameHash,
	alloc.NameDoubleHash, alloc.NameRandomIncrements, alloc.NameLinuxAlg3, alloc.NameLinuxAlg4,
	alloc.NameLinux, alloc.NameFreeBSD13,
}

// Defaults of Options.
var (
	DefaultScales       = []float64{0.1, 1, 10}
	DefaultObservations = 20000
	DefaultGap          = 100 * time.Millisecond
	DefaultInterval     = time.Second
	DefaultGuesses      = 100
)

// Options configure Run. Zero fields take the defaults above.
type Options struct {
	// Scenario is a built-in name or a file, as scenarios.Load takes it,
	// with Overrides (--set PATH=VALUE) applied.
	Scenario  string
	Overrides []string
	// Host names the victim; "" is the host of the scenario's first
	// workload. Its workloads are the background load.
	Host string
	// Allocators are alloc registry names, each run as the victim's
	// connect() allocator.
	Allocators []string
	// Scales multiply the rates of the victim's workloads: the load levels.
	Scales []float64
	// Observations is how many of the victim's connections the attacker
	// observes per allocator and load level; each is followed Gap later by
	// the connection whose port it predicts, and the next comes Interval
	// after it (Gap < Interval).
	Observations int
	Gap          time.Duration
	Interval     time.Duration
	// Guesses is K, the attacker's guesses per attempt (model a) or
	// spoofed responses per attempt (model b).
	Guesses int
	// Workers run boots in parallel (0: 1); the report does not depend on
	// it.
	Workers int
	// TrackBoots is how many boots the device-tracking attack (model c,
	// Track) runs against Linux 5.12-5.17 (table 256) and 5.18+; the
	// what-if table of 65,536 runs 2 (each takes millions of connections).
	// 0 skips model c. AttackRate is the pace of the connections the
	// attacker's page triggers, connections per second (0: 1000/s).
	TrackBoots int
	AttackRate float64
	// Progress, when set, is called after each boot with the boots done
	// and the total, from the worker goroutines one at a time.
	Progress func(done, total int)
}

// Row is what the attacker models achieve against one allocator at one
// load level.
type Row struct {
	Allocator string  `json:"allocator"`
	Scale     float64 `json:"scale"`
	// Load is the mean number of the victim's own connections between an
	// observation and the target (the background the attacker must see
	// through); Rate is the victim's own connections per second that got a
	// port (the attacker's excluded).
	Load float64 `json:"load"`
	Rate float64 `json:"rate_per_s"`
	// Samples are the observation-target pairs used (Train + Test);
	// Dropped those where either connect() failed.
	Samples int `json:"samples"`
	Train   int `json:"train"`
	Test    int `json:"test"`
	Dropped int `json:"dropped"`
	// MinEntropy and Shannon are in bits. ShannonLowerBound says the
	// sample was too small to show the full spread.
	MinEntropy        Estimate `json:"min_entropy_bits"`
	Shannon           float64  `json:"shannon_bits"`
	ShannonLowerBound bool     `json:"shannon_lower_bound,omitempty"`
	// Success is P_K, the probability that one of K guesses is the
	// target's port; Attempts50 the attempts (observations) needed for a
	// 50 % chance at K guesses each.
	Success    Estimate `json:"success"`
	Attempts50 Estimate `json:"attempts_50"`
	// Spoof is model b's success per attempt with K spoofed responses and
	// a random 16-bit transaction ID; SpoofAttempts50 its attempts for
	// 50 %.
	Spoof           Estimate `json:"spoof_success"`
	SpoofAttempts50 Estimate `json:"spoof_attempts_50"`
	// Leakage is the squared correlation between the increment of the
	// observed port and the victim's connections to other destinations.
	Leakage Estimate `json:"leakage_r2"`
	OARC    OARC     `json:"oarc"`
	// ReuseCycle is the fraction of the victim's connections whose port
	// was used toward the same destination less than one TIME_WAIT before.
	ReuseCycle Estimate `json:"reuse_cycle"`
	// Curve is P_k for k = 1, 2, 5, 10, ... up to the range size.
	Curve []Point `json:"curve"`
}

// Report is the outcome of Run.
type Report struct {
	Scenario  string   `json:"scenario"`
	File      string   `json:"file"`
	Overrides []string `json:"overrides"`
	Seed      uint64   `json:"seed"`
	Host      string   `json:"host"`
	Source    string   `json:"source"`
	// Range is the victim's ephemeral range, inclusive; TimeWaitS its
	// TIME_WAIT in seconds.
	Range     string  `json:"range"`
	RangeSize int     `json:"range_size"`
	TimeWaitS float64 `json:"time_wait_s"`
	// WarmS is the background time before the first observation.
	WarmS        float64 `json:"warm_s"`
	GapS         float64 `json:"gap_s"`
	IntervalS    float64 `json:"interval_s"`
	Observations int     `json:"observations"`
	Guesses      int     `json:"guesses"`
	// Boots per allocator and load level, and the observations of each.
	Boots   int   `json:"boots"`
	PerBoot int   `json:"per_boot"`
	Rows    []Row `json:"rows"`
	// Tracking is model c: the attack on Linux 5.12-5.17 (table 256), on
	// the same algorithm with the table enlarged to 65,536, and on 5.18+,
	// with the victim's background at its scenario rate.
	Tracking []TrackSummary `json:"tracking,omitempty"`
}

// Bounds on Options: a load factor far outside them makes a rate whose
// gaps do not fit a time.Duration (the run would never end), and an
// interval over an hour makes boots of thousands of days.
const (
	minScale    = 1e-6
	maxScale    = 1e4
	maxInterval = time.Hour
)

// ErrOptions is wrapped by Run's errors about Options.
var ErrOptions = errors.New("predict: bad options")

// fill sets the defaults and checks the options.
func (o *Options) fill() error {
	if len(o.Allocators) == 0 {
		o.Allocators = DefaultAllocators
	}
	if len(o.Scales) == 0 {
		o.Scales = DefaultScales
	}
	if o.Observations == 0 {
		o.Observations = DefaultObservations
	}
	if o.Gap == 0 {
		o.Gap = DefaultGap
	}
	if o.Interval == 0 {
		o.Interval = DefaultInterval
	}
	if o.Guesses == 0 {
		o.Guesses = DefaultGuesses
	}
	o.Workers = max(o.Workers, 1)
	for _, name := range o.Allocators {
		if !slices.Contains(alloc.Names(), name) {
			return fmt.Errorf("%w: unknown allocator %q (known: %v)", ErrOptions, name, alloc.Names())
		}
		if name == alloc.NameLinuxBind || name == alloc.NameLinuxUDP {
			return fmt.Errorf("%w: %s models bind(0) or UDP autobind, not connect(); the attacker models predict connect() ports", ErrOptions, name)
		}
	}
	for _, f := range o.Scales {
		if !(f >= minScale && f <= maxScale) {
			return fmt.Errorf("%w: load scale %v is outside %g..%g", ErrOptions, f, minScale, maxScale)
		}
	}
	if o.Interval > maxInterval {
		return fmt.Errorf("%w: interval %v is over %v", ErrOptions, o.Interval, maxInterval)
	}
	switch {
	case o.Observations < 4:
		return fmt.Errorf("%w: %d observations; at least 4 (half train the attacker, half test it)", ErrOptions, o.Observations)
	case o.Gap <= 0 || o.Interval <= 0 || o.Gap >= o.Interval:
		return fmt.Errorf("%w: need 0 < gap (%v) < interval (%v): each target follows its observation before the next one", ErrOptions, o.Gap, o.Interval)
	case o.Guesses < 1:
		return fmt.Errorf("%w: %d guesses; at least 1", ErrOptions, o.Guesses)
	}
	return nil
}

// job is one boot of one row.
type job struct{ row, boot int }

// Run simulates, for every allocator and load level, the victim's boots and
// the attackers, and reports the metrics (see the package comment).
// Boots split the observations evenly, at most 4,096 each (one fresh target
// destination per observation), in an even number: even boots train the
// attacker, odd ones test it. Errors: bad options (ErrOptions), a scenario
// that does not load (*scenarios.Error), a victim the attacker cannot reach,
// a run that fails, or ctx's error when it is cancelled.
func Run(ctx context.Context, o Options) (*Report, error) {
	if err := o.fill(); err != nil {
		return nil, err
	}
	s, err := scenarios.Load(o.Scenario, o.Overrides)
	if err != nil {
		return nil, err
	}
	v, err := newVictim(s, o.Host, o.Gap, o.Interval)
	if err != nil {
		return nil, err
	}
	boots := max(2, (o.Observations+maxTargets-1)/maxTargets)
	boots += boots % 2
	per := (o.Observations + boots - 1) / boots
	rep := &Report{
		Scenario: s.Name, File: s.File, Overrides: s.Overrides, Seed: s.Seed,
		Host: s.Hosts[v.host].Name, Source: v.src.String(),
		Range: v.r.String(), RangeSize: v.r.Size(), TimeWaitS: v.tw.Seconds(), WarmS: v.warm.Seconds(),
		GapS: o.Gap.Seconds(), IntervalS: o.Interval.Seconds(), Observations: boots * per, Guesses: o.Guesses,
		Boots: boots, PerBoot: per,
	}
	type rowKey struct {
		name  string
		scale float64
	}
	var keys []rowKey
	for _, name := range o.Allocators {
		for _, f := range o.Scales {
			keys = append(keys, rowKey{name, f})
		}
	}
	data := make([][]*bootData, len(keys))
	var jobs []job
	for r := range keys {
		data[r] = make([]*bootData, boots)
		for b := range boots {
			jobs = append(jobs, job{r, b})
		}
	}
	var (
		mu    sync.Mutex
		done  int
		first error
		next  = make(chan job)
		wg    sync.WaitGroup
	)
	for range o.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range next {
				k := keys[j.row]
				d, err := v.run(k.name, k.scale, uint64(j.boot), per)
				mu.Lock()
				if err != nil && first == nil {
					first = fmt.Errorf("predict: %s at load x%g: %w", k.name, k.scale, err)
				}
				data[j.row][j.boot] = d
				done++
				if o.Progress != nil {
					o.Progress(done, len(jobs))
				}
				mu.Unlock()
			}
		}()
	}
feed:
	for _, j := range jobs {
		mu.Lock()
		failed := first != nil
		mu.Unlock()
		if failed {
			break
		}
		select {
		case next <- j:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if first != nil {
		return nil, first
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for r, k := range keys {
		rep.Rows = append(rep.Rows, v.row(k.name, k.scale, data[r], o.Guesses))
	}
	if o.TrackBoots > 0 {
		if rep.Tracking, err = v.track(ctx, o, s.Seed); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

// trackCases are model c's victims: Linux 5.12-5.17 as shipped, the same
// algorithm with only the table enlarged (the size the May 2022 fix chose,
// for which commit 4c2c8f03a5ab estimates about 2.6 million connections),
// and 5.18+ attacked by the published PoC (which assumes 256 slots).
// boots 0 means Options.TrackBoots. The enlarged table runs without the
// victim's background, as the published estimate assumes: with any, the
// slots of the victim's own destinations are never quiet for the minutes a
// round takes, and phase 1 never ends.
var trackCases = []struct {
	alloc                 string
	table, assumed, boots int
	background            bool // the victim's own connections go on meanwhile
}{
	{alloc.NameLinuxAlg4, 0, 256, 0, true},
	{alloc.NameLinuxAlg4, 1 << 16, 1 << 16, 2, false},
	{alloc.NameLinux, 0, 256, 0, true},
}

// track runs model c against each of trackCases, the victim's own
// connections (its workloads at their scenario rates) as the background.
func (v *victim) track(ctx context.Context, o Options, seed uint64) ([]TrackSummary, error) {
	var out []TrackSummary
	for _, c := range trackCases {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		boots := c.boots
		if boots == 0 {
			boots = max(o.TrackBoots, 2)
		}
		cfg := TrackConfig{
			Allocator: c.alloc, TableSize: c.table, Assumed: c.assumed, Range: v.r, Victim: v.src,
			AttackRate: o.AttackRate, Seed: seed,
		}
		if c.background {
			cfg.BackgroundRate, cfg.Background = v.rate(), v.dests
		}
		sum, err := TrackBoots(cfg, boots)
		if err != nil {
			return nil, err
		}
		out = append(out, sum)
	}
	return out, nil
}

// rate is the victim's own connections per second at the scenario's rates
// (an on-off workload averaged over its cycle, a ramp over its span).
func (v *victim) rate() float64 {
	var sum float64
	for _, i := range v.works {
		a := v.base.Workloads[i].Arrival
		switch a.Process {
		case scenarios.Ramp:
			sum += (a.Rate + a.RateTo) / 2
		case scenarios.OnOff:
			sum += a.Rate * a.On.Seconds() / (a.On + a.Off).Seconds()
		default:
			sum += a.Rate
		}
	}
	return sum
}

// row computes the metrics of one allocator and load level from its boots.
func (v *victim) row(name string, scale float64, boots []*bootData, guesses int) Row {
	size := v.r.Size()
	low := int(v.r.Low)
	p := newPredictive(size)
	row := Row{Allocator: name, Scale: scale}
	var inc, between, sds []float64
	var load, loads, reused, background int
	var span time.Duration
	window := make([]float64, 0, oarcQueries)
	for b, d := range boots {
		for k := range d.obs {
			o, t := int(d.obs[k]), int(d.tgt[k])
			if o == 0 || t == 0 {
				row.Dropped++
				continue
			}
			p.add(((t-o)%size+size)%size, b%2 == 0)
			load += int(d.load[k])
			loads++
			if k+1 < len(d.obs) && d.obs[k+1] != 0 {
				x := ((int(d.obs[k+1])-o)%size + size) % size
				if x > size/2 {
					x -= size
				}
				inc = append(inc, float64(x))
				between = append(between, float64(d.between[k]))
			}
		}
		// DNS-OARC: windows of 26 consecutive successful observations.
		window = window[:0]
		for _, o := range d.obs {
			if o == 0 {
				window = window[:0]
				continue
			}
			if window = append(window, float64(o-uint16(low))); len(window) == oarcQueries {
				sds = append(sds, stat.StdDev(window, nil))
				window = window[:0]
			}
		}
		reused += d.reused
		background += d.background
		span += d.bgSpan
	}
	p.finish()
	row.Train, row.Test, row.Samples = p.nTrain, p.nTest, p.nTrain+p.nTest
	if loads > 0 {
		row.Load = float64(load) / float64(loads)
	}
	if span > 0 {
		row.Rate = float64(background) / span.Seconds()
	}
	row.MinEntropy = p.minEntropy()
	row.Shannon, row.ShannonLowerBound = p.shannon()
	row.Success = p.success(guesses)
	row.Attempts50 = attempts50(row.Success)
	row.Spoof = p.spoof(guesses)
	row.SpoofAttempts50 = attempts50(row.Spoof)
	row.Leakage = leakage(inc, between)
	row.OARC = oarc(sds)
	row.ReuseCycle = binomial(reused, background)
	row.Curve = p.curve()
	return row
}
