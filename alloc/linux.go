package alloc

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/dchest/siphash"
)

// Pieces shared by the Linux selectors (linux_connect.go, linux_bind.go,
// linux_udp.go): the keyed port-offset hash of net/core/secure_seq.c, the
// per-socket range of inet_sk_get_local_port_range, and the stepped,
// wrapping candidate loop that __inet_hash_connect and
// inet_csk_find_open_port both run (os-semantics.md §2.2, §2.3, §2.8, §3.2).

// noRequest stands in for a nil *Request: no addresses, time 0, no socket
// options.
var noRequest Request

// shufflePeriod is EPHEMERAL_PORT_SHUFFLE_PERIOD (net/core/secure_seq.c,
// Linux 5.18+, commit 4dfa9b438ee3 "tcp: resalt the secret every 10
// seconds"): the time seed of the port-offset hash is jiffies / (10·HZ), so
// the offset toward one destination changes every 10 s. The kernel's
// epochs start at an arbitrary phase after boot, unrelated to when a run
// starts, so the model's epoch is (Request.Now + phase) / 10 s with the
// phase in [0, 10 s) taken from the secret (netSecret.epoch). The
// cross-check found this: with the epochs aligned to the start of the run,
// a 2-second run never crossed an epoch in the model, while one kernel run
// in five did, and its port order then fell outside every simulated key's.
const shufflePeriod = 10 * time.Second

// netSecret is the 128-bit SipHash key of secure_ipv4_port_ephemeral and
// secure_ipv6_port_ephemeral (net_secret, filled once at boot by
// net_get_random_once). The model draws it from Config.Rand when the
// allocator is built, so a run's offsets follow from its seed.
type netSecret struct{ k0, k1 uint64 }

func newNetSecret(rng *rand.Rand) netSecret { return netSecret{k0: rng.Uint64(), k1: rng.Uint64()} }

// epoch is the time seed of the port-offset hash at virtual time now:
// jiffies / (10·HZ) with the boot phase unknown to the run, modelled as
// k1 mod 10 s so that it varies with the seed as the key does, without a
// draw of its own (which would shift every later draw of Config.Rand).
func (k netSecret) epoch(now time.Duration) uint32 {
	phase := time.Duration(k.k1 % uint64(shufflePeriod))
	return uint32((now + phase) / shufflePeriod)
}

// portOffset is secure_ipv4_port_ephemeral / secure_ipv6_port_ephemeral
// (net/core/secure_seq.c): SipHash-2-4 keyed with the net secret over the
// source address, destination address and destination port, and with
// timeSeed (Linux 5.18+) the 10-second epoch of req.Now. The source port is
// not an input. Kernels before 5.18 return the low 32 bits; callers
// truncate.
//
// The hashed bytes are laid out as the kernel lays them out on a
// little-endian CPU since 4.11 (MD5 before that), so with the kernel's key
// the value would be the kernel's:
//   - IPv4 (both addresses IPv4 or IPv4-mapped; an invalid Local counts as
//     0.0.0.0): siphash_3u32(saddr, daddr, dport), or siphash_4u32 with the
//     epoch as fourth word: 4-byte words in memory order, addresses and port
//     in network byte order, the port zero-extended to a word; 12 or 16
//     bytes.
//   - IPv6: the 16-byte addresses, then (5.18+) the epoch as a 4-byte
//     little-endian word, then the port; 34 or 38 bytes. The 2022 patch
//     first placed the epoch after the port, outside the hashed length, so
//     early 5.18-era kernels did not rotate IPv6 offsets; the struct was
//     later reordered, and the model follows the reordered form.
//
// The key comes from Config.Rand instead of the boot-time net_secret, so the
// ports differ from any real host's, but their structure (what is shared,
// what rotates, what an observer can learn) is the kernel's. The input is
// built in a stack array, so the call does not allocate.
func (k netSecret) portOffset(req *Request, timeSeed bool) uint64 {
	var b [38]byte
	n := 0
	l, r := req.Local.Unmap(), req.Remote.Addr().Unmap()
	epoch := k.epoch(req.Now)
	if r.Is4() && !l.Is6() {
		if l.Is4() {
			a := l.As4()
			copy(b[0:4], a[:])
		}
		a := r.As4()
		copy(b[4:8], a[:])
		binary.BigEndian.PutUint16(b[8:10], req.Remote.Port()) // b[10:12] stay 0
		n = 12
		if timeSeed {
			binary.LittleEndian.PutUint32(b[12:16], epoch)
			n = 16
		}
	} else {
		a, c := l.As16(), r.As16()
		copy(b[0:16], a[:])
		copy(b[16:32], c[:])
		n = 32
		if timeSeed {
			binary.LittleEndian.PutUint32(b[32:36], epoch)
			n = 36
		}
		binary.BigEndian.PutUint16(b[n:n+2], req.Remote.Port())
		n += 2
	}
	return siphash.Hash(k.k0, k.k1, b[:n])
}

// localPortRange is inet_sk_get_local_port_range (net/ipv4/inet_connection_sock.c,
// Linux 6.3+, os-semantics.md §2.8): the netns range r narrowed by the
// socket's IP_LOCAL_PORT_RANGE lr. Each bound of lr is used only if it lies
// inside the range as narrowed so far (low first, then high); otherwise the
// netns bound stays, so the result is never empty or wider than r. set
// reports whether lr is set at all (non-zero), which is what switches
// __inet_hash_connect to its step-1 scan even when neither bound applied.
func localPortRange(r, lr Range) (low, high int, set bool) {
	low, high = int(r.Low), int(r.High)
	if lr == (Range{}) {
		return low, high, false
	}
	if sl := int(lr.Low); low <= sl && sl <= high {
		low = sl
	}
	if sh := int(lr.High); low <= sh && sh <= high {
		high = sh
	}
	return low, high, true
}

// scanPass is one pass of the candidate loop of __inet_hash_connect and
// inet_csk_find_open_port, with high exclusive:
//
//	port = low + offset
//	for (i = 0; i < remaining; i += step, port += step) {
//		if (port >= high) port -= remaining;
//		if (port is usable) return port;   /* busy: reserved, bind conflict, ... */
//	}
//
// 0 <= offset <= remaining <= high-low must hold (offset == remaining only
// for a one-port pass). It returns the first usable port, the loop index i
// at which it was found, and how many candidates the loop examined; port
// -1 with probes = the number of iterations when none was usable.
//
// The loop visits two runs of ports in ascending order: low+offset up to
// high, then, after the wrap, from low+offset+k·step-remaining on. Each run
// is one word-at-a-time search (Busy.NextFreeParity for step 2, NextFree for
// step 1), and the index and probe count follow from the position of the
// port found, so the cost is O(range/64) whatever the loop would have
// walked.
func scanPass(busy Busy, low, high, remaining, offset, step int) (port, i, probes int) {
	total := (remaining + step - 1) / step // iterations of the loop
	start := low + offset
	n := min(total, (high-start+step-1)/step) // iterations before the wrap
	if q := nextUsable(busy, start, start+(n-1)*step, step); q >= 0 {
		k := (q - start) / step
		return q, k * step, k + 1
	}
	if total > n {
		wrapped := start + n*step - remaining
		if q := nextUsable(busy, wrapped, wrapped+(total-n-1)*step, step); q >= 0 {
			k := n + (q-wrapped)/step
			return q, k * step, k + 1
		}
	}
	return -1, 0, total
}

// nextUsable returns the first port q in [from, to] with q ≡ from (mod step)
// that busy does not report, or -1; step is 1 or 2. It panics if busy
// answers outside that set: handing out such a port would break "never out
// of range, never busy" without a trace.
func nextUsable(busy Busy, from, to, step int) int {
	q, method := 0, "NextFree"
	if step == 1 {
		q = busy.NextFree(from, to)
	} else {
		q, method = busy.NextFreeParity(from, to, from&1), "NextFreeParity"
	}
	if q >= 0 && (q < from || q > to || (q-from)%step != 0) {
		panicSpan(method, q, from, to)
	}
	return q
}

// panicSpan reports a Busy implementation that broke its contract.
//
//go:noinline
func panicSpan(method string, q, from, to int) {
	panic(fmt.Sprintf("alloc: Busy.%s over [%d, %d] returned %d, which it may not", method, from, to, q))
}
