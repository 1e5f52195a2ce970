package slab

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// check runs ops on a NextFit against a model (the set of held ids): a
// byte below 128 takes a slot, one above frees the held slot it picks.
// Every id taken must be free in the model, lie below Len, and be a new
// slot exactly when the model says fewer than one in 8 slots is free (or
// none); a reused id must be the first free one at or after the cursor.
func check(t *testing.T, ops []byte) {
	var s NextFit
	held := map[int]bool{}
	var order []int // held ids, to pick frees from
	next := 0
	for _, op := range ops {
		if op < 128 || len(order) == 0 {
			n, free := s.Len(), s.Len()-len(held)
			id := s.Take()
			require.False(t, held[id], "id %d handed out twice", id)
			if free == 0 || free < n/8 {
				require.Equal(t, n, id, "must grow: %d free of %d", free, n)
			} else {
				want := -1
				for k := range n {
					if c := (next + k) % n; !held[c] {
						want = c
						break
					}
				}
				require.Equal(t, want, id, "next-fit from %d", next)
				next = (id + 1) % n
			}
			require.Less(t, id, s.Len())
			held[id] = true
			order = append(order, id)
			continue
		}
		i := int(op) % len(order)
		id := order[i]
		order = append(order[:i], order[i+1:]...)
		delete(held, id)
		s.Put(id)
	}
}

func TestNextFit(t *testing.T) {
	for _, tc := range []struct {
		name string
		ops  []byte
	}{
		{"grows from empty", []byte{0, 0, 0}},
		{"reuses once one in 8 is free", []byte{0, 0, 0, 0, 0, 0, 0, 0, 200, 0, 0}},
		{"wraps around", []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 128, 129, 0, 0, 0, 130, 0, 0}},
		{"across words", func() []byte {
			var b []byte
			for range 200 {
				b = append(b, 0)
			}
			for i := range 100 {
				b = append(b, byte(128+i%100), 0, 255)
			}
			return b
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) { check(t, tc.ops) })
	}
}

// TestNextFitFIFO: records freed in the order they were taken are taken
// again in that order, walking the slab front to back.
func TestNextFitFIFO(t *testing.T) {
	var s NextFit
	var live []int
	for range 1000 {
		live = append(live, s.Take())
	}
	prev := -1
	for i := range 10000 {
		s.Put(live[0])
		live = live[1:]
		id := s.Take()
		live = append(live, id)
		if i > 200 {
			require.Equal(t, (prev+1)%s.Len(), id, "take %d", i)
		}
		prev = id
	}
	require.LessOrEqual(t, s.Len(), 1000+1000/7+1)
}

func FuzzNextFit(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 200, 0, 0})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 128, 129, 0, 0, 0, 130, 0, 0})
	f.Fuzz(func(t *testing.T, ops []byte) { check(t, ops) })
}
