package alloc

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestUnionAgainstNaive is the property test for Union.Has and
// Union.NextFree with 0..4 sets of varying density, against the OR of the
// models and a port-by-port loop.
func TestUnionAgainstNaive(t *testing.T) {
	rng := newRand(4, 4)
	for i := 0; i < 40; i++ {
		n := i % 5
		sets := make([]*PortSet, n)
		for k := range sets {
			sets[k] = new(PortSet)
		}
		m := newModel()
		if n > 0 {
			density := []float64{0.3, 0.9, 0.999, 1}[i%4]
			fillRandom(rng, m, sets, 0, MaxPort, density, i%3 == 0)
		}
		u := NewUnion(sets...)
		for j := 0; j < 400; j++ {
			from, to := randomSpan(rng)
			require.Equal(t, m.nextFree(from, to), u.NextFree(from, to), "case %d (%d sets): NextFree(%d, %d)", i, n, from, to)
			p := interesting[rng.IntN(len(interesting))]
			if j%2 == 0 {
				p = rng.IntN(NumPorts)
			}
			want := p >= 0 && p <= MaxPort && m[p]
			require.Equal(t, want, u.Has(p), "case %d: Has(%d)", i, p)
		}
	}
}

func TestUnionBoundaries(t *testing.T) {
	var a, b, c, d PortSet
	a.AddRange(Range{0, 31})
	b.AddRange(Range{32, 63})
	c.AddRange(Range{64, 65534})
	d.Add(65535)

	u := NewUnion(&a, &b, &c)
	assert.Equal(t, 65535, u.NextFree(0, 65535))
	assert.Equal(t, -1, u.NextFree(0, 65534))
	assert.Equal(t, -1, u.NextFree(63, 64))
	assert.Equal(t, -1, u.NextFree(10, 5))
	assert.True(t, u.Has(31) && u.Has(32) && u.Has(63) && u.Has(64))
	assert.False(t, u.Has(65535))
	assert.False(t, u.Has(-1))
	assert.False(t, u.Has(65536))

	full := NewUnion(&a, nil, &b, &c, nil, &d) // nil entries are skipped
	assert.Equal(t, -1, full.NextFree(-100, 100000))
	assert.True(t, full.Has(65535))

	// Only a and b: word 0 is full, 64 is the first free port.
	ab := NewUnion(&a, &b)
	assert.Equal(t, 64, ab.NextFree(0, 65535))
	assert.Equal(t, 64, ab.NextFree(64, 64))
	assert.Equal(t, -1, ab.NextFree(0, 63))

	var zero Union // no sets: nothing busy
	assert.Equal(t, 0, zero.NextFree(-5, 3))
	assert.Equal(t, 65535, zero.NextFree(65535, 70000))
	assert.Equal(t, -1, zero.NextFree(65536, 70000))
	assert.Equal(t, -1, zero.NextFree(4, 3))
	assert.False(t, zero.Has(7))

	one := NewUnion(&c)
	assert.Equal(t, 0, one.NextFree(0, 10))
	assert.Equal(t, 65535, one.NextFree(64, 65535))

	assert.Panics(t, func() { NewUnion(&a, &b, &c, &d, &a) })
}

func TestPortSetIsBusy(t *testing.T) {
	var s PortSet
	s.AddRange(Range{100, 199})
	var busy Busy = &s
	assert.True(t, busy.Has(150))
	assert.Equal(t, 200, busy.NextFree(100, 300))
}

func TestNoAllocsBitsetScans(t *testing.T) {
	var a, b PortSet
	a.AddRange(Range{0, 40000})
	b.AddRange(Range{40001, 65534})
	u := NewUnion(&a, &b)
	var busy Busy = &u
	allocs := testing.AllocsPerRun(100, func() {
		_ = busy.NextFree(0, 65535)
		_ = busy.Has(12345)
		_ = a.NextClear(0, 65535)
		_ = a.CountIn(Range{1, 65535})
	})
	assert.Zero(t, allocs)
}
