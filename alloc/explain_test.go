package alloc

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// busyExcept returns a Union holding every port of r except the ones given.
func busyExcept(r Range, free ...int) *Union {
	s := new(PortSet)
	s.AddRange(r)
	for _, p := range free {
		s.Remove(p)
	}
	u := NewUnion(s)
	return &u
}

// busyPorts returns a Union holding exactly the ports given.
func busyPorts(ports ...int) *Union {
	s := new(PortSet)
	for _, p := range ports {
		s.Add(p)
	}
	u := NewUnion(s)
	return &u
}

// busyParity returns a Union holding every port of r of one parity, except
// the ones given.
func busyParity(r Range, parity int, free ...int) *Union {
	s := new(PortSet)
	for p := int(r.Low); p <= int(r.High); p++ {
		if p&1 == parity {
			s.Add(p)
		}
	}
	for _, p := range free {
		s.Remove(p)
	}
	u := NewUnion(s)
	return &u
}

// explainer builds the named allocator and returns it as an Explainer too.
func explainer(t *testing.T, name string, cfg Config) (Allocator, Explainer) {
	t.Helper()
	if cfg.Rand == nil {
		cfg.Rand = newRand(11, 13)
	}
	a, err := New(name, cfg)
	require.NoError(t, err)
	e, ok := a.(Explainer)
	require.True(t, ok, "%s does not implement Explainer", name)
	return a, e
}

// startRe finds the first candidate an explanation names: "start N", or
// FreeBSD's sequential "lastport+1 = N".
var startRe = regexp.MustCompile(`(?:start|lastport\+1 =) (\d+)`)

// startOf returns the "start N" of an explanation.
func startOf(t *testing.T, s string) int {
	t.Helper()
	m := startRe.FindStringSubmatch(s)
	require.NotNil(t, m, "no start in %q", s)
	n, err := strconv.Atoi(m[1])
	require.NoError(t, err)
	return n
}

// linearFrom checks that a linear probe of r from the explanation's start
// reaches res.Port after res.Probes candidates.
func linearFrom(r Range) func(t *testing.T, s string, res Result) {
	return func(t *testing.T, s string, res Result) {
		assert.Equal(t, int(res.Port), ring(r, startOf(t, s), res.Probes-1), "start, probes and port disagree in %q", s)
	}
}

// TestExplain is the table of explanations: for each allocator, one Allocate
// (after the stated warm-up) on a known busy pattern and seed, and the facts
// Explain must state: the source, the mode or pass, the chosen port and the
// probe count, or the errno. want gets the Result so that the facts of
// randomized allocators are checked against what the call really did.
func TestExplain(t *testing.T) {
	small := Range{100, 199}
	bsd := Range{49152, 65535}
	v4 := connectTo("198.51.100.7:443", 3*time.Second)
	tests := []struct {
		name  string // test name
		alloc string
		cfg   Config
		warm  func(a Allocator) // calls before the explained one; nil for none
		req   Request
		busy  Busy
		ok    bool // the explained call succeeds
		want  func(res Result) []string
		check func(t *testing.T, s string, res Result) // extra consistency check
	}{
		{
			name: "sequential/skips busy", alloc: NameSequential, cfg: Config{Range: bsd, First: 49153},
			busy: busyPorts(49153, 49154, 49155), ok: true,
			want: func(Result) []string {
				return []string{"sequential (lastport++): global counter at 49153, linear probe → 49156, 4 candidates probed; counter now 49157"}
			},
		},
		{
			name: "sequential/wraps", alloc: NameSequential, cfg: Config{Range: bsd, First: 65534},
			busy: busyPorts(65534, 65535), ok: true,
			want: func(Result) []string {
				return []string{"global counter at 65534", "→ 49152, 3 candidates probed, wrapped 65535 → 49152", "counter now 49153"}
			},
		},
		{
			name: "sequential/full", alloc: NameSequential, cfg: Config{Range: bsd, First: 50000},
			busy: busyExcept(bsd),
			want: func(Result) []string {
				return []string{"global counter at 50000, linear probe found all 16384 ports busy → EADDRNOTAVAIL; counter unchanged"}
			},
		},
		{
			name: "random-start/one free port", alloc: NameRandomStart, cfg: Config{Range: small},
			busy: busyExcept(small, 150), ok: true,
			want: func(res Result) []string {
				return []string{"RFC 6056 §3.3.1 Alg. 1: random start ", ", linear probe → 150, " + probed(res.Probes)}
			},
			check: linearFrom(small),
		},
		{
			name: "random-start/full", alloc: NameRandomStart, cfg: Config{Range: small},
			req: Request{Fail: EADDRINUSE}, busy: busyExcept(small),
			want: func(Result) []string { return []string{"random start ", "found all 100 ports busy → EADDRINUSE"} },
		},
		{
			name: "random-pick/draws", alloc: NameRandomPick, cfg: Config{Range: small},
			busy: busyExcept(small, 150, 151, 152, 153, 154), ok: true,
			want: func(res Result) []string {
				return []string{fmt.Sprintf("RFC 6056 §3.3.2 Alg. 2: %d random draws → %d (%d hit busy ports)", res.Probes, res.Port, res.Probes-1)}
			},
		},
		{
			name: "random-pick/first draw", alloc: NameRandomPick, cfg: Config{Range: small},
			busy: busyPorts(), ok: true,
			want: func(res Result) []string { return []string{fmt.Sprintf("1 random draw → %d", res.Port)} },
		},
		{
			name: "random-pick/full stops early", alloc: NameRandomPick, cfg: Config{Range: small},
			busy: busyExcept(small),
			want: func(Result) []string {
				return []string{"first draw busy and no port of 100-199 free → EADDRNOTAVAIL (counted as all 100 draws missing)"}
			},
		},
		{
			name: "hash/linear probe", alloc: NameHash, cfg: Config{Range: small},
			req: v4, busy: busyExcept(small, 150), ok: true,
			want: func(res Result) []string {
				return []string{"RFC 6056 §3.3.3 Alg. 3: hash offset ", " + global counter ", "→ 150, " + probed(res.Probes),
					fmt.Sprintf("; counter += %d", res.Probes)}
			},
			check: linearFrom(small),
		},
		{
			name: "hash/full", alloc: NameHash, cfg: Config{Range: small},
			req: v4, busy: busyExcept(small),
			want: func(Result) []string { return []string{"global counter", "found all 100 ports busy → EADDRNOTAVAIL"} },
		},
		{
			name: "double-hash/linear probe", alloc: NameDoubleHash, cfg: Config{Range: small},
			req: v4, busy: busyExcept(small, 150), ok: true,
			want: func(res Result) []string {
				return []string{"RFC 6056 §3.3.4 Alg. 4: table[", " + hash offset ", "→ 150, " + probed(res.Probes),
					fmt.Sprintf("] += %d", res.Probes)}
			},
			check: func(t *testing.T, s string, res Result) {
				linearFrom(small)(t, s, res)
				m := regexp.MustCompile(`table\[(\d+)\]=\d+ .*; table\[(\d+)\] \+=`).FindStringSubmatch(s)
				require.NotNil(t, m, s)
				assert.Equal(t, m[1], m[2], "the slot read is the slot advanced")
			},
		},
		{
			name: "random-increments/N=1 walks", alloc: NameRandomIncrements, cfg: Config{Range: small, Increments: 1},
			busy: busyExcept(small, 150), ok: true,
			want: func(res Result) []string {
				return []string{"RFC 6056 §3.3.5 Alg. 5: counter ", " += 1..1 per probe, ", fmt.Sprintf("%d probes → 150 (%d hit busy ports)", res.Probes, res.Probes-1)}
			},
		},
		{
			name: "random-increments/N=500 fails early", alloc: NameRandomIncrements, cfg: Config{Range: small},
			busy: busyExcept(small),
			want: func(Result) []string {
				return []string{"+= 1..500 per probe, 100 probes all hit busy ports (the walk need not visit every port) → EADDRNOTAVAIL"}
			},
		},
		{
			name: "random-increments/N=1 full", alloc: NameRandomIncrements, cfg: Config{Range: small, Increments: 1},
			busy: busyExcept(small),
			want: func(Result) []string { return []string{"+= 1..1 per probe, all 100 ports busy → EADDRNOTAVAIL"} },
		},
		{
			name: "freebsd-13/random", alloc: NameFreeBSD13, cfg: Config{Range: small},
			req: Request{Now: 500 * ms}, busy: busyExcept(small, 150), ok: true,
			want: func(res Result) []string {
				return []string{"in_pcb_lport_dest: random start ", " (rate 1/s ≤ randomcps 10), linear probe → 150, " + probed(res.Probes)}
			},
			check: linearFrom(small),
		},
		{
			name: "freebsd-13/random above the rate", alloc: NameFreeBSD13, cfg: Config{Range: small},
			warm: func(a Allocator) {
				for i := range 11 {
					a.Allocate(&Request{Now: time.Duration(i) * 10 * ms}, busyPorts())
				}
			},
			req: Request{Now: 500 * ms}, busy: busyPorts(), ok: true,
			want: func(res Result) []string {
				return []string{"random start ", "(rate 12/s > randomcps 10: the next ipport_tick turns allocation sequential for 45 s)",
					fmt.Sprintf("→ %d, 1 candidate probed", res.Port)}
			},
		},
		{
			name: "freebsd-13/sequential fallback", alloc: NameFreeBSD13, cfg: Config{Range: small},
			warm: func(a Allocator) {
				for i := range 20 {
					a.Allocate(&Request{Now: time.Duration(i) * 10 * ms}, busyPorts())
				}
				a.Allocate(&Request{Now: 1500 * ms}, busyPorts()) // first sequential call
			},
			req: Request{Now: 1600 * ms}, busy: busyExcept(small, 150), ok: true,
			want: func(res Result) []string {
				return []string{"in_pcb_lport_dest: sequential fallback from lastport+1 = ",
					"(stoprandom 45 s left; rate 2/s, randomcps 10), linear probe → 150, " + probed(res.Probes)}
			},
			check: linearFrom(small),
		},
		{
			name: "freebsd-13/full", alloc: NameFreeBSD13, cfg: Config{Range: small},
			busy: busyExcept(small),
			want: func(Result) []string { return []string{"random start", "found all 100 ports busy → EADDRNOTAVAIL"} },
		},
		{
			name: "linux/even pass", alloc: NameLinux, cfg: Config{Range: linuxRange},
			req: v4, busy: busyParity(linuxRange, 0, 40000), ok: true,
			want: func(res Result) []string {
				return []string{"__inet_hash_connect (5.18+): table_perturb[", "] + hash offset → offset ", " of 28232, start ",
					"; even pass, " + probed(res.Probes) + " → 40000; table_perturb["}
			},
			check: func(t *testing.T, s string, res Result) {
				start := startOf(t, s)
				assert.Equal(t, 40000, ring(linuxRange, start, 2*(res.Probes-1)), "step 2 from start")
				m := regexp.MustCompile(`table_perturb\[(\d+)\] \+ .*; table_perturb\[(\d+)\] \+= (\d+)$`).FindStringSubmatch(s)
				require.NotNil(t, m, s)
				assert.Equal(t, m[1], m[2], "the slot read is the slot advanced")
				inc, _ := strconv.Atoi(m[3])
				assert.GreaterOrEqual(t, inc, 2*res.Probes, "i + 2, i = max(i, rand_below(8)·2)")
			},
		},
		{
			name: "linux/odd pass", alloc: NameLinux, cfg: Config{Range: linuxRange},
			req: v4, busy: busyExcept(linuxRange, 40001), ok: true,
			want: func(res Result) []string {
				return []string{fmt.Sprintf("; even ports all busy (14116 probed), odd pass found 40001 after %d more; table_perturb[", res.Probes-14116)}
			},
		},
		{
			name: "linux/IP_LOCAL_PORT_RANGE", alloc: NameLinux, cfg: Config{Range: linuxRange},
			req:  func() Request { r := v4; r.LocalRange = Range{40000, 40999}; return r }(),
			busy: busyExcept(linuxRange, 40500), ok: true,
			want: func(res Result) []string {
				return []string{"__inet_hash_connect (5.18+): IP_LOCAL_PORT_RANGE 40000-40999, one pass (no parity split, 6.8+); table_perturb[",
					" of 1000, start ", "; " + probed(res.Probes) + " → 40500; table_perturb["}
			},
			check: linearFrom(Range{40000, 40999}),
		},
		{
			name: "linux/full", alloc: NameLinux, cfg: Config{Range: linuxRange},
			req: v4, busy: busyExcept(linuxRange),
			want: func(Result) []string {
				return []string{"all 28232 candidates busy → EADDRNOTAVAIL; table_perturb[", "] unchanged"}
			},
		},
		{
			name: "linux/full odd-sized range", alloc: NameLinux, cfg: Config{Range: Range{32768, 61000}},
			req: v4, busy: busyExcept(Range{32768, 61000}),
			want: func(Result) []string {
				return []string{"all 28232 candidates busy (1 port of the odd-sized range 32768-61000 not examined) → EADDRNOTAVAIL"}
			},
		},
		{
			name: "linux-alg3/nothing busy", alloc: NameLinuxAlg3, cfg: Config{Range: linuxRange},
			req: v4, busy: busyPorts(), ok: true,
			want: func(res Result) []string {
				return []string{"__inet_hash_connect (4.6-5.11): global hint 0 + hash offset → offset ",
					fmt.Sprintf("; even pass, 1 candidate probed → %d; hint += 2", res.Port)}
			},
			check: func(t *testing.T, s string, res Result) { assert.Equal(t, int(res.Port), startOf(t, s)) },
		},
		{
			name: "linux-alg3/hint moved", alloc: NameLinuxAlg3, cfg: Config{Range: linuxRange},
			warm: func(a Allocator) {
				for i := range 3 {
					r := connectTo(dest(i), 0)
					a.Allocate(&r, busyPorts())
				}
			},
			req: v4, busy: busyPorts(), ok: true,
			want: func(Result) []string { return []string{"global hint 6 + hash offset", "hint += 2"} },
		},
		{
			name: "linux-alg4-256/nothing busy", alloc: NameLinuxAlg4, cfg: Config{Range: linuxRange},
			req: v4, busy: busyPorts(), ok: true,
			want: func(res Result) []string {
				return []string{"__inet_hash_connect (5.12-5.17): table_perturb[", "] (hash_32 index) + hash offset → offset ",
					fmt.Sprintf("; even pass, 1 candidate probed → %d; table_perturb[", res.Port), "] += 2"}
			},
		},
		{
			name: "linux-bind/odd pass", alloc: NameLinuxBind, cfg: Config{Range: linuxRange},
			req: Request{Fail: EADDRINUSE}, busy: busyParity(linuxRange, 1, 40001), ok: true,
			want: func(res Result) []string {
				return []string{"inet_csk_find_open_port: random odd offset ", " of 28232 → start ",
					"; odd pass, " + probed(res.Probes) + " → 40001"}
			},
			check: func(t *testing.T, s string, res Result) {
				assert.Equal(t, 40001, ring(linuxRange, startOf(t, s), 2*(res.Probes-1)))
			},
		},
		{
			name: "linux-bind/even pass", alloc: NameLinuxBind, cfg: Config{Range: linuxRange},
			req: Request{Fail: EADDRINUSE}, busy: busyExcept(linuxRange, 40000), ok: true,
			want: func(res Result) []string {
				return []string{fmt.Sprintf("odd ports all busy (14116 probed), even pass found 40000 after %d more", res.Probes-14116)}
			},
		},
		{
			name: "linux-bind/SO_REUSEADDR lower half", alloc: NameLinuxBind, cfg: Config{Range: linuxRange},
			req: Request{Fail: EADDRINUSE, ReuseAddr: true}, busy: busyPorts(), ok: true,
			want: func(res Result) []string {
				return []string{"inet_csk_find_open_port: lower half 32768-46883 first (SO_REUSEADDR): random odd offset ",
					" of 14116 → start ", fmt.Sprintf("; odd pass, 1 candidate probed → %d", res.Port)}
			},
		},
		{
			name: "linux-bind/SO_REUSEADDR upper half", alloc: NameLinuxBind, cfg: Config{Range: linuxRange},
			req:  Request{Fail: EADDRINUSE, ReuseAddr: true},
			busy: func() Busy { u := busyPorts(); u.sets[0].AddRange(Range{32768, 46883}); return u }(), ok: true,
			want: func(res Result) []string {
				return []string{"lower half 32768-46883 all busy (14116 probed, SO_REUSEADDR), upper half 46884-60999: random odd offset ",
					fmt.Sprintf("; odd pass, 1 candidate probed → %d (14117 probed in all)", res.Port)}
			},
		},
		{
			name: "linux-bind/relax pass", alloc: NameLinuxBind, cfg: Config{Range: linuxRange, AutobindReuse: true},
			req:  Request{Fail: EADDRINUSE},
			busy: &relaxBusy{Union: *busyExcept(linuxRange), relaxed: *busyExcept(linuxRange, 40001)}, ok: true,
			want: func(res Result) []string {
				return []string{"inet_csk_find_open_port: strict search found nothing (28232 probed), ip_autobind_reuse relax pass: random odd offset ",
					fmt.Sprintf("odd pass, %s → 40001 (%d probed in all)", probed(res.Probes-28232), res.Probes)}
			},
		},
		{
			name: "linux-bind/IP_LOCAL_PORT_RANGE full", alloc: NameLinuxBind, cfg: Config{Range: linuxRange},
			req: Request{Fail: EADDRINUSE, LocalRange: Range{40000, 40999}}, busy: busyExcept(linuxRange),
			want: func(Result) []string {
				return []string{"inet_csk_find_open_port: IP_LOCAL_PORT_RANGE 40000-40999, random odd offset ", " of 1000 → start ",
					"; all 1000 candidates busy → EADDRINUSE"}
			},
		},
		{
			name: "linux-udp/chains", alloc: NameLinuxUDP, cfg: Config{Range: linuxRange},
			req:  Request{Fail: EAGAIN},
			busy: func() Busy { u := busyPorts(); u.sets[0].AddRange(Range{32768, 32999}); return u }(), ok: true,
			want: func(res Result) []string {
				return []string{"udp_lib_get_port: first ", " of 32768-60999, hash chains from there (16384-entry table) → ", fmt.Sprintf(" → %d, ", res.Port)}
			},
		},
		{
			name: "linux-udp/linear", alloc: NameLinuxUDP, cfg: Config{Range: linuxRange},
			req:  Request{Fail: EAGAIN, LocalRange: Range{40000, 40999}},
			busy: func() Busy { u := busyPorts(); return u }(), ok: true,
			want: func(res Result) []string {
				return []string{"udp_lib_get_port: first ", " of 40000-40999 (IP_LOCAL_PORT_RANGE), linear probe (one port of the range per hash chain) → ", fmt.Sprintf(" → %d, ", res.Port)}
			},
		},
		{
			name: "linux-udp/IP_LOCAL_PORT_RANGE full", alloc: NameLinuxUDP, cfg: Config{Range: linuxRange},
			req: Request{Fail: EAGAIN, LocalRange: Range{40000, 40999}}, busy: busyExcept(linuxRange),
			want: func(Result) []string {
				return []string{"udp_lib_get_port: first ", " of 40000-40999 (IP_LOCAL_PORT_RANGE), linear probe (one port of the range per hash chain): no free port (1000 searched) → EAGAIN"}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, e := explainer(t, tt.alloc, tt.cfg)
			assert.Equal(t, tt.alloc+": no Allocate call yet", e.Explain())
			if tt.warm != nil {
				tt.warm(a)
			}
			req := tt.req
			res := a.Allocate(&req, tt.busy)
			if tt.ok {
				require.Equal(t, OK, res.Err)
			} else if tt.warm == nil {
				require.NotEqual(t, OK, res.Err)
			}
			s := e.Explain()
			t.Log(s)
			for _, w := range tt.want(res) {
				assert.Contains(t, s, w)
			}
			if tt.check != nil {
				tt.check(t, s, res)
			}
			assert.Equal(t, s, e.Explain(), "Explain is not repeatable")
		})
	}
}

// TestExplainRandomPickGivesUp: RFC 6056 Algorithm 2 can fail while a port
// is free, and Explain says so. With one of two ports free a call fails with
// probability 1/4, so one of 64 calls fails (fixed seed).
func TestExplainRandomPickGivesUp(t *testing.T) {
	a, e := explainer(t, NameRandomPick, Config{Range: Range{100, 101}})
	busy := busyPorts(100)
	for range 64 {
		if res := a.Allocate(&Request{Fail: EAGAIN}, busy); res.Err != OK {
			s := e.Explain()
			t.Log(s)
			assert.Equal(t, "RFC 6056 §3.3.2 Alg. 2: 2 random draws all hit busy ports, though free ports remain → EAGAIN", s)
			return
		}
	}
	t.Fatal("no call failed")
}

// explainedPort matches the port of a successful explanation: "→ PORT" or,
// for a second parity pass, "found PORT".
func explainedPort(s string, port uint16) bool {
	return regexp.MustCompile(`(→|found) ` + strconv.Itoa(int(port)) + `\b`).MatchString(s)
}

// TestExplainEveryCall runs a scenario of varied requests (both address
// families, time, SO_REUSEADDR, IP_LOCAL_PORT_RANGE) over busy patterns that
// change between calls, through every allocator, and checks after each call
// that Explain names the port taken or the errno returned; and that calling
// Explain changes nothing: a twin allocator that is never asked gives the
// same results.
func TestExplainEveryCall(t *testing.T) {
	r := Range{32768, 33767}
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			cfg := Config{Range: r, AutobindReuse: true}
			cfg.Rand = newRand(3, 4)
			a, e := explainer(t, name, cfg)
			cfg.Rand = newRand(3, 4)
			twin, err := New(name, cfg)
			require.NoError(t, err)

			gen := &linuxRequests{rng: newRand(5, 6), r: r, reuseP: 0.3, localP: 0.3}
			rng := newRand(7, 8)
			var held, reuse PortSet
			busy := &relaxBusy{Union: NewUnion(&held, &reuse), relaxed: NewUnion(&held)}
			for i := range 400 {
				// Drift between nearly empty and nearly full.
				density := 0.5 + 0.5*float64((i/50)%2)
				for range 20 {
					p := int(r.Low) + rng.IntN(r.Size())
					if rng.Float64() < density {
						[]*PortSet{&held, &reuse}[rng.IntN(2)].Add(p)
					} else {
						held.Remove(p)
						reuse.Remove(p)
					}
				}
				if i%97 == 0 {
					held.AddRange(r) // an exhausted range now and then
				}
				req := gen.next([]Errno{EADDRNOTAVAIL, EADDRINUSE, EAGAIN}[i%3])
				twinReq := req
				res := a.Allocate(&req, busy)
				s := e.Explain()
				require.Equal(t, s, e.Explain(), "call %d", i)
				require.Equal(t, twin.Allocate(&twinReq, busy), res, "call %d: Explain changed the allocator's state", i)
				if res.Err == OK {
					require.True(t, explainedPort(s, res.Port), "call %d: %q does not name port %d", i, s, res.Port)
				} else {
					require.Contains(t, s, "→ "+res.Err.String(), "call %d", i)
				}
				if i%97 == 0 {
					held.RemoveRange(r)
				}
			}
		})
	}
}

// TestExplainKeepsAllocateFree checks that recording for Explain allocates
// nothing: Allocate stays at zero allocations per call for every allocator,
// on empty, busy and full views, with the request shapes that take the
// longer recording paths (second parity pass, per-socket range,
// SO_REUSEADDR halves, the relax pass), also after Explain has been called.
func TestExplainKeepsAllocateFree(t *testing.T) {
	r := linuxRange
	var held, all PortSet
	fillRandom(newRand(9, 9), newModel(), []*PortSet{&held}, int(r.Low), int(r.High), 0.99, false)
	all.AddRange(r)
	views := []Busy{
		&relaxBusy{},
		&relaxBusy{Union: NewUnion(&held), relaxed: NewUnion(&held)},
		&relaxBusy{Union: NewUnion(&all), relaxed: NewUnion(&held)},
		busyParity(r, 0, 40001),
	}
	reqs := []Request{
		connectTo("198.51.100.7:443", 3*time.Second),
		{Local: netip.MustParseAddr("2001:db8::1"), ReuseAddr: true, Fail: EADDRINUSE},
		{Remote: netip.MustParseAddrPort("203.0.113.9:443"), LocalRange: Range{40000, 40999}, Fail: EAGAIN, Now: 2 * time.Second},
	}
	for _, name := range Names() {
		a, e := explainer(t, name, Config{Range: r, Rand: rand.New(rand.NewPCG(1, 2)), AutobindReuse: true})
		for vi, v := range views {
			for i := range reqs {
				allocs := testing.AllocsPerRun(50, func() { _ = a.Allocate(&reqs[i], v) })
				assert.Zero(t, allocs, "%s allocates (view %d, request %d)", name, vi, i)
				assert.NotEmpty(t, e.Explain())
			}
		}
	}
}
