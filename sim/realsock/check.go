package realsock

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/portsim/portsim/scenarios"
	"github.com/portsim/portsim/sim"
)

// ErrNeedsLinux is returned on every other OS: the real-socket backend
// drives the Linux stack.
var ErrNeedsLinux = errors.New("crosscheck needs Linux: it runs the scenario on the Linux kernel's own sockets")

// ErrLeftovers is returned by a host-loopback run that finds sockets of an
// earlier run on the scenario's 4-tuples.
var ErrLeftovers = errors.New("host loopback is not clean")

// DefaultMaxDuration bounds how long a scenario may run on real sockets
// (it runs in real time, once per host).
const DefaultMaxDuration = 2 * time.Minute

// Isolation is where a real run's sockets live.
type Isolation uint8

// Isolation modes.
const (
	// Auto uses Namespace as root and HostLoopback otherwise.
	Auto Isolation = iota
	// Namespace runs each host in a fresh network namespace with the
	// host's profile written to that namespace's sysctls (needs root).
	Namespace
	// HostLoopback runs on the machine's own loopback, sysctls untouched,
	// each socket's range narrowed with IP_LOCAL_PORT_RANGE (Linux 6.3+).
	HostLoopback
)

// String names the mode as the report prints it.
func (i Isolation) String() string {
	switch i {
	case Namespace:
		return "private network namespace"
	case HostLoopback:
		return "host loopback (IP_LOCAL_PORT_RANGE)"
	default:
		return "auto"
	}
}

// Options tune a real run.
type Options struct {
	Isolation Isolation
	// MaxDuration refuses longer scenarios; 0 means DefaultMaxDuration.
	MaxDuration time.Duration
}

// Report is what a real run observed: its Result (the simulator's schema,
// counters filled from the kernel; Events and ProbesPerAlloc stay zero, the
// kernel does not report them) and how it ran.
type Report struct {
	Result    *sim.Result
	Isolation Isolation
	// Kernel is the running kernel's release (uname -r).
	Kernel string
	// Notes say what the run could not do as the scenario asks (settings
	// not applied, a connect() bound to a non-default source address).
	Notes []string
	// MaxLag is the largest delay between an action's planned time and
	// the moment it ran: the real-time schedule's accuracy.
	MaxLag time.Duration
}

// Check reports why s cannot run on real sockets, or nil: every host must be
// Linux as this kernel is (os linux or host), every address and
// destination on loopback (127.0.0.0/8 or ::1), no server restarts, no NAT, and the
// run no longer than maxDuration (0: DefaultMaxDuration).
func Check(s *scenarios.Scenario, maxDuration time.Duration) error {
	if maxDuration <= 0 {
		maxDuration = DefaultMaxDuration
	}
	if s.Duration > maxDuration {
		return fmt.Errorf("%s: duration %v is longer than the %v a real run may take (it runs in real time, once per host; see --max-duration)", s.Name, s.Duration, maxDuration)
	}
	for _, h := range s.Hosts {
		if h.OS != "linux" && h.OS != "host" {
			return fmt.Errorf("%s: host %s has os %q; the kernel here is Linux, so only os linux (the current kernel's preset) or host can be cross-checked", s.Name, h.Name, h.OS)
		}
		for _, a := range h.Addresses {
			if !loopback(a) {
				return fmt.Errorf("%s: host %s address %v is not on loopback; crosscheck sends traffic only to 127.0.0.0/8 and ::1", s.Name, h.Name, a)
			}
		}
	}
	for _, w := range s.Workloads {
		if w.Pool > 0 {
			return fmt.Errorf("%s: workload %s has a keep-alive pool; crosscheck opens one connection per arrival and does not replay pools", s.Name, w.Name)
		}
		for _, d := range w.To {
			if !loopback(d.Addr()) {
				return fmt.Errorf("%s: workload %s destination %v is not on loopback; crosscheck sends traffic only to 127.0.0.0/8 and ::1", s.Name, w.Name, d)
			}
		}
	}
	if len(s.NATs) > 0 {
		return fmt.Errorf("%s: NAT %s: crosscheck does not build NAT middleboxes on the kernel; NATs are simulated only", s.Name, s.NATs[0].Name)
	}
	for _, sv := range s.Servers {
		if len(sv.Restarts) > 0 {
			return fmt.Errorf("%s: server %s restarts; crosscheck does not replay server restarts", s.Name, sv.Name)
		}
		if a := sv.Listen.Addr(); !a.IsUnspecified() && !loopback(a) {
			return fmt.Errorf("%s: server %s listens on %v, not on loopback", s.Name, sv.Name, sv.Listen)
		}
	}
	return nil
}

// loopback reports whether a is 127.0.0.0/8 or ::1 (an IPv4-mapped
// address is unmapped first).
func loopback(a netip.Addr) bool { return a.Unmap().IsLoopback() }
