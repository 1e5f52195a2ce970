package plots

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portsim/portsim/sim"
)

// natRun returns the result of a NAT gateway "gw" (preset aws-nat-gateway)
// with two external IPs in front of seven VMs, vm-1 .. vm-7, sampled every
// second for 120 s. VM k opens 10·k new mappings a second, each held 60 s,
// so that the table grows for a minute and then stays flat; the IPs split
// the ports 60/40. From 50 s on, every second drops 40 SYNs.
func natRun() *sim.Result {
	const (
		vms      = 7
		duration = 120
		holdS    = 60
	)
	first := 50.0
	res := &sim.Result{
		Summary: sim.Summary{Scenario: "nat-gateway", Seed: 4, MostLoaded: -1},
		Series:  sim.Series{IntervalS: 1},
	}
	ns := sim.NATSummary{
		Name: "gw", Preset: "aws-nat-gateway", FirstDropS: &first,
		Drops: map[string]uint64{"per-destination-cap": 40 * (duration - 49)},
		ExternalIPs: []sim.NATIPSummary{
			{Address: "203.0.113.1"}, {Address: "203.0.113.2"},
		},
	}
	ser := sim.NATSeries{Name: "gw", IPs: []string{"203.0.113.1", "203.0.113.2"}}
	for k := 1; k <= vms; k++ {
		host := fmt.Sprintf("vm-%d", k)
		ns.Inside = append(ns.Inside, sim.NATInsideSummary{Host: host, Address: fmt.Sprintf("10.0.0.%d", k)})
		ser.Inside = append(ser.Inside, host)
	}
	for t := 1; t <= duration; t++ {
		res.Series.Rows = append(res.Series.Rows, sim.Row{TS: float64(t)})
		row := sim.NATRow{IPPorts: make([]int, 2), InsideFlows: make([]int, vms)}
		for k := 1; k <= vms; k++ {
			row.InsideFlows[k-1] = 10 * k * min(t, holdS)
			row.Flows += row.InsideFlows[k-1]
		}
		row.IPPorts[0] = row.Flows * 6 / 10
		row.IPPorts[1] = row.Flows - row.IPPorts[0]
		if t >= 50 {
			row.Drops = 40
		}
		ns.MappingsPeak = max(ns.MappingsPeak, row.Flows)
		ser.Rows = append(ser.Rows, row)
	}
	res.Summary.NATs = []sim.NATSummary{ns}
	res.Series.NATs = []sim.NATSeries{ser}
	return res
}

// renderNAT returns the figure of res's first NAT in format.
func renderNAT(t *testing.T, res *sim.Result, format string) []byte {
	t.Helper()
	return renderWith(t, func(r *sim.Result) (*Figure, error) { return NAT(r, 0) }, res, format)
}

// legendNames returns the names of f's legend entries.
func legendNames(f *Figure) []string {
	var names []string
	for _, e := range f.Legend {
		names = append(names, e.Name)
	}
	return names
}

func TestWriteNAT(t *testing.T) {
	dir := chartDir(t)
	require.NoError(t, WriteNAT(natRun(), dir))
	svg := string(checkChartFiles(t, dir, "nat"))
	for _, want := range []string{
		"NAT gw (aws-nat-gateway): ports per external IP, flows per inside host",
		"scenario nat-gateway, seed 4",
		"ports on 203.0.113.1", "ports on 203.0.113.2",
		"flows of vm-7", "flows of vm-3", "+2 more inside hosts",
		"NAT drops", "per second", "time (s)",
	} {
		assert.Contains(t, svg, want)
	}
	assert.NotContains(t, svg, "flows of vm-2", "only the five busiest hosts")
	assert.Contains(t, svg, "font-family:'Liberation Sans',Arial,Helvetica,sans-serif;")
}

func TestNATFigure(t *testing.T) {
	f, err := NAT(natRun(), 0)
	require.NoError(t, err)
	assert.Equal(t, []string{
		"ports on 203.0.113.1", "ports on 203.0.113.2",
		"flows of vm-7", "flows of vm-6", "flows of vm-5", "flows of vm-4", "flows of vm-3",
		"+2 more inside hosts",
	}, legendNames(f))
	assert.Empty(t, f.Legend[len(f.Legend)-1].Thumbs)
	// The busiest IP holds 60 % of 280 mappings a second for 60 s.
	assert.InDelta(t, 10080*1.1, f.Top.Y.Max, 1e-9)
	assert.Equal(t, 0.0, f.Top.X.Min)
	assert.Equal(t, 120.0, f.Top.X.Max)
	// 40 drops a second.
	assert.InDelta(t, 44, f.Bottom.Y.Max, 1e-9)
	assert.Equal(t, 0.0, f.Bottom.X.Min)
	assert.Equal(t, 120.0, f.Bottom.X.Max)
}

func TestNATManyIPs(t *testing.T) {
	res := natRun()
	ser := &res.Series.NATs[0]
	ser.IPs = nil
	for k := range 11 {
		ser.IPs = append(ser.IPs, fmt.Sprintf("198.51.100.%d", k+1))
	}
	// IP k peaks at 100·k, but 198.51.100.1 at 5,000: the eight highest
	// are .1 and .5 to .11, drawn in the NAT's order.
	for j := range ser.Rows {
		ser.Rows[j].IPPorts = make([]int, len(ser.IPs))
		for k := range ser.IPs {
			ser.Rows[j].IPPorts[k] = 100 * k
		}
		ser.Rows[j].IPPorts[0] = 5000
	}
	ser.Inside = ser.Inside[:1]
	for j := range ser.Rows {
		ser.Rows[j].InsideFlows = ser.Rows[j].InsideFlows[:1]
	}
	f, err := NAT(res, 0)
	require.NoError(t, err)
	want := []string{"ports on 198.51.100.1"}
	for k := 5; k <= 11; k++ {
		want = append(want, fmt.Sprintf("ports on 198.51.100.%d", k))
	}
	want = append(want, "+3 more external IPs", "flows of vm-1")
	assert.Equal(t, want, legendNames(f))
}

func TestNATInsideNames(t *testing.T) {
	sum := &sim.NATSummary{Inside: []sim.NATInsideSummary{
		{Host: "web", Address: "10.0.0.5"}, {Host: "db", Address: "10.0.0.9"}, {Host: "web", Address: "10.0.0.6"},
	}}
	ser := &sim.NATSeries{Inside: []string{"web", "db", "web"}}
	assert.Equal(t, []string{"web (10.0.0.5)", "db", "web (10.0.0.6)"}, NATInsideNames(sum, ser))
	assert.Equal(t, []string{"web", "db", "web"}, NATInsideNames(&sim.NATSummary{}, ser), "no addresses to tell them apart")
}

func TestNATDeterministic(t *testing.T) {
	for _, format := range []string{"svg", "png"} {
		t.Run(format, func(t *testing.T) {
			a, b := renderNAT(t, natRun(), format), renderNAT(t, natRun(), format)
			assert.True(t, bytes.Equal(a, b), "byte-identical renders")
		})
	}
	// And the files.
	d1, d2 := t.TempDir(), t.TempDir()
	require.NoError(t, WriteNAT(natRun(), d1))
	require.NoError(t, WriteNAT(natRun(), d2))
	for _, name := range []string{"nat.png", "nat.svg"} {
		a, err := os.ReadFile(filepath.Join(d1, name))
		require.NoError(t, err)
		b, err := os.ReadFile(filepath.Join(d2, name))
		require.NoError(t, err)
		assert.True(t, bytes.Equal(a, b), name)
	}
}

func TestNATErrors(t *testing.T) {
	tests := []struct {
		name string
		edit func(*sim.Result)
		want string
	}{
		{"no NATs", func(r *sim.Result) { r.Summary.NATs, r.Series.NATs = nil, nil }, "plots: the result has no NATs"},
		{"no NAT series", func(r *sim.Result) { r.Series.NATs = nil }, "plots: the result has no NATs"},
		{"summaries and series differ in number", func(r *sim.Result) {
			r.Summary.NATs = append(r.Summary.NATs, sim.NATSummary{Name: "other"})
		}, "plots: 2 NAT summaries for 1 NAT series"},
		{"names differ", func(r *sim.Result) { r.Series.NATs[0].Name = "gx" }, `plots: NAT 0 is "gw" in the summary but "gx" in the series`},
		{"no rows", func(r *sim.Result) { r.Series.NATs[0].Rows = nil }, "plots: NAT gw has no samples"},
		{"rows missing", func(r *sim.Result) { r.Series.Rows = r.Series.Rows[:3] }, "plots: NAT gw has 120 rows for 3 samples"},
		{"zero interval", func(r *sim.Result) { r.Series.IntervalS = 0 }, "plots: sample interval must be > 0 s, got 0"},
		{"IP column missing", func(r *sim.Result) { r.Series.NATs[0].Rows[7].IPPorts = []int{1} },
			"plots: NAT gw sample 7 has 1 IP and 7 inside columns for 2 IPs and 7 inside hosts"},
		{"inside column missing", func(r *sim.Result) { r.Series.NATs[0].Rows[0].InsideFlows = nil },
			"plots: NAT gw sample 0 has 2 IP and 0 inside columns for 2 IPs and 7 inside hosts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := natRun()
			tt.edit(res)
			_, err := NAT(res, 0)
			require.EqualError(t, err, tt.want)
			dir := filepath.Join(t.TempDir(), "out")
			require.Error(t, WriteNAT(res, dir))
			assert.NoDirExists(t, dir, "nothing written")
		})
	}
	for _, i := range []int{-1, 1} {
		_, err := NAT(natRun(), i)
		require.EqualError(t, err, fmt.Sprintf("plots: no NAT %d: the result has 1", i))
	}
	_, err := NAT(nil, 0)
	require.EqualError(t, err, "plots: no result")
	require.EqualError(t, WriteNAT(nil, t.TempDir()), "plots: the result has no NATs")
	require.EqualError(t, WriteNAT(&sim.Result{}, t.TempDir()), "plots: the result has no NATs")
}

// twoNATs returns natRun with a second NAT, named name, of one IP and one
// host, and the first NAT renamed first.
func twoNATs(first, name string) *sim.Result {
	res := natRun()
	res.Summary.NATs[0].Name, res.Series.NATs[0].Name = first, first
	ser := sim.NATSeries{Name: name, IPs: []string{"192.0.2.1"}, Inside: []string{"pod"}}
	for range res.Series.Rows {
		ser.Rows = append(ser.Rows, sim.NATRow{Flows: 3, IPPorts: []int{3}, InsideFlows: []int{3}})
	}
	res.Summary.NATs = append(res.Summary.NATs, sim.NATSummary{Name: name, Preset: "linux-masquerade"})
	res.Series.NATs = append(res.Series.NATs, ser)
	return res
}

func TestWriteNATSeveral(t *testing.T) {
	dir := t.TempDir()
	res := twoNATs("gw", "node/1")
	assert.Equal(t, []string{"nat-gw", "nat-node_1"}, NATFileNames(res))
	require.NoError(t, WriteNAT(res, dir))
	checkChartFiles(t, dir, "nat-gw")
	svg := string(checkChartFiles(t, dir, "nat-node_1"))
	assert.Contains(t, svg, "NAT node/1 (linux-masquerade)")
	assert.Contains(t, svg, "flows of pod")
	assert.NotContains(t, svg, "more")
	assert.NoFileExists(t, filepath.Join(dir, "nat.png"))

	assert.Equal(t, []string{"nat"}, NATFileNames(natRun()))
	assert.Equal(t, []string{"nat-1-a_b", "nat-2-a_b"}, NATFileNames(twoNATs("a b", "a/b")), "names that clash once made safe")
}

func TestNATTitle(t *testing.T) {
	run := &sim.Summary{Scenario: "k8s", Seed: 2}
	assert.Equal(t, "NAT node (linux-masquerade): ports per external IP, flows per inside host — scenario k8s, seed 2",
		natTitle(run, &sim.NATSummary{Name: "node", Preset: "linux-masquerade"}))
	assert.True(t, strings.HasPrefix(natTitle(run, &sim.NATSummary{Name: "custom"}), "NAT custom: "))
}

func TestAppendMore(t *testing.T) {
	assert.Nil(t, appendMore(nil, 0, "inside host"))
	assert.Equal(t, "+1 more inside host", appendMore(nil, 1, "inside host")[0].Name)
	assert.Equal(t, "+1,995 more inside hosts", appendMore(nil, 1995, "inside host")[0].Name)
	assert.Equal(t, []int{2, 0, 1}, busiest([]int{5, 1, 9}, 5))
	assert.Equal(t, []int{1, 2}, busiest([]int{1, 3, 3, 0}, 2), "ties: the lower index first")
}
