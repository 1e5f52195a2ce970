package scenarios

import (
	"net/netip"
	"strconv"
	"time"

	"github.com/portsim/portsim/alloc"
	"github.com/portsim/portsim/sim/nat"
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
	// Servers are listening sockets on hosts; a workload destination equal
	// to a server's address and port connects to it.
	Servers []Server
	// NATs are the NAT middleboxes; a host is behind at most one.
	NATs []NAT
}

// NAT is one NAT middlebox of the scenario: a nat preset with the file's
// overrides applied, validated for its inside addresses.
type NAT struct {
	Name string
	// Config is the resolved configuration (ExternalIPs set).
	Config nat.Config
	// Inside indexes Scenario.Hosts: the hosts behind this NAT, every
	// instance of a host with count > 1.
	Inside []int
	// Settings are the fields the file set, as written (YAML key path to
	// value text), for the summary; nil when it sets none beyond the
	// preset.
	Settings map[string]string
}

// Server is a TCP listener (or a SO_REUSEPORT group of them) on a host.
type Server struct {
	Name string
	// Host indexes Scenario.Hosts.
	Host int
	// Listen is the address and port bound; the address may be the
	// wildcard (0.0.0.0 or ::) or one of the host's addresses.
	Listen netip.AddrPort
	// Listeners is how many sockets bind Listen (> 1 is a SO_REUSEPORT
	// group, which needs SO_REUSEPORT in Options to bind).
	Listeners int
	// Options are the listeners' socket options.
	Options SockOptions
	// Restarts close every listener at At and bind new ones Down later.
	Restarts []Restart
}

// Restart is a server restart: the process closes its listeners at At and
// the new one binds and listens Down later, with Options; a bind that fails
// is retried every Retry until it succeeds.
type Restart struct {
	At, Down, Retry time.Duration
	Options         SockOptions
}

// Host is one machine that opens connections.
type Host struct {
	// Name is unique; an instance of a host written with count: N is
	// named NAME-1 .. NAME-N.
	Name string
	// Group is the name as written in the file, Instance the instance's
	// number (1..Count), Count the file's count (1 when not set).
	Group           string
	Instance, Count int
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
	// Privileged is whether the host's servers may bind ports below the
	// profile's UnprivilegedPortStart (root or CAP_NET_BIND_SERVICE;
	// default true).
	Privileged bool
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
	// Socket is how each connection gets its local port.
	Socket SocketPath
	// Options are the socket options set before binding or connecting.
	Options SockOptions
	// PeerCloseDelay is how long after our FIN the peer's application
	// closes (sends its FIN) when the client closes first; 0 means at
	// once. Past the host's TCPFinTimeout the client gives up in
	// FIN_WAIT_2 without TIME_WAIT.
	PeerCloseDelay time.Duration
	// PortRange is the per-socket range of the port-range path
	// (IP_LOCAL_PORT_RANGE), inclusive; zero otherwise.
	PortRange alloc.Range
	// Pool is the keep-alive pool size: how many idle connections the
	// client keeps per destination, as Go net/http Transport's
	// MaxIdleConnsPerHost (k6 with connection reuse, HikariCP-style
	// pools). 0, the default, is no pool: every arrival is a connect().
	// With a pool the arrivals are requests: a request runs for one
	// holding time on the destination's most recently idled connection
	// (LIFO, as Go's idle list), or connect()s a new one when none is
	// idle; when it ends, the connection joins the idle list if that
	// holds fewer than Pool connections and is closed by the close mix
	// otherwise. Idle connections stay open to the end of the run (no idle
	// timeout). TCP socket paths only.
	Pool int
}

// SocketPath is the sequence of calls that gives a socket its local port
// (os-semantics.md §2-3; Cloudflare 2022's table of API patterns).
type SocketPath uint8

// Socket paths.
const (
	// Connect is connect() on an unbound socket: the port is chosen for the
	// 4-tuple and, on Linux and FreeBSD, shared across destinations
	// (__inet_hash_connect). Exhaustion: EADDRNOTAVAIL.
	Connect SocketPath = iota
	// BindConnect is bind(addr, 0) then connect(): bind(0) takes a port no
	// socket on the address holds (inet_csk_find_open_port), so every
	// connection locks its port for all destinations, and on Linux connect()
	// autobind of other sockets skips it while its bucket lives.
	// Exhaustion: EADDRINUSE, from bind().
	BindConnect
	// BindNoPort is bind(addr, 0) with IP_BIND_ADDRESS_NO_PORT (Linux 4.2+)
	// then connect(): the port is chosen at connect() time as for Connect,
	// from the given source address. Exhaustion: EADDRNOTAVAIL.
	BindNoPort
	// PortRange is connect() with IP_LOCAL_PORT_RANGE (Linux 6.3+): the
	// range narrowed to Workload.PortRange, and in 6.8+ no parity split.
	// Exhaustion: EADDRNOTAVAIL.
	PortRange
	// UDPConnect and UDPSendto are connect() or sendto() on an unbound UDP
	// socket: autobind takes a port exclusively, whatever the destination
	// (Linux udp_lib_get_port). Exhaustion: EAGAIN on Linux.
	UDPConnect
	UDPSendto
)

// socketPathNames are the YAML spellings, indexed by SocketPath.
var socketPathNames = [...]string{
	Connect:     "connect",
	BindConnect: "bind-connect",
	BindNoPort:  "bind-no-port",
	PortRange:   "port-range",
	UDPConnect:  "udp-connect",
	UDPSendto:   "udp-sendto",
}

// String returns the path's YAML spelling.
func (p SocketPath) String() string {
	if int(p) < len(socketPathNames) {
		return socketPathNames[p]
	}
	return "socket-path(" + strconv.Itoa(int(p)) + ")"
}

// UDP reports whether the path opens UDP sockets.
func (p SocketPath) UDP() bool { return p == UDPConnect || p == UDPSendto }

// SockOptions are the socket options a workload's sockets set.
type SockOptions struct {
	ReuseAddr        bool // SO_REUSEADDR: Linux bind(0) tries the lower half of the range first
	ReusePort        bool // SO_REUSEPORT: no effect on the ephemeral paths (bind(0) never shares)
	ReuseUnicastPort bool // Windows SO_REUSE_UNICASTPORT: connect() shares ports across destinations
	ExclusiveAddrUse bool // Windows SO_EXCLUSIVEADDRUSE: no effect on the ephemeral paths
}
