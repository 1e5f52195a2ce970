package plots

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"

	"github.com/portsim/portsim/sim"
)

// spread returns the port choices of a client with Linux's default range
// (32768-60999) connecting round-robin to three destinations at 450
// connects per second, Poisson, until sim.MaxPortChoices were recorded
// (about 44 s of a longer run), each destination seeing one kind of
// allocator:
//   - 203.0.113.10:8000, sequential: one more than the last port, from the
//     bottom of the range, wrapping at the top;
//   - 203.0.113.10:8001, Linux 5.18+-like: a fresh random offset every
//     10-second epoch, then 2 to 16 ports up per connect;
//   - 203.0.113.10:8002, random: uniform over the range.
func spread() *sim.Result {
	const (
		low, high = 32768, 60999
		size      = high - low + 1
		rate      = 450.0
	)
	rng := rand.New(rand.NewPCG(1, 2))
	res := &sim.Result{Summary: sim.Summary{
		Scenario: "spread-destinations",
		Seed:     1,
		Totals:   sim.Totals{Successes: 54000},
		Hosts: []sim.HostSummary{{
			Name:     "client",
			Settings: sim.HostSettings{OS: "linux", PortRange: "32768-60999", Allocator: "linux"},
		}},
		MostLoaded: 0,
	}}
	for d := range 3 {
		res.Summary.Domains = append(res.Summary.Domains, sim.DomainSummary{
			Host: "client", Local: "10.0.0.1", Destination: fmt.Sprintf("203.0.113.10:%d", 8000+d), UsablePorts: size,
		})
	}
	var t float64
	seq := 0
	stair, epoch := 0, -1
	for i := range sim.MaxPortChoices {
		t += rng.ExpFloat64() / rate
		d := i % 3
		var port int
		switch d {
		case 0:
			port = low + seq%size
			seq++
		case 1:
			if e := int(t / 10); e != epoch {
				epoch, stair = e, rng.IntN(size)
			} else {
				stair += 2 + 2*rng.IntN(8)
			}
			port = low + stair%size
		case 2:
			port = low + rng.IntN(size)
		}
		res.Ports = append(res.Ports, sim.PortChoice{TS: t, Domain: d, Port: uint16(port)})
	}
	return res
}

func TestWritePorts(t *testing.T) {
	dir := chartDir(t)
	require.NoError(t, WritePorts(spread(), dir))
	svg := string(checkChartFiles(t, dir, "ports"))
	for _, want := range []string{
		"Ports chosen by linux — scenario spread-destinations, seed 1 (first 20,000 allocations)",
		"local port", "time (s)", ">32768<", ">60999<", ">40000<",
		"client → 203.0.113.10:8000", "client → 203.0.113.10:8001", "client → 203.0.113.10:8002",
	} {
		assert.Contains(t, svg, want)
	}
	assert.NotContains(t, svg, "40,000", "port numbers are not grouped")
	assert.NotContains(t, svg, "more")
	assert.Contains(t, svg, "font-family:'Liberation Sans',Arial,Helvetica,sans-serif;")
	// One element per destination, and the sequential run merged.
	assert.Less(t, len(svg), 1<<20, "SVG size")
}

func TestPortsDeterministic(t *testing.T) {
	for _, format := range []string{"svg", "png"} {
		t.Run(format, func(t *testing.T) {
			a, b := renderPorts(t, spread(), format), renderPorts(t, spread(), format)
			assert.True(t, bytes.Equal(a, b), "byte-identical renders")
		})
	}
}

func TestPortsErrors(t *testing.T) {
	_, err := PortChoices(nil)
	require.Error(t, err)

	res := spread()
	res.Ports = nil
	_, err = PortChoices(res)
	require.ErrorContains(t, err, "no successful allocations")
	dir := filepath.Join(t.TempDir(), "out")
	require.ErrorContains(t, WritePorts(res, dir), "no successful allocations")
	assert.NoDirExists(t, dir, "nothing written")

	res = spread()
	res.Ports[5].Domain = 3
	_, err = PortChoices(res)
	require.EqualError(t, err, "plots: port choice 5 names domain 3 of 3")
}

func TestPortsAxes(t *testing.T) {
	t.Run("one host: its range", func(t *testing.T) {
		f, err := PortChoices(spread())
		require.NoError(t, err)
		y := f.Top.Y
		assert.Less(t, y.Min, 32768.0)
		assert.Greater(t, y.Min, 32000.0)
		assert.Greater(t, y.Max, 60999.0)
		assert.Less(t, y.Max, 62000.0)
		assert.Zero(t, f.Top.X.Min)
		assert.Equal(t, spread().Ports[sim.MaxPortChoices-1].TS, f.Top.X.Max)
		assert.Nil(t, f.Bottom)
	})
	t.Run("two hosts: the ports chosen", func(t *testing.T) {
		res := twoHosts()
		f, err := PortChoices(res)
		require.NoError(t, err)
		assert.InDelta(t, 49152, f.Top.Y.Min, 20)
		assert.InDelta(t, 49160, f.Top.Y.Max, 20)
		svg := string(renderPorts(t, res, "svg"))
		assert.Contains(t, svg, "Ports chosen by random-start (a), sequential (b) — scenario two, seed 3 (all 9 allocations)")
		assert.Contains(t, svg, "a → all destinations")
		assert.Contains(t, svg, "b (10.0.0.2) → 192.0.2.1:80")
		assert.Contains(t, svg, "b (10.0.0.3) → 192.0.2.1:80")
	})
	t.Run("unreadable range: the ports chosen", func(t *testing.T) {
		res := spread()
		res.Summary.Hosts[0].Settings.PortRange = ""
		f, err := PortChoices(res)
		require.NoError(t, err)
		assert.Greater(t, f.Top.Y.Min, 32000.0)
		assert.Less(t, f.Top.Y.Max, 62000.0)
	})
	t.Run("one choice at t=0", func(t *testing.T) {
		res := spread()
		res.Ports = res.Ports[:1]
		res.Ports[0].TS = 0
		res.Summary.Successes = 1
		f, err := PortChoices(res)
		require.NoError(t, err)
		assert.Equal(t, 1.0, f.Top.X.Max)
		assert.Contains(t, f.Title, "(1 allocation)")
		assert.NotEmpty(t, renderPorts(t, res, "png"))
	})
}

// twoHosts returns nine choices by two hosts: a, port-exclusive, with a
// random allocator, and b, with two local addresses and a sequential one.
func twoHosts() *sim.Result {
	res := &sim.Result{Summary: sim.Summary{
		Scenario: "two", Seed: 3, Totals: sim.Totals{Successes: 9},
		Hosts: []sim.HostSummary{
			{Name: "a", Settings: sim.HostSettings{PortRange: "49152-65535", Allocator: "random-start"}},
			{Name: "b", Settings: sim.HostSettings{PortRange: "32768-60999", Allocator: "sequential"}},
		},
		Domains: []sim.DomainSummary{
			{Host: "a", Local: "10.0.0.1", Destination: "*"},
			{Host: "b", Local: "10.0.0.2", Destination: "192.0.2.1:80"},
			{Host: "b", Local: "10.0.0.3", Destination: "192.0.2.1:80"},
		},
	}}
	for i := range 9 {
		res.Ports = append(res.Ports, sim.PortChoice{TS: float64(i), Domain: i % 3, Port: uint16(49152 + i)})
	}
	return res
}

func TestPortsLegend(t *testing.T) {
	res := spread()
	for d := range 12 {
		res.Summary.Domains = append(res.Summary.Domains, sim.DomainSummary{
			Host: "client", Local: "10.0.0.1", Destination: fmt.Sprintf("198.51.100.%d:443", d+1),
		})
	}
	for i := range res.Ports {
		res.Ports[i].Domain = i % len(res.Summary.Domains) // 15 destinations
	}
	f, err := PortChoices(res)
	require.NoError(t, err)
	require.Len(t, f.Legend, maxLegendDests+1)
	assert.Equal(t, "client → 203.0.113.10:8000", f.Legend[0].Name)
	assert.Equal(t, "client → 198.51.100.4:443", f.Legend[maxLegendDests-1].Name)
	assert.Equal(t, "+8 more (colours repeat)", f.Legend[maxLegendDests].Name)
	assert.Empty(t, f.Legend[maxLegendDests].Thumbs)
	assert.Contains(t, string(renderPorts(t, res, "svg")), "+8 more (colours repeat)")

	// Domains without choices get neither a colour nor an entry.
	res = spread()
	res.Summary.Domains = append([]sim.DomainSummary{{Host: "client", Destination: "192.0.2.9:1"}}, res.Summary.Domains...)
	for i := range res.Ports {
		res.Ports[i].Domain++
	}
	f, err = PortChoices(res)
	require.NoError(t, err)
	require.Len(t, f.Legend, 3)
	assert.Equal(t, "client → 203.0.113.10:8000", f.Legend[0].Name)
	assert.Equal(t, dotThumb{colour: destColours[0]}, f.Legend[0].Thumbs[0])
}

func TestDotRadius(t *testing.T) {
	assert.Equal(t, minDotRadius, dotRadiusFor(sim.MaxPortChoices))
	assert.Equal(t, maxDotRadius, dotRadiusFor(1))
	assert.Equal(t, maxDotRadius, dotRadiusFor(0))
	assert.Equal(t, maxDotRadius, dotRadiusFor(3000))
	assert.InDelta(t, float64(2*minDotRadius), float64(dotRadiusFor(sim.MaxPortChoices/4)), 1e-9)
}

func TestPortsTitle(t *testing.T) {
	res := spread()
	hosts := res.Summary.Hosts
	assert.Equal(t, "Ports chosen by linux — scenario spread-destinations, seed 1 (first 20,000 allocations)", portsTitle(res, hosts))
	res.Ports = res.Ports[:500]
	res.Summary.Successes = 500
	assert.Equal(t, "Ports chosen by linux — scenario spread-destinations, seed 1 (all 500 allocations)", portsTitle(res, hosts))
	res.Summary.Successes = 501
	assert.Contains(t, portsTitle(res, hosts), "(first 500 allocations)")
	hosts[0].Settings.Allocator = ""
	assert.True(t, strings.HasPrefix(portsTitle(res, hosts), "Ports chosen — scenario"))
}

func TestFitTitle(t *testing.T) {
	short := "Ports chosen by linux — scenario s, seed 1"
	width := 10*vg.Inch - 2*margin
	assert.Equal(t, short, fitTitle(short, width))
	long := "Ports chosen by linux-5.10 (client-with-a-long-name), sequential (server) — scenario a-long-scenario-name, seed 18446744073709551615 (first 20,000 allocations)"
	assert.Equal(t, strings.Replace(long, " — ", "\n", 1), fitTitle(long, width))
}

func TestPortTicks(t *testing.T) {
	labels := func(tk plot.Ticker, lo, hi float64) []string {
		var out []string
		for _, x := range tk.Ticks(lo, hi) {
			if x.Label != "" {
				out = append(out, x.Label)
			}
		}
		return out
	}
	// 60000 is too close to 60999 to be read beside it.
	assert.ElementsMatch(t, []string{"40000", "50000", "32768", "60999"},
		labels(portTicks{lo: 32768, hi: 60999, ends: true}, 32200, 61560))
	assert.Equal(t, []string{"49152", "49156", "49160"}, labels(portTicks{}, 49151, 49161))
	assert.ElementsMatch(t, []string{"0", "10", "20", "30", "40"}, labels(numberTicks{dense: true}, 0, 44.3))
	assert.ElementsMatch(t, []string{"0", "0.1", "0.2", "0.3"}, labels(numberTicks{dense: true}, 0, 0.37))
	assert.Equal(t, []string{"0", "50", "100"}, labels(numberTicks{dense: true}, 0, 120), "would make too many")

	for in, ok := range map[string]bool{"32768-60999": true, " 1024 - 65535 ": true, "": false, "5-1": false, "1-70000": false, "a-b": false} {
		_, _, got := parseRange(in)
		assert.Equal(t, ok, got, in)
	}
}

// renderPorts returns res's port-choice figure in format.
func renderPorts(t *testing.T, res *sim.Result, format string) []byte {
	t.Helper()
	return renderWith(t, PortChoices, res, format)
}
