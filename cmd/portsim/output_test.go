package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portsim/portsim/scenarios"
	"github.com/portsim/portsim/sim"
)

func TestPrintRunTables(t *testing.T) {
	first := 12.3456
	linux := sim.HostSettings{
		OS: "linux", Source: "Linux 6.x", PortRange: "32768-60999", UsablePorts: 28232,
		TimeWaitS: 30, TimeWaitHypothetical: true, ConnectSharesPort: true, Allocator: "random-start",
		TCPTwReuse: 2, TCPTimestamps: true, TCPMaxTwBuckets: 100,
	}
	host := sim.HostSettings{
		OS: "host", Source: "this machine: /proc/sys/net/ipv4", PortRange: "1024-65535",
		ReservedPorts: "8080,9000-9010", UsablePorts: 64500, TimeWaitS: 60, Allocator: "random-start",
		TCPMaxTwBuckets: -1,
	}
	sum := &sim.Summary{
		Scenario: "two", File: "two.yaml", Seed: 3, DurationS: 90,
		Totals: sim.Totals{
			Attempts: 30, Successes: 20, FirstFailureS: &first,
			Failures: map[string]uint64{"EAGAIN": 0, "EADDRNOTAVAIL": 10},
		},
		ProbesPerAlloc: sim.Quantiles{P50: 4, P99: 17},
		Hosts: []sim.HostSummary{
			{Name: "a", Totals: sim.Totals{Attempts: 10, Successes: 10}, Settings: linux, TwOverflows: 5},
			{Name: "b", Totals: sim.Totals{Attempts: 20, Successes: 10, Failures: map[string]uint64{"EADDRNOTAVAIL": 10}}, Settings: host},
		},
		Domains: []sim.DomainSummary{{
			Host: "b", Local: "10.0.0.2", Destination: "*", UsablePorts: 64500,
			Totals:         sim.Totals{Attempts: 20, Failures: map[string]uint64{"EADDRNOTAVAIL": 10}},
			MeanPortsInUse: 7.26,
		}},
		MostLoaded: 0,
	}
	s := &scenarios.Scenario{Name: "two", Description: "Two hosts."}
	var out bytes.Buffer
	require.NoError(t, printRunTables(&out, s, sum, nil, []string{"d/summary.json"}))
	got := out.String()
	for _, want := range []string{
		"scenario  two\n          Two hosts.\nfile      two.yaml\nseed      3\nduration  90s\n",
		"30s (hypothetical)",
		"host (settings read from this machine)",
		"this machine: /proc/sys/net/ipv4",
		"8080,9000-9010",
		"no cap",
		"EADDRNOTAVAIL 10",
		"12.346s",
		"TIME_WAIT skipped (tcp_max_tw_buckets full)",
		"Busiest destination (highest offered load): b, 10.0.0.2 -> * (64500 usable ports)",
		"analytic estimates not applicable",
		"7.3",
		"d/summary.json",
	} {
		assert.Contains(t, got, want)
	}
	assert.NotContains(t, got, "EAGAIN", "zero counts are left out")
	assert.NotContains(t, got, "| Erlang B", "no analytic column when it does not apply")
}

func TestPrintRunTablesHeader(t *testing.T) {
	desc := strings.Repeat("A long description that goes on. ", 10)
	s := &scenarios.Scenario{Name: "long", Description: desc}
	sum := &sim.Summary{
		Scenario: "long", File: "builtin:long", Seed: 7, DurationS: 30, MostLoaded: -1,
		Hosts: []sim.HostSummary{{Name: "c", Settings: sim.HostSettings{OS: "linux", TCPTwReuse: 2}}},
	}
	var out bytes.Buffer
	require.NoError(t, printRunTables(&out, s, sum, []string{"workloads.0.arrival.rate=300", "seed=7"}, nil))
	got := out.String()
	assert.Contains(t, got, "file      builtin:long\nset       workloads.0.arrival.rate=300\nset       seed=7\nseed      7\n")
	assert.Contains(t, got, "2 (loopback only)")
	var text []string
	for line := range strings.Lines(got) {
		line = strings.TrimSuffix(line, "\n")
		assert.LessOrEqual(t, len(line), 80, "line too wide: %q", line)
		assert.False(t, strings.HasSuffix(line, " "), "trailing space: %q", line)
		if rest, ok := strings.CutPrefix(line, "          "); ok {
			text = append(text, rest)
		}
	}
	assert.Equal(t, strings.Join(strings.Fields(desc), " "), strings.Join(text, " "), "the description, wrapped")
}

func TestWritePorts(t *testing.T) {
	res := &sim.Result{
		Summary: sim.Summary{Domains: []sim.DomainSummary{
			{Host: "client", Local: "10.0.0.1", Destination: "203.0.113.10:443"},
			{Host: "server", Local: "2001:db8::1", Destination: "*"},
		}},
		Ports: []sim.PortChoice{
			{TS: 0, Domain: 0, Port: 32768},
			{TS: 0.0015, Domain: 1, Port: 65535},
			{TS: 12.5, Domain: 0, Port: 1024},
		},
	}
	var out bytes.Buffer
	require.NoError(t, writePorts(&out, res))
	assert.Equal(t, "t_s,host,local,destination,port\n"+
		"0,client,10.0.0.1,203.0.113.10:443,32768\n"+
		"0.0015,server,2001:db8::1,*,65535\n"+
		"12.5,client,10.0.0.1,203.0.113.10:443,1024\n", out.String())

	res.Ports = nil
	out.Reset()
	require.NoError(t, writePorts(&out, res))
	assert.Equal(t, "t_s,host,local,destination,port\n", out.String(), "header alone")

	res.Ports = []sim.PortChoice{{Domain: 2}}
	path := filepath.Join(t.TempDir(), "ports.csv")
	require.ErrorContains(t, writePortsFile(path, res), "port choice 0 names domain 2 of 2")
	assert.NoFileExists(t, path, "nothing written for a bad result")
}
