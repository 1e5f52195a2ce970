package tcpstate

import (
	"fmt"
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
	// Allocator names the alloc package algorithm connect() uses
	// (alloc.NameSequential or alloc.NameRandomStart).
	Allocator string
	// FirstPort is the sequential allocator's first candidate (alloc.Config
	// First); 0 means PortRange.Low. ns-3 pre-increments a counter that
	// starts at the range's low end, so its first port is Low+1 (49153);
	// changing the range with SetSysctl keeps FirstPort at the same offset
	// from Low (wrapping to Low in a one-port range).
	FirstPort int
	// TCPTwReuse is net.ipv4.tcp_tw_reuse: 0 off, 1 global, 2 loopback only
	// (Linux default since 4.19, ip-sysctl.rst).
	TCPTwReuse int
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
	// Source names where the preset's numbers come from.
	Source string
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
// connect() in Linux is RFC 6056 Algorithm 4 with a parity split
// (__inet_hash_connect, §2.3). Until that allocator is modelled the preset
// uses random-start (Algorithm 1): both scan the whole range and fail only
// when no port is usable, so blocking and occupancy are the same; the order
// of ports (and so the probe counts) differs.
var presets = map[string]Profile{
	"linux": {
		Name:              "linux",
		PortRange:         alloc.Range{Low: 32768, High: 60999},
		TimeWait:          60 * time.Second,
		TimeWaitFixed:     true,
		ConnectSharesPort: true,
		Allocator:         alloc.NameRandomStart,
		TCPTwReuse:        2,
		TCPTimestamps:     true,
		TCPMaxTwBuckets:   131072,
		Source:            "Linux 6.x: inet_init_net, TCP_TIMEWAIT_LEN, ip-sysctl.rst",
	},
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
		ConnectSharesPort: false,
		Allocator:         alloc.NameSequential,
		TCPMaxTwBuckets:   NoTwCap,
		Source:            "Microsoft docs: troubleshoot-tcpip-port-exhaust, TcpTimedWaitDelay",
	},
	// macOS (XNU bsd/netinet/in_pcb.c in_pcbbind, os-semantics.md §6.1):
	// portrange 49152-65535, net.inet.tcp.randomize_ports=0 (sequential
	// global lastport, first candidate portrange.first), the implicit bind
	// of tcp_connect (tcp_usrreq.c, laddr still INADDR_ANY) takes a port no
	// PCB on any address uses; TIME_WAIT 2*MSL = 30 s (tcp_timer.h
	// TCPTV_MSL 15 s).
	"macos": {
		Name:              "macos",
		PortRange:         dynamicPorts,
		TimeWait:          30 * time.Second,
		ConnectSharesPort: false,
		Allocator:         alloc.NameSequential,
		TCPMaxTwBuckets:   NoTwCap,
		Source:            "XNU in_pcb.c in_pcbbind, tcp_usrreq.c tcp_connect, tcp_timer.h",
	},
	// FreeBSD 14/15 (sys/netinet/in_pcb.c in_pcb_lport_dest): portrange
	// 10000-65535, randomized=1 (random start, linear probe = RFC 6056
	// Algorithm 1), connect() shares ports across destinations; TIME_WAIT
	// 2*MSL = 60 s (tcp_timer.h TCPTV_MSL 30 s), none toward local peers
	// (tcp_timewait.c nolocaltimewait, default 1 since 14.0 per the release
	// notes and commit 92b3e07229ba [S]).
	"freebsd": {
		Name:              "freebsd",
		PortRange:         alloc.Range{Low: 10000, High: 65535},
		TimeWait:          60 * time.Second,
		NoLocalTimeWait:   true,
		ConnectSharesPort: true,
		Allocator:         alloc.NameRandomStart,
		TCPMaxTwBuckets:   NoTwCap,
		Source:            "FreeBSD in_pcb.c in_pcb_lport_dest, tcp_timer.h, tcp_timewait.c",
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
		Allocator:         alloc.NameSequential,
		FirstPort:         49153,
		TCPMaxTwBuckets:   NoTwCap,
		Source:            "ns-3 ipv4-end-point-demux.cc, tcp-socket-base.cc",
	},
}

// NoTwCap marks a profile without a TIME_WAIT bucket cap.
const NoTwCap = -1

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
	"tcp_max_tw_buckets",
	"tcp_timestamps",
}

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
var linuxOnly = map[string]bool{
	"net.ipv4.tcp_tw_reuse":       true,
	"net.ipv4.tcp_timestamps":     true,
	"net.ipv4.tcp_max_tw_buckets": true,
}

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
	if linuxOnly[key] && p.Name != "linux" && p.Name != HostPreset {
		return fmt.Errorf("%s is a Linux sysctl; os %q has no such setting", key, p.Name)
	}
	switch key {
	case "net.ipv4.ip_local_port_range":
		r, err := alloc.ParseRange(value)
		if err != nil {
			return err
		}
		if p.FirstPort != 0 {
			// Keep the counter's start at the same offset from Low
			// (ns-3: m_portFirst, pre-incremented), wrapping in the
			// new range as the counter does.
			off := p.FirstPort - int(p.PortRange.Low)
			p.FirstPort = int(r.Low) + off%r.Size()
		}
		p.PortRange = r
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
	case "net.ipv4.tcp_timestamps":
		n, err := intIn(value, 0, 2)
		if err != nil {
			return err
		}
		p.TCPTimestamps = n != 0
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
