//go:build linux

package realsock

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/portsim/portsim/alloc"
)

// matrixTimeout bounds every blocking step of a case: connect(), accept()
// and read() through SO_SNDTIMEO / SO_RCVTIMEO, and the wait for TIME_WAIT.
const matrixTimeout = 2 * time.Second

// matrixBacklog is the listen() backlog; a case has at most one pending
// connection.
const matrixBacklog = 4

// BindMatrix runs every case of MatrixCases on real IPv4 TCP sockets of the
// running kernel, case i on port MatrixPortLow+i, and compares each with
// ModelBindCase. The kernel decides in inet_csk_get_port
// (net/ipv4/inet_connection_sock.c, Linux 6.18): the bind bucket's fast
// paths (fastreuse, sk_reuseport_match), then inet_bhash2_addr_any_conflict
// and inet_csk_bind_conflict, which judge each owner by inet_bind_conflict;
// bind() runs it, and listen() runs it again in TCP_LISTEN
// (inet_csk_listen_start).
//
// A TIME_WAIT first socket is made by a real active close, never by
// SO_LINGER: the socket holding the port closes first, its loopback peer
// after, and BindMatrix polls sock_diag (netlink.SocketDiagTCP) for at
// most 2 s until the socket is in TIME_WAIT before the second socket
// binds.
//
// BindMatrix changes no sysctl and no interface and does not switch
// namespaces: the caller runs it on a thread in a network namespace of its
// own whose lo is up and in which nothing holds ports of
// MatrixPortLow..MatrixPortLow+MatrixPortCount-1 (a fresh namespace; a
// second run in the same one would meet the first run's TIME_WAIT sockets
// for 60 s). All traffic goes to 127.0.0.0/8. Every descriptor a case opens
// is closed when it ends. The error reports a case whose set-up failed or
// whose second socket failed with an errno alloc.Errno does not name; the
// rows before it are returned with it.
func BindMatrix() ([]MatrixRow, error) {
	cases := MatrixCases()
	if len(cases) > MatrixPortCount {
		return nil, fmt.Errorf("bind matrix: %d cases need more than the %d ports from %d", len(cases), MatrixPortCount, MatrixPortLow)
	}
	rows := make([]MatrixRow, 0, len(cases))
	for i, c := range cases {
		port := uint16(MatrixPortLow + i)
		k, err := kernelBindCase(c, port)
		if err != nil {
			return rows, fmt.Errorf("bind matrix: case %s on port %d: %w", c.Name, port, err)
		}
		row, err := newMatrixRow(c, port, k)
		if err != nil {
			return rows, err
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// kernelBindCase runs case c on port with real sockets and returns the
// second socket's outcome.
func kernelBindCase(c MatrixCase, port uint16) (MatrixOutcome, error) {
	var fds matrixFDs
	defer fds.closeAll()
	first, second := c.Addrs.Addrs()
	ffd, err := kernelFirstSocket(&fds, c, netip.AddrPortFrom(first, port))
	if err != nil {
		return MatrixOutcome{}, fmt.Errorf("first socket: %w", err)
	}
	fd, err := fds.socket(c.Second)
	if err != nil {
		return MatrixOutcome{}, fmt.Errorf("second socket: %w", err)
	}
	if err := unix.Bind(fd, matrixSockaddr(netip.AddrPortFrom(second, port))); err != nil {
		return matrixFailure(StepBind, err)
	}
	if c.Action == SecondBind {
		return MatrixOutcome{}, nil
	}
	if c.State == FirstListenLater {
		if err := unix.Listen(ffd, matrixBacklog); err != nil {
			return MatrixOutcome{}, fmt.Errorf("first socket: listen: %w", err)
		}
	}
	if err := unix.Listen(fd, matrixBacklog); err != nil {
		return matrixFailure(StepListen, err)
	}
	return MatrixOutcome{}, nil
}

// matrixFailure is the outcome of the second socket's call step failing
// with err.
func matrixFailure(step MatrixStep, err error) (MatrixOutcome, error) {
	var en unix.Errno
	if errors.As(err, &en) {
		if e, ok := matrixErrnos[en]; ok {
			return MatrixOutcome{Errno: e, Step: step}, nil
		}
	}
	return MatrixOutcome{}, fmt.Errorf("second socket: %v: %w (no alloc.Errno for it)", step, err)
}

// matrixErrnos translates the kernel's errnos to the model's.
var matrixErrnos = map[unix.Errno]alloc.Errno{
	unix.EADDRNOTAVAIL: alloc.EADDRNOTAVAIL,
	unix.EADDRINUSE:    alloc.EADDRINUSE,
	unix.EAGAIN:        alloc.EAGAIN,
	unix.EACCES:        alloc.EACCES,
	unix.ECONNREFUSED:  alloc.ECONNREFUSED,
	unix.ETIMEDOUT:     alloc.ETIMEDOUT,
}

// kernelFirstSocket creates case c's first socket on local, brings it to
// c.State (FirstListenLater: bound; see FirstState) and returns its
// descriptor, which is closed already in the TIME_WAIT states.
func kernelFirstSocket(fds *matrixFDs, c MatrixCase, local netip.AddrPort) (int, error) {
	fd, err := fds.socket(c.First)
	if err != nil {
		return -1, err
	}
	if err := unix.Bind(fd, matrixSockaddr(local)); err != nil {
		return -1, fmt.Errorf("bind %v: %w (is the network namespace fresh?)", local, err)
	}
	switch c.State {
	case FirstListen, FirstTimeWaitAccepted:
		if err := unix.Listen(fd, matrixBacklog); err != nil {
			return -1, fmt.Errorf("listen on %v: %w", local, err)
		}
		if c.State == FirstListen {
			return fd, nil
		}
		target := netip.AddrPortFrom(matrixLo1, local.Port())
		peer, err := fds.socket(MatrixOpts{})
		if err != nil {
			return -1, err
		}
		if err := matrixConnect(peer, matrixSockaddr(target)); err != nil {
			return -1, fmt.Errorf("peer connect to %v: %w", target, err)
		}
		child, err := fds.accept(fd)
		if err != nil {
			return -1, err
		}
		if err := activeClose(fds, child, peer, target); err != nil {
			return -1, err
		}
		return -1, fds.close(fd)
	case FirstTimeWaitConnected:
		target, err := peerListener(fds)
		if err != nil {
			return -1, err
		}
		if err := matrixConnect(fd, matrixSockaddr(target.addr)); err != nil {
			return -1, fmt.Errorf("connect %v to %v: %w", local, target.addr, err)
		}
		peer, err := fds.accept(target.fd)
		if err != nil {
			return -1, err
		}
		return -1, activeClose(fds, fd, peer, netip.AddrPortFrom(matrixLo1, local.Port()))
	}
	return fd, nil
}

// matrixListener is a listening socket and its address.
type matrixListener struct {
	fd   int
	addr netip.AddrPort
}

// peerListener opens the listener a FirstTimeWaitConnected socket connects
// to, on 127.0.0.1 and a port the kernel picks from the ephemeral range
// (outside the matrix band).
func peerListener(fds *matrixFDs) (matrixListener, error) {
	fd, err := fds.socket(MatrixOpts{})
	if err != nil {
		return matrixListener{}, err
	}
	if err := unix.Bind(fd, matrixSockaddr(netip.AddrPortFrom(matrixLo1, 0))); err != nil {
		return matrixListener{}, fmt.Errorf("peer bind: %w", err)
	}
	if err := unix.Listen(fd, matrixBacklog); err != nil {
		return matrixListener{}, fmt.Errorf("peer listen: %w", err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return matrixListener{}, fmt.Errorf("peer getsockname: %w", err)
	}
	in4, ok := sa.(*unix.SockaddrInet4)
	if !ok {
		return matrixListener{}, fmt.Errorf("peer getsockname: %T is not IPv4", sa)
	}
	return matrixListener{fd, netip.AddrPortFrom(matrixLo1, uint16(in4.Port))}, nil
}

// activeClose closes connected socket closer first, reads the FIN at its
// peer, closes the peer and waits until closer's port is in TIME_WAIT on
// local (tcp_time_wait on the FIN_WAIT2 socket when the peer's FIN
// arrives).
func activeClose(fds *matrixFDs, closer, peer int, local netip.AddrPort) error {
	if err := fds.close(closer); err != nil {
		return err
	}
	var buf [1]byte
	n, err := unix.Read(peer, buf[:])
	switch {
	case err != nil:
		return fmt.Errorf("peer of %v waiting for the FIN: %w", local, err)
	case n != 0:
		return fmt.Errorf("peer of %v read %d bytes instead of the FIN", local, n)
	}
	if err := fds.close(peer); err != nil {
		return err
	}
	return waitTimeWait(local)
}

// waitTimeWait polls sock_diag (netlink.SocketDiagTCP, inet_diag_dump)
// until a TCP socket on local is in TIME_WAIT, for at most matrixTimeout.
func waitTimeWait(local netip.AddrPort) error {
	deadline := time.Now().Add(matrixTimeout)
	for {
		socks, err := netlink.SocketDiagTCP(unix.AF_INET)
		if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
			return fmt.Errorf("sock_diag: %w", err)
		}
		for _, s := range socks {
			a, ok := netip.AddrFromSlice(s.ID.Source)
			if ok && s.State == netlink.TCP_TIME_WAIT && netip.AddrPortFrom(a.Unmap(), s.ID.SourcePort) == local {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no TIME_WAIT socket on %v after %v", local, matrixTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// matrixSockaddr is ap as a sockaddr_in.
func matrixSockaddr(ap netip.AddrPort) *unix.SockaddrInet4 {
	return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
}

// matrixFDs are the descriptors one case has open.
type matrixFDs []int

// socket opens a TCP socket with options o and matrixTimeout on its
// blocking calls.
func (f *matrixFDs) socket(o MatrixOpts) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		return -1, fmt.Errorf("socket: %w", err)
	}
	*f = append(*f, fd)
	for _, opt := range [...]struct {
		on   bool
		opt  int
		name string
	}{{o.ReuseAddr, unix.SO_REUSEADDR, "SO_REUSEADDR"}, {o.ReusePort, unix.SO_REUSEPORT, "SO_REUSEPORT"}} {
		if !opt.on {
			continue
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, opt.opt, 1); err != nil {
			return -1, fmt.Errorf("setsockopt %s: %w", opt.name, err)
		}
	}
	return fd, setMatrixTimeouts(fd)
}

// matrixConnect is connect(2) that survives a signal: the Go runtime's
// preemption signal (SIGURG) can interrupt a connect() that has a send
// timeout (SO_SNDTIMEO, so it is not restarted), and the handshake then
// goes on without the caller (inet_stream_connect returns EINTR with the
// socket in SYN_SENT). Wait for it to finish and return its outcome.
func matrixConnect(fd int, sa unix.Sockaddr) error {
	err := unix.Connect(fd, sa)
	if err != unix.EINTR && err != unix.EALREADY {
		return err
	}
	p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
	for {
		n, err := unix.Poll(p, 2000)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return unix.ETIMEDOUT
		}
		if e, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR); err != nil {
			return err
		} else if e != 0 {
			return unix.Errno(e)
		}
		return nil
	}
}

// accept accepts the pending connection of listener l.
func (f *matrixFDs) accept(l int) (int, error) {
	fd, _, err := unix.Accept4(l, unix.SOCK_CLOEXEC)
	for err == unix.EINTR {
		fd, _, err = unix.Accept4(l, unix.SOCK_CLOEXEC)
	}
	if err != nil {
		return -1, fmt.Errorf("accept: %w", err)
	}
	*f = append(*f, fd)
	return fd, setMatrixTimeouts(fd)
}

// close closes fd now and forgets it.
func (f *matrixFDs) close(fd int) error {
	for i, g := range *f {
		if g == fd {
			*f = append((*f)[:i], (*f)[i+1:]...)
			break
		}
	}
	if err := unix.Close(fd); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	return nil
}

// closeAll closes every descriptor still open.
func (f *matrixFDs) closeAll() {
	for _, fd := range *f {
		_ = unix.Close(fd) // nothing to do about a failure at clean-up
	}
	*f = nil
}

// setMatrixTimeouts bounds connect(), accept() and read() on fd by
// matrixTimeout.
func setMatrixTimeouts(fd int) error {
	tv := unix.NsecToTimeval(matrixTimeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fmt.Errorf("setsockopt SO_RCVTIMEO: %w", err)
	}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv); err != nil {
		return fmt.Errorf("setsockopt SO_SNDTIMEO: %w", err)
	}
	return nil
}
