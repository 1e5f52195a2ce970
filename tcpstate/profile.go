package tcpstate

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
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
	// ConnectSharesPort reports whether connect() without bind() may reuse a
	// local port that is already in use toward another destination as long
	// as the 4-tuple is unique (Linux __inet_hash_connect, FreeBSD
	// in_pcb_lport_dest: yes; XNU in_pcbbind, Windows by default, ns-3
	// Ipv4EndPointDemux::LookupPortLocal: no).
	ConnectSharesPort bool
	// Allocator names the alloc package algorithm connect() uses.
	Allocator string
	// FirstPort is the sequential allocator's first candidate (ns-3: 49153);
	// 0 means PortRange.Low.
	FirstPort int
	// TCPTwReuse is net.ipv4.tcp_tw_reuse: 0 off, 1 global, 2 loopback only
	// (Linux default since 4.19, ip-sysctl.rst).
	TCPTwReuse int
	// TCPTimestamps is net.ipv4.tcp_timestamps != 0 (RFC 7323); TIME_WAIT
	// reuse needs the peer's timestamps.
	TCPTimestamps bool
	// TCPMaxTwBuckets is net.ipv4.tcp_max_tw_buckets: past this many
	// TIME_WAIT sockets a closing socket skips TIME_WAIT (inet_twsk_alloc
	// returns NULL, tcp_time_wait calls tcp_done), so 0 means no TIME_WAIT
	// at all, as in the kernel. NoTwCap (-1) means no cap (other stacks).
	TCPMaxTwBuckets int
	// Source names where the preset's numbers come from.
	Source string
}

// Linux defaults (os-semantics.md §2.9, §4): range 32768-60999 since 4.2
// (inet_init_net), TIME_WAIT 60 s (include/net/tcp.h TCP_TIMEWAIT_LEN),
// tcp_tw_reuse 2, tcp_timestamps 1. tcp_max_tw_buckets defaults to half the
// established-hash size, which depends on memory; 131072 is the value seen
// on a 24 GiB machine running 6.18.
//
// connect() in Linux is RFC 6056 Algorithm 4 with a parity split
// (__inet_hash_connect). Until that allocator is modelled the preset uses
// random-start (Algorithm 1): both scan the whole range, so blocking and
// occupancy are the same; only the order of ports differs.
var presets = map[string]Profile{
	"linux": {
		Name:              "linux",
		PortRange:         alloc.Range{Low: 32768, High: 60999},
		TimeWait:          60 * time.Second,
		TimeWaitFixed:     true,
		ConnectSharesPort: true,
		Allocator:         "random-start",
		TCPTwReuse:        2,
		TCPTimestamps:     true,
		TCPMaxTwBuckets:   131072,
		Source:            "Linux 6.x: inet_init_net, TCP_TIMEWAIT_LEN, ip-sysctl.rst",
	},
	// Windows Vista/2008 and later: dynamic range 49152-65535
	// (troubleshoot-tcpip-port-exhaust.md), TcpTimedWaitDelay documented
	// default 240 s (range 30-300 s), outbound sockets do not share a local
	// port unless SO_REUSE_UNICASTPORT is set. The allocation order is not
	// documented; SO_RANDOMIZE_PORT existing suggests the default is not
	// random, so the preset is sequential.
	"windows": {
		Name:              "windows",
		PortRange:         alloc.Range{Low: 49152, High: 65535},
		TimeWait:          240 * time.Second,
		ConnectSharesPort: false,
		Allocator:         "sequential",
		TCPMaxTwBuckets:   NoTwCap,
		Source:            "Microsoft docs: troubleshoot-tcpip-port-exhaust, TcpTimedWaitDelay",
	},
	// macOS (XNU bsd/netinet/in_pcb.c in_pcbbind): portrange 49152-65535,
	// net.inet.tcp.randomize_ports=0 (sequential global lastport), implicit
	// bind takes a completely unused port; TIME_WAIT 2*MSL = 30 s
	// (tcp_timer.h TCPTV_MSL 15 s).
	"macos": {
		Name:              "macos",
		PortRange:         alloc.Range{Low: 49152, High: 65535},
		TimeWait:          30 * time.Second,
		ConnectSharesPort: false,
		Allocator:         "sequential",
		TCPMaxTwBuckets:   NoTwCap,
		Source:            "XNU in_pcb.c in_pcbbind, tcp_timer.h",
	},
	// FreeBSD 14/15 (sys/netinet/in_pcb.c in_pcb_lport_dest): portrange
	// 10000-65535, randomized=1 (random start, linear probe = RFC 6056
	// Algorithm 1), connect() shares ports across destinations; TIME_WAIT
	// 2*MSL = 60 s (tcp_timer.h TCPTV_MSL 30 s).
	"freebsd": {
		Name:              "freebsd",
		PortRange:         alloc.Range{Low: 10000, High: 65535},
		TimeWait:          60 * time.Second,
		ConnectSharesPort: true,
		Allocator:         "random-start",
		TCPMaxTwBuckets:   NoTwCap,
		Source:            "FreeBSD in_pcb.c in_pcb_lport_dest, tcp_timer.h",
	},
	// ns-3 (src/internet/model/ipv4-end-point-demux.cc): 49152-65535, one
	// pre-incremented global counter so the first port is 49153, a port is
	// taken if any endpoint uses it; TIME_WAIT 2*MaxSegLifetime = 240 s
	// (tcp-socket-base.cc).
	"ns3": {
		Name:              "ns3",
		PortRange:         alloc.Range{Low: 49152, High: 65535},
		TimeWait:          240 * time.Second,
		ConnectSharesPort: false,
		Allocator:         "sequential",
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
	sort.Strings(names)
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
// the kernel's spelling (net.ipv4.NAME is /proc/sys/net/ipv4/NAME).
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

// SysctlNames returns the sysctl keys SetSysctl accepts, sorted.
func SysctlNames() []string {
	return []string{
		"net.ipv4.ip_local_port_range",
		"net.ipv4.ip_local_reserved_ports",
		"net.ipv4.tcp_max_tw_buckets",
		"net.ipv4.tcp_timestamps",
		"net.ipv4.tcp_tw_reuse",
	}
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
