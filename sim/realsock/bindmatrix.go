package realsock

import (
	"fmt"
	"math/rand/v2"
	"net/netip"

	"github.com/portsim/portsim/alloc"
	"github.com/portsim/portsim/tcpstate"
)

// The bind-conflict matrix checks the Linux rules of tcpstate.Sockets
// (inet_csk_get_port, inet_csk_bind_conflict, inet_bind_conflict in
// net/ipv4/inet_connection_sock.c; os-semantics.md §3.3-3.5, §7.2) against
// the running kernel, written against Linux 6.18: two IPv4 TCP sockets
// meet on one port, the first bound, listening or in TIME_WAIT, the second
// binding (and listening), with every combination of SO_REUSEADDR and
// SO_REUSEPORT on each side. This file is the portable part: the cases and
// the model's answer. BindMatrix (bindmatrix_linux.go) runs the cases on
// real sockets.

// MatrixPortLow and MatrixPortCount delimit the ports the kernel side of
// the matrix uses, one per case: 20000-20999, below the default ephemeral
// ranges of Linux (32768-60999), XNU and Windows (49152-65535), so that no
// autobound peer socket of a case takes one, and each case's TIME_WAIT
// stays clear of the other cases.
const (
	MatrixPortLow   = 20000
	MatrixPortCount = 1000
)

// MatrixOpts are the socket options the matrix varies, set before bind().
type MatrixOpts struct {
	// ReuseAddr is SO_REUSEADDR.
	ReuseAddr bool
	// ReusePort is SO_REUSEPORT.
	ReusePort bool
}

// matrixOptions are the four option sets, in case order.
var matrixOptions = [...]MatrixOpts{{}, {ReuseAddr: true}, {ReusePort: true}, {ReuseAddr: true, ReusePort: true}}

// String is the short spelling used in case names: "none", "ra", "rp" or
// "ra+rp".
func (o MatrixOpts) String() string {
	switch {
	case o.ReuseAddr && o.ReusePort:
		return "ra+rp"
	case o.ReuseAddr:
		return "ra"
	case o.ReusePort:
		return "rp"
	}
	return "none"
}

// sockOpts is o as tcpstate options (same uid for both sockets, no device).
func (o MatrixOpts) sockOpts() tcpstate.SockOpts {
	return tcpstate.SockOpts{ReuseAddr: o.ReuseAddr, ReusePort: o.ReusePort}
}

// FirstState is where the first socket stands when the second one binds.
type FirstState uint8

const (
	// FirstBound: bind() only.
	FirstBound FirstState = iota
	// FirstListen: bind() and listen().
	FirstListen
	// FirstListenLater: bind() only, then listen() between the second
	// socket's bind() and its listen(), so that the second listen() meets a
	// listener its bind() did not (os-semantics.md §3.3 item 6). Only with
	// SecondListen: with SecondBind it would be FirstBound.
	FirstListenLater
	// FirstTimeWaitAccepted: the first socket's options are a listener's on
	// the port; a loopback peer connects to 127.0.0.1, the accepted socket
	// (which inherits the listener's options and port, __inet_inherit_port)
	// closes first and then the peer, which leaves the accepted socket in
	// TIME_WAIT (tcp_time_wait) with the listener's options
	// (inet_twsk_alloc copies sk_reuse and sk_reuseport); then the listener
	// is closed. This is a server restarting while its old connections are
	// in TIME_WAIT.
	FirstTimeWaitAccepted
	// FirstTimeWaitConnected: the first socket binds the port with its
	// options, connect()s to a listener on another port of 127.0.0.1
	// (which gives a wildcard binding the source address 127.0.0.1,
	// inet_bhash2_update_saddr), closes first and is left in TIME_WAIT: a
	// bind-before-connect client.
	FirstTimeWaitConnected
	numFirstStates
)

var firstStateNames = [numFirstStates]string{"bound", "listen", "listen-later", "tw-accepted", "tw-connected"}

// String is the state's name in case names.
func (s FirstState) String() string {
	if s < numFirstStates {
		return firstStateNames[s]
	}
	return fmt.Sprintf("FirstState(%d)", uint8(s))
}

// SecondAction is what the second socket does on the port.
type SecondAction uint8

const (
	// SecondBind: bind() only.
	SecondBind SecondAction = iota
	// SecondListen: bind(), then listen(), which Linux checks again
	// (inet_csk_listen_start calls inet_csk_get_port in TCP_LISTEN).
	SecondListen
	numSecondActions
)

var secondActionNames = [numSecondActions]string{"bind", "listen"}

// String is "bind" or "listen" (bind then listen), as in case names.
func (a SecondAction) String() string {
	if a < numSecondActions {
		return secondActionNames[a]
	}
	return fmt.Sprintf("SecondAction(%d)", uint8(a))
}

// AddrRelation is how the two sockets' local addresses relate. The
// specific addresses are in 127.0.0.0/8, so every case stays on loopback.
type AddrRelation uint8

const (
	// AddrSame: 127.0.0.1, then 127.0.0.1.
	AddrSame AddrRelation = iota
	// AddrWildcardFirst: 0.0.0.0, then 127.0.0.1.
	AddrWildcardFirst
	// AddrWildcardSecond: 127.0.0.1, then 0.0.0.0.
	AddrWildcardSecond
	// AddrBothWildcard: 0.0.0.0, then 0.0.0.0.
	AddrBothWildcard
	// AddrOther: 127.0.0.1, then 127.0.0.2 (addresses that do not overlap).
	AddrOther
	// AddrWildcardOther: 0.0.0.0, then 127.0.0.2. A bound or listening
	// first socket covers 127.0.0.2; a TIME_WAIT one does not, as its
	// connection is on 127.0.0.1.
	AddrWildcardOther
	numAddrRelations
)

var (
	matrixLo1 = netip.MustParseAddr("127.0.0.1")
	matrixLo2 = netip.MustParseAddr("127.0.0.2")
	matrixAny = netip.IPv4Unspecified()

	matrixAddrPairs = [numAddrRelations][2]netip.Addr{
		AddrSame:           {matrixLo1, matrixLo1},
		AddrWildcardFirst:  {matrixAny, matrixLo1},
		AddrWildcardSecond: {matrixLo1, matrixAny},
		AddrBothWildcard:   {matrixAny, matrixAny},
		AddrOther:          {matrixLo1, matrixLo2},
		AddrWildcardOther:  {matrixAny, matrixLo2},
	}
)

// Addrs returns the first and the second socket's bind address.
func (r AddrRelation) Addrs() (first, second netip.Addr) {
	p := matrixAddrPairs[r]
	return p[0], p[1]
}

// MatrixCase is one cell of the bind-conflict matrix: a first socket with
// options First in state State on its address and the matrix port, then a
// second socket with options Second doing Action on its address and the
// same port.
type MatrixCase struct {
	// Name is unique in the matrix, for example
	// "tw-accepted.ra@0.0.0.0/listen.ra+rp@127.0.0.1": state, options and
	// address of the first socket, then action, options and address of the
	// second.
	Name   string
	First  MatrixOpts
	State  FirstState
	Second MatrixOpts
	Action SecondAction
	Addrs  AddrRelation
}

// MatrixCases returns the whole matrix, in a fixed order: 4 option sets
// for the first socket × 4 option sets for the second × 6 address
// relations × 9 (first state, action) pairs (5 states × 2 actions, less
// FirstListenLater with SecondBind, which is FirstBound with SecondBind),
// 864 cases. Nothing else is pruned: each case is a situation a program
// can create, including those in which the options cannot matter
// (AddrOther), which check that addresses that do not overlap never
// conflict.
func MatrixCases() []MatrixCase {
	var cases []MatrixCase
	for st := range numFirstStates {
		for _, first := range matrixOptions {
			for act := range numSecondActions {
				if st == FirstListenLater && act == SecondBind {
					continue
				}
				for _, second := range matrixOptions {
					for rel := range numAddrRelations {
						a1, a2 := rel.Addrs()
						cases = append(cases, MatrixCase{
							Name:  fmt.Sprintf("%v.%v@%v/%v.%v@%v", st, first, a1, act, second, a2),
							First: first, State: st, Second: second, Action: act, Addrs: rel,
						})
					}
				}
			}
		}
	}
	return cases
}

// MatrixStep is the call of the second socket that failed.
type MatrixStep uint8

const (
	// StepNone: nothing failed.
	StepNone MatrixStep = iota
	// StepBind: bind() failed.
	StepBind
	// StepListen: bind() succeeded, listen() failed.
	StepListen
)

// String is "-", "bind" or "listen".
func (s MatrixStep) String() string {
	switch s {
	case StepBind:
		return "bind"
	case StepListen:
		return "listen"
	}
	return "-"
}

// MatrixOutcome is what happened to the second socket: OK with StepNone,
// or the errno and the call that returned it.
type MatrixOutcome struct {
	Errno alloc.Errno
	Step  MatrixStep
}

// String is "OK" or, for example, "EADDRINUSE at listen".
func (o MatrixOutcome) String() string {
	if o.Errno == alloc.OK {
		return "OK"
	}
	return fmt.Sprintf("%v at %v", o.Errno, o.Step)
}

// MatrixRow is one case run on the kernel and on the model.
type MatrixRow struct {
	Case MatrixCase
	// Port is the port the kernel run used; the model used the same.
	Port   uint16
	Kernel MatrixOutcome
	Model  MatrixOutcome
	// ModelRule is the rule string of the model's deciding call(s).
	ModelRule string
	// Agree reports Kernel == Model: same errno at the same call.
	Agree bool
}

// String is the row on one line: case, kernel, model and the model's rule.
func (r MatrixRow) String() string {
	return fmt.Sprintf("%s (port %d): kernel %v, model %v; model rule: %s", r.Case.Name, r.Port, r.Kernel, r.Model, r.ModelRule)
}

// newMatrixRow completes a row from the kernel's outcome of case c on port
// with the model's.
func newMatrixRow(c MatrixCase, port uint16, kernel MatrixOutcome) (MatrixRow, error) {
	model, rule, err := ModelBindCase(c, port)
	if err != nil {
		return MatrixRow{}, err
	}
	return MatrixRow{Case: c, Port: port, Kernel: kernel, Model: model, ModelRule: rule, Agree: kernel == model}, nil
}

// matrixPeer is the loopback peer of the model's TIME_WAIT connections. It
// stands for the kernel's peer, whose port is ephemeral; only its being
// another port than the tested one matters.
var matrixPeer = netip.AddrPortFrom(matrixLo1, 40000)

// ModelBindCase runs case c on port in a fresh tcpstate.Sockets with the
// "linux" preset (tcpstate's Linux TCP rule, linuxBindConflict in
// tcpstate/conflict.go) and returns the second socket's outcome and the
// rule string of its bind(), or of bind() and listen(). The first socket
// reaches its state through the model's own calls: Bind and Listen;
// Accept and Close with timeWait for FirstTimeWaitAccepted, then Close of
// the listener; Connect and Close with timeWait for
// FirstTimeWaitConnected; for FirstListenLater, Listen after the second
// socket's Bind. All happen at virtual time 0, so no TIME_WAIT expires.
// The peer sockets of the kernel run hold other ports and are left out.
// An error means that the model refused one of those set-up calls, which
// the kernel allows in every case.
func ModelBindCase(c MatrixCase, port uint16) (MatrixOutcome, string, error) {
	prof, err := tcpstate.Preset("linux")
	if err != nil {
		return MatrixOutcome{}, "", err
	}
	// The allocator serves bind(addr, 0), which no case calls.
	a, err := alloc.New(prof.BindAllocator, alloc.Config{Range: prof.PortRange, Rand: rand.New(rand.NewPCG(1, 1))})
	if err != nil {
		return MatrixOutcome{}, "", err
	}
	s := tcpstate.NewSockets(&prof, tcpstate.TCP, a, true)
	first, second := c.Addrs.Addrs()
	fid, err := modelFirstSocket(s, c, netip.AddrPortFrom(first, port))
	if err != nil {
		return MatrixOutcome{}, "", fmt.Errorf("model of case %s: first socket: %w", c.Name, err)
	}
	id := s.Socket(c.Second.sockOpts())
	_, e, rule := s.Bind(id, netip.AddrPortFrom(second, port), 0)
	if e != alloc.OK {
		return MatrixOutcome{Errno: e, Step: StepBind}, "bind: " + rule, nil
	}
	if c.Action == SecondBind {
		return MatrixOutcome{}, "bind: " + rule, nil
	}
	if c.State == FirstListenLater {
		if e, rule := s.Listen(fid); e != alloc.OK {
			return MatrixOutcome{}, "", fmt.Errorf("model of case %s: first socket: listen: %v (%s)", c.Name, e, rule)
		}
	}
	e, lrule := s.Listen(id)
	rule = "bind: " + rule + "; listen: " + lrule
	if e != alloc.OK {
		return MatrixOutcome{Errno: e, Step: StepListen}, rule, nil
	}
	return MatrixOutcome{}, rule, nil
}

// modelFirstSocket creates case c's first socket in s on local, brings it
// to c.State (FirstListenLater: bound) and returns its id.
func modelFirstSocket(s *tcpstate.Sockets, c MatrixCase, local netip.AddrPort) (tcpstate.SockID, error) {
	id := s.Socket(c.First.sockOpts())
	if _, e, rule := s.Bind(id, local, 0); e != alloc.OK {
		return id, fmt.Errorf("bind %v: %v (%s)", local, e, rule)
	}
	switch c.State {
	case FirstListen, FirstTimeWaitAccepted:
		if e, rule := s.Listen(id); e != alloc.OK {
			return id, fmt.Errorf("listen: %v (%s)", e, rule)
		}
		if c.State == FirstListen {
			return id, nil
		}
		child, ok, rule := s.Accept(id, matrixLo1, matrixPeer, 0)
		if !ok {
			return id, fmt.Errorf("accept: %s", rule)
		}
		s.Close(child, 0, true)
		s.Close(id, 0, false)
		return child, nil
	case FirstTimeWaitConnected:
		if _, e, rule := s.Connect(id, matrixLo1, matrixPeer, 0); e != alloc.OK {
			return id, fmt.Errorf("connect %v: %v (%s)", matrixPeer, e, rule)
		}
		s.Close(id, 0, true)
	}
	return id, nil
}
