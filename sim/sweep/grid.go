package sweep

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// MaxValues bounds the values of one varied parameter, and MaxPoints the
// grid, so that a typo in a step (1 instead of 100) is an error, not a
// sweep that never ends.
const (
	MaxValues = 10_000
	MaxPoints = 100_000
)

// ParseVary parses a --vary value: PATH=FROM:TO:STEP, the numbers FROM,
// FROM+STEP, ... up to TO inclusive (all three plain numbers, or all three
// Go durations such as 10ms:100ms:10ms), or PATH=A,B,C, the values as
// written. PATH is a scenario path as --set takes it
// (workloads.0.arrival.rate). Values are written as --set values.
//
// Errors: no "=", an empty path or value, a STEP <= 0, TO < FROM, a range
// of more than MaxValues values, or FROM:TO:STEP parts that are not all
// numbers or all durations.
func ParseVary(spec string) (Vary, error) {
	path, vals, ok := strings.Cut(spec, "=")
	path, vals = strings.TrimSpace(path), strings.TrimSpace(vals)
	if !ok || path == "" || vals == "" {
		return Vary{}, fmt.Errorf("--vary %q: want PATH=FROM:TO:STEP or PATH=A,B,C (e.g. workloads.0.arrival.rate=100:1000:100)", spec)
	}
	if path == "seed" {
		return Vary{}, fmt.Errorf("--vary seed: the seed is what the replications vary (seed + r); use --replications, or --seed for the base")
	}
	v := Vary{Path: path}
	if parts := strings.Split(vals, ":"); len(parts) == 3 && !strings.Contains(vals, ",") {
		values, err := rangeValues(parts)
		if err != nil {
			return Vary{}, fmt.Errorf("--vary %s: %w", path, err)
		}
		v.Values = values
		return v, nil
	}
	for _, s := range strings.Split(vals, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			return Vary{}, fmt.Errorf("--vary %s: empty value in %q", path, vals)
		}
		v.Values = append(v.Values, s)
	}
	if len(v.Values) > MaxValues {
		return Vary{}, fmt.Errorf("--vary %s: %d values; at most %d", path, len(v.Values), MaxValues)
	}
	return v, nil
}

// rangeValues expands FROM:TO:STEP into its values, written back as the
// inputs were: numbers with as many decimals as the most precise of FROM
// and STEP (so 0.1 steps give 0.3, not 0.30000000000000004), durations in
// Go's notation.
func rangeValues(parts []string) ([]string, error) {
	var nums [3]float64
	numeric := true
	for i, p := range parts {
		f, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			numeric = false
			break
		}
		nums[i] = f
	}
	if numeric {
		dec := max(decimals(parts[0]), decimals(parts[2]))
		return expand(nums, func(x float64) string {
			return strconv.FormatFloat(x, 'f', dec, 64)
		})
	}
	for i, p := range parts {
		d, err := time.ParseDuration(strings.TrimSpace(p))
		if err != nil {
			return nil, fmt.Errorf("%q: FROM:TO:STEP must be three numbers or three durations (e.g. 10ms:100ms:10ms)", strings.Join(parts, ":"))
		}
		nums[i] = float64(d)
	}
	return expand(nums, func(x float64) string { return time.Duration(math.Round(x)).String() })
}

// expand lists from, from+step, ... up to to (within a millionth of a
// step, so that rounding does not drop the last value).
func expand(n [3]float64, format func(float64) string) ([]string, error) {
	from, to, step := n[0], n[1], n[2]
	if step <= 0 {
		return nil, fmt.Errorf("STEP must be > 0")
	}
	if to < from {
		return nil, fmt.Errorf("TO must be >= FROM")
	}
	count := math.Floor((to-from)/step+1e-6) + 1
	if count > MaxValues {
		return nil, fmt.Errorf("%.0f values; at most %d", count, MaxValues)
	}
	out := make([]string, int(count))
	for i := range out {
		out[i] = format(from + float64(i)*step)
	}
	return out, nil
}

// decimals counts the digits after a number's decimal point.
func decimals(s string) int {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		s = s[:i]
	}
	if i := strings.IndexByte(s, '.'); i >= 0 {
		return len(s) - i - 1
	}
	return 0
}

// numberOf reads a value as a number for plotting: a plain number, or a
// duration in seconds.
func numberOf(s string) (float64, bool) {
	if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
		return f, true
	}
	if d, err := time.ParseDuration(s); err == nil {
		return d.Seconds(), true
	}
	return 0, false
}

// points lays out the grid of vary row-major (the last parameter changes
// fastest): each point's index, values and their numbers.
func points(vary []Vary) ([]Point, error) {
	n := 1
	for _, v := range vary {
		n *= len(v.Values)
		if n > MaxPoints {
			return nil, fmt.Errorf("the grid has more than %d points", MaxPoints)
		}
	}
	pts := make([]Point, n)
	for i := range pts {
		p := &pts[i]
		p.Index = i
		rest := i
		p.Values = make([]string, len(vary))
		p.X = make([]float64, len(vary))
		p.Numeric = make([]bool, len(vary))
		for k := len(vary) - 1; k >= 0; k-- {
			vals := vary[k].Values
			p.Values[k] = vals[rest%len(vals)]
			rest /= len(vals)
			p.X[k], p.Numeric[k] = numberOf(p.Values[k])
		}
	}
	return pts, nil
}

// Shard is one part of a grid split over N machines: shard I (1..N) runs
// the points whose index is I-1 modulo N. The assignment depends only on
// the grid, so every machine computes the same split.
type Shard struct {
	I, N int
}

// ParseShard parses I/N, 1 <= I <= N.
func ParseShard(s string) (Shard, error) {
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 1 || i > n {
		return Shard{}, fmt.Errorf("--shard %q: want I/N with 1 <= I <= N (e.g. 2/3)", s)
	}
	return Shard{i, n}, nil
}

// whole reports whether the shard is the whole grid.
func (s Shard) whole() bool { return s.N <= 1 }

// String is I/N, or "" for the whole grid.
func (s Shard) String() string {
	if s.whole() {
		return ""
	}
	return fmt.Sprintf("%d/%d", s.I, s.N)
}

// has reports whether point index i belongs to the shard.
func (s Shard) has(i int) bool { return s.whole() || i%s.N == s.I-1 }
