package nat

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"net/netip"

	"github.com/portsim/portsim/alloc"
)

// Limits of the packed keys.
const (
	maxSubs        = 1 << 24 // inside addresses: 24 bits of an endpoint key
	maxRemoteAddrs = 1<<23 - 1
)

// flow is one table entry, 24 bytes in a slab indexed by FlowID (slots
// hands the ids out).
type flow struct {
	sub     int32
	dst     DestID
	mapping int32 // index into NAT.maps, -1 for none
	run     int32 // index into the inside address's runs, -1 for none
	inPort  uint16
	extPort uint16
	ip      uint16
	flags   uint8
	how     Close
}

// Flow flags.
const (
	fUsed      uint8 = 1 << iota // the slot holds a flow (Open until Expire)
	fConfirmed                   // its tuple is in the taken set
	fClosing                     // Close was called
	fEvictable                   // its tuple is in the closing set and closingIdx
	fDead                        // evicted: released, the slot waits for Expire
)

// mapRec is an endpoint's mapping: endpoint-independent (key: endpoint),
// address-dependent (key: endpoint and remote address), or the bysource
// record of ReuseMapping (the endpoint's newest external ip:port; own nil).
// It lives while a flow refers to it; a free record (refs 0) links the
// free list through key.
type mapRec struct {
	key  uint64
	own  *alloc.PortSet // the ownership set holding port, nil for bysource
	refs int32
	ip   uint16
	port uint16
}

// dest is a registered destination.
type dest struct {
	remote netip.AddrPort
	udp    bool
	raddr  int32  // index of the remote address
	hash   uint64 // the remote address's share of the pooling hash
	self   bool   // the remote is one of the NAT's own external IPs (hairpinning)
}

type destKey struct {
	remote netip.AddrPort
	udp    bool
}

// ipDest is one (external IP, destination): the tuples taken toward it,
// those of closing TCP flows (netfilter-6.5 only), and its flow count for
// the per-destination cap. The sets are made at first use and kept.
type ipDest struct {
	taken, closing *alloc.PortSet
	flows          int32
}

// opening is one Open in progress.
type opening struct {
	sub  int
	key  uint64
	mi   int32 // the endpoint's mapping, -1 for none
	dst  DestID
	port uint16 // inside port
	pi   int    // protocol index: 0 TCP, 1 UDP
	udp  bool
	m    Mapping
}

// has reports whether the set s, nil for empty, holds p.
func has(s *alloc.PortSet, p int) bool { return s != nil && s.Has(p) }

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// epKey packs an endpoint mapping key: remote address index (+1, 0 for
// none) in bits 41-63, inside address index in 17-40, inside port in 1-16,
// protocol in bit 0.
func epKey(sub int, port uint16, udp bool, raddr int32) uint64 {
	return uint64(raddr)<<41 | uint64(sub)<<17 | uint64(port)<<1 | uint64(b2i(udp))
}

// mix64 is the splitmix64 finalizer.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// addrHash is a keyed 64-bit hash of an address.
func addrHash(a netip.Addr, key uint64) uint64 {
	b := a.As16()
	return mix64(mix64(binary.BigEndian.Uint64(b[:8])^key) ^ binary.BigEndian.Uint64(b[8:]))
}

// hashIP is the IP of a (source, destination) pair under Arbitrary and
// Spread pooling: a keyed hash of the two addresses scaled into the IPs,
// as Linux find_best_ips_proto hashes the source seeded with the
// destination and scales the result into the range (nat.md §2.7).
func (n *NAT) hashIP(sub int, dst DestID) int {
	if n.nIPs == 1 {
		return 0
	}
	hi, _ := bits.Mul64(mix64(n.subHash[sub]^n.dests[dst].hash), uint64(n.nIPs))
	return int(hi)
}

// flow returns f's record; f must be a flow between Open and Expire.
func (n *NAT) flow(f FlowID) *flow {
	fl := &n.flows[f]
	if fl.flags&fUsed == 0 {
		panic(fmt.Sprintf("nat: flow %d is not in the table", f))
	}
	return fl
}

// xi is the index into ipd of a flow's (IP, destination).
func (n *NAT) xi(fl *flow) int { return int(fl.dst)*n.nIPs + int(fl.ip) }

// ipdAt returns (ip, dst)'s entry and index, making its taken set.
func (n *NAT) ipdAt(ip int, dst DestID) (*ipDest, int) {
	xi := int(dst)*n.nIPs + ip
	x := &n.ipd[xi]
	if x.taken == nil {
		x.taken = new(alloc.PortSet)
	}
	return x, xi
}

// capped reports whether x holds PerDestinationCap flows.
func (n *NAT) capped(x *ipDest) bool {
	return n.cfg.PerDestinationCap > 0 && int(x.flows) >= n.cfg.PerDestinationCap
}

// ownSet returns the ownership set a new mapping of o on ip takes its port
// from (nil under address-and-port-dependent mapping), making it.
func (n *NAT) ownSet(o *opening, ip int) *alloc.PortSet {
	var p **alloc.PortSet
	switch o.m {
	case EndpointIndependent:
		p = &n.owned[ip*2+o.pi]
	case AddressDependent:
		p = &n.ownedAddr[(int(n.dests[o.dst].raddr)*n.nIPs+ip)*2+o.pi]
	default:
		return nil
	}
	if *p == nil {
		*p = new(alloc.PortSet)
	}
	return *p
}

// setBusy points the busy view at (ip, o.dst): the tuples taken, the
// forwarded ports and the ownership set; and the picker's Evictable at the
// closing TCP tuples when the picker may evict.
func (n *NAT) setBusy(o *opening, ip int, x *ipDest) {
	t, r, w := x.taken, n.reserved[ip*2+o.pi], n.ownSet(o, ip)
	if t != n.bTaken || r != n.bReserved || w != n.bOwned {
		n.bTaken, n.bReserved, n.bOwned = t, r, w
		n.uBuilt = false
	}
	// The pre-5.0 --random hash keys on the translated source address
	// (nf_nat_ipv4_secure_port after find_best_ips_proto).
	n.req.External = n.cfg.ExternalIPs[ip]
	n.req.Evictable = nil
	if n.evicting && !o.udp && o.m == AddressAndPortDependent && x.closing != nil {
		n.req.Evictable = x.closing
	}
}

// busy reports whether port p is busy in the view setBusy set.
func (n *NAT) busy(p int) bool {
	return has(n.bTaken, p) || has(n.bReserved, p) || has(n.bOwned, p)
}

// union returns the busy view as the picker's Busy.
func (n *NAT) union() *alloc.Union {
	if !n.uBuilt {
		n.u = alloc.NewUnion(n.bTaken, n.bReserved, n.bOwned)
		n.uBuilt = true
	}
	return &n.u
}

// openMapped places a flow on its endpoint's endpoint-independent or
// address-dependent mapping.
func (n *NAT) openMapped(o *opening) (FlowID, Drop) {
	mr := &n.maps[o.mi]
	ip, port := int(mr.ip), int(mr.port)
	x, _ := n.ipdAt(ip, o.dst)
	if n.capped(x) {
		return n.dropped(o.sub, o.dst, DropPerDestinationCap)
	}
	if x.taken.Has(port) {
		return n.dropped(o.sub, o.dst, DropEndpointIndependenceConflict)
	}
	run := int32(-1)
	if n.cfg.Allocation != Shared {
		run = n.subs[o.sub].runOf(port)
	}
	n.stats.Reused++
	return n.commit(o, ip, port, run), NoDrop
}

// tryReuse is ReuseMapping: the endpoint's newest external ip:port, if
// usable toward o.dst; -1 if not.
func (n *NAT) tryReuse(o *opening) FlowID {
	mr := &n.maps[o.mi]
	ip, port := int(mr.ip), int(mr.port)
	x, _ := n.ipdAt(ip, o.dst)
	if n.capped(x) || x.taken.Has(port) || has(n.reserved[ip*2+o.pi], port) {
		return -1
	}
	run := int32(-1)
	if n.cfg.Allocation == Shared {
		if !n.cfg.Ports.Contains(port) {
			return -1
		}
	} else if s := &n.subs[o.sub]; int(s.ip) != ip {
		return -1
	} else if run = s.runOf(port); run < 0 {
		return -1
	}
	n.stats.Reused++
	return n.commit(o, ip, port, run)
}

// candidates returns the IPs a Shared flow may use, in order: count IPs
// from first, wrapping.
func (n *NAT) candidates(sub int, dst DestID) (first, count int) {
	switch n.cfg.Pooling {
	case Paired:
		return sub % n.nIPs, 1
	case Arbitrary:
		return n.hashIP(sub, dst), 1
	case Spread:
		return n.hashIP(sub, dst), n.nIPs
	}
	return 0, n.nIPs // Fill
}

// openShared places a flow of Shared allocation: on each candidate IP in
// turn, the inside port, then the picker over the pool.
func (n *NAT) openShared(o *opening) (FlowID, Drop) {
	first, count := n.candidates(o.sub, o.dst)
	capped := 0
	for i := range count {
		ip := first + i
		if ip >= n.nIPs {
			ip -= n.nIPs
		}
		x, xi := n.ipdAt(ip, o.dst)
		if n.capped(x) {
			capped++
			continue
		}
		n.setBusy(o, ip, x)
		if n.preserve && n.cfg.Ports.Contains(int(o.port)) && !n.busy(int(o.port)) {
			n.stats.Preserved++
			return n.commit(o, ip, int(o.port), -1), NoDrop
		}
		if p := n.search(x, xi, n.cfg.Ports); p >= 0 {
			n.stats.Searched++
			return n.commit(o, ip, p, -1), NoDrop
		}
	}
	if capped == count {
		return n.dropped(o.sub, o.dst, DropPerDestinationCap)
	}
	return n.dropped(o.sub, o.dst, DropOutOfResources)
}

// openAllocated places a flow within its inside address's allocation: the
// inside port if it lies in a range, else the picker over each range in
// turn (skipping full ones), else a new or larger allocation.
func (n *NAT) openAllocated(o *opening) (FlowID, Drop) {
	s := &n.subs[o.sub]
	if s.live == 0 && !n.allocate(o.sub) {
		return n.dropped(o.sub, o.dst, DropNoAllocation)
	}
	ip := int(s.ip)
	x, xi := n.ipdAt(ip, o.dst)
	if n.capped(x) {
		return n.dropped(o.sub, o.dst, DropPerDestinationCap)
	}
	n.setBusy(o, ip, x)
	if n.preserve {
		if r := s.runOf(int(o.port)); r >= 0 && !n.busy(int(o.port)) {
			n.stats.Preserved++
			return n.commit(o, ip, int(o.port), r), NoDrop
		}
	}
	for r := range s.runs {
		rn := &s.runs[r]
		if rn.lo == 0 || n.full(rn.rng()) {
			continue
		}
		if p := n.search(x, xi, rn.rng()); p >= 0 {
			n.stats.Searched++
			return n.commit(o, ip, p, int32(r)), NoDrop
		}
	}
	if r := n.grow(o.sub); r >= 0 {
		if p := n.search(x, xi, s.runs[r].rng()); p >= 0 {
			n.stats.Searched++
			return n.commit(o, ip, p, int32(r)), NoDrop
		}
		// Only forwarded ports (or the wrong parity) fill a new block.
		n.emptied(o.sub, int32(r))
	}
	return n.dropped(o.sub, o.dst, DropOutOfResources)
}

// full reports whether the busy view leaves no candidate in r (of the
// inside port's parity under PortParity). With evictable ports nothing is
// full: the picker may evict.
func (n *NAT) full(r alloc.Range) bool {
	if n.req.Evictable != nil {
		return false
	}
	if n.req.Parity {
		return n.union().NextFreeParity(int(r.Low), int(r.High), int(n.req.Inside.Port()&1)) < 0
	}
	return n.union().NextFree(int(r.Low), int(r.High)) < 0
}

// search runs the picker over r with the busy view set by setBusy and
// returns the port, or -1. A busy port it returns must be an evictable
// one: its flow is evicted.
func (n *NAT) search(x *ipDest, xi int, r alloc.Range) int {
	n.req.Pool = r
	res := n.picker.Pick(&n.req, n.union())
	n.stats.Probes += uint64(res.Probes)
	n.stats.ProbesMax = max(n.stats.ProbesMax, res.Probes)
	if res.Err != alloc.OK {
		return -1
	}
	p := int(res.Port)
	if n.busy(p) {
		if n.req.Evictable == nil || !x.closing.Has(p) {
			panic(fmt.Sprintf("nat: picker %s returned busy port %d", n.picker.Name(), p))
		}
		// The evicted flow's block is the one searched (blocks belong to
		// one inside address): it must not go back, the new flow takes it.
		n.keepBlocks = true
		n.evict(xi, p)
		n.keepBlocks = false
	}
	return p
}

// evict releases the closing flow holding port on ipd[xi] (Linux 6.5+
// nf_nat_used_tuple_harder kills it, nat.md §2.3); its slot waits for its
// Expire.
func (n *NAT) evict(xi, port int) {
	k := uint64(xi)<<16 | uint64(port)
	f := FlowID(n.closingIdx.get(k))
	if f < 0 {
		panic(fmt.Sprintf("nat: no closing flow holds port %d", port))
	}
	n.release(f)
	n.flows[f].flags = fUsed | fDead
	n.stats.Evicted++
}

// newFlow takes a free slot.
func (n *NAT) newFlow() FlowID {
	f := n.slots.Take()
	if f == len(n.flows) {
		n.flows = append(n.flows, flow{})
	}
	return FlowID(f)
}

// freeSlot frees f's slot.
func (n *NAT) freeSlot(f FlowID) {
	n.flows[f] = flow{}
	n.slots.Put(int(f))
}

// commit enters a placed flow in the table: its mapping, its run, its
// counters, and its tuple unless it waits for Confirm.
func (n *NAT) commit(o *opening, ip, port int, run int32) FlowID {
	if o.mi >= 0 && n.maps[o.mi].refs == 0 {
		// The search evicted the endpoint's last other flow, and its
		// bysource record went with it.
		o.mi = -1
	}
	f := n.newFlow()
	fl := &n.flows[f]
	*fl = flow{sub: int32(o.sub), dst: o.dst, mapping: o.mi, run: run, inPort: o.port, extPort: uint16(port), ip: uint16(ip), flags: fUsed}
	st := &n.stats
	switch {
	case o.m != AddressAndPortDependent:
		if o.mi < 0 {
			own := n.ownSet(o, ip)
			own.Add(port)
			fl.mapping = n.newMap(o.key, own, ip, port)
			st.Mappings++
		}
	case n.reuse:
		if o.mi < 0 {
			fl.mapping = n.newMap(o.key, nil, ip, port)
		} else {
			mr := &n.maps[o.mi]
			mr.ip, mr.port = uint16(ip), uint16(port)
		}
		st.Mappings++
	default:
		st.Mappings++
	}
	st.PeakMappings = max(st.PeakMappings, st.Mappings)
	if fl.mapping >= 0 {
		n.maps[fl.mapping].refs++
	}
	if run >= 0 {
		n.subs[o.sub].runs[run].refs++
	}
	x := &n.ipd[n.xi(fl)]
	n.count(fl, x, 1)
	if n.cfg.ConfirmWindow == 0 {
		x.taken.Add(port)
		fl.flags |= fConfirmed
	}
	return f
}

// newMap makes a mapping record.
func (n *NAT) newMap(key uint64, own *alloc.PortSet, ip, port int) int32 {
	rec := mapRec{key: key, own: own, ip: uint16(ip), port: uint16(port)}
	mi := n.freeMap
	if mi >= 0 {
		n.freeMap = int32(n.maps[mi].key)
		n.maps[mi] = rec
	} else {
		mi = int32(len(n.maps))
		n.maps = append(n.maps, rec)
	}
	n.mapIdx.put(key, mi)
	return mi
}

// release takes flow f out of the table: its tuple, its mapping reference
// (the mapping goes with its last flow), its run reference (an empty block
// may go back to the pool) and its counters. The slot stays.
func (n *NAT) release(f FlowID) {
	fl := &n.flows[f]
	xi := n.xi(fl)
	x := &n.ipd[xi]
	port := int(fl.extPort)
	if fl.flags&fConfirmed != 0 {
		x.taken.Remove(port)
	}
	if fl.flags&fEvictable != 0 {
		x.closing.Remove(port)
		n.closingIdx.del(uint64(xi)<<16 | uint64(port))
	}
	st := &n.stats
	if mi := fl.mapping; mi >= 0 {
		mr := &n.maps[mi]
		if mr.refs--; mr.refs == 0 {
			if mr.own != nil {
				mr.own.Remove(int(mr.port))
				st.Mappings--
			}
			n.mapIdx.del(mr.key)
			*mr = mapRec{key: uint64(n.freeMap)}
			n.freeMap = mi
		}
	}
	if n.cfg.ProtoMapping(n.dests[fl.dst].udp) == AddressAndPortDependent {
		st.Mappings--
	}
	if fl.run >= 0 {
		r := &n.subs[fl.sub].runs[fl.run]
		if r.refs--; r.refs == 0 {
			n.emptied(int(fl.sub), fl.run)
		}
	}
	n.count(fl, x, -1)
}

// count adds d (+1 or -1) flows to every counter fl touches.
func (n *NAT) count(fl *flow, x *ipDest, d int) {
	st := &n.stats
	x.flows += int32(d)
	st.Flows += d
	st.PeakFlows = max(st.PeakFlows, st.Flows)
	is := &st.IPs[fl.ip]
	is.Flows += d
	is.PeakFlows = max(is.PeakFlows, is.Flows)
	k := int(fl.ip)*2 + b2i(n.dests[fl.dst].udp)
	refs := n.portRefs[k]
	if refs == nil {
		refs = make([]int32, alloc.NumPorts)
		n.portRefs[k] = refs
	}
	c := &refs[fl.extPort]
	*c += int32(d)
	switch {
	case d > 0 && *c == 1:
		is.Ports++
		is.PeakPorts = max(is.PeakPorts, is.Ports)
	case d < 0 && *c == 0:
		is.Ports--
	}
	in := &st.Inside[fl.sub]
	in.Flows += d
	in.PeakFlows = max(in.PeakFlows, in.Flows)
	ds := &st.Dests[fl.dst]
	ds.Flows += d
	ds.PeakFlows = max(ds.PeakFlows, ds.Flows)
}

// dropped counts a dropped flow and returns Open's answer for it.
func (n *NAT) dropped(sub int, dst DestID, why Drop) (FlowID, Drop) {
	n.stats.Drops[why]++
	n.stats.Inside[sub].Drops[why]++
	n.stats.Dests[dst].Drops[why]++
	return -1, why
}
