package alloc

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
)

func init() { registerNAT(NATPickerNetfilterRover, newNetfilterRover) }

// netfilterRover is the search of Linux before 5.0,
// nf_nat_l4proto_unique_tuple in net/netfilter/nf_nat_proto_common.c
// (checked at 04421fe2671c, the 4.x form; v3.3's nf_nat_proto_unique_tuple
// has the same loop), the "netfilter-rover" picker (nat.md §2.4):
//
//	u16 off;
//	if (flags & NF_NAT_RANGE_PROTO_RANDOM)
//		off = l3proto->secure_port(tuple, dport);   /* keyed hash */
//	else if (flags & NF_NAT_RANGE_PROTO_RANDOM_FULLY)
//		off = prandom_u32();
//	else
//		off = *rover;                               /* per-protocol global */
//	for (i = 0; ; ++off) {
//		port = min + off % range_size;
//		if (++i != range_size && used(port)) continue;
//		if (!(flags & NF_NAT_RANGE_PROTO_RANDOM_ALL)) *rover = off;
//		return;
//	}
//
// The start offset by req.Mode:
//   - NATDefault: the picker's rover for the protocol (req.UDP chooses the
//     TCP or the UDP one). The kernel keeps one static rover per protocol
//     (nf_nat_proto_tcp.c, nf_nat_proto_udp.c) shared by every rule, pool
//     and CPU; here one picker instance is one such kernel, and a rover
//     starts at 0.
//   - NATRandom: secure_ipv4_port_ephemeral (or the IPv6 one) of the
//     tuple's source address, destination address and destination port, as
//     nf_nat_ipv4_secure_port passes them: SipHash keyed with a secret
//     drawn from NATConfig.Rand when the picker is built (netSecret, as the
//     Linux host allocators do; siphash since 4.11, MD5 before, which the
//     model does not distinguish), with no time seed, truncated to 16 bits.
//     The source address is the external one (req.External, else
//     req.Inside's address), because find_best_ips_proto has already
//     rewritten the tuple, so flows from every inside host toward one
//     destination start at the same offset.
//   - NATRandomFully: prandom_u32() truncated to 16 bits, one Uint32 of
//     NATConfig.Rand per call.
//
// Then one linear pass over the whole pool (no 248-probe budget: that came
// with 5.0), with the kernel's loop shape kept exactly:
//   - off is a u16, so, as in "netfilter", a pass that crosses 65536 jumps
//     back to index 0 of a pool whose size does not divide 65536: it may
//     probe some ports twice and never reach others.
//   - The last candidate (i == range_size) is returned without a check. If
//     it is free that is a success after range_size probes; if it is
//     taken the kernel returns the clashing tuple and conntrack confirm
//     drops the packet, which the model reports as a failure with Probes =
//     the pool size.
//   - Without a random flag the rover is set to the offset of the port
//     returned, not the one after it — also when that last unchecked
//     candidate was taken. The next search toward the same destination so
//     starts on the port just handed out and finds it busy: a second
//     consecutive flow costs at least two probes, and parallel flows from
//     all CPUs started from the same rover, which is why it was removed
//     (6ed5943f8735 "netfilter: nat: remove l4 protocol port rovers").
//     With --random or --random-fully the rover is left alone.
//
// req.Parity runs the loop over the pool's ports of the inside port's
// parity (natClass): range_size is the class size and the rover an index
// into the class. req.Evictable is ignored.
type netfilterRover struct {
	rng   *rand.Rand
	key   netSecret
	rover [2]uint16 // TCP, UDP

	last   natLast // for Explain
	mode   NATMode // the last call's flag
	udp    bool    // and protocol
	off    uint16  // its start offset
	chosen uint16  // the offset of the port returned
}

// newNetfilterRover builds "netfilter-rover": it draws the --random secret
// (two Uint64) from cfg.Rand, which must be non-nil.
func newNetfilterRover(cfg NATConfig) (NATPicker, error) {
	if cfg.Rand == nil {
		return nil, fmt.Errorf("alloc: NAT picker %s: NATConfig.Rand is nil; a seeded *rand.Rand is required", NATPickerNetfilterRover)
	}
	return &netfilterRover{rng: cfg.Rand, key: newNetSecret(cfg.Rand)}, nil
}

func (p *netfilterRover) Name() string { return NATPickerNetfilterRover }

// Pick runs one pass of the pre-5.0 loop. Only NATRandomFully draws from
// the random stream (one Uint32 per call).
func (p *netfilterRover) Pick(req *NATRequest, busy Busy) Result {
	c := natClassOf(req)
	proto := 0
	if req.UDP {
		proto = 1
	}
	p.last.cls, p.mode, p.udp = c, req.Mode, req.UDP
	if c.n == 0 {
		return p.last.set(Result{Err: EADDRNOTAVAIL})
	}
	var off uint16
	switch req.Mode {
	case NATRandom:
		h := Request{Local: req.hashSource(), Remote: req.Remote}
		off = uint16(p.key.portOffset(&h, false))
	case NATRandomFully:
		off = uint16(p.rng.Uint32())
	default:
		off = p.rover[proto]
	}
	p.off = off
	// Iterations 0..n-2 are checked; iteration n-1 is returned unchecked.
	i, q := c.walk(busy, off, c.n-1)
	taken := false
	if i < 0 {
		i = c.n - 1
		q = c.at(off, i)
		taken = busy.Has(q)
	}
	p.chosen = off + uint16(i)
	if req.Mode != NATRandom && req.Mode != NATRandomFully {
		p.rover[proto] = p.chosen
	}
	if taken {
		return p.last.set(Result{Probes: c.n, Err: EADDRNOTAVAIL})
	}
	return p.last.set(Result{Port: uint16(q), Probes: i + 1, Err: OK})
}

// hashSource is the source address the pre-5.0 --random hash reads:
// External, or Inside's address when External is unknown.
func (req *NATRequest) hashSource() netip.Addr {
	if req.External.IsValid() {
		return req.External
	}
	return req.Inside.Addr()
}

// Explain implements Explainer, e.g. "nf_nat_l4proto_unique_tuple (pre-5.0):
// pool 1024-65535 (64512), TCP rover → offset 1234, linear pass → 2260, 3
// candidates probed; TCP rover now 1236".
func (p *netfilterRover) Explain() string {
	l := &p.last
	if !l.done {
		return notYet(NATPickerNetfilterRover)
	}
	const src = "nf_nat_l4proto_unique_tuple (pre-5.0): "
	proto := "TCP"
	if p.udp {
		proto = "UDP"
	}
	if l.cls.n == 0 {
		return src + natSpan(l.cls) + " → " + l.Err.String()
	}
	var start, after string
	switch p.mode {
	case NATRandom:
		start = fmt.Sprintf("--random: keyed hash of (source, destination, dport) → offset %d", p.off)
	case NATRandomFully:
		start = fmt.Sprintf("--random-fully: prandom → offset %d", p.off)
	default:
		start = fmt.Sprintf("%s rover → offset %d", proto, p.off)
		after = fmt.Sprintf("; %s rover now %d", proto, p.chosen)
	}
	head := fmt.Sprintf("%s%s, %s, linear pass", src, natSpan(l.cls), start)
	if l.cls.wraps(p.off, l.Probes) {
		head += wrapPhrase
	}
	if l.Err != OK {
		return fmt.Sprintf("%s found all busy and returned the last, taken candidate %d → %s, %s; packet dropped at conntrack confirm%s",
			head, l.cls.at(p.off, l.cls.n-1), l.Err, probed(l.Probes), after)
	}
	return fmt.Sprintf("%s → %d, %s%s", head, l.Port, probed(l.Probes), after)
}
