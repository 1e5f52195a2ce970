package plots

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/plot/plotter"

	"github.com/portsim/portsim/sim"
)

// crossResult returns a hand-made run of scenario "tiny-burst", sampled
// every second from 1 s to rows s: a client with 1,000 usable ports opens
// 50 connects per second from lag s on, each ESTABLISHED for 1 s, then in
// TIME_WAIT for 30 s. The pool fills 20 s after the start; from then on
// 1000 / 31 ≈ 32 connects per second get a port and the other 18 fail.
// The scenario has a server host too, which holds no ephemeral ports.
func crossResult(rows int, lag float64) *sim.Result {
	const (
		ports   = 1000
		rate    = 50
		carried = 32 // ≈ ports / 31 s of holding
	)
	res := &sim.Result{
		Summary: sim.Summary{
			Scenario: "tiny-burst",
			Seed:     1,
			Hosts: []sim.HostSummary{
				{Name: "client", Settings: sim.HostSettings{UsablePorts: ports}},
				{Name: "server", Settings: sim.HostSettings{UsablePorts: 28232}},
			},
			Domains: []sim.DomainSummary{
				{Host: "client", Local: "10.0.0.1", Destination: "203.0.113.10:443", UsablePorts: ports},
			},
		},
		Series: sim.Series{IntervalS: 1},
	}
	for i := 1; i <= rows; i++ {
		ts := float64(i)
		held := int(max(0, min(ports, rate*(ts-lag))))
		row := sim.Row{TS: ts, Attempts: rate, PortsInUse: held, Established: min(held, rate)}
		if held == ports {
			row.Established = carried
			row.Failures = rate - carried
		}
		row.Successes = row.Attempts - row.Failures
		row.TimeWait = held - row.Established
		res.Series.Rows = append(res.Series.Rows, row)
	}
	return res
}

// crosscheckOf returns a builder of the crosscheck of kernel against the
// model it is given, for renderWith.
func crosscheckOf(kernel *sim.Result) func(*sim.Result) (*Figure, error) {
	return func(model *sim.Result) (*Figure, error) { return Crosscheck(kernel, model) }
}

func TestWriteCrosscheck(t *testing.T) {
	dir := chartDir(t)
	// The kernel lags the simulator by 1 s and has one row more.
	require.NoError(t, WriteCrosscheck(crossResult(61, 1), crossResult(60, 0), dir))
	svg := string(checkChartFiles(t, dir, "crosscheck"))
	for _, want := range []string{
		"crosscheck: tiny-burst — kernel (solid) vs simulator (dashed)",
		"kernel", "simulator", "held ports", "TIME_WAIT", "ESTABLISHED",
		"port budget: 1,000 usable ports<", "time (s)", "sockets", "failed connects",
	} {
		assert.Contains(t, svg, want)
	}
	assert.Contains(t, svg, "font-family:'Liberation Sans',Arial,Helvetica,sans-serif;")
}

func TestCrosscheckDeterministic(t *testing.T) {
	for _, format := range []string{"svg", "png"} {
		t.Run(format, func(t *testing.T) {
			a := renderWith(t, crosscheckOf(crossResult(61, 1)), crossResult(60, 0), format)
			b := renderWith(t, crosscheckOf(crossResult(61, 1)), crossResult(60, 0), format)
			assert.True(t, bytes.Equal(a, b), "byte-identical renders")
		})
	}
}

func TestCrosscheckErrors(t *testing.T) {
	tests := []struct {
		name          string
		kernel, model *sim.Result
		want          string
	}{
		{"no kernel result", nil, crossResult(5, 0), "plots: no kernel result"},
		{"no simulator result", crossResult(5, 0), nil, "plots: no simulator result"},
		{"kernel without rows", crossResult(0, 0), crossResult(5, 0), "plots: the kernel result has no samples"},
		{"simulator without rows", crossResult(5, 0), crossResult(0, 0), "plots: the simulator result has no samples"},
		{"empty results", &sim.Result{}, &sim.Result{}, "plots: the kernel result has no samples"},
		{
			"zero interval", crossResult(5, 0), func() *sim.Result { r := crossResult(5, 0); r.Series.IntervalS = 0; return r }(),
			"plots: the simulator result's sample interval must be > 0 s, got 0",
		},
		{
			"other scenario", crossResult(5, 0), func() *sim.Result { r := crossResult(5, 0); r.Summary.Scenario = "x"; return r }(),
			`plots: the kernel ran scenario "tiny-burst" and the simulator "x"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Crosscheck(tt.kernel, tt.model)
			require.EqualError(t, err, tt.want)
			dir := filepath.Join(t.TempDir(), "out")
			require.EqualError(t, WriteCrosscheck(tt.kernel, tt.model, dir), tt.want)
			assert.NoDirExists(t, dir, "nothing written")
		})
	}
}

func TestCrosscheckAxes(t *testing.T) {
	// Different row counts and intervals: each run at its own times.
	kernel, model := crossResult(61, 1), crossResult(30, 0)
	model.Series.IntervalS = 2
	for i := range model.Series.Rows {
		model.Series.Rows[i].TS *= 2
	}
	f, err := Crosscheck(kernel, model)
	require.NoError(t, err)
	assert.Zero(t, f.Top.X.Min)
	assert.Equal(t, 61.0, f.Top.X.Max)
	assert.Equal(t, f.Top.X.Max, f.Bottom.X.Max)
	assert.InDelta(t, 1100, f.Top.Y.Max, 1e-9, "10 % above the budget, the highest line")
	assert.InDelta(t, 19.8, f.Bottom.Y.Max, 1e-9, "10 % above 18 failures/s")

	// A single sample at t = 0 still spans a visible range.
	kernel.Series.Rows = kernel.Series.Rows[:1]
	kernel.Series.Rows[0].TS = 0
	model.Series.Rows = kernel.Series.Rows
	f, err = Crosscheck(kernel, model)
	require.NoError(t, err)
	assert.Equal(t, 1.0, f.Top.X.Max)
	assert.NotEmpty(t, renderWith(t, crosscheckOf(kernel), model, "png"))
}

func TestCrosscheckUnnamed(t *testing.T) {
	kernel, model := crossResult(5, 0), crossResult(5, 0)
	kernel.Summary.Scenario = ""
	f, err := Crosscheck(kernel, model)
	require.NoError(t, err)
	assert.Equal(t, "crosscheck: tiny-burst — kernel (solid) vs simulator (dashed)", f.Title)
	model.Summary.Scenario = ""
	f, err = Crosscheck(kernel, model)
	require.NoError(t, err)
	assert.Equal(t, "crosscheck: unnamed scenario — kernel (solid) vs simulator (dashed)", f.Title)
}

func TestPortBudget(t *testing.T) {
	sum := crossResult(1, 0).Summary
	ports, hosts := portBudget(&sum)
	assert.Equal(t, 1000, ports, "the server, which only listens, does not count")
	assert.Equal(t, 1, hosts)

	sum.Hosts = append(sum.Hosts, sim.HostSummary{Name: "client-b", Settings: sim.HostSettings{UsablePorts: 500}})
	sum.Domains = append(sum.Domains, sim.DomainSummary{Host: "client-b", Destination: "*"})
	ports, hosts = portBudget(&sum)
	assert.Equal(t, 1500, ports)
	assert.Equal(t, 2, hosts)

	sum.Domains = nil
	ports, hosts = portBudget(&sum)
	assert.Equal(t, 29732, ports, "without domains, every host")
	assert.Equal(t, 3, hosts)

	ports, hosts = portBudget(&sim.Summary{})
	assert.Zero(t, ports)
	assert.Zero(t, hosts)
}

func TestBudgetLabel(t *testing.T) {
	assert.Equal(t, "port budget: 28,232 usable ports", budgetLabel(28232, 28232, 1))
	assert.Equal(t, "port budget: 28,232 (kernel), 16,384 (simulator) usable ports", budgetLabel(28232, 16384, 1))
	assert.Equal(t, "port budget: 28,232 (kernel) usable ports", budgetLabel(28232, 0, 1))
	assert.Equal(t, "port budget: 16,384 (simulator) usable ports, summed over 2 hosts", budgetLabel(0, 16384, 2))

	// A run without hosts draws no budget line and the legend says whose
	// budget the other is.
	kernel, model := crossResult(5, 0), crossResult(5, 0)
	kernel.Summary.Hosts, kernel.Summary.Domains = nil, nil
	f, err := Crosscheck(kernel, model)
	require.NoError(t, err)
	last := f.Legend[len(f.Legend)-1]
	assert.Equal(t, "port budget: 1,000 (simulator) usable ports", last.Name)
	assert.Len(t, last.Thumbs, 1)

	model.Summary.Hosts, model.Summary.Domains = nil, nil
	f, err = Crosscheck(kernel, model)
	require.NoError(t, err)
	for _, e := range f.Legend {
		assert.NotContains(t, e.Name, "port budget")
	}
}

func TestFailureRates(t *testing.T) {
	s := sim.Series{IntervalS: 2, Rows: []sim.Row{{TS: 2, Failures: 4}, {TS: 4, Failures: 10}}}
	assert.Equal(t, plotter.XYs{{X: 0, Y: 2}, {X: 2, Y: 2}, {X: 4, Y: 5}}, failureRates(s))
	// A first sample at 0 s has no interval before it to show.
	s.Rows[0].TS, s.Rows[1].TS = 0, 2
	assert.Equal(t, plotter.XYs{{X: 0, Y: 2}, {X: 2, Y: 5}}, failureRates(s))
}
