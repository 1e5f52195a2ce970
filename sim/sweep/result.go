package sweep

// Result is a sweep: the grid, and per point the replications' figures and
// their means with 95 % confidence intervals. It is what sweep.json holds;
// a shard's Result holds only its points, and Merge joins shards into the
// Result of the whole grid.
type Result struct {
	// Scenario is the scenario's name, File where it was read from.
	Scenario string `json:"scenario"`
	File     string `json:"file"`
	// Overrides are the --set values applied before the grid's.
	Overrides []string `json:"overrides"`
	// Seed is the base seed; replication r of every point runs with
	// ReplicationSeed(Seed, r) (common random numbers across points).
	Seed         uint64 `json:"seed"`
	Replications int    `json:"replications"`
	// Vary are the varied parameters: one or two.
	Vary []Vary `json:"vary"`
	// Shard is "I/N" for a shard's result, empty for a whole grid.
	Shard string `json:"shard,omitempty"`
	// Complete is false when the sweep was interrupted: Points then holds
	// the points finished before the interruption.
	Complete bool    `json:"complete"`
	Points   []Point `json:"points"`
}

// Vary is one varied parameter: a scenario path as --set takes it, and its
// values in grid order, as written on the command line.
type Vary struct {
	Path   string   `json:"path"`
	Values []string `json:"values"`
}

// Point is one grid point.
type Point struct {
	// Index is the point's position in the grid (row-major: the last
	// varied parameter changes fastest).
	Index int `json:"index"`
	// Values are the varied parameters' values at this point, as written;
	// X their numbers where they parse as numbers (durations in seconds),
	// NaN-free: 0 and Numeric false otherwise.
	Values  []string  `json:"values"`
	X       []float64 `json:"x"`
	Numeric []bool    `json:"numeric"`
	// FailureProb is failed connection attempts / attempts over the whole
	// run (requests served on a pooled connection count as attempts that
	// did not fail).
	FailureProb Stat `json:"failure_prob"`
	// SteadyBlocking is the most loaded domain's failure probability in
	// its steady-state window (sim.Steady); N counts the replications
	// that have one.
	SteadyBlocking Stat `json:"steady_blocking"`
	// ErlangB is the analytic blocking of the most loaded domain
	// (sim.Analytic.ErlangBBlocking), when the scenario meets Erlang B's
	// assumptions (nil otherwise). It is the same for every replication.
	ErlangB *float64 `json:"erlang_b"`
	// OfferedLoad is the most loaded domain's offered load in erlangs.
	OfferedLoad float64 `json:"offered_load_erlangs"`
	// FirstFailureS is the time of the first failed attempt, in seconds,
	// over the replications that had one (N of them).
	FirstFailureS Stat `json:"first_failure_s"`
	// PeakPortsInUse is the peak of local ports held at once.
	PeakPortsInUse Stat `json:"peak_ports_in_use"`
	// ProbesPerAlloc is the mean number of candidate ports probed per
	// allocation.
	ProbesPerAlloc Stat `json:"probes_per_alloc"`
	// Reps are the replications' own figures, in replication order.
	Reps []Rep `json:"reps"`
}

// Stat is a mean over replications and its 95 % confidence interval
// [Lo, Hi]. The interval is Student's t over the replications (mean ± t
// s/√N); for a probability whose replications all saw 0 (or all 1), where
// that interval collapses, it is the exact (Clopper-Pearson) binomial
// interval over all the attempts, [0, 1 - 0.025^(1/attempts)]. With N < 2 and no such
// bound, Lo = Hi = Mean. N = 0: no replication had the figure.
type Stat struct {
	Mean float64 `json:"mean"`
	Lo   float64 `json:"ci95_lo"`
	Hi   float64 `json:"ci95_hi"`
	N    int     `json:"n"`
}

// Rep is one replication's figures (see Point for their meaning).
// Attempts counts connect() attempts and the requests served on pooled
// connections.
type Rep struct {
	Seed           uint64   `json:"seed"`
	Attempts       uint64   `json:"attempts"`
	Failures       uint64   `json:"failures"`
	FailureProb    float64  `json:"failure_prob"`
	SteadyAttempts uint64   `json:"steady_attempts"`
	SteadyBlocking *float64 `json:"steady_blocking"`
	FirstFailureS  *float64 `json:"first_failure_s"`
	PeakPortsInUse int      `json:"peak_ports_in_use"`
	ProbesPerAlloc float64  `json:"probes_per_alloc"`
}
