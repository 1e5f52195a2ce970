package tcpstate

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portsim/portsim/alloc"
)

// Profile describes an operating system's TCP client behaviour as parameters:
// the ephemeral range, reserved ports, TIME_WAIT length, whether connect()
// shares a local port across destinations, which allocator connect() uses,
// and the Linux sysctls that matter for port exhaustion.
//
// Profiles are values: a scenario copies a preset and applies its sysctls to
// the copy. Sources for every preset are in os-semantics.md §9 (parameter
// sheet) and named on each preset below.
type Profile struct {
	// Name is the preset name ("linux", "windows", "macos", "freebsd",
	// "ns3", "host").
	Name string
	// PortRange is the ephemeral range, inclusive
	// (net.ipv4.ip_local_port_range on Linux; portrange.first/last on BSD;
	// netsh dynamicport on Windows).
	PortRange alloc.Range
	// Reserved holds ports automatic assignment skips
	// (net.ipv4.ip_local_reserved_ports, Linux only).
	Reserved alloc.PortSet
	// TimeWait is how long the active closer keeps the 4-tuple in TIME_WAIT.
	TimeWait time.Duration
	// TimeWaitFixed reports that the real stack has no knob for TimeWait
	// (Linux TCP_TIMEWAIT_LEN is a compile-time 60 s), so a scenario that
	// changes it describes a hypothetical system.
	TimeWaitFixed bool
	// NoLocalTimeWait reports that an active close toward a local peer (one
	// of the host's own addresses, 127.0.0.1 or ::1) skips TIME_WAIT: FreeBSD
	// net.inet.tcp.nolocaltimewait, default 1 since 14.0 (tcp_twstart;
	// os-semantics.md §5.4). The Table can tell only on hosts whose
	// connect() shares ports, where a domain knows its peer; FreeBSD is one.
	NoLocalTimeWait bool
	// ConnectSharesPort reports whether connect() without bind() may reuse a
	// local port that is already in use toward another destination as long
	// as the 4-tuple is unique (Linux __inet_hash_connect, FreeBSD
	// in_pcb_lport_dest: yes; XNU in_pcbbind, Windows by default, ns-3
	// Ipv4EndPointDemux::LookupPortLocal: no, and then the port is taken on
	// every local address of the family, see Table).
	ConnectSharesPort bool
	// Family is the stack the preset models: "linux", "freebsd", "macos",
	// "windows", "ns3" or "gvisor". Linux-only sysctls need "linux".
	Family string
	// Allocator names the alloc package algorithm connect() on an unbound
	// socket uses; BindAllocator the one bind(addr, 0) uses; UDPAllocator
	// the one UDP autobind (connect()/sendto() on an unbound datagram
	// socket) uses. A scenario may override Allocator to compare
	// algorithms on the same stack.
	Allocator     string
	BindAllocator string
	UDPAllocator  string
	// FirstPort is the sequential allocator's first candidate (alloc.Config
	// First); 0 means PortRange.Low. ns-3 pre-increments a counter that
	// starts at the range's low end, so its first port is Low+1 (49153);
	// changing the range with SetSysctl keeps FirstPort at the same offset
	// from Low (wrapping to Low in a one-port range).
	FirstPort int
	// TCPTwReuse is net.ipv4.tcp_tw_reuse: 0 off, 1 global, 2 loopback only
	// (Linux default since 4.19, ip-sysctl.rst).
	TCPTwReuse int
	// TCPTwReuseDelay is net.ipv4.tcp_tw_reuse_delay: how long after a
	// socket entered TIME_WAIT connect() may take its 4-tuple over
	// (tcp_twsk_unique: now > tw_entry_stamp + delay). Linux 6.14 made it a
	// sysctl in milliseconds, default 1000; before, the test was on whole
	// seconds of the peer timestamp, an effective delay in (0, 1] s, which
	// the 1 s default stands for (os-semantics.md §4.5).
	TCPTwReuseDelay time.Duration
	// TCPFinTimeout is how long an orphaned socket (closed by the
	// application) waits in FIN_WAIT_2 for the peer's FIN before it is
	// dropped without TIME_WAIT: Linux net.ipv4.tcp_fin_timeout (default
	// 60 s; the socket lives on as a FIN_WAIT2-substate minisock holding
	// its port, tcp_close / tcp_time_wait, os-semantics.md §4.4), FreeBSD
	// and XNU net.inet.tcp.finwait2_timeout (60 s), Windows
	// TcpFinWait2Delay [U].
	TCPFinTimeout time.Duration
	// UnprivilegedPortStart is the first port bind() may take without
	// privilege: net.ipv4.ip_unprivileged_port_start on Linux (default
	// 1024, since 4.11), IPPORT_RESERVED (1024) on BSD and XNU; 0 where
	// any port may be bound (Windows, ns-3). Below it bind() fails with
	// EACCES unless the host is privileged (os-semantics.md §3.7).
	UnprivilegedPortStart int
	// AutobindReuse is net.ipv4.ip_autobind_reuse (Linux 5.9+, default 0):
	// when bind(0) finds no free port it tries again allowing ports held
	// only by non-listening SO_REUSEADDR sockets (inet_csk_find_open_port).
	AutobindReuse bool
	// TCPTimestamps is net.ipv4.tcp_timestamps != 0 (RFC 7323); TIME_WAIT
	// reuse needs the peer's timestamps.
	TCPTimestamps bool
	// TCPMaxTwBuckets is net.ipv4.tcp_max_tw_buckets, a count of sockets:
	// once this many sockets are in TIME_WAIT a closing socket skips
	// TIME_WAIT (inet_twsk_alloc returns NULL, tcp_time_wait calls
	// tcp_done), so 0 means no TIME_WAIT at all, as in the kernel. NoTwCap
	// (-1) means no cap (the other stacks); SetSysctl refuses negative
	// values, which the kernel reads as "no TIME_WAIT", like 0.
	TCPMaxTwBuckets int
	// SynRetries is how many times connect() retransmits an unanswered
	// SYN before it fails with ETIMEDOUT, and SynRTO the wait before the
	// first retransmission, doubled after each; after the last one the
	// stack waits one more doubled interval (Linux: net.ipv4.tcp_syn_retries
	// default 6 (TCP_SYN_RETRIES) and TCP_TIMEOUT_INIT 1 s, RFC 6298 §2.1:
	// 1+2+...+64 = 127 s; Windows: TcpMaxConnectRetransmissions 2 and
	// TcpInitialRTT 3 s: 3+6+12 = 21 s). A SYN a NAT drops is retransmitted
	// this way.
	SynRetries int
	SynRTO     time.Duration
	// Source names where the preset's numbers come from.
	Source string
}

// SynRTOMax caps each wait between SYN retransmissions: Linux TCP_RTO_MAX
// (120 s, include/net/tcp.h; tcp_model_timeout sums the capped waits),
// and the 120 s limit Windows applies.
const SynRTOMax = 120 * time.Second

// SynTimeout returns when, after the first SYN, retransmission k (1-based)
// is sent: the sum of the first k waits, SynRTO doubled after each and
// capped at SynRTOMax. k = SynRetries+1 is when connect() gives up with
// ETIMEDOUT.
func (p *Profile) SynTimeout(k int) time.Duration {
	var t time.Duration
	w := min(p.SynRTO, SynRTOMax)
	for range k {
		t += w
		w = min(2*w, SynRTOMax) // capped before it could overflow
	}
	return t
}

// dynamicPorts is the IANA dynamic/private port range of RFC 6335 §6,
// 49152-65535, the default ephemeral range of Windows Vista and later, XNU
// (portrange.first/last) and ns-3 (os-semantics.md §9).
var dynamicPorts = alloc.Range{Low: 49152, High: 65535}

// Linux defaults (os-semantics.md §2.9, §4): range 32768-60999 since 4.2
// (inet_init_net), TIME_WAIT 60 s (include/net/tcp.h TCP_TIMEWAIT_LEN),
// tcp_tw_reuse 2, tcp_timestamps 1. tcp_max_tw_buckets defaults to half the
// established-hash size, which depends on memory; 131072 is the value seen
// on a 24 GiB machine running 6.18.
//
// connect() follows __inet_hash_connect of the preset's kernel era
// (§2.3-2.4): "linux" is 5.18 and later (Algorithm 4 with a 2^16 perturbation
// table, 10-second rekeying and random increments), "linux-5.15" the
// 5.12-5.17 mainline releases (256-entry table), "linux-5.10" and
// "linux-4.19" the Algorithm 3 selector with one global hint (mainline before
// 5.12; the May-2022 fixes were backported to those stable series, so a
// current 5.10.y kernel behaves like "linux"). bind(0) follows
// inet_csk_find_open_port and UDP autobind udp_lib_get_port in every era.
var presets = map[string]Profile{
	"linux":      linuxEra("linux", alloc.NameLinux, "Linux 5.18+: inet_init_net, __inet_hash_connect, TCP_TIMEWAIT_LEN, ip-sysctl.rst"),
	"linux-5.15": linuxEra("linux-5.15", alloc.NameLinuxAlg4, "Linux 5.12-5.17: __inet_hash_connect with table_perturb[256] (commit 190cc82489f4)"),
	"linux-5.10": linuxEra("linux-5.10", alloc.NameLinuxAlg3, "Linux before 5.12: __inet_hash_connect with one global hint (RFC 6056 Algorithm 3)"),
	"linux-4.19": linuxEra("linux-4.19", alloc.NameLinuxAlg3, "Linux before 5.12: __inet_hash_connect with one global hint (RFC 6056 Algorithm 3)"),
	// Windows Vista/2008 and later (os-semantics.md §6.2): dynamic range
	// 49152-65535 (troubleshoot-tcpip-port-exhaust.md), one wildcard-port
	// pool across local addresses, TcpTimedWaitDelay documented default
	// 240 s (range 30-300 s; the Server 2003 page says 120 s, §10 item 12),
	// outbound sockets do not share a local port unless
	// SO_REUSE_UNICASTPORT is set. The allocation order is not documented
	// [U]; SO_RANDOMIZE_PORT existing suggests the default is not random,
	// so the preset is sequential. The early TIME_WAIT release when TCBs
	// run out is not modelled (no cap).
	"windows": {
		Name:              "windows",
		PortRange:         dynamicPorts,
		TimeWait:          240 * time.Second,
		TCPFinTimeout:     240 * time.Second,
		ConnectSharesPort: false,
		Family:            "windows",
		Allocator:         alloc.NameSequential,
		BindAllocator:     alloc.NameSequential,
		UDPAllocator:      alloc.NameSequential,
		TCPMaxTwBuckets:   NoTwCap,
		SynRetries:        2,
		SynRTO:            3 * time.Second,
		Source:            "Microsoft docs: troubleshoot-tcpip-port-exhaust, TcpTimedWaitDelay, TcpMaxConnectRetransmissions, TcpInitialRTT; allocation order undocumented, assumed sequential",
	},
	// macOS (XNU bsd/netinet/in_pcb.c in_pcbbind, os-semantics.md §6.1):
	// portrange 49152-65535, net.inet.tcp.randomize_ports=0 (sequential
	// global lastport, first candidate portrange.first), the implicit bind
	// of tcp_connect (tcp_usrreq.c, laddr still INADDR_ANY) takes a port no
	// PCB on any address uses; TIME_WAIT 2*MSL = 30 s (tcp_timer.h
	// TCPTV_MSL 15 s).
	"macos": {
		Name:                  "macos",
		PortRange:             dynamicPorts,
		TimeWait:              30 * time.Second,
		TCPFinTimeout:         60 * time.Second,
		ConnectSharesPort:     false,
		Family:                "macos",
		UnprivilegedPortStart: 1024,
		Allocator:             alloc.NameSequential,
		BindAllocator:         alloc.NameSequential,
		UDPAllocator:          alloc.NameRandomStart, // net.inet.udp.randomize_ports=1
		TCPMaxTwBuckets:       NoTwCap,
		SynRetries:            6, // assumption: RFC 6298 §2.1 1 s doubling; the BSD and gVisor schedules are not modelled
		SynRTO:                time.Second,
		Source:                "XNU in_pcb.c in_pcbbind, tcp_usrreq.c tcp_connect, tcp_timer.h",
	},
	// FreeBSD 14/15 (sys/netinet/in_pcb.c in_pcb_lport_dest): portrange
	// 10000-65535, randomized=1 (random start, linear probe = RFC 6056
	// Algorithm 1), connect() shares ports across destinations; TIME_WAIT
	// 2*MSL = 60 s (tcp_timer.h TCPTV_MSL 30 s), none toward local peers
	// (tcp_timewait.c nolocaltimewait, default 1 since 14.0 per the release
	// notes and commit 92b3e07229ba [S]).
	"freebsd": freeBSD("freebsd", alloc.NameRandomStart, true, "FreeBSD 14 in_pcb.c in_pcb_lport_dest, tcp_timer.h, tcp_timewait.c"),
	// FreeBSD 13 and earlier: as FreeBSD 14 but in_pcb_lport_dest falls back
	// to sequential allocation for portrange.randomtime (45 s) after more
	// than portrange.randomcps (10) allocations in one second (ipport_tick,
	// os-semantics.md §5.1); no nolocaltimewait default (that is 14.0).
	"freebsd-13": freeBSD("freebsd-13", alloc.NameFreeBSD13, false, "FreeBSD 13 in_pcb.c in_pcb_lport_dest and ipport_tick, tcp_timer.h"),
	// gVisor netstack (pkg/tcpip/ports/ports.go PickEphemeralPort, §8.1): a
	// reference Go stack: 16000-65535, random start + linear probe
	// (Algorithm 1), reservations keyed by destination so connect() shares
	// ports; DefaultTCPTimeWaitTimeout 60 s.
	"gvisor": {
		Name:                  "gvisor",
		PortRange:             alloc.Range{Low: 16000, High: 65535},
		TimeWait:              60 * time.Second,
		TCPFinTimeout:         60 * time.Second,
		ConnectSharesPort:     true,
		Family:                "gvisor",
		UnprivilegedPortStart: 1024,
		Allocator:             alloc.NameRandomStart,
		BindAllocator:         alloc.NameRandomStart,
		UDPAllocator:          alloc.NameRandomStart,
		TCPMaxTwBuckets:       NoTwCap,
		SynRetries:            6, // assumption: RFC 6298 §2.1 1 s doubling; the BSD and gVisor schedules are not modelled
		SynRTO:                time.Second,
		Source:                "gVisor pkg/tcpip/ports/ports.go, tcp/protocol.go",
	},
	// ns-3 (src/internet/model/ipv4-end-point-demux.cc): 49152-65535, one
	// pre-incremented global counter so the first port is 49153, a port is
	// taken if any endpoint uses it; TIME_WAIT 2*MaxSegLifetime = 240 s
	// (tcp-socket-base.cc).
	"ns3": {
		Name:              "ns3",
		PortRange:         dynamicPorts,
		TimeWait:          240 * time.Second,
		ConnectSharesPort: false,
		TCPFinTimeout:     60 * time.Second,
		Family:            "ns3",
		Allocator:         alloc.NameSequential,
		BindAllocator:     alloc.NameSequential,
		UDPAllocator:      alloc.NameSequential,
		FirstPort:         49153,
		TCPMaxTwBuckets:   NoTwCap,
		SynRetries:        6, // assumption: ns-3 TcpSocket ConnCount 6; ConnTimeout 3 s
		SynRTO:            3 * time.Second,
		Source:            "ns-3 ipv4-end-point-demux.cc, tcp-socket-base.cc",
	},
}

// NoTwCap marks a profile without a TIME_WAIT bucket cap.
const NoTwCap = -1

// freeBSD returns the FreeBSD defaults (os-semantics.md §5): range
// 10000-65535, TIME_WAIT 2*MSL = 60 s, finwait2_timeout 60 s, connect()
// sharing ports across destinations, with allocator for every socket path
// and nolocaltimewait (default 1 since 14.0) as given.
func freeBSD(name, allocator string, noLocalTimeWait bool, source string) Profile {
	return Profile{
		Name:                  name,
		PortRange:             alloc.Range{Low: 10000, High: 65535},
		TimeWait:              60 * time.Second,
		TCPFinTimeout:         60 * time.Second,
		NoLocalTimeWait:       noLocalTimeWait,
		ConnectSharesPort:     true,
		Family:                "freebsd",
		UnprivilegedPortStart: 1024,
		Allocator:             allocator,
		BindAllocator:         allocator,
		UDPAllocator:          allocator,
		TCPMaxTwBuckets:       NoTwCap,
		SynRetries:            6, // assumption: RFC 6298 §2.1 1 s doubling; the BSD and gVisor schedules are not modelled
		SynRTO:                time.Second,
		Source:                source,
	}
}

// linuxEra returns the Linux defaults with the connect() allocator of one
// kernel era.
func linuxEra(name, connect, source string) Profile {
	return Profile{
		Name:                  name,
		Family:                "linux",
		PortRange:             alloc.Range{Low: 32768, High: 60999},
		TimeWait:              60 * time.Second,
		TimeWaitFixed:         true,
		ConnectSharesPort:     true,
		Allocator:             connect,
		BindAllocator:         alloc.NameLinuxBind,
		UDPAllocator:          alloc.NameLinuxUDP,
		TCPTwReuse:            2,
		TCPTwReuseDelay:       time.Second,
		TCPFinTimeout:         60 * time.Second,
		UnprivilegedPortStart: 1024,
		TCPTimestamps:         true,
		TCPMaxTwBuckets:       131072,
		SynRetries:            6,
		SynRTO:                time.Second,
		Source:                source,
	}
}

// HostPreset is the preset name that reads the running machine's settings.
const HostPreset = "host"

// PresetNames returns the names accepted by Preset, sorted, including "host".
func PresetNames() []string {
	names := []string{HostPreset}
	for n := range presets {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Preset returns a copy of the named built-in profile. "host" is not handled
// here (see ReadHost) because it reads the file system. An unknown name
// returns an error that lists the known ones.
func Preset(name string) (Profile, error) {
	p, ok := presets[name]
	if !ok {
		return Profile{}, fmt.Errorf("unknown OS preset %q (known: %s)", name, strings.Join(PresetNames(), ", "))
	}
	return p, nil
}

// HostSysctls are the files ReadHost reads below the sysctl directory, in
// the kernel's spelling (net.ipv4.NAME is /proc/sys/net/ipv4/NAME); they
// are also the sysctls SetSysctl accepts. Do not modify.
var HostSysctls = []string{
	"ip_local_port_range",
	"ip_local_reserved_ports",
	"tcp_tw_reuse",
	"tcp_tw_reuse_delay",
	"tcp_max_tw_buckets",
	"tcp_timestamps",
	"tcp_fin_timeout",
	"ip_unprivileged_port_start",
	"ip_autobind_reuse",
	"tcp_syn_retries",
}

// optionalSysctls may be missing on older kernels; ReadHost then keeps the
// preset's value (tcp_tw_reuse_delay arrived in 6.14, ip_autobind_reuse in
// 5.9, ip_unprivileged_port_start in 4.11).
var optionalSysctls = map[string]bool{"tcp_tw_reuse_delay": true, "ip_unprivileged_port_start": true, "ip_autobind_reuse": true}

// DefaultSysctlDir is where Linux exposes net.ipv4 sysctls.
const DefaultSysctlDir = "/proc/sys/net/ipv4"

// ReadHost returns the Linux profile with the running machine's settings
// read from dir (normally DefaultSysctlDir): ip_local_port_range,
// ip_local_reserved_ports, tcp_tw_reuse, tcp_max_tw_buckets and
// tcp_timestamps. TIME_WAIT stays 60 s (TCP_TIMEWAIT_LEN has no sysctl).
// A file that cannot be read or parsed is an error naming the file; on a
// system without /proc (not Linux) every read fails that way.
func ReadHost(dir string) (Profile, error) {
	p := presets["linux"]
	p.Name = HostPreset
	p.Source = "this machine: " + dir
	for _, name := range HostSysctls {
		path := filepath.Join(dir, name)
		b, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) && optionalSysctls[name] {
			continue
		}
		if err != nil {
			return Profile{}, fmt.Errorf("os: host reads this machine's sysctls: %w", err)
		}
		if err := p.SetSysctl("net.ipv4."+name, strings.TrimSpace(string(b))); err != nil {
			return Profile{}, fmt.Errorf("os: host: %s: %w", path, err)
		}
	}
	return p, nil
}

// linuxOnly lists sysctls that exist only in the Linux stack.

// SysctlNames returns the sysctl keys SetSysctl accepts, sorted: the
// HostSysctls with their "net.ipv4." prefix. The slice is the caller's.
func SysctlNames() []string {
	names := make([]string, len(HostSysctls))
	for i, n := range HostSysctls {
		names[i] = "net.ipv4." + n
	}
	slices.Sort(names)
	return names
}

// SetSysctl applies one sysctl, spelled as the kernel does
// (net.ipv4.ip_local_port_range), with its value as text as it would be
// written to /proc. ip_local_port_range and ip_local_reserved_ports apply to
// every preset (they stand for the OS's own range knob); the others are
// Linux-only and are refused for other presets. Values are checked as the
// kernel checks them (proc_dointvec_minmax ranges); errors say what is wrong.
func (p *Profile) SetSysctl(key, value string) error {
	value = strings.TrimSpace(value)
	if p.Family != "linux" && slices.Contains(SysctlNames(), key) {
		return fmt.Errorf("%s is a Linux sysctl; os %q has no such setting (its port range is ephemeral_range)", key, p.Name)
	}
	switch key {
	case "net.ipv4.ip_local_port_range":
		r, err := alloc.ParseRange(value)
		if err != nil {
			return err
		}
		p.SetPortRange(r)
	case "net.ipv4.ip_local_reserved_ports":
		s, err := alloc.ParsePortList(value)
		if err != nil {
			return err
		}
		p.Reserved = s
	case "net.ipv4.tcp_tw_reuse":
		n, err := intIn(value, 0, 2)
		if err != nil {
			return err
		}
		p.TCPTwReuse = n
	case "net.ipv4.tcp_tw_reuse_delay":
		// ip-sysctl.rst: milliseconds, 1 to TCP_PAWS_MSL (60 s).
		n, err := intIn(value, 1, 60000)
		if err != nil {
			return err
		}
		p.TCPTwReuseDelay = time.Duration(n) * time.Millisecond
	case "net.ipv4.tcp_fin_timeout":
		n, err := intIn(value, 1, 3600)
		if err != nil {
			return err
		}
		p.TCPFinTimeout = time.Duration(n) * time.Second
	case "net.ipv4.ip_unprivileged_port_start":
		n, err := intIn(value, 0, 65535)
		if err != nil {
			return err
		}
		p.UnprivilegedPortStart = n
	case "net.ipv4.ip_autobind_reuse":
		n, err := intIn(value, 0, 1)
		if err != nil {
			return err
		}
		p.AutobindReuse = n == 1
	case "net.ipv4.tcp_timestamps":
		n, err := intIn(value, 0, 2)
		if err != nil {
			return err
		}
		p.TCPTimestamps = n != 0
	case "net.ipv4.tcp_syn_retries":
		// ip-sysctl.rst: 1 to 127 (MAX_TCP_SYNCNT).
		n, err := intIn(value, 1, 127)
		if err != nil {
			return err
		}
		p.SynRetries = n
	case "net.ipv4.tcp_max_tw_buckets":
		n, err := intIn(value, 0, 1<<31-1)
		if err != nil {
			return err
		}
		p.TCPMaxTwBuckets = n
	default:
		return fmt.Errorf("unknown sysctl %q (known: %s)", key, strings.Join(SysctlNames(), ", "))
	}
	return nil
}

// SetPortRange sets the ephemeral range r (already validated): Linux
// ip_local_port_range, FreeBSD and XNU net.inet.ip.portrange.first/last,
// Windows netsh dynamicport, ns-3 m_portFirst/m_portLast. A sequential
// allocator's first port keeps its offset from Low (ns-3 pre-increments a
// counter that starts at Low), wrapping in the new range as the counter
// does.
func (p *Profile) SetPortRange(r alloc.Range) {
	if p.FirstPort != 0 {
		off := p.FirstPort - int(p.PortRange.Low)
		p.FirstPort = int(r.Low) + off%r.Size()
	}
	p.PortRange = r
}

// intIn parses a decimal integer and checks lo <= n <= hi.
func intIn(s string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not an integer", s)
	}
	if n < lo || n > hi {
		return 0, fmt.Errorf("%d is outside %d..%d", n, lo, hi)
	}
	return n, nil
}

// UsablePorts is the number of ports automatic assignment can hand out:
// the range minus the reserved ports inside it.
func (p *Profile) UsablePorts() int {
	return p.PortRange.Size() - p.Reserved.CountIn(p.PortRange)
}
