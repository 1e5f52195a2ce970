package alloc

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"

	"github.com/dchest/siphash"
)

// Names of the RFC 6056 allocators beyond Algorithm 1 (NameRandomStart).
// The pseudo-code they follow is RFC 6056 §3.3 as restated in
// os-semantics.md §1.2 and as implemented by NetBSD sys/netinet/portalgo.c
// rev 1.9 (os-semantics.md §8.3), whose function for each is named below.
const (
	// NameRandomPick is RFC 6056 §3.3.2 Algorithm 2, Another Simple Port
	// Randomization (NetBSD algo_random_pick): every probe is a fresh
	// uniform port; at most Size probes, so it can fail while ports remain.
	NameRandomPick = "random-pick"
	// NameHash is RFC 6056 §3.3.3 Algorithm 3, Simple Hash-Based Port
	// Selection (NetBSD algo_hash): a keyed hash of the 3-tuple plus one
	// global counter.
	NameHash = "hash"
	// NameDoubleHash is RFC 6056 §3.3.4 Algorithm 4, Double-Hash Port
	// Selection (NetBSD algo_doublehash): like NameHash with the counter
	// picked from a table of Config.TableSize counters by a second keyed
	// hash.
	NameDoubleHash = "double-hash"
	// NameRandomIncrements is RFC 6056 §3.3.5 Algorithm 5, Random-Increments
	// Port Selection (NetBSD algo_randinc): one counter advanced by
	// 1..Config.Increments per probe; it can fail while ports remain.
	NameRandomIncrements = "random-increments"
)

const (
	// defaultTableSize is RFC 6056 §3.3.4's suggested TABLE_LENGTH (quoted
	// in Linux inet_hashtables.c: "RFC claims TABLE_LENGTH=10 buckets gives
	// an improvement"). NetBSD uses 8.
	defaultTableSize = 10
	// maxTableSize bounds Config.TableSize: 2^16 is the largest table a
	// real stack uses (Linux 5.18+ __inet_hash_connect,
	// INET_TABLE_PERTURB_SIZE), and it caps the table's memory.
	maxTableSize = 1 << 16
	// defaultIncrements is RFC 6056 §3.3.5's N = 500 ("Determines the
	// trade-off"), the constant in NetBSD algo_randinc.
	defaultIncrements = 500
)

func init() {
	register(NameRandomPick, newRandomPick)
	register(NameHash, newHashPort)
	register(NameDoubleHash, newDoubleHash)
	register(NameRandomIncrements, newRandomIncrements)
}

// needRand is the error of a randomized allocator built without a stream.
func needRand(name string, rng *rand.Rand) error {
	if rng == nil {
		return fmt.Errorf("alloc: %s: Config.Rand is nil; a seeded *rand.Rand is required", name)
	}
	return nil
}

// tupleHash is the keyed function F (and G) of RFC 6056 §3.3.3/§3.3.4:
// SipHash-2-4 with the 128-bit key (k0, k1) over local address, remote
// address and remote port. The RFC names MD5 (NetBSD Fhash uses it); any
// keyed pseudo-random function fits the RFC's requirement, and SipHash is the
// one Linux uses for the same purpose (secure_ipv4_port_ephemeral).
//
// Input layout, 34 bytes in a stack array so the call does not allocate:
// the local and remote addresses in their 16-byte form (IPv4 as
// IPv4-mapped, so an IPv4 address and its mapped IPv6 form hash alike; zones
// are ignored), then the remote port big-endian. A nil req hashes as the
// zero tuple, the same as bind(0) with an unspecified address.
func tupleHash(k0, k1 uint64, req *Request) uint64 {
	var b [34]byte
	if req != nil {
		l, r := req.Local.As16(), req.Remote.Addr().As16()
		copy(b[0:16], l[:])
		copy(b[16:32], r[:])
		binary.BigEndian.PutUint16(b[32:34], req.Remote.Port())
	}
	return siphash.Hash(k0, k1, b[:])
}

// randomPick is RFC 6056 §3.3.2 Algorithm 2 (NetBSD algo_random_pick):
//
//	count = num
//	do { port = min + random() % num; if suitable(port) return port; } while (--count > 0)
//	return ERROR
//
// Parameters: none (range and random stream only). State: none.
//
// Cost: one random draw and one Busy.Has per probe; the expected number of
// probes is num/free, so near exhaustion it is O(num) port tests, not
// O(num/64) words: the probes are scattered, so no word-at-a-time scan can
// replace them. Probes counts the draws.
//
// Failure: after num draws that all hit busy ports it fails with req.Fail
// and Probes = num. Because the draws are independent and remember nothing,
// it can fail while free ports remain ("we might actually give up before
// exhausting the free ports", portalgo.c): with k of num ports busy the
// chance is (k/num)^num per call. When the first draw is busy and one
// Busy.NextFree over the range finds no free port at all, it fails at once
// with Probes = num without making the other num-1 draws: they are
// independent and would all have missed, so this changes no outcome's
// probability, only how far the random stream advances. That keeps a full
// range O(num/64).
type randomPick struct {
	r   Range
	rng *rand.Rand

	last  lastCall // for Explain
	early bool     // the last call stopped after one draw: no port was free
}

// newRandomPick builds "random-pick"; cfg.Rand is required.
func newRandomPick(cfg Config) (Allocator, error) {
	if err := needRand(NameRandomPick, cfg.Rand); err != nil {
		return nil, err
	}
	return &randomPick{r: cfg.Range, rng: cfg.Rand}, nil
}

func (a *randomPick) Name() string { return NameRandomPick }

// Allocate draws up to Size uniform ports and takes the first free one.
func (a *randomPick) Allocate(req *Request, busy Busy) Result {
	low, size := int(a.r.Low), a.r.Size()
	a.early = false
	for probes := 1; probes <= size; probes++ {
		p := low + a.rng.IntN(size)
		if !busy.Has(p) {
			return a.last.set(Result{Port: uint16(p), Probes: probes, Err: OK})
		}
		if probes == 1 && busy.NextFree(low, int(a.r.High)) < 0 {
			a.early = true
			break
		}
	}
	return a.last.set(Result{Probes: size, Err: failErrno(req)})
}

// Explain implements Explainer, e.g. "RFC 6056 §3.3.2 Alg. 2: 3 random
// draws → 40001 (2 hit busy ports)".
func (a *randomPick) Explain() string {
	l := &a.last
	if !l.done {
		return notYet(NameRandomPick)
	}
	const src = "RFC 6056 §3.3.2 Alg. 2: "
	switch {
	case l.Err == OK && l.Probes == 1:
		return fmt.Sprintf(src+"1 random draw → %d", l.Port)
	case l.Err == OK:
		return fmt.Sprintf(src+"%d random draws → %d (%d hit busy ports)", l.Probes, l.Port, l.Probes-1)
	case a.early:
		return fmt.Sprintf(src+"first draw busy and no port of %s free → %s (counted as all %d draws missing)", a.r, l.Err, l.Probes)
	}
	return fmt.Sprintf(src+"%d random draws all hit busy ports, though free ports remain → %s", l.Probes, l.Err)
}

// hashPort is RFC 6056 §3.3.3 Algorithm 3, Simple Hash-Based Port Selection
// (NetBSD algo_hash):
//
//	offset = F(local_IP, remote_IP, remote_port, secret_key)
//	count = num
//	do { port = min + (next_ephemeral + offset) % num; next_ephemeral++;
//	     if suitable(port) return port; } while (--count > 0)
//
// Parameters: none. State: the secret key (128 bits) and the global counter
// next_ephemeral, both drawn from Config.Rand when the allocator is built
// (the RFC initialises the counter to 0 and says it "could be random"); F is
// tupleHash. The counter is kept mod num, which is what the port formula
// uses (NetBSD's is a uint16_t wrapping at 65536, which skews the sequence
// whenever num does not divide 65536; we follow the RFC's arithmetic).
//
// Per destination the ports are sequential, and different destinations start
// at unrelated offsets; but the counter is shared, so a destination's next
// port moves on by one for every probe made for any destination in between:
// the leak that let a website count a Linux client's connections
// (validation-and-security.md §3.1, Linux commit 190cc82489f4).
//
// Cost: one SipHash of 34 bytes, then a linear probe from the start done as
// word-at-a-time NextFree scans (probeFrom), O(num/64); the counter advances
// by the number of probes, as next_ephemeral++ per probe would.
//
// Failure: only when no port of the range is free (Probes = num, the counter
// back where it was mod num), with req.Fail.
type hashPort struct {
	r      Range
	k0, k1 uint64
	next   int // next_ephemeral mod num

	last                   lastCall // for Explain
	counter, offset, start int      // the last call's next_ephemeral, F mod num, first candidate
}

// newHashPort builds "hash"; cfg.Rand is required. It draws the key, then the
// counter.
func newHashPort(cfg Config) (Allocator, error) {
	if err := needRand(NameHash, cfg.Rand); err != nil {
		return nil, err
	}
	a := &hashPort{r: cfg.Range, k0: cfg.Rand.Uint64(), k1: cfg.Rand.Uint64()}
	a.next = cfg.Rand.IntN(cfg.Range.Size())
	return a, nil
}

func (a *hashPort) Name() string { return NameHash }

// Allocate probes from Low + (next + F(tuple)) mod num and advances next by
// the probes made.
func (a *hashPort) Allocate(req *Request, busy Busy) Result {
	num := a.r.Size()
	offset := int(tupleHash(a.k0, a.k1, req) % uint64(num))
	start := int(a.r.Low) + (a.next+offset)%num
	a.counter, a.offset, a.start = a.next, offset, start
	port, probes := probeFrom(a.r, start, busy)
	a.next = (a.next + probes) % num
	if port < 0 {
		return a.last.set(Result{Probes: probes, Err: failErrno(req)})
	}
	return a.last.set(Result{Port: uint16(port), Probes: probes, Err: OK})
}

// Explain implements Explainer, e.g. "RFC 6056 §3.3.3 Alg. 3: hash offset
// 12345 + global counter 17 (mod 28232) → start 45130, linear probe →
// 45131, 2 candidates probed; counter += 2".
func (a *hashPort) Explain() string {
	l := &a.last
	if !l.done {
		return notYet(NameHash)
	}
	const src = "RFC 6056 §3.3.3 Alg. 3: hash offset %d + global counter %d (mod %d) → start %d, linear probe "
	if l.Err != OK {
		return fmt.Sprintf(src+"found all %d ports busy → %s", a.offset, a.counter, a.r.Size(), a.start, l.Probes, l.Err)
	}
	return fmt.Sprintf(src+"→ %d, %s%s; counter += %d",
		a.offset, a.counter, a.r.Size(), a.start, l.Port, probed(l.Probes), wrapNote(a.r, a.start, int(l.Port)), l.Probes)
}

// doubleHash is RFC 6056 §3.3.4 Algorithm 4, Double-Hash Port Selection
// (NetBSD algo_doublehash):
//
//	offset = F(local_IP, remote_IP, remote_port, secret_key1)
//	index  = G(local_IP, remote_IP, remote_port, secret_key2) % TABLE_LENGTH
//	count = num
//	do { port = min + (offset + table[index]) % num; table[index]++;
//	     if suitable(port) return port; } while (--count > 0)
//
// Parameters: Config.TableSize = TABLE_LENGTH, 1..65536, default 10 (the
// RFC's suggestion; NetBSD uses 8, Linux 5.12-5.17 256 and 5.18+ 65536).
// State: two independent 128-bit keys for F and G and the table of counters,
// initialised with random values as the RFC does; all drawn from Config.Rand
// when the allocator is built (key1, key2, then the table in order). F and G
// are tupleHash; counters are kept mod num (16 bits wide, as the RFC's), see
// hashPort for the arithmetic.
//
// Destinations that hash to different slots advance independently, so each
// one's ports stay consecutive whatever the others do; destinations sharing a
// slot share a counter as all destinations do in Algorithm 3. With
// TableSize 1 it is Algorithm 3.
//
// Cost: two SipHashes, then a word-at-a-time linear probe, O(num/64);
// table[index] advances by the probes made. Memory: 2 bytes per slot.
//
// Failure: only when no port of the range is free, with req.Fail and
// Probes = num (the slot back where it was mod num).
type doubleHash struct {
	r      Range
	k1, k2 [2]uint64 // keys of F and G
	table  []uint16  // table[i] mod num

	last                          lastCall // for Explain
	index, counter, offset, start int      // the last call's G mod TABLE_LENGTH, table[index], F mod num, first candidate
}

// newDoubleHash builds "double-hash"; cfg.Rand is required and
// cfg.TableSize must be 0 (default 10) or 1..65536.
func newDoubleHash(cfg Config) (Allocator, error) {
	if err := needRand(NameDoubleHash, cfg.Rand); err != nil {
		return nil, err
	}
	t := cfg.TableSize
	if t == 0 {
		t = defaultTableSize
	}
	if t < 1 || t > maxTableSize {
		return nil, fmt.Errorf("alloc: %s: table size %d is outside 1..%d", NameDoubleHash, cfg.TableSize, maxTableSize)
	}
	rng := cfg.Rand
	a := &doubleHash{
		r:     cfg.Range,
		k1:    [2]uint64{rng.Uint64(), rng.Uint64()},
		k2:    [2]uint64{rng.Uint64(), rng.Uint64()},
		table: make([]uint16, t),
	}
	for i := range a.table {
		a.table[i] = uint16(rng.IntN(cfg.Range.Size()))
	}
	return a, nil
}

func (a *doubleHash) Name() string { return NameDoubleHash }

// slot returns G(tuple) mod TABLE_LENGTH, the counter req uses.
func (a *doubleHash) slot(req *Request) int {
	return int(tupleHash(a.k2[0], a.k2[1], req) % uint64(len(a.table)))
}

// Allocate probes from Low + (F(tuple) + table[G(tuple)]) mod num and
// advances that slot by the probes made.
func (a *doubleHash) Allocate(req *Request, busy Busy) Result {
	num := a.r.Size()
	offset := int(tupleHash(a.k1[0], a.k1[1], req) % uint64(num))
	i := a.slot(req)
	start := int(a.r.Low) + (offset+int(a.table[i]))%num
	a.index, a.counter, a.offset, a.start = i, int(a.table[i]), offset, start
	port, probes := probeFrom(a.r, start, busy)
	a.table[i] = uint16((int(a.table[i]) + probes) % num)
	if port < 0 {
		return a.last.set(Result{Probes: probes, Err: failErrno(req)})
	}
	return a.last.set(Result{Port: uint16(port), Probes: probes, Err: OK})
}

// Explain implements Explainer, e.g. "RFC 6056 §3.3.4 Alg. 4: table[3]=500
// + hash offset 12345 (mod 28232) → start 45613, linear probe → 45613, 1
// candidate probed; table[3] += 1".
func (a *doubleHash) Explain() string {
	l := &a.last
	if !l.done {
		return notYet(NameDoubleHash)
	}
	const src = "RFC 6056 §3.3.4 Alg. 4: table[%d]=%d + hash offset %d (mod %d) → start %d, linear probe "
	if l.Err != OK {
		return fmt.Sprintf(src+"found all %d ports busy → %s", a.index, a.counter, a.offset, a.r.Size(), a.start, l.Probes, l.Err)
	}
	return fmt.Sprintf(src+"→ %d, %s%s; table[%d] += %d",
		a.index, a.counter, a.offset, a.r.Size(), a.start, l.Port, probed(l.Probes), wrapNote(a.r, a.start, int(l.Port)), a.index, l.Probes)
}

// randomIncrements is RFC 6056 §3.3.5 Algorithm 5, Random-Increments Port
// Selection (NetBSD algo_randinc):
//
//	count = num
//	do { next_ephemeral += random() % N + 1; port = min + next_ephemeral % num;
//	     if suitable(port) return port; } while (--count > 0)
//
// Parameters: Config.Increments = N >= 1, default 500 (the RFC's value,
// "Determines the trade-off": a larger N is harder to predict but wraps the
// range faster, so 4-tuples are reused sooner). State: next_ephemeral, drawn
// from Config.Rand when the allocator is built and kept mod num (NetBSD's is
// a uint16_t; see hashPort).
//
// Cost: one random draw and one Busy.Has per probe, O(probes) port tests:
// the candidates are scattered, so no word-at-a-time scan can replace them.
// Near exhaustion a call makes up to num probes.
//
// Failure: after num probes that all hit busy ports, with req.Fail and
// Probes = num. With N = 1 the walk is sequential and visits every port, so
// it fails only on a full range; with N >= 2 the num candidates need not be
// distinct (a walk with steps of 1..N laps the range about N/2 times in num
// probes), so it can fail while free ports remain. When N is a multiple of
// num every step is uniform mod num and the chance is (k/num)^num with k
// ports busy, as for random-pick. Unlike random-pick it does not stop early on
// a full range: the counter must take all num steps, and those steps are part
// of what an observer would have to predict.
type randomIncrements struct {
	r    Range
	rng  *rand.Rand
	n    int // N
	next int // next_ephemeral mod num

	last    lastCall // for Explain
	counter int      // next_ephemeral before the last call
}

// newRandomIncrements builds "random-increments"; cfg.Rand is required and
// cfg.Increments must be 0 (default 500) or positive.
func newRandomIncrements(cfg Config) (Allocator, error) {
	if err := needRand(NameRandomIncrements, cfg.Rand); err != nil {
		return nil, err
	}
	n := cfg.Increments
	if n == 0 {
		n = defaultIncrements
	}
	if n < 1 {
		return nil, fmt.Errorf("alloc: %s: increment bound %d is not positive", NameRandomIncrements, cfg.Increments)
	}
	return &randomIncrements{r: cfg.Range, rng: cfg.Rand, n: n, next: cfg.Rand.IntN(cfg.Range.Size())}, nil
}

func (a *randomIncrements) Name() string { return NameRandomIncrements }

// Allocate steps next by 1 + Rand.IntN(N) per probe, up to Size probes.
func (a *randomIncrements) Allocate(req *Request, busy Busy) Result {
	low, num := int(a.r.Low), a.r.Size()
	a.counter = a.next
	for probes := 1; probes <= num; probes++ {
		a.next = (a.next + (1+a.rng.IntN(a.n))%num) % num
		if p := low + a.next; !busy.Has(p) {
			return a.last.set(Result{Port: uint16(p), Probes: probes, Err: OK})
		}
	}
	return a.last.set(Result{Probes: num, Err: failErrno(req)})
}

// Explain implements Explainer, e.g. "RFC 6056 §3.3.5 Alg. 5: counter
// 1234 += 1..500 per probe, 2 probes → 33500 (1 hit a busy port)".
func (a *randomIncrements) Explain() string {
	l := &a.last
	if !l.done {
		return notYet(NameRandomIncrements)
	}
	const src = "RFC 6056 §3.3.5 Alg. 5: counter %d += 1..%d per probe, "
	switch {
	case l.Err == OK && l.Probes == 1:
		return fmt.Sprintf(src+"1 probe → %d", a.counter, a.n, l.Port)
	case l.Err == OK:
		return fmt.Sprintf(src+"%d probes → %d (%d hit busy ports)", a.counter, a.n, l.Probes, l.Port, l.Probes-1)
	case a.n == 1:
		return fmt.Sprintf(src+"all %d ports busy → %s", a.counter, a.n, l.Probes, l.Err)
	}
	return fmt.Sprintf(src+"%d probes all hit busy ports (the walk need not visit every port) → %s", a.counter, a.n, l.Probes, l.Err)
}
