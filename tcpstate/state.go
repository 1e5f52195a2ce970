package tcpstate

import "fmt"

// State is a TCP connection state (RFC 9293 §3.3.2).
type State uint8

// TCP states. Closed is the zero value: a slot with no connection.
const (
	Closed State = iota
	SynSent
	Established
	FinWait1
	FinWait2
	Closing
	TimeWait
	CloseWait
	LastAck
	NumStates // number of states, for arrays indexed by State
)

var stateNames = [NumStates]string{
	Closed:      "CLOSED",
	SynSent:     "SYN_SENT",
	Established: "ESTABLISHED",
	FinWait1:    "FIN_WAIT_1",
	FinWait2:    "FIN_WAIT_2",
	Closing:     "CLOSING",
	TimeWait:    "TIME_WAIT",
	CloseWait:   "CLOSE_WAIT",
	LastAck:     "LAST_ACK",
}

// String returns the state's name as netstat and ss print it.
func (s State) String() string {
	if s < NumStates {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// HoldsPort reports whether a socket in s still holds its local port and
// 4-tuple: every state but CLOSED. (A TIME_WAIT socket is a minisock that
// stays in the established hash and the bind bucket until it expires:
// os-semantics.md §4.2.)
func (s State) HoldsPort() bool { return s != Closed }

// Input is what happens to a client connection: a segment arriving, a call
// by the application, or a timer.
type Input uint8

// Inputs of the client state machine.
const (
	// AppConnect: connect() sends SYN.
	AppConnect Input = iota
	// RecvSynAck: the server's SYN-ACK arrives; the client ACKs.
	RecvSynAck
	// AppClose: close() sends FIN.
	AppClose
	// RecvAck: the peer acknowledges our FIN.
	RecvAck
	// RecvFin: the peer's FIN arrives; it is acknowledged.
	RecvFin
	// AppAbort: close() with SO_LINGER {on, 0} sends RST (tcp_disconnect).
	AppAbort
	// TimeWaitTimeout: the 2*MSL timer fires.
	TimeWaitTimeout
	numInputs
)

var inputNames = [numInputs]string{
	AppConnect:      "connect()",
	RecvSynAck:      "recv SYN-ACK",
	AppClose:        "close()",
	RecvAck:         "recv ACK of FIN",
	RecvFin:         "recv FIN",
	AppAbort:        "close() with SO_LINGER 0",
	TimeWaitTimeout: "TIME_WAIT timeout",
}

// String names the input.
func (in Input) String() string {
	if in < numInputs {
		return inputNames[in]
	}
	return fmt.Sprintf("Input(%d)", uint8(in))
}

// transitions is the client side of the RFC 9293 §3.3.2 state diagram
// (Figure 5) restricted to what a client opening an outbound connection
// meets. Missing entries are invalid inputs. AppAbort is valid in every
// synchronized state: RST moves the socket straight to CLOSED without
// TIME_WAIT (Linux __tcp_close with linger 0, os-semantics.md §4.4).
var transitions = func() (t [NumStates][numInputs]State) {
	for s := range t {
		for in := range t[s] {
			t[s][in] = invalid
		}
	}
	t[Closed][AppConnect] = SynSent
	t[SynSent][RecvSynAck] = Established
	t[SynSent][AppAbort] = Closed
	// Active close: FIN_WAIT_1 -> FIN_WAIT_2 -> TIME_WAIT, or CLOSING on a
	// simultaneous close.
	t[Established][AppClose] = FinWait1
	t[FinWait1][RecvAck] = FinWait2
	t[FinWait1][RecvFin] = Closing
	t[Closing][RecvAck] = TimeWait
	t[FinWait2][RecvFin] = TimeWait
	t[TimeWait][TimeWaitTimeout] = Closed
	// Passive close: the peer's FIN first, then ours.
	t[Established][RecvFin] = CloseWait
	t[CloseWait][AppClose] = LastAck
	t[LastAck][RecvAck] = Closed
	for _, s := range []State{Established, FinWait1, FinWait2, Closing, CloseWait, LastAck} {
		t[s][AppAbort] = Closed
	}
	return t
}()

// invalid marks a missing transition; it is never a real state.
const invalid State = 0xff

// Transition returns the state a client connection in s enters on input in,
// and false when the input is not valid in that state (RFC 9293 §3.3.2).
func Transition(s State, in Input) (State, bool) {
	if s >= NumStates || in >= numInputs {
		return s, false
	}
	n := transitions[s][in]
	if n == invalid {
		return s, false
	}
	return n, true
}
