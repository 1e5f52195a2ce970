// Package tcpstate models what a host's TCP stack keeps about connections:
// the client state machine (RFC 9293 §3.3.2), the socket table that decides
// which local ports a connect() may use, and the OS profiles that set the
// ephemeral range, reserved ports, TIME_WAIT length, port sharing and the
// Linux sysctls involved (os-semantics.md). It never schedules anything:
// callers tell it what happened and it answers with the new state.
package tcpstate
