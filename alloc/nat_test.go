package alloc

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var natNames = []string{NATPickerNetfilter, NATPickerNetfilter65, NATPickerNetfilterRover, NATPickerRandom, NATPickerSequential}

// script is a rand.Source that returns given values in order (then
// repeats them), so an action table can name the kernel's random offsets
// exactly: Rand.Uint32 is the top half of one Uint64, so offset o is the
// value uint64(o) << 32.
type script struct {
	v []uint64
	i int
}

func (s *script) Uint64() uint64 {
	x := s.v[s.i%len(s.v)]
	s.i++
	return x
}

// offsets returns a Rand whose successive Uint32 values, truncated to 16
// bits, are offs; lead values are returned first as whole Uint64s (the
// rover picker's secret).
func offsets(lead []uint64, offs ...uint16) (*rand.Rand, *script) {
	s := &script{v: append([]uint64(nil), lead...)}
	for _, o := range offs {
		s.v = append(s.v, uint64(o)<<32)
	}
	return rand.New(s), s
}

// busyOf returns a Union over a set holding the given ports and ranges
// (a [2]int is an inclusive range).
func busyOf(items ...any) (*Union, *PortSet) {
	s := new(PortSet)
	for _, it := range items {
		switch v := it.(type) {
		case int:
			s.Add(v)
		case [2]int:
			s.AddRange(Range{uint16(v[0]), uint16(v[1])})
		default:
			panic("busyOf: int or [2]int")
		}
	}
	u := NewUnion(s)
	return &u, s
}

// must drops busyOf's second result.
func must(u *Union, _ *PortSet) *Union { return u }

// allBusyBut is busyOf(pool) with the given ports removed.
func allBusyBut(pool Range, free ...int) *Union {
	u, s := busyOf([2]int{int(pool.Low), int(pool.High)})
	for _, p := range free {
		s.Remove(p)
	}
	return u
}

func newPicker(t testing.TB, name string, rng *rand.Rand) NATPicker {
	t.Helper()
	p, err := NewNATPicker(name, NATConfig{Rand: rng})
	require.NoError(t, err)
	return p
}

var (
	pool100 = Range{1000, 1099} // 100 ports: one window of 100, no second round
	poolBig = Range{1024, 65535}
	tcpReq  = NATRequest{
		Inside: netip.MustParseAddrPort("10.0.0.1:40000"),
		Remote: netip.MustParseAddrPort("198.51.100.7:443"),
	}
)

func reqOn(pool Range) NATRequest { r := tcpReq; r.Pool = pool; return r }

// holding returns a set of held ports and a pick function that runs p
// against it and keeps every port handed out (the flows stay open).
func holding(p NATPicker) (*PortSet, func(NATRequest) Result) {
	held := new(PortSet)
	u := NewUnion(held)
	return held, func(r NATRequest) Result {
		res := p.Pick(&r, &u)
		if res.Err == OK {
			held.Add(int(res.Port))
		}
		return res
	}
}

func TestNATRegistry(t *testing.T) {
	require.Equal(t, []string{"netfilter", "netfilter-6.5", "netfilter-rover", "random", "sequential"}, NATPickerNames())
	for _, name := range natNames {
		p := newPicker(t, name, newRand(1, 2))
		assert.Equal(t, name, p.Name())
		_, ok := p.(Explainer)
		assert.True(t, ok, "%s implements Explainer", name)
		assert.Equal(t, name+": no Allocate call yet", p.(Explainer).Explain())
	}
	_, err := NewNATPicker("nope", NATConfig{})
	require.ErrorIs(t, err, ErrUnknownNATPicker)
	assert.Contains(t, err.Error(), "netfilter-rover")
	for _, name := range []string{NATPickerNetfilter, NATPickerNetfilter65, NATPickerNetfilterRover, NATPickerRandom} {
		_, err := NewNATPicker(name, NATConfig{})
		assert.ErrorContains(t, err, "Rand is nil", name)
	}
	_, err = NewNATPicker(NATPickerSequential, NATConfig{})
	assert.NoError(t, err, "sequential draws nothing")
	p := newPicker(t, NATPickerSequential, nil)
	assert.PanicsWithValue(t, "alloc: NATRequest.Pool 0-10 is not a valid port range", func() {
		r := reqOn(Range{0, 10})
		p.Pick(&r, &Union{})
	})
}

// natCase is one row of an action table: the random offsets the picker
// draws (scripted), the busy ports, the request, and the outcome.
type natCase struct {
	name  string // names the source of the expected behaviour
	offs  []uint16
	req   func() NATRequest
	busy  Busy
	want  Result
	draws int // random values consumed; -1 = do not check
}

func runNATCases(t *testing.T, picker string, lead []uint64, cases []natCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rng, s := offsets(lead, tc.offs...)
			p := newPicker(t, picker, rng)
			req := tc.req()
			got := p.Pick(&req, tc.busy)
			assert.Equal(t, tc.want, got)
			if tc.draws >= 0 {
				assert.Equal(t, len(lead)+tc.draws, s.i, "random values drawn")
			}
			t.Log(p.(Explainer).Explain())
		})
	}
}

// TestNATNetfilterActions follows nf_nat_l4proto_unique_tuple of Linux
// 5.0+ (nf_nat_core.c @002c6ca75289, commit a504b703bb1d): probe min + off
// % size for off, off+1, ... over a window of min(size, 128), then windows
// 64, 32, 16, 8 from fresh offsets; the offset is a u16.
func TestNATNetfilterActions(t *testing.T) {
	big := func() NATRequest { return reqOn(poolBig) }
	small := func() NATRequest { return reqOn(pool100) }
	none, _ := busyOf()
	b1005, _ := busyOf([2]int{1005, 1007})
	wrap, _ := busyOf(1034, 1035)
	odd := func() NATRequest {
		r := reqOn(pool100)
		r.Inside = netip.MustParseAddrPort("10.0.0.1:5001")
		r.Parity = true
		return r
	}
	b1007, _ := busyOf(1007)
	runNATCases(t, NATPickerNetfilter, nil, []natCase{
		{name: "a504b703bb1d: first candidate min + off % size is free",
			offs: []uint16{5}, req: small, busy: none, want: Result{Port: 1005, Probes: 1}, draws: 1},
		{name: "a504b703bb1d: off++ walks past a busy run",
			offs: []uint16{5}, req: small, busy: b1005, want: Result{Port: 1008, Probes: 4}, draws: 1},
		{name: "u16 off: 65534, 65535 then 0 jumps from index 35 to index 0",
			offs: []uint16{65534}, req: small, busy: wrap, want: Result{Port: 1000, Probes: 3}, draws: 1},
		{name: "u16 off: the window that wraps never reaches indices 64-99, so it fails with 1090 free",
			offs: []uint16{65500}, req: small, busy: allBusyBut(pool100, 1090), want: Result{Probes: 100, Err: EADDRNOTAVAIL}, draws: 1},
		{name: "u16 off on 1-65535: offsets 65535 and 0 both map to index 0 (port 1)",
			offs: []uint16{65535}, req: func() NATRequest { return reqOn(Range{1, MaxPort}) }, busy: must(busyOf(1)), want: Result{Port: 2, Probes: 3}, draws: 1},
		{name: "pool of 100 <= 128: one round of 100 (attempts >= range_size ends it)",
			offs: []uint16{7, 99}, req: small, busy: allBusyBut(pool100), want: Result{Probes: 100, Err: EADDRNOTAVAIL}, draws: 1},
		{name: "a504b703bb1d: full 64512-port pool gives up after 128+64+32+16+8 = 248 probes",
			offs: []uint16{0, 1000, 2000, 3000, 4000}, req: big, busy: allBusyBut(poolBig), want: Result{Probes: 248, Err: EADDRNOTAVAIL}, draws: 5},
		{name: "a504b703bb1d: third round (window 32) from a fresh offset finds 1024+2010",
			offs: []uint16{0, 1000, 2000}, req: big, busy: allBusyBut(poolBig, 3034), want: Result{Port: 3034, Probes: 128 + 64 + 11}, draws: 3},
		{name: "a504b703bb1d: a free port just past the first window is not seen in round 1",
			offs: []uint16{0, 500}, req: big, busy: allBusyBut(poolBig, 1024+128, 1024+510), want: Result{Port: 1534, Probes: 128 + 11}, draws: 2},
		{name: "129-port pool: attempts 128 < size, so all five rounds run",
			offs: []uint16{0, 0, 0, 0, 0}, req: func() NATRequest { return reqOn(Range{2000, 2128}) }, busy: allBusyBut(Range{2000, 2128}), want: Result{Probes: 248, Err: EADDRNOTAVAIL}, draws: 5},
		{name: "16-port pool: attempts = size, one round",
			offs: []uint16{3}, req: func() NATRequest { return reqOn(Range{2000, 2015}) }, busy: allBusyBut(Range{2000, 2015}), want: Result{Probes: 16, Err: EADDRNOTAVAIL}, draws: 1},
		{name: "parity (RFC 4787 REQ-4): odd class 1001..1099 of 50, offset 3 → index 3 = 1007 busy → 1009",
			offs: []uint16{3}, req: odd, busy: b1007, want: Result{Port: 1009, Probes: 2}, draws: 1},
		{name: "parity: no port of the inside parity in a one-port pool",
			offs: []uint16{3}, req: func() NATRequest { r := odd(); r.Pool = Range{1000, 1000}; return r }, busy: none, want: Result{Err: EADDRNOTAVAIL}, draws: 0},
		{name: "nat.md §2.4: --random-fully is the same search since 5.0",
			offs: []uint16{5}, req: func() NATRequest { r := small(); r.Mode = NATRandomFully; return r }, busy: none, want: Result{Port: 1005, Probes: 1}, draws: 1},
		{name: "netfilter ignores Evictable (no eviction before 6.5)",
			offs: []uint16{0}, req: func() NATRequest { r := small(); _, e := busyOf(1050); r.Evictable = e; return r }, busy: allBusyBut(pool100), want: Result{Probes: 100, Err: EADDRNOTAVAIL}, draws: 1},
	})
}

// TestNATNetfilter65Eviction follows nf_nat_used_tuple_harder (Linux 6.5,
// "netfilter: snat: evict closing tcp entries on reply tuple collision"):
// it is called with attempts_left = attempts - i and evicts only when
// attempts_left <= NF_NAT_HARDER_THRESH (32), for TCP.
func TestNATNetfilter65Eviction(t *testing.T) {
	big := poolBig
	withEv := func(udp bool, ports ...any) func() NATRequest {
		return func() NATRequest {
			r := reqOn(big)
			r.UDP = udp
			_, e := busyOf(ports...)
			r.Evictable = e
			return r
		}
	}
	full := allBusyBut(big)
	runNATCases(t, NATPickerNetfilter65, nil, []natCase{
		{name: "attempts - i = 32 at i = 96: evictable candidate taken",
			offs: []uint16{0}, req: withEv(false, 1024+96), busy: full, want: Result{Port: 1024 + 96, Probes: 97}, draws: 1},
		{name: "attempts - i = 33 at i = 95: not yet, and nothing later is evictable → 248",
			offs: []uint16{0, 5000, 6000, 7000, 8000}, req: withEv(false, 1024+95), busy: full, want: Result{Probes: 248, Err: EADDRNOTAVAIL}, draws: 5},
		{name: "round 3 (window 32): every probe may evict, the first one is taken",
			offs: []uint16{0, 1000, 2000}, req: withEv(false, 1024+2000), busy: full, want: Result{Port: 3024, Probes: 128 + 64 + 1}, draws: 3},
		{name: "a free port before the evictable one wins (the loop returns at the first unused tuple)",
			offs: []uint16{0}, req: withEv(false, 1024+110), busy: allBusyBut(big, 1024+100), want: Result{Port: 1124, Probes: 101}, draws: 1},
		{name: "an evictable port before a free one in the last 32 is evicted",
			offs: []uint16{0}, req: withEv(false, 1024+100), busy: allBusyBut(big, 1024+110), want: Result{Port: 1124, Probes: 101}, draws: 1},
		{name: "tuple->dst.protonum != IPPROTO_TCP: UDP never evicts",
			offs: []uint16{0, 1, 2, 3, 4}, req: withEv(true, [2]int{1024, 65535}), busy: full, want: Result{Probes: 248, Err: EADDRNOTAVAIL}, draws: 5},
		{name: "pool of 20 (one window of 20, attempts_left <= 20): first probe may evict",
			offs: []uint16{0}, req: func() NATRequest { r := withEv(false, 2000)(); r.Pool = Range{2000, 2019}; return r }, busy: allBusyBut(Range{2000, 2019}), want: Result{Port: 2000, Probes: 1}, draws: 1},
		{name: "nil Evictable: plain 5.0+ search",
			offs: []uint16{0, 1, 2, 3, 4}, req: func() NATRequest { return reqOn(big) }, busy: full, want: Result{Probes: 248, Err: EADDRNOTAVAIL}, draws: 5},
	})
	// The trace says so.
	rng, _ := offsets(nil, 0)
	p := newPicker(t, NATPickerNetfilter65, rng)
	req := withEv(false, 1024+96)()
	p.Pick(&req, full)
	assert.Contains(t, p.(Explainer).Explain(), "evicting a closing TCP entry")
}

// roverLead is the secret the rover picker draws when built (k0, k1).
var roverLead = []uint64{0x0123456789abcdef, 0xfedcba9876543210}

// TestNATRoverActions follows the pre-5.0 nf_nat_l4proto_unique_tuple
// (nf_nat_proto_common.c @04421fe2671c): start at the protocol's rover,
// the keyed hash or the PRNG; `if (++i != range_size && used) continue`;
// `*rover = off` only without a random flag.
func TestNATRoverActions(t *testing.T) {
	none, _ := busyOf()
	small := func(mode NATMode) func() NATRequest {
		return func() NATRequest { r := reqOn(pool100); r.Mode = mode; return r }
	}
	runNATCases(t, NATPickerNetfilterRover, roverLead, []natCase{
		{name: "04421fe2671c: fresh rover 0 → min + 0", req: small(NATDefault), busy: none, want: Result{Port: 1000, Probes: 1}, draws: 0},
		{name: "04421fe2671c: linear scan over the whole pool, no 248 budget",
			req: func() NATRequest { return reqOn(poolBig) }, busy: allBusyBut(poolBig, 60000), want: Result{Port: 60000, Probes: 60000 - 1024 + 1}, draws: 0},
		{name: "04421fe2671c: the last candidate is returned unchecked; free → success after size probes",
			req: small(NATDefault), busy: allBusyBut(pool100, 1099), want: Result{Port: 1099, Probes: 100}, draws: 0},
		{name: "04421fe2671c: the last candidate taken → clash dropped at confirm",
			req: small(NATDefault), busy: allBusyBut(pool100), want: Result{Probes: 100, Err: EADDRNOTAVAIL}, draws: 0},
		{name: "04421fe2671c: --random-fully starts at prandom_u32() (u16 65534 → index 34)",
			offs: []uint16{65534}, req: small(NATRandomFully), busy: none, want: Result{Port: 1034, Probes: 1}, draws: 1},
		{name: "u16 off: from 65534 the pass reaches index 97 last, skipping 98-99 → fails with 1098 free",
			offs: []uint16{65534}, req: small(NATRandomFully), busy: allBusyBut(pool100, 1098), want: Result{Probes: 100, Err: EADDRNOTAVAIL}, draws: 1},
		{name: "u16 off on 1-65535: 65535 % 65535 = 0, then off 0 is index 0 again: port 1 probed twice",
			offs: []uint16{65535}, req: func() NATRequest { r := reqOn(Range{1, MaxPort}); r.Mode = NATRandomFully; return r }, busy: must(busyOf(1)), want: Result{Port: 2, Probes: 3}, draws: 1},
		{name: "parity: even class 1000..1098, rover 0 → 1000", req: func() NATRequest { r := small(NATDefault)(); r.Parity = true; return r }, busy: none, want: Result{Port: 1000, Probes: 1}, draws: 0},
	})
}

// TestNATRoverQuirks checks the rover's state across calls, the quirks
// 6ed5943f8735 ("netfilter: nat: remove l4 protocol port rovers") removed.
func TestNATRoverQuirks(t *testing.T) {
	rng, s := offsets(roverLead, 40, 41)
	p := newPicker(t, NATPickerNetfilterRover, rng)
	_, pick := holding(p)
	tcp := reqOn(pool100)
	udp := tcp
	udp.UDP = true

	// rover = off of the port returned, not the one after: the next flow
	// toward the same destination starts on the port just handed out.
	assert.Equal(t, Result{Port: 1000, Probes: 1}, pick(tcp))
	assert.Equal(t, Result{Port: 1001, Probes: 2}, pick(tcp))
	assert.Equal(t, Result{Port: 1002, Probes: 2}, pick(tcp))
	assert.Contains(t, p.(Explainer).Explain(), "TCP rover → offset 1, linear pass → 1002, 2 candidates probed; TCP rover now 2")

	// One rover per protocol: UDP's is still 0.
	assert.Equal(t, Result{Port: 1003, Probes: 4}, pick(udp))

	// --random-fully leaves the rover alone: PRNG offset 40 → 1040, then
	// the TCP rover (2) goes on → 1004 after two busy ports.
	fully := tcp
	fully.Mode = NATRandomFully
	assert.Equal(t, Result{Port: 1040, Probes: 1}, pick(fully))
	assert.Equal(t, Result{Port: 1004, Probes: 3}, pick(tcp))
	assert.Equal(t, len(roverLead)+1, s.i, "only --random-fully draws")

	// The rover moves even on the dropped-at-confirm failure: to the
	// offset of the last, unchecked candidate.
	full := allBusyBut(pool100)
	r := tcp
	assert.Equal(t, Result{Probes: 100, Err: EADDRNOTAVAIL}, p.Pick(&r, full))
	assert.Contains(t, p.(Explainer).Explain(), "TCP rover now 103")
	// 103 % 100 = index 3; 1003 is held, so the next TCP flow gets 1005.
	assert.Equal(t, Result{Port: 1005, Probes: 3}, pick(tcp))

	// A rover is an offset, not a port: in a different pool it lands at
	// min + rover % size.
	other := reqOn(Range{5000, 5009})
	assert.Equal(t, Result{Port: 5005, Probes: 1}, pick(other))
}

// TestNATRoverRandomHash: --random before 5.0 starts at
// secure_ipv4_port_ephemeral(source, destination, dport) of the translated
// tuple (nf_nat_ipv4_secure_port), keyed by a secret drawn at build time.
func TestNATRoverRandomHash(t *testing.T) {
	none, _ := busyOf()
	key := [16]byte{}
	for i := range 8 {
		key[i] = byte(roverLead[0] >> (8 * i))
		key[8+i] = byte(roverLead[1] >> (8 * i))
	}
	ext := netip.MustParseAddr("192.0.2.10")
	for _, tc := range []struct {
		name     string
		external netip.Addr
		inside   string
		hashed   netip.Addr
	}{
		{"nf_nat_ipv4_secure_port hashes the translated source address", ext, "10.0.0.1:40000", ext},
		{"another inside host to the same destination: same offset", ext, "10.0.0.2:50000", ext},
		{"External unknown: the inside address stands in", netip.Addr{}, "10.0.0.3:1234", netip.MustParseAddr("10.0.0.3")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng, s := offsets(roverLead, 9)
			p := newPicker(t, NATPickerNetfilterRover, rng)
			r := reqOn(poolBig)
			r.Mode, r.External, r.Inside = NATRandom, tc.external, netip.MustParseAddrPort(tc.inside)
			off := uint16(refPortOffset(key, &Request{Local: tc.hashed, Remote: r.Remote}, false))
			want := 1024 + int(off)%poolBig.Size()
			assert.Equal(t, Result{Port: uint16(want), Probes: 1}, p.Pick(&r, none))
			assert.Equal(t, len(roverLead), s.i, "--random draws nothing per call")
			// --random leaves the rover at 0.
			d := reqOn(poolBig)
			assert.Equal(t, Result{Port: 1024, Probes: 1}, p.Pick(&d, none))
		})
	}
}

// TestNATRandomActions: "random" draws uniformly among the free candidates
// (Azure NAT Gateway, nat.md §3.3).
func TestNATRandomActions(t *testing.T) {
	odd := func(pool Range) func() NATRequest {
		return func() NATRequest {
			r := reqOn(pool)
			r.Inside = netip.MustParseAddrPort("10.0.0.1:5001")
			r.Parity = true
			return r
		}
	}
	small := Range{1000, 1009}
	// IntN(n) maps a Uint64 x to floor(x*n / 2^64): x = 0.45 * 2^64 draws
	// index 4 of 10, x = 0.7 * 2^64 index 3 of 5; offset 1 (x = 2^32)
	// draws index 0.
	const at45, at70 = 0x7333333333333333, 0xB333333333333333
	runNATCases(t, NATPickerRandom, []uint64{at45}, []natCase{
		{name: "nat.md §3.3: a uniform draw that finds a free port takes it",
			offs: []uint16{1}, req: func() NATRequest { return reqOn(small) }, busy: allBusyBut(small, 1004), want: Result{Port: 1004, Probes: 1}, draws: 0},
	})
	runNATCases(t, NATPickerRandom, []uint64{at70}, []natCase{
		{name: "parity: a uniform draw over the odd class finds the one free odd port",
			offs: []uint16{1}, req: odd(small), busy: allBusyBut(small, 1000, 1007), want: Result{Port: 1007, Probes: 1}, draws: 0},
		{name: "parity through a Busy without parity counts",
			offs: []uint16{1}, req: odd(small), busy: hideParity{allBusyBut(small, 1000, 1007)}, want: Result{Port: 1007, Probes: 1}, draws: 0},
	})
	runNATCases(t, NATPickerRandom, nil, []natCase{
		{name: "nat.md §3.3: 16 busy draws, then the count finds the only free port (one more draw)",
			offs: []uint16{1}, req: func() NATRequest { return reqOn(small) }, busy: allBusyBut(small, 1004), want: Result{Port: 1004, Probes: natRandomTries + 1}, draws: natRandomTries + 1},
		{name: "nat.md §3.3: no free inventory → 16 draws, the count, failure",
			offs: []uint16{1}, req: func() NATRequest { return reqOn(small) }, busy: allBusyBut(small), want: Result{Probes: 10, Err: EADDRNOTAVAIL}, draws: natRandomTries},
		{name: "parity: only even ports free, odd requested → failure over the 5 odd ones",
			offs: []uint16{1}, req: odd(small), busy: allBusyBut(small, 1000, 1002, 1004), want: Result{Probes: 5, Err: EADDRNOTAVAIL}, draws: natRandomTries},
		{name: "parity: the one free odd port after 16 busy draws",
			offs: []uint16{1}, req: odd(small), busy: allBusyBut(small, 1000, 1007), want: Result{Port: 1007, Probes: natRandomTries + 1}, draws: natRandomTries + 1},
	})
}

// TestNATSequentialActions: one cursor; start at it when it lies in the
// pool, else at Low; wrap within the pool; move past the chosen port.
func TestNATSequentialActions(t *testing.T) {
	p := newPicker(t, NATPickerSequential, nil)
	held, pick := holding(p)
	small := reqOn(Range{1000, 1004})
	assert.Equal(t, Result{Port: 1000, Probes: 1}, pick(small), "cursor 0 is outside the pool: start at Low")
	assert.Equal(t, Result{Port: 1001, Probes: 1}, pick(small), "cursor moved past 1000")
	held.Add(1002)
	assert.Equal(t, Result{Port: 1003, Probes: 2}, pick(small), "walks past busy 1002")
	held.Remove(1000)
	assert.Equal(t, Result{Port: 1004, Probes: 1}, pick(small))
	assert.Equal(t, Result{Port: 1000, Probes: 1}, pick(small), "cursor 1005 is past High: start at Low")
	assert.Equal(t, Result{Probes: 5, Err: EADDRNOTAVAIL}, pick(small), "all busy")
	assert.Contains(t, p.(Explainer).Explain(), "cursor unchanged")
	held.Remove(1001)
	assert.Equal(t, Result{Port: 1001, Probes: 1}, pick(small), "a failure left the cursor at 1001")

	// A cursor inside another pool is used there.
	other := reqOn(Range{1000, 2000})
	assert.Equal(t, Result{Port: 1005, Probes: 4}, pick(other), "cursor 1002: 1002-1004 held, 1005")

	// Parity: from the first class member at or above the cursor (1006 → 1007).
	par := reqOn(Range{1000, 2000})
	par.Inside = netip.MustParseAddrPort("10.0.0.1:5001")
	par.Parity = true
	assert.Equal(t, Result{Port: 1007, Probes: 1}, pick(par))
	held.AddRange(Range{1009, 2000})
	held.Remove(1003)
	assert.Equal(t, Result{Port: 1003, Probes: 498}, pick(par), "odd 1009-1999 busy (496), wrap: 1001 held, 1003")
	assert.Contains(t, p.(Explainer).Explain(), "pool 1001-1999 odd ports (500), start 1009 → 1003, 498 candidates probed, wrapped; cursor now 1004")
}
