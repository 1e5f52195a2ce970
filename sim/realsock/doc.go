// Package realsock runs a scenario on real sockets in the Linux kernel, in
// real time, and observes it into the simulator's Result schema, so that
// `portsim crosscheck` can put the kernel's numbers beside the model's.
//
// Isolation. As root, every host of the scenario runs in a child process
// started in a fresh network namespace (clone(2) with CLONE_NEWNET, as
// `unshare -n` does): loopback is brought up there and the host's profile
// is written to that namespace's net.ipv4 sysctls, which are per namespace
// (ip_local_port_range, ip_local_reserved_ports, tcp_tw_reuse,
// tcp_tw_reuse_delay, tcp_max_tw_buckets, tcp_timestamps,
// ip_autobind_reuse, tcp_fin_timeout, ip_unprivileged_port_start). The
// child refuses to write a sysctl unless its namespace differs from its
// parent's, so the machine's own namespace is never modified. Without root
// the run falls back to the host's loopback, narrowing every socket's range
// with IP_LOCAL_PORT_RANGE (Linux 6.3+), and reports the settings it could
// not apply.
//
// Execution. Each workload follows the simulator's own timeline
// (sim.Timeline: the same attempt times, holding times and close sides) on
// the wall clock: socket paths through golang.org/x/sys/unix (connect,
// bind(addr, 0) then connect, IP_BIND_ADDRESS_NO_PORT, IP_LOCAL_PORT_RANGE,
// UDP connect and sendto), socket options (SO_REUSEADDR, SO_REUSEPORT,
// SO_LINGER 0), and close sides (client first, server first, RST). Every
// destination gets a listener on its 127.0.0.0/8 or ::1 address (the
// scenario's server where one is defined), whose accepted sockets close as
// the workload says. Traffic never leaves loopback.
//
// Observation. Attempts, successes, failures by errno and the ports chosen
// are counted at each attempt; sockets by state are counted from the
// kernel's socket tables through netlink sock_diag (vishvananda/netlink) at
// every sample time of the scenario, and attributed to the simulator's
// conflict domains (sim.Skeleton), so both Results line up row by row.
//
// Elsewhere than Linux every entry point returns ErrNeedsLinux.
package realsock
