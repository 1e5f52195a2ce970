package sim

import (
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The engine must hand out events in (time, scheduling order), whatever mix
// of heap and lanes they came through.
func TestEngineOrderMatchesSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var e Engine
	lanes := []LaneID{e.NewLane(0), e.NewLane(5), e.NewLane(17)}
	type key struct {
		t   Time
		seq int
	}
	var want []key
	seq := 0
	// Schedule from inside the loop too, as a model does.
	push := func() {
		seq++
		if rng.IntN(2) == 0 {
			tt := e.Now() + Time(rng.IntN(20))
			e.At(tt, 0, int32(seq))
			want = append(want, key{tt, seq})
			return
		}
		l := lanes[rng.IntN(len(lanes))]
		e.After(l, 0, int32(seq))
		want = append(want, key{e.Now() + e.lanes[l].delay, seq})
	}
	for range 100 {
		push()
	}
	var got []key
	for {
		ev, ok := e.Next()
		if !ok {
			break
		}
		got = append(got, key{ev.T, int(ev.ID)})
		if len(want) < 5000 {
			push()
			push()
		}
	}
	sort.Slice(want, func(i, j int) bool {
		return want[i].t < want[j].t || (want[i].t == want[j].t && want[i].seq < want[j].seq)
	})
	require.Equal(t, len(want), len(got))
	assert.Equal(t, want, got)
}

func TestEngineTiesFIFO(t *testing.T) {
	var e Engine
	l := e.NewLane(10)
	e.At(10, 0, 1)
	e.After(l, 0, 2) // also at 10, scheduled later
	e.At(10, 0, 3)
	for _, id := range []int32{1, 2, 3} {
		ev, ok := e.Next()
		require.True(t, ok)
		assert.Equal(t, id, ev.ID)
		assert.Equal(t, Time(10), ev.T)
	}
	_, ok := e.Next()
	assert.False(t, ok)
}

// Steady-state scheduling must not allocate: the heap and lanes reuse their
// arrays once they have grown.
func TestEngineNoAllocs(t *testing.T) {
	var e Engine
	l := e.NewLane(60)
	for i := range 1000 {
		e.At(Time(i), 0, 0)
		e.After(l, 0, 0)
	}
	allocs := testing.AllocsPerRun(10000, func() {
		ev, _ := e.Next()
		if ev.Kind == 0 {
			e.At(e.Now()+7, 0, 0)
		}
		e.After(l, 1, 0)
		e.Next()
	})
	assert.Zero(t, allocs)
}

func BenchmarkEngineHold(b *testing.B) {
	var e Engine
	l := e.NewLane(Time(60e9))
	rng := rand.New(rand.NewPCG(1, 1))
	for range 100000 {
		e.At(Time(rng.IntN(1e9)), 0, 0)
	}
	for b.Loop() {
		ev, _ := e.Next()
		if ev.Kind == 0 {
			e.At(e.Now()+Time(rng.IntN(1e9)), 0, 0)
			e.After(l, 1, 0)
		}
	}
}
