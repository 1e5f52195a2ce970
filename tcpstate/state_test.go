package tcpstate

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// Each close variant of RFC 9293 §3.3.2, Figure 5, as an action sequence.
func TestTransitionSequences(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps []Input
		want  []State
	}{
		{"active close", []Input{AppConnect, RecvSynAck, AppClose, RecvAck, RecvFin, TimeWaitTimeout},
			[]State{SynSent, Established, FinWait1, FinWait2, TimeWait, Closed}},
		{"simultaneous close", []Input{AppConnect, RecvSynAck, AppClose, RecvFin, RecvAck, TimeWaitTimeout},
			[]State{SynSent, Established, FinWait1, Closing, TimeWait, Closed}},
		{"passive close", []Input{AppConnect, RecvSynAck, RecvFin, AppClose, RecvAck},
			[]State{SynSent, Established, CloseWait, LastAck, Closed}},
		{"RST from ESTABLISHED (SO_LINGER 0)", []Input{AppConnect, RecvSynAck, AppAbort},
			[]State{SynSent, Established, Closed}},
		{"RST from FIN_WAIT_2", []Input{AppConnect, RecvSynAck, AppClose, RecvAck, AppAbort},
			[]State{SynSent, Established, FinWait1, FinWait2, Closed}},
		{"abort while connecting", []Input{AppConnect, AppAbort}, []State{SynSent, Closed}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Closed
			for i, in := range tc.steps {
				n, ok := Transition(s, in)
				if !assert.True(t, ok, "%v in %v", in, s) {
					return
				}
				assert.Equal(t, tc.want[i], n, "%v in %v", in, s)
				s = n
			}
		})
	}
}

func TestTransitionInvalid(t *testing.T) {
	for _, tc := range []struct {
		s  State
		in Input
	}{
		{Closed, AppClose},
		{SynSent, AppClose}, // not modelled: close before the handshake
		{Established, TimeWaitTimeout},
		{TimeWait, AppAbort}, // a TIME_WAIT minisock has no owner to call close()
		{TimeWait, RecvFin},
		{LastAck, AppClose},
		{NumStates, AppConnect},
	} {
		n, ok := Transition(tc.s, tc.in)
		assert.False(t, ok, "%v in %v", tc.in, tc.s)
		assert.Equal(t, tc.s, n)
	}
}

func TestNames(t *testing.T) {
	assert.Equal(t, "TIME_WAIT", TimeWait.String())
	assert.Equal(t, "FIN_WAIT_2", FinWait2.String())
	assert.Equal(t, "State(200)", State(200).String())
	assert.Equal(t, "recv FIN", RecvFin.String())
	assert.True(t, TimeWait.HoldsPort())
	assert.False(t, Closed.HoldsPort())
}
