package plan

import (
	"fmt"
	"math"
	"net/netip"
	"slices"

	"github.com/portsim/portsim/alloc"
	"github.com/portsim/portsim/scenarios"
)

// remedy is one standard fix: what it changes in the scenario (apply
// reports false when it does not apply to this scenario) and its caveat.
type remedy struct {
	name   string
	change string
	caveat string
	// protocol: the fix changes the application or the protocol, not only
	// the configuration; the combined remedy leaves those out.
	protocol bool
	apply    func(s *scenarios.Scenario, w int) bool
}

// Sizes of the remedies that add things.
const (
	addSources      = 4 // source addresses in all
	addDestinations = 4 // destination addresses in all
	natIPFactor     = 2 // NAT external IPs, times
	natPortsFactor  = 4 // NAT ports per inside host, times
)

// wideRange is the widest range Linux accepts for ip_local_port_range
// above the well-known ports (os-semantics.md §1).
var wideRange = alloc.Range{Low: 1024, High: 65535}

// remedies lists the standard fixes, in the order they are tried (and
// combined: destinations come before the source split, so that the split
// copies of a workload get every destination). pool is the keep-alive
// pool size to try.
func remedies(pool int) []remedy {
	return []remedy{
		{
			name:   "widen the ephemeral range",
			change: "the ephemeral range 1024-65535 (ip_local_port_range on Linux)",
			caveat: "ports 1024-32767 may then clash with listening services: list them in ip_local_reserved_ports",
			apply: func(s *scenarios.Scenario, w int) bool {
				p := &s.Hosts[s.Workloads[w].From].Profile
				if p.Family == "windows" || p.PortRange == wideRange || s.Workloads[w].Socket == scenarios.PortRange {
					return false // Windows' lowest start is 1025; a per-socket range ignores the host's
				}
				p.SetPortRange(wideRange)
				return true
			},
		},
		{
			name:   "add destination addresses",
			change: fmt.Sprintf("%d destinations in all (the addresses after the first one's, same port)", addDestinations),
			caveat: "the service must answer on the extra addresses (more VIPs or backends); helps only where connect() shares a port across destinations (Linux, FreeBSD; not Windows without SO_REUSE_UNICASTPORT, nor bind-before-connect)",
			apply:  func(s *scenarios.Scenario, w int) bool { return addDests(s, w, addDestinations) },
		},
		{
			name:   "add source addresses",
			change: fmt.Sprintf("%d source addresses, connections spread evenly", addSources),
			caveat: "the addresses must be configured on the host and each connection bound to one (IP_BIND_ADDRESS_NO_PORT before bind(), or the proxy's source-address list)",
			apply:  func(s *scenarios.Scenario, w int) bool { return splitSources(s, w, addSources) },
		},
		{
			name:   "enable tcp_tw_reuse",
			change: "net.ipv4.tcp_tw_reuse=1, tcp_timestamps=1",
			caveat: "connect() may take over a TIME_WAIT port toward the same destination after tcp_tw_reuse_delay (1 s); safe only with TCP timestamps on both ends (PAWS, RFC 7323), and it does nothing for the server side or for a NAT in front",
			apply: func(s *scenarios.Scenario, w int) bool {
				p := &s.Hosts[s.Workloads[w].From].Profile
				if p.Family != "linux" || (p.TCPTwReuse == 1 && p.TCPTimestamps) || s.Workloads[w].Socket.UDP() {
					return false
				}
				p.TCPTwReuse, p.TCPTimestamps = 1, true
				return true
			},
		},
		{
			name:     "let the server close first",
			change:   "every connection closed by the server",
			caveat:   "the server keeps the TIME_WAIT instead (memory, not ports, since its side of the 4-tuple is the listening port); needs the protocol to let the server close (HTTP Connection: close from the server)",
			protocol: true,
			apply: func(s *scenarios.Scenario, w int) bool {
				c := &s.Workloads[w].Close
				if c.Server == 1 || s.Workloads[w].Socket.UDP() {
					return false
				}
				*c = scenarios.CloseMix{Server: 1}
				return true
			},
		},
		{
			name:     "SO_LINGER 0 (abortive close)",
			change:   "every connection closed with an RST",
			caveat:   "risky: data not yet delivered is lost, the peer sees ECONNRESET, and without TIME_WAIT a delayed segment of the old connection may corrupt a new one on the same 4-tuple (RFC 1337)",
			protocol: true,
			apply: func(s *scenarios.Scenario, w int) bool {
				c := &s.Workloads[w].Close
				if c.RST == 1 || s.Workloads[w].Socket.UDP() {
					return false
				}
				*c = scenarios.CloseMix{RST: 1}
				return true
			},
		},
		{
			name:     "reuse connections (keep-alive pool)",
			change:   fmt.Sprintf("a keep-alive pool of %d connections per destination", pool),
			caveat:   "idle pooled connections hold their ports (and NAT mappings) and may be cut by idle timeouts on the way (NATs, load balancers), which the simulation does not model",
			protocol: true,
			apply: func(s *scenarios.Scenario, w int) bool {
				wl := &s.Workloads[w]
				if wl.Pool >= pool || wl.Socket.UDP() {
					return false
				}
				wl.Pool = pool
				return true
			},
		},
		{
			name:   "add NAT IPs",
			change: fmt.Sprintf("%d times the NAT's external IPs, within the preset's maximum", natIPFactor),
			caveat: "more public addresses to allow-list at the destinations; endpoint-independent mappings and per-VM allocations spread over them as the NAT's pooling decides",
			apply:  func(s *scenarios.Scenario, w int) bool { return moreNATIPs(s, w, natIPFactor) },
		},
		{
			name:   "raise the NAT ports per host",
			change: fmt.Sprintf("%d times the NAT's ports per inside host", natPortsFactor),
			caveat: "fewer hosts fit behind each NAT IP: the pool is divided into bigger shares",
			apply:  func(s *scenarios.Scenario, w int) bool { return moreNATPorts(s, w, natPortsFactor) },
		},
	}
}

// splitSources gives workload w's host n source addresses in all (the next
// ones after the workload's source) and splits the workload into n, one
// per source, each with 1/n of the rate.
func splitSources(s *scenarios.Scenario, w, n int) bool {
	wl := s.Workloads[w]
	if wl.Socket == scenarios.BindConnect {
		return false // bind() locks a port per source whatever: the same fix, but the model splits per workload
	}
	h := &s.Hosts[wl.From]
	addrs := []netip.Addr{wl.Source}
	for a := wl.Source.Next(); len(addrs) < n && a.IsValid(); a = a.Next() {
		if !addressTaken(s, a) {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) < n {
		return false
	}
	for _, a := range addrs[1:] {
		h.Addresses = append(h.Addresses, a)
	}
	scale(&s.Workloads[w].Arrival, 1/float64(n))
	for i, a := range addrs[1:] {
		c := wl
		c.Name = fmt.Sprintf("%s#src%d", wl.Name, i+2)
		c.Source = a
		c.To = slices.Clone(wl.To)
		scale(&c.Arrival, 1/float64(n))
		s.Workloads = append(s.Workloads, c)
	}
	return true
}

// addressTaken reports whether a is in use in the scenario: an address of
// a host, a NAT's external IP or a workload's destination.
func addressTaken(s *scenarios.Scenario, a netip.Addr) bool {
	for _, h := range s.Hosts {
		if slices.Contains(h.Addresses, a) {
			return true
		}
	}
	for _, n := range s.NATs {
		if slices.Contains(n.Config.ExternalIPs, a) {
			return true
		}
	}
	for _, wl := range s.Workloads {
		for _, d := range wl.To {
			if d.Addr() == a {
				return true
			}
		}
	}
	return false
}

// addDests gives workload w n destinations in all: its own, then the
// addresses after its first destination's, on that port, used
// round-robin.
func addDests(s *scenarios.Scenario, w, n int) bool {
	wl := &s.Workloads[w]
	if len(wl.To) >= n {
		return false
	}
	first := wl.To[0]
	to := slices.Clone(wl.To)
	for a := first.Addr().Next(); len(to) < n && a.IsValid(); a = a.Next() {
		if d := netip.AddrPortFrom(a, first.Port()); !addressTaken(s, a) && !slices.Contains(to, d) {
			to = append(to, d)
		}
	}
	if len(to) < n {
		return false
	}
	wl.To = to
	return true
}

// natOf returns the NAT workload w's host is behind, or nil.
func natOf(s *scenarios.Scenario, w int) *scenarios.NAT {
	for k := range s.NATs {
		if slices.Contains(s.NATs[k].Inside, s.Workloads[w].From) {
			return &s.NATs[k]
		}
	}
	return nil
}

// moreNATIPs multiplies the external IPs of the NAT in front of workload w
// by f (new addresses after the last), within the preset's maximum.
func moreNATIPs(s *scenarios.Scenario, w, f int) bool {
	n := natOf(s, w)
	if n == nil {
		return false
	}
	c := &n.Config
	want := len(c.ExternalIPs) * f
	if c.MaxExternalIPs > 0 {
		want = min(want, c.MaxExternalIPs)
	}
	had := len(c.ExternalIPs)
	last := c.ExternalIPs[had-1]
	for a := last.Next(); len(c.ExternalIPs) < want && a.IsValid(); a = a.Next() {
		if !addressTaken(s, a) {
			c.ExternalIPs = append(c.ExternalIPs, a)
		}
	}
	return len(c.ExternalIPs) > had
}

// moreNATPorts multiplies the ports per inside host of the NAT in front of
// workload w by f, where the NAT allocates per host, up to the pool.
func moreNATPorts(s *scenarios.Scenario, w, f int) bool {
	n := natOf(s, w)
	if n == nil || n.Config.PortsPerHost == 0 {
		return false
	}
	c := &n.Config
	pool := int(c.Ports.High) - int(c.Ports.Low) + 1
	v := min(c.PortsPerHost*f, pool)
	if v == c.PortsPerHost {
		return false
	}
	next := *c
	next.PortsPerHost = v
	next.MaxPortsPerHost = max(c.MaxPortsPerHost, v)
	inside := 0
	for _, h := range n.Inside {
		inside += len(s.Hosts[h].Addresses)
	}
	if err := next.Validate(inside); err != nil {
		return false // a vendor rule (powers of two, multiples of 8) refuses it
	}
	*c = next
	return true
}

// scale multiplies an arrival process's rates by f.
func scale(a *scenarios.Arrival, f float64) {
	a.Rate *= f
	a.RateTo *= f
}

// poolSize is the keep-alive pool tried: twice the mean number of requests
// in flight per destination (Little's law: rate x time in flight) at rate
// (connections per second) with holdS seconds in flight, at least 2.
func poolSize(rate, holdS float64, dests int) int {
	return max(2, int(math.Ceil(2*rate*holdS/float64(max(dests, 1)))))
}
