package alloc

import "strconv"

// Errno is the error a simulated socket call fails with. It is portsim's own
// small type rather than syscall.Errno so that names and values are the same
// on every platform the simulator runs on (syscall.Errno numbers differ
// between Linux, BSD and Windows).
//
// Errno deliberately does not implement the error interface: OK is a valid
// Errno, and an OK stored in an error variable would be a non-nil error.
type Errno uint8

// Errno values. Which one a failed allocation returns is chosen by the socket
// path through Request.Fail (os-semantics.md §3.7 for Linux).
const (
	// OK means success; it is the zero value.
	OK Errno = iota
	// EADDRNOTAVAIL: TCP connect() found no usable local port (Linux
	// __inet_hash_connect via inet_hash_connect; also FreeBSD
	// in_pcb_lport_dest and XNU in_pcbbind on an exhausted range).
	EADDRNOTAVAIL
	// EADDRINUSE: bind() to a port that conflicts, or bind(0) with the range
	// exhausted (Linux inet_csk_get_port / inet_csk_find_open_port).
	EADDRINUSE
	// EAGAIN: Linux UDP autobind (connect()/sendto() on an unbound datagram
	// socket, inet_autobind -> udp_lib_get_port) found no free port.
	EAGAIN
	// EACCES: bind() to a port below net.ipv4.ip_unprivileged_port_start
	// (default 1024) without CAP_NET_BIND_SERVICE (Linux __inet_bind;
	// os-semantics.md §3.7), or a Windows bind that SO_EXCLUSIVEADDRUSE or
	// an unshared SO_REUSEADDR refuses (WSAEACCES, §7.3).
	EACCES
	// ECONNREFUSED: connect() reached a host with no listener on the port
	// (the server answered RST), e.g. while a server restarts.
	ECONNREFUSED
	// ETIMEDOUT: connect() got no answer: its SYN was dropped (e.g. by a
	// server TIME_WAIT entry it could not end, tcp_timewait_state_process
	// without timestamps).
	ETIMEDOUT
	// NumErrnos is the number of Errno values, OK included: the length of
	// an array indexed by Errno (e.g. failure counters).
	NumErrnos
)

var errnoNames = [NumErrnos]string{
	OK:            "OK",
	EADDRNOTAVAIL: "EADDRNOTAVAIL",
	EADDRINUSE:    "EADDRINUSE",
	EAGAIN:        "EAGAIN",
	EACCES:        "EACCES",
	ECONNREFUSED:  "ECONNREFUSED",
	ETIMEDOUT:     "ETIMEDOUT",
}

// String returns the symbolic name ("OK", "EADDRNOTAVAIL", ...); an
// unknown value prints as "Errno(N)".
func (e Errno) String() string {
	if e < NumErrnos {
		return errnoNames[e]
	}
	return "Errno(" + strconv.Itoa(int(e)) + ")"
}
