package nat

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/portsim/portsim/alloc"
)

// Preset names.
const (
	PresetLinuxMasquerade  = "linux-masquerade"
	PresetAWSNATGateway    = "aws-nat-gateway"
	PresetAzureNATGateway  = "azure-nat-gateway"
	PresetAzureLBOutbound  = "azure-lb-outbound"
	PresetAzureAppService  = "azure-app-service"
	PresetGCPCloudNAT      = "gcp-cloud-nat"
	PresetCGNPortBlock     = "cgn-port-block"
	PresetCGNDeterministic = "cgn-deterministic"
)

// rfc5382Established and rfc5382Transitory are the shortest idle timeouts
// RFC 5382 REQ-5 allows (2 h 4 min, 4 min); rfc4787UDP is RFC 4787
// REQ-5c's recommended UDP default (5 min). nat.md §1.1-1.2.
const (
	rfc5382Established = 2*time.Hour + 4*time.Minute
	rfc5382Transitory  = 4 * time.Minute
	rfc4787UDP         = 5 * time.Minute
)

// presets builds each preset. Every number carries its source in
// ../shared/reference/nat.md; numbers a vendor does not document are stated
// as assumptions in Notes.
var presets = map[string]func() Config{
	PresetLinuxMasquerade: func() Config {
		return Config{
			Mapping: AddressAndPortDependent, UDPMapping: AddressAndPortDependent,
			Filtering: AddressAndPortDependentFiltering, Pooling: Arbitrary,
			ReuseMapping: true, PortPreservation: true,
			Picker: alloc.NATPickerNetfilter,
			Ports:  alloc.Range{Low: 1024, High: 65535},
			// nf_conntrack_max = nf_conntrack_buckets, at most 262,144.
			MaxFlows: 262144,
			Timeouts: Timeouts{
				TCPEstablished: 432000 * time.Second, TCPTransitory: 120 * time.Second,
				TCPTimeWait: 120 * time.Second, TCPClose: 10 * time.Second,
				UDP: 30 * time.Second, UDPStream: 120 * time.Second, UDPStreamAfter: 2 * time.Second,
			},
			Hairpin: true,
			Notes: []string{
				"get_unique_tuple (nf_nat_core.c): keep the inside endpoint's mapping if its tuple is free, else the inside port, else the search (nat.md §2.2)",
				"search: random start, windows of 128/64/32/16/8 ports, at most 248 probes (Linux 5.0+, commit a504b703bb1d, nat.md §2.3)",
				"pool 1024-65535 for inside ports >= 1024, ip_local_port_range is ignored (nf_nat_l4proto_unique_tuple, nat.md §2.3)",
				"one IP per (source, destination) by hash, no fallback (find_best_ips_proto, nat.md §2.7)",
				"conntrack timeouts: ESTABLISHED 432000 s, SYN_SENT 120 s, TIME_WAIT 120 s, CLOSE 10 s, UDP 30 s / 120 s stream (nf_conntrack-sysctl.rst, nat.md §2.9)",
				"assumption: max_flows 262144, nf_conntrack_max on a host with at least 4 GiB (buckets = RAM/16384, at most 262,144, nat.md §2.10)",
				"assumption: hairpin on (RFC 4787 REQ-9; on Linux it needs a MASQUERADE rule on the inside interface, which router distributions add)",
				"assumption: confirm_window 0 (no insert race) unless set; the kernel's window is microseconds and needs several CPUs (nat.md §2.8)",
				"not modelled: early_drop of non-ASSURED entries when the table is full (nat.md §2.10); a full table drops the new flow",
			},
		}
	},
	PresetAWSNATGateway: func() Config {
		return Config{
			MaxExternalIPs: 8,
			Mapping:        AddressAndPortDependent, UDPMapping: AddressAndPortDependent,
			Filtering: AddressAndPortDependentFiltering, Pooling: Spread,
			Picker:            alloc.NATPickerRandom,
			Ports:             alloc.Range{Low: 1024, High: 65535},
			PerDestinationCap: 55000,
			Timeouts: Timeouts{
				TCPEstablished: 350 * time.Second, TCPTransitory: 350 * time.Second,
				UDP: 350 * time.Second,
			},
			Notes: []string{
				"55,000 concurrent connections per external IP per destination (ip, port, protocol); up to 8 IPs = 440,000 (AWS re:Post vpc-resolve-port-allocation-errors, AWS blog, nat.md §3.1)",
				"idle timeout 350 s, fixed (AWS networking blog, nat.md §3.1); a drop is ErrorPortAllocation",
				"assumption: ports 1024-65535 (the NACL range AWS asks for), random port choice, no hold after close, mapping and filtering per 5-tuple: AWS documents none of these (nat.md §3.1, §5)",
				"assumption: UDP and half-open flows also idle out at 350 s",
			},
		}
	},
	PresetAzureNATGateway: func() Config {
		return Config{
			MaxExternalIPs: 16,
			Mapping:        AddressAndPortDependent, UDPMapping: AddressAndPortDependent,
			Filtering: AddressAndPortDependentFiltering, Pooling: Spread,
			Picker:            alloc.NATPickerRandom,
			Ports:             alloc.Range{Low: 1024, High: 65535},
			PerDestinationCap: 50000,
			MaxFlows:          2000000,
			Timeouts: Timeouts{
				TCPEstablished: 4 * time.Minute, UDP: 4 * time.Minute,
			},
			CoolDowns: CoolDowns{FIN: 65 * time.Second, RST: 16 * time.Second, HalfOpen: 30 * time.Second, UDP: 65 * time.Second},
			Notes: []string{
				"64,512 SNAT ports per public IP, up to 16 IPs, ports chosen at random, 50,000 concurrent flows per IP to one destination, 2 M flows (nat-gateway-resource.md, nat.md §3.3)",
				"port reuse toward the same destination after a cool-down: FIN 65 s, RST 16 s, half-open 30 s, UDP 65 s; idle TCP 4 min (4-120), UDP 4 min (nat-gateway-snat.md, nat.md §3.3)",
				"assumption: mapping and filtering per 5-tuple; Microsoft documents neither",
				"assumption: the random choice is among the ports free toward the destination; Azure documents a preference for ports no destination uses, which changes port overlap but not when exhaustion comes",
			},
		}
	},
	PresetAzureLBOutbound: func() Config {
		return Config{
			Mapping: AddressAndPortDependent, UDPMapping: AddressDependent,
			Filtering: AddressAndPortDependentFiltering, Pooling: Fill,
			Picker:     alloc.NATPickerRandom,
			Ports:      alloc.Range{Low: 1024, High: 65023},
			Allocation: Static,
			PoolTable: []PoolStep{
				{MaxHosts: 50, Ports: 1024}, {MaxHosts: 100, Ports: 512}, {MaxHosts: 200, Ports: 256},
				{MaxHosts: 400, Ports: 128}, {MaxHosts: 800, Ports: 64}, {MaxHosts: 1000, Ports: 32},
			},
			Timeouts: Timeouts{
				TCPEstablished: 4 * time.Minute, TCPTransitory: 4 * time.Minute, UDP: 4 * time.Minute,
			},
			CoolDowns: CoolDowns{FIN: 4 * time.Minute, RST: 4 * time.Minute},
			Notes: []string{
				"64,000 SNAT ports per frontend IP, preallocated per VM by backend pool size: 1-50 VMs 1,024; 51-100 512; 101-200 256; 201-400 128; 401-800 64; 801-1,000 32; manual allocations in multiples of 8 (load-balancer-outbound-connections.md, outbound-rules.md, nat.md §3.2)",
				"frontend IPs are used one after another (nat.md §3.2, MicrosoftDocs issue 81893); TCP one port per destination ip:port, UDP one per destination IP",
				"idle timeout 4 min (4-120 min) (nat.md §3.2)",
				"assumption: a closed flow's port returns after the 4-min idle timeout (AKS issue 4697: ports stay allocated after close until idle timeout, nat.md §4 case 13)",
				"assumption: the 64,000 ports are 1024-65023; which ports Azure uses is not documented",
				"inside hosts beyond what the frontend IPs can preallocate get no ports and every flow of theirs is dropped (Azure rejects such a configuration)",
			},
		}
	},
	PresetAzureAppService: func() Config {
		return Config{
			Mapping: AddressAndPortDependent, UDPMapping: AddressAndPortDependent,
			Filtering: AddressAndPortDependentFiltering, Pooling: Fill,
			Picker:       alloc.NATPickerRandom,
			Ports:        alloc.Range{Low: 1024, High: 65023},
			Allocation:   Static,
			PortsPerHost: 128,
			Timeouts: Timeouts{
				TCPEstablished: 4 * time.Minute, TCPTransitory: 4 * time.Minute, UDP: 4 * time.Minute,
			},
			CoolDowns: CoolDowns{FIN: 4 * time.Minute, RST: 4 * time.Minute, HalfOpen: 4 * time.Minute, UDP: 4 * time.Minute},
			Notes: []string{
				"128 preallocated SNAT ports per instance, one per concurrent connection to the same address:port, reclaimed 4 min after close (troubleshoot-intermittent-outbound-connection-errors, nat.md §3.4)",
				"assumption: the instances share a load balancer frontend of 64,000 ports (1024-65023)",
			},
		}
	},
	PresetGCPCloudNAT: func() Config {
		return Config{
			Mapping: AddressAndPortDependent, UDPMapping: AddressAndPortDependent,
			Filtering: AddressAndPortDependentFiltering, Pooling: Fill,
			Picker:          alloc.NATPickerRandom,
			Ports:           alloc.Range{Low: 1024, High: 65535},
			Allocation:      Static,
			PortsPerHost:    64,
			MaxPortsPerHost: 65536,
			Timeouts: Timeouts{
				TCPEstablished: 1200 * time.Second, TCPTransitory: 30 * time.Second,
				TCPTimeWait: 120 * time.Second, TCPClose: 30 * time.Second, UDP: 30 * time.Second,
			},
			Notes: []string{
				"timeouts: UDP 30 s, TCP established 1,200 s, transitory 30 s, TIME_WAIT 120 s (RouterNat API field text, nat.md §3.5)",
				"static allocation, 64 minimum ports per VM, a power of two (gardener issue 445 [secondary source]; API rounds up to a power of 2, nat.md §3.5)",
				"dynamic port allocation: minimum 32, maximum 65,536, powers of two; exclusive with endpoint-independent mapping (RouterNat API, nat.md §3.5)",
				"64,512 ports per NAT IP (secondary sources, nat.md §3.5); a drop is OUT_OF_RESOURCES, or ENDPOINT_INDEPENDENCE_CONFLICT under endpoint-independent mapping",
				"assumption: endpoint-independent mapping off; its current default for new gateways is not confirmed (nat.md §5)",
				"assumption: a flow ended by an RST is kept for the transitory 30 s; random port choice within the VM's ports",
				"for dynamic port allocation set allocation: dynamic with ports_per_host 32 (GCP's default minimum) and max_ports_per_host 65536",
			},
		}
	},
	PresetCGNPortBlock: func() Config {
		return Config{
			Mapping: EndpointIndependent, UDPMapping: EndpointIndependent,
			Filtering: EndpointIndependentFiltering, Pooling: Paired,
			Picker:     alloc.NATPickerRandom,
			Ports:      alloc.Range{Low: 1024, High: 65535},
			Allocation: Blocks,
			BlockSize:  128,
			MaxBlocks:  8,
			Timeouts: Timeouts{
				TCPEstablished: rfc5382Established, TCPTransitory: rfc5382Transitory,
				TCPTimeWait: rfc5382Transitory, TCPClose: rfc5382Transitory, UDP: rfc4787UDP,
			},
			CoolDowns: CoolDowns{FIN: 120 * time.Second, RST: 120 * time.Second, HalfOpen: 120 * time.Second, UDP: 120 * time.Second},
			Notes: []string{
				"port blocks of 128, at most 8 per subscriber, ports 1024-65535 only, paired pooling (Juniper secured-port-block-allocation defaults, nat.md §1.9)",
				"endpoint-independent mapping (RFC 4787 REQ-1, RFC 5382 REQ-1) and filtering (RFC 6888 REQ-7); a freed port waits 120 s (RFC 6888 REQ-8)",
				"timeouts at the RFC floors: TCP established 2 h 4 min, transitory 4 min (RFC 5382 REQ-5), UDP 5 min (RFC 4787 REQ-5c)",
				"assumption: random port choice inside a block (RFC 6888 REQ-15, hard to guess); the lowest free block on the subscriber's IP",
			},
		}
	},
	PresetCGNDeterministic: func() Config {
		return Config{
			Mapping: EndpointIndependent, UDPMapping: EndpointIndependent,
			Filtering: EndpointIndependentFiltering, Pooling: Paired,
			Picker:     alloc.NATPickerSequential,
			Ports:      alloc.Range{Low: 1024, High: 65535},
			Allocation: Deterministic,
			Timeouts: Timeouts{
				TCPEstablished: rfc5382Established, TCPTransitory: rfc5382Transitory,
				TCPTimeWait: rfc5382Transitory, TCPClose: rfc5382Transitory, UDP: rfc4787UDP,
			},
			Notes: []string{
				"RFC 7422 deterministic NAT as in FD.io VPP DET44: ratio = inside / outside addresses, 64,512 / ratio ports per inside address, outside address = k / ratio, first port 1024 + ports x (k mod ratio) (nat.md §1.7)",
				"timeouts at the RFC floors: TCP established 2 h 4 min, transitory 4 min (RFC 5382 REQ-5), UDP 5 min (RFC 4787 REQ-5c)",
				"assumption: ports taken in order inside the range from one cursor; DET44 starts each search at the inside port modulo the range (det44_in2out.c), which changes which port, not how many",
			},
		}
	},
}

// PresetNames returns the preset names, sorted.
func PresetNames() []string {
	names := make([]string, 0, len(presets))
	for n := range presets {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Preset returns the named preset's Config (without ExternalIPs, which the
// scenario gives). The Config is the caller's to change.
//
// Errors: an unknown name, listing the known ones.
func Preset(name string) (Config, error) {
	mk, ok := presets[name]
	if !ok {
		return Config{}, fmt.Errorf("unknown NAT preset %q (known: %s)", name, strings.Join(PresetNames(), ", "))
	}
	c := mk()
	c.Preset = name
	return c, nil
}
