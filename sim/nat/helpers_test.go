package nat

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/portsim/portsim/alloc"
)

// extIPs returns n documentation addresses 203.0.113.1, .2, ...
func extIPs(n int) []netip.Addr {
	ips := make([]netip.Addr, n)
	for i := range ips {
		ips[i] = netip.AddrFrom4([4]byte{203, 0, 113, byte(i + 1)})
	}
	return ips
}

// insideAddrs returns n inside addresses 10.0.x.y from 10.0.0.1.
func insideAddrs(n int) []netip.Addr {
	a := make([]netip.Addr, n)
	for i := range a {
		a[i] = netip.AddrFrom4([4]byte{10, 0, byte((i + 1) >> 8), byte(i + 1)})
	}
	return a
}

// baseConfig is a small Shared NAT built field by field: one IP, address-
// and port-dependent mapping and filtering, the sequential picker (so the
// ports are predictable: the pool's first free port, then onward).
func baseConfig() Config {
	return Config{
		ExternalIPs: extIPs(1),
		Picker:      alloc.NATPickerSequential,
		Ports:       alloc.Range{Low: 1024, High: 65535},
		Timeouts:    Timeouts{TCPEstablished: 300e9, UDP: 30e9, TCPTimeWait: 120e9, TCPClose: 10e9, TCPTransitory: 30e9},
	}
}

// presetConfig is preset name with ips external IPs.
func presetConfig(t testing.TB, name string, ips int) Config {
	t.Helper()
	c, err := Preset(name)
	require.NoError(t, err)
	c.ExternalIPs = extIPs(ips)
	return c
}

// newTestNAT builds a NAT for cfg with nInside inside addresses and a fixed
// seed, failing the test on an error.
func newTestNAT(t testing.TB, cfg Config, nInside int) *NAT {
	t.Helper()
	n, err := New(&cfg, insideAddrs(nInside), rand.New(rand.NewPCG(1, 2)))
	require.NoError(t, err)
	return n
}

// checkTable recounts every counter and set from the flow records and
// fails if anything differs, or if two confirmed flows share an external
// 5-tuple, or if an endpoint-independent or address-dependent mapping's
// port serves another endpoint (RFC 4787 REQ-3).
func checkTable(t testing.TB, n *NAT) {
	t.Helper()
	if err := recount(n); err != nil {
		t.Fatal(err)
	}
}

func recount(n *NAT) error {
	type tuple struct {
		dst  DestID
		ip   uint16
		port uint16
	}
	type ipPort struct {
		k    int // ip*2+proto
		port uint16
	}
	type ownKey struct {
		k     int
		raddr int32 // -1 for endpoint-independent
		port  uint16
	}
	want := Stats{
		IPs:    make([]IPStats, n.nIPs),
		Inside: make([]InsideStats, len(n.inside)),
		Dests:  make([]DestStats, len(n.dests)),
	}
	confirmed := map[tuple]FlowID{}
	ports := map[ipPort]bool{}
	owner := map[ownKey]uint64{} // inside endpoint per owned port
	ipdFlows := make([]int32, len(n.ipd))
	mapRefs := map[int32]int32{}
	runRefs := map[[2]int32]int32{}
	closing := 0
	for i := range n.flows {
		fl := &n.flows[i]
		f := FlowID(i)
		if fl.flags&fUsed == 0 || fl.flags&fDead != 0 {
			continue
		}
		d := &n.dests[fl.dst]
		pi := b2i(d.udp)
		want.Flows++
		want.IPs[fl.ip].Flows++
		want.Inside[fl.sub].Flows++
		want.Dests[fl.dst].Flows++
		ipdFlows[n.xi(fl)]++
		ports[ipPort{int(fl.ip)*2 + pi, fl.extPort}] = true
		if has(n.reserved[int(fl.ip)*2+pi], int(fl.extPort)) {
			return fmt.Errorf("flow %d has forwarded port %d", f, fl.extPort)
		}
		if !n.cfg.Ports.Contains(int(fl.extPort)) {
			return fmt.Errorf("flow %d has port %d outside the pool %v", f, fl.extPort, n.cfg.Ports)
		}
		if fl.flags&fConfirmed != 0 {
			k := tuple{fl.dst, fl.ip, fl.extPort}
			if g, dup := confirmed[k]; dup {
				return fmt.Errorf("flows %d and %d share the external 5-tuple %v:%d → %v", g, f, n.cfg.ExternalIPs[fl.ip], fl.extPort, d.remote)
			}
			confirmed[k] = f
			if !n.ipd[n.xi(fl)].taken.Has(int(fl.extPort)) {
				return fmt.Errorf("flow %d confirmed but its port %d is not taken", f, fl.extPort)
			}
		}
		if fl.flags&fEvictable != 0 {
			closing++
			if FlowID(n.closingIdx.get(uint64(n.xi(fl))<<16|uint64(fl.extPort))) != f {
				return fmt.Errorf("evictable flow %d is not indexed", f)
			}
		}
		m := n.cfg.ProtoMapping(d.udp)
		if m == AddressAndPortDependent {
			want.Mappings++
		} else {
			ra := int32(-1)
			if m == AddressDependent {
				ra = d.raddr
			}
			ok := ownKey{int(fl.ip)*2 + pi, ra, fl.extPort}
			ep := epKey(int(fl.sub), fl.inPort, d.udp, 0)
			if e, seen := owner[ok]; seen && e != ep {
				return fmt.Errorf("port %d on %v serves two endpoints under %v mapping (port overloading)", fl.extPort, n.cfg.ExternalIPs[fl.ip], m)
			}
			owner[ok] = ep
			if fl.mapping < 0 {
				return fmt.Errorf("flow %d of %v mapping has no mapping", f, m)
			}
			mr := &n.maps[fl.mapping]
			if mr.ip != fl.ip || mr.port != fl.extPort {
				return fmt.Errorf("flow %d is on %d:%d, its mapping on %d:%d", f, fl.ip, fl.extPort, mr.ip, mr.port)
			}
		}
		if fl.mapping >= 0 {
			mapRefs[fl.mapping]++
		}
		if fl.run >= 0 {
			r := &n.subs[fl.sub].runs[fl.run]
			if fl.extPort < r.lo || fl.extPort > r.hi {
				return fmt.Errorf("flow %d port %d outside its block %d-%d", f, fl.extPort, r.lo, r.hi)
			}
			if int32(fl.ip) != n.subs[fl.sub].ip {
				return fmt.Errorf("flow %d on IP %d, its inside address on %d", f, fl.ip, n.subs[fl.sub].ip)
			}
			runRefs[[2]int32{fl.sub, fl.run}]++
		} else if n.cfg.Allocation != Shared {
			return fmt.Errorf("flow %d of an allocation scheme has no block", f)
		}
	}
	st := n.Stats()
	for k := range ports {
		want.IPs[k.k/2].Ports++
	}
	owned := 0
	for _, mr := range n.maps {
		if mr.refs > 0 && mr.own != nil {
			owned++
		}
	}
	want.Mappings += owned
	if st.Flows != want.Flows || st.Mappings != want.Mappings {
		return fmt.Errorf("flows %d mappings %d, recount %d and %d", st.Flows, st.Mappings, want.Flows, want.Mappings)
	}
	for i := range want.IPs {
		if st.IPs[i].Flows != want.IPs[i].Flows || st.IPs[i].Ports != want.IPs[i].Ports {
			return fmt.Errorf("IP %d: flows %d ports %d, recount %d and %d", i, st.IPs[i].Flows, st.IPs[i].Ports, want.IPs[i].Flows, want.IPs[i].Ports)
		}
	}
	for i := range want.Inside {
		if st.Inside[i].Flows != want.Inside[i].Flows {
			return fmt.Errorf("inside %d: flows %d, recount %d", i, st.Inside[i].Flows, want.Inside[i].Flows)
		}
	}
	for i := range want.Dests {
		if st.Dests[i].Flows != want.Dests[i].Flows {
			return fmt.Errorf("dest %d: flows %d, recount %d", i, st.Dests[i].Flows, want.Dests[i].Flows)
		}
	}
	var peak int
	for i := range n.ipd {
		x := &n.ipd[i]
		if x.flows != ipdFlows[i] {
			return fmt.Errorf("ipd %d: flows %d, recount %d", i, x.flows, ipdFlows[i])
		}
		if x.taken != nil {
			c := 0
			for k := range confirmed {
				if int(k.dst)*n.nIPs+int(k.ip) == i {
					c++
				}
			}
			if x.taken.Len() != c {
				return fmt.Errorf("ipd %d: %d ports taken, %d confirmed flows", i, x.taken.Len(), c)
			}
		}
		if x.closing != nil {
			peak += x.closing.Len()
		}
		if n.cfg.PerDestinationCap > 0 && int(x.flows) > n.cfg.PerDestinationCap {
			return fmt.Errorf("ipd %d: %d flows over the cap %d", i, x.flows, n.cfg.PerDestinationCap)
		}
	}
	if peak != closing || n.closingIdx.len() != closing {
		return fmt.Errorf("closing sets hold %d, index %d, flows %d", peak, n.closingIdx.len(), closing)
	}
	live := 0
	for mi, mr := range n.maps {
		if mr.refs == 0 {
			continue
		}
		if n.mapIdx.get(mr.key) != int32(mi) {
			return fmt.Errorf("mapping %d is not indexed under its key", mi)
		}
		live++
		if mapRefs[int32(mi)] != mr.refs {
			return fmt.Errorf("mapping %d: refs %d, recount %d", mi, mr.refs, mapRefs[int32(mi)])
		}
		if mr.own != nil && !mr.own.Has(int(mr.port)) {
			return fmt.Errorf("mapping %d does not own its port %d", mi, mr.port)
		}
	}
	if live != n.mapIdx.len() {
		return fmt.Errorf("%d live mappings, %d indexed", live, n.mapIdx.len())
	}
	ownedBits := 0
	for _, s := range append(append([]*alloc.PortSet{}, n.owned...), n.ownedAddr...) {
		if s != nil {
			ownedBits += s.Len()
		}
	}
	if ownedBits != owned {
		return fmt.Errorf("%d owned ports, %d owning mappings", ownedBits, owned)
	}
	for sub := range n.subs {
		s := &n.subs[sub]
		alloced, live := 0, 0
		for r := range s.runs {
			rn := &s.runs[r]
			if rn.lo == 0 {
				continue
			}
			live++
			alloced += rn.rng().Size()
			if rn.refs != runRefs[[2]int32{int32(sub), int32(r)}] {
				return fmt.Errorf("inside %d block %d: refs %d, recount %d", sub, r, rn.refs, runRefs[[2]int32{int32(sub), int32(r)}])
			}
			if rn.refs == 0 && n.cfg.Allocation == Blocks {
				return fmt.Errorf("inside %d keeps empty block %d", sub, r)
			}
		}
		if int(s.live) != live || st.Inside[sub].Allocated != alloced {
			return fmt.Errorf("inside %d: %d blocks, %d ports allocated; recount %d and %d", sub, s.live, st.Inside[sub].Allocated, live, alloced)
		}
	}
	return nil
}
