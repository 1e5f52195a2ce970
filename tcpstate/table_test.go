package tcpstate

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portsim/portsim/alloc"
)

// small returns a preset with the range narrowed to lo..hi.
func small(t *testing.T, os string, rng string) *Profile {
	p, err := Preset(os)
	require.NoError(t, err)
	r, err := alloc.ParseRange(rng)
	require.NoError(t, err)
	p.SetPortRange(r)
	return &p
}

func newTable(t *testing.T, p *Profile) *Table {
	a, err := alloc.New("sequential", alloc.Config{Range: p.PortRange})
	require.NoError(t, err)
	tb, err := NewTable(p, []netip.Addr{netip.MustParseAddr("10.0.0.1")}, a)
	require.NoError(t, err)
	return tb
}

var (
	dstA = netip.MustParseAddrPort("203.0.113.10:443")
	dstB = netip.MustParseAddrPort("203.0.113.11:443")
)

// action is one step of a socket-table script.
type action struct {
	connect  netip.AddrPort // connect() toward this destination, or
	sock     int            // apply `in` to socket number sock (1-based order of successful connects)
	in       Input
	wantPort int         // connect: expected port (0: don't care)
	wantErr  alloc.Errno // connect: expected errno
	wantSt   State       // apply: expected state
}

type sock struct {
	dom  int32
	port uint16
	st   State
}

func runScript(t *testing.T, tb *Table, script []action) {
	t.Helper()
	var socks []sock
	for i, a := range script {
		if a.connect.IsValid() {
			d, err := tb.Domain(0, a.connect)
			require.NoError(t, err)
			r := connect(tb, d)
			require.Equal(t, a.wantErr, r.Err, "step %d: connect(%v)", i, a.connect)
			if r.Err == alloc.OK {
				if a.wantPort != 0 {
					assert.Equal(t, a.wantPort, int(r.Port), "step %d: connect(%v)", i, a.connect)
				}
				socks = append(socks, sock{d, r.Port, SynSent})
			}
			continue
		}
		s := &socks[a.sock-1]
		s.st = tb.Apply(s.dom, s.port, s.st, a.in)
		assert.Equal(t, a.wantSt, s.st, "step %d: %v on socket %d", i, a.in, a.sock)
	}
}

// Linux: connect() reuses a port toward another destination as long as the
// 4-tuple is unique, TIME_WAIT included (__inet_hash_connect,
// __inet_check_established); macOS and ns-3 never share a port.
func TestTableSharing(t *testing.T) {
	connectA := func(port int, err alloc.Errno) action { return action{connect: dstA, wantPort: port, wantErr: err} }
	connectB := func(port int, err alloc.Errno) action { return action{connect: dstB, wantPort: port, wantErr: err} }
	for _, tc := range []struct {
		name   string
		os     string
		script []action
	}{
		{"linux: two ports toward A, then the same two toward B", "linux", []action{
			connectA(40000, alloc.OK), connectA(40001, alloc.OK), connectA(0, alloc.EADDRNOTAVAIL),
			connectB(40000, alloc.OK), connectB(40001, alloc.OK), connectB(0, alloc.EADDRNOTAVAIL),
		}},
		{"linux: TIME_WAIT holds the 4-tuple until it expires", "linux", []action{
			connectA(40000, alloc.OK), connectA(40001, alloc.OK),
			{sock: 1, in: RecvSynAck, wantSt: Established},
			{sock: 1, in: AppClose, wantSt: FinWait1},
			{sock: 1, in: RecvAck, wantSt: FinWait2},
			{sock: 1, in: RecvFin, wantSt: TimeWait},
			connectA(0, alloc.EADDRNOTAVAIL),
			connectB(40000, alloc.OK), // same port, other 4-tuple
			{sock: 1, in: TimeWaitTimeout, wantSt: Closed},
			connectA(40000, alloc.OK),
		}},
		{"linux: passive close frees the port after LAST_ACK", "linux", []action{
			connectA(40000, alloc.OK), connectA(40001, alloc.OK),
			{sock: 2, in: RecvSynAck, wantSt: Established},
			{sock: 2, in: RecvFin, wantSt: CloseWait},
			{sock: 2, in: AppClose, wantSt: LastAck},
			connectA(0, alloc.EADDRNOTAVAIL),
			{sock: 2, in: RecvAck, wantSt: Closed},
			connectA(40001, alloc.OK),
		}},
		{"linux: RST frees the port at once", "linux", []action{
			connectA(40000, alloc.OK), connectA(40001, alloc.OK),
			{sock: 1, in: RecvSynAck, wantSt: Established},
			{sock: 1, in: AppAbort, wantSt: Closed},
			connectA(40000, alloc.OK),
		}},
		{"macos: a port in use toward A is not used toward B", "macos", []action{
			connectA(40000, alloc.OK), connectB(40001, alloc.OK), connectB(0, alloc.EADDRNOTAVAIL),
			connectA(0, alloc.EADDRNOTAVAIL),
		}},
		{"ns3: TIME_WAIT toward A blocks the port for B too", "ns3", []action{
			connectA(40000, alloc.OK), connectA(40001, alloc.OK),
			{sock: 1, in: RecvSynAck, wantSt: Established},
			{sock: 1, in: AppClose, wantSt: FinWait1},
			{sock: 1, in: RecvAck, wantSt: FinWait2},
			{sock: 1, in: RecvFin, wantSt: TimeWait},
			connectB(0, alloc.EADDRNOTAVAIL),
			{sock: 1, in: TimeWaitTimeout, wantSt: Closed},
			connectB(40000, alloc.OK),
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := small(t, tc.os, "40000 40001")
			p.FirstPort = 0
			runScript(t, newTable(t, p), tc.script)
		})
	}
}

// ip_local_reserved_ports are skipped by connect() autobind (ip-sysctl.rst).
func TestTableReserved(t *testing.T) {
	p := small(t, "linux", "40000 40003")
	require.NoError(t, p.SetSysctl("net.ipv4.ip_local_reserved_ports", "40001-40002"))
	assert.Equal(t, 2, p.UsablePorts())
	tb := newTable(t, p)
	runScript(t, tb, []action{
		{connect: dstA, wantPort: 40000}, {connect: dstA, wantPort: 40003},
		{connect: dstA, wantErr: alloc.EADDRNOTAVAIL},
	})
}

// Past tcp_max_tw_buckets TIME_WAIT sockets, a closing socket goes straight
// to CLOSED and frees its port (inet_twsk_alloc returns NULL).
func TestTableMaxTwBuckets(t *testing.T) {
	p := small(t, "linux", "40000 40009")
	require.NoError(t, p.SetSysctl("net.ipv4.tcp_max_tw_buckets", "1"))
	tb := newTable(t, p)
	close := func(s int, final State) []action {
		return []action{
			{sock: s, in: RecvSynAck, wantSt: Established},
			{sock: s, in: AppClose, wantSt: FinWait1},
			{sock: s, in: RecvAck, wantSt: FinWait2},
			{sock: s, in: RecvFin, wantSt: final},
		}
	}
	script := []action{{connect: dstA}, {connect: dstA}}
	script = append(script, close(1, TimeWait)...)
	script = append(script, close(2, Closed)...)
	runScript(t, tb, script)
	assert.Equal(t, uint64(1), tb.TwOverflows)
	assert.Equal(t, 1, tb.Count[TimeWait])
	assert.Equal(t, 1, tb.PortsInUse)
}

// Counters stay consistent under a random mix of operations: per-state
// counts add up to the sockets holding ports, and PortsInUse counts
// distinct ports.
func TestTableCountersRandom(t *testing.T) {
	p := small(t, "linux", "40000 40063")
	a, err := alloc.New("random-start", alloc.Config{Range: p.PortRange, Rand: rand.New(rand.NewPCG(3, 4))})
	require.NoError(t, err)
	tb, err := NewTable(p, []netip.Addr{netip.MustParseAddr("10.0.0.1")}, a)
	require.NoError(t, err)
	dsts := []netip.AddrPort{dstA, dstB, netip.MustParseAddrPort("198.51.100.1:80")}
	rng := rand.New(rand.NewPCG(1, 2))
	churn(t, tb, rng, 20000, func() int32 {
		d, err := tb.Domain(0, dsts[rng.IntN(len(dsts))])
		require.NoError(t, err)
		return d
	}, func(socks []sock) {
		// Check the invariants against a recount.
		ports := map[uint16]bool{}
		byState := [NumStates]int{}
		for _, s := range socks {
			ports[s.port] = true
			byState[s.st]++
		}
		require.Equal(t, len(ports), tb.PortsInUse)
		require.Equal(t, byState, tb.Count)
		inUse := 0
		for _, d := range tb.Domains() {
			inUse += d.InUse
		}
		require.Equal(t, len(socks), inUse)
	})
}

// churn drives tb through n random steps: a third of the time (always when
// no socket is live) a connect() in the domain pick returns, otherwise one
// input valid in its state to a random live socket (client-side RFC 9293
// transitions, close variants and simultaneous close included). After every
// step check sees the live sockets.
func churn(t *testing.T, tb *Table, rng *rand.Rand, n int, pick func() int32, check func([]sock)) {
	t.Helper()
	next := map[State][]Input{
		SynSent: {RecvSynAck}, Established: {AppClose, RecvFin, AppAbort}, FinWait1: {RecvAck, RecvFin},
		FinWait2: {RecvFin}, Closing: {RecvAck}, TimeWait: {TimeWaitTimeout}, CloseWait: {AppClose}, LastAck: {RecvAck},
	}
	var socks []sock
	for range n {
		if len(socks) == 0 || rng.IntN(3) == 0 {
			d := pick()
			if r := connect(tb, d); r.Err == alloc.OK {
				socks = append(socks, sock{d, r.Port, SynSent})
			}
		} else {
			i := rng.IntN(len(socks))
			s := &socks[i]
			ins := next[s.st]
			s.st = tb.Apply(s.dom, s.port, s.st, ins[rng.IntN(len(ins))])
			if s.st == Closed {
				socks[i] = socks[len(socks)-1]
				socks = socks[:len(socks)-1]
			}
		}
		check(socks)
	}
}

func TestTableErrors(t *testing.T) {
	p, err := Preset("linux")
	require.NoError(t, err)
	_, err = NewTable(&p, nil, nil)
	assert.Error(t, err)
	tb := newTable(t, &p)
	_, err = tb.Domain(1, dstA)
	assert.Error(t, err)
	assert.Panics(t, func() { tb.Apply(0, 1, Closed, AppClose) })
}

// On a port-exclusive host the implicit bind runs before the source address
// is chosen, so a port held on one local address is taken on every address
// of the family (XNU tcp_connect -> in_pcbbind with INADDR_ANY; ns-3
// LookupPortLocal; Windows' one wildcard pool). IPv6 has its own pool. On
// Linux the 4-tuple differs, so each address has the whole range.
func TestTableAddressesShareExclusivePool(t *testing.T) {
	a1, a2 := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	a6 := netip.MustParseAddr("2001:db8::1")
	dst6 := netip.MustParseAddrPort("[2001:db8::99]:443")
	for _, os := range []string{"macos", "windows", "ns3"} {
		t.Run(os, func(t *testing.T) {
			p := small(t, os, "40000 40001")
			a, err := alloc.New(p.Allocator, alloc.Config{Range: p.PortRange, First: p.FirstPort})
			require.NoError(t, err)
			tb, err := NewTable(p, []netip.Addr{a1, a2, a6}, a)
			require.NoError(t, err)
			d1, err := tb.Domain(0, dstA)
			require.NoError(t, err)
			d2, err := tb.Domain(1, dstB)
			require.NoError(t, err)
			assert.Equal(t, d1, d2, "both IPv4 addresses compete for the same ports")
			assert.Equal(t, "0.0.0.0", tb.Domains()[d1].LocalAddr.String())
			assert.Equal(t, alloc.OK, connect(tb, d1).Err)
			assert.Equal(t, alloc.OK, connect(tb, d2).Err)
			assert.Equal(t, alloc.EADDRNOTAVAIL, connect(tb, d2).Err, "10.0.0.2 must not get a port 10.0.0.1 holds")
			assert.Equal(t, 2, tb.PortsInUse)
			d6, err := tb.Domain(2, dst6)
			require.NoError(t, err)
			assert.NotEqual(t, d1, d6)
			assert.Equal(t, a6, tb.Domains()[d6].LocalAddr, "the only IPv6 address names its pool")
			assert.Equal(t, alloc.OK, connect(tb, d6).Err)
			assert.Equal(t, 3, tb.PortsInUse)
		})
	}
	p := small(t, "linux", "40000 40001")
	tb, err := NewTable(p, []netip.Addr{a1, a2}, mustAlloc(t, p))
	require.NoError(t, err)
	d1, err := tb.Domain(0, dstA)
	require.NoError(t, err)
	d2, err := tb.Domain(1, dstA)
	require.NoError(t, err)
	assert.NotEqual(t, d1, d2)
	for range 2 {
		assert.Equal(t, alloc.OK, connect(tb, d1).Err)
		assert.Equal(t, alloc.OK, connect(tb, d2).Err)
	}
	assert.Equal(t, 4, tb.PortsInUse, "(address, port) pairs")
	assert.Equal(t, a2, tb.Domains()[d2].LocalAddr)

	_, err = NewTable(p, []netip.Addr{{}}, mustAlloc(t, p))
	assert.ErrorContains(t, err, "invalid local address")
}

func mustAlloc(t *testing.T, p *Profile) alloc.Allocator {
	a, err := alloc.New(alloc.NameSequential, alloc.Config{Range: p.PortRange})
	require.NoError(t, err)
	return a
}

// activeClose drives a fresh socket from SYN_SENT through an active close
// and returns the state RecvFin leaves it in.
func activeClose(tb *Table, d int32, port uint16) State {
	s := tb.Apply(d, port, SynSent, RecvSynAck)
	s = tb.Apply(d, port, s, AppClose)
	s = tb.Apply(d, port, s, RecvAck)
	return tb.Apply(d, port, s, RecvFin)
}

// tcp_max_tw_buckets = 0 means no socket ever enters TIME_WAIT
// (inet_twsk_alloc: count >= 0 always), and the port is free at once.
func TestTableMaxTwBucketsZero(t *testing.T) {
	p := small(t, "linux", "40000 40000")
	require.NoError(t, p.SetSysctl("net.ipv4.tcp_max_tw_buckets", "0"))
	tb := newTable(t, p)
	d, err := tb.Domain(0, dstA)
	require.NoError(t, err)
	for i := range 3 {
		r := connect(tb, d)
		require.Equal(t, alloc.OK, r.Err, "connect %d", i)
		assert.Equal(t, Closed, activeClose(tb, d, r.Port))
	}
	assert.Equal(t, uint64(3), tb.TwOverflows)
	assert.True(t, tb.SkipsTimeWait(d))
	assert.Zero(t, tb.PortsInUse)
	assert.Equal(t, [NumStates]int{}, tb.Count)
}

// FreeBSD 14+ (nolocaltimewait=1) skips TIME_WAIT toward a loopback peer or
// the host's own address, not toward a remote one; it is not an overflow.
func TestTableNoLocalTimeWait(t *testing.T) {
	p := small(t, "freebsd", "40000 40009")
	tb, err := NewTable(p, []netip.Addr{netip.MustParseAddr("10.0.0.1")}, mustAlloc(t, p))
	require.NoError(t, err)
	for _, tc := range []struct {
		dst  string
		want State
	}{
		{"127.0.0.1:8080", Closed},
		{"10.0.0.1:8080", Closed},
		{"203.0.113.10:443", TimeWait},
	} {
		d, err := tb.Domain(0, netip.MustParseAddrPort(tc.dst))
		require.NoError(t, err)
		r := connect(tb, d)
		require.Equal(t, alloc.OK, r.Err)
		assert.Equal(t, tc.want, activeClose(tb, d, r.Port), tc.dst)
		assert.Equal(t, tc.want == Closed, tb.SkipsTimeWait(d), tc.dst)
	}
	assert.Zero(t, tb.TwOverflows)
	assert.Equal(t, 1, tb.Count[TimeWait])
	assert.Equal(t, 1, tb.PortsInUse)

	// Linux keeps TIME_WAIT toward loopback (tcp_tw_reuse decides reuse).
	p = small(t, "linux", "40000 40009")
	tb = newTable(t, p)
	d, err := tb.Domain(0, netip.MustParseAddrPort("127.0.0.1:8080"))
	require.NoError(t, err)
	r := connect(tb, d)
	assert.Equal(t, TimeWait, activeClose(tb, d, r.Port))
	assert.False(t, tb.SkipsTimeWait(d))
}

// Connect is the only way into SYN_SENT: Apply on a CLOSED socket would
// count a socket that holds no port.
func TestTableApplyClosedPanics(t *testing.T) {
	p, err := Preset("linux")
	require.NoError(t, err)
	tb := newTable(t, &p)
	d, err := tb.Domain(0, dstA)
	require.NoError(t, err)
	assert.Panics(t, func() { tb.Apply(d, 40000, Closed, AppConnect) })
	assert.Equal(t, [NumStates]int{}, tb.Count, "a refused Apply changes nothing")
}

// Counters stay consistent on a port-exclusive host with several addresses
// of two families: PortsInUse counts distinct (pool, port) pairs.
func TestTableCountersRandomExclusive(t *testing.T) {
	p := small(t, "macos", "40000 40063")
	a, err := alloc.New(p.Allocator, alloc.Config{Range: p.PortRange})
	require.NoError(t, err)
	locals := []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("2001:db8::1")}
	tb, err := NewTable(p, locals, a)
	require.NoError(t, err)
	dsts := []netip.AddrPort{dstA, dstB, netip.MustParseAddrPort("[2001:db8::99]:443")}
	rng := rand.New(rand.NewPCG(5, 6))
	churn(t, tb, rng, 20000, func() int32 {
		l := rng.IntN(len(locals))
		dst := dsts[rng.IntN(2)]
		if l == 2 {
			dst = dsts[2]
		}
		d, err := tb.Domain(l, dst)
		require.NoError(t, err)
		return d
	}, func(socks []sock) {
		type famPort struct {
			v6   bool
			port uint16
		}
		ports := map[famPort]bool{}
		byState := [NumStates]int{}
		for _, s := range socks {
			k := famPort{tb.Domains()[s.dom].LocalAddr.Is6(), s.port}
			require.False(t, ports[k], "port %d held twice in one family", s.port)
			ports[k] = true
			byState[s.st]++
		}
		require.Equal(t, len(ports), tb.PortsInUse)
		require.Equal(t, byState, tb.Count)
	})
	assert.Len(t, tb.Domains(), 2)
}

// connect calls Connect with the domain's own addresses at time 0.
func connect(tb *Table, d int32) alloc.Result {
	dom := tb.Domains()[d]
	r, took := tb.Connect(d, ConnectReq{Local: dom.LocalAddr, Remote: dom.Remote})
	if took >= 0 {
		panic("connect: unexpected TIME_WAIT takeover")
	}
	return r
}

// TIME_WAIT reuse (tcp_twsk_unique, os-semantics.md §4.5): once the caller
// marks a TIME_WAIT socket reusable, connect() toward the same destination
// may take its 4-tuple over; toward another destination the port was
// usable anyway.
func TestTableTimeWaitTakeover(t *testing.T) {
	p := small(t, "linux", "40000 40001")
	require.NoError(t, p.SetSysctl("net.ipv4.tcp_tw_reuse", "1"))
	tb := newTable(t, p)
	d, err := tb.Domain(0, dstA)
	require.NoError(t, err)
	assert.True(t, tb.ReuseApplies(d))
	local := tb.Domains()[d].LocalAddr
	r1, took := tb.Connect(d, ConnectReq{Local: local, Remote: dstA, Now: 0})
	require.Equal(t, alloc.OK, r1.Err)
	require.EqualValues(t, -1, took)
	r2, _ := tb.Connect(d, ConnectReq{Local: local, Remote: dstA, Now: 0})
	require.Equal(t, alloc.OK, r2.Err)
	st := tb.Apply(d, r1.Port, SynSent, RecvSynAck)
	st = tb.Apply(d, r1.Port, st, AppClose)
	st = tb.Apply(d, r1.Port, st, RecvAck)
	st = tb.Apply(d, r1.Port, st, RecvFin)
	require.Equal(t, TimeWait, st)
	// Not yet reusable: the range is full.
	r3, _ := tb.Connect(d, ConnectReq{Local: local, Remote: dstA, Now: time.Second})
	assert.Equal(t, alloc.EADDRNOTAVAIL, r3.Err)
	tb.MarkReusable(d, r1.Port, 7)
	r4, took := tb.Connect(d, ConnectReq{Local: local, Remote: dstA, Now: 2 * time.Second})
	require.Equal(t, alloc.OK, r4.Err)
	assert.Equal(t, r1.Port, r4.Port)
	assert.EqualValues(t, 7, took)
	assert.Equal(t, 0, tb.Count[TimeWait])
	assert.Equal(t, 2, tb.Count[SynSent])
	assert.Equal(t, 2, tb.PortsInUse)
	assert.Equal(t, uint64(1), tb.TwRecycled)
	// Loopback-only reuse does not apply to 203.0.113.10.
	p2 := small(t, "linux", "40000 40001")
	tb2 := newTable(t, p2)
	d2, err := tb2.Domain(0, dstA)
	require.NoError(t, err)
	assert.False(t, tb2.ReuseApplies(d2), "tcp_tw_reuse=2 is loopback only")
	d3, err := tb2.Domain(0, netip.MustParseAddrPort("127.0.0.1:80"))
	require.NoError(t, err)
	assert.True(t, tb2.ReuseApplies(d3))
	require.NoError(t, p2.SetSysctl("net.ipv4.tcp_timestamps", "0"))
	assert.False(t, tb2.ReuseApplies(d3), "no timestamps, no reuse")
}

// bind(addr, 0) then connect(): the port is exclusive on the address
// (inet_csk_find_open_port, relax=false), bind fails with EADDRINUSE, and on
// Linux connect() autobind skips a port a bind() touched while it lives
// (__inet_hash_connect skips buckets with fastreuse >= 0, os-semantics.md
// §2.3, §10 item 1); FreeBSD's in_pcb_lport_dest does not.
func TestTableBindConnect(t *testing.T) {
	for _, tc := range []struct {
		os            string
		autobindSkips bool
	}{
		{"linux", true},
		{"freebsd", false},
	} {
		t.Run(tc.os, func(t *testing.T) {
			p := small(t, tc.os, "40000 40003")
			p.Reserved = alloc.PortSet{}
			tb := newTable(t, p)
			b, err := alloc.New("sequential", alloc.Config{Range: p.PortRange})
			require.NoError(t, err)
			tb.SetBindAllocator(b)
			dA, err := tb.Domain(0, dstA)
			require.NoError(t, err)
			dB, err := tb.Domain(0, dstB)
			require.NoError(t, err)
			local := tb.Domains()[dA].LocalAddr
			bindTo := func(d int32, remote netip.AddrPort) alloc.Result {
				r, took := tb.Connect(d, ConnectReq{Local: local, Remote: remote, Bind: true})
				require.EqualValues(t, -1, took)
				return r
			}
			r1 := bindTo(dA, dstA)
			require.Equal(t, alloc.OK, r1.Err)
			assert.Equal(t, uint16(40000), r1.Port)
			// connect() toward B: Linux skips the bound 40000.
			r2 := connect(tb, dB)
			require.Equal(t, alloc.OK, r2.Err)
			if tc.autobindSkips {
				assert.Equal(t, uint16(40001), r2.Port)
			} else {
				assert.Equal(t, uint16(40000), r2.Port, "FreeBSD shares the port with a distinct 4-tuple")
			}
			// bind(0) never takes a port any socket holds, whatever the
			// destination: the rest of the range, then EADDRINUSE.
			for range 4 - 2 + boolInt(!tc.autobindSkips) {
				require.Equal(t, alloc.OK, bindTo(dB, dstB).Err)
			}
			assert.Equal(t, alloc.EADDRINUSE, bindTo(dA, dstA).Err)
			// Closing the bound socket frees the port for bind(0) again.
			st := tb.ApplyBound(dA, r1.Port, SynSent, AppAbort)
			assert.Equal(t, Closed, st)
			r3 := bindTo(dA, dstA)
			if tc.autobindSkips {
				require.Equal(t, alloc.OK, r3.Err)
				assert.Equal(t, r1.Port, r3.Port, "the only port no socket holds")
			} else {
				assert.Equal(t, alloc.EADDRINUSE, r3.Err, "40000 still serves the connect() toward B")
			}
		})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// UDP autobind takes a port exclusively whatever the destination
// (udp_lib_get_port, os-semantics.md §3.6, §10 item 8) and fails with EAGAIN
// on Linux (inet_autobind), EADDRNOTAVAIL on BSD-derived stacks.
func TestUDPTable(t *testing.T) {
	for _, tc := range []struct {
		os   string
		fail alloc.Errno
	}{
		{"linux", alloc.EAGAIN},
		{"macos", alloc.EADDRNOTAVAIL},
	} {
		p := small(t, tc.os, "40000 40001")
		a, err := alloc.New("sequential", alloc.Config{Range: p.PortRange})
		require.NoError(t, err)
		tb, err := NewUDPTable(p, []netip.Addr{netip.MustParseAddr("10.0.0.1")}, a)
		require.NoError(t, err)
		assert.False(t, tb.Shares())
		dA, err := tb.Domain(0, dstA)
		require.NoError(t, err)
		dB, err := tb.Domain(0, dstB)
		require.NoError(t, err)
		assert.Equal(t, dA, dB, "one pool for every destination")
		assert.Equal(t, alloc.OK, connect(tb, dA).Err)
		assert.Equal(t, alloc.OK, connect(tb, dB).Err)
		assert.Equal(t, tc.fail, connect(tb, dA).Err, tc.os)
	}
	// The TCP table of the same host is untouched: independent port spaces.
}
