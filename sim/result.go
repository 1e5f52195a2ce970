package sim

// Result is what one run produces, for the simulator and (later) the real
// kernel alike: a Summary of totals and a Series sampled at the scenario's
// interval. Everything downstream of a run (tables, files, plots, tests)
// reads only this.
type Result struct {
	Summary Summary
	Series  Series
	// Ports are the first MaxPortChoices successful allocations of the run,
	// in order, for the port-choice plot: they tell sequential, hashed and
	// random allocators apart.
	Ports []PortChoice
}

// MaxPortChoices caps Result.Ports, so memory does not grow with the run.
const MaxPortChoices = 20000

// PortChoice is one successful allocation.
type PortChoice struct {
	// TS is the virtual time of the connect(), in seconds.
	TS float64
	// Domain indexes Summary.Domains.
	Domain int
	// Port is the local port chosen.
	Port uint16
}

// Summary is the machine-readable outcome of a run, written as
// summary.json. Times are seconds of virtual time (float64), counts are
// connection attempts or sockets.
type Summary struct {
	Scenario string `json:"scenario"`
	File     string `json:"file"`
	// Overrides are the --set path=value strings applied to File.
	Overrides []string `json:"overrides"`
	Seed      uint64   `json:"seed"`
	DurationS float64  `json:"duration_s"`
	Totals
	// ProbesPerAlloc are quantiles of candidates probed per allocation,
	// failed ones included (they probe the whole range, so p99 jumps to
	// the range size once more than 1 % of attempts fail).
	ProbesPerAlloc Quantiles     `json:"probes_per_alloc"`
	Hosts          []HostSummary `json:"hosts"`
	// Domains are the conflict domains: for a host whose connect() shares
	// ports across destinations, one per (local address, destination);
	// otherwise one per address family (the whole host competes).
	Domains []DomainSummary `json:"domains"`
	// MostLoaded indexes Domains: the domain with the highest offered load
	// (arrival rate x mean holding time; then the highest rate; ties: the
	// lowest index), whose rows Series.Domain holds. -1 when there are none.
	MostLoaded int `json:"most_loaded_domain"`
	// Servers are the scenario's listeners and what they accepted.
	Servers []ServerSummary `json:"servers,omitempty"`
	// NATs are the scenario's NAT middleboxes and what they did.
	NATs     []NATSummary `json:"nats,omitempty"`
	Analytic Analytic     `json:"analytic"`
	// Events is the number of events the engine processed.
	Events uint64 `json:"events"`
	// Bursts are the burst ends of the scenario's load (a workload's
	// arrivals stopping before the run ends) and how long after each the
	// run's failures stopped and its ports fell back; see Burst. Empty,
	// and left out of summary.json, when the load has none.
	Bursts []Burst `json:"bursts,omitempty"`
}

// Totals are counts shared by the run, each host and each domain.
type Totals struct {
	Attempts  uint64 `json:"attempts"`
	Successes uint64 `json:"successes"`
	// Failures counts failed attempts by errno name ("EADDRNOTAVAIL").
	Failures map[string]uint64 `json:"failures"`
	// FirstFailureS is the virtual time of the first failure, nil if none.
	FirstFailureS *float64 `json:"first_failure_s"`
	// Retrying counts attempts whose SYN a NAT dropped and that were still
	// retransmitting when the run ended: neither successes nor failures
	// yet (they are left out of the steady-state attempts too).
	Retrying uint64 `json:"retrying,omitempty"`
	// Requests counts the arrivals of workloads with a keep-alive pool
	// (scenarios.Workload.Pool): their connect() attempts plus Reused, the
	// requests served on an idle pooled connection without connect(),
	// counted in the domain of that connection. Both are 0 (and left out
	// of summary.json) without a pool.
	Requests uint64 `json:"requests,omitempty"`
	Reused   uint64 `json:"reused,omitempty"`
	// PeakTimeWait and PeakPortsInUse are exact maxima over the run (taken
	// at every transition, not only at samples).
	PeakTimeWait   int `json:"peak_time_wait"`
	PeakPortsInUse int `json:"peak_ports_in_use"`
}

// ServerSummary is what one server did: connections accepted (per
// listener of a SO_REUSEPORT group), refused while it had no listener,
// dropped at a TIME_WAIT entry, and how its restarts went.
type ServerSummary struct {
	Name        string   `json:"name"`
	Host        string   `json:"host"`
	Listen      string   `json:"listen"`
	Accepted    uint64   `json:"accepted"`
	PerListener []uint64 `json:"per_listener"`
	// Refused counts SYNs answered with RST (no listener: ECONNREFUSED).
	Refused uint64 `json:"refused"`
	// Dropped counts SYNs that met a TIME_WAIT entry they could not end.
	Dropped uint64 `json:"dropped"`
	// PeakTimeWait is the most server-side TIME_WAIT entries of its host.
	PeakTimeWait int `json:"peak_time_wait"`
	// StartErrno and StartRule are set when the first bind()/listen()
	// failed.
	StartErrno string           `json:"start_errno,omitempty"`
	StartRule  string           `json:"start_rule,omitempty"`
	Restarts   []RestartSummary `json:"restarts,omitempty"`
}

// RestartSummary is one restart: listeners closed at AtS, bound again at
// BoundS (nil: never, within the run) after Attempts tries; LastErrno and
// Rule explain the last failed try.
type RestartSummary struct {
	AtS       float64  `json:"at_s"`
	BoundS    *float64 `json:"bound_s"`
	Attempts  int      `json:"attempts"`
	LastErrno string   `json:"last_errno,omitempty"`
	Rule      string   `json:"rule,omitempty"`
}

// NATSummary is what one NAT did over the run. A flow holds one external
// 5-tuple from its first packet to the end of its hold (timeout plus
// cool-down) after it ends; a mapping (RFC 4787) may serve several flows.
type NATSummary struct {
	Name   string `json:"name"`
	Preset string `json:"preset"`
	// Settings are the fields the scenario set over the preset, as written.
	Settings map[string]string `json:"settings,omitempty"`
	// Notes name the sources of the preset's numbers and its assumptions.
	Notes []string `json:"notes"`
	// PoolPorts is the number of external ports on each IP; PerDestination
	// Cap the most flows an IP may hold toward one destination (0: only
	// the pool limits it); PortsPerHost the ports each inside address gets
	// under static or dynamic allocation (0: shared ports, or from the
	// preset's pool-size table, see Inside[].PeakAllocated).
	PoolPorts         int `json:"pool_ports"`
	PerDestinationCap int `json:"per_destination_cap"`
	PortsPerHost      int `json:"ports_per_host"`
	// MappingsPeak is the most mappings held at once, in RFC 4787's sense:
	// one per inside endpoint under endpoint-independent mapping, per
	// endpoint and remote address under address-dependent, per flow under
	// address-and-port-dependent mapping. FlowsPeak is the most flows (each
	// holding an external 5-tuple) at once.
	MappingsPeak int `json:"mappings_peak"`
	FlowsPeak    int `json:"flows_peak"`
	// Drops counts dropped packets by reason ("out-of-resources",
	// "per-destination-cap", "table-full", "endpoint-independence-conflict",
	// "no-port-allocation", "insert-failed", "filtered", "no-hairpin"); a
	// retransmitted SYN that is dropped again counts again.
	Drops map[string]uint64 `json:"drops"`
	// FirstDropS is the virtual time of the first drop, nil if none.
	FirstDropS *float64 `json:"first_drop_s"`
	// Preserved, Reused and Searched count how flows got their external
	// port: the inside port kept, the endpoint's existing mapping, the
	// picker's search; Evicted counts closing flows a Linux 6.5+ search
	// evicted.
	Preserved uint64 `json:"preserved"`
	Reused    uint64 `json:"reused"`
	Searched  uint64 `json:"searched"`
	Evicted   uint64 `json:"evicted"`
	// ProbesPerSearch is the mean number of candidates a search examined,
	// ProbesMax the most in one search.
	ProbesPerSearch float64            `json:"probes_per_search"`
	ProbesMax       int                `json:"probes_max"`
	ExternalIPs     []NATIPSummary     `json:"external_ips"`
	Inside          []NATInsideSummary `json:"inside"`
	Destinations    []NATDestSummary   `json:"destinations"`
}

// NATIPSummary is one external IP: the most flows it held at once and
// the most distinct external ports in use.
type NATIPSummary struct {
	Address   string `json:"address"`
	PeakFlows int    `json:"peak_flows"`
	PeakPorts int    `json:"peak_ports"`
}

// NATInsideSummary is one inside address: the most flows it held, the
// most ports allocated to it (static, dynamic, block or deterministic
// allocation; 0 when ports are shared), and its drops by reason.
type NATInsideSummary struct {
	Host          string            `json:"host"`
	Address       string            `json:"address"`
	PeakFlows     int               `json:"peak_flows"`
	PeakAllocated int               `json:"peak_allocated"`
	Drops         map[string]uint64 `json:"drops"`
}

// NATDestSummary is one destination seen through the NAT.
type NATDestSummary struct {
	Destination string            `json:"destination"`
	Proto       string            `json:"proto"`
	PeakFlows   int               `json:"peak_flows"`
	Drops       map[string]uint64 `json:"drops"`
}

// Quantiles of a distribution of integers.
type Quantiles struct {
	Mean float64 `json:"mean"`
	P50  int     `json:"p50"`
	P99  int     `json:"p99"`
	Max  int     `json:"max"`
}

// HostSummary is a host's totals and the settings the run used.
type HostSummary struct {
	Name string `json:"name"`
	Totals
	ProbesPerAlloc Quantiles `json:"probes_per_alloc"`
	// TwOverflows counts sockets that skipped TIME_WAIT because
	// tcp_max_tw_buckets was full (Linux TCPTIMEWAITOVERFLOW).
	TwOverflows uint64 `json:"tw_overflows"`
	// TwRecycled counts TIME_WAIT sockets whose 4-tuple connect() took over
	// (Linux TIMEWAITRECYCLED): under tcp_tw_reuse, or at once for a socket
	// bound by bind(0)'s ip_autobind_reuse relax pass (tcp_twsk_unique with
	// twp == NULL).
	TwRecycled uint64       `json:"tw_recycled"`
	Settings   HostSettings `json:"settings"`
}

// HostSettings echo the resolved profile, so a reader sees what was
// modelled (for os: host, what was read from the machine).
type HostSettings struct {
	OS                   string            `json:"os"`
	Source               string            `json:"source"`
	PortRange            string            `json:"ip_local_port_range"`
	ReservedPorts        string            `json:"ip_local_reserved_ports"`
	UsablePorts          int               `json:"usable_ports"`
	TimeWaitS            float64           `json:"time_wait_s"`
	TimeWaitHypothetical bool              `json:"time_wait_hypothetical"`
	ConnectSharesPort    bool              `json:"connect_shares_port"`
	Allocator            string            `json:"allocator"`
	TCPTwReuse           int               `json:"tcp_tw_reuse"`
	TCPTwReuseDelayMS    int               `json:"tcp_tw_reuse_delay_ms"`
	TCPTimestamps        bool              `json:"tcp_timestamps"`
	TCPMaxTwBuckets      int               `json:"tcp_max_tw_buckets"`
	Sysctls              map[string]string `json:"sysctls,omitempty"`
}

// DomainSummary describes one conflict domain: the set of connections that
// compete for the same ports.
type DomainSummary struct {
	Host        string `json:"host"`
	Local       string `json:"local"`
	Destination string `json:"destination"` // "ip:port", or "*" for a port-exclusive host
	UsablePorts int    `json:"usable_ports"`
	Totals
	// MeanPortsInUse is the time average of ports held over the run.
	MeanPortsInUse float64 `json:"mean_ports_in_use"`
	// Steady is the same after a warm-up, the window the analytic
	// (steady-state) figures describe; nil when the run is too short.
	Steady   *Steady  `json:"steady"`
	Analytic Analytic `json:"analytic"`
}

// Steady holds a domain's simulated figures measured after a warm-up of one
// mean holding time, when the pool has filled as far as it will: a run that
// starts empty needs that long before Little's law and Erlang B describe it.
// It is reported only when the run lasts at least two mean holding times.
type Steady struct {
	// FromS is the warm-up: the start of the window, in seconds.
	FromS    float64 `json:"from_s"`
	Attempts uint64  `json:"attempts"`
	Failures uint64  `json:"failures"`
	Blocking float64 `json:"blocking"`
	// MeanPortsInUse is the exact time average of ports held in the window.
	MeanPortsInUse float64 `json:"mean_ports_in_use"`
}

// Analytic holds closed-form predictions for comparison with the simulated
// figures (Little's law, Erlang B; see sim/analytic). They assume
// stationary Poisson arrivals; Applicable says whether the scenario meets
// that (Poisson arrivals over the whole run, a finite mean holding time, and
// tcp_max_tw_buckets out of reach).
type Analytic struct {
	Applicable bool `json:"applicable"`
	// OfferedLoadErlangs is arrival rate x mean holding time (lifetime plus
	// TIME_WAIT where the client closes first).
	OfferedLoadErlangs float64 `json:"offered_load_erlangs"`
	// ErlangBBlocking is B(usable ports, offered load).
	ErlangBBlocking float64 `json:"erlang_b_blocking"`
	// LittlesLawPorts is the expected mean number of ports held,
	// rate x (1 - blocking) x mean holding time.
	LittlesLawPorts float64 `json:"littles_law_ports"`
	// FluidLimitRate is usable ports / mean holding time: the rate above
	// which the pool cannot keep up, in connections per second.
	FluidLimitRate float64 `json:"fluid_limit_rate"`
}

// Series holds one row per sample. Counters (Attempts, Successes, Failures)
// count what happened during the interval ending at T; socket counts are
// the state at T.
type Series struct {
	// IntervalS is the sample interval in seconds.
	IntervalS float64 `json:"interval_s"`
	Rows      []Row   `json:"rows"`
	// Domain holds the most loaded domain's rows (same length as Rows), for
	// the occupancy plot.
	Domain []DomainRow `json:"domain_rows"`
	// NATs hold each NAT's rows (same length as Rows).
	NATs []NATSeries `json:"nats,omitempty"`
}

// NATSeries is one NAT's samples; IPs and Inside name the columns of
// NATRow.IPPorts and NATRow.InsideFlows.
type NATSeries struct {
	Name   string   `json:"name"`
	IPs    []string `json:"external_ips"`
	Inside []string `json:"inside_hosts"`
	Rows   []NATRow `json:"rows"`
}

// NATRow is one sample of a NAT: flows held, drops during the interval,
// distinct ports in use on each external IP, flows of each inside
// address.
type NATRow struct {
	Flows       int    `json:"flows"`
	Drops       uint64 `json:"drops"`
	IPPorts     []int  `json:"ip_ports"`
	InsideFlows []int  `json:"inside_flows"`
}

// Row is one sample of the whole run.
type Row struct {
	TS          float64 `json:"t_s"`
	Attempts    uint64  `json:"attempts"`
	Successes   uint64  `json:"successes"`
	Failures    uint64  `json:"failures"`
	SynSent     int     `json:"syn_sent"`
	Established int     `json:"established"`
	Closing     int     `json:"closing"` // FIN_WAIT_1/2, CLOSE_WAIT, LAST_ACK
	TimeWait    int     `json:"time_wait"`
	PortsInUse  int     `json:"ports_in_use"`
}

// DomainRow is one sample of a single conflict domain.
type DomainRow struct {
	Established int    `json:"established"`
	TimeWait    int    `json:"time_wait"`
	Other       int    `json:"other"` // SYN_SENT and closing states
	Failures    uint64 `json:"failures"`
}
