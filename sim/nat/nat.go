package nat

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"

	"github.com/portsim/portsim/alloc"
	"github.com/portsim/portsim/internal/slab"
)

// DestID identifies a destination (protocol, remote address and port)
// registered with NAT.Dest.
type DestID int32

// FlowID identifies a flow in a NAT's table; -1 is none.
type FlowID int32

// Drop is why a NAT dropped a flow's first packet (or, for inbound packets,
// what stopped them).
type Drop uint8

// Drop reasons. Their String forms are the keys of summary.json's drops.
const (
	NoDrop Drop = iota
	// DropOutOfResources: no usable external port: the pool (or the inside
	// host's ports or blocks) has no port free toward the destination
	// (Linux: the search gave up; GCP OUT_OF_RESOURCES).
	DropOutOfResources
	// DropPerDestinationCap: every usable external IP already holds
	// PerDestinationCap flows toward the destination (AWS
	// ErrorPortAllocation, Azure's 50,000 per destination).
	DropPerDestinationCap
	// DropTableFull: MaxFlows flows are held (nf_conntrack "table full,
	// dropping packet").
	DropTableFull
	// DropEndpointIndependenceConflict: under endpoint-independent mapping
	// the endpoint's external port is still taken toward this destination
	// (GCP ENDPOINT_INDEPENDENCE_CONFLICT).
	DropEndpointIndependenceConflict
	// DropNoAllocation: the inside host got no ports at all: the
	// preallocation or deterministic ranges ran out before it.
	DropNoAllocation
	// DropInsertFailed: the flow lost the confirm race for its 5-tuple
	// (conntrack insert_failed, nat.md §2.8).
	DropInsertFailed
	// DropFiltered: an inbound packet no rule and no mapping lets in.
	DropFiltered
	// DropNoHairpin: an inside host sent to the NAT's own external address
	// and the NAT does not hairpin.
	DropNoHairpin
	// NumDrops is the number of Drop values, NoDrop included.
	NumDrops
)

var dropNames = [NumDrops]string{
	NoDrop:                           "none",
	DropOutOfResources:               "out-of-resources",
	DropPerDestinationCap:            "per-destination-cap",
	DropTableFull:                    "table-full",
	DropEndpointIndependenceConflict: "endpoint-independence-conflict",
	DropNoAllocation:                 "no-port-allocation",
	DropInsertFailed:                 "insert-failed",
	DropFiltered:                     "filtered",
	DropNoHairpin:                    "no-hairpin",
}

// String returns the reason's summary.json key, e.g. "out-of-resources".
func (d Drop) String() string {
	if d < NumDrops {
		return dropNames[d]
	}
	return "drop(?)"
}

// Close is how a flow ended, which picks its hold (Timeouts plus
// CoolDowns).
type Close uint8

// Ways a flow ends.
const (
	CloseFIN      Close = iota // FINs both ways: TCPTimeWait + CoolDowns.FIN
	CloseRST                   // an RST: TCPClose + CoolDowns.RST
	CloseHalfOpen              // the SYN got no answer: TCPTransitory + CoolDowns.HalfOpen
	CloseUDP                   // the last datagram: UDP (or UDPStream) + CoolDowns.UDP
	NumCloses
)

// Verdict kinds for an inbound packet.
type VerdictKind uint8

// Inbound outcomes.
const (
	Forwarded VerdictKind = iota // a static rule sends it to Inside
	Passed                       // an outbound mapping and the filtering let it in, to Inside
	Filtered                     // dropped (Drop says why)
)

// Verdict is what an inbound packet meets.
type Verdict struct {
	Kind VerdictKind
	// Inside is where it goes (Forwarded, Passed).
	Inside netip.AddrPort
	// Rule indexes Config.Forwards for Forwarded.
	Rule int
	// Why explains the verdict in one line for the trace, naming the
	// filtering behaviour (e.g. "endpoint-independent filtering: mapping of
	// 10.0.0.2:40001").
	Why string
}

// NAT is one NAT middlebox during a run: its table of flows, port
// allocations and counters. It is told the time; it schedules nothing
// itself (the simulator turns Hold into an expiry event). Not safe for
// concurrent use.
//
// The table. A flow is (protocol, inside endpoint, destination): the
// inside endpoint is the inside address index sub and the inside port, the
// destination a DestID. Its external 5-tuple (protocol, external IP,
// external port, remote address, remote port) is unique among the flows
// held: per (external IP, destination) a PortSet holds the external ports
// taken, and one external port serves any number of destinations (RFC 7857
// §3 port overlapping; Linux nf_nat_used_tuple asks whether the inverted
// tuple is taken, nat.md §0.1 and §2.6). A flow is held from Open until
// Expire: while it lives and through its whole hold after Close (the
// state timeout plus the cool-down, see Hold), it keeps its tuple, its
// table entry and its mapping.
//
// Simplifications, each a choice of the model:
//   - A cool-down counts against MaxFlows and keeps the mapping alive; a
//     real NAT may keep only a "do not reuse toward this destination"
//     mark, not a full entry (Azure documents the timers, not the
//     bookkeeping, nat.md §3.3).
//   - The inside address of a flow is inside[sub]; Open's inside argument
//     contributes only its port (and its address to the picker's request).
//   - ReuseMapping (Linux bysource) remembers, per inside endpoint, the
//     external ip:port of its most recent flow for as long as any of its
//     flows is held; Linux walks the live entries and takes the newest
//     one still in the table.
//   - Paired pooling over several IPs takes IP sub mod n; Linux
//     --persistent hashes the source address.
//   - Linux 6.5+ eviction (see Close) assumes the new SYN's sequence
//     number is past the old flow's (nf_seq_has_advanced), which a
//     connection-level model cannot check.
//   - A ConfirmWindow delays only the tuple: the flow counts in the table,
//     its mapping owns its port and its counters move at Open.
//
// Limits: fewer than 2^24 inside addresses, 65,535 external IPs, 2^23-1
// distinct remote addresses, 2^31 flows held at once.
type NAT struct {
	cfg    Config
	nIPs   int
	inside []netip.Addr
	picker alloc.NATPicker

	// reuse and preserve are ReuseMapping and PortPreservation without a
	// --random flag (get_unique_tuple skips both steps under
	// NF_NAT_RANGE_PROTO_RANDOM_ALL, nat.md §2.2 step 1).
	reuse, preserve bool
	// evicting: the picker is netfilter-6.5, which may take over the port
	// of a closing TCP flow (nat.md §2.3).
	evicting bool
	// hashKey keys the Arbitrary/Spread IP hash; subHash[sub] is the
	// inside address's share of it.
	hashKey uint64
	subHash []uint64

	dests    []dest
	destIdx  map[destKey]DestID
	raddrIdx map[netip.Addr]int32

	// ipd[dst*nIPs+ip]: the tuples taken toward dst on IP ip.
	ipd []ipDest
	// reserved[ip*2+proto]: ports of static inbound rules; owned: the ports
	// held by endpoint-independent mappings on the IP; ownedAddr[(raddr*nIPs
	// +ip)*2+proto]: by address-dependent mappings toward one remote address.
	reserved, owned, ownedAddr []*alloc.PortSet
	// portRefs[ip*2+proto][port] counts the flows on each external port.
	portRefs [][]int32

	flows   []flow
	slots   slab.NextFit
	maps    []mapRec
	freeMap int32
	mapIdx  index // endpoint key → mapping record
	// closingIdx finds the flow of an evictable tuple: key xi<<16 | port.
	closingIdx index

	// Port allocation to inside addresses (all but Shared).
	pool      *alloc.BlockPool
	subs      []subState
	hostPorts int // ports in one block: PortsPerHost, the PoolTable's, or BlockSize
	maxBlocks int // Dynamic: MaxPortsPerHost/hostPorts; Blocks: MaxBlocks
	// keepBlocks: an eviction is emptying the block a flow is about to
	// take; it stays.
	keepBlocks bool

	// The busy view of the flow being placed: the tuples taken toward its
	// destination on the IP tried, the forwarded ports and the ownership
	// set (nil for none). u, their union, and req are the picker's
	// arguments, kept here so that passing them through the interface
	// allocates nothing; u is built only when a search needs it, and kept
	// while the three sets stay the same.
	bTaken, bReserved, bOwned *alloc.PortSet
	uBuilt                    bool
	u                         alloc.Union
	req                       alloc.NATRequest
	stats                     Stats
}

// New builds a NAT for cfg (which must pass Validate) with the given inside
// addresses (subscribers; their index is the sub argument of Open), drawing
// from rnd. The picker is built first (drawing its secret, if it has one),
// then the key of the IP-pooling hash is drawn.
//
// Errors: cfg fails Validate(len(inside)) (a *FieldError, wrapped); an
// unknown picker; a nil rnd; more than 65,535 external IPs or 2^24 inside
// addresses.
func New(cfg *Config, inside []netip.Addr, rnd *rand.Rand) (*NAT, error) {
	if err := cfg.Validate(len(inside)); err != nil {
		return nil, fmt.Errorf("nat: %w", err)
	}
	if rnd == nil {
		return nil, errors.New("nat: New needs a random stream")
	}
	nIPs := len(cfg.ExternalIPs)
	if nIPs > math.MaxUint16 {
		return nil, fmt.Errorf("nat: %d external IPs; 1 to %d are supported", nIPs, math.MaxUint16)
	}
	if len(inside) >= maxSubs {
		return nil, fmt.Errorf("nat: %d inside addresses; fewer than %d are supported", len(inside), maxSubs)
	}
	p, err := alloc.NewNATPicker(cfg.Picker, alloc.NATConfig{Rand: rnd})
	if err != nil {
		return nil, fmt.Errorf("nat: %w", err)
	}
	n := &NAT{
		cfg: *cfg, nIPs: nIPs, inside: slices.Clone(inside), picker: p,
		reuse:    cfg.ReuseMapping && cfg.Mode == alloc.NATDefault,
		preserve: cfg.PortPreservation && cfg.Mode == alloc.NATDefault,
		evicting: cfg.Picker == alloc.NATPickerNetfilter65,
		hashKey:  rnd.Uint64(),
		destIdx:  map[destKey]DestID{},
		raddrIdx: map[netip.Addr]int32{},
		reserved: make([]*alloc.PortSet, 2*nIPs),
		owned:    make([]*alloc.PortSet, 2*nIPs),
		portRefs: make([][]int32, 2*nIPs),
		freeMap:  -1,
	}
	n.cfg.ExternalIPs = slices.Clone(cfg.ExternalIPs)
	n.cfg.Forwards = slices.Clone(cfg.Forwards)
	n.subHash = make([]uint64, len(inside))
	n.stats.Inside = make([]InsideStats, len(inside))
	for i, a := range inside {
		n.subHash[i] = addrHash(a, n.hashKey)
		n.stats.Inside[i].Addr = a
	}
	n.stats.IPs = make([]IPStats, nIPs)
	for i, a := range n.cfg.ExternalIPs {
		n.stats.IPs[i].Addr = a
	}
	for _, f := range n.cfg.Forwards {
		k := f.ExternalIP*2 + b2i(f.UDP)
		if n.reserved[k] == nil {
			n.reserved[k] = new(alloc.PortSet)
		}
		n.reserved[k].Add(int(f.ExternalPort))
	}
	if err := n.initAllocation(); err != nil {
		return nil, err
	}
	return n, nil
}

// Dest registers (or finds) a destination and returns its id. Ids count
// from 0 in registration order; destinations may be added at any time.
// At most 2^23-1 distinct remote addresses are supported.
func (n *NAT) Dest(remote netip.AddrPort, udp bool) DestID {
	k := destKey{remote, udp}
	if id, ok := n.destIdx[k]; ok {
		return id
	}
	ra, ok := n.raddrIdx[remote.Addr()]
	if !ok {
		ra = int32(len(n.raddrIdx))
		if ra >= maxRemoteAddrs {
			panic("nat: too many remote addresses")
		}
		n.raddrIdx[remote.Addr()] = ra
		n.ownedAddr = append(n.ownedAddr, make([]*alloc.PortSet, 2*n.nIPs)...)
	}
	id := DestID(len(n.dests))
	n.destIdx[k] = id
	self := slices.Contains(n.cfg.ExternalIPs, remote.Addr())
	n.dests = append(n.dests, dest{remote: remote, udp: udp, raddr: ra, hash: addrHash(remote.Addr(), n.hashKey), self: self})
	n.stats.Dests = append(n.stats.Dests, DestStats{Remote: remote, UDP: udp})
	n.ipd = append(n.ipd, make([]ipDest, n.nIPs)...)
	return id
}

// Open translates a new outbound flow from inside address index sub and
// inside endpoint (its address and port) toward dst, at virtual time now.
// It returns the flow, or -1 and why it was dropped. With a ConfirmWindow
// the flow is pending: the caller must call Confirm after ConfirmWindow.
//
// The steps, in order (Linux get_unique_tuple, nat.md §2.2, and RFC 4787
// for the mapping rules):
//
//  1. MaxFlows flows held: DropTableFull. Nothing is evicted (RFC 6888
//     REQ-11).
//  2. Endpoint-independent mapping (address-dependent: per remote address
//     as well): an endpoint with a mapping keeps its external ip:port; if
//     that tuple toward dst is still taken (an earlier flow's hold),
//     DropEndpointIndependenceConflict (GCP ENDPOINT_INDEPENDENCE_CONFLICT,
//     nat.md §3.5). A mapping owns its port on its IP (for its remote
//     address): no other endpoint gets it while the mapping lives (RFC
//     4787 REQ-3, RFC 5382 REQ-7: no port overloading).
//  3. ReuseMapping, without a --random flag: the external ip:port of the
//     endpoint's most recent flow, if its tuple toward dst is free and the
//     port lies in the allowed pool or blocks (Linux bysource,
//     find_appropriate_src; Stats.Reused).
//  4. The external IP by Pooling (Paired, Arbitrary, Spread, Fill) or by
//     the inside address's allocation; an IP holding PerDestinationCap
//     flows toward dst cannot take the flow (DropPerDestinationCap when no
//     IP can).
//  5. The allocation's ranges: the pool (Shared), or the inside address's
//     block(s), taken or grown now (see Allocation).
//  6. PortPreservation, without a --random flag: the inside port itself
//     if it lies in the ranges and is free (Stats.Preserved); PortParity
//     then asks the picker for the inside port's parity (RFC 4787 REQ-4).
//  7. The picker, over each range in turn, with busy = the tuples taken
//     toward dst on the IP, the forwarded ports and the mapping ownership
//     (Stats.Searched, Probes). It may evict a closing TCP flow (Linux
//     6.5+, Stats.Evicted). Failure: DropOutOfResources.
//  8. With a ConfirmWindow the tuple becomes visible to other flows only
//     at Confirm (conntrack confirm, nat.md §2.8); otherwise at once.
//
// Every drop is counted in Stats (by reason, per inside address and per
// destination).
func (n *NAT) Open(sub int, inside netip.AddrPort, dst DestID, now time.Duration) (FlowID, Drop) {
	d := &n.dests[dst]
	if d.self && !n.cfg.Hairpin {
		// An inside host sent to this NAT's own external address, which
		// needs hairpinning (RFC 4787 §6 REQ-9, RFC 5382 REQ-8).
		return n.dropped(sub, dst, DropNoHairpin)
	}
	if n.cfg.MaxFlows > 0 && n.stats.Flows >= n.cfg.MaxFlows {
		return n.dropped(sub, dst, DropTableFull)
	}
	o := opening{sub: sub, port: inside.Port(), dst: dst, udp: d.udp, pi: b2i(d.udp), m: n.cfg.ProtoMapping(d.udp), mi: -1}
	if o.m != AddressAndPortDependent || n.reuse {
		var ra int32
		if o.m == AddressDependent {
			ra = d.raddr + 1
		}
		o.key = epKey(sub, o.port, d.udp, ra)
		o.mi = n.mapIdx.get(o.key)
	}
	n.req.Inside, n.req.Remote, n.req.UDP = inside, d.remote, d.udp
	n.req.Mode, n.req.Parity = n.cfg.Mode, n.cfg.PortParity
	if o.mi >= 0 {
		if o.m != AddressAndPortDependent {
			return n.openMapped(&o)
		}
		if f := n.tryReuse(&o); f >= 0 {
			return f, NoDrop
		}
	}
	if n.cfg.Allocation == Shared {
		return n.openShared(&o)
	}
	return n.openAllocated(&o)
}

// Confirm inserts a pending flow's 5-tuple. If another flow confirmed the
// same 5-tuple first, the flow is released (its id is free again: do not
// Close or Expire it) and DropInsertFailed returned and counted (conntrack
// insert_failed, nat.md §2.8). Confirming a confirmed flow does nothing.
func (n *NAT) Confirm(f FlowID) Drop {
	fl := n.flow(f)
	if fl.flags&(fConfirmed|fDead) != 0 {
		return NoDrop
	}
	x := &n.ipd[n.xi(fl)]
	if x.taken.Has(int(fl.extPort)) {
		sub, dst := int(fl.sub), fl.dst
		n.release(f)
		n.freeSlot(f)
		n.dropped(sub, dst, DropInsertFailed)
		return DropInsertFailed
	}
	x.taken.Add(int(fl.extPort))
	fl.flags |= fConfirmed
	return NoDrop
}

// Hold returns how long a flow ended by how, after lasting age, keeps its
// 5-tuple (Timeouts plus CoolDowns):
//
//   - CloseFIN: TCPTimeWait + CoolDowns.FIN (conntrack TIME_WAIT, nat.md
//     §2.9; Azure's FIN cool-down, §3.3);
//   - CloseRST: TCPClose + CoolDowns.RST (conntrack CLOSE);
//   - CloseHalfOpen: TCPTransitory + CoolDowns.HalfOpen;
//   - CloseUDP: UDPStream when it is set and age >= UDPStreamAfter (Linux
//     udp_timeout_stream, assuming the flow was answered), else UDP; plus
//     CoolDowns.UDP.
//
// The whole hold keeps the tuple, the table entry and the mapping.
func (n *NAT) Hold(how Close, age time.Duration) time.Duration {
	t, c := &n.cfg.Timeouts, &n.cfg.CoolDowns
	switch how {
	case CloseFIN:
		return t.TCPTimeWait + c.FIN
	case CloseRST:
		return t.TCPClose + c.RST
	case CloseHalfOpen:
		return t.TCPTransitory + c.HalfOpen
	case CloseUDP:
		if t.UDPStream > 0 && age >= t.UDPStreamAfter {
			return t.UDPStream + c.UDP
		}
		return t.UDP + c.UDP
	}
	panic(fmt.Sprintf("nat: Hold: unknown close kind %d", how))
}

// Close marks flow f ended by how; the caller calls Expire after Hold.
//
// Under the netfilter-6.5 picker a confirmed TCP flow of
// address-and-port-dependent mapping closed by FIN or RST becomes
// evictable: conntrack's TIME_WAIT and CLOSE states are the ones at or
// after TCP_CONNTRACK_TIME_WAIT that nf_nat_may_kill accepts (nat.md
// §2.3). A half-open flow (SYN_SENT) is not. A flow closed before its
// Confirm, and a flow of an endpoint-independent or address-dependent
// mapping (whose port its mapping owns), is never evicted. Closing an
// evicted flow does nothing.
func (n *NAT) Close(f FlowID, how Close) {
	fl := n.flow(f)
	if fl.flags&fDead != 0 {
		return
	}
	fl.how = how
	fl.flags |= fClosing
	if !n.evicting || fl.flags&(fConfirmed|fEvictable) != fConfirmed || (how != CloseFIN && how != CloseRST) {
		return
	}
	d := &n.dests[fl.dst]
	if d.udp || n.cfg.Mapping != AddressAndPortDependent {
		return
	}
	xi := n.xi(fl)
	x := &n.ipd[xi]
	if x.closing == nil {
		x.closing = new(alloc.PortSet)
	}
	x.closing.Add(int(fl.extPort))
	n.closingIdx.put(uint64(xi)<<16|uint64(fl.extPort), int32(f))
	fl.flags |= fEvictable
}

// Expire releases flow f (its hold is over, or it was evicted). An evicted
// flow was released when it was evicted; its Expire only frees its id, so
// an id is never reused before the simulator's Expire for it.
func (n *NAT) Expire(f FlowID) {
	fl := n.flow(f)
	if fl.flags&fDead == 0 {
		n.release(f)
	}
	n.freeSlot(f)
}

// External returns flow f's external address and port.
func (n *NAT) External(f FlowID) netip.AddrPort {
	fl := n.flow(f)
	return netip.AddrPortFrom(n.cfg.ExternalIPs[fl.ip], fl.extPort)
}

// Stats returns the live counters: the same *Stats for the NAT's life,
// updated in place as flows open and expire (its slices may be replaced
// when destinations are added).
func (n *NAT) Stats() *Stats { return &n.stats }

// Stats are a NAT's counters, updated as flows open and expire.
type Stats struct {
	// Flows is the number of flows held now (live or in their hold);
	// PeakFlows its maximum.
	Flows, PeakFlows int
	// Mappings is the number of mappings held now, PeakMappings its
	// maximum: one per endpoint (and remote address) under
	// endpoint-independent (address-dependent) mapping, one per flow under
	// address-and-port-dependent mapping (RFC 4787 §4.1).
	Mappings, PeakMappings int
	// Drops counts dropped first packets (and inbound packets) by reason.
	Drops [NumDrops]uint64
	// Preserved counts flows that kept their inside port, Reused flows that
	// took their endpoint's existing mapping, Searched flows the picker
	// placed; Evicted flows evicted by a Linux 6.5+ picker.
	Preserved, Reused, Searched, Evicted uint64
	// Probes is the sum of the picker's probes, ProbesMax the most in one
	// search.
	Probes    uint64
	ProbesMax int
	IPs       []IPStats
	Inside    []InsideStats
	Dests     []DestStats
}

// IPStats are one external IP's figures.
type IPStats struct {
	Addr netip.Addr
	// Flows held on this IP and distinct external ports they use now, with
	// their maxima. TCP and UDP ports are separate inventories (nat.md
	// §3.3): TCP 5000 and UDP 5000 count as two.
	Flows, Ports, PeakFlows, PeakPorts int
}

// InsideStats are one inside address's figures.
type InsideStats struct {
	Addr netip.Addr
	// Flows it holds now and at most.
	Flows, PeakFlows int
	// Allocated is the ports preallocated or in blocks for it now (0 under
	// Shared allocation), PeakAllocated its maximum.
	Allocated, PeakAllocated int
	Drops                    [NumDrops]uint64
}

// DestStats are one destination's figures over all external IPs.
type DestStats struct {
	Remote           netip.AddrPort
	UDP              bool
	Flows, PeakFlows int
	Drops            [NumDrops]uint64
}
