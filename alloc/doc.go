// Package alloc is the core of portsim: it decides which local (ephemeral)
// port a socket call gets, and whether it gets one at all.
//
// The package knows nothing about the event engine, clocks or sockets. An
// allocator sees only a Range (the ephemeral range, as in Linux's
// net.ipv4.ip_local_port_range or BSD's net.inet.ip.portrange.first/last), a
// Busy view saying which ports this one request may not take, and, for
// randomized allocators, a caller-supplied seeded random stream. That keeps
// runs deterministic: the same seed and the same sequence of busy views give
// the same ports.
//
// Ports are plain ints everywhere inside the package (the Range fields are
// uint16 only because that is the wire width). Arithmetic such as High+1 or
// start-1 is done in int so nothing silently wraps at 65535 or 0.
//
// Cost model. Near exhaustion a real kernel spends most of its time walking
// over busy ports; Result.Probes reports how many candidate ports the
// algorithm examined so the simulator can report that cost. The Go
// implementation itself never walks port by port: PortSet and Union scan 64
// ports per machine word, so an allocation costs O(range/64) word operations
// in the worst case and does not allocate memory.
//
// Teaching trace. Every allocator also implements Explainer: after an
// Allocate, Explain returns one line saying how the port was chosen in the
// algorithm's own terms, e.g. "__inet_hash_connect (5.18+): table_perturb[4711]
// + hash offset → offset 7344 of 28232, start 40112; even pass, 3 candidates
// probed → 40116; table_perturb[4711] += 6" (portsim trace prints it).
// Allocate only stores a few scalars for it; the string is built when Explain
// is called, so a run that does not trace pays nothing.
//
// Sources: the reference sheet os-semantics.md (§1.2 RFC 6056 algorithms
// and NetBSD portalgo.c; §2 Linux __inet_hash_connect by kernel era and
// secure_ipv4_port_ephemeral; §2.6 ip_local_reserved_ports; §2.8
// IP_LOCAL_PORT_RANGE; §3.2 inet_csk_find_open_port; §3.6 udp_lib_get_port;
// §5.1-5.2 FreeBSD in_pcb_lport_dest and ipport_tick; §6.1 XNU in_pcbbind;
// §8.1 gVisor PickEphemeralPort; §8.2 ns-3
// Ipv4EndPointDemux::AllocateEphemeralPort). Each allocator's doc comment
// names the function and version it follows.
package alloc
