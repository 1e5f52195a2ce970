package scenarios

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portsim/portsim/alloc"
	"github.com/portsim/portsim/sim/nat"
)

// natBase is a valid scenario with a counted host and a NAT; the NAT test
// cases change or add lines. Line numbers matter: the expected errors name
// them.
const natBase = `name: n
duration: 60s
hosts:
  - name: pod
    count: 3
    os: linux
    addresses: [10.1.0.1]
  - name: vm
    os: linux
    addresses: [10.2.0.1, "fd00::1"]
workloads:
  - name: api
    from: pod
    to: ["203.0.113.10:443"]
    arrival: {process: constant, rate: 10}
    hold: {dist: fixed, value: 10ms}
    close: client
nats:
  - name: gw
    preset: linux-masquerade
    external_ips: 2
    inside: [pod, vm]
`

// natEdit returns natBase with old replaced by new; old must occur once.
func natEdit(t testing.TB, old, new string) string {
	t.Helper()
	require.Equal(t, 1, strings.Count(natBase, old), "edit target %q", old)
	return strings.Replace(natBase, old, new, 1)
}

// natWith returns natBase with lines added to the NAT entry (from line 23).
func natWith(lines ...string) string {
	return natBase + strings.Join(lines, "\n") + "\n"
}

// nat0 parses src and returns its first NAT.
func nat0(t *testing.T, src string, set ...string) (*Scenario, NAT) {
	t.Helper()
	s, err := Parse([]byte(src), "n.yaml", set)
	require.NoError(t, err)
	require.NotEmpty(t, s.NATs)
	return s, s.NATs[0]
}

func TestNATBase(t *testing.T) {
	s, n := nat0(t, natBase)
	assert.Equal(t, "gw", n.Name)
	want, err := nat.Preset(nat.PresetLinuxMasquerade)
	require.NoError(t, err)
	want.ExternalIPs = []netip.Addr{netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.0.2")}
	assert.Equal(t, want, n.Config, "the preset, untouched but for the external IPs")
	assert.Nil(t, n.Settings, "no overrides")
	assert.Equal(t, []int{0, 1, 2, 3}, n.Inside, "pod's three instances, then vm")
	require.Len(t, s.Hosts, 4)
	assert.Equal(t, "vm", s.Hosts[n.Inside[3]].Name)
}

// Every overridable key lands in its Config field, and Settings records it
// as written.
func TestNATKeys(t *testing.T) {
	d := func(s string) time.Duration {
		v, err := time.ParseDuration(s)
		require.NoError(t, err)
		return v
	}
	tests := []struct {
		lines    []string
		settings map[string]string
		check    func(t *testing.T, c *nat.Config)
	}{
		{[]string{"    mapping: endpoint-independent"}, nil, func(t *testing.T, c *nat.Config) {
			assert.Equal(t, nat.EndpointIndependent, c.Mapping)
			assert.Equal(t, nat.EndpointIndependent, c.UDPMapping, "mapping sets UDP's too")
		}},
		{[]string{"    mapping: address-dependent", "    udp_mapping: endpoint-independent"}, nil, func(t *testing.T, c *nat.Config) {
			assert.Equal(t, nat.AddressDependent, c.Mapping)
			assert.Equal(t, nat.EndpointIndependent, c.UDPMapping, "udp_mapping refines mapping")
		}},
		{[]string{"    udp_mapping: address-dependent"}, nil, func(t *testing.T, c *nat.Config) {
			assert.Equal(t, nat.AddressAndPortDependent, c.Mapping)
			assert.Equal(t, nat.AddressDependent, c.UDPMapping)
		}},
		{[]string{"    filtering: endpoint-independent"}, nil, func(t *testing.T, c *nat.Config) {
			assert.Equal(t, nat.EndpointIndependentFiltering, c.Filtering)
		}},
		{[]string{"    filtering: address-dependent"}, nil, func(t *testing.T, c *nat.Config) {
			assert.Equal(t, nat.AddressDependentFiltering, c.Filtering)
		}},
		{[]string{"    pooling: paired"}, nil, func(t *testing.T, c *nat.Config) { assert.Equal(t, nat.Paired, c.Pooling) }},
		{[]string{"    pooling: spread"}, nil, func(t *testing.T, c *nat.Config) { assert.Equal(t, nat.Spread, c.Pooling) }},
		{[]string{"    pooling: fill"}, nil, func(t *testing.T, c *nat.Config) { assert.Equal(t, nat.Fill, c.Pooling) }},
		{[]string{"    reuse_mapping: false"}, nil, func(t *testing.T, c *nat.Config) { assert.False(t, c.ReuseMapping) }},
		{[]string{"    port_preservation: false"}, nil, func(t *testing.T, c *nat.Config) { assert.False(t, c.PortPreservation) }},
		{[]string{"    port_parity: true"}, nil, func(t *testing.T, c *nat.Config) { assert.True(t, c.PortParity) }},
		{[]string{"    random: random"}, nil, func(t *testing.T, c *nat.Config) { assert.Equal(t, alloc.NATRandom, c.Mode) }},
		{[]string{"    random: random-fully"}, nil, func(t *testing.T, c *nat.Config) { assert.Equal(t, alloc.NATRandomFully, c.Mode) }},
		{[]string{"    random: none"}, nil, func(t *testing.T, c *nat.Config) { assert.Equal(t, alloc.NATDefault, c.Mode) }},
		{[]string{"    picker: netfilter-rover"}, nil, func(t *testing.T, c *nat.Config) { assert.Equal(t, "netfilter-rover", c.Picker) }},
		{[]string{`    ports: "2000 2999"`}, map[string]string{"ports": "2000 2999"}, func(t *testing.T, c *nat.Config) {
			assert.Equal(t, alloc.Range{Low: 2000, High: 2999}, c.Ports)
		}},
		{[]string{"    per_destination_cap: 100"}, map[string]string{"per_destination_cap": "100"}, func(t *testing.T, c *nat.Config) {
			assert.Equal(t, 100, c.PerDestinationCap)
		}},
		{[]string{"    max_flows: 0"}, nil, func(t *testing.T, c *nat.Config) { assert.Equal(t, 0, c.MaxFlows) }},
		{[]string{"    allocation: static", "    ports_per_host: 1024"}, nil, func(t *testing.T, c *nat.Config) {
			assert.Equal(t, nat.Static, c.Allocation)
			assert.Equal(t, 1024, c.PortsPerHost)
		}},
		{[]string{"    allocation: dynamic", "    ports_per_host: 32", "    max_ports_per_host: 4096"}, nil, func(t *testing.T, c *nat.Config) {
			assert.Equal(t, nat.Dynamic, c.Allocation)
			assert.Equal(t, 32, c.PortsPerHost)
			assert.Equal(t, 4096, c.MaxPortsPerHost)
		}},
		{[]string{"    allocation: blocks", "    block_size: 64", "    max_blocks: 4"}, nil, func(t *testing.T, c *nat.Config) {
			assert.Equal(t, nat.Blocks, c.Allocation)
			assert.Equal(t, 64, c.BlockSize)
			assert.Equal(t, 4, c.MaxBlocks)
		}},
		{[]string{"    allocation: deterministic", "    pooling: paired"}, nil, func(t *testing.T, c *nat.Config) {
			assert.Equal(t, nat.Deterministic, c.Allocation)
		}},
		{[]string{"    allocation: shared"}, nil, func(t *testing.T, c *nat.Config) { assert.Equal(t, nat.Shared, c.Allocation) }},
		{[]string{"    timeouts:", "      tcp_established: 1h", "      tcp_transitory: 11s", "      tcp_time_wait: 12s",
			"      tcp_close: 13s", "      udp: 14s", "      udp_stream: 15s", "      udp_stream_after: 0"},
			map[string]string{
				"timeouts.tcp_established": "1h", "timeouts.tcp_transitory": "11s", "timeouts.tcp_time_wait": "12s",
				"timeouts.tcp_close": "13s", "timeouts.udp": "14s", "timeouts.udp_stream": "15s", "timeouts.udp_stream_after": "0",
			},
			func(t *testing.T, c *nat.Config) {
				assert.Equal(t, nat.Timeouts{TCPEstablished: time.Hour, TCPTransitory: d("11s"), TCPTimeWait: d("12s"),
					TCPClose: d("13s"), UDP: d("14s"), UDPStream: d("15s")}, c.Timeouts)
			}},
		{[]string{"    timeouts: {udp: 9s}"}, map[string]string{"timeouts.udp": "9s"}, func(t *testing.T, c *nat.Config) {
			assert.Equal(t, d("9s"), c.Timeouts.UDP)
			assert.Equal(t, d("432000s"), c.Timeouts.TCPEstablished, "the preset's other timeouts stay")
		}},
		{[]string{"    cool_down: {fin: 65s, rst: 16s, half_open: 30s, udp: 1m}"},
			map[string]string{"cool_down.fin": "65s", "cool_down.rst": "16s", "cool_down.half_open": "30s", "cool_down.udp": "1m"},
			func(t *testing.T, c *nat.Config) {
				assert.Equal(t, nat.CoolDowns{FIN: d("65s"), RST: d("16s"), HalfOpen: d("30s"), UDP: time.Minute}, c.CoolDowns)
			}},
		{[]string{"    confirm_window: 50us"}, map[string]string{"confirm_window": "50us"}, func(t *testing.T, c *nat.Config) {
			assert.Equal(t, 50*time.Microsecond, c.ConfirmWindow)
		}},
		{[]string{"    hairpin: false"}, map[string]string{"hairpin": "false"}, func(t *testing.T, c *nat.Config) { assert.False(t, c.Hairpin) }},
	}
	for _, tt := range tests {
		t.Run(strings.TrimSpace(strings.Join(tt.lines, " ")), func(t *testing.T) {
			_, n := nat0(t, natWith(tt.lines...))
			tt.check(t, &n.Config)
			require.NotNil(t, n.Settings)
			if tt.settings != nil {
				assert.Equal(t, tt.settings, n.Settings)
			}
			for k := range n.Settings {
				assert.True(t, strings.Contains(strings.Join(tt.lines, "\n"), lastKey(k)+":"), "setting %q is a key the file wrote", k)
			}
		})
	}
}

// Every preset resolves and validates behind the base's hosts.
func TestNATPresets(t *testing.T) {
	require.Len(t, nat.PresetNames(), 8)
	for _, name := range nat.PresetNames() {
		t.Run(name, func(t *testing.T) {
			_, n := nat0(t, natEdit(t, "preset: linux-masquerade", "preset: "+name))
			want, err := nat.Preset(name)
			require.NoError(t, err)
			want.ExternalIPs = n.Config.ExternalIPs
			assert.Equal(t, want, n.Config)
			assert.Equal(t, name, n.Config.Preset)
			assert.NoError(t, n.Config.Validate(5))
		})
	}
}

func TestNATInsideAndExternalIPs(t *testing.T) {
	src := natEdit(t, "inside: [pod, vm]", "inside: [vm, pod-2]") + `  - name: second
    preset: cgn-port-block
    external_ips: [192.0.2.7, 192.0.2.9]
    inside: [pod-3, pod-1]
`
	s, err := Parse([]byte(src), "n.yaml", nil)
	require.NoError(t, err)
	require.Len(t, s.NATs, 2)
	assert.Equal(t, []int{3, 1}, s.NATs[0].Inside, "in the order written")
	assert.Equal(t, []int{2, 0}, s.NATs[1].Inside)
	assert.Equal(t, []netip.Addr{netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.0.2")}, s.NATs[0].Config.ExternalIPs)
	assert.Equal(t, []netip.Addr{netip.MustParseAddr("192.0.2.7"), netip.MustParseAddr("192.0.2.9")}, s.NATs[1].Config.ExternalIPs)

	// The K-th NAT's generated addresses are 198.18.K.x.
	src = natBase + "  - {name: b, preset: cgn-deterministic, external_ips: 254, inside: [vm]}\n"
	src = strings.Replace(src, "inside: [pod, vm]", "inside: [pod]", 1)
	s, err = Parse([]byte(src), "n.yaml", nil)
	require.NoError(t, err)
	ips := s.NATs[1].Config.ExternalIPs
	require.Len(t, ips, 254)
	assert.Equal(t, netip.MustParseAddr("198.18.1.1"), ips[0])
	assert.Equal(t, netip.MustParseAddr("198.18.1.254"), ips[253])
}

func TestNATForwards(t *testing.T) {
	src := natWith(
		"    forwards:",
		`      - {external_port: 2222, to: "10.2.0.1:22"}`,
		`      - {external_port: 53, to: "10.1.0.3:5353", proto: udp, external_ip: 198.18.0.2}`,
	)
	// A workload may connect to the NAT's external address: hairpinning.
	src = strings.Replace(src, `to: ["203.0.113.10:443"]`, `to: ["198.18.0.1:2222"]`, 1)
	s, n := nat0(t, src)
	assert.Equal(t, []nat.Forward{
		{ExternalIP: 0, ExternalPort: 2222, Inside: netip.MustParseAddrPort("10.2.0.1:22")},
		{UDP: true, ExternalIP: 1, ExternalPort: 53, Inside: netip.MustParseAddrPort("10.1.0.3:5353")},
	}, n.Config.Forwards)
	assert.Equal(t, map[string]string{
		"forwards.0.external_port": "2222", "forwards.0.to": "10.2.0.1:22",
		"forwards.1.external_port": "53", "forwards.1.to": "10.1.0.3:5353", "forwards.1.proto": "udp", "forwards.1.external_ip": "198.18.0.2",
	}, n.Settings)
	assert.Equal(t, netip.MustParseAddrPort("198.18.0.1:2222"), s.Workloads[0].To[0])
}

// natBad is a NAT document Parse must refuse with exactly want.
type natBad struct{ name, src, want string }

// natBadCases are the bad inputs of TestNATErrors, also fuzz seeds.
func natBadCases(t testing.TB) []natBad {
	second := func(lines string) string {
		return strings.Replace(natBase, "inside: [pod, vm]", "inside: [pod]", 1) + "  - name: second\n" + lines
	}
	return []natBad{
		{"unknown preset", natEdit(t, "preset: linux-masquerade", "preset: pfsense"),
			`n.yaml:20:13: nats[0].preset: unknown NAT preset "pfsense" (known: ` + strings.Join(nat.PresetNames(), ", ") + `)`},
		{"bad mapping spelling", natWith("    mapping: full-cone"),
			`n.yaml:23:14: nats[0].mapping: unknown mapping "full-cone" (known: address-and-port-dependent, address-dependent, endpoint-independent)`},
		{"bad filtering spelling", natWith("    filtering: symmetric"),
			`n.yaml:23:16: nats[0].filtering: unknown filtering "symmetric" (known: address-and-port-dependent, address-dependent, endpoint-independent)`},
		{"bad random spelling", natWith("    random: fully"),
			`n.yaml:23:13: nats[0].random: unknown random "fully" (known: none, random, random-fully)`},
		{"bad allocation", natWith("    allocation: pba"),
			`n.yaml:23:17: nats[0].allocation: unknown allocation "pba" (known: shared, static, dynamic, blocks, deterministic)`},
		{"unknown picker", natWith("    picker: lottery"),
			`n.yaml:23:13: nats[0].picker: unknown NAT port picker "lottery" (known: ` + strings.Join(alloc.NATPickerNames(), ", ") + `)`},
		{"ports reversed", natWith(`    ports: "60000 2000"`),
			`n.yaml:23:12: nats[0].ports: low 60000 is above high 2000`},
		{"negative cap", natWith("    per_destination_cap: -1"),
			`n.yaml:23:26: nats[0].per_destination_cap: must be a whole number from 0 to 2147483647, got -1`},
		{"udp timeout 0", natWith("    timeouts: {udp: 0s}"),
			`n.yaml:23:21: nats[0].timeouts.udp: must be > 0, got 0s`},
		{"negative cool-down", natWith("    cool_down: {fin: -1s}"),
			`n.yaml:23:22: nats[0].cool_down.fin: must be >= 0, got -1s`},
		{"unknown key", natWith("    conntrack_max: 5"),
			`n.yaml:23:5: nats[0].conntrack_max: unknown field "conntrack_max" (known: ` + strings.Join(natKeys, ", ") + `)`},
		{"unknown timeout", natWith("    timeouts: {icmp: 30s}"),
			`n.yaml:23:16: nats[0].timeouts.icmp: unknown field "icmp" (known: tcp_established, tcp_transitory, tcp_time_wait, tcp_close, udp, udp_stream, udp_stream_after)`},
		{"missing preset", natEdit(t, "    preset: linux-masquerade\n", ""),
			`n.yaml:19:5: nats[0].preset: missing; one of ` + strings.Join(nat.PresetNames(), ", ")},
		{"external_ips 0", natEdit(t, "external_ips: 2", "external_ips: 0"),
			`n.yaml:21:19: nats[0].external_ips: a count of external IPs must be a whole number from 1 to 254 (they are 198.18.0.1 .. 198.18.0.254); list the addresses for more, got 0`},
		{"external_ips 300", natEdit(t, "external_ips: 2", "external_ips: 300"),
			`n.yaml:21:19: nats[0].external_ips: a count of external IPs must be a whole number from 1 to 254 (they are 198.18.0.1 .. 198.18.0.254); list the addresses for more, got 300`},
		{"external_ips word", natEdit(t, "external_ips: 2", "external_ips: many"),
			`n.yaml:21:19: nats[0].external_ips: must be a count of external IPs or a list of addresses, got "many"`},
		{"external_ips empty", natEdit(t, "external_ips: 2", "external_ips: []"),
			`n.yaml:21:19: nats[0].external_ips: list at least one address, or give a count`},
		{"external_ips duplicate", natEdit(t, "external_ips: 2", "external_ips: [192.0.2.1, 192.0.2.1]"),
			`n.yaml:21:31: nats[0].external_ips[1]: duplicate address 192.0.2.1 (external_ips[0] has it too)`},
		{"external_ips mixed family", natEdit(t, "external_ips: 2", `external_ips: [192.0.2.1, "2001:db8::1"]`),
			`n.yaml:21:31: nats[0].external_ips[1]: 2001:db8::1 is IPv6 but 192.0.2.1 is IPv4; a NAT's external IPs share one address family`},
		{"external_ips a host's address", natEdit(t, "external_ips: 2", "external_ips: [192.0.2.1, 10.1.0.2]"),
			`n.yaml:21:31: nats[0].external_ips[1]: 10.1.0.2 is an address of host "pod-2"; a NAT's external IPs must not be a host's`},
		{"external_ips not an address", natEdit(t, "external_ips: 2", "external_ips: [192.0.2.300]"),
			`n.yaml:21:20: nats[0].external_ips[0]: "192.0.2.300" is not an IP address`},
		{"aws 9 external IPs", natEdit(t, "preset: linux-masquerade\n    external_ips: 2", "preset: aws-nat-gateway\n    external_ips: 9"),
			`n.yaml:21:19: nats[0].external_ips: 9 external IPs; aws-nat-gateway takes at most 8`},
		{"inside unknown", natEdit(t, "inside: [pod, vm]", "inside: [pod, db]"),
			`n.yaml:22:19: nats[0].inside[1]: no host named "db" (hosts: pod, vm)`},
		{"inside twice", natEdit(t, "inside: [pod, vm]", "inside: [pod, vm, pod-2]"),
			`n.yaml:22:23: nats[0].inside[2]: host "pod-2" is listed twice`},
		{"inside empty", natEdit(t, "inside: [pod, vm]", "inside: []"),
			`n.yaml:22:13: nats[0].inside: list the hosts behind the NAT`},
		{"inside hosts sharing an address", strings.Replace(natEdit(t, "    count: 3\n", ""), "addresses: [10.2.0.1,", "addresses: [10.1.0.1,", 1),
			`n.yaml:21:19: nats[0].inside[1]: host "vm" has address 10.1.0.1, as host "pod" does; the hosts behind a NAT need addresses of their own`},
		{"inside in two NATs", second("    preset: cgn-port-block\n    external_ips: 1\n    inside: [vm, pod]\n"),
			`n.yaml:26:18: nats[1].inside[1]: host "pod-1" is already inside NAT "gw"; a host is behind at most one NAT`},
		{"external IP of two NATs", second("    preset: cgn-port-block\n    external_ips: [198.18.0.2]\n    inside: [vm]\n"),
			`n.yaml:25:20: nats[1].external_ips[0]: 198.18.0.2 is an external IP of NAT "gw" too`},
		{"duplicate NAT name", strings.Replace(second("    preset: cgn-port-block\n    external_ips: 1\n    inside: [vm]\n"), "name: second", "name: gw", 1),
			`n.yaml:23:11: nats[1].name: duplicate NAT name "gw" (nats[0] has it too)`},
		{"forward to a non-inside address", natWith("    forwards: [{external_port: 2222, to: \"10.9.0.1:22\"}]"),
			`n.yaml:23:42: nats[0].forwards[0].to: 10.9.0.1 is not an address of a host inside NAT "gw"`},
		{"forward port 0", natWith("    forwards: [{external_port: 0, to: \"10.2.0.1:22\"}]"),
			`n.yaml:23:32: nats[0].forwards[0].external_port: must be a whole number from 1 to 65535, got 0`},
		{"forward to another NAT's IP", natWith("    forwards: [{external_port: 22, to: \"10.2.0.1:22\", external_ip: 198.18.1.1}]"),
			`n.yaml:23:68: nats[0].forwards[0].external_ip: 198.18.1.1 is not one of the NAT's external IPs (198.18.0.1, 198.18.0.2)`},
		{"forward proto", natWith("    forwards: [{external_port: 22, to: \"10.2.0.1:22\", proto: sctp}]"),
			`n.yaml:23:62: nats[0].forwards[0].proto: must be tcp or udp, got "sctp"`},
		{"forward twice", natWith("    forwards:", "      - {external_port: 22, to: \"10.2.0.1:22\"}", "      - {external_port: 22, to: \"10.2.0.1:23\"}"),
			`n.yaml:25:25: nats[0].forwards[1].external_port: port 22 is forwarded twice`},
		{"gcp ports_per_host not a power of two", natEdit(t, "preset: linux-masquerade", "preset: gcp-cloud-nat\n    ports_per_host: 50"),
			`n.yaml:21:21: nats[0].ports_per_host: 50 is not a power of two; Cloud NAT rounds min_ports_per_vm up to one (write 64)`},
		{"azure-lb ports_per_host not a multiple of 8", natEdit(t, "preset: linux-masquerade", "preset: azure-lb-outbound\n    ports_per_host: 100"),
			`n.yaml:21:21: nats[0].ports_per_host: 100 is not a multiple of 8, as Azure outbound rules require`},
		{"gcp dynamic and endpoint-independent", natWith("    mapping: endpoint-independent", "    allocation: dynamic"),
			""}, // filled below: needs the gcp preset
		{"preset conflict: gcp ports_per_host over a small pool", natEdit(t, "preset: linux-masquerade", `preset: gcp-cloud-nat
    ports: "1024 1055"`),
			`n.yaml:20:13: nats[0].preset: preset gcp-cloud-nat's ports_per_host 64 does not fit this NAT's settings: 64 is not between 1 and the pool's 32 ports (set ports_per_host to override the preset)`},
		{"preset conflict: deterministic needs paired pooling", natWith("    allocation: deterministic"),
			`n.yaml:20:13: nats[0].preset: preset linux-masquerade's pooling arbitrary does not fit this NAT's settings: deterministic NAT fixes each inside address's IP: pooling must be paired (set pooling to override the preset)`},
		{"deterministic: too many inside addresses", natEdit(t, "preset: linux-masquerade\n    external_ips: 2", "preset: cgn-deterministic\n    external_ips: 1\n    ports: \"1024 1027\""),
			`n.yaml:23:13: nats[0].inside: 5 inside addresses cannot each get a port of 1 external IPs x 4 ports`},
	}
}

func TestNATErrors(t *testing.T) {
	for _, tt := range natBadCases(t) {
		t.Run(tt.name, func(t *testing.T) {
			src, want := tt.src, tt.want
			if want == "" {
				src = strings.Replace(src, "preset: linux-masquerade", "preset: gcp-cloud-nat", 1)
				want = `n.yaml:24:17: nats[0].allocation: Cloud NAT's dynamic port allocation cannot be combined with endpoint-independent mapping`
			}
			s, err := Parse([]byte(src), "n.yaml", nil)
			assert.Nil(t, s)
			var e *Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, want, err.Error())
		})
	}
}

func TestNATOverrides(t *testing.T) {
	tests := []struct {
		name  string
		set   []string
		check func(t *testing.T, s *Scenario, n NAT)
	}{
		{"external_ips count", []string{"nats.0.external_ips=4"}, func(t *testing.T, s *Scenario, n NAT) {
			assert.Len(t, n.Config.ExternalIPs, 4)
			assert.Equal(t, netip.MustParseAddr("198.18.0.4"), n.Config.ExternalIPs[3])
			assert.Nil(t, n.Settings)
		}},
		{"external_ips list", []string{"nats.0.external_ips=[192.0.2.1]"}, func(t *testing.T, s *Scenario, n NAT) {
			assert.Equal(t, []netip.Addr{netip.MustParseAddr("192.0.2.1")}, n.Config.ExternalIPs)
		}},
		{"added key", []string{"nats.0.per_destination_cap=100"}, func(t *testing.T, s *Scenario, n NAT) {
			assert.Equal(t, 100, n.Config.PerDestinationCap)
			assert.Equal(t, map[string]string{"per_destination_cap": "100"}, n.Settings)
		}},
		{"nested key, group absent", []string{"nats.0.timeouts.udp=10s", "nats.0.cool_down.rst=16s"}, func(t *testing.T, s *Scenario, n NAT) {
			assert.Equal(t, 10*time.Second, n.Config.Timeouts.UDP)
			assert.Equal(t, 16*time.Second, n.Config.CoolDowns.RST)
			assert.Equal(t, map[string]string{"timeouts.udp": "10s", "cool_down.rst": "16s"}, n.Settings)
		}},
		{"preset", []string{"nats.0.preset=aws-nat-gateway"}, func(t *testing.T, s *Scenario, n NAT) {
			assert.Equal(t, 55000, n.Config.PerDestinationCap)
		}},
		{"forwards", []string{`nats.0.forwards=[{external_port: 80, to: "10.2.0.1:8080"}]`}, func(t *testing.T, s *Scenario, n NAT) {
			assert.Equal(t, []nat.Forward{{ExternalPort: 80, Inside: netip.MustParseAddrPort("10.2.0.1:8080")}}, n.Config.Forwards)
		}},
		{"inside", []string{"nats.0.inside=[vm]"}, func(t *testing.T, s *Scenario, n NAT) {
			assert.Equal(t, []int{3}, n.Inside)
		}},
		{"count follows into inside and workloads", []string{"hosts.0.count=5"}, func(t *testing.T, s *Scenario, n NAT) {
			assert.Equal(t, []int{0, 1, 2, 3, 4, 5}, n.Inside)
			assert.Len(t, s.Workloads, 5)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, n := nat0(t, natBase, tt.set...)
			assert.Equal(t, tt.set, s.Overrides)
			tt.check(t, s, n)
		})
	}

	errs := []struct{ set, want string }{
		{"nats.0.external_ips=0", `--set: nats[0].external_ips: a count of external IPs must be a whole number from 1 to 254 (they are 198.18.0.1 .. 198.18.0.254); list the addresses for more, got 0`},
		{"nats.0.mapping=full-cone", `--set: nats[0].mapping: unknown mapping "full-cone" (known: address-and-port-dependent, address-dependent, endpoint-independent)`},
		{"nats.1.preset=x", `--set: nats.1.preset: index 1 is out of range: nats has 1 entry`},
		{"nats.0.timeouts.icmp=1s", `--set: nats[0].timeouts.icmp: unknown field "icmp" (known: tcp_established, tcp_transitory, tcp_time_wait, tcp_close, udp, udp_stream, udp_stream_after)`},
		{"nats.0.preset=gcp-cloud-nat", ""}, // valid: pods get 64 ports each
		{"nats.0.ports=1024 1055", ""},
		// A conflict an override makes with the file's preset points at
		// the preset in the file.
		{"nats.0.allocation=deterministic", `n.yaml:20:13: nats[0].preset: preset linux-masquerade's pooling arbitrary does not fit this NAT's settings: deterministic NAT fixes each inside address's IP: pooling must be paired (set pooling to override the preset)`},
	}
	for _, tt := range errs {
		t.Run(tt.set, func(t *testing.T) {
			s, err := Parse([]byte(natBase), "n.yaml", []string{tt.set})
			if tt.want == "" {
				require.NoError(t, err)
				checkResult(t, s, err)
				return
			}
			var e *Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, tt.want, err.Error())
		})
	}
}

func TestCount(t *testing.T) {
	src := natEdit(t, "addresses: [10.1.0.1]", `addresses: [10.1.0.1, "fd01::ff"]`)
	src = strings.Replace(src, "    close: client\n", "    close: client\n    source: 10.1.0.1\n"+
		"  - {name: v6, from: pod, to: [\"[2001:db8::1]:80\"], arrival: {process: constant, rate: 1}, hold: {dist: fixed, value: 0s}, close: rst}\n"+
		"  - {name: one, from: pod-2, to: [\"203.0.113.1:80\"], arrival: {process: constant, rate: 1}, hold: {dist: fixed, value: 0s}, close: rst}\n"+
		"  - {name: plain, from: vm, to: [\"203.0.113.1:80\"], arrival: {process: constant, rate: 1}, hold: {dist: fixed, value: 0s}, close: rst}\n", 1)
	s, err := Parse([]byte(src), "n.yaml", nil)
	require.NoError(t, err)
	checkResult(t, s, err)

	require.Len(t, s.Hosts, 4)
	for i, h := range s.Hosts[:3] {
		assert.Equal(t, fmt.Sprintf("pod-%d", i+1), h.Name)
		assert.Equal(t, "pod", h.Group)
		assert.Equal(t, i+1, h.Instance)
		assert.Equal(t, 3, h.Count)
		assert.Equal(t, s.Hosts[0].Profile, h.Profile)
	}
	assert.Equal(t, []netip.Addr{netip.MustParseAddr("10.1.0.3"), netip.MustParseAddr("fd01::101")}, s.Hosts[2].Addresses)
	vm := s.Hosts[3]
	assert.Equal(t, "vm", vm.Name)
	assert.Equal(t, "vm", vm.Group)
	assert.Equal(t, 1, vm.Instance)
	assert.Equal(t, 1, vm.Count)

	var names []string
	for _, w := range s.Workloads {
		names = append(names, w.Name)
	}
	assert.Equal(t, []string{"api@pod-1", "api@pod-2", "api@pod-3", "v6@pod-1", "v6@pod-2", "v6@pod-3", "one", "plain"}, names)
	for i := range 3 {
		api, v6 := s.Workloads[i], s.Workloads[3+i]
		assert.Equal(t, i, api.From)
		assert.Equal(t, s.Hosts[i].Addresses[0], api.Source, "source 10.1.0.1 means each instance's first address")
		assert.Equal(t, s.Hosts[i].Addresses[1], v6.Source)
		api.Name, api.From, api.Source = "", 0, netip.Addr{}
		first := s.Workloads[0]
		first.Name, first.Source = "", netip.Addr{}
		assert.Equal(t, first, api, "same parameters on every instance")
	}
	assert.Equal(t, 1, s.Workloads[6].From, "from: pod-2 is that instance alone")
	assert.Equal(t, 3, s.Workloads[7].From)

	// count: 1 changes nothing.
	want, err := Parse([]byte(base), "t.yaml", nil)
	require.NoError(t, err)
	got, err := Parse([]byte(edit(t, "    os: linux\n", "    count: 1\n    os: linux\n")), "t.yaml", nil)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	assert.Equal(t, Host{}.Name, "")
	assert.Equal(t, "client", got.Hosts[0].Name)
	assert.Equal(t, "api", got.Workloads[0].Name)
}

// In every built-in, hosts without count keep their names and workloads
// from them theirs; instances and their workloads are named as documented.
func TestBuiltinCounts(t *testing.T) {
	for _, in := range Builtins() {
		if in.Name == "this-host" && !hostReadable() {
			continue
		}
		s, err := Load(in.Name, nil)
		require.NoError(t, err, in.Name)
		checkResult(t, s, err)
		for _, h := range s.Hosts {
			if h.Count == 1 {
				assert.Equal(t, h.Group, h.Name)
				assert.Equal(t, 1, h.Instance)
			} else {
				assert.Equal(t, fmt.Sprintf("%s-%d", h.Group, h.Instance), h.Name)
			}
		}
		for _, w := range s.Workloads {
			if h := s.Hosts[w.From]; h.Count > 1 {
				assert.True(t, strings.HasSuffix(w.Name, "@"+h.Name), "%s: workload %q on %q", in.Name, w.Name, h.Name)
			} else {
				assert.NotContains(t, w.Name, "@")
			}
		}
	}
}

// countHosts is a scenario with the given hosts block and one workload
// from vm.
func countHosts(hosts string) string {
	return "name: n\nduration: 60s\nhosts:\n" + hosts + `workloads:
  - {name: a, from: vm, to: ["203.0.113.1:80"], arrival: {process: constant, rate: 1}, hold: {dist: fixed, value: 0s}, close: rst}
`
}

func TestCountErrors(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"count 0", natEdit(t, "count: 3", "count: 0"),
			`n.yaml:5:12: hosts[0].count: must be a whole number from 1 to 100000, got 0`},
		{"count too big", natEdit(t, "count: 3", "count: 100001"),
			`n.yaml:5:12: hosts[0].count: must be a whole number from 1 to 100000, got 100001`},
		{"count fraction", natEdit(t, "count: 3", "count: 2.5"),
			`n.yaml:5:12: hosts[0].count: must be a whole number from 1 to 100000, got 2.5`},
		{"instance collides with another host", natEdit(t, "addresses: [10.2.0.1,", "addresses: [10.1.0.3,"),
			`n.yaml:10:17: hosts[1].addresses[0]: 10.1.0.3 is also an address of host "pod-3" (an instance of "pod", which has count: 3); addresses of instances must not collide`},
		{"instance collides with an earlier host", countHosts("  - {name: vm, os: linux, addresses: [10.1.0.3]}\n  - {name: pod, count: 3, os: linux, addresses: [10.1.0.1]}\n"),
			`n.yaml:5:50: hosts[1].addresses[0]: instance pod-3's address 10.1.0.3 (this address advanced by 2) is also an address of host "vm"; addresses of instances must not collide`},
		{"instances collide with each other", natEdit(t, "addresses: [10.1.0.1]", "addresses: [10.1.0.1, 10.1.0.2]"),
			`n.yaml:7:17: hosts[0].addresses[0]: instance pod-2's address 10.1.0.2 (this address advanced by 1) is also an address of host "pod-1"; addresses of instances must not collide`},
		{"past the end of the address space", natEdit(t, "addresses: [10.1.0.1]", "addresses: [255.255.255.254]"),
			`n.yaml:7:17: hosts[0].addresses[0]: instance pod-3 would need the address after 255.255.255.255, past the end of the IPv4 address space; count 3 is too many for 255.255.255.254`},
		{"instance name taken", natEdit(t, "  - name: vm\n", "  - name: pod-2\n"),
			`n.yaml:8:11: hosts[1].name: duplicate host name "pod-2" (hosts[0] has it too); a host with count: N stands for NAME-1 .. NAME-N`},
		{"written name taken by a later count", countHosts("  - {name: vm-2, os: linux, addresses: [10.1.0.1]}\n  - {name: vm, count: 2, os: linux, addresses: [10.2.0.1]}\n"),
			`n.yaml:5:12: hosts[1].name: duplicate host name "vm-2" (hosts[0] has it too); a host with count: N stands for NAME-1 .. NAME-N`},
		{"written name twice, once with count", countHosts("  - {name: vm, os: linux, addresses: [10.1.0.1]}\n  - {name: vm, count: 2, os: linux, addresses: [10.2.0.1]}\n"),
			`n.yaml:5:12: hosts[1].name: duplicate host name "vm" (hosts[0] has it too); a host with count: N stands for NAME-1 .. NAME-N`},
		{"server on a counted host", natBase + "servers: [{name: web, host: pod, listen: \"0.0.0.0:80\"}]\n",
			`n.yaml:23:29: servers[0].host: host "pod" stands for 3 instances (count: 3); servers on a host with count > 1 are not supported: write the server's host without count`},
		{"server on an instance", natBase + "servers: [{name: web, host: pod-1, listen: \"0.0.0.0:80\"}]\n",
			`n.yaml:23:29: servers[0].host: host "pod" stands for 3 instances (count: 3); servers on a host with count > 1 are not supported: write the server's host without count`},
		{"replicated workload name taken", natEdit(t, "nats:\n", "  - {name: api@pod-2, from: vm, to: [\"203.0.113.1:80\"], arrival: {process: constant, rate: 1}, hold: {dist: fixed, value: 0s}, close: rst}\nnats:\n"),
			`n.yaml:18:12: workloads[1].name: duplicate workload name "api@pod-2" (workloads[0] has it too); a workload from a host with count: N becomes NAME@HOST-1 .. NAME@HOST-N`},
		{"source of another instance", natEdit(t, "    close: client\n", "    close: client\n    source: 10.1.0.2\n"),
			`n.yaml:18:13: workloads[0].source: 10.1.0.2 is not an address of host "pod" (addresses: 10.1.0.1)`},
		{"unknown from lists written names", natEdit(t, "from: pod", "from: db"),
			`n.yaml:13:11: workloads[0].from: no host named "db" (hosts: pod, vm)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse([]byte(tt.src), "n.yaml", nil)
			assert.Nil(t, s)
			var e *Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, tt.want, err.Error())
		})
	}
}

// lowerLimits sets maxHosts and maxWorkloads for the rest of the test.
func lowerLimits(t testing.TB, hosts, workloads int) {
	oh, ow := maxHosts, maxWorkloads
	maxHosts, maxWorkloads = hosts, workloads
	t.Cleanup(func() { maxHosts, maxWorkloads = oh, ow })
}

// The total of hosts and of workloads after expansion is bounded.
func TestCountLimits(t *testing.T) {
	lowerLimits(t, 3, 5)
	_, err := Parse([]byte(natBase), "n.yaml", nil)
	assert.EqualError(t, err, `n.yaml:8:5: hosts[1]: the hosts come to 4 instances with this one; a scenario may have at most 3`)

	lowerLimits(t, 4, 5)
	src := strings.Replace(natBase, "nats:\n", "  - {name: b, from: pod, to: [\"203.0.113.1:80\"], arrival: {process: constant, rate: 1}, hold: {dist: fixed, value: 0s}, close: rst}\nnats:\n", 1)
	_, err = Parse([]byte(src), "n.yaml", nil)
	assert.EqualError(t, err, `n.yaml:18:21: workloads[1].from: the workloads come to 6 with this one's 3 copies, one per instance of host "pod"; a scenario may have at most 5`)
}

// A large count parses in reasonable time and memory (a Host is 8 KB).
func TestCountLarge(t *testing.T) {
	s, n := nat0(t, natEdit(t, "count: 3", "count: 20000"))
	require.Len(t, s.Hosts, 20001)
	require.Len(t, s.Workloads, 20000)
	assert.Equal(t, netip.MustParseAddr("10.1.78.32"), s.Hosts[19999].Addresses[0], "10.1.0.1 + 19999")
	assert.Equal(t, "api@pod-20000", s.Workloads[19999].Name)
	assert.Len(t, n.Inside, 20001)
}
