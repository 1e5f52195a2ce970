package sweep

import (
	"fmt"
	"slices"
	"sort"
)

// Merge joins the results of the shards 1/N..N/N of one sweep into the
// Result of the whole grid, identical to the one an unsharded sweep
// writes. The parts may come in any order.
//
// Errors: no parts; parts of different sweeps (scenario, file, overrides,
// seed, replications, grid) or different shard counts; a part that is not
// a shard, is incomplete (interrupted) or comes twice; a shard missing.
func Merge(parts []*Result) (*Result, error) {
	if len(parts) == 0 {
		return nil, fmt.Errorf("merge: no sweep results")
	}
	first := parts[0]
	seen := map[int]bool{}
	n := 0
	out := *first
	out.Shard, out.Complete, out.Points = "", true, nil
	for k, p := range parts {
		sh, err := ParseShard(p.Shard)
		if err != nil || sh.whole() {
			return nil, fmt.Errorf("merge: part %d is not a shard of a sweep (shard %q)", k+1, p.Shard)
		}
		if k == 0 {
			n = sh.N
		}
		switch {
		case sh.N != n:
			return nil, fmt.Errorf("merge: part %d is shard %s, of %d shards; part 1 is of %d", k+1, p.Shard, sh.N, n)
		case !sameSweep(first, p):
			return nil, fmt.Errorf("merge: part %d (shard %s) is of another sweep than part 1 (scenario, overrides, seed, replications or grid differ)", k+1, p.Shard)
		case !p.Complete:
			return nil, fmt.Errorf("merge: shard %s was interrupted; run it again", p.Shard)
		case seen[sh.I]:
			return nil, fmt.Errorf("merge: shard %s comes twice", p.Shard)
		}
		seen[sh.I] = true
		out.Points = append(out.Points, p.Points...)
	}
	for i := 1; i <= n; i++ {
		if !seen[i] {
			return nil, fmt.Errorf("merge: shard %d/%d is missing", i, n)
		}
	}
	sort.Slice(out.Points, func(i, j int) bool { return out.Points[i].Index < out.Points[j].Index })
	want, err := points(first.Vary)
	if err != nil {
		return nil, fmt.Errorf("merge: %w", err)
	}
	if len(out.Points) != len(want) {
		return nil, fmt.Errorf("merge: the shards hold %d points; the grid has %d", len(out.Points), len(want))
	}
	for i := range want {
		if out.Points[i].Index != i {
			return nil, fmt.Errorf("merge: point %d is missing or repeated", i)
		}
	}
	return &out, nil
}

// sameSweep reports whether a and b are parts of the same sweep.
func sameSweep(a, b *Result) bool {
	if a.Scenario != b.Scenario || a.File != b.File || a.Seed != b.Seed || a.Replications != b.Replications ||
		!slices.Equal(a.Overrides, b.Overrides) || len(a.Vary) != len(b.Vary) {
		return false
	}
	for i := range a.Vary {
		if a.Vary[i].Path != b.Vary[i].Path || !slices.Equal(a.Vary[i].Values, b.Vary[i].Values) {
			return false
		}
	}
	return true
}
