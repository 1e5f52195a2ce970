package nat

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portsim/portsim/alloc"
)

// act is one step of a table sequence: open (name the flow), confirm,
// close, expire a named flow.
type act struct {
	do   string // "open", "confirm", "close", "expire"
	name string
	sub  int
	port uint16 // inside port
	dst  int    // index into seqCase.dests
	how  Close
	// What to expect: the drop (open, confirm), and after an open the
	// external ip:port ("" unchecked), or the same external as flow same,
	// or a different one than flow other.
	drop  Drop
	ext   string
	same  string
	other string
}

func open(name string, sub int, port uint16, dst int) act {
	return act{do: "open", name: name, sub: sub, port: port, dst: dst}
}

func (a act) is(ext string) act         { a.ext = ext; return a }
func (a act) sameAs(f string) act       { a.same = f; return a }
func (a act) notAs(f string) act        { a.other = f; return a }
func (a act) drops(d Drop) act          { a.drop = d; return a }
func closeF(name string, how Close) act { return act{do: "close", name: name, how: how} }
func expire(name string) act            { return act{do: "expire", name: name} }
func confirm(name string, d Drop) act   { return act{do: "confirm", name: name, drop: d} }
func dst(s string) netip.AddrPort       { return netip.MustParseAddrPort(s) }
func ap(s string) netip.AddrPort        { return netip.MustParseAddrPort(s) }
func sameIP(a, b netip.AddrPort) bool   { return a.Addr() == b.Addr() }
func extOf(n *NAT, f FlowID) netip.Addr { return n.External(f).Addr() }
func portOf(n *NAT, f FlowID) int       { return int(n.External(f).Port()) }
func ipIndex(n *NAT, f FlowID) int      { return int(n.flows[f].ip) }
func insideEP(sub int, p uint16) netip.AddrPort {
	return netip.AddrPortFrom(insideAddrs(sub + 1)[sub], p)
}

// seqCase is a table sequence: a NAT, its destinations ("tcp a:p" or
// "udp a:p") and the acts, each checked, with the whole table recounted
// after every act.
type seqCase struct {
	name   string
	source string // the rule the case checks, and where it comes from
	cfg    Config
	inside int
	dests  []string
	acts   []act
	after  func(t *testing.T, n *NAT, flows map[string]FlowID)
}

func runSeq(t *testing.T, c seqCase) {
	t.Helper()
	inside := max(c.inside, 1)
	n := newTestNAT(t, c.cfg, inside)
	ids := make([]DestID, len(c.dests))
	for i, d := range c.dests {
		ids[i] = n.Dest(dst(d[4:]), d[:3] == "udp")
		require.Equal(t, DestID(i), ids[i])
	}
	flows := map[string]FlowID{}
	for i, a := range c.acts {
		switch a.do {
		case "open":
			f, drop := n.Open(a.sub, insideEP(a.sub, a.port), ids[a.dst], 0)
			require.Equal(t, a.drop, drop, "act %d: open %s", i, a.name)
			if drop != NoDrop {
				require.Equal(t, FlowID(-1), f)
				break
			}
			flows[a.name] = f
			got := n.External(f)
			if a.ext != "" {
				assert.Equal(t, a.ext, got.String(), "act %d: %s's external", i, a.name)
			}
			if a.same != "" {
				assert.Equal(t, n.External(flows[a.same]), got, "act %d: %s shares %s's external", i, a.name, a.same)
			}
			if a.other != "" {
				assert.NotEqual(t, n.External(flows[a.other]), got, "act %d: %s differs from %s", i, a.name, a.other)
			}
		case "confirm":
			require.Equal(t, a.drop, n.Confirm(flows[a.name]), "act %d: confirm %s", i, a.name)
			if a.drop != NoDrop {
				delete(flows, a.name)
			}
		case "close":
			n.Close(flows[a.name], a.how)
		case "expire":
			n.Expire(flows[a.name])
			delete(flows, a.name)
		}
		checkTable(t, n)
	}
	if c.after != nil {
		c.after(t, n, flows)
	}
}

func withCfg(c Config, f func(*Config)) Config { f(&c); return c }

// TestMapping covers the RFC 4787 §4.1 mapping behaviours and Linux's
// best-effort reuse.
func TestMapping(t *testing.T) {
	eim := withCfg(baseConfig(), func(c *Config) {
		c.Mapping, c.UDPMapping = EndpointIndependent, EndpointIndependent
		c.PortPreservation = true
	})
	adm := withCfg(baseConfig(), func(c *Config) {
		c.Mapping, c.UDPMapping = AddressDependent, AddressDependent
		c.PortPreservation = true
	})
	apdm := withCfg(baseConfig(), func(c *Config) { c.PortPreservation = true })
	three := []string{"tcp 198.51.100.1:443", "tcp 198.51.100.2:443", "tcp 198.51.100.1:80"}
	for _, c := range []seqCase{
		{
			name: "EIM reuses the mapping across destinations", source: "RFC 4787 REQ-1, RFC 5382 REQ-1",
			cfg: eim, inside: 2, dests: three,
			acts: []act{
				open("a", 0, 5000, 0).is("203.0.113.1:5000"),
				open("b", 0, 5000, 1).sameAs("a"),
				open("c", 0, 5000, 2).sameAs("a"),
			},
			after: func(t *testing.T, n *NAT, _ map[string]FlowID) {
				assert.Equal(t, 1, n.Stats().Mappings)
				assert.Equal(t, uint64(2), n.Stats().Reused)
			},
		},
		{
			name: "EIM: no other endpoint gets the mapped port", source: "RFC 4787 REQ-3 (no port overloading)",
			cfg: eim, inside: 2, dests: three,
			acts: []act{
				open("a", 0, 5000, 0).is("203.0.113.1:5000"),
				// another inside address, same inside port, another
				// destination: the tuple is free but the port is owned
				open("b", 1, 5000, 1).notAs("a"),
				expire("a"),
				// the mapping is gone with its last flow: the port is free
				open("c", 1, 6000, 2),
				open("d", 0, 5000, 1).is("203.0.113.1:5000"),
			},
		},
		{
			name: "EIM: the mapping's tuple still held toward the destination drops", source: "GCP ENDPOINT_INDEPENDENCE_CONFLICT (nat.md §3.5)",
			cfg: eim, dests: three,
			acts: []act{
				open("a", 0, 5000, 0),
				closeF("a", CloseFIN), // TIME_WAIT keeps the tuple
				open("b", 0, 5000, 0).drops(DropEndpointIndependenceConflict),
				open("c", 0, 5000, 1).sameAs("a"), // other destinations are fine
				expire("a"),
				open("d", 0, 5000, 0).sameAs("c"),
			},
			after: func(t *testing.T, n *NAT, _ map[string]FlowID) {
				assert.Equal(t, uint64(1), n.Stats().Drops[DropEndpointIndependenceConflict])
				assert.Equal(t, uint64(1), n.Stats().Inside[0].Drops[DropEndpointIndependenceConflict])
				assert.Equal(t, uint64(1), n.Stats().Dests[0].Drops[DropEndpointIndependenceConflict])
			},
		},
		{
			name: "ADM: one mapping per remote address, owned per remote address", source: "RFC 4787 §4.1 address-dependent mapping",
			cfg: adm, inside: 2, dests: three,
			acts: []act{
				open("a", 0, 5000, 0).is("203.0.113.1:5000"),
				open("b", 0, 5000, 2).sameAs("a"), // same address, other port
				open("c", 1, 5000, 2).notAs("a"),  // 198.51.100.1 is a's
				open("d", 1, 5000, 1).is("203.0.113.1:5000"),
			},
			after: func(t *testing.T, n *NAT, _ map[string]FlowID) {
				assert.Equal(t, 3, n.Stats().Mappings)
			},
		},
		{
			name: "APDM: port overlapping across destinations", source: "RFC 7857 §3; Linux nf_nat_used_tuple (nat.md §2.6)",
			cfg: apdm, inside: 3, dests: three,
			acts: []act{
				open("a", 0, 5000, 0).is("203.0.113.1:5000"),
				open("b", 1, 5000, 1).is("203.0.113.1:5000"), // other remote: same port
				open("c", 2, 5000, 2).is("203.0.113.1:5000"), // other remote port
				open("d", 1, 5000, 0).notAs("a"),             // same 5-tuple: another port
			},
			after: func(t *testing.T, n *NAT, _ map[string]FlowID) {
				assert.Equal(t, 4, n.Stats().Mappings)
				assert.Equal(t, 2, n.Stats().IPs[0].Ports)
				assert.Equal(t, uint64(3), n.Stats().Preserved)
			},
		},
		{
			name: "Linux: the endpoint's mapping before port preservation", source: "get_unique_tuple steps 1b and 3 (nat.md §2.2)",
			cfg: presetConfig(t, PresetLinuxMasquerade, 1), inside: 2, dests: three,
			acts: []act{
				open("a", 0, 40000, 0).is("203.0.113.1:40000"),
				open("b", 1, 40000, 0).notAs("a"), // clash: the search
				open("c", 1, 40000, 1).sameAs("b"),
			},
			after: func(t *testing.T, n *NAT, _ map[string]FlowID) {
				st := n.Stats()
				assert.Equal(t, uint64(1), st.Preserved)
				assert.Equal(t, uint64(1), st.Searched)
				assert.Equal(t, uint64(1), st.Reused)
			},
		},
		{
			name: "Linux --random-fully skips reuse and preservation", source: "NF_NAT_RANGE_PROTO_RANDOM_ALL skips steps 1 and 3 (nat.md §2.2, §2.5)",
			cfg:   withCfg(presetConfig(t, PresetLinuxMasquerade, 1), func(c *Config) { c.Mode = alloc.NATRandomFully }),
			dests: three,
			acts:  []act{open("a", 0, 40000, 0), open("b", 0, 40000, 1)},
			after: func(t *testing.T, n *NAT, f map[string]FlowID) {
				st := n.Stats()
				assert.Zero(t, st.Preserved+st.Reused)
				assert.Equal(t, uint64(2), st.Searched)
			},
		},
	} {
		t.Run(c.name, func(t *testing.T) { runSeq(t, c) })
	}
}

// TestPortAssignment covers port preservation, its fallback, and parity.
func TestPortAssignment(t *testing.T) {
	pres := withCfg(baseConfig(), func(c *Config) { c.PortPreservation = true })
	parity := withCfg(baseConfig(), func(c *Config) { c.PortParity = true })
	one := []string{"udp 198.51.100.1:5004"}
	for _, c := range []seqCase{
		{
			name: "preserved when free, searched when taken", source: "RFC 4787 §4.2.1; get_unique_tuple step 3",
			cfg: pres, inside: 2, dests: one,
			acts: []act{
				open("a", 0, 5000, 0).is("203.0.113.1:5000"),
				open("b", 1, 5000, 0).is("203.0.113.1:1024"), // sequential from the bottom
			},
		},
		{
			name: "an inside port outside the pool is not preserved", source: "get_unique_tuple: in_range (nat.md §2.2)",
			cfg: pres, dests: one,
			acts: []act{open("a", 0, 80, 0).is("203.0.113.1:1024")},
		},
		{
			name: "parity kept by the search", source: "RFC 4787 REQ-4",
			cfg: parity, inside: 2, dests: one,
			acts: []act{
				open("a", 0, 5005, 0).is("203.0.113.1:1025"),
				open("b", 1, 5004, 0).is("203.0.113.1:1026"),
				open("c", 1, 5007, 0).is("203.0.113.1:1027"),
			},
		},
	} {
		t.Run(c.name, func(t *testing.T) { runSeq(t, c) })
	}
}

// TestPooling covers the IP pooling behaviours over several IPs.
func TestPooling(t *testing.T) {
	small := alloc.Range{Low: 1024, High: 1025} // two ports per IP
	cfg := func(p Pooling) Config {
		return withCfg(baseConfig(), func(c *Config) { c.ExternalIPs, c.Pooling, c.Ports = extIPs(3), p, small })
	}
	d := []string{"tcp 198.51.100.1:443"}

	t.Run("paired: one IP per inside address (RFC 4787 REQ-2)", func(t *testing.T) {
		n := newTestNAT(t, cfg(Paired), 5)
		dd := n.Dest(dst("198.51.100.1:443"), false)
		d2 := n.Dest(dst("198.51.100.9:443"), false)
		for sub := range 5 {
			f, drop := n.Open(sub, insideEP(sub, 5000), dd, 0)
			require.Equal(t, NoDrop, drop)
			g, _ := n.Open(sub, insideEP(sub, 5001), d2, 0)
			assert.Equal(t, sub%3, ipIndex(n, f))
			assert.Equal(t, extOf(n, f), extOf(n, g))
		}
		checkTable(t, n)
	})

	t.Run("arbitrary: a hash of source and destination, no fallback (find_best_ips_proto, nat.md §2.7)", func(t *testing.T) {
		n := newTestNAT(t, withCfg(cfg(Arbitrary), func(c *Config) { c.Ports = alloc.Range{Low: 1024, High: 65535} }), 64)
		used := map[int]int{}
		var dests []DestID
		for i := range 8 {
			dests = append(dests, n.Dest(netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), 443), false))
		}
		for sub := range 64 {
			for _, dd := range dests {
				f, _ := n.Open(sub, insideEP(sub, 5000), dd, 0)
				g, _ := n.Open(sub, insideEP(sub, 6000), dd, 0)
				assert.Equal(t, ipIndex(n, f), ipIndex(n, g), "same pair, same IP")
				used[ipIndex(n, f)]++
			}
		}
		assert.Len(t, used, 3)
		for ip, c := range used {
			assert.Greater(t, c, 100, "IP %d takes its share", ip)
		}
		// Fill the IP of one pair: the next flow of the pair is dropped
		// although the other IPs are free.
		m := newTestNAT(t, cfg(Arbitrary), 1)
		dd := m.Dest(dst("198.51.100.1:443"), false)
		for p := range uint16(2) {
			_, drop := m.Open(0, insideEP(0, 5000+p), dd, 0)
			require.Equal(t, NoDrop, drop)
		}
		_, drop := m.Open(0, insideEP(0, 5002), dd, 0)
		assert.Equal(t, DropOutOfResources, drop)
		checkTable(t, m)
	})

	t.Run("spread: falls through to the other IPs (AWS 8 x 55,000, nat.md §3.1)", func(t *testing.T) {
		n := newTestNAT(t, cfg(Spread), 1)
		dd := n.Dest(dst("198.51.100.1:443"), false)
		seen := map[int]int{}
		for p := range uint16(6) {
			f, drop := n.Open(0, insideEP(0, 5000+p), dd, 0)
			require.Equal(t, NoDrop, drop)
			seen[ipIndex(n, f)]++
		}
		assert.Equal(t, map[int]int{0: 2, 1: 2, 2: 2}, seen)
		_, drop := n.Open(0, insideEP(0, 5006), dd, 0)
		assert.Equal(t, DropOutOfResources, drop)
		checkTable(t, n)
	})

	t.Run("fill: IPs in order (Azure LB frontends, nat.md §3.2)", func(t *testing.T) {
		runSeq(t, seqCase{cfg: cfg(Fill), inside: 3, dests: d, acts: []act{
			open("a", 0, 5000, 0).is("203.0.113.1:1024"),
			open("b", 1, 5000, 0).is("203.0.113.1:1025"),
			open("c", 2, 5000, 0).is("203.0.113.2:1024"),
			expire("a"),
			open("d", 2, 5001, 0).is("203.0.113.1:1024"),
		}})
	})
}

// TestPerDestinationCap: exactly at the cap the next flow toward the
// destination drops, one below it passes (AWS 55,000, Azure 50,000 per IP
// and destination, nat.md §3.1, §3.3).
func TestPerDestinationCap(t *testing.T) {
	capped := withCfg(baseConfig(), func(c *Config) { c.PerDestinationCap = 3 })
	d := []string{"tcp 198.51.100.1:443", "tcp 198.51.100.1:80"}
	runSeq(t, seqCase{name: "one IP", cfg: capped, dests: d, acts: []act{
		open("a", 0, 5000, 0), open("b", 0, 5001, 0),
		open("c", 0, 5002, 0), // one below the cap: passes
		open("x", 0, 5003, 0).drops(DropPerDestinationCap),
		open("y", 0, 5003, 1), // another destination is not capped
		closeF("a", CloseFIN),
		open("z", 0, 5004, 0).drops(DropPerDestinationCap), // a held flow counts
		expire("a"),
		open("e", 0, 5004, 0),
	}})
	t.Run("spread falls through to the next IP, then drops", func(t *testing.T) {
		n := newTestNAT(t, withCfg(capped, func(c *Config) { c.ExternalIPs, c.Pooling = extIPs(2), Spread }), 1)
		dd := n.Dest(dst("198.51.100.1:443"), false)
		per := map[int]int{}
		for p := range uint16(6) {
			f, drop := n.Open(0, insideEP(0, 5000+p), dd, 0)
			require.Equal(t, NoDrop, drop, "flow %d", p)
			per[ipIndex(n, f)]++
		}
		assert.Equal(t, map[int]int{0: 3, 1: 3}, per)
		_, drop := n.Open(0, insideEP(0, 6000), dd, 0)
		assert.Equal(t, DropPerDestinationCap, drop)
		assert.Equal(t, uint64(1), n.Stats().Drops[DropPerDestinationCap])
		checkTable(t, n)
	})
	t.Run("aws preset: 55,000 pass, the next drops", func(t *testing.T) {
		n := newTestNAT(t, presetConfig(t, PresetAWSNATGateway, 1), 1)
		dd := n.Dest(dst("198.51.100.1:443"), false)
		for i := range 55000 {
			_, drop := n.Open(0, insideEP(0, uint16(1024+i)), dd, 0)
			require.Equal(t, NoDrop, drop, "flow %d", i)
		}
		_, drop := n.Open(0, insideEP(0, 60000), dd, 0)
		assert.Equal(t, DropPerDestinationCap, drop)
		checkTable(t, n)
	})
}

// TestTableFull: MaxFlows held flows, then drops; nothing is evicted (RFC
// 6888 REQ-11; nf_conntrack "table full", nat.md §2.10).
func TestTableFull(t *testing.T) {
	full := withCfg(baseConfig(), func(c *Config) { c.MaxFlows = 2 })
	runSeq(t, seqCase{cfg: full, dests: []string{"tcp 198.51.100.1:443", "udp 198.51.100.2:53"}, acts: []act{
		open("a", 0, 5000, 0), open("b", 0, 5001, 1),
		open("x", 0, 5002, 0).drops(DropTableFull),
		closeF("a", CloseRST),
		open("y", 0, 5002, 1).drops(DropTableFull), // the hold counts
		expire("a"),
		open("c", 0, 5002, 0),
	}, after: func(t *testing.T, n *NAT, _ map[string]FlowID) {
		assert.Equal(t, uint64(2), n.Stats().Drops[DropTableFull])
		assert.Equal(t, 2, n.Stats().PeakFlows)
	}})
}

// TestAllocation covers each allocation scheme.
func TestAllocation(t *testing.T) {
	static := withCfg(baseConfig(), func(c *Config) {
		c.Allocation, c.PortsPerHost, c.Ports = Static, 4, alloc.Range{Low: 1024, High: 1035}
	})
	d := []string{"tcp 198.51.100.1:443", "tcp 198.51.100.2:443"}
	for _, c := range []seqCase{
		{
			name: "static: one block per inside address, none beyond the pool", source: "Azure LB preallocation, GCP min ports per VM (nat.md §3.2, §3.5)",
			cfg: static, inside: 4, dests: d,
			acts: []act{
				open("a0", 0, 5000, 0).is("203.0.113.1:1024"),
				open("b0", 1, 5000, 0).is("203.0.113.1:1028"),
				open("c0", 2, 5000, 0).is("203.0.113.1:1032"),
				open("d0", 3, 5000, 0).drops(DropNoAllocation),
				open("a1", 0, 5001, 0), open("a2", 0, 5002, 0), open("a3", 0, 5003, 0),
				open("a4", 0, 5004, 0).drops(DropOutOfResources), // its 4 ports toward the destination
				open("a5", 0, 5004, 1).is("203.0.113.1:1024"),    // other destinations reuse them
				expire("b0"),
				open("d1", 3, 5000, 0).drops(DropNoAllocation), // never gets ports
			},
			after: func(t *testing.T, n *NAT, _ map[string]FlowID) {
				st := n.Stats()
				assert.Equal(t, []int{4, 4, 4, 0}, []int{st.Inside[0].Allocated, st.Inside[1].Allocated, st.Inside[2].Allocated, st.Inside[3].Allocated})
				assert.Equal(t, uint64(2), st.Inside[3].Drops[DropNoAllocation])
			},
		},
		{
			name: "static over two IPs: the next IP when the first has no block", source: "Azure LB frontends one after another (nat.md §3.2)",
			cfg: withCfg(static, func(c *Config) { c.ExternalIPs, c.Ports = extIPs(2), alloc.Range{Low: 1024, High: 1031} }), inside: 3, dests: d,
			acts: []act{
				open("a", 0, 5000, 0).is("203.0.113.1:1024"),
				open("b", 1, 5000, 0).is("203.0.113.1:1028"),
				open("c", 2, 5000, 0).is("203.0.113.2:1024"),
			},
		},
		{
			name: "dynamic: doubling up to the maximum, extra blocks returned", source: "GCP dynamic port allocation (nat.md §3.5)",
			cfg: withCfg(baseConfig(), func(c *Config) {
				c.Allocation, c.PortsPerHost, c.MaxPortsPerHost, c.Ports = Dynamic, 2, 8, alloc.Range{Low: 1024, High: 1039}
			}),
			inside: 2, dests: d,
			acts: []act{
				open("a", 0, 5000, 0), open("b", 0, 5001, 0), // 2 ports
				open("z", 1, 5000, 0).is("203.0.113.1:1026"),
				open("c", 0, 5002, 0).is("203.0.113.1:1028"), // doubled to 4: blocks 1024, 1028
				open("d", 0, 5003, 0).is("203.0.113.1:1029"),
				open("e", 0, 5004, 0).is("203.0.113.1:1030"), // doubled to 8: 1030, 1032
				open("f", 0, 5005, 0), open("g", 0, 5006, 0),
				open("h", 0, 5007, 0).is("203.0.113.1:1033"),
				open("x", 0, 5008, 0).drops(DropOutOfResources), // at MaxPortsPerHost
				expire("c"), expire("d"),
			},
			after: func(t *testing.T, n *NAT, f map[string]FlowID) {
				st := n.Stats()
				assert.Equal(t, 8, st.Inside[0].PeakAllocated)
				assert.Equal(t, 6, st.Inside[0].Allocated) // the block of c and d went back
				for _, k := range []string{"e", "f", "g", "h", "a", "b"} {
					n.Expire(f[k])
				}
				assert.Equal(t, 2, st.Inside[0].Allocated) // the first block stays
				checkTable(t, n)
			},
		},
		{
			name: "port blocks: at most MaxBlocks, empty blocks back to the pool", source: "Juniper secured-port-block-allocation (nat.md §1.9)",
			cfg: withCfg(baseConfig(), func(c *Config) {
				c.Allocation, c.BlockSize, c.MaxBlocks, c.Ports = Blocks, 2, 2, alloc.Range{Low: 1024, High: 1031}
			}),
			inside: 2, dests: d,
			acts: []act{
				open("a", 0, 5000, 0).is("203.0.113.1:1024"),
				open("b", 0, 5001, 0).is("203.0.113.1:1025"),
				open("k", 1, 5000, 0).is("203.0.113.1:1026"),
				open("c", 0, 5002, 0).is("203.0.113.1:1028"), // a new block only when full
				open("d", 0, 5003, 0),
				open("x", 0, 5004, 0).drops(DropOutOfResources), // MaxBlocks though the IP has a free block
				open("y", 0, 5004, 1).is("203.0.113.1:1024"),    // another destination
				expire("c"), expire("d"), // block 1028 back
				open("l", 1, 5001, 0).is("203.0.113.1:1027"),
				open("m", 1, 5002, 0).is("203.0.113.1:1028"),
			},
			after: func(t *testing.T, n *NAT, _ map[string]FlowID) {
				st := n.Stats()
				assert.Equal(t, 2, st.Inside[0].Allocated)
				assert.Equal(t, 4, st.Inside[0].PeakAllocated)
				assert.Equal(t, 4, st.Inside[1].Allocated)
			},
		},
		{
			name: "deterministic: RFC 7422 ranges", source: "FD.io VPP DET44 snat_det_forward (nat.md §1.7)",
			cfg: withCfg(presetConfig(t, PresetCGNDeterministic, 2), func(c *Config) {}), inside: 4, dests: d,
			acts: []act{
				// ratio 2, 32,256 ports each: 1024-33279, 33280-65535 on
				// each IP; the sequential picker starts at the bottom
				open("a", 0, 5000, 0).is("203.0.113.1:1024"),
				open("b", 1, 5000, 0).is("203.0.113.1:33280"),
				open("c", 2, 5000, 0).is("203.0.113.2:1024"),
				open("d", 3, 40000, 0).is("203.0.113.2:33280"),
				open("e", 3, 40001, 0).is("203.0.113.2:33281"),
			},
			after: func(t *testing.T, n *NAT, _ map[string]FlowID) {
				assert.Equal(t, 32256, n.Stats().Inside[1].Allocated)
			},
		},
	} {
		t.Run(c.name, func(t *testing.T) { runSeq(t, c) })
	}
}

// TestPoolTable: Azure LB's default preallocation by backend pool size
// (nat.md §3.2): 51 VMs get 512 ports each; beyond 1,000 none.
func TestPoolTable(t *testing.T) {
	for _, c := range []struct {
		hosts, ports int
		drop         Drop
	}{{50, 1024, NoDrop}, {51, 512, NoDrop}, {800, 64, NoDrop}, {1000, 32, NoDrop}, {1001, 0, DropNoAllocation}} {
		cfg := presetConfig(t, PresetAzureLBOutbound, 1)
		n := newTestNAT(t, cfg, c.hosts)
		dd := n.Dest(dst("198.51.100.1:443"), false)
		_, drop := n.Open(c.hosts-1, insideEP(c.hosts-1, 5000), dd, 0)
		assert.Equal(t, c.drop, drop, "%d hosts", c.hosts)
		assert.Equal(t, c.ports, n.Stats().Inside[c.hosts-1].Allocated, "%d hosts", c.hosts)
	}
}

// TestGCPStaticMinPorts: a VM with 64 minimum ports opens 64 flows to one
// destination; the 65th drops (nat.md §4, GCP OUT_OF_RESOURCES).
func TestGCPStaticMinPorts(t *testing.T) {
	n := newTestNAT(t, presetConfig(t, PresetGCPCloudNAT, 1), 2)
	dd := n.Dest(dst("198.51.100.1:443"), false)
	for i := range 64 {
		_, drop := n.Open(0, insideEP(0, uint16(30000+i)), dd, 0)
		require.Equal(t, NoDrop, drop, "flow %d", i)
	}
	_, drop := n.Open(0, insideEP(0, 40000), dd, 0)
	assert.Equal(t, DropOutOfResources, drop)
	_, drop = n.Open(1, insideEP(1, 40000), dd, 0)
	assert.Equal(t, NoDrop, drop, "the other VM has its own 64")
	checkTable(t, n)
}

// TestHold: the hold of every close kind for several presets (Timeouts
// plus CoolDowns, nat.md §2.9, §3.1-3.5).
func TestHold(t *testing.T) {
	s := time.Second
	for _, c := range []struct {
		preset string
		how    Close
		age    time.Duration
		want   time.Duration
	}{
		{PresetLinuxMasquerade, CloseFIN, 0, 120 * s}, // TIME_WAIT
		{PresetLinuxMasquerade, CloseRST, 0, 10 * s},  // CLOSE
		{PresetLinuxMasquerade, CloseHalfOpen, 0, 120 * s},
		{PresetLinuxMasquerade, CloseUDP, s, 30 * s},      // unreplied / young
		{PresetLinuxMasquerade, CloseUDP, 2 * s, 120 * s}, // stream after 2 s
		{PresetAzureNATGateway, CloseFIN, 0, 65 * s},      // cool-downs
		{PresetAzureNATGateway, CloseRST, 0, 16 * s},
		{PresetAzureNATGateway, CloseHalfOpen, 0, 30 * s},
		{PresetAzureNATGateway, CloseUDP, time.Hour, 4*time.Minute + 65*s},
		{PresetAWSNATGateway, CloseFIN, 0, 0}, // undocumented: no hold
		{PresetAWSNATGateway, CloseHalfOpen, 0, 350 * s},
		{PresetAWSNATGateway, CloseUDP, 0, 350 * s},
		{PresetGCPCloudNAT, CloseFIN, 0, 120 * s},
		{PresetGCPCloudNAT, CloseRST, 0, 30 * s},
		{PresetGCPCloudNAT, CloseHalfOpen, 0, 30 * s},
		{PresetGCPCloudNAT, CloseUDP, 0, 30 * s},
		{PresetAzureAppService, CloseFIN, 0, 4 * time.Minute}, // reclaim 4 min after close
		{PresetCGNPortBlock, CloseFIN, 0, 4*time.Minute + 120*s},
	} {
		n := newTestNAT(t, presetConfig(t, c.preset, 1), 1)
		assert.Equal(t, c.want, n.Hold(c.how, c.age), "%s close %d age %v", c.preset, c.how, c.age)
	}
}

// TestConfirmRace: two flows choose the same tuple inside the confirm
// window; the later confirm drops (conntrack insert_failed, nat.md §2.8).
func TestConfirmRace(t *testing.T) {
	race := withCfg(baseConfig(), func(c *Config) { c.ConfirmWindow = time.Millisecond; c.PortPreservation = true })
	runSeq(t, seqCase{cfg: race, inside: 2, dests: []string{"tcp 198.51.100.1:443"}, acts: []act{
		open("a", 0, 5000, 0).is("203.0.113.1:5000"),
		open("b", 1, 5000, 0).is("203.0.113.1:5000"), // a is not confirmed yet
		confirm("a", NoDrop),
		confirm("b", DropInsertFailed),
		open("c", 1, 5000, 0).is("203.0.113.1:1024"), // now a's tuple is seen
		confirm("c", NoDrop),
	}, after: func(t *testing.T, n *NAT, _ map[string]FlowID) {
		st := n.Stats()
		assert.Equal(t, 2, st.Flows)
		assert.Equal(t, uint64(1), st.Drops[DropInsertFailed])
		assert.Equal(t, uint64(1), st.Inside[1].Drops[DropInsertFailed])
	}})
}

// TestEviction6_5: Linux 6.5+ lets a TCP SYN take the port of an SNAT
// entry in TIME_WAIT or CLOSE (nf_nat_used_tuple_harder, nat_may_kill,
// nat.md §2.3); 5.x drops.
func TestEviction6_5(t *testing.T) {
	tiny := func(picker string) Config {
		return withCfg(baseConfig(), func(c *Config) { c.Picker, c.Ports = picker, alloc.Range{Low: 1024, High: 1025} })
	}
	d := []string{"tcp 198.51.100.1:443", "udp 198.51.100.1:53"}
	runSeq(t, seqCase{name: "6.5 evicts a TIME_WAIT flow", cfg: tiny(alloc.NATPickerNetfilter65), dests: d, acts: []act{
		open("a", 0, 5000, 0), open("b", 0, 5001, 0),
		closeF("a", CloseFIN),
		open("c", 0, 5002, 0).sameAs("a"),
		open("x", 0, 5003, 0).drops(DropOutOfResources), // b is established
		expire("a"), // the simulator's Expire for the evicted flow: harmless
		open("y", 0, 5003, 0).drops(DropOutOfResources),
		closeF("b", CloseRST), // CLOSE is after TIME_WAIT too
		open("e", 0, 5003, 0).sameAs("b"),
	}, after: func(t *testing.T, n *NAT, _ map[string]FlowID) {
		assert.Equal(t, uint64(2), n.Stats().Evicted)
		assert.Equal(t, 2, n.Stats().Flows)
	}})
	runSeq(t, seqCase{name: "the evicted flow was the endpoint's last: its bysource record goes", cfg: withCfg(presetConfig(t, PresetLinuxMasquerade, 1), func(c *Config) {
		c.Picker, c.Ports = alloc.NATPickerNetfilter65, alloc.Range{Low: 1024, High: 1024}
	}), dests: []string{"tcp 198.51.100.1:443", "tcp 198.51.100.2:443"}, acts: []act{
		open("a", 0, 5000, 0).is("203.0.113.1:1024"),
		closeF("a", CloseFIN),
		open("b", 0, 5000, 0).is("203.0.113.1:1024"), // reuse fails (taken), the search evicts a
		open("c", 0, 5000, 1).is("203.0.113.1:1024"), // b's record: reused
		expire("a"),
	}, after: func(t *testing.T, n *NAT, _ map[string]FlowID) {
		assert.Equal(t, uint64(1), n.Stats().Reused)
	}})
	runSeq(t, seqCase{name: "the evicted flow's block stays for the new flow", cfg: withCfg(baseConfig(), func(c *Config) {
		c.Picker, c.Ports, c.Allocation, c.BlockSize, c.MaxBlocks = alloc.NATPickerNetfilter65, alloc.Range{Low: 1024, High: 1025}, Blocks, 1, 1
	}), inside: 2, dests: d, acts: []act{
		open("a", 0, 5000, 0).is("203.0.113.1:1024"),
		open("k", 1, 5000, 0).is("203.0.113.1:1025"),
		closeF("a", CloseFIN),
		open("b", 0, 5001, 0).is("203.0.113.1:1024"),
		expire("a"),
	}, after: func(t *testing.T, n *NAT, _ map[string]FlowID) {
		assert.Equal(t, 1, n.Stats().Inside[0].Allocated)
	}})
	runSeq(t, seqCase{name: "half-open and UDP are not evicted", cfg: tiny(alloc.NATPickerNetfilter65), dests: d, acts: []act{
		open("a", 0, 5000, 0), open("b", 0, 5001, 0),
		closeF("a", CloseHalfOpen), closeF("b", CloseHalfOpen),
		open("x", 0, 5002, 0).drops(DropOutOfResources),
		open("u", 0, 5000, 1), open("v", 0, 5001, 1),
		closeF("u", CloseUDP), closeF("v", CloseUDP),
		open("w", 0, 5002, 1).drops(DropOutOfResources),
	}})
	runSeq(t, seqCase{name: "5.x does not evict", cfg: tiny(alloc.NATPickerNetfilter), dests: d, acts: []act{
		open("a", 0, 5000, 0), open("b", 0, 5001, 0),
		closeF("a", CloseFIN), closeF("b", CloseFIN),
		open("x", 0, 5002, 0).drops(DropOutOfResources),
	}})
}

// TestForwards: a static inbound rule's port is never handed to an
// outbound flow (so hairpinning needs nothing more of the table), and
// Inbound's verdict under each filtering behaviour (RFC 4787 §5).
func TestForwards(t *testing.T) {
	home := withCfg(baseConfig(), func(c *Config) {
		c.Ports = alloc.Range{Low: 2220, High: 2223}
		c.PortPreservation = true
		c.Mapping, c.UDPMapping = EndpointIndependent, EndpointIndependent
		c.Forwards = []Forward{{ExternalIP: 0, ExternalPort: 2222, Inside: ap("10.0.0.9:22")}}
		c.Hairpin = true
	})
	t.Run("the forwarded port is reserved", func(t *testing.T) {
		runSeq(t, seqCase{cfg: home, inside: 2, dests: []string{"tcp 198.51.100.1:443", "udp 198.51.100.1:443"}, acts: []act{
			open("a", 0, 2222, 0).is("203.0.113.1:2220"), // not preserved onto the rule's port
			open("b", 0, 2223, 0).is("203.0.113.1:2223"),
			open("c", 1, 5000, 0).is("203.0.113.1:2221"),
			open("x", 1, 5001, 0).drops(DropOutOfResources), // 2222 stays the rule's
			open("u", 1, 2222, 1).is("203.0.113.1:2222"),    // the rule is TCP only
		}})
	})
	for _, c := range []struct {
		filter       Filtering
		from         string
		kind         VerdictKind
		why          string
		wantFiltered bool
	}{
		{EndpointIndependentFiltering, "192.0.2.7:9", Passed, "endpoint-independent filtering", false},
		{AddressDependentFiltering, "198.51.100.1:9", Passed, "address-dependent filtering", false},
		{AddressDependentFiltering, "192.0.2.7:443", Filtered, "address-dependent filtering", true},
		{AddressAndPortDependentFiltering, "198.51.100.1:443", Passed, "address-and-port-dependent filtering", false},
		{AddressAndPortDependentFiltering, "198.51.100.1:9", Filtered, "address-and-port-dependent filtering", true},
	} {
		cfg := withCfg(home, func(cc *Config) { cc.Ports, cc.Filtering = alloc.Range{Low: 1024, High: 65535}, c.filter })
		n := newTestNAT(t, cfg, 1)
		f, drop := n.Open(0, insideEP(0, 40000), n.Dest(dst("198.51.100.1:443"), false), 0)
		require.Equal(t, NoDrop, drop)
		v, drop := n.Inbound(n.External(f), ap(c.from), false)
		assert.Equal(t, c.kind, v.Kind, "%v from %s", c.filter, c.from)
		assert.Contains(t, v.Why, c.why)
		if c.wantFiltered {
			assert.Equal(t, DropFiltered, drop)
			assert.Equal(t, uint64(1), n.Stats().Drops[DropFiltered])
		} else {
			assert.Equal(t, NoDrop, drop)
			assert.Equal(t, insideEP(0, 40000), v.Inside)
		}
		// The rule, from anywhere, whatever the filtering.
		v, drop = n.Inbound(ap("203.0.113.1:2222"), ap("192.0.2.7:5555"), false)
		assert.Equal(t, Verdict{Kind: Forwarded, Inside: ap("10.0.0.9:22"), Rule: 0, Why: v.Why}, v)
		assert.Equal(t, NoDrop, drop)
		// No mapping, wrong protocol, not our address.
		for _, k := range []struct {
			ext string
			udp bool
		}{{"203.0.113.1:3000", false}, {n.External(f).String(), true}, {"203.0.113.99:2222", false}} {
			v, drop = n.Inbound(ap(k.ext), ap("198.51.100.1:443"), k.udp)
			assert.Equal(t, Filtered, v.Kind, "%s udp %v", k.ext, k.udp)
			assert.Equal(t, DropFiltered, drop)
		}
	}
}

// TestNewErrors: New refuses what Validate refuses and unknown pickers.
func TestNewErrors(t *testing.T) {
	c := baseConfig()
	c.Picker = "nope"
	_, err := New(&c, insideAddrs(1), nil)
	var fe *FieldError
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, "picker", fe.Field)
	c = baseConfig()
	_, err = New(&c, insideAddrs(1), nil)
	assert.Error(t, err)
}

// TestExpireDrainsEverything: with every flow expired all counters are
// back to zero and no tuple, mapping or block is held.
func TestExpireDrainsEverything(t *testing.T) {
	for _, name := range PresetNames() {
		t.Run(name, func(t *testing.T) {
			cfg := presetConfig(t, name, 2)
			n := newTestNAT(t, cfg, 8)
			var flows []FlowID
			for i := range 8 {
				dd := n.Dest(netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), 443), i%2 == 1)
				for sub := range 8 {
					for p := range uint16(20) {
						if f, drop := n.Open(sub, insideEP(sub, 30000+p), dd, 0); drop == NoDrop {
							flows = append(flows, f)
						}
					}
				}
			}
			require.NotEmpty(t, flows)
			checkTable(t, n)
			for i, f := range flows {
				n.Close(f, Close(i%int(NumCloses)))
			}
			for _, f := range flows {
				n.Expire(f)
			}
			checkTable(t, n)
			assertDrained(t, n)
		})
	}
}

// assertDrained checks that a NAT with no flow holds nothing.
func assertDrained(t *testing.T, n *NAT) {
	t.Helper()
	st := n.Stats()
	assert.Zero(t, st.Flows)
	assert.Zero(t, st.Mappings)
	for _, s := range st.IPs {
		assert.Zero(t, s.Flows+s.Ports)
	}
	for i, s := range st.Inside {
		assert.Zero(t, s.Flows)
		switch n.cfg.Allocation {
		case Blocks:
			assert.Zero(t, s.Allocated, "inside %d", i)
		case Dynamic:
			assert.LessOrEqual(t, s.Allocated, n.hostPorts, "inside %d", i)
		}
	}
	for _, s := range st.Dests {
		assert.Zero(t, s.Flows)
	}
	assert.Zero(t, n.mapIdx.len())
	assert.Zero(t, n.closingIdx.len())
	for i := range n.ipd {
		if x := n.ipd[i].taken; x != nil {
			assert.Zero(t, x.Len())
		}
	}
}

// TestValidateMaxFlows: a negative max_flows is reported under its own
// name.
func TestValidateMaxFlows(t *testing.T) {
	c := baseConfig()
	c.MaxFlows = -1
	var fe *FieldError
	require.ErrorAs(t, c.Validate(1), &fe)
	assert.Equal(t, "max_flows", fe.Field)
}

// TestMoreRules: the remaining rule paths.
func TestMoreRules(t *testing.T) {
	d := []string{"tcp 198.51.100.1:443", "tcp 198.51.100.2:443"}
	for _, c := range []seqCase{
		{
			name: "EIM: the mapping's IP at the per-destination cap drops", source: "AWS/Azure per-destination caps (nat.md §3.1, §3.3) with RFC 4787 REQ-1",
			cfg: withCfg(baseConfig(), func(c *Config) {
				c.Mapping, c.PerDestinationCap, c.ExternalIPs, c.Pooling = EndpointIndependent, 1, extIPs(2), Fill
			}),
			inside: 2, dests: d,
			acts: []act{
				open("a", 0, 5000, 0).is("203.0.113.1:1024"),
				open("b", 1, 5000, 1).is("203.0.113.1:1025"),
				open("x", 1, 5000, 0).drops(DropPerDestinationCap), // b's mapping, on a capped IP
				open("y", 1, 6000, 0).is("203.0.113.2:1026"),       // a new mapping may use IP 2
			},
		},
		{
			name: "blocks: an inside address stays on its IP (paired)", source: "RFC 6888 REQ-2; Juniper PBA (nat.md §1.9)",
			cfg: withCfg(baseConfig(), func(c *Config) {
				c.Allocation, c.BlockSize, c.MaxBlocks, c.Ports, c.ExternalIPs = Blocks, 2, 1, alloc.Range{Low: 1024, High: 1025}, extIPs(2)
			}),
			inside: 3, dests: d,
			acts: []act{
				// one block per IP; the sequential cursor runs on
				open("a", 1, 5000, 0).is("203.0.113.2:1024"), // IP sub mod 2
				open("b", 0, 5000, 0).is("203.0.113.1:1025"),
				open("c", 2, 5000, 0).drops(DropNoAllocation), // both IPs' only blocks are taken
				expire("a"), // IP 2's block goes back
				open("e", 0, 5001, 0).is("203.0.113.1:1024"),
				open("x", 0, 5002, 0).drops(DropOutOfResources), // MaxBlocks 1: not IP 2's free block
				open("f", 2, 5000, 0).is("203.0.113.2:1025"),    // its first block: the next IP
				open("g", 1, 5001, 0).drops(DropNoAllocation),   // inside 1 stays on IP 2, now full
			},
		},
		{
			name: "bysource reuse within the inside address's block", source: "get_unique_tuple step 1b: in_range (nat.md §2.2)",
			cfg: withCfg(baseConfig(), func(c *Config) {
				c.ReuseMapping, c.Allocation, c.PortsPerHost, c.Ports = true, Static, 4, alloc.Range{Low: 1024, High: 1031}
			}),
			inside: 2, dests: d,
			acts: []act{
				open("a", 0, 5000, 0).is("203.0.113.1:1024"),
				open("b", 0, 5000, 1).is("203.0.113.1:1024"),
				open("c", 1, 5000, 0).is("203.0.113.1:1028"),
			},
			after: func(t *testing.T, n *NAT, _ map[string]FlowID) { assert.Equal(t, uint64(1), n.Stats().Reused) },
		},
	} {
		t.Run(c.name, func(t *testing.T) { runSeq(t, c) })
	}
	assert.Equal(t, "out-of-resources", DropOutOfResources.String())
	assert.Equal(t, "insert-failed", DropInsertFailed.String())
	assert.Equal(t, "drop(?)", NumDrops.String())
}
