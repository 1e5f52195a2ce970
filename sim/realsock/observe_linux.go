//go:build linux

package realsock

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/portsim/portsim/scenarios"
	"github.com/portsim/portsim/sim"
)

// observer counts a host's client sockets by state from the kernel's socket
// tables (netlink sock_diag, SOCK_DIAG_BY_FAMILY; vishvananda/netlink
// dumps every state and is filtered here) and attributes them to the
// simulator's conflict domains.
type observer struct {
	families []uint8 // AF_INET and/or AF_INET6
	tcp, udp bool
	// servers are the listening ends (TCP destinations, UDP sinks): a
	// socket whose local address is one of them is not a client's.
	servers map[netip.AddrPort]bool
	sources map[netip.Addr]bool // the host's addresses
	// tcpDom maps a client socket's (local address, destination) to its
	// domain; udpDom maps a UDP socket's local address (UDP autobind
	// domains have no destination).
	tcpDom map[[2]string]int
	udpDom map[string]int
	// udpAny is the domain of the sendto() sockets, which are bound to
	// the wildcard address and counted under udpAnyAddr; -1 if none.
	udpAny     int
	udpAnyAddr netip.Addr
	// running figures over the samples, per domain and for the host
	peakTW, peakInUse         []int
	sumInUse                  []float64
	hostPeakTW, hostPeakPorts int
}

// snapshot is one sample: the host's row and one row per domain.
type snapshot struct {
	row     sim.Row
	doms    []sim.DomainRow
	inUse   []int // ports held per domain
	portsIn int
}

func newObserver(s *scenarios.Scenario, host int, res *sim.Result, domOf [][]int) (*observer, error) {
	o := &observer{
		servers: map[netip.AddrPort]bool{},
		sources: map[netip.Addr]bool{},
		tcpDom:  map[[2]string]int{},
		udpDom:  map[string]int{},
		udpAny:  -1,
	}
	n := len(res.Summary.Domains)
	o.peakTW, o.peakInUse, o.sumInUse = make([]int, n), make([]int, n), make([]float64, n)
	for _, a := range s.Hosts[host].Addresses {
		o.sources[a] = true
	}
	fams := map[int]bool{}
	for i := range s.Workloads {
		w := &s.Workloads[i]
		if w.From != host {
			continue
		}
		for j, d := range w.To {
			o.servers[d] = true
			fams[family(d.Addr())] = true
			ds := res.Summary.Domains[domOf[i][j]]
			if w.Socket.UDP() {
				o.udp = true
				o.udpDom[ds.Local] = domOf[i][j]
				if w.Socket == scenarios.UDPSendto {
					o.udpAny, o.udpAnyAddr = domOf[i][j], w.Source
				}
			} else {
				o.tcp = true
				o.tcpDom[[2]string{ds.Local, d.String()}] = domOf[i][j]
			}
		}
	}
	for _, f := range []int{unix.AF_INET, unix.AF_INET6} {
		if fams[f] {
			o.families = append(o.families, uint8(f))
		}
	}
	return o, nil
}

// snapshot dumps the socket tables and counts the host's client sockets.
func (o *observer) snapshot() (*snapshot, error) {
	n := len(o.peakTW)
	sn := &snapshot{doms: make([]sim.DomainRow, n), inUse: make([]int, n)}
	ports := map[netip.AddrPort]bool{}
	for _, fam := range o.families {
		if o.tcp {
			socks, err := netlink.SocketDiagTCP(fam)
			if err != nil {
				return nil, fmt.Errorf("sock_diag TCP: %w", err)
			}
			held := map[netip.AddrPort]bool{}
			for _, sk := range socks {
				local, remote := addrPort(sk.ID.Source, sk.ID.SourcePort), addrPort(sk.ID.Destination, sk.ID.DestinationPort)
				if !o.sources[local.Addr()] || o.servers[local] || !o.servers[remote] {
					continue
				}
				o.count(sn, sk.State)
				held[local] = true
				if gi, ok := o.tcpDom[[2]string{local.Addr().String(), remote.String()}]; ok {
					countDomain(&sn.doms[gi], sk.State)
					sn.inUse[gi]++
				}
			}
			for p := range held {
				ports[p] = true
			}
		}
		if o.udp {
			socks, err := netlink.SocketDiagUDP(fam)
			if err != nil {
				return nil, fmt.Errorf("sock_diag UDP: %w", err)
			}
			for _, sk := range socks {
				local := addrPort(sk.ID.Source, sk.ID.SourcePort)
				if local.Addr().IsUnspecified() && o.udpAny >= 0 {
					// sendto() autobinds the port on the
					// wildcard address (inet_autobind).
					local = netip.AddrPortFrom(o.udpAnyAddr, local.Port())
				}
				if !o.sources[local.Addr()] || o.servers[local] {
					continue
				}
				// A UDP socket is open from autobind to close();
				// the simulator counts it as ESTABLISHED.
				sn.row.Established++
				sn.portsIn++
				if gi, ok := o.udpDom[local.Addr().String()]; ok {
					sn.doms[gi].Established++
					sn.inUse[gi]++
				}
			}
		}
	}
	sn.portsIn += len(ports)
	sn.row.PortsInUse = sn.portsIn
	return sn, nil
}

// count adds one TCP socket in state st to the host's row.
func (o *observer) count(sn *snapshot, st uint8) {
	switch st {
	case netlink.TCP_SYN_SENT:
		sn.row.SynSent++
	case netlink.TCP_ESTABLISHED:
		sn.row.Established++
	case netlink.TCP_TIME_WAIT:
		sn.row.TimeWait++
	case netlink.TCP_FIN_WAIT1, netlink.TCP_FIN_WAIT2, netlink.TCP_CLOSE_WAIT, netlink.TCP_LAST_ACK, netlink.TCP_CLOSING:
		sn.row.Closing++
	}
}

// countDomain adds one TCP socket in state st to a domain's row.
func countDomain(r *sim.DomainRow, st uint8) {
	switch st {
	case netlink.TCP_ESTABLISHED:
		r.Established++
	case netlink.TCP_TIME_WAIT:
		r.TimeWait++
	default:
		r.Other++
	}
}

// accumulate folds a sample into the running peaks and sums.
func (o *observer) accumulate(sn *snapshot) {
	for i, dr := range sn.doms {
		o.peakTW[i] = max(o.peakTW[i], dr.TimeWait)
		o.peakInUse[i] = max(o.peakInUse[i], sn.inUse[i])
		o.sumInUse[i] += float64(sn.inUse[i])
	}
	o.hostPeakTW = max(o.hostPeakTW, sn.row.TimeWait)
	o.hostPeakPorts = max(o.hostPeakPorts, sn.row.PortsInUse)
}

// addrPort converts a sock_diag address (IPv4 as 4 or 16 bytes) and port.
func addrPort(ip net.IP, port uint16) netip.AddrPort {
	a, _ := netip.AddrFromSlice(ip)
	return netip.AddrPortFrom(a.Unmap(), port)
}
