package tcpstate

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portsim/portsim/alloc"
)

// The presets carry the numbers of os-semantics.md §9.
func TestPresets(t *testing.T) {
	for _, tc := range []struct {
		name   string
		rng    string
		tw     time.Duration
		shares bool
		alloc  string
		first  int
	}{
		{"linux", "32768-60999", 60 * time.Second, true, "linux", 0},
		{"linux-5.15", "32768-60999", 60 * time.Second, true, "linux-alg4-256", 0},
		{"linux-5.10", "32768-60999", 60 * time.Second, true, "linux-alg3", 0},
		{"linux-4.19", "32768-60999", 60 * time.Second, true, "linux-alg3", 0},
		{"freebsd-13", "10000-65535", 60 * time.Second, true, "freebsd-13", 0},
		{"gvisor", "16000-65535", 60 * time.Second, true, "random-start", 0},
		{"windows", "49152-65535", 240 * time.Second, false, "sequential", 0},
		{"macos", "49152-65535", 30 * time.Second, false, "sequential", 0},
		{"freebsd", "10000-65535", 60 * time.Second, true, "random-start", 0},
		{"ns3", "49152-65535", 240 * time.Second, false, "sequential", 49153},
	} {
		p, err := Preset(tc.name)
		require.NoError(t, err)
		assert.Equal(t, tc.rng, p.PortRange.String(), tc.name)
		assert.Equal(t, tc.tw, p.TimeWait, tc.name)
		assert.Equal(t, tc.shares, p.ConnectSharesPort, tc.name)
		assert.Equal(t, tc.alloc, p.Allocator, tc.name)
		assert.Equal(t, tc.first, p.FirstPort, tc.name)
		assert.NotEmpty(t, p.Source, tc.name)
		assert.NotEmpty(t, p.Family, tc.name)
		assert.NotEmpty(t, p.BindAllocator, tc.name)
		assert.NotEmpty(t, p.UDPAllocator, tc.name)
	}
	// Every preset waits a while in an orphaned FIN_WAIT_2 (0 would drop
	// every late-closing peer at once).
	for _, name := range PresetNames() {
		if name == HostPreset {
			continue
		}
		p, err := Preset(name)
		require.NoError(t, err)
		assert.Greater(t, p.TCPFinTimeout, time.Duration(0), name)
		assert.Greater(t, p.TimeWait, time.Duration(0), name)
	}
	p, _ := Preset("linux")
	assert.Equal(t, 28232, p.UsablePorts())
	assert.True(t, p.TimeWaitFixed)
	_, err := Preset("solaris")
	assert.ErrorContains(t, err, `unknown OS preset "solaris" (known: freebsd, freebsd-13, gvisor, host, linux, linux-4.19, linux-5.10, linux-5.15, macos, ns3, windows)`)
	// Every preset's allocators exist.
	for _, name := range PresetNames() {
		if name == HostPreset {
			continue
		}
		p, err := Preset(name)
		require.NoError(t, err)
		for _, a := range []string{p.Allocator, p.BindAllocator, p.UDPAllocator} {
			assert.Contains(t, alloc.Names(), a, "preset %s", name)
		}
	}
}

func TestSetSysctl(t *testing.T) {
	for _, tc := range []struct {
		os, key, value, err string
	}{
		{"linux", "net.ipv4.ip_local_port_range", "1024 65535", ""},
		{"linux", "net.ipv4.ip_local_port_range", "61000 32768", "61000"},
		{"linux-4.19", "net.ipv4.ip_local_port_range", "10000\t20000", ""},
		{"windows", "net.ipv4.ip_local_port_range", "10000 20000", "ephemeral_range"},
		{"freebsd", "net.ipv4.ip_local_reserved_ports", "10000", "Linux sysctl"},
		{"linux", "net.ipv4.ip_local_reserved_ports", "8080,40010-40019", ""},
		{"linux", "net.ipv4.ip_local_reserved_ports", "40019-40010", "40019"},
		{"linux", "net.ipv4.tcp_tw_reuse", "1", ""},
		{"linux", "net.ipv4.tcp_tw_reuse", "3", "outside 0..2"},
		{"linux", "net.ipv4.tcp_tw_reuse_delay", "250", ""},
		{"linux", "net.ipv4.tcp_fin_timeout", "30", ""},
		{"linux", "net.ipv4.tcp_fin_timeout", "0", "outside 1..3600"},
		{"linux", "net.ipv4.tcp_syn_retries", "3", ""},
		{"linux", "net.ipv4.tcp_syn_retries", "128", "outside 1..127"},
		{"linux", "net.ipv4.ip_unprivileged_port_start", "80", ""},
		{"linux", "net.ipv4.ip_autobind_reuse", "2", "outside 0..1"},
		{"linux", "net.ipv4.tcp_tw_reuse_delay", "0", "outside 1..60000"},
		{"linux", "net.ipv4.tcp_timestamps", "x", "not an integer"},
		{"linux", "net.ipv4.tcp_max_tw_buckets", "-1", "outside"},
		{"macos", "net.ipv4.tcp_tw_reuse", "1", "Linux sysctl"},
	} {
		p, err := Preset(tc.os)
		require.NoError(t, err)
		err = p.SetSysctl(tc.key, tc.value)
		if tc.err == "" {
			assert.NoError(t, err, "%s=%s", tc.key, tc.value)
		} else {
			assert.ErrorContains(t, err, tc.err, "%s=%s", tc.key, tc.value)
		}
	}
}

func writeSysctls(t *testing.T, vals map[string]string) string {
	dir := t.TempDir()
	for k, v := range vals {
		require.NoError(t, os.WriteFile(filepath.Join(dir, k), []byte(v+"\n"), 0o644))
	}
	return dir
}

func TestReadHostFake(t *testing.T) {
	dir := writeSysctls(t, map[string]string{
		"ip_local_port_range":     "20000\t29999",
		"ip_local_reserved_ports": "20080",
		"tcp_tw_reuse":            "0",
		"tcp_max_tw_buckets":      "4096",
		"tcp_timestamps":          "1",
		"tcp_fin_timeout":         "30",
		"tcp_syn_retries":         "4",
	})
	p, err := ReadHost(dir)
	require.NoError(t, err)
	assert.Equal(t, "host", p.Name)
	assert.Equal(t, "20000-29999", p.PortRange.String())
	assert.Equal(t, "20080", p.Reserved.String())
	assert.Equal(t, 0, p.TCPTwReuse)
	assert.Equal(t, 4096, p.TCPMaxTwBuckets)
	assert.Equal(t, 30*time.Second, p.TCPFinTimeout)
	assert.Equal(t, 4, p.SynRetries)
	assert.Equal(t, 31*time.Second, p.SynTimeout(5), "1+2+4+8+16 s: the give-up time after 4 retransmissions")
	assert.Equal(t, 127*time.Second, p.SynTimeout(7), "Linux's default 6 retransmissions: 127 s")
	assert.Equal(t, 367*time.Second, p.SynTimeout(9), "1+...+64, then 120 and 120 s (TCP_RTO_MAX): tcp_syn_retries=8 gives up at 367 s")
	assert.Equal(t, 127*time.Second+121*120*time.Second, p.SynTimeout(128), "tcp_syn_retries=127: no overflow")
	assert.Equal(t, 9999, p.UsablePorts())
	assert.Contains(t, p.Source, dir)

	// A missing file is an error naming it.
	require.NoError(t, os.Remove(filepath.Join(dir, "tcp_timestamps")))
	_, err = ReadHost(dir)
	assert.ErrorContains(t, err, "tcp_timestamps")
	// A malformed one too.
	dir = writeSysctls(t, map[string]string{"ip_local_port_range": "oops"})
	_, err = ReadHost(dir)
	assert.ErrorContains(t, err, "ip_local_port_range")
}

// On Linux, ReadHost agrees with /proc; elsewhere it fails clearly.
func TestReadHostReal(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(DefaultSysctlDir, "ip_local_port_range"))
	if err != nil {
		t.Skipf("no %s on this machine (%v): os: host needs Linux /proc", DefaultSysctlDir, err)
	}
	p, err := ReadHost(DefaultSysctlDir)
	require.NoError(t, err)
	assert.Equal(t, strings.Join(strings.Fields(string(b)), "-"), p.PortRange.String())
}

// ns-3's counter starts at the range's low end and is pre-incremented, so a
// narrowed range starts at its Low+1; other presets keep FirstPort 0 (Low).
func TestFirstPortFollowsRange(t *testing.T) {
	for _, tc := range []struct {
		os, rng string
		want    int
	}{
		{"ns3", "40000 40009", 40001},
		{"ns3", "40000 40000", 40000},
		{"ns3", "1024 65535", 1025},
		{"macos", "40000 40009", 0},
	} {
		p, err := Preset(tc.os)
		require.NoError(t, err)
		r, err := alloc.ParseRange(tc.rng)
		require.NoError(t, err)
		p.SetPortRange(r)
		assert.Equal(t, tc.want, p.FirstPort, "%s %s", tc.os, tc.rng)
	}
}

func TestSysctlNames(t *testing.T) {
	assert.Equal(t, []string{
		"net.ipv4.ip_autobind_reuse",
		"net.ipv4.ip_local_port_range",
		"net.ipv4.ip_local_reserved_ports",
		"net.ipv4.ip_unprivileged_port_start",
		"net.ipv4.tcp_fin_timeout",
		"net.ipv4.tcp_max_tw_buckets",
		"net.ipv4.tcp_syn_retries",
		"net.ipv4.tcp_timestamps",
		"net.ipv4.tcp_tw_reuse",
		"net.ipv4.tcp_tw_reuse_delay",
	}, SysctlNames())
	for _, n := range SysctlNames() {
		p, err := Preset("linux")
		require.NoError(t, err)
		assert.NotContains(t, fmt.Sprint(p.SetSysctl(n, "")), "unknown sysctl", n)
	}
}
