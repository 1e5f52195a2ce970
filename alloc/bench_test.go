package alloc

import (
	"math"
	"testing"
)

// benchBusy returns a set holding exactly round(frac·Size) randomly chosen
// ports of r (fixed seed), so "99.9pct" means 28 free ports out of 28232.
func benchBusy(r Range, frac float64) *PortSet {
	s := new(PortSet)
	n := int(math.Round(frac * float64(r.Size())))
	for _, i := range newRand(42, 42).Perm(r.Size())[:n] {
		s.Add(int(r.Low) + i)
	}
	return s
}

// BenchmarkAllocate measures one allocation on the Linux default range
// 32768-60999 at three occupancy levels. The busy view is a two-set Union
// (held ports + an empty reserved-ports set), the shape the engine passes.
// Allocated ports are not marked busy, so the occupancy stays fixed for the
// whole run. probes/op is the mean Result.Probes: the modelled kernel cost,
// which the Go cost must not follow (it scans 64 ports per word).
func BenchmarkAllocate(b *testing.B) {
	r := Range{32768, 60999}
	levels := []struct {
		name string
		frac float64
	}{{"empty", 0}, {"90pct", 0.9}, {"99.9pct", 0.999}}
	for _, name := range Names() {
		b.Run(name, func(b *testing.B) {
			for _, lv := range levels {
				b.Run(lv.name, func(b *testing.B) {
					held, reserved := benchBusy(r, lv.frac), new(PortSet)
					u := NewUnion(held, reserved)
					a, err := New(name, Config{Range: r, Rand: newRand(1, 2)})
					if err != nil {
						b.Fatal(err)
					}
					req := Request{Fail: EADDRNOTAVAIL}
					probes, n := 0, 0
					b.ReportAllocs()
					for b.Loop() {
						res := a.Allocate(&req, &u)
						probes += res.Probes
						n++
					}
					b.ReportMetric(float64(probes)/float64(n), "probes/op")
				})
			}
		})
	}
}

// BenchmarkUnionNextFree is the worst case of one scan: every port of the
// Linux range busy, so the whole range is read word by word.
func BenchmarkUnionNextFree(b *testing.B) {
	r := Range{32768, 60999}
	full := benchBusy(r, 1)
	for _, n := range []int{1, 4} {
		sets := []*PortSet{full, new(PortSet), new(PortSet), new(PortSet)}[:n]
		u := NewUnion(sets...)
		b.Run(map[int]string{1: "1set", 4: "4sets"}[n], func(b *testing.B) {
			for b.Loop() {
				if u.NextFree(int(r.Low), int(r.High)) != -1 {
					b.Fatal("found a free port in a full range")
				}
			}
		})
	}
}
