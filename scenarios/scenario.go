package scenarios

import (
	"net/netip"
	"time"

	"github.com/portsim/portsim/tcpstate"
)

// Scenario is a validated scenario with presets resolved: what sim.Run
// executes. Times are virtual (time.Duration since the start of the run);
// rates are connections per second. Parse and Load build it; every field is
// set and checked (see Parse for the file format and the rules).
type Scenario struct {
	// Name and Description come from the file.
	Name        string
	Description string
	// File is where the scenario came from: a path, or "builtin:NAME".
	File string
	// Overrides are the --set path=value strings applied to the file, in
	// order, so a result records how to reproduce it.
	Overrides []string
	// Seed derives every random stream of the run (default DefaultSeed).
	Seed uint64
	// Duration is the simulated time span (> 0); Sample the interval
	// between series rows (0 < Sample <= Duration, default DefaultSample).
	Duration time.Duration
	Sample   time.Duration
	// Hosts has at least one host; names are unique.
	Hosts []Host
	// Workloads open connections from a host to destinations; at least
	// one, names unique.
	Workloads []Workload
}

// Host is one machine that opens connections.
type Host struct {
	Name string
	// OS is the preset as written ("linux", "windows", ..., "host").
	OS string
	// Addresses are the host's local addresses, at least one, no
	// duplicates. A workload uses the first of its destinations' family
	// unless it names another (Workload.Source).
	Addresses []netip.Addr
	// Profile is the preset (tcpstate.Preset, or tcpstate.ReadHost for
	// "host") with the scenario's sysctls applied in sorted key order, then
	// time_wait.
	Profile tcpstate.Profile
	// Sysctls are the overrides as written (kernel key to value text), for
	// the summary; nil when the file sets none.
	Sysctls map[string]string
	// TimeWaitHypothetical is set when time_wait changes a length the real
	// stack does not let anyone change (Profile.TimeWaitFixed: Linux and
	// "host"). Writing the preset's own length (60s on Linux) leaves it
	// false.
	TimeWaitHypothetical bool
}

// ArrivalProcess selects how connection attempts are spaced in time.
type ArrivalProcess uint8

// Arrival processes. Constant, Ramp and OnOff are paced deterministically,
// as load generators do (k6 constant-arrival-rate / ramping-arrival-rate);
// Poisson draws exponential gaps.
const (
	Constant ArrivalProcess = iota // Rate per second, first arrival at Start
	Poisson                        // exponential gaps with mean 1/Rate
	Ramp                           // rate moves linearly from Rate to RateTo between Start and Stop
	OnOff                          // Rate during On, nothing during Off, repeating from Start
)

// Arrival is a workload's arrival process.
type Arrival struct {
	Process ArrivalProcess
	// Rate is connections per second (for Ramp: the rate at Start).
	Rate float64
	// RateTo is Ramp's rate at Stop.
	RateTo float64
	// On and Off are OnOff's period lengths.
	On, Off time.Duration
}

// HoldDist selects the distribution of how long a connection stays
// ESTABLISHED before it is closed.
type HoldDist uint8

// Holding-time distributions (sampled with gonum stat/distuv).
const (
	Fixed       HoldDist = iota // Value
	Exponential                 // Mean
	Lognormal                   // Median, Sigma
	Pareto                      // Scale, Shape
)

// Hold is a holding-time distribution.
type Hold struct {
	Dist   HoldDist
	Value  time.Duration // Fixed
	Mean   time.Duration // Exponential
	Median time.Duration // Lognormal
	Sigma  float64       // Lognormal
	Scale  time.Duration // Pareto minimum
	Shape  float64       // Pareto alpha
}

// CloseMix gives the probability of each way a connection ends; the three
// sum to 1.
type CloseMix struct {
	Client float64 // the client closes first (active close: client TIME_WAIT)
	Server float64 // the server closes first (passive close: no client TIME_WAIT)
	RST    float64 // SO_LINGER 0: RST, no TIME_WAIT
}

// Workload is one stream of outbound connections.
type Workload struct {
	Name string
	// From indexes Scenario.Hosts.
	From int
	// Source is the local address the connections use: one of the host's
	// Addresses, of the same family as every destination.
	Source netip.Addr
	// To are the destinations, used round-robin: at least one, ports
	// 1..65535, one address family.
	To      []netip.AddrPort
	Arrival Arrival
	Hold    Hold
	Close   CloseMix
	// Start and Stop bound the arrivals, 0 <= Start < Stop <= Duration;
	// Stop is the run's Duration unless set.
	Start, Stop time.Duration
	// RTT is the round-trip time that paces the handshake and the close
	// (>= 0, default DefaultRTT).
	RTT time.Duration
}
