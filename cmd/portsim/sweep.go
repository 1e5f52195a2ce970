package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/portsim/portsim/plots"
	"github.com/portsim/portsim/sim/sweep"
)

// SweepOptions are the parsed command line of "portsim sweep".
type SweepOptions struct {
	IO *IOStreams
	// Sweep is what to run (Scenario, Overrides, Vary, Replications, Jobs,
	// Shard).
	Sweep sweep.Options
	// OutDir receives sweep.json, sweep.csv and the plots.
	OutDir string
	// Format is "table" or "json".
	Format string
}

// NewCmdSweep builds "portsim sweep". It parses the command line into
// SweepOptions and hands them to runF, or to runSweep when runF is nil.
func NewCmdSweep(ios *IOStreams, runF func(*SweepOptions) error) *cobra.Command {
	opts := &SweepOptions{IO: ios}
	var (
		varies, sets []string
		seed         uint64
		shard        string
	)
	cmd := &cobra.Command{
		Use:   "sweep SCENARIO --vary PATH=FROM:TO:STEP [--vary ...]",
		Short: "Run a scenario over a grid of parameter values, with replications",
		Long: fmt.Sprintf(`Run a scenario over a grid of one or two varied parameters, with R independent
replications per point, and summarise each point by means and 95 %% confidence
intervals: the failure probability (whole run, and the most loaded
destination's steady-state blocking, with the Erlang B curve where it
applies), the time to the first failure, the peak of ports in use and the
probes per allocation.

--vary PATH=FROM:TO:STEP varies a scenario field (a path as --set takes it)
over FROM, FROM+STEP, ... TO (numbers, or durations such as 10ms:100ms:10ms);
--vary PATH=A,B,C over the values listed. Give --vary once or twice.

Replication r of every point runs with the scenario's seed + r (the same
random numbers at every point, so curves are smooth; replication 0 is what
"portsim run" gives). The files do not depend on -j: each run's result has
its own slot.

--shard I/N runs only shard I of N of the grid (points whose index is I-1
modulo N), for running one study on several machines; "portsim merge" joins
the shards' directories into the result of the whole grid, identical to an
unsharded sweep.

A progress bar is drawn on standard error when it is a terminal. Ctrl-C
(SIGINT) or SIGTERM stops the sweep cleanly: runs in progress finish, and
the points finished so far are written (sweep.json says "complete": false)
before the command exits with status 1.

The output directory (--out) receives:
  %-20s the grid, each point's statistics and its replications
  %-20s one row per point: values, mean and 95 %% interval of each figure
  %-20s failure probability against the varied parameter, with
  %-20s the 95 %% band and Erlang B where it applies
  %-20s time to the first failure (when some replication failed)
  %-20s with two varied parameters, a heatmap of the failure probability`,
			sweep.JSONFile, sweep.CSVFile, "sweep-failure.png/svg", "", "sweep-first-failure.png/svg", "sweep-heatmap.png/svg"),
		Example: `  portsim sweep linux-burst --vary workloads.0.arrival.rate=100:1000:50 --replications 10
  portsim sweep k6-no-reuse --vary workloads.0.arrival.rate=400:1600:200 \
      --vary 'hosts.0.sysctls.net.ipv4.ip_local_port_range=32768 60999,1024 65535' -j 2
  portsim sweep linux-burst --vary workloads.0.arrival.rate=100:1000:50 --shard 2/4 --out part2`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			o := &opts.Sweep
			o.Scenario = args[0]
			if len(varies) == 0 || len(varies) > 2 {
				return flagUsageError(cmd, fmt.Errorf("give --vary once or twice, not %d times", len(varies)))
			}
			o.Vary = nil
			for _, v := range varies {
				pv, err := sweep.ParseVary(v)
				if err != nil {
					return flagUsageError(cmd, err)
				}
				o.Vary = append(o.Vary, pv)
			}
			if o.Replications < 1 {
				return flagUsageError(cmd, fmt.Errorf("--replications must be >= 1, got %d", o.Replications))
			}
			if o.Jobs < 1 {
				return flagUsageError(cmd, fmt.Errorf("-j must be >= 1, got %d", o.Jobs))
			}
			if cmd.Flags().Changed("shard") {
				sh, err := sweep.ParseShard(shard)
				if err != nil {
					return flagUsageError(cmd, err)
				}
				o.Shard = sh
			}
			if opts.OutDir == "" {
				return flagUsageError(cmd, fmt.Errorf("--out must not be empty"))
			}
			o.Overrides = overridesWithSeed(cmd, sets, seed)
			if runF != nil {
				return runF(opts)
			}
			return runSweep(opts)
		},
	}
	cmd.SetFlagErrorFunc(flagUsageError)
	f := cmd.Flags()
	f.StringArrayVar(&varies, "vary", nil, "vary a scenario field, `PATH=FROM:TO:STEP` or PATH=A,B,C (once or twice)")
	f.IntVar(&opts.Sweep.Replications, "replications", 10, "independent replications per point")
	f.IntVarP(&opts.Sweep.Jobs, "jobs", "j", 1, "runs at once")
	f.StringVar(&shard, "shard", "", "run only shard `I/N` of the grid")
	f.StringVar(&opts.OutDir, "out", "portsim-sweep", "directory to write the result files to")
	f.Uint64Var(&seed, "seed", 0, "base random seed (overrides the scenario's seed)")
	f.StringArrayVar(&sets, "set", nil, "change a scenario field for every point, `PATH=VALUE` (repeatable)")
	addFormatFlag(cmd, &opts.Format, "print the points as a table, or sweep.json (json)")
	return cmd
}

// runSweep runs the sweep with a progress bar and Ctrl-C handling, then
// writes and prints the result.
func runSweep(opts *SweepOptions) error {
	ctx, stop := interruptContext()
	defer stop()
	o := opts.Sweep
	var finish func()
	o.Progress, finish = progress(opts.IO.ErrOut, "sweep")
	defer finish()
	res, err := sweep.Run(ctx, o)
	if err != nil && !errors.Is(err, sweep.ErrInterrupted) {
		return err
	}
	if werr := writeSweep(opts.IO, res, opts.OutDir, opts.Format); werr != nil {
		return werr
	}
	return err
}

// interruptContext is cancelled by the first SIGINT or SIGTERM, which asks
// for a clean stop; the signals then go back to their default, so a second
// Ctrl-C kills the process as usual.
func interruptContext() (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	context.AfterFunc(ctx, stop)
	return ctx, stop
}

// progress returns a Progress callback that draws a bar on w, and the
// function that finishes the bar; the callback is nil when w is not a
// terminal (a log file, a pipe, CI).
func progress(w io.Writer, what string) (func(done, total int), func()) {
	bar := progressBar(w, what)
	if bar == nil {
		return nil, func() {}
	}
	return func(done, total int) {
		bar.ChangeMax(total)
		_ = bar.Set(done)
	}, func() { _ = bar.Finish() }
}

// progressBar returns a bar drawn on w when w is a terminal, else nil
// (tests, CI and pipes stay quiet).
func progressBar(w io.Writer, what string) *progressbar.ProgressBar {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return progressbar.NewOptions(1,
		progressbar.OptionSetWriter(f),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionClearOnFinish(),
	)
}

// writeSweep writes a sweep's files (and, for a whole grid, its plots)
// into dir and prints the points.
func writeSweep(ios *IOStreams, res *sweep.Result, dir, format string) error {
	if err := sweep.WriteFiles(res, dir); err != nil {
		return err
	}
	files := []string{sweep.JSONFile, sweep.CSVFile}
	if res.Shard == "" && len(res.Points) > 0 {
		figs, err := plots.WriteSweep(res, dir)
		if err != nil {
			return fmt.Errorf("writing plots: %w", err)
		}
		files = append(files, figs...)
	}
	if format == formatJSON {
		b, err := os.ReadFile(filepath.Join(dir, sweep.JSONFile))
		if err != nil {
			return err
		}
		_, err = ios.Out.Write(b)
		return err
	}
	return printSweep(ios.Out, res, dir, files)
}

// printSweep prints the points as a table and the files written.
func printSweep(w io.Writer, res *sweep.Result, dir string, files []string) error {
	p := &printer{w: w}
	p.printf("scenario  %s\n", res.Scenario)
	what := "sweep"
	if res.Shard != "" {
		what = "shard " + res.Shard + " of a sweep"
	}
	p.printf("%s of %d points, %d replications each (seed %d + r)\n", what, len(res.Points), res.Replications, res.Seed)
	if !res.Complete {
		p.note("interrupted: only the points whose replications all finished are shown and written")
	}
	header := []string{}
	for _, v := range res.Vary {
		header = append(header, v.Path)
	}
	header = append(header, "failure prob. [95% CI]", "steady blocking [95% CI]", "Erlang B", "first failure", "peak ports")
	var rows [][]string
	for i := range res.Points {
		pt := &res.Points[i]
		row := append([]string(nil), pt.Values...)
		eb := "-"
		if pt.ErlangB != nil {
			eb = prob(*pt.ErlangB)
		}
		first := "none"
		if pt.FirstFailureS.N > 0 {
			first = fmt.Sprintf("%.1fs (%d/%d)", pt.FirstFailureS.Mean, pt.FirstFailureS.N, len(pt.Reps))
		}
		row = append(row, interval(pt.FailureProb), interval(pt.SteadyBlocking), eb, first, fmt.Sprintf("%.0f", pt.PeakPortsInUse.Mean))
		rows = append(rows, row)
	}
	p.table(header, rows)
	p.section("files")
	for _, f := range files {
		p.printf("  %s\n", filepath.Join(dir, f))
	}
	return p.err
}

// interval formats a probability and its 95 % interval.
func interval(s sweep.Stat) string {
	if s.N == 0 {
		return "-"
	}
	return fmt.Sprintf("%s [%s, %s]", prob(s.Mean), prob(s.Lo), prob(s.Hi))
}

// prob formats a probability: 0, four decimals, below 0.001 two
// significant digits (a band's upper bound after no failure is often
// 1e-5), and below 1e-9 just that (Erlang B far below the knee reaches
// the smallest float64).
func prob(x float64) string {
	switch {
	case x == 0:
		return "0"
	case x < 1e-9:
		return "< 1e-9"
	case x < 1e-3:
		return fmt.Sprintf("%.1e", x)
	}
	return fmt.Sprintf("%.4f", x)
}

// NewCmdMerge builds "portsim merge".
func NewCmdMerge(ios *IOStreams) *cobra.Command {
	var out, format string
	cmd := &cobra.Command{
		Use:   "merge DIR...",
		Short: "Join the shards of a sweep into the result of the whole grid",
		Long: `Join the output directories of "portsim sweep --shard I/N" (every shard 1/N to
N/N, in any order) into the result of the whole grid: sweep.json, sweep.csv
and the plots, identical byte for byte to what an unsharded sweep writes.
The shards must come from the same scenario, overrides, seed, replications
and grid.`,
		Example: `  portsim merge part1 part2 part3 --out study`,
		Args:    usageArgs(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			var parts []*sweep.Result
			for _, dir := range args {
				res, err := sweep.ReadResult(dir)
				if err != nil {
					return &usageError{err: err, hint: cmd.CommandPath()}
				}
				parts = append(parts, res)
			}
			res, err := sweep.Merge(parts)
			if err != nil {
				return &usageError{err: err, hint: cmd.CommandPath()}
			}
			return writeSweep(ios, res, out, format)
		},
	}
	cmd.SetFlagErrorFunc(flagUsageError)
	cmd.Flags().StringVar(&out, "out", "portsim-sweep", "directory to write the merged result to")
	addFormatFlag(cmd, &format, "print the points as a table, or sweep.json (json)")
	return cmd
}
