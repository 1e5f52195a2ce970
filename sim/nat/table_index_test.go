package nat

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestIndex checks the open-addressing index against a Go map under
// random churn with clustered keys (the backward-shift deletion is where
// such tables go wrong).
func TestIndex(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var ix index
	ref := map[uint64]int32{}
	for i := range 200000 {
		k := uint64(r.IntN(3000))
		if r.IntN(3) == 0 {
			k <<= 40
		}
		switch r.IntN(3) {
		case 0, 1:
			v := int32(r.IntN(1 << 20))
			ix.put(k, v)
			ref[k] = v
		default:
			ix.del(k)
			delete(ref, k)
		}
		if i%1000 == 0 {
			require.Equal(t, len(ref), ix.len())
			for k, v := range ref {
				require.Equal(t, v, ix.get(k))
			}
		}
		want, ok := ref[k]
		if !ok {
			want = -1
		}
		require.Equal(t, want, ix.get(k))
	}
}
