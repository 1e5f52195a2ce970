package nat

import (
	"fmt"

	"github.com/portsim/portsim/alloc"
)

// Port allocation to inside addresses: Static, Dynamic, Blocks and
// Deterministic give each inside address ranges of external ports on one
// IP, and its flows take ports only from them, searching each range in
// turn. Blocks come from an alloc.BlockPool (the lowest free block of the
// IP).
//
//   - Static: one block of PortsPerHost ports (or the PoolTable's, by the
//     number of inside addresses; beyond the table none) at the address's
//     first flow, on the first IP with a free block, kept for good; none
//     free: DropNoAllocation for every flow of it (Azure Load Balancer
//     preallocation, nat.md §3.2; GCP minimum ports per VM, §3.5; App
//     Service, §3.4).
//   - Dynamic: a first block as Static; when every port of its blocks is
//     taken toward the destination its ports double (as many more blocks
//     as it has, as far as its IP has them) up to MaxPortsPerHost; when a
//     block beyond the first loses its last flow, it and every other empty
//     block beyond the first go back to the pool (GCP dynamic port
//     allocation, nat.md §3.5).
//   - Blocks: blocks of BlockSize on the address's IP (IP sub mod n, or
//     the next with a free block, at its first flow; it then stays there:
//     paired), a new one only when the others are full toward the
//     destination, at most MaxBlocks, and a block whose last flow expires
//     goes back to the pool (Juniper secured-port-block-allocation, nat.md
//     §1.9).
//   - Deterministic: the RFC 7422 range of the address from
//     alloc.DeterministicRange (FD.io VPP DET44, nat.md §1.7), fixed.

// run is one range of an inside address's allocation, ports lo to hi, with
// refs flows on it; lo == 0 marks an empty slot.
type run struct {
	lo, hi uint16
	refs   int32
}

func (r *run) rng() alloc.Range { return alloc.Range{Low: r.lo, High: r.hi} }

// subState is an inside address's allocation.
type subState struct {
	ip     int32 // its IP; -1 before its first allocation
	live   int32 // runs in use
	denied bool  // Static or Deterministic found no ports for it: never
	runs   []run
}

// runOf returns the run that holds port, or -1.
func (s *subState) runOf(port int) int32 {
	for i := range s.runs {
		if r := &s.runs[i]; r.lo != 0 && int(r.lo) <= port && port <= int(r.hi) {
			return int32(i)
		}
	}
	return -1
}

// initAllocation sets up the block pool of the allocation scheme. Errors:
// a block size the pool cannot hold.
func (n *NAT) initAllocation() error {
	c := &n.cfg
	n.subs = make([]subState, len(n.inside))
	for i := range n.subs {
		n.subs[i].ip = -1
	}
	switch c.Allocation {
	case Static, Dynamic:
		n.hostPorts = c.PortsPerHost
		if n.hostPorts == 0 {
			n.hostPorts = poolTablePorts(c.PoolTable, len(n.inside))
		}
		if n.hostPorts > 0 {
			n.maxBlocks = max(1, c.MaxPortsPerHost/n.hostPorts)
		}
	case Blocks:
		n.hostPorts, n.maxBlocks = c.BlockSize, c.MaxBlocks
	default:
		return nil
	}
	if n.hostPorts == 0 {
		return nil // beyond the PoolTable: no address gets ports
	}
	p, err := alloc.NewBlockPool(c.Ports, n.hostPorts, n.nIPs)
	if err != nil {
		return fmt.Errorf("nat: %w", err)
	}
	n.pool = p
	return nil
}

// poolTablePorts is the PoolTable's ports per inside address for hosts
// inside addresses: the first row with MaxHosts >= hosts, 0 beyond the
// table (Azure Load Balancer's default SNAT table, nat.md §3.2).
func poolTablePorts(t []PoolStep, hosts int) int {
	for _, s := range t {
		if hosts <= s.MaxHosts {
			return s.Ports
		}
	}
	return 0
}

// allocate gives inside address sub its first range (or, for Blocks, its
// first again after all went back); false if there is none for it now.
func (n *NAT) allocate(sub int) bool {
	s := &n.subs[sub]
	if s.denied {
		return false
	}
	switch n.cfg.Allocation {
	case Deterministic:
		ip, r, err := alloc.DeterministicRange(n.cfg.Ports, sub, len(n.inside), n.nIPs)
		if err != nil {
			s.denied = true
			return false
		}
		s.ip = int32(ip)
		n.addRun(sub, r)
		return true
	case Blocks:
		first, count := sub%n.nIPs, n.nIPs
		if s.ip >= 0 {
			first, count = int(s.ip), 1 // paired: the address stays on its IP
		}
		for i := range count {
			if n.takeBlock(sub, (first+i)%n.nIPs) >= 0 {
				return true
			}
		}
		return false
	}
	// Static and Dynamic: the first IP with a free block.
	if n.pool != nil {
		for ip := range n.nIPs {
			if n.takeBlock(sub, ip) >= 0 {
				return true
			}
		}
	}
	if n.cfg.Allocation == Static {
		s.denied = true
	}
	return false
}

// grow adds blocks to sub's allocation when the scheme allows: Blocks one
// more below MaxBlocks, Dynamic as many as it has (its ports double) up to
// MaxPortsPerHost, as far as its IP has free blocks. It returns the slot
// of the first new block, or -1.
func (n *NAT) grow(sub int) int {
	s := &n.subs[sub]
	k := 0
	switch n.cfg.Allocation {
	case Blocks:
		k = min(1, n.maxBlocks-int(s.live))
	case Dynamic:
		k = min(int(s.live), n.maxBlocks-int(s.live))
	}
	first := -1
	for range k {
		r := n.takeBlock(sub, int(s.ip))
		if r < 0 {
			break
		}
		if first < 0 {
			first = r
		}
	}
	return first
}

// takeBlock takes the lowest free block on ip for sub and returns its
// slot, or -1.
func (n *NAT) takeBlock(sub, ip int) int {
	r, ok := n.pool.Take(ip)
	if !ok {
		return -1
	}
	n.subs[sub].ip = int32(ip)
	return n.addRun(sub, r)
}

// addRun puts r in a free slot of sub's runs and counts its ports.
func (n *NAT) addRun(sub int, r alloc.Range) int {
	s := &n.subs[sub]
	slot := -1
	for i := range s.runs {
		if s.runs[i].lo == 0 {
			slot = i
			break
		}
	}
	if slot < 0 {
		slot = len(s.runs)
		s.runs = append(s.runs, run{})
	}
	s.runs[slot] = run{lo: r.Low, hi: r.High}
	s.live++
	in := &n.stats.Inside[sub]
	in.Allocated += r.Size()
	in.PeakAllocated = max(in.PeakAllocated, in.Allocated)
	return slot
}

// emptied is called when sub's run r has no flow left: Blocks returns
// the block to its IP's pool; Dynamic returns it unless it is the first
// (slot 0, taken first and never freed), and with it every other empty
// block beyond the first (blocks a doubling took that no flow used yet).
func (n *NAT) emptied(sub int, r int32) {
	if n.keepBlocks {
		return
	}
	switch n.cfg.Allocation {
	case Blocks:
		n.giveBack(sub, r)
	case Dynamic:
		if r == 0 {
			return
		}
		s := &n.subs[sub]
		for e := 1; e < len(s.runs); e++ {
			if s.runs[e].lo != 0 && s.runs[e].refs == 0 {
				n.giveBack(sub, int32(e))
			}
		}
	}
}

// giveBack returns sub's run r, which no flow uses, to its IP's pool.
func (n *NAT) giveBack(sub int, r int32) {
	s := &n.subs[sub]
	rn := &s.runs[r]
	n.pool.Release(int(s.ip), rn.rng())
	n.stats.Inside[sub].Allocated -= rn.rng().Size()
	s.live--
	*rn = run{}
}
