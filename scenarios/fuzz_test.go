package scenarios

import (
	"errors"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// checkResult asserts what every Parse result must satisfy: an error is a
// one-line *Error with a message and no scenario; a scenario is complete
// and internally consistent.
func checkResult(t *testing.T, s *Scenario, err error) {
	t.Helper()
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("error is %T, not *Error: %v", err, err)
		}
		if e.Msg == "" || strings.IndexFunc(err.Error(), func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
			t.Fatalf("error is not one non-empty line: %q", err.Error())
		}
		if s != nil {
			t.Fatalf("scenario returned with error %v", err)
		}
		return
	}
	if s.Name == "" || s.Duration <= 0 || s.Sample <= 0 || s.Sample > s.Duration {
		t.Fatalf("bad scenario header: %+v", s)
	}
	if len(s.Hosts) == 0 || len(s.Workloads) == 0 {
		t.Fatalf("scenario without hosts or workloads")
	}
	hostNames := map[string]bool{}
	hostAddr := map[netip.Addr]bool{}
	for _, h := range s.Hosts {
		if len(h.Addresses) == 0 || h.Profile.PortRange.Validate() != nil {
			t.Fatalf("bad host %+v", h)
		}
		if h.Count < 1 || h.Instance < 1 || h.Instance > h.Count || h.Count == 1 && h.Name != h.Group ||
			h.Count > 1 && h.Name != h.Group+"-"+strconv.Itoa(h.Instance) || hostNames[h.Name] {
			t.Fatalf("host %q: bad name or count: %q %d/%d", h.Name, h.Group, h.Instance, h.Count)
		}
		hostNames[h.Name] = true
		for _, a := range h.Addresses {
			hostAddr[a] = true
		}
	}
	workloadNames := map[string]bool{}
	for _, w := range s.Workloads {
		if workloadNames[w.Name] {
			t.Fatalf("workload name %q twice", w.Name)
		}
		workloadNames[w.Name] = true
	}
	for _, srv := range s.Servers {
		if srv.Host < 0 || srv.Host >= len(s.Hosts) || s.Hosts[srv.Host].Count > 1 {
			t.Fatalf("server %q on a bad host", srv.Name)
		}
	}
	checkNATs(t, s, hostAddr)
	for _, w := range s.Workloads {
		if w.From < 0 || w.From >= len(s.Hosts) || !slices.Contains(s.Hosts[w.From].Addresses, w.Source) {
			t.Fatalf("workload %q: bad from/source", w.Name)
		}
		if len(w.To) == 0 || w.Start < 0 || w.Start >= w.Stop || w.Stop > s.Duration || w.RTT < 0 {
			t.Fatalf("workload %q: bad destinations or times", w.Name)
		}
		for _, to := range w.To {
			if to.Port() == 0 || to.Addr().Is4() != w.Source.Is4() {
				t.Fatalf("workload %q: bad destination %v", w.Name, to)
			}
		}
		a := w.Arrival
		rates := []float64{a.Rate, a.RateTo}
		for _, r := range rates {
			if math.IsNaN(r) || math.IsInf(r, 0) || r < 0 {
				t.Fatalf("workload %q: bad rate %v", w.Name, r)
			}
		}
		if a.Process != Ramp && a.Rate <= 0 || a.Process == Ramp && a.Rate+a.RateTo <= 0 {
			t.Fatalf("workload %q: no arrivals %+v", w.Name, a)
		}
		c := w.Close
		if c.Client < 0 || c.Server < 0 || c.RST < 0 || math.Abs(c.Client+c.Server+c.RST-1) > 1e-9 {
			t.Fatalf("workload %q: close mix %+v", w.Name, c)
		}
	}
}

// checkNATs asserts what every parsed NAT satisfies: its inside hosts
// exist and are behind no other NAT, its configuration validates, its
// external IPs are no host's and no other NAT's, and forwards go inside.
func checkNATs(t *testing.T, s *Scenario, hostAddr map[netip.Addr]bool) {
	t.Helper()
	behind := map[int]bool{}
	external := map[netip.Addr]bool{}
	for _, n := range s.NATs {
		if n.Name == "" || len(n.Inside) == 0 {
			t.Fatalf("NAT %q: no name or no inside hosts", n.Name)
		}
		inside := map[netip.Addr]bool{}
		for _, i := range n.Inside {
			if i < 0 || i >= len(s.Hosts) || behind[i] {
				t.Fatalf("NAT %q: bad inside host %d", n.Name, i)
			}
			behind[i] = true
			for _, a := range s.Hosts[i].Addresses {
				inside[a] = true
			}
		}
		if err := n.Config.Validate(len(inside)); err != nil {
			t.Fatalf("NAT %q does not validate: %v", n.Name, err)
		}
		for _, a := range n.Config.ExternalIPs {
			if hostAddr[a] || external[a] {
				t.Fatalf("NAT %q: external IP %v is a host's or another NAT's", n.Name, a)
			}
			external[a] = true
		}
		for _, f := range n.Config.Forwards {
			if !inside[f.Inside.Addr()] {
				t.Fatalf("NAT %q: forward to %v, not inside", n.Name, f.Inside)
			}
		}
	}
}

// fuzzLimits lowers the expansion limits for a fuzzer: a Host is 8 KB,
// and 100,000 of them per input would starve the fuzzing workers.
func fuzzLimits(f *testing.F) { lowerLimits(f, 4000, 8000) }

// FuzzParse feeds arbitrary documents to Parse: no panic, and every result
// passes checkResult.
func FuzzParse(f *testing.F) {
	f.Add([]byte(base))
	for _, in := range Builtins() {
		src, err := builtinFS.ReadFile("builtin/" + in.Name + ".yaml")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	f.Add([]byte(base + "  - &w {name: b, from: client, to: [\"203.0.113.10:80\"], arrival: &a {process: ramp, from: 0, to: 5}, hold: {dist: pareto, scale: 1ms, shape: 1.5}, close: {client: 1, rst: 1}}\n  - {<<: *w, name: c, arrival: *a}\n"))
	for _, c := range badCases(f) {
		f.Add([]byte(c.src))
	}
	f.Add([]byte(natBase))
	f.Add([]byte(natBase + "    forwards: [{external_port: 2222, to: \"10.2.0.1:22\", proto: udp, external_ip: 198.18.0.2}]\n" +
		"    timeouts: {udp: 9s, tcp_established: 1h}\n    cool_down: {fin: 65s}\n    allocation: blocks\n    block_size: 64\n    max_blocks: 2\n"))
	f.Add([]byte(natBase + "  - {name: b, preset: gcp-cloud-nat, external_ips: [192.0.2.1], inside: [pod-1], ports_per_host: 32, mapping: endpoint-independent}\n"))
	for _, c := range natBadCases(f) {
		f.Add([]byte(c.src))
	}
	fuzzLimits(f)
	f.Fuzz(func(t *testing.T, src []byte) {
		s, err := Parse(src, "fuzz.yaml", nil)
		checkResult(t, s, err)
	})
}

// FuzzOverrides feeds arbitrary --set strings, applied to base: no panic,
// and every result passes checkResult.
func FuzzOverrides(f *testing.F) {
	for _, s := range []string{
		"workloads.0.arrival.rate=800", "seed=7", "duration=30s", "workloads.0.stop=30s",
		"hosts.0.sysctls.net.ipv4.tcp_tw_reuse=1", `workloads.0.to=["1.2.3.4:80"]`,
		"nosuch.x=1", "workloads.3.stop=1s", "workloads..stop=1s", "seed", "=1",
		"workloads.0.arrival={process: ramp, from: 0, to: 5}", "hosts.0=*x", "workloads.0.to.0=[::1]:80",
		"workloads.0.close={client: 1e308, server: 1e308}",
		"hosts.0.count=3", "hosts.0.count=100000", "hosts.0.count=0",
	} {
		f.Add(s)
	}
	fuzzOverrides(f, base)
}

// fuzzOverrides fuzzes one --set string applied to doc.
func fuzzOverrides(f *testing.F, doc string) {
	fuzzLimits(f)
	f.Fuzz(func(t *testing.T, set string) {
		s, err := Parse([]byte(doc), "t.yaml", []string{set})
		checkResult(t, s, err)
	})
}

// FuzzNATOverrides feeds arbitrary --set strings, applied to natBase (a
// NAT and a host with count): no panic, and every result passes
// checkResult.
func FuzzNATOverrides(f *testing.F) {
	for _, s := range []string{
		"nats.0.external_ips=4", "nats.0.external_ips=[192.0.2.1, 192.0.2.2]", "nats.0.external_ips=0",
		"nats.0.per_destination_cap=100", "nats.0.timeouts.udp=10s", "nats.0.cool_down={fin: 1s}",
		"nats.0.preset=gcp-cloud-nat", "nats.0.preset=cgn-deterministic", "nats.0.allocation=deterministic",
		"nats.0.ports=1024 1055", "nats.0.mapping=endpoint-independent", "nats.0.random=random-fully",
		`nats.0.forwards=[{external_port: 22, to: "10.1.0.2:22"}]`, "nats.0.inside=[pod-2]", "nats.0.inside.0=vm",
		"hosts.0.count=1", "hosts.0.count=7", "hosts.0.addresses=[255.255.255.255]", "hosts.1.count=2",
		"workloads.0.from=pod-3", "workloads.0.source=10.1.0.1", "nats.1.name=x",
	} {
		f.Add(s)
	}
	fuzzOverrides(f, natBase)
}
