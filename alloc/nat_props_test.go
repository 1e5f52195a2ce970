package alloc

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/stat/distuv"
)

// TestNATPickersMatchReference compares every picker call by call with its
// port-by-port reference (nat_ref_test.go) over scenarios that fill small
// pools up and drain them, with parity, evictable ports, per-call pools,
// all three modes and both protocols. The pool sizes are chosen around the
// kernel's thresholds: below 16, 100 (not dividing 65536), 128, 129, and
// large.
func TestNATPickersMatchReference(t *testing.T) {
	scenarios := []struct {
		name string
		sc   natScenario
	}{
		{"one port", natScenario{pool: Range{5000, 5000}, steps: 40, release: 0.3}},
		{"10 ports, parity", natScenario{pool: Range{5001, 5010}, steps: 200, parity: true, release: 0.2}},
		{"100 ports fill up", natScenario{pool: Range{1000, 1099}, steps: 400, density: 0.3, release: 0.1, evict: 0.2}},
		{"128 ports, parity, evictable", natScenario{pool: Range{2048, 2175}, steps: 400, density: 0.5, parity: true, release: 0.15, evict: 0.3}},
		{"129 ports at exhaustion", natScenario{pool: Range{3000, 3128}, steps: 400, density: 0.9, release: 0.05, evict: 0.1}},
		{"1000 ports near exhaustion", natScenario{pool: Range{60000, 60999}, steps: 600, density: 0.97, release: 0.3, evict: 0.05, parity: true}},
		{"top of the port space", natScenario{pool: Range{65400, 65535}, steps: 300, density: 0.6, release: 0.2, parity: true}},
		{"without parity counts", natScenario{pool: Range{1000, 1199}, steps: 300, density: 0.8, parity: true, release: 0.2, hideMask: true}},
	}
	for _, name := range natNames {
		evictions := 0
		for i, s := range scenarios {
			t.Run(name+"/"+s.name, func(t *testing.T) {
				sc := s.sc
				sc.seed = uint64(100 + i)
				ok, evicted, failed := runNATScenario(t, name, sc)
				t.Logf("%d picked (%d by eviction), %d failed", ok, evicted, failed)
				evictions += evicted
			})
		}
		if name == NATPickerNetfilter65 {
			assert.Positive(t, evictions, "the scenarios exercise eviction")
		} else {
			assert.Zero(t, evictions)
		}
	}
}

// TestNATPickersLargePool is the reference comparison on the default
// MASQUERADE pool 1024-65535 and on 1-65535 (65,535 ports: the u16 offset
// wraps inside a pass) at 50% and 99.5% occupancy: the 248-probe
// search fails there while ports remain free, and the reference must
// agree on every such failure.
func TestNATPickersLargePool(t *testing.T) {
	if testing.Short() {
		t.Skip("large pools in -short mode")
	}
	for _, name := range natNames {
		for _, pool := range []Range{poolBig, {1, MaxPort}} {
			for _, d := range []float64{0.5, 0.995} {
				t.Run(fmt.Sprintf("%s/%s/%v", name, pool, d), func(t *testing.T) {
					runNATScenario(t, name, natScenario{seed: 7, pool: pool, steps: 60, density: d, parity: true, evict: 0.01})
				})
			}
		}
	}
}

// FuzzNATPickers drives every picker and its reference from fuzzed pools,
// occupancy and flags; runNATScenario requires equal results and the
// invariants: never outside the pool, never a busy port unless
// netfilter-6.5 evicted an evictable one, parity kept, failure only where
// the reference fails.
func FuzzNATPickers(f *testing.F) {
	f.Add(uint64(1), uint16(1000), uint16(100), uint8(128), uint8(0))
	f.Add(uint64(2), uint16(65500), uint16(200), uint8(250), uint8(7))
	f.Add(uint64(3), uint16(1), uint16(0), uint8(0), uint8(3))
	f.Add(uint64(4), uint16(1024), uint16(128), uint8(255), uint8(5))
	f.Fuzz(func(t *testing.T, seed uint64, low, size uint16, density, flags uint8) {
		lo := max(1, int(low))
		hi := min(MaxPort, lo+int(size)%2048)
		sc := natScenario{
			seed:     seed,
			pool:     Range{uint16(lo), uint16(hi)},
			steps:    60,
			density:  float64(density) / 255,
			parity:   flags&1 != 0,
			release:  float64(flags>>4) / 16,
			hideMask: flags&4 != 0,
		}
		if flags&2 != 0 {
			sc.evict = 0.25
		}
		for _, name := range natNames {
			runNATScenario(t, name, sc)
		}
	})
}

// TestNATNetfilterProbeBound: a 5.0+ search never examines more than
// 128+64+32+16+8 = 248 candidates (commit a504b703bb1d), and exactly 248
// when nothing is free in a pool of more than 128; smaller pools get one
// window of their size.
func TestNATNetfilterProbeBound(t *testing.T) {
	for _, name := range []string{NATPickerNetfilter, NATPickerNetfilter65} {
		p := newPicker(t, name, newRand(1, 2))
		for _, size := range []int{1, 2, 15, 16, 17, 100, 127, 128, 129, 256, 1000, 28232, 64512, 65535} {
			pool := Range{1, uint16(size)}
			req := reqOn(pool)
			full := allBusyBut(pool)
			res := p.Pick(&req, full)
			want := 248
			if size <= 128 {
				want = size
			}
			require.Equal(t, Result{Probes: want, Err: EADDRNOTAVAIL}, res, "%s, pool of %d", name, size)
		}
		// 99.9% busy: most picks succeed, none looks at more than 248.
		busy := benchBusy(poolBig, 0.999)
		u := NewUnion(busy)
		req := reqOn(poolBig)
		fails := 0
		for range 2000 {
			res := p.Pick(&req, &u)
			require.LessOrEqual(t, res.Probes, 248)
			if res.Err != OK {
				fails++
				require.Equal(t, 248, res.Probes)
			}
		}
		// 65 free of 64512: a 248-probe search misses them all with
		// probability ≈ (1 - 65/64512)^248 ≈ 0.78, so most calls fail
		// although ports are free — the behaviour being modelled.
		t.Logf("%s at 99.9%% busy: %d of 2000 searches failed with free ports left", name, fails)
		assert.Greater(t, fails, 1000)
	}
}

// TestNATPickersNoAllocs: a Pick allocates nothing, in every mode, with and
// without parity and evictable ports (the NATPicker contract).
func TestNATPickersNoAllocs(t *testing.T) {
	busy := benchBusy(poolBig, 0.99)
	u := NewUnion(busy, new(PortSet))
	var ev PortSet
	for p := 1024; p < 65536; p += 97 {
		if busy.Has(p) {
			ev.Add(p)
		}
	}
	for _, name := range natNames {
		p := newPicker(t, name, newRand(1, 2))
		for _, mode := range []NATMode{NATDefault, NATRandom, NATRandomFully} {
			for _, parity := range []bool{false, true} {
				req := reqOn(poolBig)
				req.Mode, req.Parity, req.Evictable = mode, parity, &ev
				req.External = netip.MustParseAddr("192.0.2.10")
				allocs := testing.AllocsPerRun(200, func() { p.Pick(&req, &u) })
				assert.Zero(t, allocs, "%s mode %d parity %v", name, mode, parity)
			}
		}
	}
}

// TestNATPickersExplain: every picker explains its last call in one line
// naming its source and ending in "→ PORT" or "→ ERRNO", and Explain does
// not change what the next Pick does.
func TestNATPickersExplain(t *testing.T) {
	sources := map[string]string{
		NATPickerNetfilter:      "nf_nat_l4proto_unique_tuple (5.0-6.4): ",
		NATPickerNetfilter65:    "nf_nat_l4proto_unique_tuple (6.5+): ",
		NATPickerNetfilterRover: "nf_nat_l4proto_unique_tuple (pre-5.0): ",
		NATPickerRandom:         "random from free inventory (Azure NAT Gateway): ",
		NATPickerSequential:     "sequential NAT cursor: ",
	}
	for _, name := range natNames {
		t.Run(name, func(t *testing.T) {
			a, b := newPicker(t, name, newRand(3, 4)), newPicker(t, name, newRand(3, 4))
			busy := benchBusy(poolBig, 0.9)
			u := NewUnion(busy)
			req := reqOn(poolBig)
			for i := range 50 {
				req.Mode, req.Parity = NATMode(i%3), i%2 == 0
				ra := a.Pick(&req, &u)
				line := a.(Explainer).Explain()
				require.Equal(t, line, a.(Explainer).Explain(), "Explain is pure")
				require.Equal(t, ra, b.Pick(&req, &u), "Explain changed the picker's state")
				require.True(t, strings.HasPrefix(line, sources[name]), line)
				require.NotContains(t, line, "\n")
				if ra.Err == OK {
					require.Contains(t, line, fmt.Sprintf("→ %d", ra.Port))
				} else {
					require.Contains(t, line, "→ EADDRNOTAVAIL")
				}
			}
			t.Log(a.(Explainer).Explain())
			full := allBusyBut(poolBig)
			a.Pick(&req, full)
			t.Log(a.(Explainer).Explain())
			require.Contains(t, a.(Explainer).Explain(), "→ EADDRNOTAVAIL")
		})
	}
	// The example of the brief, in the 5.0+ wording.
	rng, _ := offsets(nil, 51234)
	p := newPicker(t, NATPickerNetfilter, rng)
	req := reqOn(poolBig)
	none, _ := busyOf()
	p.Pick(&req, none)
	assert.Equal(t, "nf_nat_l4proto_unique_tuple (5.0-6.4): pool 1024-65535 (64512), window 128 at offset 51234 → 52258, 1 candidate probed", p.(Explainer).Explain())
	rng, _ = offsets(nil, 1, 2, 3, 4, 5)
	p = newPicker(t, NATPickerNetfilter, rng)
	p.Pick(&req, allBusyBut(poolBig))
	assert.Equal(t, "nf_nat_l4proto_unique_tuple (5.0-6.4): pool 1024-65535 (64512), windows 128/64/32/16/8 at offsets 1/2/3/4/5 all busy → EADDRNOTAVAIL, 248 candidates probed; packet dropped at conntrack confirm", p.(Explainer).Explain())
}

// TestNATParityCount checks CountFreeParity and NthFreeParity of PortSet
// and Union against the port-by-port model, on spans that cross word
// boundaries and the ends of the port space.
func TestNATParityCount(t *testing.T) {
	rng := newRand(5, 6)
	for round := range 200 {
		m := newModel()
		var a, b PortSet
		fillRandom(rng, m, []*PortSet{&a, &b}, 0, MaxPort, rng.Float64(), round%2 == 0)
		u := NewUnion(&a, &b)
		var single PortSet
		for p := range NumPorts {
			if m[p] {
				single.Add(p)
			}
		}
		for range 20 {
			from, to := randomSpan(rng)
			par := rng.IntN(2)
			var free []int
			for q := max(from, 0); q <= min(to, MaxPort); q++ {
				if !m[q] && q%2 == par {
					free = append(free, q)
				}
			}
			for _, pc := range []parityCounter{&u, &single} {
				require.Equal(t, len(free), pc.CountFreeParity(from, to, par), "CountFreeParity(%d, %d, %d)", from, to, par)
				for _, n := range []int{-1, 0, 1, len(free) / 2, len(free) - 1, len(free)} {
					want := -1
					if n >= 0 && n < len(free) {
						want = free[n]
					}
					require.Equal(t, want, pc.NthFreeParity(from, to, par, n), "NthFreeParity(%d, %d, %d, %d)", from, to, par, n)
				}
			}
		}
	}
}

// TestNATRandomUniform is a chi-square goodness-of-fit test of "random"
// (uniform over the free inventory, Azure NAT Gateway, nat.md §3.3) on a
// 300-port pool with busy runs and scattered busy ports, with and without
// parity. Alpha = 0.001 from gonum's ChiSquared quantile, fixed seed; a
// failure means bias, not bad luck to be tuned away.
func TestNATRandomUniform(t *testing.T) {
	// A pool about 29 % busy, where the uniform draws nearly always find
	// a free port, and one 92 % busy, where all 16 draws miss a quarter of
	// the time (0.92^16 = 0.26) and the exact count decides: both stages,
	// and so their mixture, must be uniform over the free ports.
	sparse := func(busy *PortSet) {
		busy.AddRange(Range{3050, 3099})
		for p := 3000; p < 3300; p += 7 {
			busy.Add(p)
		}
	}
	dense := func(busy *PortSet) {
		busy.AddRange(Range{3000, 3299})
		for p := 3001; p < 3300; p += 25 {
			busy.Remove(p)
			busy.Remove(p + 10)
		}
	}
	for _, fill := range []struct {
		name string
		mk   func(*PortSet)
	}{{"sparse", sparse}, {"dense", dense}} {
		t.Run(fill.name, func(t *testing.T) { natRandomUniform(t, fill.mk) })
	}
}

// natRandomUniform draws 200,000 ports from 3000-3299 with the busy set mk
// builds and tests the counts of the free candidates with chi-square at
// α = 0.001.
func natRandomUniform(t *testing.T, mk func(*PortSet)) {
	const n = 200_000
	pool := Range{3000, 3299}
	var busy PortSet
	mk(&busy)
	u := NewUnion(&busy)
	for _, parity := range []bool{false, true} {
		for _, hide := range []bool{false, true} {
			if hide && !parity {
				continue
			}
			t.Run(fmt.Sprintf("parity=%v/walk=%v", parity, hide), func(t *testing.T) {
				p := newPicker(t, NATPickerRandom, newRand(1, 2))
				var b Busy = &u
				if hide {
					b = hideParity{&u}
				}
				req := reqOn(pool)
				req.Parity = parity
				counts := map[int]int{}
				for range n {
					res := p.Pick(&req, b)
					require.Equal(t, OK, res.Err)
					counts[int(res.Port)]++
				}
				var observed []int
				for q := int(pool.Low); q <= int(pool.High); q++ {
					if busy.Has(q) || (parity && q%2 != int(req.Inside.Port())%2) {
						require.Zero(t, counts[q], "port %d is not a candidate", q)
						continue
					}
					observed = append(observed, counts[q])
				}
				stat := chiSquare(observed, float64(n)/float64(len(observed)))
				crit := distuv.ChiSquared{K: float64(len(observed) - 1)}.Quantile(0.999)
				t.Logf("%d free candidates: chi-square %.1f, critical value %.1f", len(observed), stat, crit)
				assert.Less(t, stat, crit)
			})
		}
	}
}
