package nat

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portsim/portsim/alloc"
)

// Mapping is how a NAT reuses an external address and port for one inside
// endpoint (RFC 4787 §4.1).
type Mapping uint8

// Mapping behaviours.
const (
	// AddressAndPortDependent ("symmetric"): a mapping serves one remote
	// address and port; every flow gets its own. The external port is still
	// shared by flows toward different remotes (RFC 7857 §3, port
	// overlapping), because only the external 5-tuple must be unique.
	AddressAndPortDependent Mapping = iota
	// AddressDependent: one mapping per inside endpoint and remote address,
	// whatever the remote port.
	AddressDependent
	// EndpointIndependent: one mapping per inside endpoint for every
	// remote (RFC 4787 REQ-1, RFC 5382 REQ-1). The external port then
	// belongs to that endpoint alone on its external IP.
	EndpointIndependent
)

// Filtering is which inbound packets a NAT lets through to an existing
// mapping (RFC 4787 §5).
type Filtering uint8

// Filtering behaviours.
const (
	AddressAndPortDependentFiltering Filtering = iota // only from a remote ip:port the mapping has contacted
	AddressDependentFiltering                         // from any port of a remote address the mapping has contacted
	EndpointIndependentFiltering                      // from anyone
)

// Pooling is how a NAT with several external IPs picks one for a flow
// (RFC 4787 §4.1 "IP address pooling").
type Pooling uint8

// Pooling behaviours.
const (
	// Paired: every flow of an inside address uses the same external IP
	// (RFC 4787 REQ-2, RFC 6888 REQ-2; Linux --persistent).
	Paired Pooling = iota
	// Arbitrary: the external IP is chosen per flow, from the inside and
	// remote addresses, and a flow that finds it full is dropped (Linux
	// find_best_ips_proto: a hash of source and destination, nat.md §2.7).
	Arbitrary
	// Spread: like Arbitrary, but a flow that finds its IP full tries the
	// others in turn (how a cloud NAT gateway's capacity adds up over its
	// IPs: AWS 8 x 55,000 per destination, nat.md §3.1).
	Spread
	// Fill: the IPs are used one after another; the next one only when the
	// earlier ones cannot take the flow or the inside host's allocation
	// (Azure Load Balancer frontend IPs, nat.md §3.2 and case 14).
	Fill
)

// Allocation is how external ports are handed to inside hosts.
type Allocation uint8

// Allocation schemes.
const (
	// Shared: every flow draws from the IP's whole pool on demand (Linux,
	// AWS and Azure NAT Gateway).
	Shared Allocation = iota
	// Static: each inside address gets PortsPerHost ports on one IP, for
	// good, at its first flow (GCP Cloud NAT minimum ports per VM, Azure
	// Load Balancer preallocation, App Service's 128 per instance).
	Static
	// Dynamic: like Static, starting with PortsPerHost and doubling when
	// the host runs out, up to MaxPortsPerHost (GCP dynamic port
	// allocation, nat.md §3.5).
	Dynamic
	// Blocks: port-block allocation, blocks of BlockSize ports, at most
	// MaxBlocks per inside address, a new block only when the current ones
	// are full, an empty block returned to the pool (Juniper
	// secured-port-block-allocation, nat.md §1.9).
	Blocks
	// Deterministic: RFC 7422 deterministic NAT: the range of each inside
	// address is computed from its position among the inside addresses
	// (FD.io VPP DET44 snat_det_forward, nat.md §1.7).
	Deterministic
)

// Timeouts are how long a NAT keeps a flow's state (its external 5-tuple
// taken) after the flow's last packet, per TCP state and for UDP.
type Timeouts struct {
	// TCPEstablished is the idle timeout of an established TCP flow. The
	// simulator assumes open connections carry traffic, so it never fires
	// there yet; it is kept for the summary and for a model of idle pooled
	// connections.
	TCPEstablished time.Duration
	// TCPTransitory is how long a half-open flow (a SYN that got no answer)
	// is kept.
	TCPTransitory time.Duration
	// TCPTimeWait is how long a flow closed by FINs from both sides is
	// kept (conntrack TIME_WAIT).
	TCPTimeWait time.Duration
	// TCPClose is how long a flow ended by an RST is kept (conntrack
	// CLOSE).
	TCPClose time.Duration
	// UDP is the UDP idle timeout; UDPStream, when > 0, replaces it for a
	// flow that lasted at least UDPStreamAfter (Linux: 30 s unreplied, 120 s
	// stream once older than 2 s, nat.md §2.9).
	UDP, UDPStream, UDPStreamAfter time.Duration
}

// CoolDowns are how long after a flow's state is gone its external port
// stays unusable toward the same destination (Azure NAT Gateway's port
// reuse timers, nat.md §3.3; RFC 6888 REQ-8's 120 s).
type CoolDowns struct {
	FIN, RST, HalfOpen, UDP time.Duration
}

// Forward is a static inbound rule (destination NAT, "port forwarding"):
// packets to ExternalIP:ExternalPort go to Inside.
type Forward struct {
	UDP bool
	// ExternalIP indexes Config.ExternalIPs.
	ExternalIP   int
	ExternalPort uint16
	Inside       netip.AddrPort
}

// PoolStep is one row of a preallocation table: backend pools of up to
// MaxHosts inside addresses get Ports each (Azure Load Balancer default
// SNAT, nat.md §3.2).
type PoolStep struct {
	MaxHosts, Ports int
}

// Config is one NAT middlebox, as a preset gives it and a scenario
// overrides it. Times are time.Duration; port counts are ports; ranges are
// inclusive. Validate checks it.
type Config struct {
	// Preset is the preset's name, "" for a NAT built field by field.
	Preset string
	// ExternalIPs are the public addresses (at least one, one family).
	ExternalIPs []netip.Addr
	// MaxExternalIPs caps len(ExternalIPs) where the vendor does (AWS 8,
	// Azure NAT Gateway 16); 0 means no cap.
	MaxExternalIPs int
	// Mapping applies to TCP and UDPMapping to UDP (they differ on the
	// Azure Load Balancer: TCP per destination ip:port, UDP per destination
	// IP, nat.md §3.2).
	Mapping, UDPMapping Mapping
	Filtering           Filtering
	Pooling             Pooling
	// ReuseMapping: a new flow first tries the external ip:port its inside
	// endpoint already uses (Linux get_unique_tuple's bysource lookup, a
	// best-effort endpoint-independent mapping, nat.md §2.2 step 1b).
	ReuseMapping bool
	// PortPreservation: then try the inside port itself (RFC 4787 §4.2.1;
	// Linux step 3).
	PortPreservation bool
	// PortParity: external ports keep the inside port's parity (RFC 4787
	// REQ-4).
	PortParity bool
	// Mode is the Linux rule's --random / --random-fully flag; any flag
	// skips ReuseMapping and PortPreservation (nat.md §2.2).
	Mode alloc.NATMode
	// Picker names the alloc NAT port picker that searches when the
	// preferences did not settle the port.
	Picker string
	// Ports is the external port pool on each IP.
	Ports alloc.Range
	// PerDestinationCap is the most concurrent flows per external IP toward
	// one destination (proto, address, port); 0 means only the pool limits
	// it.
	PerDestinationCap int
	// MaxFlows is the table size, flows held at once over the NAT; 0 means
	// unlimited. A flow that finds the table full is dropped (RFC 6888
	// REQ-11: existing mappings are not evicted).
	MaxFlows int
	// Allocation and its parameters: PortsPerHost (Static; Dynamic's first
	// allocation; 0 with a PoolTable means "from the table"),
	// MaxPortsPerHost (Dynamic), BlockSize and MaxBlocks (Blocks).
	Allocation      Allocation
	PortsPerHost    int
	MaxPortsPerHost int
	BlockSize       int
	MaxBlocks       int
	// PoolTable gives PortsPerHost by the number of inside addresses when
	// PortsPerHost is 0, in increasing MaxHosts.
	PoolTable []PoolStep
	Timeouts  Timeouts
	CoolDowns CoolDowns
	// ConfirmWindow is how long after a flow's port is chosen its entry
	// becomes visible to other flows' choices (Linux: from
	// get_unique_tuple to __nf_conntrack_confirm). Two flows that choose
	// the same 5-tuple within it both think it free; the later is dropped
	// at confirm (insert_failed, nat.md §2.8). 0: no race.
	ConfirmWindow time.Duration
	// Hairpin: inside hosts can reach an external address and forwarded
	// port of this NAT, translated both ways (RFC 4787 REQ-9, RFC 5382
	// REQ-8).
	Hairpin bool
	// Forwards are the static inbound rules.
	Forwards []Forward
	// Notes name the source of each number and the assumptions, for the
	// summary and `portsim scenarios`.
	Notes []string
}

// FieldError is a Config field with an invalid value. Field is the YAML
// spelling (e.g. "per_destination_cap"), so a scenario error can point at
// it.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

func fieldErr(field, format string, a ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, a...)}
}

// ProtoMapping returns the mapping behaviour for TCP (udp false) or UDP.
func (c *Config) ProtoMapping(udp bool) Mapping {
	if udp {
		return c.UDPMapping
	}
	return c.Mapping
}

// Validate checks c for insideCount inside addresses and returns a
// *FieldError naming the first offending field.
func (c *Config) Validate(insideCount int) error {
	if len(c.ExternalIPs) == 0 {
		return fieldErr("external_ips", "a NAT needs at least one external IP")
	}
	if c.MaxExternalIPs > 0 && len(c.ExternalIPs) > c.MaxExternalIPs {
		return fieldErr("external_ips", "%d external IPs; %s takes at most %d", len(c.ExternalIPs), c.Preset, c.MaxExternalIPs)
	}
	seen := map[netip.Addr]bool{}
	for _, a := range c.ExternalIPs {
		if seen[a] {
			return fieldErr("external_ips", "duplicate address %v", a)
		}
		if a.Is4() != c.ExternalIPs[0].Is4() {
			return fieldErr("external_ips", "%v and %v: one address family per NAT", c.ExternalIPs[0], a)
		}
		seen[a] = true
	}
	if err := c.Ports.Validate(); err != nil {
		return fieldErr("ports", "%v", err)
	}
	if c.Ports.Low == 0 {
		return fieldErr("ports", "port 0 is not a port; start at 1 or above")
	}
	if !slices.Contains(alloc.NATPickerNames(), c.Picker) {
		return fieldErr("picker", "unknown NAT port picker %q (known: %s)", c.Picker, strings.Join(alloc.NATPickerNames(), ", "))
	}
	if c.PerDestinationCap < 0 {
		return fieldErr("per_destination_cap", "must be >= 0")
	}
	if c.MaxFlows < 0 {
		return fieldErr("max_flows", "must be >= 0")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"timeouts.tcp_established", c.Timeouts.TCPEstablished}, {"timeouts.tcp_transitory", c.Timeouts.TCPTransitory},
		{"timeouts.tcp_time_wait", c.Timeouts.TCPTimeWait}, {"timeouts.tcp_close", c.Timeouts.TCPClose},
		{"timeouts.udp", c.Timeouts.UDP}, {"timeouts.udp_stream", c.Timeouts.UDPStream}, {"timeouts.udp_stream_after", c.Timeouts.UDPStreamAfter},
		{"cool_down.fin", c.CoolDowns.FIN}, {"cool_down.rst", c.CoolDowns.RST}, {"cool_down.half_open", c.CoolDowns.HalfOpen},
		{"cool_down.udp", c.CoolDowns.UDP}, {"confirm_window", c.ConfirmWindow},
	} {
		if d.v < 0 {
			return fieldErr(d.name, "must be >= 0, got %v", d.v)
		}
	}
	if c.Timeouts.TCPEstablished <= 0 || c.Timeouts.UDP <= 0 {
		return fieldErr("timeouts", "tcp_established and udp must be > 0")
	}
	pool := c.Ports.Size()
	if err := c.vendorRules(); err != nil {
		return err
	}
	switch c.Allocation {
	case Static, Dynamic:
		if c.PortsPerHost == 0 && len(c.PoolTable) == 0 {
			return fieldErr("ports_per_host", "must be > 0")
		}
		if c.PortsPerHost < 0 || c.PortsPerHost > pool {
			return fieldErr("ports_per_host", "%d is not between 1 and the pool's %d ports", c.PortsPerHost, pool)
		}
		if c.Allocation == Dynamic && (c.MaxPortsPerHost < c.PortsPerHost || c.MaxPortsPerHost > 65536) {
			return fieldErr("max_ports_per_host", "%d must lie between ports_per_host (%d) and 65536", c.MaxPortsPerHost, c.PortsPerHost)
		}
	case Blocks:
		if c.BlockSize <= 0 || c.BlockSize > pool {
			return fieldErr("block_size", "%d is not between 1 and the pool's %d ports", c.BlockSize, pool)
		}
		if c.MaxBlocks <= 0 {
			return fieldErr("max_blocks", "must be > 0")
		}
	case Deterministic:
		if c.Pooling != Paired {
			return fieldErr("pooling", "deterministic NAT fixes each inside address's IP: pooling must be paired")
		}
		if insideCount > 0 && insideCount > pool*len(c.ExternalIPs) {
			return fieldErr("inside", "%d inside addresses cannot each get a port of %d external IPs x %d ports", insideCount, len(c.ExternalIPs), pool)
		}
	}
	for i, f := range c.Forwards {
		name := "forwards." + strconv.Itoa(i)
		if f.ExternalIP < 0 || f.ExternalIP >= len(c.ExternalIPs) {
			return fieldErr(name+".external_ip", "not one of the NAT's external IPs")
		}
		if f.ExternalPort == 0 || !f.Inside.IsValid() || f.Inside.Port() == 0 {
			return fieldErr(name, "needs an external port and an inside ip:port")
		}
		for _, g := range c.Forwards[:i] {
			if g.UDP == f.UDP && g.ExternalIP == f.ExternalIP && g.ExternalPort == f.ExternalPort {
				return fieldErr(name+".external_port", "port %d is forwarded twice", f.ExternalPort)
			}
		}
	}
	return nil
}

// vendorRules are the checks a vendor's API makes on its own knobs.
func (c *Config) vendorRules() error {
	switch c.Preset {
	case PresetGCPCloudNAT:
		// RouterNat API: minPortsPerVm and maxPortsPerVm are powers of
		// two; dynamic port allocation and endpoint-independent mapping
		// exclude each other (nat.md §3.5).
		if c.PortsPerHost&(c.PortsPerHost-1) != 0 {
			return fieldErr("ports_per_host", "%d is not a power of two; Cloud NAT rounds min_ports_per_vm up to one (write %d)", c.PortsPerHost, nextPow2(c.PortsPerHost))
		}
		if c.Allocation == Dynamic && c.MaxPortsPerHost&(c.MaxPortsPerHost-1) != 0 {
			return fieldErr("max_ports_per_host", "%d is not a power of two", c.MaxPortsPerHost)
		}
		if c.Allocation == Dynamic && (c.Mapping == EndpointIndependent || c.UDPMapping == EndpointIndependent) {
			return fieldErr("allocation", "Cloud NAT's dynamic port allocation cannot be combined with endpoint-independent mapping")
		}
	case PresetAzureLBOutbound:
		// Outbound rules allocate ports in multiples of 8 (nat.md §3.2).
		if c.PortsPerHost%8 != 0 {
			return fieldErr("ports_per_host", "%d is not a multiple of 8, as Azure outbound rules require", c.PortsPerHost)
		}
	}
	return nil
}

func nextPow2(n int) int {
	p := 1
	for p < n {
		p <<= 1
	}
	return p
}
