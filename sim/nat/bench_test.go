package nat

import (
	"net/netip"
	"testing"
)

// BenchmarkNAT measures one flow's whole life in a NAT in steady state:
// Open, Close (FIN) and Expire, with window flows held at once (the oldest
// expires as a new one opens) from 64 inside addresses to 4 destinations.
// One op is one flow; flows/s is the rate the NAT alone could sustain.
func BenchmarkNAT(b *testing.B) {
	for _, c := range []struct {
		name   string
		preset string
		ips    int
		inside int
		window int
		mod    func(*Config)
	}{
		{"linux-masquerade", PresetLinuxMasquerade, 1, 64, 16384, nil},
		{"linux-masquerade-random-fully", PresetLinuxMasquerade, 1, 64, 16384, func(c *Config) { c.Mode = 2 }},
		{"azure-nat-gateway", PresetAzureNATGateway, 2, 256, 16384, nil},
		{"gcp-cloud-nat", PresetGCPCloudNAT, 1, 256, 8192, nil},
		{"cgn-port-block", PresetCGNPortBlock, 1, 256, 8192, nil},
	} {
		b.Run(c.name, func(b *testing.B) {
			cfg := presetConfig(b, c.preset, c.ips)
			if c.mod != nil {
				c.mod(&cfg)
			}
			n := newTestNAT(b, cfg, c.inside)
			var dests [4]DestID
			for i := range dests {
				dests[i] = n.Dest(netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(i + 1)}), 443), false)
			}
			ring := make([]FlowID, c.window)
			eps := make([]netip.AddrPort, c.inside)
			next := make([]uint16, c.inside)
			for i := range eps {
				eps[i] = netip.AddrPortFrom(n.inside[i], 0)
				next[i] = 32768
			}
			k := 0
			open := func() FlowID {
				sub := k % c.inside
				d := dests[(k/c.inside)%len(dests)]
				k++
				p := next[sub]
				if next[sub]++; next[sub] > 60999 {
					next[sub] = 32768
				}
				f, _ := n.Open(sub, netip.AddrPortFrom(eps[sub].Addr(), p), d, 0)
				return f
			}
			for i := range ring {
				ring[i] = open()
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				j := i % len(ring)
				if f := ring[j]; f >= 0 {
					n.Close(f, CloseFIN)
					n.Expire(f)
				}
				ring[j] = open()
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "flows/s")
			st := n.Stats()
			var drops uint64
			for _, d := range st.Drops {
				drops += d
			}
			b.ReportMetric(float64(drops)/float64(b.N+len(ring)), "drops/flow")
		})
	}
}
