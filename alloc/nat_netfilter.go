package alloc

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

func init() {
	registerNAT(NATPickerNetfilter, func(cfg NATConfig) (NATPicker, error) { return newNetfilter(cfg, false) })
	registerNAT(NATPickerNetfilter65, func(cfg NATConfig) (NATPicker, error) { return newNetfilter(cfg, true) })
}

// NFNatMaxAttempts is NF_NAT_MAX_ATTEMPTS, the first search window of
// Linux 5.0+ nf_nat_l4proto_unique_tuple (the constant was the local
// max_attempts = 128 until 6.5 named it).
const NFNatMaxAttempts = 128

// nfMaxRounds is the most rounds a search can take: windows 128, 64, 32,
// 16, 8, after which attempts < 16 ends it.
const nfMaxRounds = 5

// netfilter is the search of Linux 5.0+ nf_nat_l4proto_unique_tuple
// (net/netfilter/nf_nat_core.c in current kernels; the 4.x stable
// backports patch nf_nat_proto_common.c), the "netfilter" and
// "netfilter-6.5" pickers (nat.md §2.3-2.4). Checked against mainline
// nf_nat_core.c at 002c6ca75289 and the 6.5 eviction patch:
//
//	u16 off = get_random_u16();           /* prandom_u32() before Oct 2022 */
//	attempts = min(range_size, 128);
//	another_round:
//	for (i = 0; i < attempts; i++, off++)
//		if (!used(min + off % range_size)) return;   /* 6.5+: used_harder(..., attempts - i) */
//	if (attempts >= range_size || attempts < 16) return;   /* give up */
//	attempts /= 2;
//	off = get_random_u16();
//	goto another_round;
//
// So a search probes windows of 128, 64, 32, 16 and 8 consecutive ports,
// each from a fresh random offset: at most 248 probes (commit a504b703bb1d
// "netfilter: nat: limit port clash resolution attempts", the 5.0 line per
// nat.md §2.4 (merge version not checked), and the Feb 2022 4.9/4.14/4.19
// stable backports), instead of the pre-5.0 scan
// of the whole pool. A pool of at most 128 ports gets one window of its
// size and no second round. The search can therefore fail while free ports
// remain — with 1% of a 64,512-port pool free a search fails with
// probability ≈ 0.99^248 ≈ 8% — and that is the behaviour the simulator
// is for. When it fails the kernel keeps the last, clashing tuple and
// conntrack confirm drops the packet (insert_failed): Err EADDRNOTAVAIL,
// Probes = candidates examined.
//
// off is a u16 in the kernel and wraps at 65536; for a pool size that does
// not divide 65536 a window that crosses the wrap jumps from index
// 65535 % size back to index 0, so it may visit some indices twice and skip
// others. The model keeps that. The random offset is one Uint32 of
// NATConfig.Rand truncated to 16 bits per round, drawn only when the round
// runs.
//
// req.Mode is ignored: since 5.0 --random and --random-fully both start at
// a random offset (and both only skip the preference steps, which are the
// caller's, nat.md §2.2, §2.5). req.Parity runs the same arithmetic over the
// pool's ports of the inside port's parity (see natClass): range_size is
// the class size and window sizes count class members.
//
// "netfilter-6.5" adds nf_nat_used_tuple_harder ("netfilter: snat: evict
// closing tcp entries on reply tuple collision", F. Westphal, nf-next v2
// of 2023-06-06; 6.5 inferred from the June 2023 net-next pull, nat.md
// §2.3): the loop passes attempts_left = attempts - i, and when
// attempts_left <= NF_NAT_HARDER_THRESH (32), the protocol is TCP and the
// new conntrack is in SYN_SENT (always so for a new TCP flow), a clashing
// entry that is SNAT-ed, in TIME_WAIT or later, not dying or fixed-timeout
// and whose sequence end the new SYN has passed is killed and the tuple
// taken. That is the last 32 probes of a 128-window round and every probe
// of the 32-, 16- and 8-windows. The caller decides which busy ports
// qualify and passes them as req.Evictable; UDP requests never evict.
type netfilter struct {
	rng   *rand.Rand
	evict bool // the 6.5+ variant

	last    natLast             // for Explain
	offs    [nfMaxRounds]uint16 // the offset of each round of the last call
	rounds  int                 // rounds run by the last call
	window  int                 // its first window, min(class size, 128)
	evicted bool                // the last call took an evictable port
}

// newNetfilter builds "netfilter" (evict false) or "netfilter-6.5".
func newNetfilter(cfg NATConfig, evict bool) (NATPicker, error) {
	p := &netfilter{rng: cfg.Rand, evict: evict}
	if cfg.Rand == nil {
		return nil, fmt.Errorf("alloc: NAT picker %s: NATConfig.Rand is nil; a seeded *rand.Rand is required", p.Name())
	}
	return p, nil
}

func (p *netfilter) Name() string {
	if p.evict {
		return NATPickerNetfilter65
	}
	return NATPickerNetfilter
}

// Pick runs the windowed search over req.Pool (or its parity class). It
// draws one offset per round it runs, so a first-probe success draws once
// and a failed search of a large pool five times.
func (p *netfilter) Pick(req *NATRequest, busy Busy) Result {
	c := natClassOf(req)
	p.last.cls, p.rounds, p.evicted = c, 0, false
	if c.n == 0 {
		return p.last.set(Result{Err: EADDRNOTAVAIL})
	}
	evict := p.evict && !req.UDP && req.Evictable != nil
	attempts := min(c.n, NFNatMaxAttempts)
	p.window = attempts
	probes := 0
	for {
		off := uint16(p.rng.Uint32())
		p.offs[p.rounds] = off
		p.rounds++
		i, q := c.walk(busy, off, attempts)
		if evict {
			// The probes with attempts - i <= 32 may take an evictable
			// busy port; those before the first free one are all busy.
			end := attempts
			if i >= 0 {
				end = i
			}
			for k := max(0, attempts-NFNatHarderThresh); k < end; k++ {
				if e := c.at(off, k); req.Evictable.Has(e) {
					i, q, p.evicted = k, e, true
					break
				}
			}
		}
		if i >= 0 {
			return p.last.set(Result{Port: uint16(q), Probes: probes + i + 1, Err: OK})
		}
		probes += attempts
		if attempts >= c.n || attempts < 16 {
			return p.last.set(Result{Probes: probes, Err: EADDRNOTAVAIL})
		}
		attempts /= 2
	}
}

// Explain implements Explainer, e.g. "nf_nat_l4proto_unique_tuple (5.0+):
// pool 1024-65535 (64512), window 128 at offset 51234 → 40321, 3 candidates
// probed", or for a failure "... windows 128/64/32/16/8 at offsets
// 51234/7/.../9 all busy → EADDRNOTAVAIL, 248 candidates probed; packet
// dropped at conntrack confirm".
func (p *netfilter) Explain() string {
	l := &p.last
	if !l.done {
		return notYet(p.Name())
	}
	src := "nf_nat_l4proto_unique_tuple (5.0-6.4): "
	if p.evict {
		src = "nf_nat_l4proto_unique_tuple (6.5+): "
	}
	if p.rounds == 0 {
		return src + natSpan(l.cls) + " → " + l.Err.String()
	}
	var wins, offs strings.Builder
	w, before, wrapped := p.window, 0, false
	for r := range p.rounds {
		if r > 0 {
			wins.WriteByte('/')
			offs.WriteByte('/')
		}
		fmt.Fprintf(&wins, "%d", w)
		fmt.Fprintf(&offs, "%d", p.offs[r])
		walked := w // the probes of this round
		if r == p.rounds-1 {
			walked = l.Probes - before
		}
		wrapped = wrapped || l.cls.wraps(p.offs[r], walked)
		before += w
		w /= 2
	}
	what := "window %s at offset %s"
	if p.rounds > 1 {
		what = "windows %s at offsets %s"
	}
	head := fmt.Sprintf("%s%s, "+what, src, natSpan(l.cls), wins.String(), offs.String())
	if wrapped {
		head += wrapPhrase
	}
	if l.Err != OK {
		return fmt.Sprintf("%s all busy → %s, %s; packet dropped at conntrack confirm", head, l.Err, probed(l.Probes))
	}
	note := ""
	if p.evicted {
		note = "; took it by evicting a closing TCP entry (nf_nat_used_tuple_harder, last 32 probes)"
	}
	return fmt.Sprintf("%s → %d, %s%s", head, l.Port, probed(l.Probes), note)
}
