package alloc

import (
	"fmt"
	"math/bits"
	"math/rand/v2"
	"strings"
)

// Names of the Linux connect() selectors, one per kernel era of
// __inet_hash_connect (net/ipv4/inet_hashtables.c; os-semantics.md §2.3,
// §2.4). They pick the port of a connect() on a socket without a bound port
// (and of bind() with IP_BIND_ADDRESS_NO_PORT); the caller's Busy decides
// what is usable: reserved ports, ports a bind()/listen() touched, and ports
// whose 4-tuple to this destination is taken (check_established).
const (
	// NameLinuxAlg3 is __inet_hash_connect as released in Linux 4.6 to
	// 5.11 (presets linux-4.19, linux-5.10): RFC 6056 §3.3.3 Algorithm 3,
	// "Simple Hash-Based Port Selection". port_offset =
	// secure_ipv4_port_ephemeral(saddr, daddr, dport), a 32-bit keyed hash
	// (siphash_3u32 since 4.11); one global `static u32 hint`, 0 at boot,
	// shared by every destination; offset = (hint + port_offset) %
	// remaining with bit 0 cleared; ports of low's parity first, then the
	// other parity (commit 1580ab63fc9a, 4.6); after a success hint += i + 2.
	// Because the hint is global, every connect() to any destination moves
	// the next port toward all others, which leaks the host's connection
	// rate (RFC 6056 §3.3.3; the reason for commit 190cc82489f4). The 2022
	// fixes (NameLinux) were backported to the 4.19.y and 5.10.y stable
	// series, so this models those kernels as originally released.
	NameLinuxAlg3 = "linux-alg3"
	// NameLinuxAlg4 is __inet_hash_connect in Linux 5.12 to 5.17, after
	// commit 190cc82489f4 "tcp: change source port randomizarion at
	// connect() time" (Feb 2021): RFC 6056 §3.3.4 Algorithm 4, "Double-Hash
	// Port Selection", with a static table_perturb[256] of u32 filled once
	// with random bytes (net_get_random_once); index =
	// hash_32(port_offset, 8) = (port_offset·0x61C88647) >> 24; offset =
	// (table[index] + port_offset) % remaining with bit 0 cleared; the same
	// two parity passes; after a success table[index] += i + 2. With 256
	// slots an observer can recover the table from about 40·256
	// connections (CVE-2022-1012, CVE-2022-32296).
	NameLinuxAlg4 = "linux-alg4-256"
	// NameLinux is __inet_hash_connect in Linux 5.18 and later (the
	// default), after the 2022 series "insufficient TCP source port
	// randomness" (b2d057560b81 64-bit siphash, 9e9b70ae923b index from the
	// low bits and offset from the high 32 bits, 4dfa9b438ee3 10-second
	// reseed, ca7af0402550 random increments, e9261476184b and 4c2c8f03a5ab
	// a 2^16-entry table, e8161345ddbb no hash_32), plus commit 207184853dbd
	// (6.8) for IP_LOCAL_PORT_RANGE: port_offset = 64-bit keyed hash of
	// (saddr, daddr, dport, Now / 10 s); a table of 2^16 u32 filled from
	// Config.Rand once; index = port_offset & 0xFFFF; offset = (table[index]
	// + (port_offset >> 32)) % remaining. Without a per-socket range:
	// remaining is rounded down to even, bit 0 of offset cleared, ports of
	// low's parity first (step 2), then the other parity. With
	// Request.LocalRange set the range is narrowed by
	// inet_sk_get_local_port_range and scanned in one step-1 pass with no
	// parity split (6.8+; 6.3 to 6.7 narrowed but kept the split). After a
	// success i = max(i, rand_below(8)·step) and table[index] += i + step,
	// so consecutive connects to one destination within one epoch land 2 to
	// 16 ports apart when nothing is busy.
	NameLinux = "linux"
)

func init() {
	register(NameLinuxAlg3, newLinuxConnect(eraHint))
	register(NameLinuxAlg4, newLinuxConnect(eraTable256))
	register(NameLinux, newLinuxConnect(eraTable64K))
}

// connectEra selects the __inet_hash_connect variant.
type connectEra uint8

const (
	eraHint     connectEra = iota // 4.6-5.11: global hint
	eraTable256                   // 5.12-5.17: table_perturb[256], hash_32 index
	eraTable64K                   // 5.18+: 2^16 table, time seed, random increments, IP_LOCAL_PORT_RANGE
)

// table64KOrder is CONFIG_INET_TABLE_PERTURB_ORDER's default: 2^16 slots.
const table64KOrder = 16

// linuxConnect is the connect() selector of one kernel era; see the
// NameLinux* constants for the algorithm of each.
//
// Probes counts the iterations of the kernel's loop over both passes, the
// chosen port included: a port found at index i of the first pass costs
// i/step + 1 probes, one found in the second pass adds the first pass's
// remaining/2 iterations. A failure costs remaining probes: Size, or Size-1
// for an odd-sized range under the parity split.
//
// Kernel quirk kept on purpose: under the parity split remaining is Size
// rounded down to even, so for an odd-sized range (e.g. ip_local_port_range
// "32768 61000") each call leaves one port of low's parity unexamined, High
// when the offset is 0 and Low otherwise, and can fail with EADDRNOTAVAIL
// while that one port is free. ip-sysctl.rst asks for low and high of
// different parity (an even size), where every port is examined and a
// failure means every port is unusable.
//
// On failure nothing changes. The eras before 5.18 have no per-socket range
// (IP_LOCAL_PORT_RANGE is 6.3+; setsockopt fails there), so they ignore
// Request.LocalRange; they do not read Request.Now.
type linuxConnect struct {
	name  string
	era   connectEra
	r     Range
	key   netSecret
	hint  uint32     // eraHint: the global hint
	table []uint32   // eraTable256, eraTable64K: table_perturb
	order uint       // eraTable256: log2(len(table)), hash_32's bits
	rng   *rand.Rand // eraTable64K: the random increments

	last lastCall     // for Explain
	ex   connectTrace // for Explain
}

// connectTrace is what Explain needs of the last __inet_hash_connect run
// beyond its Result: a few 32-bit scalars stored once per call (the range
// searched is recomputed from the per-socket range when Explain asks).
type connectTrace struct {
	index  int32 // table_perturb index; -1 for the global hint
	offset int32 // base % remaining (bit 0 cleared under the split)
	first  int32 // probes of the first pass, when the second one ran
	inc    int32 // what the success added to the hint or slot
	lr     Range // eraTable64K: Request.LocalRange
	pass   uint8 // 1 or 2: the pass that found the port; 0 none
}

// newLinuxConnect returns the constructor for one era. cfg.Rand must be
// non-nil: the net secret, then the table, are drawn from it, in that order.
//
// For the 5.12-5.17 era cfg.TableSize may enlarge the table: 0 means the
// kernel's 256; otherwise a power of two from 2 to 65536, indexed by
// hash_32(port_offset, log2(size)). This is the what-if of the May 2022 fix
// that enlarged the table alone (e9261476184b, 4c2c8f03a5ab: "40 times the
// table size" connections to recover it, about 2.6 million for 2^16),
// without the 5.18 reseeding and random increments; the security analysis
// (sim/predict) measures it. The other eras refuse a TableSize.
func newLinuxConnect(era connectEra) func(Config) (Allocator, error) {
	name := [...]string{eraHint: NameLinuxAlg3, eraTable256: NameLinuxAlg4, eraTable64K: NameLinux}[era]
	return func(cfg Config) (Allocator, error) {
		if cfg.Rand == nil {
			return nil, fmt.Errorf("alloc: %s: Config.Rand is nil; a seeded *rand.Rand is required", name)
		}
		if cfg.TableSize != 0 && era != eraTable256 {
			return nil, fmt.Errorf("alloc: %s: the table size is fixed; only %s takes one", name, NameLinuxAlg4)
		}
		a := &linuxConnect{name: name, era: era, r: cfg.Range, key: newNetSecret(cfg.Rand), rng: cfg.Rand}
		switch era {
		case eraTable256:
			a.order = 8
			if t := cfg.TableSize; t != 0 {
				if t < 2 || t > maxTableSize || t&(t-1) != 0 {
					return nil, fmt.Errorf("alloc: %s: table size %d is not a power of two from 2 to %d", name, t, maxTableSize)
				}
				a.order = uint(bits.TrailingZeros(uint(t)))
			}
			a.table = make([]uint32, 1<<a.order)
		case eraTable64K:
			a.table = make([]uint32, 1<<table64KOrder)
		}
		for i := range a.table {
			a.table[i] = cfg.Rand.Uint32()
		}
		return a, nil
	}
}

func (a *linuxConnect) Name() string { return a.name }

// Allocate runs __inet_hash_connect's selection for req (a nil req is the
// zero request) and, on success, advances the hint or the table slot.
func (a *linuxConnect) Allocate(req *Request, busy Busy) Result {
	if req == nil {
		req = &noRequest
	}
	low, high, local := int(a.r.Low), int(a.r.High), false
	var slot *uint32 // the state the success updates
	var base uint32  // offset before "% remaining"
	var lr Range     // the per-socket range, for Explain
	index := -1      // of slot in table; -1 for the hint
	switch a.era {
	case eraHint:
		slot = &a.hint
		base = a.hint + uint32(a.key.portOffset(req, false))
	case eraTable256:
		off := uint32(a.key.portOffset(req, false))
		index = int(hash32(off, a.order))
		slot = &a.table[index]
		base = *slot + off
	default:
		lr = req.LocalRange
		low, high, local = localPortRange(a.r, lr)
		off := a.key.portOffset(req, true)
		index = int(off & (1<<table64KOrder - 1))
		slot = &a.table[index]
		base = *slot + uint32(off>>32)
	}

	// high + 1: the kernel's half-open [low, high).
	end := high + 1
	remaining, step := end-low, 1
	if !local {
		step = 2
		if remaining > 1 {
			remaining &^= 1
		}
	}
	offset := int(base % uint32(remaining))
	if !local {
		offset &^= 1 // first pass: ports of low's parity
	}
	a.ex = connectTrace{index: int32(index), offset: int32(offset), lr: lr, pass: 1}
	port, i, probes := scanPass(busy, low, end, remaining, offset, step)
	if port < 0 && !local && remaining > 1 {
		var more int
		a.ex.first, a.ex.pass = int32(probes), 2
		port, i, more = scanPass(busy, low, end, remaining, offset+1, step)
		probes += more
	}
	if port < 0 {
		a.ex.pass = 0
		return a.last.set(Result{Probes: probes, Err: failErrno(req)})
	}
	if a.era == eraTable64K {
		// "on low contention the randomness is maximal and on high
		// contention it may be inexistent"
		i = max(i, a.rng.IntN(8)*step)
	}
	*slot += uint32(i + step)
	a.ex.inc = int32(i + step)
	return a.last.set(Result{Port: uint16(port), Probes: probes, Err: OK})
}

// Explain implements Explainer. It names the kernel era, where the offset
// came from, the pass that found the port and the state update, e.g.
// "__inet_hash_connect (5.18+): table_perturb[4711] + hash offset → offset
// 7344 of 28232, start 40112; even pass, 3 candidates probed → 40116;
// table_perturb[4711] += 6".
func (a *linuxConnect) Explain() string {
	l, x := &a.last, &a.ex
	if !l.done {
		return notYet(a.name)
	}
	// The range searched and the loop's remaining, as Allocate computed them.
	low, high, local := localPortRange(a.r, x.lr)
	remaining := high - low + 1
	if !local && remaining > 1 {
		remaining &^= 1
	}
	var b strings.Builder
	state := fmt.Sprintf("table_perturb[%d]", x.index)
	switch a.era {
	case eraHint:
		state = "hint"
		hint := a.hint // after the call: the success added inc
		if l.Err == OK {
			hint -= uint32(x.inc)
		}
		fmt.Fprintf(&b, "__inet_hash_connect (4.6-5.11): global hint %d", hint)
	case eraTable256:
		fmt.Fprintf(&b, "__inet_hash_connect (5.12-5.17): %s (hash_32 index)", state)
	default:
		b.WriteString("__inet_hash_connect (5.18+): ")
		if local {
			fmt.Fprintf(&b, "IP_LOCAL_PORT_RANGE %d-%d, one pass (no parity split, 6.8+); ", low, high)
		}
		b.WriteString(state)
	}
	start := low + int(x.offset)
	fmt.Fprintf(&b, " + hash offset → offset %d of %d, start %d; ", x.offset, remaining, start)
	first, second := parityName(start), parityName(start+1)
	switch {
	case l.Err != OK:
		fmt.Fprintf(&b, "all %d candidates busy", l.Probes)
		if n := high - low + 1 - remaining; n > 0 {
			fmt.Fprintf(&b, " (%d port of the odd-sized range %d-%d not examined)", n, low, high)
		}
		fmt.Fprintf(&b, " → %s; %s unchanged", l.Err, state)
		return b.String()
	case x.pass == 2:
		fmt.Fprintf(&b, "%s ports all busy (%d probed), %s pass found %d after %d more", first, x.first, second, l.Port, l.Probes-int(x.first))
	case local:
		fmt.Fprintf(&b, "%s → %d", probed(l.Probes), l.Port)
	case remaining == 1:
		fmt.Fprintf(&b, "one-port range, %s → %d", probed(l.Probes), l.Port)
	default:
		fmt.Fprintf(&b, "%s pass, %s → %d", first, probed(l.Probes), l.Port)
	}
	fmt.Fprintf(&b, "; %s += %d", state, x.inc)
	return b.String()
}

// hash32 is the kernel's generic hash_32 (include/linux/hash.h): the top
// bits of val·GOLDEN_RATIO_32.
func hash32(val uint32, bits uint) uint32 { return val * 0x61C88647 >> (32 - bits) }
