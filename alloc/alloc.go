package alloc

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Request is one port-allocation request, as seen by an allocator.
type Request struct {
	// Local is the local (source) address the socket is bound to or will
	// use; it may be the unspecified address.
	Local netip.Addr
	// Remote is the destination for connect()/sendto() autobind, and the
	// zero AddrPort for bind(port 0). Hash-based selectors (RFC 6056 §3.3.3
	// and §3.3.4, Linux __inet_hash_connect) key on it; the others ignore
	// it.
	Remote netip.AddrPort
	// Fail is the errno to return when no usable port exists. The socket path
	// sets it, because the same exhaustion is EADDRNOTAVAIL for TCP
	// connect(), EADDRINUSE for bind(0) and EAGAIN for Linux UDP autobind
	// (os-semantics.md §3.7). If left at OK, allocators return EADDRNOTAVAIL
	// so that a failure can never be mistaken for success.
	Fail Errno
	// Now is the virtual time of the request since the start of the run.
	// Time-dependent selectors read it as data: Linux 5.18+ mixes a
	// 10-second epoch into its hash (secure_ipv4_port_ephemeral), FreeBSD
	// 13 counts allocations per second (ipport_tick). No allocator reads a
	// clock.
	Now time.Duration
	// ReuseAddr is SO_REUSEADDR on the socket; Linux bind(0) then tries the
	// lower half of the range first (inet_csk_find_open_port).
	ReuseAddr bool
	// LocalRange is a per-socket range (Linux IP_LOCAL_PORT_RANGE, 6.3+);
	// the zero Range means none. It can only narrow the allocator's range
	// (inet_sk_get_local_port_range), and Linux 6.8+ connect() drops the
	// parity split when it is set.
	LocalRange Range
}

// failErrno returns the errno a failed allocation reports for req.
func failErrno(req *Request) Errno {
	if req == nil || req.Fail == OK {
		return EADDRNOTAVAIL
	}
	return req.Fail
}

// Result is the outcome of one allocation.
//
// On success Err == OK, Port is the chosen port (inside the allocator's
// Range, not busy), and Probes is the number of candidate ports examined
// including the chosen one: 1 when the first candidate was free, larger when
// the allocator had to walk past busy ports. It models the per-call CPU cost
// that grows near exhaustion (the kernel's loop iterations in
// __inet_hash_connect / in_pcb_lport_dest).
//
// On failure Err is the request's Fail errno, Port is 0 and Probes is the
// number of candidates examined: Range.Size() for one full scan, less where
// the kernel skips a port (Linux rounds an odd-sized range down to even),
// more where it scans twice (Linux bind(0)'s ip_autobind_reuse pass) or
// draws with replacement (RFC 6056 Algorithms 2 and 5).
type Result struct {
	// Port is the chosen port, 0 on failure.
	Port uint16
	// Probes is the number of candidate ports examined, >= 1 on success.
	Probes int
	// Err is OK or the request's Fail errno.
	Err Errno
}

// Allocator chooses local ports. Implementations are not safe for concurrent
// use; the simulator is single-threaded and determinism depends on call order.
type Allocator interface {
	// Name returns the registry name the allocator was created with.
	Name() string
	// Allocate picks a port for req that busy does not report, or fails with
	// req.Fail. It must not allocate memory and must cost O(range/64) word
	// operations, not O(range) port tests.
	Allocate(req *Request, busy Busy) Result
}

// Explainer is implemented by every allocator in this package: Explain
// describes, in one short line for a teaching trace, how the most recent
// Allocate call chose its port (or why it failed): the algorithm's own terms,
// the numbers involved, the candidates probed. It must not change state;
// calling it is optional and costs nothing when not called.
//
// Allocate records only a few scalars per call for it (no strings, no
// memory allocation); Explain formats them. Before the first Allocate it says
// so. The line names the source function briefly (e.g. "__inet_hash_connect
// (5.18+):", "RFC 6056 §3.3.3 Alg. 3:") and ends with the outcome: "→ PORT"
// on success, "→ ERRNO" on failure.
type Explainer interface{ Explain() string }

// lastCall is what every allocator keeps of its most recent Allocate for
// Explain: the Result, and whether there was a call at all. set stores it on
// the way out of Allocate, a few word stores per call.
type lastCall struct {
	Result
	done bool
}

// set records res as the most recent outcome and returns it.
func (l *lastCall) set(res Result) Result {
	l.Result, l.done = res, true
	return res
}

// Config configures a named allocator (see New).
type Config struct {
	// Range is the ephemeral range to allocate from; it must pass
	// Range.Validate.
	Range Range
	// First is the first candidate of the very first allocation of the
	// "sequential" allocator; 0 means Range.Low. ns-3 pre-increments its
	// counter from 49152, so an ns-3 model passes First = 49153. It must lie
	// in Range. Ignored by "random-start".
	First int
	// Rand is the random stream for randomized allocators: a math/rand/v2
	// Rand over a seeded source (PCG), owned by the caller so that runs are
	// reproducible. Required by every randomized or keyed allocator;
	// ignored by "sequential".
	// Keyed selectors draw their secret keys from it when they are built.
	Rand *rand.Rand
	// TableSize is RFC 6056 Algorithm 4's TABLE_LENGTH for "double-hash"
	// (0 means the RFC's suggestion, 10), and the table_perturb size of
	// "linux-alg4-256" (0 means the kernel's 256; a power of two up to
	// 65536 models the enlarged table of the 2022 fix alone).
	TableSize int
	// Increments is RFC 6056 Algorithm 5's bound N for
	// "random-increments"; 0 means the RFC's 500.
	Increments int
	// RandomCPS and RandomTime are FreeBSD 13's
	// net.inet.ip.portrange.randomcps (allocations per second above which
	// allocation turns sequential; 0 means the default 10) and randomtime
	// (how long it stays sequential; 0 means the default 45 s).
	RandomCPS  int
	RandomTime time.Duration
	// UDPHashSize is the Linux UDP hash table size (uhash_entries) that
	// "linux-udp" walks; 0 means DefaultUDPHashSize.
	UDPHashSize int
	// AutobindReuse is Linux net.ipv4.ip_autobind_reuse: when bind(0)
	// finds no free port, try again allowing ports held by non-listening
	// SO_REUSEADDR sockets (inet_csk_find_open_port relax pass).
	AutobindReuse bool
}

// Names of the allocators New knows.
const (
	// NameSequential is one global counter that wraps High -> Low and
	// survives between calls: ns-3 Ipv4EndPointDemux::AllocateEphemeralPort
	// (src/internet/model/ipv4-end-point-demux.cc), XNU in_pcbbind with
	// net.inet.tcp.randomize_ports=0 (macOS TCP default), FreeBSD
	// in_pcb_lport_dest with portrange.randomized=0. Each call probes next,
	// next+1, ... and leaves next just past the port it took; a failed call
	// leaves next unchanged.
	NameSequential = "sequential"
	// NameRandomStart is RFC 6056 §3.3.1 Algorithm 1, Simple Port
	// Randomization, as in FreeBSD in_pcb_lport_dest (portrange.randomized=1)
	// and gVisor ports.PickEphemeralPort: start = Low + Rand.IntN(Size), then
	// probe start..High, Low..start-1. Stateless; one random draw per call.
	NameRandomStart = "random-start"
)

// ErrUnknownAllocator is wrapped by New's error for a name it does not know.
var ErrUnknownAllocator = errors.New("unknown allocator")

// registry maps names to constructors; constructors validate the Config
// fields they use. Range is validated by New for all of them. Files that
// define allocators add theirs with register in an init function, as
// database/sql drivers do, so each algorithm stays in its own file.
var registry = registryOf[Config, Allocator]{
	noun: "allocator", err: ErrUnknownAllocator,
	mk: map[string]func(Config) (Allocator, error){
		NameSequential:  newSequential,
		NameRandomStart: newRandomStart,
	},
}

// register adds an allocator constructor under name.
func register(name string, mk func(Config) (Allocator, error)) { registry.add(name, mk) }

// New returns the allocator registered under name, configured by cfg.
//
// Errors: an unknown name (wrapping ErrUnknownAllocator, and listing the
// known names), an invalid cfg.Range, a cfg.First outside the range for
// "sequential", or a nil cfg.Rand for "random-start".
func New(name string, cfg Config) (Allocator, error) {
	mk, err := registry.lookup(name)
	if err != nil {
		return nil, err
	}
	if err := cfg.Range.Validate(); err != nil {
		return nil, fmt.Errorf("alloc: %s: %w", name, err)
	}
	return mk(cfg)
}

// Names returns the names New accepts, sorted; the slice is the caller's.
func Names() []string { return registry.names() }

// registryOf maps names to constructors of one kind of algorithm (host
// allocators, NAT pickers).
type registryOf[C, T any] struct {
	noun string
	err  error // wrapped by lookup's error for an unknown name
	mk   map[string]func(C) (T, error)
}

// add registers mk under name; registering a name twice is a programming
// error and panics.
func (r *registryOf[C, T]) add(name string, mk func(C) (T, error)) {
	if _, dup := r.mk[name]; dup {
		panic("alloc: " + r.noun + " " + name + " registered twice")
	}
	r.mk[name] = mk
}

// lookup returns the constructor registered under name, or an error
// wrapping r.err that lists the known names.
func (r *registryOf[C, T]) lookup(name string) (func(C) (T, error), error) {
	mk, ok := r.mk[name]
	if !ok {
		return nil, fmt.Errorf("alloc: %w %q (known: %s)", r.err, name, strings.Join(r.names(), ", "))
	}
	return mk, nil
}

// names returns the registered names, sorted.
func (r *registryOf[C, T]) names() []string {
	names := make([]string, 0, len(r.mk))
	for n := range r.mk {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// probeFrom walks r linearly from start (which must lie in r), wrapping from
// High to Low, and returns the first port busy does not report together with
// the number of ports examined, including that one. If every port is busy it
// returns port -1 and probes = r.Size().
//
// The walk is done as two NextFree calls, [start, High] then [Low, start-1],
// so it is word-at-a-time; the probe count is what a port-by-port loop such
// as in_pcb_lport_dest's or ns-3's would have reached.
func probeFrom(r Range, start int, busy Busy) (port, probes int) {
	low, high := int(r.Low), int(r.High)
	if q := busy.NextFree(start, high); q >= 0 {
		if q < start || q > high {
			panicBusy(q, start, high)
		}
		return q, q - start + 1
	}
	if start > low {
		if q := busy.NextFree(low, start-1); q >= 0 {
			if q < low || q >= start {
				panicBusy(q, low, start-1)
			}
			return q, (high - start + 1) + (q - low) + 1
		}
	}
	return -1, r.Size()
}

// panicBusy reports a Busy implementation that broke the NextFree contract;
// handing out such a port would silently break "never out of range".
//
//go:noinline
func panicBusy(q, from, to int) {
	panic(fmt.Sprintf("alloc: Busy.NextFree(%d, %d) returned %d, outside the span", from, to, q))
}
