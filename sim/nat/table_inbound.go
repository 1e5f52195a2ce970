package nat

import (
	"fmt"
	"net/netip"
)

// Inbound is what a packet from remote to the external endpoint ext meets:
//
//   - a static rule for ext's IP, port and protocol: Forwarded to its
//     Inside (destination NAT);
//   - else the flows held on ext's IP and port (protocol udp), under the
//     Filtering behaviour (RFC 4787 §5, nat.md §1.1):
//     endpoint-independent filtering lets it in if any flow (so any
//     mapping) holds the port; address-dependent filtering if one of them
//     goes to remote's address; address-and-port-dependent filtering only
//     if one goes to remote exactly. Passed names the inside endpoint of
//     the best-matching flow (exact remote, then remote address, then
//     any);
//   - else Filtered with DropFiltered, counted in Stats.Drops. So is a
//     packet to an address that is not one of the NAT's external IPs.
//
// Verdict.Rule is -1 unless Forwarded. Pending flows (not yet confirmed)
// and evicted ones let nothing in. A port no flow holds is answered at
// once; otherwise Inbound walks the whole table (the simulator calls it
// only for traffic to a NAT's external address, never on the outbound
// path).
func (n *NAT) Inbound(ext, remote netip.AddrPort, udp bool) (Verdict, Drop) {
	ip := -1
	for i, a := range n.cfg.ExternalIPs {
		if a == ext.Addr() {
			ip = i
			break
		}
	}
	if ip < 0 {
		return n.filtered(fmt.Sprintf("%v is not an external address of this NAT", ext.Addr()))
	}
	for i, f := range n.cfg.Forwards {
		if f.UDP == udp && f.ExternalIP == ip && f.ExternalPort == ext.Port() {
			return Verdict{Kind: Forwarded, Inside: f.Inside, Rule: i,
				Why: fmt.Sprintf("static rule %d (destination NAT): %v → %v", i, ext, f.Inside)}, NoDrop
		}
	}
	// The best match: 2 exact remote, 1 remote address, 0 the port only.
	best, match := FlowID(-1), -1
	if refs := n.portRefs[ip*2+b2i(udp)]; refs == nil || refs[ext.Port()] == 0 {
		return n.filtered(fmt.Sprintf("no mapping or rule holds %v: dropped", ext))
	}
	for i := range n.flows {
		fl := &n.flows[i]
		if fl.flags&(fConfirmed|fDead) != fConfirmed || int(fl.ip) != ip || fl.extPort != ext.Port() {
			continue
		}
		d := &n.dests[fl.dst]
		if d.udp != udp {
			continue
		}
		m := 0
		if d.remote.Addr() == remote.Addr() {
			m = 1
			if d.remote.Port() == remote.Port() {
				m = 2
			}
		}
		if m > match {
			best, match = FlowID(i), m
			if m == 2 {
				break
			}
		}
	}
	if best < 0 {
		return n.filtered(fmt.Sprintf("no mapping or rule holds %v: dropped", ext))
	}
	fl := &n.flows[best]
	in := netip.AddrPortFrom(n.inside[fl.sub], fl.inPort)
	switch n.cfg.Filtering {
	case EndpointIndependentFiltering:
		return Verdict{Kind: Passed, Inside: in, Rule: -1,
			Why: fmt.Sprintf("endpoint-independent filtering (RFC 4787 §5): %v is the mapping of %v, open to any remote", ext, in)}, NoDrop
	case AddressDependentFiltering:
		if match >= 1 {
			return Verdict{Kind: Passed, Inside: in, Rule: -1,
				Why: fmt.Sprintf("address-dependent filtering (RFC 4787 §5): %v has sent to %v from %v", in, remote.Addr(), ext)}, NoDrop
		}
		return n.filtered(fmt.Sprintf("address-dependent filtering (RFC 4787 §5): %v maps %v but has not sent to %v: dropped", ext, in, remote.Addr()))
	}
	if match == 2 {
		return Verdict{Kind: Passed, Inside: in, Rule: -1,
			Why: fmt.Sprintf("address-and-port-dependent filtering (RFC 4787 §5): %v has sent to %v from %v", in, remote, ext)}, NoDrop
	}
	return n.filtered(fmt.Sprintf("address-and-port-dependent filtering (RFC 4787 §5): %v maps %v but has not sent to %v: dropped", ext, in, remote))
}

// filtered counts and returns an inbound drop.
func (n *NAT) filtered(why string) (Verdict, Drop) {
	n.stats.Drops[DropFiltered]++
	return Verdict{Kind: Filtered, Rule: -1, Why: why}, DropFiltered
}
