package nat

import (
	"net/netip"
	"testing"
	"time"

	"github.com/portsim/portsim/alloc"
)

// fuzzConfigs are small NATs, so that a few dozen opens reach every
// limit: pools of a few ports, caps, tables, blocks and races.
func fuzzConfigs(t testing.TB) []Config {
	small := func(hi uint16) alloc.Range { return alloc.Range{Low: 1024, High: hi} }
	return []Config{
		withCfg(presetConfig(t, PresetLinuxMasquerade, 2), func(c *Config) { c.Ports = small(1031) }),
		withCfg(presetConfig(t, PresetLinuxMasquerade, 1), func(c *Config) {
			c.Ports, c.Picker, c.ConfirmWindow, c.MaxFlows = small(1027), alloc.NATPickerNetfilter65, time.Millisecond, 12
		}),
		withCfg(presetConfig(t, PresetCGNPortBlock, 2), func(c *Config) {
			c.Ports, c.BlockSize, c.MaxBlocks = small(1055), 4, 2
			c.Forwards = []Forward{{ExternalIP: 0, ExternalPort: 1026, Inside: ap("10.0.0.1:22")}, {UDP: true, ExternalIP: 1, ExternalPort: 1024, Inside: ap("10.0.0.2:53")}}
		}),
		withCfg(presetConfig(t, PresetAzureLBOutbound, 2), func(c *Config) { c.Ports, c.PortsPerHost, c.PoolTable = small(1063), 8, nil }),
		withCfg(presetConfig(t, PresetAzureNATGateway, 3), func(c *Config) { c.Ports, c.PerDestinationCap = small(1039), 3 }),
		withCfg(presetConfig(t, PresetGCPCloudNAT, 1), func(c *Config) {
			c.Ports, c.Allocation, c.PortsPerHost, c.MaxPortsPerHost = small(1055), Dynamic, 2, 8
		}),
		withCfg(presetConfig(t, PresetCGNDeterministic, 2), func(c *Config) { c.Ports = small(1039) }),
		withCfg(baseConfig(), func(c *Config) {
			c.ExternalIPs, c.Pooling, c.Ports = extIPs(2), Fill, small(1033)
			c.Mapping, c.UDPMapping, c.PortParity, c.PortPreservation = EndpointIndependent, AddressDependent, true, true
			c.ConfirmWindow, c.MaxFlows = time.Millisecond, 20
		}),
		withCfg(baseConfig(), func(c *Config) {
			c.ExternalIPs, c.Picker, c.Ports, c.ReuseMapping = extIPs(2), alloc.NATPickerNetfilter65, small(1031), true
			c.Allocation, c.BlockSize, c.MaxBlocks = Blocks, 2, 2
		}),
		withCfg(baseConfig(), func(c *Config) {
			c.Picker, c.Ports, c.PortPreservation = alloc.NATPickerNetfilter65, small(1039), true
			c.Allocation, c.PortsPerHost, c.MaxPortsPerHost = Dynamic, 2, 8
		}),
	}
}

// fuzzDests: two TCP and two UDP destinations, sharing a remote address.
var fuzzDests = []struct {
	remote string
	udp    bool
}{{"198.51.100.1:80", false}, {"198.51.100.1:443", false}, {"198.51.100.1:53", true}, {"198.51.100.2:53", true}}

// FuzzNATTable drives random Open/Confirm/Close/Expire sequences (and a
// few Inbound packets) over several configurations and checks after every
// step that no two held flows share an external 5-tuple and that every
// counter equals a recount from the flow records; at the end, expiring
// every flow returns every counter to zero.
func FuzzNATTable(f *testing.F) {
	f.Add([]byte{0, 0, 1, 2, 0, 0, 1, 2, 3, 3, 1, 4, 0})
	f.Add([]byte{1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 2, 1, 3, 0, 0, 5, 5, 5, 0, 9, 9, 9})
	f.Add([]byte{2, 0, 1, 1, 0, 2, 2, 0, 3, 3, 0, 4, 4, 0, 5, 5, 3, 0, 4, 0, 0, 6, 6})
	f.Add([]byte{5, 0, 0, 0, 0, 0, 1, 0, 0, 2, 0, 0, 3, 0, 0, 4, 0, 0, 5, 3, 1, 4, 1, 4, 2})
	f.Add([]byte{7, 0, 1, 2, 1, 0, 3, 2, 2, 0, 1, 1, 0, 2, 3, 5, 1, 0, 4, 0, 0})
	configs := fuzzConfigs(f)
	f.Fuzz(func(t *testing.T, data []byte) { fuzzTable(t, configs, data) })
}

// fuzzTable is one FuzzNATTable run: data[0] picks the configuration, the
// rest are the operations.
func fuzzTable(t *testing.T, configs []Config, data []byte) {
	{
		if len(data) == 0 {
			return
		}
		cfg := configs[int(data[0])%len(configs)]
		n := newTestNAT(t, cfg, 6)
		var dests []DestID
		for _, d := range fuzzDests {
			dests = append(dests, n.Dest(netip.MustParseAddrPort(d.remote), d.udp))
		}
		type tracked struct {
			id              FlowID
			udp             bool
			pending, closed bool
		}
		var flows []tracked
		next := func(i *int) int {
			*i++
			if *i < len(data) {
				return int(data[*i])
			}
			return 0
		}
		for i := 1; i < len(data); i++ {
			b := int(data[i])
			switch op := b % 6; {
			case op <= 1:
				sub, p, d := next(&i)%6, next(&i), next(&i)%len(dests)
				port := uint16(5000 + p%3)
				if p&4 != 0 {
					port = uint16(1024 + p%8) // inside ports that collide with the pool
				}
				id, drop := n.Open(sub, netip.AddrPortFrom(n.inside[sub], port), dests[d], 0)
				if drop == NoDrop {
					flows = append(flows, tracked{id: id, udp: fuzzDests[d].udp, pending: cfg.ConfirmWindow > 0})
				} else if id != -1 {
					t.Fatalf("dropped (%v) with flow %d", drop, id)
				}
			case op == 2:
				if len(flows) == 0 {
					continue
				}
				k := next(&i) % len(flows)
				if !flows[k].pending {
					continue
				}
				if n.Confirm(flows[k].id) == NoDrop {
					flows[k].pending = false
				} else {
					flows = append(flows[:k], flows[k+1:]...)
				}
			case op == 3:
				if len(flows) == 0 {
					continue
				}
				k := next(&i) % len(flows)
				if flows[k].closed || flows[k].pending {
					continue
				}
				how := CloseUDP
				if !flows[k].udp {
					how = Close(b / 6 % 3)
				}
				n.Close(flows[k].id, how)
				flows[k].closed = true
			case op == 4:
				if len(flows) == 0 {
					continue
				}
				k := next(&i) % len(flows)
				if !flows[k].closed && b&64 == 0 {
					continue
				}
				n.Expire(flows[k].id)
				flows = append(flows[:k], flows[k+1:]...)
			default:
				if len(flows) == 0 {
					continue
				}
				k := next(&i) % len(flows)
				if flows[k].pending {
					continue
				}
				ext := n.External(flows[k].id)
				n.Inbound(ext, netip.MustParseAddrPort(fuzzDests[b%len(fuzzDests)].remote), b&1 == 0)
			}
			if err := recount(n); err != nil {
				t.Fatalf("after byte %d: %v", i, err)
			}
		}
		for _, fl := range flows {
			if fl.pending {
				if n.Confirm(fl.id) != NoDrop {
					continue
				}
			}
			n.Expire(fl.id)
			if err := recount(n); err != nil {
				t.Fatal(err)
			}
		}
		assertDrained(t, n)
	}
}
