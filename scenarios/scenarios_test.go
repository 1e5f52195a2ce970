package scenarios

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portsim/portsim/alloc"
	"github.com/portsim/portsim/tcpstate"
)

// base is a valid scenario; the bad-input cases each change one line of it.
// Line numbers matter: the expected errors name them.
const base = `name: t
duration: 120s
hosts:
  - name: client
    os: linux
    addresses: [10.0.0.1, "fd00::1"]
    sysctls:
      net.ipv4.tcp_tw_reuse: 0
workloads:
  - name: api
    from: client
    to: ["203.0.113.10:443"]
    arrival: {process: poisson, rate: 600}
    hold: {dist: exponential, mean: 100ms}
    close: client
    stop: 60s
`

// hostsBlock is the hosts field of base, lines 3-8.
const hostsBlock = `hosts:
  - name: client
    os: linux
    addresses: [10.0.0.1, "fd00::1"]
    sysctls:
      net.ipv4.tcp_tw_reuse: 0
`

// edit returns base with old replaced by new; old must occur exactly once.
func edit(t testing.TB, old, new string) string {
	t.Helper()
	require.Equal(t, 1, strings.Count(base, old), "edit target %q", old)
	return strings.Replace(base, old, new, 1)
}

// hostReadable reports whether this machine has the files os: host reads.
func hostReadable() bool {
	_, err := tcpstate.ReadHost(tcpstate.DefaultSysctlDir)
	return err == nil
}

func TestBaseIsValid(t *testing.T) {
	s, err := Parse([]byte(base), "t.yaml", nil)
	require.NoError(t, err)
	assert.Equal(t, "t.yaml", s.File)
	assert.Equal(t, map[string]string{"net.ipv4.tcp_tw_reuse": "0"}, s.Hosts[0].Sysctls)
	assert.Equal(t, 0, s.Hosts[0].Profile.TCPTwReuse)
	assert.Equal(t, 60*time.Second, s.Workloads[0].Stop)
}

func TestBuiltins(t *testing.T) {
	infos := Builtins()
	var names []string
	for _, in := range infos {
		names = append(names, in.Name)
	}
	assert.Equal(t, []string{
		"bind-before-connect", "burst-recovery", "dotnet-connection-close", "k6-no-reuse", "linux-burst",
		"nat-app-service", "nat-aws-55k", "nat-azure-lb-prealloc", "nat-gcp-min-ports",
		"nat-home-router", "nat-k8s-masquerade", "predict-victim",
		"reuseport-listeners", "server-closes-first", "server-restart-eaddrinuse",
		"spread-destinations", "this-host", "tw-reuse-loopback",
	}, names, "sorted by name")
	assert.Contains(t, names, Default)

	for _, in := range infos {
		t.Run(in.Name, func(t *testing.T) {
			assert.NotEmpty(t, in.Description)
			assert.NotContains(t, in.Description, "\n", "descriptions are one line")
			if in.Name == "this-host" && !hostReadable() {
				t.Skip("os: host needs " + tcpstate.DefaultSysctlDir)
			}
			s, err := Load(in.Name, nil)
			require.NoError(t, err)
			assert.Equal(t, in.Name, s.Name, "name in the file matches the file name")
			assert.Equal(t, in.Description, s.Description)
			assert.Equal(t, "builtin:"+in.Name, s.File)

			// The run must stay fast: at most 10 M connection attempts.
			var attempts float64
			for _, w := range s.Workloads {
				rate := w.Arrival.Rate
				if w.Arrival.Process == Ramp {
					rate = max(w.Arrival.Rate, w.Arrival.RateTo)
				}
				attempts += rate * (w.Stop - w.Start).Seconds()
			}
			assert.LessOrEqual(t, attempts, 10e6)
			for _, w := range s.Workloads {
				for _, to := range w.To {
					// Documentation addresses, or loopback where the
					// scenario is about loopback rules (tcp_tw_reuse=2).
					assert.True(t, netip.MustParsePrefix("203.0.113.0/24").Contains(to.Addr()) ||
						netip.MustParsePrefix("198.51.100.0/24").Contains(to.Addr()) ||
						to.Addr().IsLoopback(),
						"%v is a documentation or loopback address", to)
				}
			}
		})
	}
}

// ephemeral_range sets any OS's range; allocator picks the connect()
// algorithm.
func TestHostRangeAndAllocator(t *testing.T) {
	src := strings.Replace(base, "    os: linux\n", "    os: windows\n    ephemeral_range: \"1025 5000\"\n    allocator: random-start\n", 1)
	src = strings.Replace(src, "    sysctls:\n      net.ipv4.tcp_tw_reuse: 0\n", "", 1)
	s, err := Parse([]byte(src), "t.yaml", nil)
	require.NoError(t, err)
	p := s.Hosts[0].Profile
	assert.Equal(t, alloc.Range{Low: 1025, High: 5000}, p.PortRange)
	assert.Equal(t, "random-start", p.Allocator)
	assert.False(t, p.ConnectSharesPort, "Windows takes an unused port by default")
	src = strings.Replace(base, "    os: linux\n", "    os: windows\n    so_reuse_unicastport: true\n", 1)
	src = strings.Replace(src, "    sysctls:\n      net.ipv4.tcp_tw_reuse: 0\n", "", 1)
	s, err = Parse([]byte(src), "t.yaml", nil)
	require.NoError(t, err)
	assert.True(t, s.Hosts[0].Profile.ConnectSharesPort, "SO_REUSE_UNICASTPORT shares ports across destinations")
	// The same range twice is no contradiction.
	src = strings.Replace(base, "    sysctls:\n", "    ephemeral_range: \"1024 65535\"\n    sysctls:\n      net.ipv4.ip_local_port_range: \"1024 65535\"\n", 1)
	s, err = Parse([]byte(src), "t.yaml", nil)
	require.NoError(t, err)
	assert.Equal(t, 64512, s.Hosts[0].Profile.UsablePorts())
}

func TestLinuxBurst(t *testing.T) {
	s, err := Load(Default, nil)
	require.NoError(t, err)
	assert.Equal(t, uint64(1), s.Seed)
	assert.Equal(t, 180*time.Second, s.Duration)
	assert.Equal(t, time.Second, s.Sample)
	require.Len(t, s.Hosts, 1)
	h := s.Hosts[0]
	assert.Equal(t, "linux", h.OS)
	assert.Equal(t, []netip.Addr{netip.MustParseAddr("10.0.0.1")}, h.Addresses)
	assert.Equal(t, alloc.Range{Low: 32768, High: 60999}, h.Profile.PortRange)
	assert.Equal(t, 28232, h.Profile.UsablePorts())
	assert.Equal(t, 60*time.Second, h.Profile.TimeWait)
	assert.False(t, h.TimeWaitHypothetical)
	assert.Empty(t, h.Sysctls)
	require.Len(t, s.Workloads, 1)
	assert.Equal(t, Workload{
		Name:    "api",
		From:    0,
		Source:  netip.MustParseAddr("10.0.0.1"),
		To:      []netip.AddrPort{netip.MustParseAddrPort("203.0.113.10:443")},
		Arrival: Arrival{Process: Poisson, Rate: 600},
		Hold:    Hold{Dist: Exponential, Mean: 100 * time.Millisecond},
		Close:   CloseMix{Client: 1},
		Start:   0,
		Stop:    180 * time.Second,
		RTT:     time.Millisecond,
	}, s.Workloads[0])
	// Exhaustion arithmetic the description promises: about 47 s.
	assert.InDelta(t, 47, float64(h.Profile.UsablePorts())/s.Workloads[0].Arrival.Rate, 0.1)
}

func TestBuiltinShapes(t *testing.T) {
	tests := []struct {
		name  string
		check func(t *testing.T, s *Scenario)
	}{
		{"k6-no-reuse", func(t *testing.T, s *Scenario) {
			w := s.Workloads[0]
			assert.Equal(t, Arrival{Process: Constant, Rate: 1200}, w.Arrival)
			assert.Equal(t, Hold{Dist: Fixed, Value: 20 * time.Millisecond}, w.Hold)
			assert.Equal(t, CloseMix{Client: 1}, w.Close)
			assert.Equal(t, "linux", s.Hosts[0].OS)
			assert.Len(t, w.To, 1)
			assert.Equal(t, 60*time.Second, s.Duration)
			assert.InDelta(t, 23.5, float64(s.Hosts[0].Profile.UsablePorts())/w.Arrival.Rate, 0.1)
		}},
		{"dotnet-connection-close", func(t *testing.T, s *Scenario) {
			require.Len(t, s.Workloads, 2)
			require.Len(t, s.Hosts, 2)
			a, b := s.Workloads[0], s.Workloads[1]
			assert.NotEqual(t, a.From, b.From, "side by side on separate hosts")
			for _, h := range s.Hosts {
				assert.Equal(t, "windows", h.OS)
				assert.Equal(t, alloc.Range{Low: 49152, High: 65535}, h.Profile.PortRange)
				assert.Equal(t, 240*time.Second, h.Profile.TimeWait)
			}
			assert.Equal(t, a.Arrival, b.Arrival, "same rate")
			assert.Equal(t, a.Hold, b.Hold)
			assert.Equal(t, CloseMix{Client: 1}, a.Close)
			assert.Equal(t, CloseMix{Server: 1}, b.Close)
			assert.Equal(t, 300*time.Second, s.Duration)
			assert.InDelta(t, 164, float64(s.Hosts[a.From].Profile.UsablePorts())/a.Arrival.Rate, 0.5)
		}},
		{"spread-destinations", func(t *testing.T, s *Scenario) {
			w := s.Workloads[0]
			assert.Len(t, w.To, 10)
			seen := map[netip.AddrPort]bool{}
			for _, to := range w.To {
				seen[to] = true
			}
			assert.Len(t, seen, 10, "distinct destinations")
			assert.True(t, s.Hosts[0].Profile.ConnectSharesPort)
			assert.Equal(t, Arrival{Process: Poisson, Rate: 600}, w.Arrival)
			assert.Equal(t, CloseMix{Client: 1}, w.Close)
		}},
		{"server-closes-first", func(t *testing.T, s *Scenario) {
			w := s.Workloads[0]
			assert.Equal(t, Arrival{Process: Poisson, Rate: 600}, w.Arrival)
			assert.Equal(t, CloseMix{Server: 1}, w.Close)
			assert.Equal(t, "linux", s.Hosts[0].OS)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Load(tt.name, nil)
			require.NoError(t, err)
			tt.check(t, s)
		})
	}
}

// badCase is a document Parse must refuse with exactly want.
type badCase struct{ name, src, want string }

// badCases are the bad inputs of TestParseErrors, also FuzzParse's seeds.
func badCases(t testing.TB) []badCase {
	return []badCase{
		{"port range reversed",
			edit(t, "tcp_tw_reuse: 0", `ip_local_port_range: "61000 32768"`),
			`t.yaml:8:37: hosts[0].sysctls.net.ipv4.ip_local_port_range: low 61000 is above high 32768`},
		{"negative rate",
			edit(t, "rate: 600", "rate: -5"),
			`t.yaml:13:39: workloads[0].arrival.rate: must be > 0, got -5`},
		{"zero rate",
			edit(t, "rate: 600", "rate: 0"),
			`t.yaml:13:39: workloads[0].arrival.rate: must be > 0, got 0`},
		{"infinite rate",
			edit(t, "rate: 600", "rate: .inf"),
			`t.yaml:13:39: workloads[0].arrival.rate: must be a finite number, got .inf`},
		{"unknown top-level key",
			edit(t, "duration: 120s\n", "duration: 120s\nhii: 1\n"),
			`t.yaml:3:1: hii: unknown field "hii" (known: name, description, seed, duration, sample, hosts, workloads, servers, nats)`},
		{"unknown nested key",
			edit(t, "    stop: 60s\n", "    stop: 60s\n    hii: 1\n"),
			`t.yaml:17:5: workloads[0].hii: unknown field "hii" (known: name, from, to, arrival, hold, close, start, stop, rtt, source, socket, options, port_range, peer_close_delay, pool)`},
		{"unknown key in flow mapping",
			edit(t, "mean: 100ms}", "mean: 100ms, hii: 1}"),
			`t.yaml:14:44: workloads[0].hold.hii: unknown field "hii" (known: dist, value, mean, median, sigma, scale, shape)`},
		{"unknown OS preset",
			edit(t, "os: linux", "os: solaris"),
			`t.yaml:5:9: hosts[0].os: unknown OS preset "solaris" (known: freebsd, freebsd-13, gvisor, host, linux, linux-4.19, linux-5.10, linux-5.15, macos, ns3, windows)`},
		{"ephemeral_range contradicts the sysctl",
			edit(t, "    sysctls:\n", "    ephemeral_range: \"1024 65535\"\n    sysctls:\n      net.ipv4.ip_local_port_range: \"32768 60999\"\n"),
			`t.yaml:7:22: hosts[0].ephemeral_range: 1024-65535 contradicts sysctls net.ipv4.ip_local_port_range "32768 60999"; set one of them`},
		{"reversed ephemeral_range",
			edit(t, "    sysctls:\n", "    ephemeral_range: \"61000 32768\"\n    sysctls:\n"),
			`t.yaml:7:22: hosts[0].ephemeral_range: low 61000 is above high 32768`},
		{"unknown allocator",
			edit(t, "    sysctls:\n", "    allocator: lottery\n    sysctls:\n"),
			`t.yaml:7:16: hosts[0].allocator: unknown allocator "lottery" (known: ` + strings.Join(alloc.Names(), ", ") + `)`},
		{"SO_REUSE_UNICASTPORT off Windows",
			edit(t, "    sysctls:\n", "    so_reuse_unicastport: true\n    sysctls:\n"),
			`t.yaml:7:27: hosts[0].so_reuse_unicastport: SO_REUSE_UNICASTPORT is a Windows socket option; os "linux" has none (Linux and FreeBSD connect() share ports anyway)`},
		{"so_reuse_unicastport not a bool",
			edit(t, "    sysctls:\n", "    so_reuse_unicastport: yes please\n    sysctls:\n"),
			`t.yaml:7:27: hosts[0].so_reuse_unicastport: must be true or false, got "yes please"`},
		{"Linux sysctl on Windows",
			edit(t, "os: linux", "os: windows"),
			`t.yaml:8:30: hosts[0].sysctls.net.ipv4.tcp_tw_reuse: net.ipv4.tcp_tw_reuse is a Linux sysctl; os "windows" has no such setting (its port range is ephemeral_range)`},
		{"bad address",
			edit(t, "10.0.0.1,", "10.0.0.300,"),
			`t.yaml:6:17: hosts[0].addresses[0]: "10.0.0.300" is not an IP address`},
		{"duplicate address",
			edit(t, `"fd00::1"`, "10.0.0.1"),
			`t.yaml:6:27: hosts[0].addresses[1]: duplicate address 10.0.0.1 (addresses[0] has it too)`},
		{"destination without port",
			edit(t, "203.0.113.10:443", "203.0.113.10"),
			`t.yaml:12:10: workloads[0].to[0]: "203.0.113.10" is not ip:port (IPv6 as [::1]:80)`},
		{"destination port 0",
			edit(t, "203.0.113.10:443", "203.0.113.10:0"),
			`t.yaml:12:10: workloads[0].to[0]: port must be 1..65535, got 0`},
		{"destination port too big",
			edit(t, "203.0.113.10:443", "203.0.113.10:65536"),
			`t.yaml:12:10: workloads[0].to[0]: "203.0.113.10:65536" is not ip:port (IPv6 as [::1]:80)`},
		{"mixed families",
			edit(t, `["203.0.113.10:443"]`, `["203.0.113.10:443", "[2001:db8::1]:443"]`),
			`t.yaml:12:30: workloads[0].to[1]: [2001:db8::1]:443 is IPv6 but 203.0.113.10:443 is IPv4; a workload's destinations share one address family`},
		{"source of the wrong family",
			edit(t, "    stop: 60s\n", "    stop: 60s\n    source: fd00::1\n"),
			`t.yaml:17:13: workloads[0].source: fd00::1 is IPv6 but the destinations are IPv4`},
		{"source not on the host",
			edit(t, "    stop: 60s\n", "    stop: 60s\n    source: 10.0.0.2\n"),
			`t.yaml:17:13: workloads[0].source: 10.0.0.2 is not an address of host "client" (addresses: 10.0.0.1, fd00::1)`},
		{"unknown host in from",
			edit(t, "from: client", "from: server"),
			`t.yaml:11:11: workloads[0].from: no host named "server" (hosts: client)`},
		{"duplicate host",
			edit(t, "workloads:\n", "  - {name: client, os: linux, addresses: [10.0.0.2]}\nworkloads:\n"),
			`t.yaml:9:12: hosts[1].name: duplicate host name "client" (hosts[0] has it too)`},
		{"duplicate workload",
			base + "  - {name: api, from: client, to: [\"203.0.113.10:80\"], arrival: {process: poisson, rate: 1}, hold: {dist: fixed, value: 0s}, close: rst}\n",
			`t.yaml:17:12: workloads[1].name: duplicate workload name "api" (workloads[0] has it too)`},
		{"stop after duration",
			edit(t, "stop: 60s", "stop: 130s"),
			`t.yaml:16:11: workloads[0].stop: 2m10s is after the end of the run (duration 2m0s)`},
		{"stop before start",
			edit(t, "    stop: 60s\n", "    start: 70s\n    stop: 60s\n"),
			`t.yaml:17:11: workloads[0].stop: must be after start (1m10s), got 1m0s`},
		{"start after the end without stop",
			edit(t, "    stop: 60s\n", "    start: 120s\n"),
			`t.yaml:16:12: workloads[0].start: must be before the end of the run (duration 2m0s), got 2m0s`},
		{"field of another dist",
			edit(t, "dist: exponential, mean", "dist: fixed, mean"),
			`t.yaml:14:25: workloads[0].hold.mean: does not apply to dist fixed (it takes dist, value)`},
		{"field of another process",
			edit(t, "process: poisson, rate: 600", "process: poisson, rate: 600, on: 1s"),
			`t.yaml:13:44: workloads[0].arrival.on: does not apply to process poisson (it takes process, rate)`},
		{"missing sub-field",
			edit(t, "{process: poisson, rate: 600}", "{process: poisson}"),
			`t.yaml:13:14: workloads[0].arrival.rate: missing; process poisson needs rate (connections per second)`},
		{"unknown process",
			edit(t, "process: poisson", "process: bursty"),
			`t.yaml:13:24: workloads[0].arrival.process: unknown process "bursty" (known: constant, poisson, ramp, onoff)`},
		{"ramp from 0 to 0",
			edit(t, "process: poisson, rate: 600", "process: ramp, from: 0, to: 0"),
			`t.yaml:13:43: workloads[0].arrival.to: a ramp from 0 to 0 opens no connections; one end must be > 0`},
		{"onoff with on 0",
			edit(t, "process: poisson, rate: 600", "process: onoff, rate: 5, on: 0s, off: 1s"),
			`t.yaml:13:44: workloads[0].arrival.on: must be > 0, got 0s`},
		{"lognormal sigma 0",
			edit(t, "dist: exponential, mean: 100ms", "dist: lognormal, median: 1s, sigma: 0"),
			`t.yaml:14:48: workloads[0].hold.sigma: must be > 0, got 0`},
		{"negative fixed hold",
			edit(t, "dist: exponential, mean: 100ms", "dist: fixed, value: -1s"),
			`t.yaml:14:32: workloads[0].hold.value: must be >= 0, got -1s`},
		{"close weights all zero",
			edit(t, "close: client", "close: {client: 0, rst: 0}"),
			`t.yaml:15:12: workloads[0].close: weights must add up to a finite number > 0, got 0`},
		{"close weight negative",
			edit(t, "close: client", "close: {client: 1, rst: -1}"),
			`t.yaml:15:29: workloads[0].close.rst: weights must be >= 0, got -1`},
		{"close word unknown",
			edit(t, "close: client", "close: both"),
			`t.yaml:15:12: workloads[0].close: must be client, server, rst or weights such as {client: 0.9, rst: 0.1}, got "both"`},
		{"YAML syntax error",
			edit(t, "{process: poisson, rate: 600}", "{process: poisson, rate: 600"),
			`t.yaml:14:5: YAML: ',' or '}' must be specified`},
		{"duplicate key",
			edit(t, "name: t\n", "name: t\nname: u\n"),
			`t.yaml:2:1: YAML: mapping key "name" already defined at [1:1]`},
		{"wrong type: rate",
			edit(t, "rate: 600", `rate: "fast"`),
			`t.yaml:13:39: workloads[0].arrival.rate: must be a number, got "fast"`},
		{"wrong type: hosts",
			edit(t, hostsBlock, "hosts: 3\n"),
			`t.yaml:3:8: hosts: must be a list, got 3`},
		{"duration without unit",
			edit(t, "duration: 120s", "duration: 120"),
			`t.yaml:2:11: duration: must be a duration with a unit such as "100ms" or "60s", got 120`},
		{"duration zero",
			edit(t, "duration: 120s", "duration: 0s"),
			`t.yaml:2:11: duration: must be > 0, got 0s`},
		{"sample above duration",
			edit(t, "duration: 120s\n", "duration: 120s\nsample: 121s\n"),
			`t.yaml:3:9: sample: must be > 0 and at most the duration (2m0s), got 2m1s`},
		{"negative seed",
			"seed: -1\n" + base,
			`t.yaml:1:7: seed: must be an integer from 0 to 18446744073709551615, got -1`},
		{"missing name",
			strings.TrimPrefix(base, "name: t\n"),
			`t.yaml:1:1: name: missing; every scenario has a name`},
		{"empty name",
			edit(t, "name: t\n", "name: \"\"\n"),
			`t.yaml:1:7: name: must not be empty`},
		{"no hosts",
			edit(t, hostsBlock, "hosts: []\n"),
			`t.yaml:3:8: hosts: list at least one host`},
		{"unknown sysctl",
			edit(t, "tcp_tw_reuse: 0", "tcp_syncookies: 1"),
			`t.yaml:8:7: hosts[0].sysctls.net.ipv4.tcp_syncookies: unknown sysctl "net.ipv4.tcp_syncookies" (known: net.ipv4.ip_autobind_reuse, net.ipv4.ip_local_port_range, net.ipv4.ip_local_reserved_ports, net.ipv4.ip_unprivileged_port_start, net.ipv4.tcp_fin_timeout, net.ipv4.tcp_max_tw_buckets, net.ipv4.tcp_syn_retries, net.ipv4.tcp_timestamps, net.ipv4.tcp_tw_reuse, net.ipv4.tcp_tw_reuse_delay)`},
		{"sysctl value out of range",
			edit(t, "tcp_tw_reuse: 0", "tcp_tw_reuse: 3"),
			`t.yaml:8:30: hosts[0].sysctls.net.ipv4.tcp_tw_reuse: 3 is outside 0..2`},
		{"time_wait zero",
			edit(t, "    sysctls:\n", "    time_wait: 0s\n    sysctls:\n"),
			`t.yaml:7:16: hosts[0].time_wait: must be > 0, got 0s`},
		{"negative rtt",
			edit(t, "stop: 60s", "rtt: -1ms"),
			`t.yaml:16:10: workloads[0].rtt: must be >= 0, got -1ms`},
		{"YAML tag",
			edit(t, "rate: 600", "rate: !!float 600"),
			`t.yaml:13:39: workloads[0].arrival.rate: YAML tags such as !!float are not supported; write the plain value`},
		{"two documents",
			base + "---\nname: u\n",
			`t.yaml:18:1: a scenario file holds one YAML document`},
		{"not a mapping",
			"- 1\n",
			`t.yaml:1:1: must be a mapping, got a list`},
		{"empty file", "", `t.yaml: the file is empty; a scenario needs name, duration, hosts and workloads`},
		{"nesting too deep", "name: " + strings.Repeat("[", 100),
			`t.yaml:1:71: YAML: [ and { nest more than 64 deep`},
	}
}

func TestParseErrors(t *testing.T) {
	for _, tt := range badCases(t) {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse([]byte(tt.src), "t.yaml", nil)
			require.Error(t, err)
			assert.Nil(t, s)
			var e *Error
			require.True(t, errors.As(err, &e), "error is *Error: %T %v", err, err)
			assert.Equal(t, tt.want, err.Error())
		})
	}
}

func TestParseTooBig(t *testing.T) {
	src := base + "# " + strings.Repeat("x", MaxSize) + "\n"
	_, err := Parse([]byte(src), "t.yaml", nil)
	assert.EqualError(t, err, fmt.Sprintf("t.yaml: %d bytes is more than the %d a scenario may have", len(src), MaxSize))
}

func TestAnchorsAndMerge(t *testing.T) {
	src := edit(t, "workloads:\n", `defaults: &w
  from: client
  to: ["203.0.113.10:443"]
  hold: {dist: fixed, value: 10ms}
  close: client
workloads:
`)
	// defaults is not a scenario field; anchors must live in a field, so put
	// the anchor on the first workload instead.
	_, err := Parse([]byte(src), "t.yaml", nil)
	require.EqualError(t, err, `t.yaml:9:1: defaults: unknown field "defaults" (known: name, description, seed, duration, sample, hosts, workloads, servers, nats)`)

	src = base + `  - &second
    name: second
    from: client
    to: ["203.0.113.10:80"]
    arrival: {process: constant, rate: 5}
    hold: {dist: fixed, value: 10ms}
    close: server
  - <<: *second
    name: third
    close: rst
`
	s, err := Parse([]byte(src), "t.yaml", nil)
	require.NoError(t, err)
	require.Len(t, s.Workloads, 3)
	third := s.Workloads[2]
	assert.Equal(t, "third", third.Name)
	assert.Equal(t, CloseMix{RST: 1}, third.Close, "explicit key wins over the merged one")
	assert.Equal(t, Arrival{Process: Constant, Rate: 5}, third.Arrival, "merged")

	// An error in a merged value is positioned where it is written.
	bad := strings.Replace(src, "rate: 5", "rate: -5", 1)
	_, err = Parse([]byte(bad), "t.yaml", nil)
	require.EqualError(t, err, `t.yaml:21:40: workloads[1].arrival.rate: must be > 0, got -5`)

	// A merge cycle is an error, not a hang.
	cyc := base + "  - &loop {name: loop, <<: *loop}\n"
	_, err = Parse([]byte(cyc), "t.yaml", nil)
	var e *Error
	require.ErrorAs(t, err, &e)
}

func TestArrivalsHoldsAndClose(t *testing.T) {
	tests := []struct {
		old, new string
		check    func(t *testing.T, w Workload)
	}{
		{"process: poisson, rate: 600", "process: ramp, from: 0, to: 900", func(t *testing.T, w Workload) {
			assert.Equal(t, Arrival{Process: Ramp, Rate: 0, RateTo: 900}, w.Arrival)
		}},
		{"process: poisson, rate: 600", "process: onoff, rate: 50.5, on: 2s, off: 0s", func(t *testing.T, w Workload) {
			assert.Equal(t, Arrival{Process: OnOff, Rate: 50.5, On: 2 * time.Second}, w.Arrival)
		}},
		{"dist: exponential, mean: 100ms", "dist: lognormal, median: 50ms, sigma: 1.5", func(t *testing.T, w Workload) {
			assert.Equal(t, Hold{Dist: Lognormal, Median: 50 * time.Millisecond, Sigma: 1.5}, w.Hold)
		}},
		{"dist: exponential, mean: 100ms", "dist: pareto, scale: 10ms, shape: 2", func(t *testing.T, w Workload) {
			assert.Equal(t, Hold{Dist: Pareto, Scale: 10 * time.Millisecond, Shape: 2}, w.Hold)
		}},
		{"dist: exponential, mean: 100ms", "dist: fixed, value: 0", func(t *testing.T, w Workload) {
			assert.Equal(t, Hold{Dist: Fixed}, w.Hold)
		}},
		{"close: client", "close: {client: 9, rst: 1}", func(t *testing.T, w Workload) {
			assert.InDelta(t, 0.9, w.Close.Client, 1e-12)
			assert.InDelta(t, 0.1, w.Close.RST, 1e-12)
			assert.Zero(t, w.Close.Server)
		}},
		{"stop: 60s", "start: 1s\n    rtt: 20ms\n    source: 10.0.0.1", func(t *testing.T, w Workload) {
			assert.Equal(t, time.Second, w.Start)
			assert.Equal(t, 120*time.Second, w.Stop, "defaults to the duration")
			assert.Equal(t, 20*time.Millisecond, w.RTT)
		}},
		{`to: ["203.0.113.10:443"]`, `to: ["[2001:db8::1]:443"]`, func(t *testing.T, w Workload) {
			assert.Equal(t, netip.MustParseAddr("fd00::1"), w.Source, "first address of the destinations' family")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.new, func(t *testing.T) {
			s, err := Parse([]byte(edit(t, tt.old, tt.new)), "t.yaml", nil)
			require.NoError(t, err)
			tt.check(t, s.Workloads[0])
		})
	}
}

func TestTimeWait(t *testing.T) {
	tests := []struct {
		os, tw       string
		want         time.Duration
		hypothetical bool
	}{
		{"linux", "30s", 30 * time.Second, true},
		{"linux", "60s", 60 * time.Second, false},
		{"windows", "120s", 120 * time.Second, false},
	}
	for _, tt := range tests {
		t.Run(tt.os+"/"+tt.tw, func(t *testing.T) {
			src := edit(t, "    sysctls:\n      net.ipv4.tcp_tw_reuse: 0\n", "    time_wait: "+tt.tw+"\n")
			src = strings.Replace(src, "os: linux", "os: "+tt.os, 1)
			s, err := Parse([]byte(src), "t.yaml", nil)
			require.NoError(t, err)
			assert.Equal(t, tt.want, s.Hosts[0].Profile.TimeWait)
			assert.Equal(t, tt.hypothetical, s.Hosts[0].TimeWaitHypothetical)
		})
	}
}

func TestOverrides(t *testing.T) {
	tests := []struct {
		name  string
		set   []string
		check func(t *testing.T, s *Scenario)
	}{
		{"rate", []string{"workloads.0.arrival.rate=800"}, func(t *testing.T, s *Scenario) {
			assert.Equal(t, 800.0, s.Workloads[0].Arrival.Rate)
		}},
		{"seed", []string{"seed=7"}, func(t *testing.T, s *Scenario) {
			assert.Equal(t, uint64(7), s.Seed)
		}},
		{"duration", []string{"duration=30s"}, func(t *testing.T, s *Scenario) {
			assert.Equal(t, 30*time.Second, s.Duration)
			assert.Equal(t, 30*time.Second, s.Workloads[0].Stop)
		}},
		{"absent field", []string{"workloads.0.stop=30s"}, func(t *testing.T, s *Scenario) {
			assert.Equal(t, 30*time.Second, s.Workloads[0].Stop)
		}},
		{"sysctl key with dots, sysctls absent", []string{"hosts.0.sysctls.net.ipv4.tcp_tw_reuse=1"}, func(t *testing.T, s *Scenario) {
			assert.Equal(t, 1, s.Hosts[0].Profile.TCPTwReuse)
			assert.Equal(t, map[string]string{"net.ipv4.tcp_tw_reuse": "1"}, s.Hosts[0].Sysctls)
		}},
		{"two sysctls", []string{
			"hosts.0.sysctls.net.ipv4.tcp_tw_reuse=0",
			`hosts.0.sysctls.net.ipv4.ip_local_port_range=1024 2047`,
		}, func(t *testing.T, s *Scenario) {
			assert.Equal(t, 0, s.Hosts[0].Profile.TCPTwReuse)
			assert.Equal(t, alloc.Range{Low: 1024, High: 2047}, s.Hosts[0].Profile.PortRange)
		}},
		{"flow list", []string{`workloads.0.to=["1.2.3.4:80", 1.2.3.5:80]`}, func(t *testing.T, s *Scenario) {
			assert.Equal(t, []netip.AddrPort{
				netip.MustParseAddrPort("1.2.3.4:80"), netip.MustParseAddrPort("1.2.3.5:80"),
			}, s.Workloads[0].To)
		}},
		{"flow mapping", []string{"workloads.0.arrival={process: constant, rate: 5}"}, func(t *testing.T, s *Scenario) {
			assert.Equal(t, Arrival{Process: Constant, Rate: 5}, s.Workloads[0].Arrival)
		}},
		{"later wins", []string{"seed=7", "seed=8"}, func(t *testing.T, s *Scenario) {
			assert.Equal(t, uint64(8), s.Seed)
		}},
		{"value with spaces and =", []string{"description=a = b"}, func(t *testing.T, s *Scenario) {
			assert.Equal(t, "a = b", s.Description)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Load(Default, tt.set)
			require.NoError(t, err)
			tt.check(t, s)
		})
	}
}

func TestOverrideErrors(t *testing.T) {
	tests := []struct {
		name, set, want string
	}{
		{"bad path", "nosuch.x=1", `--set: nosuch: unknown field "nosuch" (known: name, description, seed, duration, sample, hosts, workloads, servers, nats)`},
		{"bad nested path", "workloads.0.arrival.burst=1", `--set: workloads[0].arrival.burst: unknown field "burst" (known: process, rate, from, to, on, off)`},
		{"into a scalar", "duration.x=1", `--set: duration.x: duration is "120s", not a mapping or a list, so it has no "x"`},
		{"bad index", "workloads.3.stop=1s", `--set: workloads.3.stop: index 3 is out of range: workloads has 1 entry`},
		{"not an index", "workloads.first.stop=1s", `--set: workloads.first.stop: workloads is a list; "first" is not an index`},
		{"negative index", "workloads.-1.stop=1s", `--set: workloads.-1.stop: workloads is a list; "-1" is not an index`},
		{"index below a missing key", "workloads.0.extra.0=1", `--set: workloads.0.extra.0: workloads.0.extra does not exist, and --set does not create lists (index 0)`},
		{"no equals", "seed", `--set: "seed" is not PATH=VALUE (e.g. workloads.0.arrival.rate=800)`},
		{"empty path", "=1", `--set: malformed path "": empty element (write keys and list indexes separated by single dots)`},
		{"double dot", "workloads..stop=1s", `--set: workloads..stop: malformed path "workloads..stop": empty element (write keys and list indexes separated by single dots)`},
		{"value syntax", "workloads.0.to=[1.2.3.4:80", `--set: workloads.0.to: value "[1.2.3.4:80": YAML: sequence end token ']' not found`},
		{"alias in value", "seed=*x", `--set: seed: value "*x": anchors and aliases are not allowed in --set values`},
		{"bad value", "workloads.0.arrival.rate=-5", `--set: workloads[0].arrival.rate: must be > 0, got -5`},
		{"bad type", "workloads.0.arrival.rate=fast", `--set: workloads[0].arrival.rate: must be a number, got "fast"`},
		{"bad sysctl", "hosts.0.sysctls.net.ipv4.ip_local_port_range=61000 32768",
			`--set: hosts[0].sysctls.net.ipv4.ip_local_port_range: low 61000 is above high 32768`},
		{"duration makes stop too late", "duration=10s", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(base), "t.yaml", []string{tt.set})
			var e *Error
			require.ErrorAs(t, err, &e)
			if tt.want == "" {
				// The file's stop (60s) is now after the end: positioned
				// in the file.
				assert.Equal(t, `t.yaml:16:11: workloads[0].stop: 1m0s is after the end of the run (duration 10s)`, err.Error())
				return
			}
			assert.Equal(t, "--set", e.File)
			assert.Equal(t, tt.want, err.Error())
		})
	}
}

func TestOverrideThroughAnchor(t *testing.T) {
	src := base + `  - <<: &w
      from: client
      to: ["203.0.113.10:80"]
      arrival: {process: constant, rate: 5}
      hold: {dist: fixed, value: 10ms}
      close: server
    name: second
`
	s, err := Parse([]byte(src), "t.yaml", []string{"workloads.1.close=rst"})
	require.NoError(t, err)
	assert.Equal(t, CloseMix{RST: 1}, s.Workloads[1].Close, "an added key wins over the merged one")

	s, err = Parse([]byte(src), "t.yaml", []string{"workloads.1.arrival={process: poisson, rate: 9}"})
	require.NoError(t, err)
	assert.Equal(t, Arrival{Process: Poisson, Rate: 9}, s.Workloads[1].Arrival, "a merged mapping can be replaced whole")

	_, err = Parse([]byte(src), "t.yaml", []string{"workloads.1.arrival.rate=9"})
	assert.EqualError(t, err, "--set: workloads.1.arrival.rate: workloads.1.arrival comes from a merge key (<<); --set can replace it whole but not change a field inside it")

	// Setting a value inside an anchor changes every alias of it.
	src = strings.Replace(base, "{process: poisson, rate: 600}", "&arr {process: poisson, rate: 600}", 1) +
		"  - {name: b, from: client, to: [\"203.0.113.10:80\"], arrival: *arr, hold: {dist: fixed, value: 0s}, close: rst}\n"
	s, err = Parse([]byte(src), "t.yaml", []string{"workloads.0.arrival.rate=7"})
	require.NoError(t, err)
	assert.Equal(t, 7.0, s.Workloads[1].Arrival.Rate)

	_, err = Parse([]byte(src), "t.yaml", []string{"workloads.1.arrival.rate=1"})
	assert.EqualError(t, err, "--set: workloads.1.arrival.rate: workloads.1.arrival is an alias (*arr); --set cannot change a value through an alias, set the anchored value instead")
}

func TestOSHost(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(tcpstate.DefaultSysctlDir, "ip_local_port_range"))
	if err != nil || !hostReadable() {
		t.Skipf("os: host reads %s, which is not readable here: %v", tcpstate.DefaultSysctlDir, err)
	}
	want, err := alloc.ParseRange(string(b))
	require.NoError(t, err)

	s, err := Parse([]byte(edit(t, "os: linux", "os: host")), "t.yaml", nil)
	require.NoError(t, err)
	h := s.Hosts[0]
	assert.Equal(t, "host", h.OS)
	assert.Equal(t, want, h.Profile.PortRange, "range is this machine's %q", strings.TrimSpace(string(b)))
	assert.Equal(t, 0, h.Profile.TCPTwReuse, "the file's sysctls still apply on top")
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mine.yaml")
	require.NoError(t, os.WriteFile(path, []byte(base), 0o644))
	s, err := Load(path, []string{"seed=3"})
	require.NoError(t, err)
	assert.Equal(t, path, s.File)
	assert.Equal(t, uint64(3), s.Seed)

	require.NoError(t, os.WriteFile(path, []byte(edit(t, "rate: 600", "rate: -5")), 0o644))
	_, err = Load(path, nil)
	assert.EqualError(t, err, path+":13:39: workloads[0].arrival.rate: must be > 0, got -5")

	tests := []struct{ arg, want string }{
		{"no-such-scenario", "no-such-scenario: no such file or built-in scenario (built-ins: bind-before-connect, burst-recovery, dotnet-connection-close, k6-no-reuse, linux-burst, nat-app-service, nat-aws-55k, nat-azure-lb-prealloc, nat-gcp-min-ports, nat-home-router, nat-k8s-masquerade, predict-victim, reuseport-listeners, server-closes-first, server-restart-eaddrinuse, spread-destinations, this-host, tw-reuse-loopback)"},
		{dir, dir + ": is a directory, not a scenario file"},
	}
	for _, tt := range tests {
		_, err := Load(tt.arg, nil)
		var e *Error
		require.ErrorAs(t, err, &e)
		assert.Equal(t, tt.want, err.Error())
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		e    Error
		want string
	}{
		{Error{File: "a.yaml", Line: 3, Column: 7, Field: "seed", Msg: "bad"}, "a.yaml:3:7: seed: bad"},
		{Error{File: "a.yaml", Line: 3, Field: "seed", Msg: "bad"}, "a.yaml:3: seed: bad"},
		{Error{File: "--set", Field: "seed", Msg: "bad"}, "--set: seed: bad"},
		{Error{File: "a.yaml", Msg: "two\nlines"}, "a.yaml: two lines"},
		{Error{File: "a.yaml", Field: "k\re\u2028y", Msg: "tab\there"}, `a.yaml: k\re\u2028y: tab\there`},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, tt.e.Error())
	}
}

// servers: listeners on a host, with restarts; errors are positioned.
func TestServers(t *testing.T) {
	src := base + `servers:
  - name: web
    host: client
    listen: "10.0.0.1:8080"
    listeners: 2
    options: [SO_REUSEPORT]
    restarts: [{at: 5s, down: 1s, options: [SO_REUSEADDR]}]
`
	s, err := Parse([]byte(src), "t.yaml", nil)
	require.NoError(t, err)
	require.Len(t, s.Servers, 1)
	sv := s.Servers[0]
	assert.Equal(t, 0, sv.Host)
	assert.Equal(t, netip.MustParseAddrPort("10.0.0.1:8080"), sv.Listen)
	assert.Equal(t, 2, sv.Listeners)
	assert.True(t, sv.Options.ReusePort)
	require.Len(t, sv.Restarts, 1)
	assert.Equal(t, Restart{At: 5 * time.Second, Down: time.Second, Retry: time.Second, Options: SockOptions{ReuseAddr: true}}, sv.Restarts[0])
	assert.True(t, s.Hosts[0].Privileged, "hosts are privileged unless they say otherwise")

	_, err = Parse([]byte(strings.Replace(src, `listen: "10.0.0.1:8080"`, `listen: "10.0.0.9:8080"`, 1)), "t.yaml", nil)
	assert.ErrorContains(t, err, `t.yaml:20:13: servers[0].listen: 10.0.0.9 is not an address of host "client"`)
	_, err = Parse([]byte(strings.Replace(src, "host: client", "host: nobody", 1)), "t.yaml", nil)
	assert.ErrorContains(t, err, `servers[0].host: no host named "nobody"`)
	_, err = Parse([]byte(strings.Replace(src, "listeners: 2", "listeners: 0", 1)), "t.yaml", nil)
	assert.ErrorContains(t, err, "servers[0].listeners: must be a whole number from 1 to 1024")
	_, err = Parse([]byte(strings.Replace(src, "at: 5s", "at: 500s", 1)), "t.yaml", nil)
	assert.ErrorContains(t, err, "must be before the end of the run")
}
