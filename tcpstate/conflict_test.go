package tcpstate

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portsim/portsim/alloc"
)

// The Windows Server 2003+ tables of MicrosoftDocs
// using-so-reuseaddr-and-so-exclusiveaddruse.md as os-semantics.md §7.3
// prints them: row = first bind, column = second bind, in the order
// Default W, Default S, REUSEADDR W, REUSEADDR S, EXCLUSIVEADDRUSE W,
// EXCLUSIVEADDRUSE S.
var (
	windowsDocSameUser = []string{
		"INUSE   Success ACCESS  Success INUSE Success",
		"Success INUSE   Success ACCESS  INUSE INUSE",
		"INUSE   Success Success Success INUSE Success",
		"Success INUSE   Success Success INUSE INUSE",
		"INUSE   ACCESS  ACCESS  ACCESS  INUSE ACCESS",
		"Success INUSE   Success ACCESS  INUSE INUSE",
	}
	// Different users: Default W → Default S, REUSEADDR S, EXCLUSIVEADDRUSE S
	// and REUSEADDR W → Default S, EXCLUSIVEADDRUSE S become ACCESS.
	windowsDocOtherUser = []string{
		"INUSE   ACCESS  ACCESS  ACCESS  INUSE ACCESS",
		"Success INUSE   Success ACCESS  INUSE INUSE",
		"INUSE   ACCESS  Success Success INUSE ACCESS",
		"Success INUSE   Success Success INUSE INUSE",
		"INUSE   ACCESS  ACCESS  ACCESS  INUSE ACCESS",
		"Success INUSE   Success ACCESS  INUSE INUSE",
	}
	windowsDocErrno = map[string]alloc.Errno{"Success": alloc.OK, "INUSE": alloc.EADDRINUSE, "ACCESS": alloc.EACCES}
	windowsKinds    = []SockOpts{optNone, optNone, optAddr, optAddr, optExcl, optExcl}
)

// TestWindowsTables binds every pair of the §7.3 tables through Sockets:
// the first socket (uid 1) on 0.0.0.0:8080 or 10.0.0.1:8080, then the
// second, of the same user or another one.
func TestWindowsTables(t *testing.T) {
	for _, tc := range []struct {
		name string
		doc  []string
		uid  int
	}{{"same user", windowsDocSameUser, 1}, {"different users", windowsDocOtherUser, 2}} {
		for i, row := range tc.doc {
			cells := strings.Fields(row)
			require.Len(t, cells, 6)
			for j, cell := range cells {
				t.Run(fmt.Sprintf("§7.3 %s: %s then %s", tc.name, winCats[i], winCats[j]), func(t *testing.T) {
					first, second := windowsKinds[i], windowsKinds[j]
					first.UID, second.UID = 1, tc.uid
					addr := func(k int) string {
						if k%2 == 0 {
							return "0.0.0.0:8080"
						}
						return "10.0.0.1:8080"
					}
					newBindEnv(t, "windows", envOpts{}).run(doSocket(first), doBind(1, addr(i), alloc.OK),
						doSocket(second), doBind(2, addr(j), windowsDocErrno[cell]))
				})
			}
		}
	}
}

// TestTimeWaitReusable: Linux tcp_twsk_unique (§4.5).
func TestTimeWaitReusable(t *testing.T) {
	for _, tc := range []struct {
		name               string
		reuse              int
		ts                 bool
		prebound, loopback bool
		age                time.Duration
		want               bool
	}{
		{"no timestamps: never", 1, false, true, true, time.Hour, false},
		{"pre-bound: at once, whatever tcp_tw_reuse", 0, true, true, false, 0, true},
		{"tcp_tw_reuse 0", 0, true, false, true, time.Hour, false},
		{"tcp_tw_reuse 1 after the delay", 1, true, false, false, 1500 * time.Millisecond, true},
		{"tcp_tw_reuse 1 at the delay", 1, true, false, false, time.Second, false},
		{"tcp_tw_reuse 2 off loopback", 2, true, false, false, time.Hour, false},
		{"tcp_tw_reuse 2 on loopback", 2, true, false, true, 2 * time.Second, true},
	} {
		t.Run("§4.5 "+tc.name, func(t *testing.T) {
			p, err := Preset("linux")
			require.NoError(t, err)
			p.TCPTwReuse, p.TCPTimestamps = tc.reuse, tc.ts
			got, why := TimeWaitReusable(&p, tc.prebound, tc.loopback, tc.age)
			assert.Equal(t, tc.want, got, why)
		})
	}
}

// FuzzSockets drives random action sequences (socket, bind, listen,
// connect, accept, close, time passing, lookup) on every OS family, TCP
// and UDP, over a few addresses and ports, and checks after every action
// that the table's indexes agree with its sockets (checkInvariants: no two
// TCP sockets with one 4-tuple, TIME_WAIT included; UDP duplicates only
// where Linux's rules let the sockets share; counts, buckets, BindTouched
// consistent), that a Linux bind(0) never lands on a port an overlapping
// socket holds, and at the end, once every socket is closed and TIME_WAIT
// has run out, that no port is held anywhere.
func FuzzSockets(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0x01, 0, 1, 9, 0, 2, 0, 0, 4, 0, 0, 5, 1, 0, 6, 0, 0})
	f.Add([]byte{1, 1, 0, 0x03, 0, 1, 1, 0, 3, 7, 0, 0, 0x03, 0, 1, 1, 1, 3, 7, 1})
	f.Add([]byte{3, 0, 0, 0x04, 0, 1, 9, 0, 2, 0, 0, 4, 0, 0, 5, 1, 0, 0, 0x05, 0, 1, 9, 1})
	f.Add([]byte{0, 2, 0, 0x01, 0, 0, 0x01, 0, 1, 2, 0, 1, 2, 1, 3, 0, 0, 3, 0, 1, 1, 2, 2})
	f.Fuzz(fuzzCase)
}

// fuzzCase is one fuzz input: data[0] picks the OS family, data[1] the
// protocol (bit 0: UDP), ip_autobind_reuse (bit 1) and privilege (bit 2),
// the rest the actions (fuzzRun).
func fuzzCase(t *testing.T, data []byte) {
	if len(data) < 2 {
		return
	}
	family := []string{"linux", "freebsd", "macos", "windows", "ns3", "gvisor"}[int(data[0])%6]
	reuse := data[1]&2 != 0
	e := newBindEnv(t, family, envOpts{proto: Proto(data[1] & 1), privileged: data[1]&4 != 0, rng: "40000 40003", autobindReuse: reuse})
	fuzzRun(t, e, data[2:], reuse)
}

// fuzzRun plays data three bytes per action on e, at most 300 actions
// (each checks every index; longer inputs only slow the fuzzer down).
func fuzzRun(t *testing.T, e *bindEnv, data []byte, autobindReuse bool) {
	data = data[:min(len(data), 3*300)]
	s := e.s
	addrs := []netip.Addr{
		netip.MustParseAddr("0.0.0.0"), netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"),
		netip.MustParseAddr("::"), netip.MustParseAddr("fd00::1"),
	}
	remotes := []netip.Addr{netip.MustParseAddr("198.51.100.7"), netip.MustParseAddr("198.51.100.8"), netip.MustParseAddr("2001:db8::7")}
	ports := []uint16{0, 40000, 40001, 8080}
	var ids []SockID
	// pick returns the sel-th socket (cyclically) in one of the states, or NoSock.
	pick := func(sel byte, states ...SockState) SockID {
		var c []SockID
		for _, id := range ids {
			for _, st := range states {
				if s.State(id) == st {
					c = append(c, id)
				}
			}
		}
		if len(c) == 0 {
			return NoSock
		}
		return c[int(sel)%len(c)]
	}
	// source picks a specific address for a socket bound to b toward family of r.
	source := func(b netip.Addr, r netip.Addr, sel byte) (netip.Addr, bool) {
		var src netip.Addr
		if r.Is4() {
			src = addrs[1+int(sel)%2]
		} else {
			src = addrs[4]
		}
		if b.IsUnspecified() {
			return src, addrOverlap(b, src, s.dual)
		}
		return b, b.Is4() == r.Is4()
	}
	seen := map[SockID]bool{}
	for i := 0; i+2 < len(data); i += 3 {
		op, x, y := data[i], data[i+1], data[i+2]
		var rule string
		switch op % 8 {
		case 0:
			o := SockOpts{ReuseAddr: x&1 != 0, ReusePort: x&2 != 0, ExclusiveAddrUse: x&4 != 0, UID: int(x>>3) & 1, Device: int(x>>4) & 3}
			if s.os == osWindows && o.ReuseAddr && o.ExclusiveAddrUse {
				o.ExclusiveAddrUse = false
			}
			id := s.Socket(o)
			if !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		case 1:
			id := pick(y, SockUnbound)
			if id == NoSock {
				continue
			}
			a := netip.AddrPortFrom(addrs[int(x)%len(addrs)], ports[int(x>>3)%len(ports)])
			var err alloc.Errno
			var port uint16
			port, err, rule = s.Bind(id, a, e.now)
			if err == alloc.OK && a.Port() == 0 && s.os == osLinux && s.proto == TCP && !autobindReuse {
				for _, oid := range s.buckets[port].owners {
					if o := &s.socks[oid]; oid != id && addrOverlap(o.local.Addr(), a.Addr(), true) {
						t.Fatalf("bind(%v) got port %d, which socket %d holds on %v: %s", a, port, oid, o.local, rule)
					}
				}
			}
		case 2:
			if s.proto != TCP {
				continue
			}
			if id := pick(y, SockBound); id != NoSock {
				_, rule = s.Listen(id)
			}
		case 3:
			states := []SockState{SockBound}
			if s.proto == UDP {
				states = append(states, SockUnbound)
			}
			id := pick(y, states...)
			if id == NoSock {
				continue
			}
			r := netip.AddrPortFrom(remotes[int(x)%len(remotes)], 1000+uint16(x>>2)%3)
			b := s.LocalAddr(id).Addr()
			if !b.IsValid() { // unbound UDP: autobind on the wildcard of r's family
				b = unspecified(r.Addr())
			}
			src, ok := source(b, r.Addr(), x>>4)
			if !ok {
				continue
			}
			_, _, rule = s.Connect(id, src, r, e.now)
		case 4:
			l := pick(y, SockListen)
			if l == NoSock {
				continue
			}
			r := netip.AddrPortFrom(remotes[int(x)%len(remotes)], 1000+uint16(x>>2)%3)
			local, ok := source(s.LocalAddr(l).Addr(), r.Addr(), x>>4)
			if !ok {
				continue
			}
			var id SockID
			var accepted bool
			id, accepted, rule = s.Accept(l, local, r, e.now)
			if accepted && !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		case 5:
			id := pick(y, SockUnbound, SockBound, SockListen, SockConnected)
			if id == NoSock {
				continue
			}
			rule = s.Close(id, e.now, s.proto == TCP && s.State(id) == SockConnected && x&1 != 0)
		case 6:
			e.now += time.Duration(x) * time.Second
			s.ExpireTimeWait(e.now)
		case 7:
			local := netip.AddrPortFrom(addrs[1+int(x)%4], ports[1+int(y)%3])
			_, rule = s.Lookup(local, netip.AddrPortFrom(remotes[int(y>>2)%3], 1000), uint32(x)<<24)
		}
		checkInvariants(t, s)
		if t.Failed() {
			t.Fatalf("action %d (op %d, %d, %d): %s", i/3, op%8, x, y, rule)
		}
	}
	for _, id := range ids {
		if st := s.State(id); st != SockClosed && st != SockTimeWait {
			s.Close(id, e.now, false)
		}
	}
	s.ExpireTimeWait(e.now + e.p.TimeWait)
	checkInvariants(t, s)
	assert.Zero(t, s.PortsInUse())
	assert.Zero(t, s.BindTouched().Len())
	assert.Equal(t, [NumSockStates]int{}, s.Count)
	assert.Empty(t, s.addrRefs)
	assert.Empty(t, s.conns)
	assert.Empty(t, s.groups)
}

// TestFuzzSocketsRandom plays long random sequences through the fuzz body,
// so that plain `go test` covers far more than the seed corpus.
func TestFuzzSocketsRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	for i := range 300 {
		data := make([]byte, 2+3*200)
		for j := range data {
			data[j] = byte(rng.UintN(256))
		}
		data[0], data[1] = byte(i%6), byte(i/6%8)
		t.Run(fmt.Sprint(i), func(t *testing.T) { fuzzCase(t, data) })
	}
}
