//go:build linux

package realsock

import (
	"fmt"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/portsim/portsim/scenarios"
)

// open makes one client socket of wk toward dst along the workload's
// socket path and returns its fd (-1 when socket() itself failed), its local
// address once the kernel chose a port, and the error of the call that
// failed. Sockets are blocking: on loopback connect() returns as soon as
// the handshake is done.
func open(wk *work, dst netip.AddrPort) (int, netip.AddrPort, error) {
	w := wk.w
	typ := unix.SOCK_STREAM
	if w.Socket.UDP() {
		typ = unix.SOCK_DGRAM
	}
	fam := family(dst.Addr())
	fd, err := unix.Socket(fam, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, netip.AddrPort{}, fmt.Errorf("socket: %w", err)
	}
	if err := setOptions(fd, wk); err != nil {
		return fd, netip.AddrPort{}, err
	}
	switch {
	case w.Socket == scenarios.BindConnect:
		// bind(addr, 0): the port is taken here (inet_csk_get_port).
		if err := unix.Bind(fd, sockaddr(netip.AddrPortFrom(w.Source, 0))); err != nil {
			return fd, netip.AddrPort{}, err
		}
	case w.Socket == scenarios.BindNoPort || wk.bindSource:
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1); err != nil {
			return fd, netip.AddrPort{}, fmt.Errorf("IP_BIND_ADDRESS_NO_PORT: %w", err)
		}
		if err := unix.Bind(fd, sockaddr(netip.AddrPortFrom(w.Source, 0))); err != nil {
			return fd, netip.AddrPort{}, err
		}
	}
	if w.Socket == scenarios.UDPSendto {
		// sendto() on an unbound socket autobinds it (udp_lib_get_port).
		err = unix.Sendto(fd, []byte{0}, 0, sockaddr(dst))
	} else {
		err = unix.Connect(fd, sockaddr(dst))
	}
	local := localAddr(fd)
	return fd, local, err
}

// setOptions sets the workload's socket options before any bind/connect.
func setOptions(fd int, wk *work) error {
	o := wk.w.Options
	if o.ReuseAddr {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			return fmt.Errorf("SO_REUSEADDR: %w", err)
		}
	}
	if o.ReusePort {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
			return fmt.Errorf("SO_REUSEPORT: %w", err)
		}
	}
	if wk.portRange.Low != 0 {
		// IP_LOCAL_PORT_RANGE packs the range as high<<16 | low (Linux
		// 6.3, inet_sk_get_local_port_range); it is an IPPROTO_IP option
		// for IPv6 sockets too.
		v := int(wk.portRange.High)<<16 | int(wk.portRange.Low)
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_LOCAL_PORT_RANGE, v); err != nil {
			return fmt.Errorf("IP_LOCAL_PORT_RANGE (Linux 6.3+): %w", err)
		}
	}
	return nil
}

// family is the socket family of a.
func family(a netip.Addr) int {
	if a.Unmap().Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

// sockaddr converts ap to the unix package's socket address.
func sockaddr(ap netip.AddrPort) unix.Sockaddr {
	a := ap.Addr().Unmap()
	if a.Is4() {
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: a.As4()}
	}
	return &unix.SockaddrInet6{Port: int(ap.Port()), Addr: a.As16()}
}

// fromSockaddr converts back; the zero AddrPort for other families.
func fromSockaddr(sa unix.Sockaddr) netip.AddrPort {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), uint16(sa.Port))
	}
	return netip.AddrPort{}
}

// localAddr is getsockname(fd); the zero AddrPort when it fails.
func localAddr(fd int) netip.AddrPort {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return netip.AddrPort{}
	}
	return fromSockaddr(sa)
}

// peerKey names one connection from both ends.
type peerKey struct {
	client, server netip.AddrPort
}

// peers holds the server ends of the connections, accepted by the listener
// goroutines, until the schedule closes them.
type peers struct {
	mu      sync.Mutex
	fds     map[peerKey]int
	pending map[peerKey]bool // closed before it was accepted: close on accept
	closed  bool
}

func newPeers() *peers {
	return &peers{fds: map[peerKey]int{}, pending: map[peerKey]bool{}}
}

// accepted files a new server end; it is closed at once if the schedule
// already asked for it, or if the run is over.
func (p *peers) accepted(k peerKey, fd int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.pending[k] {
		delete(p.pending, k)
		unix.Close(fd)
		return
	}
	p.fds[k] = fd
}

// close closes the server end of k. When afterFin is set the client has
// closed first, and the server end waits until it has read the client's FIN
// so that its own close is a passive close. A connection not yet accepted
// (the accept goroutine is a few microseconds behind) is waited for up to
// 200 ms, then closed when it is accepted.
func (p *peers) close(k peerKey, afterFin bool) {
	fd, ok := p.take(k)
	for deadline := time.Now().Add(200 * time.Millisecond); !ok && time.Now().Before(deadline); {
		time.Sleep(100 * time.Microsecond)
		fd, ok = p.take(k)
	}
	if !ok {
		p.mu.Lock()
		p.pending[k] = true
		p.mu.Unlock()
		return
	}
	if afterFin {
		waitHangup(fd)
	}
	unix.Close(fd)
}

func (p *peers) take(k peerKey) (int, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fd, ok := p.fds[k]
	if ok {
		delete(p.fds, k)
	}
	return fd, ok
}

// closeAll closes every server end still open and every one accepted from
// now on.
func (p *peers) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for k, fd := range p.fds {
		unix.Close(fd)
		delete(p.fds, k)
	}
}

// listen opens the listening side of every TCP destination of the host's
// workloads (the scenario's server where one listens there: its listener
// count and options; otherwise one listener with SO_REUSEADDR) and a UDP
// socket on every UDP destination, so that datagrams are not answered with
// ICMP port unreachable.
func (r *runner) listen() error {
	tcp, udp := map[netip.AddrPort]bool{}, map[netip.AddrPort]bool{}
	for _, wk := range r.works {
		for _, d := range wk.w.To {
			if wk.w.Socket.UDP() {
				udp[d] = true
			} else {
				tcp[d] = true
			}
		}
	}
	for d := range udp {
		fd, err := unix.Socket(family(d.Addr()), unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("UDP socket for %v: %w", d, err)
		}
		r.closers = append(r.closers, func() { unix.Close(fd) })
		if err := unix.Bind(fd, sockaddr(d)); err != nil {
			return fmt.Errorf("bind UDP %v: %w", d, err)
		}
	}
	for d := range tcp {
		listen, n, opts := d, 1, scenarios.SockOptions{ReuseAddr: true}
		if sv := r.serverAt(d); sv != nil {
			listen, n, opts = sv.Listen, sv.Listeners, sv.Options
		}
		for range n {
			if err := r.listener(listen, opts); err != nil {
				return fmt.Errorf("listener on %v: %w", listen, err)
			}
		}
	}
	return nil
}

// serverAt returns the scenario's server that accepts connections to d.
func (r *runner) serverAt(d netip.AddrPort) *scenarios.Server {
	for i := range r.s.Servers {
		sv := &r.s.Servers[i]
		if sv.Listen.Port() == d.Port() && (sv.Listen.Addr() == d.Addr() || sv.Listen.Addr().IsUnspecified()) {
			return sv
		}
	}
	return nil
}

// listener binds and listens on addr and accepts on a goroutine until the
// run's teardown shuts it down (shutdown(2) wakes a blocked accept4 with
// EINVAL).
func (r *runner) listener(addr netip.AddrPort, o scenarios.SockOptions) error {
	fd, err := unix.Socket(family(addr.Addr()), unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	done := make(chan struct{})
	r.closers = append(r.closers, func() {
		unix.Shutdown(fd, unix.SHUT_RDWR)
		<-done
		unix.Close(fd)
	})
	if o.ReuseAddr {
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	}
	if o.ReusePort {
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	}
	if err := unix.Bind(fd, sockaddr(addr)); err != nil {
		close(done)
		return err
	}
	// The backlog is capped by net.core.somaxconn (4096 since Linux 5.4).
	if err := unix.Listen(fd, 4096); err != nil {
		close(done)
		return err
	}
	go func() {
		defer close(done)
		for {
			nfd, sa, err := unix.Accept4(fd, unix.SOCK_CLOEXEC)
			switch err {
			case nil:
				r.peers.accepted(peerKey{client: fromSockaddr(sa), server: localAddr(nfd)}, nfd)
			case unix.EINTR, unix.ECONNABORTED:
			default:
				return
			}
		}
	}()
	return nil
}
