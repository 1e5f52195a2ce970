package sweep

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseVary(t *testing.T) {
	for _, tc := range []struct {
		spec string
		want Vary
		err  string
	}{
		{spec: "workloads.0.arrival.rate=100:500:100", want: Vary{"workloads.0.arrival.rate", []string{"100", "200", "300", "400", "500"}}},
		{spec: "a=0.1:0.5:0.1", want: Vary{"a", []string{"0.1", "0.2", "0.3", "0.4", "0.5"}}},
		{spec: "a=1:2:0.25", want: Vary{"a", []string{"1.00", "1.25", "1.50", "1.75", "2.00"}}},
		{spec: "a=10:25:10", want: Vary{"a", []string{"10", "20"}}},
		{spec: "a=10ms:30ms:10ms", want: Vary{"a", []string{"10ms", "20ms", "30ms"}}},
		{spec: "a=1m:3m:1m", want: Vary{"a", []string{"1m0s", "2m0s", "3m0s"}}},
		{spec: "hosts.0.allocator= sequential, linux-5.18 ", want: Vary{"hosts.0.allocator", []string{"sequential", "linux-5.18"}}},
		{spec: "a=5", want: Vary{"a", []string{"5"}}},
		{spec: "a", err: "want PATH=FROM:TO:STEP"},
		{spec: "=1,2", err: "want PATH=FROM:TO:STEP"},
		{spec: "a=", err: "want PATH=FROM:TO:STEP"},
		{spec: "a=1,,2", err: "empty value"},
		{spec: "a=1:5:0", err: "STEP must be > 0"},
		{spec: "a=5:1:1", err: "TO must be >= FROM"},
		{spec: "a=0:1000000:1", err: "at most 10000"},
		{spec: "a=1:5s:1", err: "three numbers or three durations"},
		{spec: "seed=1,2", err: "the seed is what the replications vary"},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			v, err := ParseVary(tc.spec)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, v)
		})
	}
}

func TestParseShard(t *testing.T) {
	s, err := ParseShard("2/3")
	require.NoError(t, err)
	assert.Equal(t, Shard{2, 3}, s)
	assert.Equal(t, "2/3", s.String())
	for _, bad := range []string{"0/3", "4/3", "3", "a/b", "1/0", "-1/2", ""} {
		_, err := ParseShard(bad)
		assert.ErrorContains(t, err, "want I/N", bad)
	}
}

func TestPointsRowMajor(t *testing.T) {
	pts, err := points([]Vary{{"a", []string{"1", "2"}}, {"b", []string{"x", "10ms", "3"}}})
	require.NoError(t, err)
	require.Len(t, pts, 6)
	assert.Equal(t, []string{"1", "x"}, pts[0].Values)
	assert.Equal(t, []string{"1", "10ms"}, pts[1].Values)
	assert.Equal(t, []string{"2", "x"}, pts[3].Values)
	assert.Equal(t, []float64{1, 0.01}, pts[1].X)
	assert.Equal(t, []bool{true, false}, pts[0].Numeric)
	// Every point lands in exactly one of 4 shards.
	for _, p := range pts {
		n := 0
		for i := 1; i <= 4; i++ {
			if (Shard{i, 4}).has(p.Index) {
				n++
			}
		}
		assert.Equal(t, 1, n)
	}
}

func TestProbabilityStat(t *testing.T) {
	s := probabilityStat([]float64{0, 0, 0}, 3000)
	assert.Equal(t, 0.0, s.Lo)
	assert.InDelta(t, 3.689/3000, s.Hi, 2e-6, "one-sided 97.5 %: 1-0.025^(1/n) ≈ 3.689/n")
	s = probabilityStat([]float64{0.3, 0.4, 0.5}, 300)
	assert.InDelta(t, 0.4, s.Mean, 1e-12)
	// t(0.975, 2) = 4.302653; sd 0.1; half-width 4.302653*0.1/sqrt(3).
	assert.InDelta(t, 0.4-4.302653*0.1/1.7320508, s.Lo, 1e-6)
	assert.InDelta(t, 0.4+4.302653*0.1/1.7320508, s.Hi, 1e-6)
	s = probabilityStat([]float64{0.01, 0.5}, 10)
	assert.Equal(t, 0.0, s.Lo, "clipped at 0")
	assert.Equal(t, Stat{}, probabilityStat(nil, 0))
}

// sweepFiles runs a sweep into a temporary directory and returns the
// bytes of its two files.
func sweepFiles(t *testing.T, o Options) (js, csv []byte) {
	t.Helper()
	res, err := Run(context.Background(), o)
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, WriteFiles(res, dir))
	js, err = os.ReadFile(filepath.Join(dir, JSONFile))
	require.NoError(t, err)
	csv, err = os.ReadFile(filepath.Join(dir, CSVFile))
	require.NoError(t, err)
	return js, csv
}

// smallSweep is a quick two-parameter sweep of the Erlang scenario.
func smallSweep() Options {
	return Options{
		Scenario:     "testdata/erlang.yaml",
		Overrides:    []string{"duration=120s"},
		Vary:         []Vary{{"workloads.0.arrival.rate", []string{"10", "16", "22"}}, {"workloads.0.hold.mean", []string{"1s", "5s"}}},
		Replications: 3,
	}
}

// TestJobsAndShardsGiveTheSameFiles: -j 1 and -j 2 write identical files,
// and 3 shards merged equal the unsharded sweep byte for byte.
func TestJobsAndShardsGiveTheSameFiles(t *testing.T) {
	o := smallSweep()
	o.Jobs = 1
	js1, csv1 := sweepFiles(t, o)
	o.Jobs = 2
	js2, csv2 := sweepFiles(t, o)
	require.Equal(t, string(js1), string(js2))
	require.Equal(t, string(csv1), string(csv2))

	var parts []*Result
	for _, i := range []int{3, 1, 2} { // any order
		o.Shard = Shard{i, 3}
		res, err := Run(context.Background(), o)
		require.NoError(t, err)
		require.Equal(t, o.Shard.String(), res.Shard)
		dir := t.TempDir()
		require.NoError(t, WriteFiles(res, dir))
		back, err := ReadResult(dir)
		require.NoError(t, err)
		parts = append(parts, back)
	}
	merged, err := Merge(parts)
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, WriteFiles(merged, dir))
	js3, err := os.ReadFile(filepath.Join(dir, JSONFile))
	require.NoError(t, err)
	csv3, err := os.ReadFile(filepath.Join(dir, CSVFile))
	require.NoError(t, err)
	require.Equal(t, string(js1), string(js3))
	require.Equal(t, string(csv1), string(csv3))

	_, err = Merge(parts[:2])
	require.ErrorContains(t, err, "shard 2/3 is missing")
	_, err = Merge(append(parts, parts[0]))
	require.ErrorContains(t, err, "comes twice")
	other := *parts[1]
	other.Seed++
	_, err = Merge([]*Result{parts[0], &other, parts[2]})
	require.ErrorContains(t, err, "another sweep")
	_, err = Merge([]*Result{merged})
	require.ErrorContains(t, err, "not a shard")
}

func TestRunErrors(t *testing.T) {
	o := smallSweep()
	o.Vary = []Vary{{"workloads.0.arrival.nope", []string{"1"}}}
	_, err := Run(context.Background(), o)
	require.ErrorContains(t, err, `unknown field "nope"`)
	o.Vary = []Vary{{"workloads.0.arrival.rate", []string{"10", "-5"}}}
	_, err = Run(context.Background(), o)
	require.ErrorContains(t, err, "rate")
	o.Vary = nil
	_, err = Run(context.Background(), o)
	require.ErrorContains(t, err, "vary one or two")
	o = smallSweep()
	o.Replications = 0
	_, err = Run(context.Background(), o)
	require.ErrorContains(t, err, "replications")
}

// TestInterrupted: a cancelled sweep returns the points finished, marked
// incomplete.
func TestInterrupted(t *testing.T) {
	o := smallSweep()
	o.Jobs = 1
	ctx, cancel := context.WithCancel(context.Background())
	o.Progress = func(done, total int) {
		if done == 7 { // two points (3 replications each) and one more run
			cancel()
		}
	}
	res, err := Run(ctx, o)
	require.ErrorIs(t, err, ErrInterrupted)
	require.False(t, res.Complete)
	require.Len(t, res.Points, 2)
	assert.Equal(t, 0, res.Points[0].Index)
	assert.Equal(t, 1, res.Points[1].Index)
}

// TestErlangBInsideBands is the validation: the Erlang-type
// scenario (Poisson arrivals, active close, 1,000 ports) swept over load
// from 0.85 to 1.5 erlangs per port, 10 replications per point; Erlang B
// must lie inside the simulated 95 % band of the steady-state blocking at
// 19 of 20 points or more. With exact 95 % intervals one miss in 20 is
// expected; the criterion was fixed before the first run.
func TestErlangBInsideBands(t *testing.T) {
	if testing.Short() {
		t.Skip("200 runs of an hour")
	}
	v, err := ParseVary("workloads.0.arrival.rate=4.7:8.5:0.2")
	require.NoError(t, err)
	require.Len(t, v.Values, 20)
	res, err := Run(context.Background(), Options{Scenario: "testdata/erlang.yaml", Vary: []Vary{v}, Replications: 10})
	require.NoError(t, err)
	inside := 0
	for _, p := range res.Points {
		require.NotNil(t, p.ErlangB, "point %v", p.Values)
		require.Equal(t, 10, p.SteadyBlocking.N)
		b := *p.ErlangB
		in := p.SteadyBlocking.Lo <= b && b <= p.SteadyBlocking.Hi
		if in {
			inside++
		}
		t.Logf("rate %s: offered %.0f erlangs, Erlang B %.4f, simulated %.4f [%.4f, %.4f] %v", p.Values[0], p.OfferedLoad, b, p.SteadyBlocking.Mean, p.SteadyBlocking.Lo, p.SteadyBlocking.Hi, in)
	}
	require.GreaterOrEqual(t, inside, 19)
}
