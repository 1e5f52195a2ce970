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

// naiveNextFreeParity, naiveCountFree and naiveNthFree are the port-by-port
// references for the Busy span questions, on a model clipped to 0..MaxPort.
func naiveNextFreeParity(m model, from, to, parity int) int {
	for q := max(from, 0); q <= min(to, MaxPort); q++ {
		if q%2 == parity && !m[q] {
			return q
		}
	}
	return -1
}

func naiveCountFree(m model, from, to int) int {
	n := 0
	for q := max(from, 0); q <= min(to, MaxPort); q++ {
		if !m[q] {
			n++
		}
	}
	return n
}

func naiveNthFree(m model, from, to, n int) int {
	for q := max(from, 0); q <= min(to, MaxPort); q++ {
		if !m[q] {
			if n == 0 {
				return q
			}
			n--
		}
	}
	return -1
}

// TestBusySpanQuestionsAgainstNaive is the property test for NextFreeParity,
// CountFree and NthFree on PortSet and on Unions of 0..4 sets, against the
// port-by-port loops, with spans biased toward word boundaries.
func TestBusySpanQuestionsAgainstNaive(t *testing.T) {
	rng := newRand(6, 6)
	for i := 0; i < 40; i++ {
		n := i % 5
		sets := make([]*PortSet, max(n, 1))
		for k := range sets {
			sets[k] = new(PortSet)
		}
		m := newModel()
		if n > 0 {
			density := []float64{0.3, 0.9, 0.999, 1, 0.5}[i%5]
			fillRandom(rng, m, sets, 0, MaxPort, density, i%3 == 0)
		}
		u := NewUnion(sets[:n]...)
		views := []Busy{&u}
		if n == 1 {
			views = append(views, sets[0])
		}
		for j := 0; j < 300; j++ {
			from, to := randomSpan(rng)
			free := naiveCountFree(m, from, to)
			for _, b := range views {
				for parity := 0; parity <= 1; parity++ {
					require.Equal(t, naiveNextFreeParity(m, from, to, parity), b.NextFreeParity(from, to, parity),
						"case %d (%T): NextFreeParity(%d, %d, %d)", i, b, from, to, parity)
				}
				require.Equal(t, free, b.CountFree(from, to), "case %d (%T): CountFree(%d, %d)", i, b, from, to)
				for _, k := range []int{-1, 0, free - 1, free, rng.IntN(free + 1), rng.IntN(free + 1)} {
					require.Equal(t, naiveNthFree(m, from, to, k), b.NthFree(from, to, k),
						"case %d (%T): NthFree(%d, %d, %d)", i, b, from, to, k)
				}
			}
		}
	}
}

func TestBusySpanQuestionsBoundaries(t *testing.T) {
	var s PortSet
	s.AddRange(Range{0, 62})
	s.AddRange(Range{65, 65533})
	u := NewUnion(&s)
	var zero Union
	for _, b := range []Busy{&s, &u} {
		assert.Equal(t, 63, b.NextFreeParity(0, 65535, 1))
		assert.Equal(t, 64, b.NextFreeParity(0, 65535, 0))
		assert.Equal(t, 65535, b.NextFreeParity(64, 65535, 1))
		assert.Equal(t, 65534, b.NextFreeParity(65, 65535, 0))
		assert.Equal(t, -1, b.NextFreeParity(0, 62, 0))
		assert.Equal(t, -1, b.NextFreeParity(63, 63, 0))
		assert.Equal(t, -1, b.NextFreeParity(65534, 65533, 0))
		assert.Equal(t, 4, b.CountFree(-10, 70000))
		assert.Equal(t, 0, b.CountFree(64, 63))
		assert.Equal(t, 2, b.CountFree(63, 64))
		assert.Equal(t, 63, b.NthFree(0, 65535, 0))
		assert.Equal(t, 65535, b.NthFree(0, 65535, 3))
		assert.Equal(t, -1, b.NthFree(0, 65535, 4))
		assert.Equal(t, -1, b.NthFree(0, 65535, -1))
	}
	assert.Equal(t, 1, zero.NextFreeParity(-5, 9, 1))
	assert.Equal(t, 65536, zero.CountFree(-5, 70000))
	assert.Equal(t, 40000, zero.NthFree(0, 65535, 40000))
	assert.Equal(t, -1, zero.NthFree(10, 20, 11))
}

func TestNoAllocsSpanQuestions(t *testing.T) {
	var a, b PortSet
	a.AddRange(Range{0, 40000})
	b.AddRange(Range{40001, 65000})
	u := NewUnion(&a, &b)
	var busy Busy = &u
	allocs := testing.AllocsPerRun(100, func() {
		_ = busy.NextFreeParity(0, 65535, 1)
		_ = busy.CountFree(0, 65535)
		_ = busy.NthFree(0, 65535, 300)
		_ = a.NextFreeParity(0, 65535, 0)
		_ = a.CountFree(0, 65535)
		_ = a.NthFree(0, 65535, 7)
	})
	assert.Zero(t, allocs)
}
