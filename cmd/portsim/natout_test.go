package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portsim/portsim/scenarios"
	"github.com/portsim/portsim/sim"
)

// natResult returns a run of two NATs sampled three times, half a second
// apart: "gw" with two external IPs in front of web (two addresses) and
// db, and "node" with one IP in front of pod.
func natResult() *sim.Result {
	return &sim.Result{
		Summary: sim.Summary{
			Scenario: "two-nats", Seed: 1, MostLoaded: -1,
			NATs: []sim.NATSummary{
				{Name: "gw", Preset: "aws-nat-gateway", Inside: []sim.NATInsideSummary{
					{Host: "web", Address: "10.0.0.5"}, {Host: "db", Address: "10.0.0.9"}, {Host: "web", Address: "10.0.0.6"},
				}},
				{Name: "node", Preset: "linux-masquerade", Inside: []sim.NATInsideSummary{{Host: "pod", Address: "10.1.0.2"}}},
			},
		},
		Series: sim.Series{
			IntervalS: 0.5,
			Rows:      []sim.Row{{TS: 0.5}, {TS: 1}, {TS: 1.5}},
			NATs: []sim.NATSeries{
				{Name: "gw", IPs: []string{"203.0.113.1", "2001:db8::1"}, Inside: []string{"web", "db", "web"}, Rows: []sim.NATRow{
					{Flows: 3, IPPorts: []int{2, 1}, InsideFlows: []int{1, 1, 1}},
					{Flows: 7, Drops: 2, IPPorts: []int{4, 3}, InsideFlows: []int{3, 2, 2}},
					{Flows: 5, Drops: 4, IPPorts: []int{3, 2}, InsideFlows: []int{2, 2, 1}},
				}},
				{Name: "node", IPs: []string{"192.0.2.1"}, Inside: []string{"pod"}, Rows: []sim.NATRow{
					{Flows: 1, IPPorts: []int{1}, InsideFlows: []int{1}},
					{Flows: 0, IPPorts: []int{0}, InsideFlows: []int{0}},
					{Flows: 2, Drops: 1, IPPorts: []int{2}, InsideFlows: []int{2}},
				}},
			},
		},
	}
}

func TestWriteNATSeries(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, writeNATSeries(&out, natResult()))
	assert.Equal(t, "t_s,"+
		"gw:flows,gw:drops,gw:ports@203.0.113.1,gw:ports@2001:db8::1,"+
		"gw:flows@web (10.0.0.5),gw:flows@db,gw:flows@web (10.0.0.6),"+
		"node:flows,node:drops,node:ports@192.0.2.1,node:flows@pod\n"+
		"0.5,3,0,2,1,1,1,1,1,0,1,1\n"+
		"1,7,2,4,3,3,2,2,0,0,0,0\n"+
		"1.5,5,4,3,2,2,2,1,2,1,2,2\n", out.String())

	for name, edit := range map[string]func(*sim.Result){
		"rows missing":   func(r *sim.Result) { r.Series.NATs[1].Rows = r.Series.NATs[1].Rows[:2] },
		"column missing": func(r *sim.Result) { r.Series.NATs[0].Rows[1].InsideFlows = []int{3} },
	} {
		res := natResult()
		edit(res)
		out.Reset()
		err := writeNATSeries(&out, res)
		require.Error(t, err, name)
		assert.Empty(t, out.String(), name)
	}
	res := natResult()
	res.Series.NATs[0].Rows[1].InsideFlows = []int{3}
	require.EqualError(t, writeNATSeries(&out, res), "NAT gw sample 1 has 2 IP and 1 inside columns for 2 IPs and 3 inside hosts")
}

func TestWriteNATFiles(t *testing.T) {
	dir := t.TempDir()
	// An earlier run's files: all but those this run writes go.
	for _, f := range []string{"nat-old.png", "nat-old.svg", "nat.csv", "natural.txt"} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), []byte("old"), 0o644))
	}
	res := natResult()
	files, err := writeNATFiles(dir, res)
	require.NoError(t, err)
	assert.Equal(t, []string{"nat.csv", "nat-gw.png", "nat-gw.svg", "nat-node.png", "nat-node.svg"}, files)
	for _, f := range files {
		fi, err := os.Stat(filepath.Join(dir, f))
		require.NoError(t, err, f)
		assert.Greater(t, fi.Size(), int64(3), f)
	}
	assert.NoFileExists(t, filepath.Join(dir, "nat-old.png"))
	assert.NoFileExists(t, filepath.Join(dir, "nat-old.svg"))
	assert.FileExists(t, filepath.Join(dir, "natural.txt"), "not a NAT file")

	// One NAT: nat.png and nat.svg; the two-NAT charts go.
	res.Summary.NATs, res.Series.NATs = res.Summary.NATs[1:], res.Series.NATs[1:]
	files, err = writeNATFiles(dir, res)
	require.NoError(t, err)
	assert.Equal(t, []string{natCSVFile, natPNGFile, natSVGFile}, files)
	assert.Equal(t, []string{"nat.csv", "nat.png", "nat.svg", "natural.txt"}, dirNames(t, dir))

	// No NATs: nothing, and nothing left over.
	files, err = writeNATFiles(dir, &sim.Result{})
	require.NoError(t, err)
	assert.Empty(t, files)
	assert.Equal(t, []string{"natural.txt"}, dirNames(t, dir))

	// A bad result: an error, and no file.
	res = natResult()
	res.Series.NATs[0].Rows[2].IPPorts = nil
	_, err = writeNATFiles(dir, res)
	require.ErrorContains(t, err, "NAT gw sample 2 has 0 IP and 3 inside columns")
	assert.Equal(t, []string{"natural.txt"}, dirNames(t, dir))
}

// dirNames lists the names in dir, sorted.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// droppingNAT is the summary of an AWS NAT gateway that hit its
// per-destination cap: seven VMs, two IPs, one destination.
func droppingNAT() sim.NATSummary {
	first := 47.0153
	n := sim.NATSummary{
		Name: "gw", Preset: "aws-nat-gateway",
		Settings: map[string]string{"per_destination_cap": "1000", "external_ips": "2"},
		Notes: []string{
			"55,000 concurrent connections per external IP per destination (ip, port, protocol); up to 8 IPs = 440,000 (AWS re:Post vpc-resolve-port-allocation-errors, nat.md §3.1)",
			"assumption: UDP and half-open flows also idle out at 350 s",
		},
		MappingsPeak: 2000, FlowsPeak: 2000, PoolPorts: 64512, PerDestinationCap: 1000,
		Drops:      map[string]uint64{"per-destination-cap": 4800, "table-full": 40},
		FirstDropS: &first,
		Searched:   2100, ProbesPerSearch: 1.234, ProbesMax: 17,
		ExternalIPs: []sim.NATIPSummary{
			{Address: "203.0.113.1", PeakFlows: 1000, PeakPorts: 1000},
			{Address: "203.0.113.2", PeakFlows: 1000, PeakPorts: 998},
		},
		Destinations: []sim.NATDestSummary{
			{Destination: "192.0.2.53:53", Proto: "udp", PeakFlows: 12, Drops: map[string]uint64{}},
			{Destination: "198.51.100.7:443", Proto: "tcp", PeakFlows: 2000, Drops: map[string]uint64{"per-destination-cap": 4800, "table-full": 40}},
		},
	}
	for k := 1; k <= 7; k++ {
		n.Inside = append(n.Inside, sim.NATInsideSummary{
			Host: fmt.Sprintf("vm-%d", k), Address: fmt.Sprintf("10.0.0.%d", k), PeakFlows: 300 - 10*k,
			Drops: map[string]uint64{"per-destination-cap": uint64(100 * (k % 4))},
		})
	}
	return n
}

// natSection returns the NAT section printed for n.
func natSection(t *testing.T, n *sim.NATSummary) string {
	t.Helper()
	var out bytes.Buffer
	p := &printer{w: &out}
	p.nat(n)
	require.NoError(t, p.err)
	return out.String()
}

func TestPrintNAT(t *testing.T) {
	n := droppingNAT()
	assert.Equal(t, `
NAT gw (preset aws-nat-gateway): 2 external IPs, 7 inside addresses
  set            external_ips=2, per_destination_cap=1000
  limits         64,512 ports per external IP, at most 1,000 flows per IP to
                 one destination
  mappings peak  2000 (flows peak 2000)
  drops          4840, the first at 47.015s: per-destination-cap 4800,
                 table-full 40
  dropped for    6 of 7 inside addresses
  ports chosen   preserved 0, reused mapping 0, searched 2100 (probes per
                 search: mean 1.23, max 17), evicted 0

 external IP | peak flows | peak ports
-------------+------------+------------
 203.0.113.1 |       1000 |       1000
 203.0.113.2 |       1000 |        998

 inside host (most drops first) | address  | peak flows | drops
--------------------------------+----------+------------+-------------------------
 vm-3                           | 10.0.0.3 |        270 | per-destination-cap 300
 vm-7                           | 10.0.0.7 |        230 | per-destination-cap 300
 vm-2                           | 10.0.0.2 |        280 | per-destination-cap 200
 vm-6                           | 10.0.0.6 |        240 | per-destination-cap 200
 vm-1                           | 10.0.0.1 |        290 | per-destination-cap 100
 +2 more                        |          |            |

 destination      | proto | peak flows | drops
------------------+-------+------------+-----------------------------------------
 198.51.100.7:443 | tcp   |       2000 | per-destination-cap 4800, table-full 40
 192.0.2.53:53    | udp   |         12 | 0

Sources and assumptions (aws-nat-gateway's numbers):
  - 55,000 concurrent connections per external IP per destination (ip, port,
    protocol); up to 8 IPs = 440,000 (AWS re:Post
    vpc-resolve-port-allocation-errors, nat.md §3.1)
  - assumption: UDP and half-open flows also idle out at 350 s
`, natSection(t, &n))
}

func TestPrintNATNoDrops(t *testing.T) {
	n := sim.NATSummary{
		Name: "cgn", Preset: "cgn-port-block", MappingsPeak: 40, FlowsPeak: 52, PoolPorts: 64512, Drops: map[string]uint64{},
		Preserved: 3, Reused: 1, Evicted: 2,
		ExternalIPs: []sim.NATIPSummary{{Address: "198.51.100.1", PeakFlows: 40, PeakPorts: 38}},
		Inside: []sim.NATInsideSummary{
			{Host: "home-1", Address: "100.64.0.1", PeakFlows: 10, PeakAllocated: 512},
			{Host: "home-2", Address: "100.64.0.2", PeakFlows: 30, PeakAllocated: 1024},
		},
	}
	for k := range 10 {
		n.ExternalIPs = append(n.ExternalIPs, sim.NATIPSummary{Address: fmt.Sprintf("198.51.100.%d", k+2)})
	}
	assert.Equal(t, `
NAT cgn (preset cgn-port-block): 11 external IPs, 2 inside addresses
  limits         64,512 ports per external IP
  mappings peak  40 (flows peak 52)
  drops          none
  ports chosen   preserved 3, reused mapping 1, searched 0, evicted 2

 external IP  | peak flows | peak ports
--------------+------------+------------
 198.51.100.1 |         40 |         38
 198.51.100.2 |          0 |          0
 198.51.100.3 |          0 |          0
 198.51.100.4 |          0 |          0
 198.51.100.5 |          0 |          0
 198.51.100.6 |          0 |          0
 198.51.100.7 |          0 |          0
 198.51.100.8 |          0 |          0
 +3 more      |            |

 inside host (highest peak flows first) | address    | peak flows | peak ports allocated | drops
----------------------------------------+------------+------------+----------------------+-------
 home-2                                 | 100.64.0.2 |         30 |                 1024 | 0
 home-1                                 | 100.64.0.1 |         10 |                  512 | 0
`, natSection(t, &n))
}

func TestPrintRunTablesNAT(t *testing.T) {
	sum := &sim.Summary{Scenario: "nat", MostLoaded: -1, NATs: []sim.NATSummary{droppingNAT(), {Name: "second", Drops: map[string]uint64{}}}}
	var out bytes.Buffer
	require.NoError(t, printRunTables(&out, &scenarios.Scenario{}, sum, nil, []string{"d/nat.csv"}))
	got := out.String()
	gw := strings.Index(got, "\nNAT gw (preset aws-nat-gateway)")
	second := strings.Index(got, "\nNAT second: 0 external IPs, 0 inside addresses\n  limits         0 ports per external IP\n  mappings peak  0 (flows peak 0)\n  drops          none\n")
	files := strings.Index(got, "\nFiles written\n  d/nat.csv\n")
	assert.True(t, 0 < gw && gw < second && second < files, "the NATs in order, before the files: %q", got)
	assert.NotContains(t, got[second:], "Sources and assumptions", "no notes, no heading")
}

// countedRun returns a summary of db and three instances of vm (written
// with count: 3), and the scenario that says so.
func countedRun() (*scenarios.Scenario, *sim.Summary) {
	f1, f2 := 3.5, 2.25
	s := &scenarios.Scenario{Name: "fleet", Hosts: []scenarios.Host{
		{Name: "db", Group: "db", Instance: 1, Count: 1},
		{Name: "vm-1", Group: "vm", Instance: 1, Count: 3},
		{Name: "vm-2", Group: "vm", Instance: 2, Count: 3},
		{Name: "vm-3", Group: "vm", Instance: 3, Count: 3},
	}}
	st := sim.HostSettings{OS: "linux", PortRange: "32768-60999", UsablePorts: 28232, TimeWaitS: 60, Allocator: "linux", TCPMaxTwBuckets: -1}
	other := st
	other.PortRange = "1024-65535" // never shown: vm-1 speaks for the group
	sum := &sim.Summary{
		Scenario: "fleet", File: "fleet.yaml", Seed: 1, DurationS: 10, MostLoaded: -1,
		Totals: sim.Totals{Attempts: 35, Successes: 32, Failures: map[string]uint64{"ETIMEDOUT": 3}, FirstFailureS: &f2, PeakPortsInUse: 24},
		Hosts: []sim.HostSummary{
			{Name: "db", Settings: st, Totals: sim.Totals{Attempts: 5, Successes: 5, PeakPortsInUse: 5}},
			{Name: "vm-1", Settings: st, Totals: sim.Totals{Attempts: 10, Successes: 8, Failures: map[string]uint64{"ETIMEDOUT": 2}, FirstFailureS: &f1, PeakPortsInUse: 7},
				ProbesPerAlloc: sim.Quantiles{P50: 1, P99: 3}, TwRecycled: 1},
			{Name: "vm-2", Settings: other, Totals: sim.Totals{Attempts: 10, Successes: 9, Failures: map[string]uint64{"ETIMEDOUT": 1}, FirstFailureS: &f2, PeakPortsInUse: 9},
				ProbesPerAlloc: sim.Quantiles{P50: 2, P99: 2}, TwRecycled: 2},
			{Name: "vm-3", Settings: other, Totals: sim.Totals{Attempts: 10, Successes: 10, PeakPortsInUse: 8}},
		},
	}
	return s, sum
}

func TestPrintRunTablesCountedHosts(t *testing.T) {
	s, sum := countedRun()
	var out bytes.Buffer
	require.NoError(t, printRunTables(&out, s, sum, nil, nil))
	got := out.String()
	assert.Contains(t, got, `
Host settings
 setting                 | db          | vm ×3
-------------------------+-------------+-------------
 os                      | linux       | linux
 source                  |             |
 ip_local_port_range     | 32768-60999 | 32768-60999
`)
	assert.Contains(t, got, `
Results
 metric                                  | db   | vm ×3       | total
-----------------------------------------+------+-------------+-------------
 attempts                                |    5 |          30 |          35
 successes                               |    5 |          27 |          32
 failures                                |    0 | ETIMEDOUT 3 | ETIMEDOUT 3
 first failure                           | none |       2.25s |       2.25s
 peak TIME_WAIT                          |    0 |           0 |           0
 peak ports in use                       |    5 |           9 |          24
 probes/alloc p50                        |    0 |           2 |           0
 probes/alloc p99                        |    0 |           3 |           0
 TIME_WAIT taken over (TIMEWAITRECYCLED) |    0 |           3 |           3
(a host written with count: N is one column, NAME ×N, with the settings of
NAME-1; attempts, successes, failures and TIME_WAIT skipped or taken over are
summed over its instances, the first failure is the earliest, and the peaks
and probes/alloc are the highest of any one instance)
`)
	assert.NotContains(t, got, "vm-1")
	assert.NotContains(t, got, "1024-65535")
	// The instances' failure maps are not touched.
	assert.Equal(t, map[string]uint64{"ETIMEDOUT": 2}, sum.Hosts[1].Failures)
}

func TestPrintRunTablesUncountedHosts(t *testing.T) {
	// Hosts written one by one keep a column each, and the output is the
	// same whether or not the scenario's hosts are known.
	s, sum := countedRun()
	for i := range s.Hosts {
		s.Hosts[i].Group, s.Hosts[i].Instance, s.Hosts[i].Count = s.Hosts[i].Name, 1, 1
	}
	var with, without bytes.Buffer
	require.NoError(t, printRunTables(&with, s, sum, nil, nil))
	require.NoError(t, printRunTables(&without, &scenarios.Scenario{Name: "fleet"}, sum, nil, nil))
	assert.Equal(t, without.String(), with.String())
	got := with.String()
	assert.Contains(t, got, "\n setting                 | db          | vm-1        | vm-2       | vm-3\n")
	assert.Contains(t, got, "\n metric                                  | db   | vm-1        | vm-2        | vm-3 | total\n")
	assert.NotContains(t, got, "×")
	assert.NotContains(t, got, "count: N")
}

func TestPlural(t *testing.T) {
	assert.Equal(t, "1 external IP", plural(1, "external IP"))
	assert.Equal(t, "0 external IPs", plural(0, "external IP"))
	assert.Equal(t, "2 inside addresses", plural(2, "inside address"))
	assert.Equal(t, [][]string{{"a"}, {"b"}}, capRows([][]string{{"a"}, {"b"}}, 2))
	assert.Equal(t, [][]string{{"a", "1"}, {"+2 more", ""}}, capRows([][]string{{"a", "1"}, {"b", "2"}, {"c", "3"}}, 1))
}
