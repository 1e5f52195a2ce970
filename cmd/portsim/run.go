package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/portsim/portsim/plots"
	"github.com/portsim/portsim/scenarios"
	"github.com/portsim/portsim/sim"
)

// Files "portsim run" writes into its output directory.
const (
	summaryFile = "summary.json"
	seriesFile  = "series.csv"
	occPNGFile  = "occupancy.png"
	occSVGFile  = "occupancy.svg"
)

// RunOptions are the parsed command line of "portsim run".
type RunOptions struct {
	// IO is where the command prints.
	IO *IOStreams
	// Scenario is a scenario file or a built-in name.
	Scenario string
	// OutDir is the directory the result files are written to.
	OutDir string
	// Overrides are path=value settings passed to scenarios.Load: the
	// --set values in order, then seed= and duration= from --seed and
	// --duration, so the dedicated flags win.
	Overrides []string
	// Format is "table" or "json".
	Format string
}

// NewCmdRun builds "portsim run". It parses the command line into
// RunOptions and hands them to runF, or to runRun when runF is nil (tests
// pass a stub to check the parsing alone).
func NewCmdRun(ios *IOStreams, runF func(*RunOptions) error) *cobra.Command {
	opts := &RunOptions{IO: ios}
	var (
		sets     []string
		seed     uint64
		duration time.Duration
	)
	cmd := &cobra.Command{
		Use:   "run [SCENARIO]",
		Short: "Run a scenario and write its results",
		Long: fmt.Sprintf(`Run a scenario in virtual time and write the results.

SCENARIO is a YAML file or the name of a built-in scenario (see "portsim
scenarios"); without it, the built-in %q runs.

The output directory receives:
  %-14s totals, peaks, per-host settings and results, analytic estimates
  %-14s one row per sample interval
  %-14s ports in use by state over time, for the most loaded domain
  %s

The same scenario and seed always give a byte-identical %s.`,
			scenarios.Default, summaryFile, seriesFile, occPNGFile, occSVGFile, summaryFile),
		Example: `  portsim run
  portsim run scenario.yaml --seed 7 --duration 10m --out results
  portsim run linux-burst --set workloads.0.arrival.rate=800 --format json`,
		Args: usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Scenario = scenarios.Default
			if len(args) == 1 {
				opts.Scenario = args[0]
			}
			if err := checkFormat(cmd, opts.Format); err != nil {
				return err
			}
			if opts.OutDir == "" {
				return flagUsageError(cmd, fmt.Errorf("--out must not be empty"))
			}
			opts.Overrides = append([]string(nil), sets...)
			if cmd.Flags().Changed("seed") {
				opts.Overrides = append(opts.Overrides, "seed="+strconv.FormatUint(seed, 10))
			}
			if cmd.Flags().Changed("duration") {
				opts.Overrides = append(opts.Overrides, "duration="+duration.String())
			}
			if runF != nil {
				return runF(opts)
			}
			return runRun(opts)
		},
	}
	cmd.SetFlagErrorFunc(flagUsageError)
	f := cmd.Flags()
	f.StringVar(&opts.OutDir, "out", "portsim-out", "directory to write the result files to")
	f.Uint64Var(&seed, "seed", 0, "random seed (overrides the scenario's seed)")
	f.DurationVar(&duration, "duration", 0, "simulated time span, e.g. 30s or 1h (overrides the scenario's duration)")
	f.StringArrayVar(&sets, "set", nil, "set a scenario field, `path=value` (repeatable), e.g. workloads.0.arrival.rate=800")
	f.StringVar(&opts.Format, "format", formatTable, "output format: table or json")
	return cmd
}

// runRun loads and runs the scenario, writes the result files and prints
// the summary.
func runRun(opts *RunOptions) error {
	s, err := scenarios.Load(opts.Scenario, opts.Overrides)
	if err != nil {
		return err
	}
	res, err := sim.Run(s)
	if err != nil {
		return fmt.Errorf("running %s: %w", s.Name, err)
	}
	summary, err := marshalSummary(&res.Summary)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(opts.OutDir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(opts.OutDir, summaryFile), summary, 0o644); err != nil {
		return err
	}
	if err := writeSeriesFile(filepath.Join(opts.OutDir, seriesFile), &res.Series); err != nil {
		return err
	}
	if err := plots.WriteOccupancy(res, opts.OutDir); err != nil {
		return fmt.Errorf("writing plots: %w", err)
	}
	if opts.Format == formatJSON {
		_, err := opts.IO.Out.Write(summary)
		return err
	}
	files := []string{summaryFile, seriesFile, occPNGFile, occSVGFile}
	for i, f := range files {
		files[i] = filepath.Join(opts.OutDir, f)
	}
	return printRunTables(opts.IO.Out, s, &res.Summary, files)
}
