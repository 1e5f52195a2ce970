package scenarios

import (
	"errors"
	"math"
	"slices"
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
	for _, h := range s.Hosts {
		if len(h.Addresses) == 0 || h.Profile.PortRange.Validate() != nil {
			t.Fatalf("bad host %+v", h)
		}
	}
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
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, set string) {
		s, err := Parse([]byte(base), "t.yaml", []string{set})
		checkResult(t, s, err)
	})
}
