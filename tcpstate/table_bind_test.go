package tcpstate

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portsim/portsim/alloc"
)

var dstC = netip.MustParseAddrPort("203.0.113.12:443")

// bstep is one step of a bind-connect script: bind(addr, 0) + connect()
// (bind) or connect() alone (conn) toward a destination with the given
// options, or input in to socket sock (1-based, in the order of the
// successful connects).
type bstep struct {
	bind, conn netip.AddrPort
	reuse      bool // SO_REUSEADDR
	rport      bool // SO_REUSEPORT
	wantPort   int  // 0: don't care
	wantErr    alloc.Errno
	wantTook   int // the socket whose TIME_WAIT the connect() took over, 0: none

	sock   int
	in     Input
	wantSt State
}

// bsock is a socket of a bind-connect script.
type bsock struct {
	dom  int32
	port uint16
	st   State
	held Held
}

func bindA(reuse bool, port int, err alloc.Errno) bstep {
	return bstep{bind: dstA, reuse: reuse, wantPort: port, wantErr: err}
}

func bindB(reuse bool, port int, err alloc.Errno) bstep {
	return bstep{bind: dstB, reuse: reuse, wantPort: port, wantErr: err}
}

func bindC(reuse bool, port int, err alloc.Errno) bstep {
	return bstep{bind: dstC, reuse: reuse, wantPort: port, wantErr: err}
}

// toTimeWait closes socket k actively until TIME_WAIT.
func toTimeWait(k int) []bstep {
	return []bstep{
		{sock: k, in: RecvSynAck, wantSt: Established},
		{sock: k, in: AppClose, wantSt: FinWait1},
		{sock: k, in: RecvAck, wantSt: FinWait2},
		{sock: k, in: RecvFin, wantSt: TimeWait},
	}
}

// steps concatenates script pieces.
func steps(parts ...any) []bstep {
	var out []bstep
	for _, p := range parts {
		switch v := p.(type) {
		case bstep:
			out = append(out, v)
		case []bstep:
			out = append(out, v...)
		}
	}
	return out
}

// bindTable is a Linux table on 10.0.0.1 with range lo-hi, the linux-bind
// allocator for bind(0) and sysctls applied.
func bindTable(t *testing.T, rng string, sysctls map[string]string) *Table {
	t.Helper()
	p := small(t, "linux", rng)
	p.Reserved = alloc.PortSet{}
	for k, v := range sysctls {
		require.NoError(t, p.SetSysctl(k, v))
	}
	tb := newTable(t, p)
	b, err := alloc.New(alloc.NameLinuxBind, alloc.Config{Range: p.PortRange, Rand: rand.New(rand.NewPCG(1, 2)), AutobindReuse: p.AutobindReuse})
	require.NoError(t, err)
	tb.SetBindAllocator(b)
	return tb
}

// runBindScript runs script on tb, calling NoteTimeWait as the sim does and
// checking the table's bookkeeping after every step; it returns the
// sockets.
func runBindScript(t *testing.T, tb *Table, script []bstep) []bsock {
	t.Helper()
	var socks []bsock
	for i, s := range script {
		if dst := s.bind; dst.IsValid() || s.conn.IsValid() {
			c := ConnectReq{Bind: dst.IsValid(), ReuseAddr: s.reuse, ReusePort: s.rport}
			if !c.Bind {
				dst = s.conn
			}
			d, err := tb.Domain(0, dst)
			require.NoError(t, err)
			c.Local, c.Remote = tb.Domains()[d].LocalAddr, dst
			r, took := tb.Connect(d, c)
			require.Equal(t, s.wantErr, r.Err, "step %d: connect(%v)", i, dst)
			if s.wantPort != 0 {
				assert.Equal(t, s.wantPort, int(r.Port), "step %d: connect(%v)", i, dst)
			}
			require.EqualValues(t, s.wantTook-1, took, "step %d: takeover", i)
			if took >= 0 {
				old := &socks[took]
				require.Equal(t, TimeWait, old.st, "step %d: took over a socket not in TIME_WAIT", i)
				require.Equal(t, old.port, r.Port)
				require.Equal(t, old.dom, d)
				old.st = Closed
			}
			if r.Err == alloc.OK {
				socks = append(socks, bsock{d, r.Port, SynSent, c.Held()})
			}
		} else {
			k := &socks[s.sock-1]
			k.st = tb.ApplyHeld(k.dom, k.port, k.st, s.in, k.held)
			require.Equal(t, s.wantSt, k.st, "step %d: %v on socket %d", i, s.in, s.sock)
			if k.st == TimeWait {
				tb.NoteTimeWait(k.dom, k.port, int32(s.sock-1), k.held)
			}
		}
		checkHolders(t, tb, socks, i)
	}
	return socks
}

// checkHolders recomputes from the live sockets what the table keeps per
// port and per domain, and compares.
func checkHolders(t *testing.T, tb *Table, socks []bsock, step int) {
	t.Helper()
	type kinds struct{ refs, strict, rport, bound uint32 }
	perPool := make([]map[uint16]kinds, len(tb.pools))
	for i := range perPool {
		perPool[i] = map[uint16]kinds{}
	}
	own := make([]map[uint16]bool, len(tb.domains))
	tw := make([]map[uint16]int32, len(tb.domains))
	for i := range own {
		own[i], tw[i] = map[uint16]bool{}, map[uint16]int32{}
	}
	var count [NumStates]int
	for id, s := range socks {
		if s.st == Closed {
			continue
		}
		count[s.st]++
		dom := tb.domains[s.dom]
		require.False(t, own[s.dom][s.port], "step %d: two live sockets on one 4-tuple", step)
		own[s.dom][s.port] = true
		if s.st == TimeWait {
			tw[s.dom][s.port] = int32(id)
		}
		k := perPool[dom.pool][s.port]
		k.refs++
		if s.held&HeldReuseAddr == 0 {
			k.strict++
		}
		if s.held&HeldReusePort != 0 {
			k.rport++
		}
		if s.held&HeldBound != 0 {
			k.bound++
		}
		perPool[dom.pool][s.port] = k
	}
	require.Equal(t, count, tb.Count, "step %d: counts", step)
	lo, hi := int(tb.prof.PortRange.Low), int(tb.prof.PortRange.High)
	for pi, pl := range tb.pools {
		require.Equal(t, 0, pl.used.CountFree(0, lo-1)+pl.used.CountFree(hi+1, alloc.NumPorts-1)-(alloc.NumPorts-(hi-lo+1)), "step %d: a port outside the range is held", step)
		for p := lo; p <= hi; p++ {
			k := perPool[pi][uint16(p)]
			require.Equal(t, k.refs, pl.refs[p], "step %d: refs of %d", step, p)
			require.Equal(t, k.refs > 0, pl.used.Has(p), "step %d: used %d", step, p)
			require.Equal(t, k.bound > 0, pl.bound.Has(p), "step %d: bound %d", step, p)
			if pl.rx == nil {
				continue
			}
			require.Equal(t, k.strict, pl.rx.strictRefs[p], "step %d: strict refs of %d", step, p)
			require.Equal(t, k.strict > 0, pl.rx.strict.Has(p), "step %d: strict %d", step, p)
			require.Equal(t, k.rport, pl.rx.rportRefs[p], "step %d: SO_REUSEPORT refs of %d", step, p)
			require.Equal(t, k.rport > 0, pl.rx.rport.Has(p), "step %d: SO_REUSEPORT %d", step, p)
			require.Equal(t, k.bound, pl.rx.boundRefs[p], "step %d: bound refs of %d", step, p)
		}
	}
	for di, dom := range tb.domains {
		for p := lo; p <= hi; p++ {
			_, marked := dom.reusable[uint16(p)]
			require.Equal(t, own[di][uint16(p)], dom.own.Has(p) || marked, "step %d: own %d", step, p)
		}
		if !tb.twTrack {
			assert.Empty(t, dom.tw)
			continue
		}
		got := map[uint16]int32{}
		for p, s := range dom.tw {
			got[p] = s.id
		}
		require.Equal(t, tw[di], got, "step %d: TIME_WAIT sockets of domain %d", step, di)
	}
}

// bind(addr, 0) + connect() on Linux 6.18 with and without SO_REUSEADDR and
// net.ipv4.ip_autobind_reuse (inet_csk_find_open_port's relax pass;
// inet_bind_conflict; __inet_check_established and tcp_twsk_unique with
// twp == NULL). The range is 40000-40001: inet_csk_find_open_port tries
// the odd port 40001 first (offset = rand_below(2) | 1), then 40000, in the
// strict and in the relax pass alike.
func TestTableBindAutobindReuse(t *testing.T) {
	abr := map[string]string{"net.ipv4.ip_autobind_reuse": "1"}
	for _, tc := range []struct {
		name    string
		sysctls map[string]string
		script  []bstep
		check   func(t *testing.T, tb *Table)
	}{
		{"no ip_autobind_reuse: SO_REUSEADDR does not let bind(0) share", nil, steps(
			bindA(true, 40001, alloc.OK), bindB(true, 40000, alloc.OK), bindC(true, 0, alloc.EADDRINUSE),
		), nil},
		{"ip_autobind_reuse without SO_REUSEADDR: the relax pass finds nothing either", abr, steps(
			bindA(false, 40001, alloc.OK), bindB(false, 40000, alloc.OK), bindC(false, 0, alloc.EADDRINUSE),
		), func(t *testing.T, tb *Table) {
			assert.Contains(t, tb.Explain(), "ip_autobind_reuse relax pass")
		}},
		{"ip_autobind_reuse: holders without SO_REUSEADDR are never shared", abr, steps(
			bindA(false, 40001, alloc.OK), bindB(false, 40000, alloc.OK), bindC(true, 0, alloc.EADDRINUSE),
		), nil},
		{"ip_autobind_reuse with SO_REUSEADDR: a port is shared across destinations", abr, steps(
			bindA(true, 40001, alloc.OK), bindB(true, 40000, alloc.OK),
			bindC(true, 40001, alloc.OK), // relax pass: 40001 is held only by SO_REUSEADDR sockets
		), func(t *testing.T, tb *Table) {
			assert.Equal(t, 2, tb.PortsInUse)
			assert.Equal(t, 3, tb.Count[SynSent])
			assert.Contains(t, tb.Explain(), "ip_autobind_reuse relax pass (inet_csk_find_open_port)")
		}},
		{"the relax pass skips a port a socket without SO_REUSEADDR holds", abr, steps(
			bindA(false, 40001, alloc.OK), bindB(true, 40000, alloc.OK),
			bindC(true, 40000, alloc.OK),
		), nil},
		{"SO_REUSEPORT on both keeps the relax pass off the port (reuseport_ok = false)", abr, steps(
			bstep{bind: dstA, reuse: true, rport: true, wantPort: 40001},
			bstep{bind: dstB, reuse: true, rport: true, wantPort: 40000},
			bstep{bind: dstC, reuse: true, rport: true, wantErr: alloc.EADDRINUSE},
			bindC(true, 40001, alloc.OK), // without SO_REUSEPORT it shares
		), nil},
		{"the relax pass ignores the 4-tuple: connect() then fails with EADDRNOTAVAIL on an ESTABLISHED one", abr, steps(
			bindA(true, 40001, alloc.OK), bindB(true, 40000, alloc.OK),
			bstep{sock: 1, in: RecvSynAck, wantSt: Established},
			// 40000 would be unique toward A, but the relax pass takes
			// 40001 first, and __inet_check_established finds socket 1.
			bindA(true, 40001, alloc.EADDRNOTAVAIL),
		), func(t *testing.T, tb *Table) {
			assert.Equal(t, 2, tb.PortsInUse, "the failed socket holds nothing")
			assert.Equal(t, 1, tb.Count[Established])
			assert.Equal(t, 1, tb.Count[SynSent])
			assert.Zero(t, tb.TwRecycled)
			assert.Contains(t, tb.Explain(), "not in TIME_WAIT (__inet_check_established) → EADDRNOTAVAIL")
		}},
		{"a bound socket takes over its 4-tuple's TIME_WAIT at once, tcp_tw_reuse=0", map[string]string{
			"net.ipv4.ip_autobind_reuse": "1", "net.ipv4.tcp_tw_reuse": "0"}, steps(
			bindA(true, 40001, alloc.OK), bindB(true, 40000, alloc.OK),
			toTimeWait(1),
			bstep{bind: dstA, reuse: true, wantPort: 40001, wantTook: 1},
			toTimeWait(3),
			bstep{bind: dstA, reuse: true, wantPort: 40001, wantTook: 3},
			bstep{sock: 4, in: AppAbort, wantSt: Closed},
			bindA(true, 40001, alloc.OK), // the 4-tuple is free: strict pass
		), func(t *testing.T, tb *Table) {
			assert.Equal(t, uint64(2), tb.TwRecycled)
			assert.Zero(t, tb.Count[TimeWait])
			assert.Equal(t, 2, tb.PortsInUse)
		}},
		{"tcp_timestamps=0: no takeover, EADDRNOTAVAIL", map[string]string{
			"net.ipv4.ip_autobind_reuse": "1", "net.ipv4.tcp_timestamps": "0"}, steps(
			bindA(true, 40001, alloc.OK), bindB(true, 40000, alloc.OK),
			toTimeWait(1),
			bindA(true, 40001, alloc.EADDRNOTAVAIL),
			bindC(true, 40001, alloc.OK), // toward C the 4-tuple is free
		), func(t *testing.T, tb *Table) {
			assert.False(t, tb.TracksTimeWait())
			assert.Zero(t, tb.TwRecycled)
			assert.Equal(t, 1, tb.Count[TimeWait])
			tb.Connect(0, ConnectReq{Local: tb.Domains()[0].LocalAddr, Remote: dstA, Bind: true, ReuseAddr: true})
			assert.Contains(t, tb.Explain(), "tcp_timestamps off")
		}},
		{"a bound socket takes over a connect() socket's TIME_WAIT, and connect() then skips the bound port", abr, steps(
			bstep{conn: dstA, reuse: true, wantPort: 40000}, // sequential connect() allocator
			bindB(false, 40001, alloc.OK),
			toTimeWait(1),
			// 40001 has a holder without SO_REUSEADDR; 40000 only socket
			// 1's TIME_WAIT, which the bound socket takes over.
			bstep{bind: dstA, reuse: true, wantPort: 40000, wantTook: 1},
			bstep{conn: dstC, reuse: true, wantErr: alloc.EADDRNOTAVAIL}, // both ports bound now
			bstep{sock: 3, in: AppAbort, wantSt: Closed},
			bstep{conn: dstC, reuse: true, wantPort: 40000},
		), func(t *testing.T, tb *Table) {
			assert.Equal(t, uint64(1), tb.TwRecycled)
		}},
		{"connect() skips a port while any bound socket sharing it lives", abr, steps(
			bindA(true, 40001, alloc.OK), bindB(true, 40000, alloc.OK),
			bindC(true, 40001, alloc.OK),
			bstep{sock: 1, in: AppAbort, wantSt: Closed},
			bstep{sock: 2, in: AppAbort, wantSt: Closed},
			bstep{conn: dstA, wantPort: 40000}, // 40001 is still bound by socket 3
			bstep{sock: 3, in: AppAbort, wantSt: Closed},
			bstep{conn: dstA, wantPort: 40001},
		), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tb := bindTable(t, "40000 40001", tc.sysctls)
			runBindScript(t, tb, tc.script)
			if tc.check != nil {
				tc.check(t, tb)
			}
		})
	}
}

// tcp_tw_reuse (MarkReusable) and the bound takeover meet on one 4-tuple:
// a TIME_WAIT already marked reusable is taken over by the relaxed bind's
// connect() just the same, and its mark goes.
func TestTableBindTakesOverReusable(t *testing.T) {
	tb := bindTable(t, "40000 40001", map[string]string{"net.ipv4.ip_autobind_reuse": "1", "net.ipv4.tcp_tw_reuse": "1"})
	socks := runBindScript(t, tb, steps(bindA(true, 40001, alloc.OK), bindB(true, 40000, alloc.OK), toTimeWait(1)))
	require.True(t, tb.ReuseApplies(socks[0].dom))
	tb.MarkReusable(socks[0].dom, socks[0].port, 0)
	runBindScript(t, tb, nil)
	r, took := tb.Connect(socks[0].dom, ConnectReq{Local: tb.Domains()[0].LocalAddr, Remote: dstA, Bind: true, ReuseAddr: true})
	require.Equal(t, alloc.OK, r.Err)
	assert.Equal(t, uint16(40001), r.Port)
	assert.EqualValues(t, 0, took)
	assert.Empty(t, tb.Domains()[socks[0].dom].reusable)
	assert.True(t, tb.Domains()[socks[0].dom].own.Has(40001))
	assert.Contains(t, tb.Explain(), "bound socket takes over TIME_WAIT 4-tuple without tcp_tw_reuse (tcp_twsk_unique with twp == NULL)")
}

// Random bind-connect and connect() churn with ip_autobind_reuse, mixed
// options, TIME_WAIT and takeovers: the per-port holder counts always
// match the live sockets.
func TestTableBindRelaxRandom(t *testing.T) {
	tb := bindTable(t, "40000 40007", map[string]string{"net.ipv4.ip_autobind_reuse": "1"})
	rng := rand.New(rand.NewPCG(3, 4))
	dsts := []netip.AddrPort{dstA, dstB, dstC}
	var socks []bsock
	took, shared, refused := 0, 0, 0
	for i := range 3000 {
		live := 0
		for _, s := range socks {
			if s.st != Closed {
				live++
			}
		}
		if live == 0 || rng.IntN(3) == 0 {
			dst := dsts[rng.IntN(len(dsts))]
			d, err := tb.Domain(0, dst)
			require.NoError(t, err)
			c := ConnectReq{Local: tb.Domains()[d].LocalAddr, Remote: dst,
				Bind: rng.IntN(4) != 0, ReuseAddr: rng.IntN(5) != 0, ReusePort: rng.IntN(6) == 0}
			before := tb.PortsInUse
			r, k := tb.Connect(d, c)
			if k >= 0 {
				require.Equal(t, TimeWait, socks[k].st)
				socks[k].st = Closed
				took++
			}
			switch {
			case r.Err == alloc.OK:
				if k < 0 && tb.PortsInUse == before {
					shared++
				}
				socks = append(socks, bsock{d, r.Port, SynSent, c.Held()})
			case r.Err == alloc.EADDRNOTAVAIL && c.Bind:
				refused++
			}
		} else {
			j := rng.IntN(len(socks))
			for socks[j].st == Closed {
				j = (j + 1) % len(socks)
			}
			s := &socks[j]
			var in Input
			switch s.st {
			case SynSent:
				in = RecvSynAck
			case Established:
				in = []Input{AppClose, AppAbort, AppClose}[rng.IntN(3)]
			case FinWait1, FinWait2:
				in = RecvAck
				if s.st == FinWait2 {
					in = RecvFin
				}
			case TimeWait:
				in = TimeWaitTimeout
			}
			s.st = tb.ApplyHeld(s.dom, s.port, s.st, in, s.held)
			if s.st == TimeWait {
				tb.NoteTimeWait(s.dom, s.port, int32(j), s.held)
			}
		}
		checkHolders(t, tb, socks, i)
	}
	assert.Positive(t, took, "takeovers")
	assert.Positive(t, shared, "relaxed shares")
	assert.Positive(t, refused, "EADDRNOTAVAIL after a relaxed bind")
}
