package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portsim/portsim/sim/sweep"
)

func TestNewCmdSweep(t *testing.T) {
	_, o := parseOnly(t, NewCmdSweep, "linux-burst --vary workloads.0.arrival.rate=100:300:100 --vary hosts.0.allocator=sequential,random -j 2 --replications 4 --shard 2/3 --seed 9 --set duration=30s", "")
	assert.Equal(t, "linux-burst", o.Sweep.Scenario)
	assert.Equal(t, []sweep.Vary{{Path: "workloads.0.arrival.rate", Values: []string{"100", "200", "300"}}, {Path: "hosts.0.allocator", Values: []string{"sequential", "random"}}}, o.Sweep.Vary)
	assert.Equal(t, 2, o.Sweep.Jobs)
	assert.Equal(t, 4, o.Sweep.Replications)
	assert.Equal(t, sweep.Shard{I: 2, N: 3}, o.Sweep.Shard)
	assert.Equal(t, []string{"duration=30s", "seed=9"}, o.Sweep.Overrides)
	for argv, want := range map[string]string{
		"linux-burst": "give --vary once or twice",
		"linux-burst --vary a=1 --vary b=2 --vary c=3": "give --vary once or twice",
		"linux-burst --vary a=5:1:1":                   "TO must be >= FROM",
		"linux-burst --vary a=1 --replications 0":      "--replications must be >= 1",
		"linux-burst --vary a=1 -j 0":                  "-j must be >= 1",
		"linux-burst --vary a=1 --shard 4/3":           "want I/N",
		"--vary a=1":                                   "accepts 1 arg",
	} {
		parseOnly(t, NewCmdSweep, argv, want)
	}
}

// TestSweepMergeEndToEnd runs a small sweep whole and in 3 shards through
// the command line and checks that merge writes the same files, plots
// included.
func TestSweepMergeEndToEnd(t *testing.T) {
	dir := t.TempDir()
	args := "sweep ../../sim/sweep/testdata/erlang.yaml --set duration=600s --vary workloads.0.arrival.rate=4:8:2 --replications 2 -j 2"
	code, out, errOut := runCLI(t, args+" --out "+filepath.Join(dir, "whole"))
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "sweep of 3 points, 2 replications each")
	assert.Contains(t, out, "Erlang B")
	var parts []string
	for _, s := range []string{"1/3", "2/3", "3/3"} {
		d := filepath.Join(dir, "part"+s[:1])
		code, out, errOut := runCLI(t, args+" --shard "+s+" --out "+d)
		require.Equal(t, 0, code, errOut)
		assert.Contains(t, out, "shard "+s)
		parts = append(parts, d)
	}
	code, _, errOut = runCLI(t, "merge "+parts[2]+" "+parts[0]+" "+parts[1]+" --out "+filepath.Join(dir, "merged"))
	require.Equal(t, 0, code, errOut)
	whole, err := os.ReadDir(filepath.Join(dir, "whole"))
	require.NoError(t, err)
	require.NotEmpty(t, whole)
	for _, e := range whole {
		a, err := os.ReadFile(filepath.Join(dir, "whole", e.Name()))
		require.NoError(t, err)
		b, err := os.ReadFile(filepath.Join(dir, "merged", e.Name()))
		require.NoError(t, err, e.Name())
		assert.True(t, string(a) == string(b), "%s differs", e.Name())
	}
	code, _, errOut = runCLI(t, "merge "+parts[0]+" "+parts[1]+" --out "+filepath.Join(dir, "bad"))
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errOut, "shard 3/3 is missing")
	code, _, errOut = runCLI(t, "merge "+dir)
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errOut, "sweep.json")
}

func TestNewCmdPlan(t *testing.T) {
	_, o := parseOnly(t, NewCmdPlan, "k6-no-reuse --target-failure 0.01 --workload k6 -j 2 --replications 2 --pool 16 --max-factor 8", "")
	assert.Equal(t, 0.01, o.Plan.Target)
	assert.Equal(t, "k6", o.Plan.Workload)
	assert.Equal(t, 16, o.Plan.Pool)
	assert.Equal(t, 8.0, o.Plan.MaxFactor)
	for argv, want := range map[string]string{
		"k6-no-reuse":                                      "--target-failure is required",
		"k6-no-reuse --target-failure 1.5":                 "in (0, 1)",
		"k6-no-reuse --target-failure 0.01 --pool -1":      "--pool must be >= 0",
		"k6-no-reuse --target-failure 0.01 --max-factor 1": "--max-factor must be > 1",
		"k6-no-reuse --target-failure x":                   "want a number",
	} {
		parseOnly(t, NewCmdPlan, argv, want)
	}
}
