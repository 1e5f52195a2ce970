package main

import (
	"errors"
	"fmt"
	"io/fs"
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
	// The port-choice files, written when at least one connect()
	// succeeded.
	portsCSVFile = "ports.csv"
	portsPNGFile = "ports.png"
	portsSVGFile = "ports.svg"
)

// The NAT chart of a scenario with one NAT (see plots.NATFileNames).
const (
	natPNGFile = "nat.png"
	natSVGFile = "nat.svg"
)

// portsFiles are the port-choice files, in the order they are listed.
var portsFiles = []string{portsCSVFile, portsPNGFile, portsSVGFile}

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
		Long: fmt.Sprintf(`Run a scenario in virtual time, print a summary and write the results.

SCENARIO is a YAML file or the name of a built-in scenario (see "portsim
scenarios"); without it, the built-in %q runs.

--set changes a field of the scenario for this run: PATH is keys and list
indexes joined by dots, VALUE is written as in the file, e.g.
  --set workloads.0.arrival.rate=800
  --set hosts.0.sysctls.net.ipv4.ip_local_port_range="1024 65535"
  --set 'workloads.0.to=["203.0.113.10:443", "203.0.113.11:443"]'
--seed N and --duration D are short for --set seed=N and --set duration=D,
applied after every --set.

The output directory (--out) receives:
  %-14s totals, peaks, per-host settings and results, analytic estimates
  %-14s one row per sample interval
  %-14s the chart: ports held by state over time toward the most loaded
  %-14s destination, and failed connects per second
  %-14s the first %s ports allocated, in order: time, host, local
  %-14s address, destination and port of each
  %-14s the chart: port allocated against time, one colour per
  %-14s destination (a sequential allocator draws lines, Linux's hashed
  %-14s one a staircase per destination that jumps every 10 s, a random
  %-14s one noise)
The ports files are not written when no connect() succeeded.
With NATs in the scenario it also receives:
  %-14s one row per sample: t_s, then per NAT, NAME:flows,
  %-14s NAME:drops (during the interval), NAME:ports@IP (distinct ports
  %-14s in use) per external IP, NAME:flows@HOST per inside host
  %-14s the chart per NAT: ports in use per external IP and flows
  %-14s of the busiest inside hosts, and NAT drops per second (with
  %-14s several NATs, nat-NAME.png and nat-NAME.svg for each)

The same scenario and seed always give a byte-identical %s.`,
			scenarios.Default, summaryFile, seriesFile, occPNGFile, occSVGFile,
			portsCSVFile, groupThousands(sim.MaxPortChoices), "", portsPNGFile, portsSVGFile, "", "",
			natCSVFile, "", "", natPNGFile, natSVGFile, "", summaryFile),
		Example: `  portsim run
  portsim run scenario.yaml --seed 7 --duration 10m --out results
  portsim run linux-burst --set workloads.0.arrival.rate=800 --format json`,
		Args: usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Scenario = scenarios.Default
			if len(args) == 1 {
				opts.Scenario = args[0]
			}
			if opts.OutDir == "" {
				return flagUsageError(cmd, fmt.Errorf("--out must not be empty"))
			}
			// Checked here so that the message names the flag; the
			// scenario would report it as a --set of duration.
			if cmd.Flags().Changed("duration") && duration <= 0 {
				return flagUsageError(cmd, fmt.Errorf("--duration must be > 0, got %v", duration))
			}
			opts.Overrides = overridesWithSeed(cmd, sets, seed)
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
	f.StringArrayVar(&sets, "set", nil, "change a scenario field, `PATH=VALUE` (repeatable; see above)")
	addFormatFlag(cmd, &opts.Format, "print the summary as tables, or as summary.json (json)")
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
	files := []string{summaryFile, seriesFile, occPNGFile, occSVGFile}
	wrotePorts, err := writePortsFiles(opts.OutDir, res)
	if err != nil {
		return err
	}
	if wrotePorts {
		files = append(files, portsFiles...)
	}
	natFiles, err := writeNATFiles(opts.OutDir, res)
	if err != nil {
		return err
	}
	files = append(files, natFiles...)
	if opts.Format == formatJSON {
		if !wrotePorts {
			fmt.Fprintf(opts.IO.ErrOut, "portsim: note: %s\n", noPortsNote)
		}
		_, err := opts.IO.Out.Write(summary)
		return err
	}
	for i, f := range files {
		files[i] = filepath.Join(opts.OutDir, f)
	}
	if err := printRunTables(opts.IO.Out, s, &res.Summary, opts.Overrides, files); err != nil {
		return err
	}
	if !wrotePorts {
		p := &printer{w: opts.IO.Out}
		p.note(noPortsNote)
		return p.err
	}
	return nil
}

// noPortsNote says why a run wrote no port-choice files.
const noPortsNote = "no connect() succeeded, so no port was chosen: ports.csv, ports.png and ports.svg were not written"

// writePortsFiles writes ports.csv, ports.png and ports.svg into dir when
// res holds port choices and reports whether it did. Without choices it
// removes those files if an earlier run left them there, so that dir
// holds only this run's results.
func writePortsFiles(dir string, res *sim.Result) (bool, error) {
	if len(res.Ports) == 0 {
		for _, f := range portsFiles {
			if err := os.Remove(filepath.Join(dir, f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return false, err
			}
		}
		return false, nil
	}
	if err := writePortsFile(filepath.Join(dir, portsCSVFile), res); err != nil {
		return false, err
	}
	if err := plots.WritePorts(res, dir); err != nil {
		return false, fmt.Errorf("writing plots: %w", err)
	}
	return true, nil
}

// groupThousands writes n with commas between groups of three digits.
func groupThousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
