package tcpstate

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portsim/portsim/alloc"
)

// bindEnv runs action sequences against one Sockets. Sockets are numbered
// 1, 2, ... in the order the script creates them (doSocket, doAccept).
type bindEnv struct {
	t   *testing.T
	p   *Profile
	s   *Sockets
	ids []SockID
	now time.Duration
}

// envOpts adjusts a bindEnv before the Sockets is built.
type envOpts struct {
	proto         Proto
	privileged    bool
	rng           string // ephemeral range, default "40000 40009"
	autobindReuse bool
	prof          func(*Profile)
}

func newBindEnv(t *testing.T, family string, o envOpts) *bindEnv {
	t.Helper()
	p, err := Preset(family)
	require.NoError(t, err)
	if o.rng == "" {
		o.rng = "40000 40009"
	}
	r, err := alloc.ParseRange(o.rng)
	require.NoError(t, err)
	p.SetPortRange(r)
	if o.prof != nil {
		o.prof(&p)
	}
	name := p.BindAllocator
	if o.proto == UDP {
		name = p.UDPAllocator
	}
	a, err := alloc.New(name, alloc.Config{Range: p.PortRange, First: p.FirstPort, Rand: rand.New(rand.NewPCG(7, 11)), AutobindReuse: o.autobindReuse})
	require.NoError(t, err)
	return &bindEnv{t: t, p: &p, s: NewSockets(&p, o.proto, a, o.privileged)}
}

// step is one action of a script, with its expectation.
type step struct {
	name string
	do   func(e *bindEnv) string // returns the rule string
}

func (e *bindEnv) run(script ...step) {
	e.t.Helper()
	for i, st := range script {
		rule := st.do(e)
		e.t.Logf("step %d %s: %s", i+1, st.name, rule)
		checkInvariants(e.t, e.s)
		if e.t.Failed() {
			e.t.Fatalf("step %d %s failed (rule: %s)", i+1, st.name, rule)
		}
	}
}

// last, as a socket number, is the socket created most recently.
const last = 0

// sockNum names socket number k in step names.
func sockNum(k int) string {
	if k == last {
		return "last"
	}
	return fmt.Sprint(k)
}

func (e *bindEnv) id(k int) SockID {
	e.t.Helper()
	if k == last {
		k = len(e.ids)
	}
	require.Less(e.t, k-1, len(e.ids), "socket %d does not exist yet", k)
	return e.ids[k-1]
}

func doSocket(o SockOpts) step {
	return step{fmt.Sprintf("socket(%+v)", o), func(e *bindEnv) string {
		e.ids = append(e.ids, e.s.Socket(o))
		return ""
	}}
}

// doBind binds socket k to addr and expects errno want; with want OK and a
// non-zero port in addr that port.
func doBind(k int, addr string, want alloc.Errno) step {
	return step{fmt.Sprintf("bind(%s, %s) want %v", sockNum(k), addr, want.String()), func(e *bindEnv) string {
		ap := netip.MustParseAddrPort(addr)
		port, err, rule := e.s.Bind(e.id(k), ap, e.now)
		assert.Equal(e.t, want.String(), err.String(), rule)
		if want == alloc.OK && ap.Port() != 0 {
			assert.Equal(e.t, ap.Port(), port)
		}
		if want != alloc.OK {
			assert.Equal(e.t, SockUnbound, e.s.State(e.id(k)))
		}
		return rule
	}}
}

// doBindPort is bind(addr with port 0) expecting the port chosen.
func doBindPort(k int, addr string, wantPort uint16) step {
	return step{fmt.Sprintf("bind(%s, %s) want port %d", sockNum(k), addr, wantPort), func(e *bindEnv) string {
		port, err, rule := e.s.Bind(e.id(k), netip.MustParseAddrPort(addr), e.now)
		assert.Equal(e.t, alloc.OK, err, rule)
		assert.Equal(e.t, wantPort, port, rule)
		return rule
	}}
}

func doListen(k int, want alloc.Errno) step {
	return step{fmt.Sprintf("listen(%s) want %v", sockNum(k), want), func(e *bindEnv) string {
		err, rule := e.s.Listen(e.id(k))
		assert.Equal(e.t, want, err, rule)
		return rule
	}}
}

// doAccept accepts a connection from remote to local on listener l; the
// child, if any, becomes the next socket number.
func doAccept(l int, local, remote string, wantOK bool) step {
	return step{fmt.Sprintf("accept(%d, %s←%s) want %v", l, local, remote, wantOK), func(e *bindEnv) string {
		id, ok, rule := e.s.Accept(e.id(l), netip.MustParseAddr(local), netip.MustParseAddrPort(remote), e.now)
		assert.Equal(e.t, wantOK, ok, rule)
		if ok {
			e.ids = append(e.ids, id)
		}
		return rule
	}}
}

func doConnect(k int, src, remote string, want alloc.Errno) step {
	return step{fmt.Sprintf("connect(%s, %s→%s) want %v", sockNum(k), src, remote, want), func(e *bindEnv) string {
		var a netip.Addr
		if src != "" {
			a = netip.MustParseAddr(src)
		}
		_, err, rule := e.s.Connect(e.id(k), a, netip.MustParseAddrPort(remote), e.now)
		assert.Equal(e.t, want, err, rule)
		return rule
	}}
}

func doClose(k int) step {
	return step{fmt.Sprintf("close(%s)", sockNum(k)), func(e *bindEnv) string {
		return e.s.Close(e.id(k), e.now, false)
	}}
}

// doCloseTW is an active close of connected socket k: it enters TIME_WAIT.
func doCloseTW(k int) step {
	return step{fmt.Sprintf("active close(%s)", sockNum(k)), func(e *bindEnv) string {
		return e.s.Close(e.id(k), e.now, true)
	}}
}

func doAdvance(d time.Duration) step {
	return step{fmt.Sprintf("advance %v", d), func(e *bindEnv) string {
		e.now += d
		return fmt.Sprintf("%d TIME_WAIT entries expired", e.s.ExpireTimeWait(e.now))
	}}
}

func wantState(k int, st SockState) step {
	return step{fmt.Sprintf("socket %s is %v", sockNum(k), st), func(e *bindEnv) string {
		assert.Equal(e.t, st, e.s.State(e.id(k)))
		return ""
	}}
}

var (
	optNone  = SockOpts{}
	optAddr  = SockOpts{ReuseAddr: true}
	optPort  = SockOpts{ReusePort: true}
	optExcl  = SockOpts{ExclusiveAddrUse: true}
	peer1    = "198.51.100.7:50001"
	peer2    = "198.51.100.8:50002"
	matrixOS = []string{"linux", "freebsd", "macos", "windows"}
)

// serverWithTimeWait is a listener on 0.0.0.0:8080 with options o that
// accepts a connection on 10.0.0.1, closes it first (server-side
// TIME_WAIT) and is then closed itself: sockets 1 (gone) and 2 (TIME_WAIT).
func serverWithTimeWait(o SockOpts) []step {
	return []step{
		doSocket(o), doBind(1, "0.0.0.0:8080", alloc.OK), doListen(1, alloc.OK),
		doAccept(1, "10.0.0.1", peer1, true), doCloseTW(2), doClose(1),
		wantState(2, SockTimeWait),
	}
}

// TestBindMatrix runs the twelve rows of os-semantics.md §7.2 (second bind
// on the same port, same user, TCP) for each OS family: Linux §3.4, BSD
// §5.3/§6.1, Windows §7.3. Rows marked n/a for a family are skipped with
// the reason.
func TestBindMatrix(t *testing.T) {
	type row struct {
		name  string
		setup []step
		final SockOpts
		addr  string
		want  map[string]alloc.Errno // by family; absent: n/a, with skip
		skip  string
	}
	P := ":8080"
	simple := func(existing SockOpts, exAddr string, listen bool) []step {
		s := []step{doSocket(existing), doBind(1, exAddr+P, alloc.OK)}
		if listen {
			s = append(s, doListen(1, alloc.OK))
		}
		return s
	}
	rows := []row{
		{name: "1 0.0.0.0 vs 0.0.0.0, no options", setup: simple(optNone, "0.0.0.0", false), final: optNone, addr: "0.0.0.0",
			want: map[string]alloc.Errno{"linux": alloc.EADDRINUSE, "freebsd": alloc.EADDRINUSE, "macos": alloc.EADDRINUSE, "windows": alloc.EADDRINUSE}},
		{name: "2 0.0.0.0 vs 10.0.0.1, no options", setup: simple(optNone, "0.0.0.0", false), final: optNone, addr: "10.0.0.1",
			want: map[string]alloc.Errno{"linux": alloc.EADDRINUSE, "freebsd": alloc.EADDRINUSE, "macos": alloc.EADDRINUSE, "windows": alloc.OK}},
		{name: "3 0.0.0.0 vs 10.0.0.1 REUSEADDR", setup: simple(optNone, "0.0.0.0", false), final: optAddr, addr: "10.0.0.1",
			want: map[string]alloc.Errno{"linux": alloc.EADDRINUSE, "freebsd": alloc.OK, "macos": alloc.OK, "windows": alloc.OK}},
		{name: "4 10.0.0.1 vs 0.0.0.0 REUSEADDR", setup: simple(optNone, "10.0.0.1", false), final: optAddr, addr: "0.0.0.0",
			want: map[string]alloc.Errno{"linux": alloc.EADDRINUSE, "freebsd": alloc.OK, "macos": alloc.OK, "windows": alloc.OK}},
		{name: "5 0.0.0.0 vs 0.0.0.0 REUSEADDR", setup: simple(optNone, "0.0.0.0", false), final: optAddr, addr: "0.0.0.0",
			want: map[string]alloc.Errno{"linux": alloc.EADDRINUSE, "freebsd": alloc.EADDRINUSE, "macos": alloc.EADDRINUSE, "windows": alloc.EACCES}},
		{name: "6 0.0.0.0 REUSEADDR LISTEN vs 0.0.0.0 REUSEADDR", setup: simple(optAddr, "0.0.0.0", true), final: optAddr, addr: "0.0.0.0",
			want: map[string]alloc.Errno{"linux": alloc.EADDRINUSE, "freebsd": alloc.EADDRINUSE, "macos": alloc.EADDRINUSE, "windows": alloc.OK}},
		{name: "7 10.0.0.1 REUSEADDR bound vs 10.0.0.1 REUSEADDR", setup: simple(optAddr, "10.0.0.1", false), final: optAddr, addr: "10.0.0.1",
			want: map[string]alloc.Errno{"linux": alloc.OK, "freebsd": alloc.EADDRINUSE, "macos": alloc.EADDRINUSE, "windows": alloc.OK}},
		{name: "8 REUSEPORT both, same address", setup: simple(optPort, "10.0.0.1", true), final: optPort, addr: "10.0.0.1",
			want: map[string]alloc.Errno{"linux": alloc.OK, "freebsd": alloc.OK, "macos": alloc.OK}, skip: "Windows has no SO_REUSEPORT (§7.2 n/a)"},
		{name: "9 TIME_WAIT child of a REUSEADDR listener vs 0.0.0.0 REUSEADDR", setup: serverWithTimeWait(optAddr), final: optAddr, addr: "0.0.0.0",
			// Windows: [U] in §7.2; a TIME_WAIT connection blocks no bind [S].
			want: map[string]alloc.Errno{"linux": alloc.OK, "freebsd": alloc.OK, "macos": alloc.OK, "windows": alloc.OK}},
		{name: "10 TIME_WAIT child of a listener without REUSEADDR vs 0.0.0.0 REUSEADDR", setup: serverWithTimeWait(optNone), final: optAddr, addr: "0.0.0.0",
			// BSD: the exact lookup misses the specific TIME_WAIT PCB (inferred, §7.2);
			// Windows: [U] in §7.2; a TIME_WAIT connection blocks no bind [S].
			want: map[string]alloc.Errno{"linux": alloc.EADDRINUSE, "freebsd": alloc.OK, "macos": alloc.OK, "windows": alloc.OK}},
		{name: "11 10.0.0.1 vs 10.0.0.2", setup: simple(optNone, "10.0.0.1", false), final: optNone, addr: "10.0.0.2",
			want: map[string]alloc.Errno{"linux": alloc.OK, "freebsd": alloc.OK, "macos": alloc.OK, "windows": alloc.OK}},
		{name: "12 SO_BINDTODEVICE eth0 vs eth1", setup: simple(SockOpts{Device: 1}, "10.0.0.1", true), final: SockOpts{Device: 2}, addr: "10.0.0.1",
			want: map[string]alloc.Errno{"linux": alloc.OK}, skip: "no SO_BINDTODEVICE on this OS (§7.2 n/a)"},
	}
	for _, r := range rows {
		for _, os := range matrixOS {
			t.Run(fmt.Sprintf("§7.2 row %s/%s", r.name, os), func(t *testing.T) {
				want, ok := r.want[os]
				if !ok {
					t.Skip(r.skip)
				}
				e := newBindEnv(t, os, envOpts{})
				e.run(append(r.setup, doSocket(r.final), doBind(last, r.addr+P, want))...)
			})
		}
	}
}

// checkInvariants recomputes every index of s from its sockets: counts,
// buckets and slots, BindTouched, the per-family and per-address port sets,
// the 4-tuple map (TCP 4-tuples unique, TIME_WAIT included), SO_REUSEPORT
// groups and the free list. Linux UDP may hold duplicate 4-tuples only
// between sockets that share the port under udp_lib_lport_inuse.
func checkInvariants(t *testing.T, s *Sockets) {
	t.Helper()
	var count [NumSockStates]int
	var fam, wild [2]alloc.PortSet
	var touched alloc.PortSet
	owners := map[uint16]int{}
	refs := map[netip.AddrPort]int32{}
	conns := map[tupleKey]SockID{}
	udp := map[tupleKey][]SockID{}
	closed, grouped := 0, 0
	for i := range s.socks {
		id, o := SockID(i), &s.socks[i]
		if o.state == SockClosed {
			closed++
			continue
		}
		count[o.state]++
		if o.state == SockUnbound {
			continue
		}
		p := o.local.Port()
		owners[p]++
		refs[o.local]++
		fam[famIndex(o.local.Addr())].Add(int(p))
		touched.Add(int(p))
		if b := s.buckets[p]; assert.NotNil(t, b, "socket %d's port %d has no bucket", id, p) {
			assert.Equal(t, id, b.owners[o.slot], "socket %d's bucket slot", id)
		}
		if o.inGroup {
			grouped++
			assert.Contains(t, s.groups[groupKey{o.local, o.opts.Device}], id)
		}
		if !o.connected() {
			continue
		}
		k := tupleKey{o.local, o.remote}
		if s.proto == UDP {
			udp[k] = append(udp[k], id)
			continue
		}
		if prev, dup := conns[k]; dup {
			t.Errorf("sockets %d and %d hold the same 4-tuple %v↔%v", prev, id, k.local, k.remote)
		}
		conns[k] = id
	}
	for k, ids := range udp {
		for _, a := range ids[1:] {
			switch s.os {
			case osLinux:
				e, why := linuxUDPConflict(s.socks[a].opts, k.local.Addr(), &s.socks[ids[0]])
				assert.Equal(t, alloc.OK, e, "UDP sockets %v share %v↔%v: %s", ids, k.local, k.remote, why)
			case osFreeBSD, osMacOS:
				t.Errorf("UDP sockets %v share the 4-tuple %v↔%v", ids, k.local, k.remote)
			}
		}
	}
	for ap := range refs {
		for f := range wild {
			if s.covers(ap.Addr(), f) {
				wild[f].Add(int(ap.Port()))
			}
		}
	}
	assert.Equal(t, count, s.Count, "Count")
	assert.Equal(t, len(owners), len(s.buckets), "buckets")
	assert.Equal(t, len(owners), s.PortsInUse())
	for p, b := range s.buckets {
		assert.Len(t, b.owners, owners[p], "owners of port %d", p)
	}
	assert.True(t, touched.Equal(s.BindTouched()), "BindTouched %v, want %v", s.BindTouched(), &touched)
	for f := range fam {
		assert.True(t, fam[f].Equal(&s.fam[f]), "family %d ports %v, want %v", f, &s.fam[f], &fam[f])
		assert.True(t, wild[f].Equal(&s.wild[f]), "wildcard-covered ports of family %d: %v, want %v", f, &s.wild[f], &wild[f])
	}
	assert.Equal(t, refs, s.addrRefs, "addrRefs")
	for a, set := range s.addrPorts {
		for p := set.NextSet(0, alloc.MaxPort); p >= 0; p = set.NextSet(p+1, alloc.MaxPort) {
			assert.Positive(t, refs[netip.AddrPortFrom(a, uint16(p))], "addrPorts[%v] has %d", a, p)
		}
	}
	for ap := range refs {
		assert.True(t, s.addrPorts[ap.Addr()].Has(int(ap.Port())), "addrPorts misses %v", ap)
	}
	assert.Equal(t, conns, s.conns, "4-tuple map")
	members := 0
	for _, g := range s.groups {
		members += len(g)
	}
	assert.Equal(t, grouped, members, "SO_REUSEPORT group members")
	assert.Len(t, s.free, closed, "free list")
}

// TestRestart: a listener whose accepted connections the server closed
// first (server-side TIME_WAIT, §4.2) is closed and a new socket binds the
// port: Linux needs SO_REUSEADDR on the old listener and the new socket
// (TIME_WAIT keeps the old flags, §3.4, §10 item 6) or SO_REUSEPORT on both
// (uid not checked against TIME_WAIT); BSD needs it on the new one only
// (§5.3; §7.2 row 10 inference); Windows TIME_WAIT blocks no bind [S];
// ns-3 compares addresses exactly (§8.2). After TIME_WAIT ends every
// variant binds.
func TestRestart(t *testing.T) {
	for _, tc := range []struct {
		os       string
		old, new SockOpts
		listen   string // listener address
		want     alloc.Errno
	}{
		{"linux", optNone, optNone, "0.0.0.0", alloc.EADDRINUSE},
		{"linux", optNone, optAddr, "0.0.0.0", alloc.EADDRINUSE},
		{"linux", optAddr, optNone, "0.0.0.0", alloc.EADDRINUSE},
		{"linux", optAddr, optAddr, "0.0.0.0", alloc.OK},
		{"linux", SockOpts{ReusePort: true, UID: 1}, SockOpts{ReusePort: true, UID: 2}, "0.0.0.0", alloc.OK},
		{"freebsd", optNone, optNone, "0.0.0.0", alloc.EADDRINUSE},
		{"freebsd", optNone, optAddr, "0.0.0.0", alloc.OK},
		{"macos", optNone, optAddr, "0.0.0.0", alloc.OK},
		{"macos", optNone, optNone, "10.0.0.1", alloc.EADDRINUSE},
		{"windows", optNone, optNone, "0.0.0.0", alloc.OK},
		{"windows", optExcl, optExcl, "0.0.0.0", alloc.OK},
		{"ns3", optNone, optNone, "0.0.0.0", alloc.OK},
		{"ns3", optNone, optNone, "10.0.0.1", alloc.EADDRINUSE},
		{"gvisor", optAddr, optAddr, "0.0.0.0", alloc.OK},
		{"gvisor", optNone, optAddr, "0.0.0.0", alloc.EADDRINUSE},
	} {
		name := fmt.Sprintf("§10 item 6 %s: old %+v new %+v on %s", tc.os, tc.old, tc.new, tc.listen)
		t.Run(name, func(t *testing.T) {
			e := newBindEnv(t, tc.os, envOpts{})
			addr := tc.listen + ":8080"
			script := []step{
				doSocket(tc.old), doBind(1, addr, alloc.OK), doListen(1, alloc.OK),
				doAccept(1, "10.0.0.1", peer1, true), doAccept(1, "10.0.0.1", peer2, true),
				doCloseTW(2), doCloseTW(3), doClose(1),
				doSocket(tc.new), doBind(4, addr, tc.want),
			}
			if tc.want != alloc.OK {
				script = append(script, doAdvance(e.p.TimeWait-time.Second), doBind(4, addr, tc.want),
					doAdvance(time.Second), wantState(2, SockClosed), doBind(4, addr, alloc.OK))
			}
			e.run(append(script, doListen(4, alloc.OK))...)
		})
	}
}

// TestRestartActiveChild: Windows SO_EXCLUSIVEADDRUSE listeners cannot be
// bound again while an accepted connection is still active (§7.3): the
// child counts as an EXCLUSIVEADDRUSE specific binding.
func TestRestartActiveChild(t *testing.T) {
	e := newBindEnv(t, "windows", envOpts{})
	e.run(doSocket(optExcl), doBind(1, "0.0.0.0:8080", alloc.OK), doListen(1, alloc.OK),
		doAccept(1, "10.0.0.1", peer1, true), doClose(1),
		doSocket(optExcl), doBind(3, "0.0.0.0:8080", alloc.EADDRINUSE),
		doClose(2), doBind(3, "0.0.0.0:8080", alloc.OK))
}

// TestReusePort: SO_REUSEPORT listeners of the same uid share a port, of
// different uids not (Linux §3.5 sk_reuseport_match / inet_bind_conflict;
// FreeBSD's cross-user guard §5.3, skipped with privilege; XNU's guard lets
// two wildcard SO_REUSEPORT sockets of different users share, §6.1); a
// TIME_WAIT entry is exempt from the uid check (§3.4).
func TestReusePort(t *testing.T) {
	uid := func(u int) SockOpts { return SockOpts{ReusePort: true, UID: u} }
	for _, tc := range []struct {
		name       string
		os         string
		privileged bool
		script     []step
	}{
		{"§3.5 linux same uid: both listen", "linux", false, []step{
			doSocket(uid(1)), doBind(1, "0.0.0.0:9000", alloc.OK), doListen(1, alloc.OK),
			doSocket(uid(1)), doBind(2, "0.0.0.0:9000", alloc.OK), doListen(2, alloc.OK)}},
		{"§3.5 linux different uid: EADDRINUSE", "linux", false, []step{
			doSocket(uid(1)), doBind(1, "0.0.0.0:9000", alloc.OK), doListen(1, alloc.OK),
			doSocket(uid(2)), doBind(2, "0.0.0.0:9000", alloc.EADDRINUSE)}},
		{"§3.4 linux TIME_WAIT exempt from the uid check", "linux", false, append(serverWithTimeWait(uid(1)),
			doSocket(uid(2)), doBind(3, "0.0.0.0:8080", alloc.OK))},
		{"§3.4 linux uid check while the listener lives", "linux", false, []step{
			doSocket(uid(1)), doBind(1, "0.0.0.0:8080", alloc.OK), doListen(1, alloc.OK),
			doAccept(1, "10.0.0.1", peer1, true), doCloseTW(2),
			doSocket(uid(2)), doBind(3, "0.0.0.0:8080", alloc.EADDRINUSE)}},
		{"§5.3 freebsd different uid: cross-user guard", "freebsd", false, []step{
			doSocket(uid(1)), doBind(1, "0.0.0.0:9000", alloc.OK), doListen(1, alloc.OK),
			doSocket(uid(2)), doBind(2, "0.0.0.0:9000", alloc.EADDRINUSE)}},
		{"§5.3 freebsd different uid with privilege", "freebsd", true, []step{
			doSocket(uid(1)), doBind(1, "0.0.0.0:9000", alloc.OK), doListen(1, alloc.OK),
			doSocket(uid(2)), doBind(2, "0.0.0.0:9000", alloc.OK)}},
		{"§5.3 freebsd same uid", "freebsd", false, []step{
			doSocket(uid(1)), doBind(1, "10.0.0.1:9000", alloc.OK), doListen(1, alloc.OK),
			doSocket(uid(1)), doBind(2, "10.0.0.1:9000", alloc.OK), doListen(2, alloc.OK)}},
		{"§6.1 macos different uid, both wildcard SO_REUSEPORT", "macos", false, []step{
			doSocket(uid(1)), doBind(1, "0.0.0.0:9000", alloc.OK),
			doSocket(uid(2)), doBind(2, "0.0.0.0:9000", alloc.OK)}},
		{"§6.1 macos different uid, specific address", "macos", false, []step{
			doSocket(uid(1)), doBind(1, "0.0.0.0:9000", alloc.OK),
			doSocket(uid(2)), doBind(2, "10.0.0.1:9000", alloc.EADDRINUSE)}},
		{"§8.1 gvisor: no uid", "gvisor", false, []step{
			doSocket(uid(1)), doBind(1, "0.0.0.0:9000", alloc.OK), doListen(1, alloc.OK),
			doSocket(uid(2)), doBind(2, "0.0.0.0:9000", alloc.OK)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			newBindEnv(t, tc.os, envOpts{privileged: tc.privileged}).run(tc.script...)
		})
	}
}

// TestListenRecheck: Linux listen() re-runs inet_csk_get_port in LISTEN,
// so of two SO_REUSEADDR sockets bound to one port only the first to
// listen succeeds (§3.3 item 6); a socket bound next to a listener already
// fails at bind (§7.2 row 6). BSD and ns-3 do not check at listen().
func TestListenRecheck(t *testing.T) {
	both := []step{doSocket(optAddr), doBind(1, "0.0.0.0:8080", alloc.OK), doSocket(optAddr), doBind(2, "0.0.0.0:8080", alloc.OK)}
	t.Run("§3.3 linux: first listener wins", func(t *testing.T) {
		newBindEnv(t, "linux", envOpts{}).run(append(both, doListen(2, alloc.OK), doListen(1, alloc.EADDRINUSE),
			wantState(1, SockBound), doClose(2), doListen(1, alloc.OK))...)
	})
	t.Run("§3.3 linux: SO_REUSEPORT listeners both listen", func(t *testing.T) {
		o := SockOpts{ReuseAddr: true, ReusePort: true}
		newBindEnv(t, "linux", envOpts{}).run(doSocket(o), doBind(1, "0.0.0.0:8080", alloc.OK),
			doSocket(o), doBind(2, "0.0.0.0:8080", alloc.OK), doListen(1, alloc.OK), doListen(2, alloc.OK))
	})
	t.Run("§8.1 gvisor: no listen check [U]", func(t *testing.T) {
		newBindEnv(t, "gvisor", envOpts{}).run(append(both, doListen(1, alloc.OK), doListen(2, alloc.OK))...)
	})
	t.Run("§8.2 ns3: exact addresses, no listen check", func(t *testing.T) {
		newBindEnv(t, "ns3", envOpts{}).run(doSocket(optNone), doBind(1, "0.0.0.0:8080", alloc.OK),
			doSocket(optNone), doBind(2, "10.0.0.1:8080", alloc.OK), doListen(1, alloc.OK), doListen(2, alloc.OK),
			doSocket(optAddr), doBind(3, "10.0.0.1:8080", alloc.EADDRINUSE))
	})
}

// bindZero binds a new socket with options o to addr (port 0) and returns
// the port, failing the test on an error.
func (e *bindEnv) bindZero(o SockOpts, addr string) uint16 {
	e.t.Helper()
	id := e.s.Socket(o)
	e.ids = append(e.ids, id)
	port, err, rule := e.s.Bind(id, netip.MustParseAddrPort(addr), e.now)
	require.Equal(e.t, alloc.OK, err, rule)
	checkInvariants(e.t, e.s)
	return port
}

// TestBindZero: Linux bind(0) (inet_csk_find_open_port, §3.2, §2.5) tries
// odd ports first, then even, never shares a port with a socket on an
// overlapping address (SO_REUSEADDR or not), but a port held on another
// specific address is free; with SO_REUSEADDR the lower half comes first.
func TestBindZero(t *testing.T) {
	t.Run("§3.2 odd first, exclusive, EADDRINUSE when exhausted", func(t *testing.T) {
		e := newBindEnv(t, "linux", envOpts{})
		seen := map[uint16]bool{}
		for i := range 10 {
			p := e.bindZero(optNone, "10.0.0.1:0")
			assert.False(t, seen[p], "port %d handed out twice", p)
			seen[p] = true
			assert.Equal(t, i < 5, p%2 == 1, "bind %d got %d: odd ports come first", i, p)
		}
		// SO_REUSEADDR and SO_REUSEPORT do not make bind(0) share.
		e.run(doSocket(SockOpts{ReuseAddr: true, ReusePort: true}), doBind(last, "10.0.0.1:0", alloc.EADDRINUSE),
			doBind(last, "0.0.0.0:0", alloc.EADDRINUSE))
		assert.Equal(t, 10, e.s.BindTouched().Len())
		// Another specific address overlaps none of them.
		assert.True(t, seen[e.bindZero(optNone, "10.0.0.2:0")])
	})
	t.Run("§3.2 SO_REUSEADDR tries the lower half first", func(t *testing.T) {
		e := newBindEnv(t, "linux", envOpts{})
		for range 4 {
			assert.Less(t, e.bindZero(optAddr, "10.0.0.1:0"), uint16(40004))
		}
		assert.GreaterOrEqual(t, e.bindZero(optAddr, "10.0.0.1:0"), uint16(40004))
	})
	t.Run("§3.2 ip_autobind_reuse shares with non-listening SO_REUSEADDR owners", func(t *testing.T) {
		for _, reuse := range []bool{false, true} {
			e := newBindEnv(t, "linux", envOpts{rng: "40000 40001", autobindReuse: reuse})
			a, b := e.bindZero(optAddr, "10.0.0.1:0"), e.bindZero(optAddr, "10.0.0.1:0")
			require.NotEqual(t, a, b)
			want := alloc.EADDRINUSE
			if reuse {
				want = alloc.OK
			}
			e.run(doSocket(optAddr), doBind(last, "10.0.0.1:0", want),
				doSocket(optNone), doBind(last, "10.0.0.1:0", alloc.EADDRINUSE))
		}
		e := newBindEnv(t, "linux", envOpts{rng: "40000 40001", autobindReuse: true})
		e.run(doSocket(optAddr), doBind(1, "10.0.0.1:0", alloc.OK), doListen(1, alloc.OK),
			doSocket(optAddr), doBind(2, "10.0.0.1:0", alloc.OK), doListen(2, alloc.OK),
			doSocket(optAddr), doBind(3, "10.0.0.1:0", alloc.EADDRINUSE))
	})
	t.Run("§2.6 reserved ports: skipped by bind(0), explicit bind allowed", func(t *testing.T) {
		e := newBindEnv(t, "linux", envOpts{prof: func(p *Profile) {
			require.NoError(t, p.SetSysctl("net.ipv4.ip_local_reserved_ports", "40000-40007"))
		}})
		seen := map[uint16]bool{e.bindZero(optNone, "10.0.0.1:0"): true, e.bindZero(optNone, "10.0.0.1:0"): true}
		assert.Equal(t, map[uint16]bool{40008: true, 40009: true}, seen)
		e.run(doSocket(optNone), doBind(last, "10.0.0.1:0", alloc.EADDRINUSE), doBind(last, "10.0.0.1:40003", alloc.OK))
	})
	t.Run("§5.2 freebsd: exhaustion is EADDRNOTAVAIL", func(t *testing.T) {
		e := newBindEnv(t, "freebsd", envOpts{rng: "40000 40001"})
		a := e.bindZero(optNone, "10.0.0.1:0")
		assert.NotEqual(t, a, e.bindZero(optNone, "0.0.0.0:0"))
		e.run(doSocket(optNone), doBind(last, "0.0.0.0:0", alloc.EADDRNOTAVAIL))
		assert.Equal(t, a, e.bindZero(optNone, "10.0.0.2:0"), "the port held on 10.0.0.1 is free on 10.0.0.2")
	})
	t.Run("§5.3 freebsd: with SO_REUSEADDR only unconnected sockets on the exact address are busy", func(t *testing.T) {
		e := newBindEnv(t, "freebsd", envOpts{rng: "40000 40001"})
		a := e.bindZero(optNone, "10.0.0.1:0")
		e.run(doConnect(1, "", peer1, alloc.OK))
		b := e.bindZero(optNone, "10.0.0.1:0")
		require.NotEqual(t, a, b)
		e.run(doSocket(optNone), doBind(last, "10.0.0.1:0", alloc.EADDRNOTAVAIL))
		assert.Equal(t, a, e.bindZero(optAddr, "10.0.0.1:0"))
	})
	t.Run("§6.2 windows and §8.2 ns3: one pool across addresses", func(t *testing.T) {
		for os, first := range map[string]uint16{"windows": 40000, "ns3": 40001} {
			e := newBindEnv(t, os, envOpts{})
			assert.Equal(t, first, e.bindZero(optNone, "10.0.0.1:0"), os)
			assert.Equal(t, first+1, e.bindZero(optNone, "10.0.0.2:0"), os)
		}
	})
}

// TestBindTouched: the set holds every port a socket of the table holds,
// TIME_WAIT included, until the last one is gone (§2.3, §10 item 1).
func TestBindTouched(t *testing.T) {
	e := newBindEnv(t, "linux", envOpts{})
	has := func(ports ...int) step {
		return step{fmt.Sprintf("BindTouched = %v", ports), func(e *bindEnv) string {
			var want alloc.PortSet
			for _, p := range ports {
				want.Add(p)
			}
			assert.Equal(t, want.String(), e.s.BindTouched().String())
			return ""
		}}
	}
	e.run(has(),
		doSocket(optNone), doBind(1, "10.0.0.1:7000", alloc.OK), has(7000),
		doSocket(optNone), doBind(2, "0.0.0.0:8080", alloc.OK), doListen(2, alloc.OK), has(7000, 8080),
		doSocket(optNone), has(7000, 8080),
		doConnect(1, "", peer1, alloc.OK), doAccept(2, "10.0.0.1", peer2, true), doClose(2), has(7000, 8080),
		doCloseTW(1), doCloseTW(4), doClose(3), has(7000, 8080),
		doAdvance(time.Minute), has())
}

// TestConnectBound: connect() of a bound socket checks only the 4-tuple
// (§2.1): a live duplicate is EADDRNOTAVAIL on Linux and EADDRINUSE on
// FreeBSD (§5.2, §10 item 11); a TIME_WAIT duplicate is taken over on
// Linux when the peer used timestamps, pre-bound ports needing neither
// tcp_tw_reuse nor its delay (tcp_twsk_unique, §4.5, §10 item 5).
func TestConnectBound(t *testing.T) {
	pair := func(o SockOpts) []step {
		return []step{doSocket(o), doBind(1, "10.0.0.1:7000", alloc.OK), doSocket(o), doBind(2, "10.0.0.1:7000", alloc.OK)}
	}
	t.Run("§10 item 11 linux live duplicate: EADDRNOTAVAIL", func(t *testing.T) {
		newBindEnv(t, "linux", envOpts{}).run(append(pair(optAddr),
			doConnect(1, "", peer1, alloc.OK), doConnect(2, "", peer1, alloc.EADDRNOTAVAIL),
			wantState(2, SockBound), doConnect(2, "", peer2, alloc.OK))...)
	})
	t.Run("§10 item 11 freebsd live duplicate: EADDRINUSE", func(t *testing.T) {
		newBindEnv(t, "freebsd", envOpts{}).run(append(pair(optPort),
			doConnect(1, "", peer1, alloc.OK), doConnect(2, "", peer1, alloc.EADDRINUSE))...)
	})
	prebound := []step{
		doSocket(optAddr), doBind(1, "10.0.0.1:7000", alloc.OK), doConnect(1, "", peer1, alloc.OK), doCloseTW(1),
		doAdvance(100 * time.Millisecond), // well inside tcp_tw_reuse_delay
		doSocket(optAddr), doBind(2, "10.0.0.1:7000", alloc.OK),
	}
	t.Run("§4.5 linux pre-bound port takes over TIME_WAIT with timestamps", func(t *testing.T) {
		e := newBindEnv(t, "linux", envOpts{prof: func(p *Profile) { p.TCPTwReuse = 0 }})
		e.run(append(prebound, doConnect(2, "", peer1, alloc.OK), wantState(1, SockClosed))...)
		assert.Equal(t, uint64(1), e.s.TwRecycled)
	})
	t.Run("§4.5 linux without timestamps: EADDRNOTAVAIL until TIME_WAIT ends", func(t *testing.T) {
		e := newBindEnv(t, "linux", envOpts{prof: func(p *Profile) { p.TCPTimestamps = false }})
		e.run(append(prebound, doConnect(2, "", peer1, alloc.EADDRNOTAVAIL),
			doAdvance(time.Minute), doConnect(2, "", peer1, alloc.OK))...)
	})
	t.Run("§5.2 freebsd TIME_WAIT duplicate: EADDRINUSE", func(t *testing.T) {
		newBindEnv(t, "freebsd", envOpts{}).run(append(prebound, doConnect(2, "", peer1, alloc.EADDRINUSE))...)
	})
	t.Run("§2.1 wildcard binding takes the source address", func(t *testing.T) {
		e := newBindEnv(t, "linux", envOpts{})
		e.run(doSocket(optNone), doBind(1, "0.0.0.0:7000", alloc.OK), doConnect(1, "10.0.0.2", peer1, alloc.OK),
			doSocket(optNone), doBind(2, "10.0.0.1:7000", alloc.OK))
		assert.Equal(t, "10.0.0.2:7000", e.s.LocalAddr(e.id(1)).String())
		assert.Equal(t, peer1, e.s.RemoteAddr(e.id(1)).String())
	})
	t.Run("§3.4 linux dual-stack :: binding connects over IPv4", func(t *testing.T) {
		e := newBindEnv(t, "linux", envOpts{})
		e.run(doSocket(optNone), doBind(1, "[::]:7000", alloc.OK), doSocket(optNone), doBind(2, "10.0.0.1:7000", alloc.EADDRINUSE),
			doConnect(1, "10.0.0.2", peer1, alloc.OK), doBind(2, "10.0.0.1:7000", alloc.OK))
	})
}

// TestAcceptTimeWait: a SYN for a server-side TIME_WAIT 4-tuple ends it when
// timestamps show it is new (tcp_timewait_state_process, RFC 6191, §4.6);
// ns-3 refuses the duplicate 5-tuple (§8.2).
func TestAcceptTimeWait(t *testing.T) {
	for _, tc := range []struct {
		os     string
		ts     bool
		wantOK bool
	}{{"linux", true, true}, {"linux", false, false}, {"freebsd", true, true}, {"ns3", true, false}} {
		t.Run(fmt.Sprintf("§4.6 %s timestamps %v", tc.os, tc.ts), func(t *testing.T) {
			e := newBindEnv(t, tc.os, envOpts{prof: func(p *Profile) { p.TCPTimestamps = tc.ts }})
			e.run(doSocket(optNone), doBind(1, "0.0.0.0:8080", alloc.OK), doListen(1, alloc.OK),
				doAccept(1, "10.0.0.1", peer1, true), doAccept(1, "10.0.0.1", peer1, false), doCloseTW(2),
				doAccept(1, "10.0.0.1", peer1, tc.wantOK))
		})
	}
}

// TestLookup: demultiplexing (§3.5, issue item 5): the exact 4-tuple first,
// then the most specific listener, then the SO_REUSEPORT group's hash
// (reciprocal_scale), which keeps its order when a member leaves by moving
// the last one into the hole (reuseport_detach_sock).
func TestLookup(t *testing.T) {
	e := newBindEnv(t, "linux", envOpts{})
	var script []step
	for range 3 {
		script = append(script, doSocket(optPort), doBind(last, "0.0.0.0:8080", alloc.OK), doListen(last, alloc.OK))
	}
	script = append(script, doSocket(optPort), doBind(4, "10.0.0.1:8080", alloc.OK), doListen(4, alloc.OK),
		doAccept(2, "10.0.0.2", peer1, true))
	e.run(script...)
	lookup := func(local string, hash uint32) SockID {
		id, rule := e.s.Lookup(netip.MustParseAddrPort(local), netip.MustParseAddrPort(peer2), hash)
		t.Logf("lookup %s hash %#x: %s", local, hash, rule)
		return id
	}
	assert.Equal(t, e.id(4), lookup("10.0.0.1:8080", 0), "specific listener first")
	assert.Equal(t, e.id(1), lookup("10.0.0.2:8080", 0))
	assert.Equal(t, e.id(2), lookup("10.0.0.2:8080", 0x60000000))
	assert.Equal(t, e.id(3), lookup("10.0.0.2:8080", 0xffffffff))
	id, _ := e.s.Lookup(netip.MustParseAddrPort("10.0.0.2:8080"), netip.MustParseAddrPort(peer1), 0)
	assert.Equal(t, e.id(5), id, "established 4-tuple first")
	assert.Equal(t, NoSock, lookup("10.0.0.2:9999", 0))
	e.run(doClose(1))
	assert.Equal(t, e.id(3), lookup("10.0.0.2:8080", 0), "the last member moved into the hole")
	assert.Equal(t, e.id(2), lookup("10.0.0.2:8080", 0xffffffff))

	t.Run("§5.3 freebsd: most recent of equal listeners", func(t *testing.T) {
		e := newBindEnv(t, "freebsd", envOpts{})
		e.run(doSocket(optPort), doBind(1, "0.0.0.0:8080", alloc.OK), doListen(1, alloc.OK),
			doSocket(optPort), doBind(2, "0.0.0.0:8080", alloc.OK), doListen(2, alloc.OK))
		id, _ := e.s.Lookup(netip.MustParseAddrPort("10.0.0.2:8080"), netip.MustParseAddrPort(peer1), 0)
		assert.Equal(t, e.id(2), id)
	})
	t.Run("§3.6 linux udp: connected socket before bound ones", func(t *testing.T) {
		e := newBindEnv(t, "linux", envOpts{proto: UDP})
		e.run(doSocket(optAddr), doBind(1, "0.0.0.0:5353", alloc.OK), doSocket(optAddr), doBind(2, "10.0.0.1:5353", alloc.OK),
			doConnect(2, "", peer1, alloc.OK))
		id, _ := e.s.Lookup(netip.MustParseAddrPort("10.0.0.1:5353"), netip.MustParseAddrPort(peer1), 0)
		assert.Equal(t, e.id(2), id)
		id, _ = e.s.Lookup(netip.MustParseAddrPort("10.0.0.1:5353"), netip.MustParseAddrPort(peer2), 0)
		assert.Equal(t, e.id(1), id)
	})
}

// TestPrivilegedPorts: bind below the unprivileged start needs privilege
// (Linux ip_unprivileged_port_start §3.7, FreeBSD reservedhigh §5.1, XNU
// only for specific addresses); Windows and ns-3 have no such ports. The
// errno is EACCES, never EADDRINUSE.
func TestPrivilegedPorts(t *testing.T) {
	for _, tc := range []struct {
		os         string
		privileged bool
		start      int // UnprivilegedPortStart override, 0 = default
		addr       string
		want       alloc.Errno
	}{
		{"linux", false, 0, "0.0.0.0:80", alloc.EACCES},
		{"linux", true, 0, "0.0.0.0:80", alloc.OK},
		{"linux", false, 80, "0.0.0.0:80", alloc.OK},
		{"linux", false, 0, "0.0.0.0:1024", alloc.OK},
		{"gvisor", false, 0, "10.0.0.1:443", alloc.EACCES},
		{"freebsd", false, 0, "0.0.0.0:1023", alloc.EACCES},
		{"macos", false, 0, "0.0.0.0:80", alloc.OK},
		{"macos", false, 0, "10.0.0.1:80", alloc.EACCES},
		{"windows", false, 0, "0.0.0.0:80", alloc.OK},
		{"ns3", false, 0, "0.0.0.0:80", alloc.OK},
	} {
		t.Run(fmt.Sprintf("§3.7 %s privileged=%v %s", tc.os, tc.privileged, tc.addr), func(t *testing.T) {
			e := newBindEnv(t, tc.os, envOpts{privileged: tc.privileged})
			if tc.start != 0 {
				e.s.UnprivilegedPortStart = tc.start
			}
			e.run(doSocket(optNone), doBind(1, tc.addr, tc.want))
		})
	}
}

// TestUDP: UDP has its own port space, no LISTEN and no TIME_WAIT. Linux
// lets two SO_REUSEADDR sockets hold even the same 4-tuple
// (udp_lib_lport_inuse, §3.6); autobind on connect()/sendto() fails with
// EAGAIN on Linux (§3.6, §10 item 8) and EADDRNOTAVAIL on FreeBSD, where
// connect() also checks the 4-tuple (in_pcbconnect_setup, §5.2).
func TestUDP(t *testing.T) {
	t.Run("§3.6 linux SO_REUSEADDR: full duplicates", func(t *testing.T) {
		newBindEnv(t, "linux", envOpts{proto: UDP}).run(
			doSocket(optAddr), doBind(1, "10.0.0.1:5353", alloc.OK), doSocket(optAddr), doBind(2, "10.0.0.1:5353", alloc.OK),
			doConnect(1, "", peer1, alloc.OK), doConnect(2, "", peer1, alloc.OK),
			doSocket(optNone), doBind(3, "0.0.0.0:5353", alloc.EADDRINUSE),
			doSocket(optPort), doBind(4, "0.0.0.0:5354", alloc.OK), doSocket(optPort), doBind(5, "0.0.0.0:5354", alloc.OK))
	})
	t.Run("§3.6 linux autobind exhaustion: EAGAIN", func(t *testing.T) {
		e := newBindEnv(t, "linux", envOpts{proto: UDP, rng: "40000 40001"})
		e.run(doSocket(optNone), doConnect(1, "10.0.0.1", peer1, alloc.OK), doSocket(optNone), doConnect(2, "10.0.0.1", peer1, alloc.OK),
			doSocket(optNone), doConnect(3, "10.0.0.1", peer2, alloc.EAGAIN), wantState(3, SockUnbound),
			doClose(1), doConnect(3, "10.0.0.1", peer2, alloc.OK))
		port, err, rule := e.s.SendTo(e.s.Socket(optNone), netip.MustParseAddrPort(peer1), e.now)
		assert.Equal(t, alloc.EAGAIN, err, rule)
		assert.Zero(t, port)
	})
	t.Run("§5.2 freebsd: connect() 4-tuple check, EADDRNOTAVAIL on exhaustion", func(t *testing.T) {
		e := newBindEnv(t, "freebsd", envOpts{proto: UDP, rng: "40000 40000"})
		e.run(doSocket(optPort), doBind(1, "10.0.0.1:5353", alloc.OK), doSocket(optPort), doBind(2, "10.0.0.1:5353", alloc.OK),
			doConnect(1, "", peer1, alloc.OK), doConnect(2, "", peer1, alloc.EADDRINUSE),
			doSocket(optNone), doConnect(3, "10.0.0.1", peer1, alloc.OK),
			doSocket(optNone), doConnect(4, "10.0.0.1", peer1, alloc.EADDRNOTAVAIL))
		id := e.s.Socket(optNone)
		port, err, _ := e.s.SendTo(id, netip.MustParseAddrPort(peer1), 0)
		assert.Equal(t, alloc.EADDRNOTAVAIL, err)
		e.run(doClose(3))
		port, err, _ = e.s.SendTo(id, netip.MustParseAddrPort(peer1), 0)
		assert.Equal(t, alloc.OK, err)
		assert.Equal(t, uint16(40000), port)
		assert.Equal(t, SockBound, e.s.State(id), "sendto() does not connect")
	})
	t.Run("§3.6 TCP and UDP port spaces are independent", func(t *testing.T) {
		tcp := newBindEnv(t, "linux", envOpts{})
		udp := newBindEnv(t, "linux", envOpts{proto: UDP})
		tcp.run(doSocket(optNone), doBind(1, "0.0.0.0:5300", alloc.OK))
		udp.run(doSocket(optNone), doBind(1, "0.0.0.0:5300", alloc.OK))
	})
}

// fakeConnectTable stands for the Table's connect()-autobound ports.
type fakeConnectTable struct{ held alloc.PortSet }

func (f *fakeConnectTable) ConnectHeld(netip.Addr) *alloc.PortSet { return &f.held }

// TestConnectOwned: ports connect() autobind holds are owners too (§2.3):
// explicit bind() conflicts with them (they carry no SO_REUSEADDR) on
// Linux, and bind(0) avoids them; FreeBSD's exact lookup with SO_REUSEADDR
// ignores connected sockets (§5.3).
func TestConnectOwned(t *testing.T) {
	f := &fakeConnectTable{}
	f.held.Add(40001)
	e := newBindEnv(t, "linux", envOpts{rng: "40000 40001"})
	e.s.SetConnectOwned(f)
	e.run(doSocket(optAddr), doBind(1, "10.0.0.1:40001", alloc.EADDRINUSE), doBindPort(1, "10.0.0.1:0", 40000),
		doSocket(optAddr), doBindPort(2, "10.0.0.2:0", 40000), doSocket(optAddr), doBind(3, "0.0.0.0:0", alloc.EADDRINUSE))

	b := newBindEnv(t, "freebsd", envOpts{})
	b.s.SetConnectOwned(f)
	b.run(doSocket(optNone), doBind(1, "10.0.0.1:40001", alloc.EADDRINUSE), doSocket(optAddr), doBind(2, "10.0.0.1:40001", alloc.OK))
}

// TestMisuse: calls a kernel refuses with EINVAL/EBADF are caller bugs.
func TestMisuse(t *testing.T) {
	e := newBindEnv(t, "linux", envOpts{})
	id := e.s.Socket(optNone)
	assert.Panics(t, func() { e.s.Listen(id) }, "listen() before bind()")
	assert.Panics(t, func() { e.s.Connect(id, netip.Addr{}, netip.MustParseAddrPort(peer1), 0) }, "TCP connect() autobind is the Table's")
	_, err, _ := e.s.Bind(id, netip.MustParseAddrPort("10.0.0.1:7000"), 0)
	require.Equal(t, alloc.OK, err)
	assert.Panics(t, func() { e.s.Bind(id, netip.MustParseAddrPort("10.0.0.1:7001"), 0) }, "bind twice")
	assert.Panics(t, func() { e.s.Close(id, 0, true) }, "TIME_WAIT needs a connection")
	e.s.Close(id, 0, false)
	assert.Panics(t, func() { e.s.LocalAddr(id) }, "closed id")
	assert.Equal(t, SockClosed, e.s.State(id))
	w := newBindEnv(t, "windows", envOpts{})
	assert.Panics(t, func() { w.s.Socket(SockOpts{ReuseAddr: true, ExclusiveAddrUse: true}) })
	assert.Panics(t, func() { NewSockets(&Profile{Family: "plan9"}, TCP, nil, false) })
}

// TestNames covers the String methods used in rule strings.
func TestSockNames(t *testing.T) {
	assert.Equal(t, "tcp", TCP.String())
	assert.Equal(t, "udp", UDP.String())
	assert.Equal(t, "TIME_WAIT", SockTimeWait.String())
	assert.Equal(t, "SockState(9)", SockState(9).String())
	assert.Equal(t, "EACCES", alloc.EACCES.String())
	assert.Equal(t, "EADDRINUSE", alloc.EADDRINUSE.String())
}
