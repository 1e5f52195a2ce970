package predict

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/distuv"

	"github.com/portsim/portsim/alloc"
)

// The PoC's constants (tracker.go), Chrome's defaults.
const (
	// trackPoolStart and trackPoolPorts are POOL_PORT_RANGE_START and
	// POOL_PORT_RANGE_SIZE: the server ports phase 1 draws from, on each
	// server address.
	trackPoolStart = 11000
	trackPoolPorts = 16384
	// trackLoopStart and trackLoopbacks are LOOPBACK_PORT_START and
	// LOOPBACK_PORT_INITIAL_BATCH_SIZE: the loopback destinations
	// 127.0.0.1:1024-1087 phase 2 places in slots.
	trackLoopStart = 1024
	trackLoopbacks = 64
	// trackSandwich and trackNtries are LOOPBACK_DEFAULT_SANDWICH_SIZE and
	// LOOPBACK_DEFAULT_NTRIES: each sandwich of 4 loopback destinations
	// connects the k-th one 2^k·50 times between two probes.
	trackSandwich = 4
	trackNtries   = 50
	// trackSandwiches is the number of sandwiches, and trackProbes the
	// number of times phase 2 probes each server destination.
	trackSandwiches = trackLoopbacks / trackSandwich
	trackProbes     = trackSandwiches + 1
	// trackLoopConns is phase 2's connections to loopback destinations:
	// 16 · 50 · (1+2+4+8) = 12,000.
	trackLoopConns = trackSandwiches * trackNtries * (1<<trackSandwich - 1)
	// trackWrap is prepareBatch's wraparound threshold,
	// int(ntries · 2^S · 1.0625 · 2) but at least MIN_WRAPAROUND_THRESHOLD
	// (1024): 1700 ports. A gap at least that large between two sorted
	// source ports of one destination is where its slot wrapped round the
	// range.
	trackWrap = max(trackNtries<<trackSandwich*17/8, 1024)
)

// Defaults of TrackConfig.
const (
	// trackDefaultRate is the attacker's default pace, connections per
	// second: 10,000 connections take 10 s, inside the 5-15 s the paper
	// measured in Chrome.
	trackDefaultRate = 1000
	// trackDefaultCap is MaxConnections' default, in multiples of Assumed:
	// about twice what phase 1 (about 40·T at T = 256, 66·T at T = 65,536)
	// and phase 2 (17·T + 12,000) need together without noise.
	trackDefaultCap = 200
	// trackPoolFactor is how many server destinations the pool holds per
	// assumed slot at least: enough that every slot has one (see Track's
	// deviations), and a fresh draw is rarely rejected (a round holds at
	// most 2·T of them).
	trackPoolFactor = 32
)

// Independent random streams of one boot (PCG stream selectors): the
// kernel's (the net secret, table_perturb, 5.18's random increments), the
// attacker's draws, and the victim's background arrivals. Keeping them
// apart means that the attacker's choices do not depend on the noise.
const (
	trackStreamKernel     = 0x6b65726e656c // "kernel"
	trackStreamAttacker   = 0x61747461636b // "attack"
	trackStreamBackground = 0x6e6f697365   // "noise"
)

var (
	// trackLoopback is the source and destination address of the loopback
	// connections (the PoC's LOOPBACK_IPV4_ADDR).
	trackLoopback = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	// trackServerNet is the attacker's network (RFC 5737 TEST-NET-2): its
	// server addresses are .1, .2, ... of it.
	trackServerNet = netip.MustParsePrefix("198.51.100.0/24")
	// trackDefaultRange is Linux's default ip_local_port_range, the PoC's
	// [32768, 61000).
	trackDefaultRange = alloc.Range{Low: 32768, High: 60999}
)

// TrackConfig is one victim and one attacker of the device-tracking attack
// (Track). Zero fields take the defaults given.
type TrackConfig struct {
	// Allocator is the victim's connect() allocator, an alloc.New name:
	// alloc.NameLinuxAlg4 (5.12-5.17, the attack's target) or
	// alloc.NameLinux (5.18+, the fix); any other name is accepted and
	// simply never yields an ID.
	Allocator string `json:"allocator"`
	// TableSize is the victim's alloc.Config.TableSize: 0 is the
	// allocator's own table; for alloc.NameLinuxAlg4 a power of two up to
	// 65,536 is the enlarged table without the 5.18 reseeding.
	TableSize int `json:"table_size,omitempty"`
	// Assumed is T, the number of table slots the attacker assumes: phase 1
	// looks for T server destinations in T different slots. A power of two
	// from 2 to 65,536; the PoC's is 256.
	Assumed int `json:"assumed"`
	// Range is the victim's ephemeral range, which the attacker knows; the
	// zero Range is Linux's default 32768-60999.
	Range alloc.Range `json:"ip_local_port_range"`
	// Victim is the victim's IPv4 source address toward the attacker's
	// server, i.e. the network it is on (required; not loopback).
	Victim netip.Addr `json:"victim"`
	// AttackRate is the pace of the connections the attacker triggers,
	// connections per second (0: 1000/s). Virtual time advances 1/AttackRate
	// per connection; 5.18's 10-second reseed reads it.
	AttackRate float64 `json:"attack_rate"`
	// BackgroundRate is the victim's own connections per second during the
	// attack, a Poisson process (0: none).
	BackgroundRate float64 `json:"background_rate,omitempty"`
	// Background lists the destinations of those connections, used round
	// robin; required when BackgroundRate > 0, and outside the attacker's
	// 198.51.100.0/24. Round robin makes each destination's connections
	// nearly periodic when there are few (n destinations: every n-th
	// arrival), which blocks their slots far more than Poisson arrivals
	// would.
	Background []netip.AddrPort `json:"background,omitempty"`
	// MaxConnections is the most connections the attacker triggers in one
	// visit before it gives up (0: 200·Assumed). A round or phase 2 that
	// would pass it is not started.
	MaxConnections int `json:"max_connections"`
	// Seed derives the victim's boot secret, its table and every random
	// draw (math/rand/v2 PCG streams); equal configs give equal results.
	Seed uint64 `json:"seed"`
}

// TrackResult is the outcome of one visit of the victim to the attacker's
// page. Counts are connections the attacker triggered, over every session
// of the visit.
type TrackResult struct {
	// Identified reports that a session completed with a non-empty device
	// ID.
	Identified bool `json:"identified"`
	// Fingerprint is the device ID in the PoC's canonical form: loopback
	// ports grouped by shared slot, groups of two or more, e.g.
	// "(1024,1087):(1031,1040,1077)". Compare IDs by exact match.
	Fingerprint string `json:"fingerprint,omitempty"`
	// Sessions is how many sessions the attacker started (each one after
	// an aborted one starts from scratch).
	Sessions int `json:"sessions"`
	// Rounds is the number of phase-1 rounds.
	Rounds int `json:"rounds"`
	// Phase1 and Phase2 are the connections of each phase; a phase-1 round
	// costs 2(T-1)+|U|, phase 2 costs T·17 probes + 12,000 loopback
	// connections.
	Phase1 int `json:"phase1_connections"`
	Phase2 int `json:"phase2_connections"`
	// Connections is Phase1 + Phase2.
	Connections int `json:"connections"`
	// Background is how many connections of the victim's own were
	// interleaved.
	Background int `json:"background_connections"`
	// Seconds is Connections / AttackRate: the attack's duration at the
	// browser's pace, round trips not counted.
	Seconds float64 `json:"seconds"`
	// Reason says why there is no ID; empty when Identified.
	Reason string `json:"reason,omitempty"`
}

// TrackStat is the mean of one quantity over boots with its two-sided 95 %
// Student's t confidence interval (Low = High = Mean when all are equal).
type TrackStat struct {
	Mean   float64 `json:"mean"`
	StdDev float64 `json:"sd"`
	Low    float64 `json:"ci95_low"`
	High   float64 `json:"ci95_high"`
}

// TrackSummary is Track over independent boots of the victim.
type TrackSummary struct {
	// Config is the configuration with its defaults filled in; boot b ran
	// with Seed + b.
	Config TrackConfig `json:"config"`
	// Boots is the number of boots, Identified how many gave an ID, and
	// SuccessFraction their ratio.
	Boots           int     `json:"boots"`
	Identified      int     `json:"identified"`
	SuccessFraction float64 `json:"success_fraction"`
	// Distinct is the number of different IDs among the identified boots;
	// equal to Identified when no two boots share one.
	Distinct int `json:"distinct_fingerprints"`
	// Connections, Phase1, Rounds and Seconds are over all boots,
	// identified or not (a failed boot counts what it spent).
	Connections TrackStat `json:"connections"`
	Phase1      TrackStat `json:"phase1_connections"`
	Rounds      TrackStat `json:"rounds"`
	Seconds     TrackStat `json:"seconds"`
}

// Track boots a victim with cfg.Seed and runs the Kol-Klein-Gilad tracker
// against it once, from cfg.Victim.
//
// Phase 1 finds T = cfg.Assumed server destinations in T different slots:
// each round draws T-1 fresh ones (distinct from the accepted set U and from
// each other) and has the victim connect to the fresh ones, to U, then to
// the fresh ones again; a fresh one is accepted iff its two source ports
// differ by exactly 2 (nothing else moved its slot), until |U| = T (more is
// an abort). Phase 2 probes U, then for each sandwich of 4 loopback
// destinations connects the k-th one 2^k·50 times and probes U again; the
// growth of each server destination's slot names the loopback destinations
// in it, and the grouping of the 64 loopback destinations by slot is the
// device ID, which does not depend on the network.
//
// It is attacker model (c), the device tracker of Moshe Kol, Amit Klein
// and Yossi Gilad, "Device Tracking via Linux's New TCP Source Port
// Selection Algorithm" (USENIX Security 2023; arXiv 2209.12993), as their
// proof of concept github.com/0xkol/rfc6056-device-tracker implements it:
// the server side in tracker.go (AllocatePorts/randPort, handleBatchPhase1,
// prepareBatch, sourcePortDiff, handleBatchPhase2, segmentCutoff,
// canonicalFingerprint) and the browser side in www/poc.js
// (fingerprint_device: the "do-double-batch" and "do-loopback-sandwich"
// commands, sent by Chrome as one WebRTC TURN batch). It runs against the
// real connect() allocators of package alloc, so the table_perturb slots
// move exactly as __inet_hash_connect moves them: Linux 5.12-5.17 (commit
// 190cc82489f4, alloc.NameLinuxAlg4, CVE-2022-32296) and the 2022 fixes of
// 5.18 (4c2c8f03a5ab a 2^16 table, "about 40 times" its size in
// connections; 4dfa9b438ee3 a 10-second reseed; ca7af0402550 random
// increments; alloc.NameLinux).
//
// Model assumptions, beyond the PoC's own:
//   - Every connection the attacker triggers ends at once (the server, or
//     nothing listening on 127.0.0.1, answers the SYN with RST), so no port
//     is ever busy: the allocator gets a Busy that reports nothing. The
//     first candidate is then always taken and each connect() adds exactly
//     2 to its slot on 5.12-5.17 (the parity step), which is what the PoC
//     measures.
//   - The attacker's server sees the SYN of every connection to it, and
//     only those: it never reads the table, only source ports.
//   - The browser triggers connections at a constant pace (AttackRate); the
//     round trips between the PoC's commands are not modelled, so Seconds
//     is a lower bound on the wall-clock time.
//   - The victim's own connections (BackgroundRate, Poisson) go to its
//     Background destinations round robin, from the same address as the
//     attack, and move the slots of those destinations as the kernel would.
//
// Deviations from the PoC, and why:
//   - The PoC is written for the 256-entry table (TABLE_PERTURB_SIZE); T,
//     the table size the attacker assumes, is a parameter here. Its pool of
//     server destinations is 16,384 ports (11000-27383) on one address; a
//     larger T gets more addresses (198.51.100.1, .2, ...) so that the pool
//     holds at least 32·T destinations (128 addresses for T = 65,536). The
//     pool must reach every slot: a slot none of its destinations hashes to
//     can never be found, and a pool of f·T leaves about T·e^-f such slots
//     (1,200 of 65,536 at f = 4; 8e-10 at f = 32; the PoC's f is 64).
//   - Round 1's sanity tests (source ports inside the default range, their
//     parity, 20 to 199 destinations accepted) are not modelled: they are
//     calibrated for T = 256 and the default range, hardly ever fire
//     against 5.12-5.17 without heavy noise (about 94 are accepted), and
//     otherwise only make a failing attack fail sooner.
//   - The PoC drops a repeated source port of one destination (sports_seen)
//     and would then time the batch out after 5 s. A repeat needs the slot
//     to go once round the range (14,116 connections to it) or a 5.18
//     reseed, so it is not modelled.
//   - Only the Chrome variant (ntries 50, sandwich 4, one batch) is
//     modelled; Firefox and Android use 10 tries and sandwiches of 2.
//   - When the PoC aborts a session (a phase 2 sanity check, or phase 1
//     accepting more than T destinations), the attacker here starts a new
//     one, from scratch, until MaxConnections; the PoC's page only reports
//     the failure, and a real attacker would reload it.
//   - An empty fingerprint (no two loopback destinations share a slot) is
//     stored by the PoC as a fingerprint; here it is not an identification,
//     since every device without such a pair has it.
//
// Errors: an invalid configuration (unknown allocator or a table size it
// refuses, Assumed not a power of two from 2 to 65,536, a negative or
// non-finite rate or cap, BackgroundRate > 0 without destinations, a
// Victim that is not a non-loopback IPv4 address, an invalid Range), or an
// allocation failure, which with nothing busy would be a bug in alloc.
// Giving up is not an error: the result says why.
func Track(cfg TrackConfig) (TrackResult, error) {
	t, err := newTracker(cfg)
	if err != nil {
		return TrackResult{}, err
	}
	return t.visit(t.cfg.Victim)
}

// trackTwice boots one victim with cfg.Seed and runs the attack twice
// against the same boot (same secret, same table, its clock running on):
// first from cfg.Victim, then from second, as after a move to another
// network. The attacker knows nothing of the first visit in the second; the
// device is tracked when both IDs are equal. The victim's background
// connections come from the visit's address.
//
// Errors: those of Track, and a second that is not a non-loopback IPv4
// address.
func trackTwice(cfg TrackConfig, second netip.Addr) (first, again TrackResult, err error) {
	if err := trackCheckVictim(second); err != nil {
		return first, again, fmt.Errorf("predict: track: second visit: %w", err)
	}
	t, err := newTracker(cfg)
	if err != nil {
		return first, again, err
	}
	if first, err = t.visit(t.cfg.Victim); err != nil {
		return first, again, err
	}
	again, err = t.visit(second)
	return first, again, err
}

// TrackBoots runs Track on boots independent boots, boot b with cfg.Seed +
// b (so boot 0 is Track(cfg)), and summarises them.
//
// Errors: those of Track, and boots < 2 (no interval).
func TrackBoots(cfg TrackConfig, boots int) (TrackSummary, error) {
	if boots < 2 {
		return TrackSummary{}, fmt.Errorf("predict: track: %d boots; at least 2 are needed for an interval", boots)
	}
	norm, err := cfg.normalized()
	if err != nil {
		return TrackSummary{}, err
	}
	s := TrackSummary{Config: norm, Boots: boots}
	conns, phase1, rounds, secs := make([]float64, boots), make([]float64, boots), make([]float64, boots), make([]float64, boots)
	ids := map[string]bool{}
	for b := range boots {
		c := cfg
		c.Seed = cfg.Seed + uint64(b)
		r, err := Track(c)
		if err != nil {
			return TrackSummary{}, err
		}
		if r.Identified {
			s.Identified++
			ids[r.Fingerprint] = true
		}
		conns[b], phase1[b], rounds[b], secs[b] = float64(r.Connections), float64(r.Phase1), float64(r.Rounds), r.Seconds
	}
	s.SuccessFraction = float64(s.Identified) / float64(boots)
	s.Distinct = len(ids)
	s.Connections, s.Phase1, s.Rounds, s.Seconds = trackStat(conns), trackStat(phase1), trackStat(rounds), trackStat(secs)
	return s, nil
}

// trackStat is the mean of xs (at least 2) with its 95 % t interval.
func trackStat(xs []float64) TrackStat {
	mean, sd := stat.MeanStdDev(xs, nil)
	n := float64(len(xs))
	h := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: n - 1}.Quantile(0.975) * sd / math.Sqrt(n)
	// Counts and times are not negative, however skewed the boots.
	return TrackStat{Mean: mean, StdDev: sd, Low: max(mean-h, 0), High: mean + h}
}

// normalized returns c with its defaults filled in, or why it is invalid.
func (c TrackConfig) normalized() (TrackConfig, error) {
	bad := func(format string, a ...any) (TrackConfig, error) {
		return TrackConfig{}, fmt.Errorf("predict: track: "+format, a...)
	}
	if t := c.Assumed; t < 2 || t > alloc.NumPorts || t&(t-1) != 0 {
		return bad("assumed table size %d is not a power of two from 2 to %d", t, alloc.NumPorts)
	}
	if c.Range == (alloc.Range{}) {
		c.Range = trackDefaultRange
	} else if err := c.Range.Validate(); err != nil {
		return bad("%w", err)
	}
	if err := trackCheckVictim(c.Victim); err != nil {
		return bad("%w", err)
	}
	if c.AttackRate == 0 {
		c.AttackRate = trackDefaultRate
	}
	if !(c.AttackRate > 0) || math.IsInf(c.AttackRate, 0) {
		return bad("attack rate %v/s is not a positive finite number", c.AttackRate)
	}
	if !(c.BackgroundRate >= 0) || math.IsInf(c.BackgroundRate, 0) {
		return bad("background rate %v/s is not a finite number >= 0", c.BackgroundRate)
	}
	if c.BackgroundRate > 0 && len(c.Background) == 0 {
		return bad("background rate %v/s without background destinations", c.BackgroundRate)
	}
	for _, d := range c.Background {
		if !d.IsValid() || d.Port() == 0 {
			return bad("background destination %v is not an address and a non-zero port", d)
		}
		if trackServerNet.Contains(d.Addr()) {
			return bad("background destination %v is in the attacker's %v", d, trackServerNet)
		}
	}
	switch {
	case c.MaxConnections < 0:
		return bad("max connections %d is negative", c.MaxConnections)
	case c.MaxConnections == 0:
		c.MaxConnections = trackDefaultCap * c.Assumed
	}
	return c, nil
}

// trackCheckVictim reports why a is not usable as the victim's address.
func trackCheckVictim(a netip.Addr) error {
	if !a.IsValid() {
		return fmt.Errorf("victim address is not set")
	}
	if !a.Is4() || a.IsLoopback() || a.IsUnspecified() {
		return fmt.Errorf("victim address %v is not a non-loopback IPv4 address (the attacker's servers are IPv4, like the PoC's)", a)
	}
	return nil
}

// tracker is one booted victim and the attacker's state. Its hot path,
// connect, allocates nothing.
type tracker struct {
	cfg     TrackConfig // normalized
	a       alloc.Allocator
	busy    alloc.Union // the zero Union: nothing busy
	req     alloc.Request
	atk     *rand.Rand   // the attacker's draws
	noise   *rand.Rand   // the background arrivals
	servers []netip.Addr // the attacker's server addresses
	src     netip.Addr   // the victim's address on this visit
	mod     int          // sourcePortDiff's modulus: the range's length
	failed  alloc.Errno  // the first failed allocation, if any

	k      int     // attacker connections since boot: the clock
	bgAt   float64 // virtual time of the next background connection, s
	bgNext int     // index of its destination in cfg.Background
	bgDone int     // background connections since boot

	used  []bool   // pool destinations in U or in this round (the PoC's portMap)
	uniq  []int32  // U, in the order accepted: the PoC's bucket index
	fresh []int32  // this round's new destinations
	first []uint16 // their first source ports
	obs   []uint16 // phase 2: trackProbes source ports per member of U
}

// newTracker boots the victim of cfg: it builds the allocator (drawing the
// secret and the table from the kernel stream) and the attacker's pool.
func newTracker(cfg TrackConfig) (*tracker, error) {
	cfg, err := cfg.normalized()
	if err != nil {
		return nil, err
	}
	a, err := alloc.New(cfg.Allocator, alloc.Config{
		Range:     cfg.Range,
		Rand:      rand.New(rand.NewPCG(cfg.Seed, trackStreamKernel)),
		TableSize: cfg.TableSize,
	})
	if err != nil {
		return nil, fmt.Errorf("predict: track: %w", err)
	}
	T := cfg.Assumed
	n := max(1, (trackPoolFactor*T+trackPoolPorts-1)/trackPoolPorts)
	servers := make([]netip.Addr, n)
	base := trackServerNet.Addr().As4()
	for i := range servers {
		base[3] = byte(i + 1)
		servers[i] = netip.AddrFrom4(base)
	}
	t := &tracker{
		cfg:     cfg,
		a:       a,
		atk:     rand.New(rand.NewPCG(cfg.Seed, trackStreamAttacker)),
		noise:   rand.New(rand.NewPCG(cfg.Seed, trackStreamBackground)),
		servers: servers,
		mod:     cfg.Range.Size(),
		bgAt:    math.Inf(1),
		used:    make([]bool, n*trackPoolPorts),
		uniq:    make([]int32, 0, 2*T),
		fresh:   make([]int32, 0, T),
		first:   make([]uint16, T),
		obs:     make([]uint16, T*trackProbes),
	}
	if cfg.BackgroundRate > 0 {
		t.bgAt = t.noise.ExpFloat64() / cfg.BackgroundRate
	}
	return t, nil
}

// visit is one visit of the victim, from address src, to the attacker's
// page: sessions of phase 1 and phase 2 until an ID, an empty ID, or the
// cap.
func (t *tracker) visit(src netip.Addr) (TrackResult, error) {
	t.src = src
	var r TrackResult
	bg0 := t.bgDone
	aborted, last := 0, ""
	for {
		fp, abort, capped := "", "", false
		if abort, capped = t.phase1(&r); abort == "" && !capped {
			fp, abort, capped = t.phase2(&r)
		}
		if t.failed != alloc.OK {
			return r, fmt.Errorf("predict: track: %s failed with %v although no port is busy", t.cfg.Allocator, t.failed)
		}
		switch {
		case capped:
			r.Reason = t.capReason(aborted, last)
		case abort != "":
			aborted, last = aborted+1, abort
			continue
		case fp == "":
			r.Reason = "phase 2 completed, but no two loopback destinations share a slot: the ID is empty and matches every such device"
		default:
			r.Identified, r.Fingerprint = true, fp
		}
		r.Background = t.bgDone - bg0
		r.Seconds = float64(r.Connections) / t.cfg.AttackRate
		return r, nil
	}
}

// capReason says where the attacker stood when the next step would have
// passed the cap.
func (t *tracker) capReason(aborted int, last string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "no device ID within %d connections: ", t.cfg.MaxConnections)
	if len(t.uniq) < t.cfg.Assumed {
		fmt.Fprintf(&b, "phase 1 had found %d of the %d slots assumed", len(t.uniq), t.cfg.Assumed)
	} else {
		fmt.Fprintf(&b, "phase 1 was complete, but phase 2's %d connections did not fit", t.cfg.Assumed*trackProbes+trackLoopConns)
	}
	if aborted > 0 {
		fmt.Fprintf(&b, "; %d earlier session(s) aborted, the last: %s", aborted, last)
	}
	return b.String()
}

// connect has the victim connect to dst from local at the attacker's next
// tick, after the background connections due by then, and returns the
// source port its SYN carries.
func (t *tracker) connect(local netip.Addr, dst netip.AddrPort) uint16 {
	now := float64(t.k) / t.cfg.AttackRate
	t.k++
	for t.bgAt <= now {
		t.allocate(t.src, t.cfg.Background[t.bgNext], t.bgAt)
		t.bgNext = (t.bgNext + 1) % len(t.cfg.Background)
		t.bgDone++
		t.bgAt += t.noise.ExpFloat64() / t.cfg.BackgroundRate
	}
	return t.allocate(local, dst, now)
}

// allocate runs one connect() allocation at virtual time at (seconds).
func (t *tracker) allocate(local netip.Addr, dst netip.AddrPort, at float64) uint16 {
	t.req = alloc.Request{Local: local, Remote: dst, Now: time.Duration(at * float64(time.Second))}
	res := t.a.Allocate(&t.req, &t.busy)
	if res.Err != alloc.OK && t.failed == alloc.OK {
		t.failed = res.Err
	}
	return res.Port
}

// server is the attacker's pool destination id: address id/16384 of the
// attacker's network, port 11000 + id%16384 (randPort).
func (t *tracker) server(id int32) netip.AddrPort {
	return netip.AddrPortFrom(t.servers[id/trackPoolPorts], uint16(trackPoolStart+id%trackPoolPorts))
}

// phase1 is the PoC's phase 1 (nextCommand's "do-double-batch" and
// handleBatchPhase1), in a new session. It returns with t.uniq holding the
// T accepted destinations (on 5.12-5.17, in T different slots), or with the
// reason the PoC aborts the session, or capped when the next round would
// pass the cap.
func (t *tracker) phase1(r *TrackResult) (abort string, capped bool) {
	T := t.cfg.Assumed
	clear(t.used)
	t.uniq = t.uniq[:0]
	for started := false; len(t.uniq) < T; started = true {
		cost := 2*(T-1) + len(t.uniq)
		if r.Connections+cost > t.cfg.MaxConnections {
			return "", true
		}
		if !started {
			r.Sessions++
		}
		r.Rounds++
		r.Phase1 += cost
		r.Connections += cost
		// AllocatePorts: T-1 destinations not in use by this session.
		t.fresh = t.fresh[:0]
		for len(t.fresh) < T-1 {
			if id := int32(t.atk.IntN(len(t.used))); !t.used[id] {
				t.used[id] = true
				t.fresh = append(t.fresh, id)
			}
		}
		// poc.js sends [...ports, ...prev_unique, ...ports] as one batch.
		for i, id := range t.fresh {
			t.first[i] = t.connect(t.src, t.server(id))
		}
		for _, id := range t.uniq {
			t.connect(t.src, t.server(id))
		}
		for i, id := range t.fresh {
			ps := [2]uint16{t.first[i], t.connect(t.src, t.server(id))}
			trackArrange(ps[:])
			if t.portDiff(ps[1], ps[0]) == 2 {
				t.uniq = append(t.uniq, id)
			} else {
				t.used[id] = false // KeepUniquePorts releases it
			}
		}
	}
	if len(t.uniq) > T {
		return fmt.Sprintf("phase 1 accepted %d server destinations, more than the %d slots assumed", len(t.uniq), T), false
	}
	return "", false
}

// phase2 is the PoC's phase 2 ("do-loopback-sandwich" and
// handleBatchPhase2, Chrome's variant) on the T destinations of t.uniq. It
// returns the canonical fingerprint, or the reason the PoC aborts the
// session, or capped when phase 2 would pass the cap.
func (t *tracker) phase2(r *TrackResult) (fp, abort string, capped bool) {
	T := len(t.uniq)
	cost := T*trackProbes + trackLoopConns
	if r.Connections+cost > t.cfg.MaxConnections {
		return "", "", true
	}
	r.Phase2 += cost
	r.Connections += cost
	t.probe(0)
	for s := range trackSandwiches {
		for k := range trackSandwich {
			dst := netip.AddrPortFrom(trackLoopback, uint16(trackLoopStart+s*trackSandwich+k))
			for range trackNtries << k {
				t.connect(trackLoopback, dst)
			}
		}
		t.probe(s + 1)
	}
	for u := range T { // prepareBatch
		trackArrange(t.obs[u*trackProbes : (u+1)*trackProbes])
	}
	var witness [trackLoopbacks]int // loopback destination -> index in U
	for s := range trackSandwiches {
		top, mask := -1, 0
		lo := [trackSandwich]int{-1, -1, -1, -1}
		for u := range T {
			p := t.obs[u*trackProbes:]
			diff := t.portDiff(p[s+1], p[s])
			switch {
			case diff < trackCutoff(1): // no loopback destination in this slot
			case diff >= trackCutoff(1<<(trackSandwich-1)):
				if top >= 0 {
					return "", "phase 2 found two server destinations in the top half of a sandwich (likely noise)", false
				}
				top = u
			default:
				// The largest m with diff >= cutoff(m) is the bitmask of the
				// lighter loopback destinations in this slot.
				m := (diff - 2) / (2 * trackNtries)
				if mask&m != 0 {
					return "", "phase 2 found two server destinations for one loopback destination (likely noise)", false
				}
				mask |= m
				for k := range trackSandwich {
					if m&(1<<k) != 0 {
						lo[k] = u
					}
				}
			}
		}
		if top < 0 {
			return "", "phase 2: loopback destinations missing (no server destination in the top half of a sandwich)", false
		}
		for k, u := range lo {
			if u < 0 {
				u = top
			}
			witness[s*trackSandwich+k] = u
		}
	}
	return trackFingerprint(&witness), "", false
}

// probe connects once to every destination of U and records its source
// port as its j-th observation.
func (t *tracker) probe(j int) {
	for u, id := range t.uniq {
		t.obs[u*trackProbes+j] = t.connect(t.src, t.server(id))
	}
}

// trackCutoff is the PoC's segmentCutoff, the threshold for m units of
// loopback connections: a slot holding the loopback destinations of bitmask
// m grows by at least 2·ntries·m between two probes, plus 2 for the probe
// itself.
func trackCutoff(m int) int { return 2*trackNtries*m + 2 }

// portDiff is the PoC's sourcePortDiff: p1 - p0 modulo the range's length
// (its Hi - Lo with Hi exclusive), in [0, length). For an odd-sized range
// the kernel wraps one port earlier (remaining is rounded down to even), so
// a slot that wraps between the two ports reads 3, not 2, as in the PoC.
func (t *tracker) portDiff(p1, p0 uint16) int {
	d := (int(p1) - int(p0)) % t.mod
	if d < 0 {
		d += t.mod
	}
	return d
}

// trackArrange is the PoC's prepareBatch for the source ports of one
// destination: it does not trust arrival order but sorts them and rotates
// the list to start after the first gap of at least trackWrap ports, where
// the slot wrapped round the range. In place, without allocating.
func trackArrange(ps []uint16) {
	slices.Sort(ps)
	for i := 0; i+1 < len(ps); i++ {
		if int(ps[i+1]-ps[i]) >= trackWrap {
			slices.Reverse(ps[:i+1])
			slices.Reverse(ps[i+1:])
			slices.Reverse(ps)
			return
		}
	}
}

// trackFingerprint is the PoC's canonicalFingerprint: the loopback
// destinations grouped by the member of U witnessing their slot, groups of
// at least two, each sorted, ordered by smallest member, rendered as
// "(1024,1087):(1031,1040,1077)". Empty when no two share a slot.
func trackFingerprint(witness *[trackLoopbacks]int) string {
	order := make([]int, trackLoopbacks)
	for i := range order {
		order[i] = i
	}
	// Stable, so each group keeps ascending loopback ports.
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(witness[a], witness[b]) })
	var groups [][]int
	for i := 0; i < len(order); {
		j := i + 1
		for j < len(order) && witness[order[j]] == witness[order[i]] {
			j++
		}
		if j-i >= 2 {
			groups = append(groups, order[i:j])
		}
		i = j
	}
	slices.SortFunc(groups, func(a, b []int) int { return cmp.Compare(a[0], b[0]) })
	var b strings.Builder
	for gi, g := range groups {
		if gi > 0 {
			b.WriteByte(':')
		}
		b.WriteByte('(')
		for i, l := range g {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Itoa(trackLoopStart + l))
		}
		b.WriteByte(')')
	}
	return b.String()
}
