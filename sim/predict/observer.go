package predict

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/portsim/portsim/alloc"
	"github.com/portsim/portsim/scenarios"
	"github.com/portsim/portsim/sim"
)

// The attacker's addresses, from the documentation ranges of RFC 5737 so
// that they never meet a scenario's own: the server that receives the
// observed connections, and the network of the targets whose ports are
// predicted.
var (
	attackerServer = netip.MustParseAddrPort("198.51.100.1:443")
	targetNet      = netip.MustParseAddr("192.0.2.0")
	targetPrefix   = netip.PrefixFrom(targetNet, 24)
)

// maxTargets is the most distinct target destinations one boot uses: each
// is used once per boot, so a keyed hash of it is as unknown to the
// attacker as a fresh secret would be. More samples take more boots.
const maxTargets = 4096

// victim is the scenario the analysis runs, reduced to what each boot
// changes.
type victim struct {
	base  *scenarios.Scenario
	host  int           // index of the victim in base.Hosts
	src   netip.Addr    // its IPv4 source address
	works []int         // the victim's own workloads (the background)
	r     alloc.Range   // its ephemeral range
	tw    time.Duration // its TIME_WAIT length
	warm  time.Duration // background time before the first observation
	gap   time.Duration // observation -> target
	every time.Duration // observation -> next observation
	dests []netip.AddrPort
}

// newVictim picks the victim host (by name, or the host of the first
// workload) and checks that the attacker's addresses are free.
func newVictim(s *scenarios.Scenario, host string, gap, every time.Duration) (*victim, error) {
	v := &victim{base: s, host: -1, gap: gap, every: every}
	for i, h := range s.Hosts {
		if h.Name == host || (host == "" && len(s.Workloads) > 0 && i == s.Workloads[0].From) {
			v.host = i
			break
		}
	}
	if v.host < 0 {
		return nil, fmt.Errorf("%w: scenario %s has no host %q", ErrOptions, s.Name, host)
	}
	h := &s.Hosts[v.host]
	for _, a := range h.Addresses {
		if a.Is4() {
			v.src = a
			break
		}
	}
	if !v.src.IsValid() {
		return nil, fmt.Errorf("%w: host %s has no IPv4 address for the attacker's IPv4 server", ErrOptions, h.Name)
	}
	for _, n := range s.NATs {
		if slices.Contains(n.Inside, v.host) {
			return nil, fmt.Errorf("%w: host %s is behind NAT %s: the attacker would see the NAT's ports, which this analysis does not model; analyse the host without the NAT", ErrOptions, h.Name, n.Name)
		}
	}
	v.r, v.tw = h.Profile.PortRange, h.Profile.TimeWait
	hold := time.Duration(0)
	seen := map[netip.AddrPort]bool{}
	for i := range s.Workloads {
		w := &s.Workloads[i]
		if w.From != v.host {
			continue
		}
		v.works = append(v.works, i)
		if m, ok := sim.MeanHold(w.Hold); ok {
			hold = max(hold, time.Duration(m*float64(time.Second)))
		}
		for _, d := range w.To {
			if trackServerNet.Contains(d.Addr()) || targetPrefix.Contains(d.Addr()) {
				return nil, fmt.Errorf("%w: workload %s already uses %s, which the attacker needs (198.51.100.0/24, 192.0.2.0/24)", ErrOptions, w.Name, d)
			}
			if !seen[d] {
				seen[d] = true
				v.dests = append(v.dests, d)
			}
		}
	}
	if len(v.works) == 0 {
		return nil, fmt.Errorf("%w: host %s has no workload: the victim needs connections of its own (the background load)", ErrOptions, h.Name)
	}
	// Occupancy reaches its steady state after one holding time plus one
	// TIME_WAIT; the attacker arrives after that, on whole seconds.
	v.warm = (hold + v.tw + time.Second).Truncate(time.Second)
	return v, nil
}

// target is the i-th target destination of a boot: 192.0.2.1-254, then the
// next port.
func target(i int) netip.AddrPort {
	b := targetNet.As4()
	b[3] = byte(1 + i%254)
	return netip.AddrPortFrom(netip.AddrFrom4(b), uint16(1024+i/254))
}

// boot returns the scenario of one boot: the victim's allocator replaced,
// its workloads' rates times scale, the seed advanced by b, and two
// attacker workloads appended: n observed connections to the attacker's
// server, one every v.every from v.warm on, each followed v.gap later by a
// connection to a fresh target. Both end at once by RST (the attacker's
// server needs only the SYN; a target is predicted at connect()), so they
// leave no TIME_WAIT and do not crowd the victim's ports.
func (v *victim) boot(name string, scale float64, b uint64, n int) *scenarios.Scenario {
	s := *v.base
	s.Seed = v.base.Seed + b
	s.Duration = v.warm + time.Duration(n)*v.every
	s.Sample = s.Duration
	s.Hosts = slices.Clone(v.base.Hosts)
	s.Hosts[v.host].Profile.Allocator = name
	s.Workloads = slices.Clone(v.base.Workloads)
	for _, i := range v.works {
		w := &s.Workloads[i]
		w.Arrival.Rate *= scale
		w.Arrival.RateTo *= scale
		if w.Stop == v.base.Duration {
			w.Stop = s.Duration
		}
	}
	for i := range s.Workloads {
		s.Workloads[i].Stop = min(s.Workloads[i].Stop, s.Duration)
		s.Workloads[i].Start = min(s.Workloads[i].Start, s.Workloads[i].Stop)
	}
	to := make([]netip.AddrPort, n)
	for i := range to {
		to[i] = target(i)
	}
	attack := scenarios.Workload{
		From:    v.host,
		Source:  v.src,
		Arrival: scenarios.Arrival{Process: scenarios.Constant, Rate: float64(time.Second) / float64(v.every)},
		Hold:    scenarios.Hold{Dist: scenarios.Fixed},
		Close:   scenarios.CloseMix{RST: 1},
		RTT:     scenarios.DefaultRTT,
		Socket:  scenarios.Connect,
	}
	obs, tgt := attack, attack
	obs.Name, obs.To = "attacker-observed", []netip.AddrPort{attackerServer}
	obs.Start = v.warm
	obs.Stop = v.warm + time.Duration(n-1)*v.every + v.every/2
	tgt.Name, tgt.To = "attacker-target", to
	tgt.Start, tgt.Stop = obs.Start+v.gap, obs.Stop+v.gap
	s.Workloads = append(s.Workloads, obs, tgt)
	return &s
}

// bootData is what one boot yields: per observation k, the port it got
// and the port of the target that followed (0 for a failed connect()), the
// victim's other connections between the observation and its target (the
// load the attacker has to see through) and between it and the next
// observation (what an increment may leak); and the reuse-cycle counts of
// the victim's own connections.
type bootData struct {
	obs, tgt           []uint16
	load, between      []int32
	reused, background int
	bgSpan             time.Duration
}

// run simulates one boot and collects its data through sim.Observe.
func (v *victim) run(name string, scale float64, b uint64, n int) (*bootData, error) {
	s := v.boot(name, scale, b, n)
	wObs, wTgt := len(s.Workloads)-2, len(s.Workloads)-1
	d := &bootData{obs: make([]uint16, 0, n), tgt: make([]uint16, 0, n), load: make([]int32, 0, n), between: make([]int32, 0, n)}
	mine := make([]bool, len(s.Workloads))
	for _, i := range v.works {
		mine[i] = true
	}
	ru := newReuse(v, s)
	var sinceObs int32
	_, err := sim.Observe(s, func(c sim.Connect) {
		switch {
		case c.Workload == wObs:
			if len(d.obs) > 0 {
				d.between = append(d.between, sinceObs)
			}
			d.obs = append(d.obs, c.Port)
			sinceObs = 0
		case c.Workload == wTgt:
			d.tgt = append(d.tgt, c.Port)
			d.load = append(d.load, sinceObs)
			sinceObs++
		case mine[c.Workload]:
			sinceObs++
			if c.Err == alloc.OK {
				d.background++
				if ru.hit(c) {
					d.reused++
				}
			}
		}
	})
	if err != nil {
		return nil, err
	}
	d.bgSpan = s.Duration
	if len(d.obs) != n || len(d.tgt) != n {
		return nil, fmt.Errorf("predict: boot %d made %d observations and %d targets, want %d each", b, len(d.obs), len(d.tgt), n)
	}
	return d, nil
}

// reuse finds the victim's connections whose local port was used toward
// the same destination less than one TIME_WAIT before (allocation to
// allocation): the peer may still hold that 4-tuple in TIME_WAIT (when it
// closed first) or its old segments may still be in flight.
type reuse struct {
	tw        time.Duration
	low, size int
	dest      [][]int32         // per workload: the destination index of each To
	last      [][]time.Duration // per destination, per port offset: last use + 1ns (0: never)
	wide      map[uint64]time.Duration
	dests     int
}

// denseDests is the most destinations that get a port-indexed table (226 KB
// each for Linux's range); beyond that a map keeps the memory bounded.
const denseDests = 64

func newReuse(v *victim, s *scenarios.Scenario) *reuse {
	ru := &reuse{tw: v.tw, low: int(v.r.Low), size: v.r.Size(), dest: make([][]int32, len(s.Workloads))}
	at := map[netip.AddrPort]int32{}
	for i, d := range v.dests {
		at[d] = int32(i)
	}
	for _, i := range v.works {
		for _, d := range s.Workloads[i].To {
			ru.dest[i] = append(ru.dest[i], at[d])
		}
	}
	if len(v.dests) <= denseDests {
		ru.last = make([][]time.Duration, len(v.dests))
	} else {
		ru.wide = map[uint64]time.Duration{}
	}
	return ru
}

// hit records c's (destination, port) and reports whether it was used less
// than one TIME_WAIT before.
func (ru *reuse) hit(c sim.Connect) bool {
	di := ru.dest[c.Workload][c.Dest]
	var t time.Duration
	if ru.wide != nil {
		key := uint64(di)<<16 | uint64(c.Port)
		t = ru.wide[key]
		ru.wide[key] = c.At + 1
	} else {
		off := int(c.Port) - ru.low
		if off < 0 || off >= ru.size {
			return false // a port outside the range (bind() to a fixed port): not an allocation
		}
		if ru.last[di] == nil {
			ru.last[di] = make([]time.Duration, ru.size)
		}
		t = ru.last[di][off]
		ru.last[di][off] = c.At + 1
	}
	return t != 0 && c.At-(t-1) < ru.tw
}
