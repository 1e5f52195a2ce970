package alloc

import (
	"errors"
	"fmt"
	"math/bits"
)

// BlockPool is the port-block arithmetic of a carrier-grade NAT with port
// block allocation (PBA, nat.md §1.9: Juniper secured-port-block-allocation,
// default block size 128; RFC 6888 REQ-13/14's utilisation-versus-logging
// trade-off): each of ips external addresses has the pool cut into
// consecutive blocks of size ports, [Low, Low+size-1], [Low+size,
// Low+2·size-1], ...; a subscriber is given whole blocks and draws its
// flows' ports inside them. The pool's remainder after the last whole block
// is never handed out (Juniper offers no smaller fallback block either).
//
// It keeps one bit per block (1 = taken) and a free count per address, so
// Take costs O(blocks/64) word reads, Release and Free O(1), and nothing is
// allocated after NewBlockPool. There is no randomness: Take always gives
// the lowest free block. Not safe for concurrent use.
type BlockPool struct {
	pool   Range
	size   int      // ports per block
	blocks int      // blocks per address
	words  int      // bitset words per address
	taken  []uint64 // ips·words bits, address-major
	free   []int    // free blocks per address
}

// NewBlockPool returns a pool of blocks of size ports over pool on each of
// ips external addresses, all free.
//
// Errors: an invalid pool (Range.Validate), size < 1 or larger than the
// pool, or ips < 1.
func NewBlockPool(pool Range, size, ips int) (*BlockPool, error) {
	if err := pool.Validate(); err != nil {
		return nil, fmt.Errorf("alloc: block pool: %w", err)
	}
	if size < 1 || size > pool.Size() {
		return nil, fmt.Errorf("alloc: block pool: block size %d is outside 1..%d (the pool %s)", size, pool.Size(), pool)
	}
	if ips < 1 {
		return nil, fmt.Errorf("alloc: block pool: %d external addresses; at least 1 is needed", ips)
	}
	blocks := pool.Size() / size
	words := (blocks + 63) / 64
	b := &BlockPool{pool: pool, size: size, blocks: blocks, words: words,
		taken: make([]uint64, ips*words), free: make([]int, ips)}
	for i := range b.free {
		b.free[i] = blocks
	}
	return b, nil
}

// Blocks returns the number of blocks per external address,
// floor(pool size / block size).
func (b *BlockPool) Blocks() int { return b.blocks }

// Size returns the block size in ports.
func (b *BlockPool) Size() int { return b.size }

// IPs returns the number of external addresses.
func (b *BlockPool) IPs() int { return len(b.free) }

// Free returns the number of free blocks on address ip (0 <= ip < IPs();
// anything else panics: it is the caller's index, not a simulated value).
func (b *BlockPool) Free(ip int) int { return b.free[b.checkIP(ip)] }

// Take marks the lowest free block on address ip taken and returns its
// port range, or false when every block of that address is taken. It
// panics for an ip outside 0..IPs()-1.
func (b *BlockPool) Take(ip int) (Range, bool) {
	ip = b.checkIP(ip)
	if b.free[ip] == 0 {
		return Range{}, false
	}
	w := b.taken[ip*b.words : (ip+1)*b.words]
	for i, x := range w {
		if x == ^uint64(0) {
			continue
		}
		j := i<<6 | bits.TrailingZeros64(^x)
		// The bits past the last block read as free, but they lie above
		// every real block, so with free > 0 the lowest clear bit is one.
		w[i] |= 1 << uint(j&63)
		b.free[ip]--
		return b.block(j), true
	}
	panic("alloc: BlockPool: free count and bitset disagree")
}

// Release returns block r of address ip to the pool. r must be a block
// that Take handed out for ip and that is still taken; anything else (a
// range that is not a block, a block already free, a bad ip) panics,
// because it means the caller's bookkeeping is broken.
func (b *BlockPool) Release(ip int, r Range) {
	ip = b.checkIP(ip)
	off := int(r.Low) - int(b.pool.Low)
	j := off / b.size
	if off < 0 || off%b.size != 0 || j >= b.blocks || int(r.High) != int(r.Low)+b.size-1 {
		panic(fmt.Sprintf("alloc: BlockPool.Release(%d, %s): not a block of %d ports of %s", ip, r, b.size, b.pool))
	}
	w := &b.taken[ip*b.words+j>>6]
	bit := uint64(1) << uint(j&63)
	if *w&bit == 0 {
		panic(fmt.Sprintf("alloc: BlockPool.Release(%d, %s): block is not taken", ip, r))
	}
	*w &^= bit
	b.free[ip]++
}

// block returns the port range of block j.
func (b *BlockPool) block(j int) Range {
	lo := int(b.pool.Low) + j*b.size
	return Range{Low: uint16(lo), High: uint16(lo + b.size - 1)}
}

// checkIP returns ip, panicking when it is not an address index.
func (b *BlockPool) checkIP(ip int) int {
	if ip < 0 || ip >= len(b.free) {
		panic(fmt.Sprintf("alloc: BlockPool: address index %d outside 0..%d", ip, len(b.free)-1))
	}
	return ip
}

// ErrDeterministic is wrapped by DeterministicRange's errors.
var ErrDeterministic = errors.New("deterministic NAT mapping impossible")

// DeterministicRange is RFC 7422 deterministic NAT as FD.io VPP's DET44
// computes it (snat_det_forward in src/plugins/nat/det44/det44.h, ratio and
// ports per host set in det44.c; nat.md §1.7): of n inside addresses
// sharing ips external ones, inside address k (its offset from the first,
// 0 <= k < n) gets
//
//	ratio = ceil(n / ips)                 (DET44: inside / outside, both powers of two)
//	ports = pool.Size() / ratio           (DET44: (65535 - 1023) / ratio)
//	ip    = k / ratio                     (external address index)
//	r     = [pool.Low + ports·(k % ratio), that + ports - 1]
//
// so a host's ports follow from its address alone and the operator logs
// the configuration instead of every flow (RFC 6888 REQ-14). With the
// default pool 1024-65535 (64,512 ports): ratio 64 → 1,008 ports per host,
// 128 → 504, 256 → 252, 512 → 126, 1024 → 63. The ports past ratio·ports
// are never used. ceil instead of DET44's exact quotient lets n not be a
// multiple of ips; the last external address then serves fewer hosts.
//
// Errors (wrapping ErrDeterministic): n or ips < 1, k outside [0, n), an
// invalid pool, or a ratio larger than the pool (0 ports per host).
func DeterministicRange(pool Range, k, n, ips int) (ip int, r Range, err error) {
	if err := pool.Validate(); err != nil {
		return 0, Range{}, fmt.Errorf("alloc: %w: %w", ErrDeterministic, err)
	}
	if n < 1 || ips < 1 {
		return 0, Range{}, fmt.Errorf("alloc: %w: %d inside and %d external addresses; both must be at least 1", ErrDeterministic, n, ips)
	}
	if k < 0 || k >= n {
		return 0, Range{}, fmt.Errorf("alloc: %w: inside address %d is outside 0..%d", ErrDeterministic, k, n-1)
	}
	ratio := (n + ips - 1) / ips
	ports := pool.Size() / ratio
	if ports == 0 {
		return 0, Range{}, fmt.Errorf("alloc: %w: sharing ratio %d exceeds the %d ports of %s", ErrDeterministic, ratio, pool.Size(), pool)
	}
	lo := int(pool.Low) + ports*(k%ratio)
	return k / ratio, Range{Low: uint16(lo), High: uint16(lo + ports - 1)}, nil
}
