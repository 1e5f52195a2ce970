package alloc

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPortSetBasics(t *testing.T) {
	var s PortSet
	assert.Equal(t, 0, s.Len())
	assert.Equal(t, "", s.String())
	for _, p := range []int{0, 63, 64, 65535} {
		assert.False(t, s.Has(p))
		s.Add(p)
		assert.True(t, s.Has(p), "Has(%d) after Add", p)
	}
	s.Add(64) // idempotent
	assert.Equal(t, 4, s.Len())
	assert.False(t, s.Has(-1))
	assert.False(t, s.Has(65536))
	assert.False(t, s.Has(1), "neighbour of 0 must stay clear")
	assert.False(t, s.Has(62))
	assert.False(t, s.Has(65))
	assert.False(t, s.Has(65534))
	assert.Equal(t, "0,63-64,65535", s.String())

	s.Remove(63)
	s.Remove(63) // idempotent
	assert.False(t, s.Has(63))
	assert.True(t, s.Has(64))
	assert.Equal(t, 3, s.Len())

	assert.PanicsWithValue(t, "alloc: PortSet.Add(65536): port outside 0..65535", func() { s.Add(65536) })
	assert.Panics(t, func() { s.Add(-1) })
	assert.Panics(t, func() { s.Remove(-1) })

	c := s // value copy is independent
	c.Add(1000)
	assert.False(t, s.Has(1000))
	assert.False(t, s.Equal(&c))
	c.Remove(1000)
	assert.True(t, s.Equal(&c))

	s.Clear()
	assert.Equal(t, 0, s.Len())
}

// TestPortSetRanges checks AddRange, RemoveRange and CountIn against the model
// on spans that start and end on every kind of word boundary.
func TestPortSetRanges(t *testing.T) {
	rng := newRand(1, 1)
	var s PortSet
	m := newModel()
	edges := []int{0, 1, 62, 63, 64, 65, 127, 128, 1000, 65471, 65472, 65534, 65535}
	pick := func() int {
		if rng.IntN(2) == 0 {
			return edges[rng.IntN(len(edges))]
		}
		return rng.IntN(NumPorts)
	}
	for i := 0; i < 3000; i++ {
		lo, hi := pick(), pick()
		r := Range{uint16(lo), uint16(hi)}
		if rng.IntN(3) == 0 {
			s.RemoveRange(r)
			for p := lo; p <= hi; p++ {
				m[p] = false
			}
		} else {
			s.AddRange(r)
			for p := lo; p <= hi; p++ {
				m[p] = true
			}
		}
		// CountIn on a random span, including inverted ones (count 0).
		clo, chi := pick(), pick()
		want := 0
		for p := clo; p <= chi; p++ {
			if m[p] {
				want++
			}
		}
		require.Equal(t, want, s.CountIn(Range{uint16(clo), uint16(chi)}), "CountIn(%d-%d) at step %d", clo, chi, i)
	}
	n := 0
	for p := 0; p < NumPorts; p++ {
		require.Equal(t, m[p], s.Has(p), "port %d", p)
		if m[p] {
			n++
		}
	}
	assert.Equal(t, n, s.Len())

	var full PortSet
	full.AddRange(Range{0, 65535})
	assert.Equal(t, NumPorts, full.Len())
	assert.Equal(t, "0-65535", full.String())
	assert.Equal(t, 28232, full.CountIn(Range{32768, 60999}))
}

func TestParsePortList(t *testing.T) {
	tests := []struct {
		in      string
		want    string // canonical String() of the result
		wantErr string // substring; "" means success
	}{
		{in: "", want: ""},
		{in: "\n", want: ""},
		{in: " \t\n", want: ""},
		{in: "8080", want: "8080"},
		{in: "8080,40010-40019", want: "8080,40010-40019"},
		{in: "8080,40010-40019\n", want: "8080,40010-40019"}, // echo adds a newline
		{in: "  1,2,3 ", want: "1-3"},
		{in: "40019,8080,40010-40015,40012-40018", want: "8080,40010-40019"},
		{in: "0", want: "0"},
		{in: "65535", want: "65535"},
		{in: "0-65535", want: "0-65535"},
		{in: "5-5", want: "5"},
		{in: "63,64", want: "63-64"},
		{in: "80,", want: "80"}, // proc_do_large_bitmap accepts a trailing comma
		{in: "65536", wantErr: `element 1 "65536": port 65536 is above 65535`},
		{in: "1,70000-70001", wantErr: `element 2 "70000-70001": port 70000 is above 65535`},
		{in: "1-65536", wantErr: "port 65536 is above 65535"},
		{in: "10-5", wantErr: `element 1 "10-5": range low 10 is above high 5`},
		{in: "abc", wantErr: `element 1 "abc": "abc" is not a decimal port number`},
		{in: ",80", wantErr: `element 1 "": empty element`},
		{in: ",", wantErr: "empty element"},
		{in: "80,,90", wantErr: `element 2 "": empty element`},
		{in: "80,90,,", wantErr: `element 3 "": empty element`},
		{in: "-5", wantErr: "empty number"},
		{in: "5-", wantErr: "empty number"},
		{in: "1-2-3", wantErr: `"2-3" is not a decimal port number`},
		{in: "80, 90", wantErr: `element 2 " 90"`},
		{in: "80 ,90", wantErr: `element 1 "80 "`},
		{in: "80\n90", wantErr: "is not a decimal port number"},
		{in: "0x50", wantErr: "is not a decimal port number"},
		{in: "010", wantErr: "leading zero"},
		{in: "+5", wantErr: "is not a decimal port number"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParsePortList(tt.in)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				assert.Equal(t, 0, got.Len(), "set must be empty on error")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got.String())
		})
	}
}

func TestPortSetStringRoundTrip(t *testing.T) {
	rng := newRand(2, 2)
	for i := 0; i < 200; i++ {
		var s PortSet
		m := newModel()
		density := []float64{0, 0.001, 0.1, 0.5, 0.9, 0.999, 1}[i%7]
		fillRandom(rng, m, []*PortSet{&s}, 0, MaxPort, density, i%2 == 0)
		str := s.String()
		back, err := ParsePortList(str)
		require.NoError(t, err, "set %d", i)
		require.True(t, s.Equal(&back), "set %d: %q did not round-trip", i, str)
		require.Equal(t, str, back.String())
	}
}

// TestNextClearAgainstNaive is the property test for PortSet.NextClear and
// NextSet: random sets (fixed seed) of several densities and shapes, random
// spans biased toward word boundaries, compared with a port-by-port loop.
func TestNextClearAgainstNaive(t *testing.T) {
	rng := newRand(3, 3)
	for i := 0; i < 40; i++ {
		var s PortSet
		m := newModel()
		density := []float64{0, 0.5, 0.9, 0.99, 0.9999, 1}[i%6]
		fillRandom(rng, m, []*PortSet{&s}, 0, MaxPort, density, i%4 >= 2)
		for j := 0; j < 400; j++ {
			from, to := randomSpan(rng)
			require.Equal(t, m.nextFree(from, to), s.NextClear(from, to), "set %d: NextClear(%d, %d)", i, from, to)
			require.Equal(t, m.nextSet(from, to), s.NextSet(from, to), "set %d: NextSet(%d, %d)", i, from, to)
		}
	}
}

func TestNextClearBoundaries(t *testing.T) {
	var full PortSet
	full.AddRange(Range{0, 65535})
	var s PortSet
	s.AddRange(Range{0, 62}) // 63 is the last bit of word 0
	s.AddRange(Range{65, 65534})

	tests := []struct {
		set      *PortSet
		from, to int
		want     int
	}{
		{&s, 0, 65535, 63},
		{&s, 0, 62, -1},
		{&s, 63, 63, 63},
		{&s, 64, 64, 64},
		{&s, 65, 65535, 65535},
		{&s, 65, 65534, -1},
		{&s, 65535, 65535, 65535},
		{&s, 65536, 70000, -1},
		{&s, -10, 0, -1},
		{&s, -10, 63, 63},
		{&s, 64, 63, -1}, // from > to
		{&s, 65535, 0, -1},
		{&full, 0, 65535, -1},
		{&full, -5, 70000, -1},
		{new(PortSet), 65535, 65535, 65535},
		{new(PortSet), -3, 5, 0},
		{new(PortSet), 5, 4, -1},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, tt.set.NextClear(tt.from, tt.to), "NextClear(%d, %d)", tt.from, tt.to)
		assert.Equal(t, tt.want, tt.set.NextFree(tt.from, tt.to), "NextFree(%d, %d)", tt.from, tt.to)
	}
}

func FuzzParsePortList(f *testing.F) {
	for _, s := range []string{"", "\n", "8080", "8080,40010-40019", "0-65535", "80,", "1-2-3",
		"65536", "10-5", ",", "80,,90", " 1 ", "010", "0x10", "-", "1,2,3,4-9\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := ParsePortList(in)
		if err != nil {
			require.Equal(t, 0, s.Len())
			return
		}
		str := s.String()
		back, err := ParsePortList(str)
		require.NoError(t, err, "String() %q of parsed %q does not parse", str, in)
		require.True(t, s.Equal(&back), "String() %q of parsed %q gives another set", str, in)
		require.Equal(t, str, back.String(), "String() is not canonical")
	})
}

// FuzzNextFree builds up to four sets from the fuzz input and checks
// PortSet.NextClear, NextSet and the Busy span questions (NextFree,
// NextFreeParity, CountFree, NthFree) against the naive loops.
func FuzzNextFree(f *testing.F) {
	f.Add([]byte{0, 0, 0, 63, 1, 1, 0, 64, 2, 0xff, 0xff, 0}, 0, 65535)
	f.Add([]byte{0, 0, 0, 255, 3, 0x80, 0, 200}, 63, 64)
	f.Add([]byte{}, 65535, 0)
	f.Fuzz(func(t *testing.T, data []byte, from, to int) {
		var sets [4]PortSet
		ms := [4]model{newModel(), newModel(), newModel(), newModel()}
		union, union01 := newModel(), newModel() // all four sets; sets 0 and 1
		// Each 4-byte record: set index, start port (2 bytes), run length.
		for ; len(data) >= 4; data = data[4:] {
			k := int(data[0]) % 4
			lo := int(data[1])<<8 | int(data[2])
			hi := min(lo+int(data[3]), MaxPort)
			sets[k].AddRange(Range{uint16(lo), uint16(hi)})
			for p := lo; p <= hi; p++ {
				ms[k][p] = true
				union[p] = true
				union01[p] = union01[p] || k < 2
			}
		}
		for k := range sets {
			require.Equal(t, ms[k].nextFree(from, to), sets[k].NextClear(from, to), "set %d NextClear(%d, %d)", k, from, to)
			require.Equal(t, ms[k].nextSet(from, to), sets[k].NextSet(from, to), "set %d NextSet(%d, %d)", k, from, to)
		}
		u := NewUnion(&sets[0], &sets[1], &sets[2], &sets[3])
		require.Equal(t, union.nextFree(from, to), u.NextFree(from, to), "Union.NextFree(%d, %d)", from, to)
		u2 := NewUnion(&sets[0], nil, &sets[1])
		require.Equal(t, union01.nextFree(from, to), u2.NextFree(from, to), "2-set Union.NextFree(%d, %d)", from, to)
		for parity := 0; parity <= 1; parity++ {
			require.Equal(t, naiveNextFreeParity(union, from, to, parity), u.NextFreeParity(from, to, parity), "Union.NextFreeParity(%d, %d, %d)", from, to, parity)
			require.Equal(t, naiveNextFreeParity(ms[0], from, to, parity), sets[0].NextFreeParity(from, to, parity), "NextFreeParity(%d, %d, %d)", from, to, parity)
		}
		free := naiveCountFree(union, from, to)
		require.Equal(t, free, u.CountFree(from, to), "Union.CountFree(%d, %d)", from, to)
		require.Equal(t, naiveCountFree(ms[0], from, to), sets[0].CountFree(from, to), "CountFree(%d, %d)", from, to)
		if free > 0 {
			n := int(uint(from^to) % uint(free))
			require.Equal(t, naiveNthFree(union, from, to, n), u.NthFree(from, to, n), "Union.NthFree(%d, %d, %d)", from, to, n)
		}
	})
}
