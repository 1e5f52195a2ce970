package alloc

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestNATBlockPool: port block allocation (nat.md §1.9, Juniper
// secured-port-block-allocation: default block 128 over 1024-65535, no
// smaller fallback block) as block arithmetic.
func TestNATBlockPool(t *testing.T) {
	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct {
			name      string
			pool      Range
			size, ips int
			want      string
		}{
			{"invalid pool", Range{0, 10}, 1, 1, "low"},
			{"block size 0", poolBig, 0, 1, "block size 0 is outside 1..64512"},
			{"block larger than the pool", Range{1000, 1009}, 11, 1, "block size 11 is outside 1..10"},
			{"no external address", poolBig, 128, 0, "0 external addresses"},
		} {
			_, err := NewBlockPool(tc.pool, tc.size, tc.ips)
			assert.ErrorContains(t, err, tc.want, tc.name)
		}
	})

	t.Run("Juniper default: 504 blocks of 128 on 1024-65535", func(t *testing.T) {
		b, err := NewBlockPool(poolBig, 128, 2)
		require.NoError(t, err)
		assert.Equal(t, 504, b.Blocks(), "64512 / 128")
		assert.Equal(t, 128, b.Size())
		assert.Equal(t, 2, b.IPs())
		r, ok := b.Take(0)
		require.True(t, ok)
		assert.Equal(t, Range{1024, 1151}, r, "lowest block first")
		r, ok = b.Take(0)
		require.True(t, ok)
		assert.Equal(t, Range{1152, 1279}, r)
		r, ok = b.Take(1)
		require.True(t, ok)
		assert.Equal(t, Range{1024, 1151}, r, "each address has its own blocks")
		assert.Equal(t, 502, b.Free(0))
		assert.Equal(t, 503, b.Free(1))
		b.Release(0, Range{1024, 1151})
		assert.Equal(t, 503, b.Free(0))
		r, _ = b.Take(0)
		assert.Equal(t, Range{1024, 1151}, r, "a released block is the lowest free again")
	})

	t.Run("remainder unused, exhaustion, refill", func(t *testing.T) {
		pool := Range{1000, 1009} // 10 ports, blocks of 3: 3 blocks, port 1009 never used
		b, err := NewBlockPool(pool, 3, 1)
		require.NoError(t, err)
		require.Equal(t, 3, b.Blocks())
		var got []Range
		for {
			r, ok := b.Take(0)
			if !ok {
				break
			}
			got = append(got, r)
		}
		assert.Equal(t, []Range{{1000, 1002}, {1003, 1005}, {1006, 1008}}, got)
		assert.Zero(t, b.Free(0))
		b.Release(0, Range{1003, 1005})
		r, ok := b.Take(0)
		assert.True(t, ok)
		assert.Equal(t, Range{1003, 1005}, r)
	})

	t.Run("programming errors panic", func(t *testing.T) {
		b, err := NewBlockPool(Range{1000, 1099}, 10, 2)
		require.NoError(t, err)
		r, _ := b.Take(0)
		assert.Panics(t, func() { b.Release(1, r) }, "not taken on that address")
		assert.Panics(t, func() { b.Release(0, Range{1001, 1010}) }, "not a block boundary")
		assert.Panics(t, func() { b.Release(0, Range{1000, 1008}) }, "wrong length")
		assert.Panics(t, func() { b.Release(0, Range{1100, 1109}) }, "past the last block")
		assert.Panics(t, func() { b.Release(0, Range{990, 999}) }, "below the pool")
		assert.Panics(t, func() { b.Take(2) }, "address index out of range")
		assert.Panics(t, func() { b.Free(-1) })
		b.Release(0, r)
		assert.Panics(t, func() { b.Release(0, r) }, "released twice")
	})

	t.Run("against a slice model, many blocks", func(t *testing.T) {
		// Size 1 gives 64512 blocks per address: bitset words well past one.
		b, err := NewBlockPool(poolBig, 1, 3)
		require.NoError(t, err)
		taken := make([][]bool, 3)
		free := make([]int, 3)
		for i := range taken {
			taken[i] = make([]bool, b.Blocks())
			free[i] = b.Blocks()
		}
		rng := newRand(1, 2)
		for range 20000 {
			ip := rng.IntN(3)
			if rng.IntN(3) > 0 {
				want := -1
				for j, t := range taken[ip] {
					if !t {
						want = j
						break
					}
				}
				r, ok := b.Take(ip)
				require.Equal(t, want >= 0, ok)
				if ok {
					require.Equal(t, Range{uint16(1024 + want), uint16(1024 + want)}, r)
					taken[ip][want] = true
					free[ip]--
				}
			} else {
				j := rng.IntN(b.Blocks())
				if taken[ip][j] {
					b.Release(ip, Range{uint16(1024 + j), uint16(1024 + j)})
					taken[ip][j] = false
					free[ip]++
				}
			}
			require.Equal(t, free[ip], b.Free(ip))
		}
	})

	t.Run("no allocation per call", func(t *testing.T) {
		b, err := NewBlockPool(poolBig, 64, 4)
		require.NoError(t, err)
		allocs := testing.AllocsPerRun(500, func() {
			r, _ := b.Take(1)
			b.Release(1, r)
			_ = b.Free(1)
		})
		assert.Zero(t, allocs)
	})
}

// TestNATDeterministicRange: RFC 7422 deterministic NAT as FD.io VPP DET44
// computes it (snat_det_forward; det44.c: ratio = inside / outside, ports =
// (65535 - 1023) / ratio), with the worked numbers of nat.md §1.7 (FDio/csit
// methodology_nat44.rst).
func TestNATDeterministicRange(t *testing.T) {
	for _, tc := range []struct {
		name       string
		n, ips     int
		wantPorts  int
		wantPerIP  int // inside addresses per external address
		lastPortOf int // the High of the last inside address of an IP
	}{
		{"nat.md §1.7: /18 inside → /24 outside, ratio 64 → 1,008 ports/host", 1 << 14, 1 << 8, 1008, 64, 1024 + 64*1008 - 1},
		{"nat.md §1.7: ratio 1024 → 63", 1024, 1, 63, 1024, 1024 + 1024*63 - 1},
		{"nat.md §1.7: ratio 512 → 126", 1024, 2, 126, 512, 1024 + 512*126 - 1},
		{"nat.md §1.7: ratio 256 → 252", 1024, 4, 252, 256, 1024 + 256*252 - 1},
		{"nat.md §1.7: ratio 128 → 504", 1024, 8, 504, 128, 1024 + 128*504 - 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// snat_det_forward: first port 1024 + ports·(k mod ratio), IP k / ratio.
			for _, k := range []int{0, 1, tc.wantPerIP - 1, tc.wantPerIP, tc.n - 1} {
				if k >= tc.n {
					continue
				}
				ip, r, err := DeterministicRange(poolBig, k, tc.n, tc.ips)
				require.NoError(t, err)
				assert.Equal(t, k/tc.wantPerIP, ip, "k=%d", k)
				lo := 1024 + tc.wantPorts*(k%tc.wantPerIP)
				assert.Equal(t, Range{uint16(lo), uint16(lo + tc.wantPorts - 1)}, r, "k=%d", k)
				assert.Equal(t, tc.wantPorts, r.Size())
			}
			_, r, _ := DeterministicRange(poolBig, tc.wantPerIP-1, tc.n, tc.ips)
			assert.Equal(t, tc.lastPortOf, int(r.High))
		})
	}

	t.Run("every inside address gets a disjoint range (ceil ratio, n not a multiple of ips)", func(t *testing.T) {
		const n, ips = 100, 3 // ratio 34: IPs 0 and 1 serve 34 hosts, IP 2 serves 32
		pool := Range{2000, 2999}
		var used [3]PortSet
		for k := range n {
			ip, r, err := DeterministicRange(pool, k, n, ips)
			require.NoError(t, err)
			require.Less(t, ip, ips)
			require.Equal(t, 1000/34, r.Size())
			require.True(t, pool.Contains(int(r.Low)) && pool.Contains(int(r.High)))
			require.Zero(t, used[ip].CountIn(r), "k=%d overlaps", k)
			used[ip].AddRange(r)
		}
	})

	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct {
			name         string
			pool         Range
			k, n, ips    int
			wantContains string
		}{
			{"ratio larger than the pool: 0 ports per host", Range{1024, 1033}, 0, 11, 1, "sharing ratio 11 exceeds the 10 ports"},
			{"k below 0", poolBig, -1, 10, 1, "inside address -1 is outside 0..9"},
			{"k = n", poolBig, 10, 10, 1, "inside address 10 is outside 0..9"},
			{"no inside addresses", poolBig, 0, 0, 1, "0 inside"},
			{"no external addresses", poolBig, 0, 10, 0, "0 external"},
			{"invalid pool", Range{5, 4}, 0, 1, 1, "low 5 is above high 4"},
		} {
			_, _, err := DeterministicRange(tc.pool, tc.k, tc.n, tc.ips)
			require.ErrorIs(t, err, ErrDeterministic, tc.name)
			assert.ErrorContains(t, err, tc.wantContains, tc.name)
		}
	})
}
