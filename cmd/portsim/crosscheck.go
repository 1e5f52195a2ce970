package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/portsim/portsim/plots"
	"github.com/portsim/portsim/scenarios"
	"github.com/portsim/portsim/sim"
	"github.com/portsim/portsim/sim/crosscheck"
	"github.com/portsim/portsim/sim/realsock"
)

// Files "portsim crosscheck" writes into its output directory (one
// subdirectory per scenario with --suite).
const (
	comparisonFile     = "comparison.json"
	kernelSummaryFile  = "kernel-summary.json"
	kernelSeriesFile   = "kernel-series.csv"
	modelSummaryFile   = "sim-summary.json"
	modelSeriesFile    = "sim-series.csv"
	kernelPortsFile    = "kernel-ports.csv"
	modelPortsFile     = "sim-ports.csv"
	crosscheckPNGFile  = "crosscheck.png"
	crosscheckSVGFile  = "crosscheck.svg"
	bindMatrixFile     = "bind-matrix.json"
	bindMatrixSuiteRow = "bind-conflict-matrix"
)

// errDisagree is returned when the kernel and the simulator disagree: exit
// status 1, after the table has been printed.
var errDisagree = errors.New("the kernel and the simulator disagree (see the table)")

// CrosscheckOptions are the parsed command line of "portsim crosscheck".
type CrosscheckOptions struct {
	IO *IOStreams
	// Scenario is a scenario file or a built-in name; empty with Suite.
	Scenario string
	// Suite runs the built-in cross-check suite and the bind-conflict
	// matrix instead of one scenario.
	Suite bool
	// OutDir receives the comparison files.
	OutDir string
	// Overrides are the --set values, in order.
	Overrides []string
	// MaxDuration refuses longer scenarios (they run in real time).
	MaxDuration time.Duration
	// HostLoopback forces the fallback without a private namespace.
	HostLoopback bool
	// Format is "table" or "json".
	Format string
}

// NewCmdCrosscheck builds "portsim crosscheck".
func NewCmdCrosscheck(ios *IOStreams, runF func(*CrosscheckOptions) error) *cobra.Command {
	opts := &CrosscheckOptions{IO: ios}
	var sets []string
	cmd := &cobra.Command{
		Use:   "crosscheck [SCENARIO | --suite]",
		Short: "Run a scenario on the real Linux kernel and compare it with the simulator",
		Long: fmt.Sprintf(`Run a scenario on real sockets in the Linux kernel, in real time, run it in
the simulator too, and print both side by side: metric, kernel, simulator,
tolerance, verdict.

As root, each host of the scenario runs in a fresh network namespace (as
"unshare -n" makes) with the host's settings written to that namespace's
sysctls (ip_local_port_range, ip_local_reserved_ports, tcp_tw_reuse,
tcp_tw_reuse_delay, tcp_max_tw_buckets, tcp_timestamps, ip_autobind_reuse,
tcp_fin_timeout, ip_unprivileged_port_start); the machine's own settings are
never touched. Without root (or with --host-loopback) it runs on this
machine's loopback, narrows each socket's range with IP_LOCAL_PORT_RANGE
(Linux 6.3+) and says which settings it could not apply; the simulator then
runs with the machine's values for those. Every address must be on loopback
(127.0.0.0/8, ::1); traffic never leaves the machine.

Facts that do not depend on timing must agree exactly (attempts, successes
before the first failure, the parity of the first pass, ports shared across
destinations, the set of ports once the range is used up). Counts that do
depend on timing may differ by the attempts within the run's timing
uncertainty (its largest real-time lag plus 1 ms). Facts that depend on the
kernel's secret key (the order within a parity class) are compared with the
simulator's spread over %d other keys.

--suite runs the built-in cross-check suite (%d small scenarios, a few
seconds each; "portsim scenarios --suite" lists them) and the bind-conflict
matrix of SO_REUSEADDR and SO_REUSEPORT over bound, listening and TIME_WAIT
sockets, and prints one line per scenario.

The output directory (--out) receives, per scenario:
  %-20s every metric with its verdict
  %-20s the kernel run, in the simulator's summary.json schema
  %-20s and series.csv schema
  %-20s the simulator's run
  %-20s
  %-20s the ports chosen, in order, by the kernel and the simulator
  %-20s
  %-20s the overlay chart: kernel (solid) and simulator (dashed)
  %-20s occupancy and failures over time

Exit status: 0 when everything agrees, 1 when something disagrees or the
run fails, 2 for usage errors (a scenario that cannot run on loopback, one
longer than --max-duration).`,
			crosscheck.Ensemble, len(scenarios.Suite()), comparisonFile, kernelSummaryFile, kernelSeriesFile,
			modelSummaryFile, modelSeriesFile, kernelPortsFile, modelPortsFile, crosscheckPNGFile, crosscheckSVGFile),
		Example: `  sudo portsim crosscheck crosscheck/exhaust-one
  sudo portsim crosscheck --suite --out xc
  portsim crosscheck scenario.yaml --set workloads.0.arrival.rate=50`,
		Args: usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case opts.Suite && len(args) == 1:
				return flagUsageError(cmd, errors.New("give a SCENARIO or --suite, not both"))
			case !opts.Suite && len(args) == 0:
				return flagUsageError(cmd, errors.New("give a SCENARIO to cross-check, or --suite"))
			case opts.Suite && len(sets) > 0:
				return flagUsageError(cmd, errors.New("--set applies to one SCENARIO, not to --suite"))
			case opts.OutDir == "":
				return flagUsageError(cmd, errors.New("--out must not be empty"))
			case opts.MaxDuration <= 0:
				return flagUsageError(cmd, fmt.Errorf("--max-duration must be > 0, got %v", opts.MaxDuration))
			}
			if len(args) == 1 {
				opts.Scenario = args[0]
			}
			opts.Overrides = append([]string(nil), sets...)
			if runF != nil {
				return runF(opts)
			}
			return crosscheckRun(opts)
		},
	}
	cmd.SetFlagErrorFunc(flagUsageError)
	f := cmd.Flags()
	f.BoolVar(&opts.Suite, "suite", false, "run the built-in cross-check suite and the bind-conflict matrix")
	f.StringVar(&opts.OutDir, "out", "portsim-crosscheck", "directory to write the comparison files to")
	f.StringArrayVar(&sets, "set", nil, "change a scenario field, `PATH=VALUE` (repeatable; as in portsim run)")
	f.DurationVar(&opts.MaxDuration, "max-duration", realsock.DefaultMaxDuration, "refuse scenarios longer than this (they run in real time, once per host)")
	f.BoolVar(&opts.HostLoopback, "host-loopback", false, "run on this machine's loopback with IP_LOCAL_PORT_RANGE, without a private namespace")
	addFormatFlag(cmd, &opts.Format, "print the comparison as a table, or as JSON (json)")
	return cmd
}

// crosscheckOutcome is one scenario's comparison, as comparison.json holds
// it.
type crosscheckOutcome struct {
	Scenario  string              `json:"scenario"`
	Kernel    string              `json:"kernel"`
	Isolation string              `json:"isolation"`
	MaxLagMS  float64             `json:"max_lag_ms"`
	Notes     []string            `json:"notes,omitempty"`
	Metrics   []crosscheck.Metric `json:"metrics"`
	Agree     bool                `json:"agree"`
}

func crosscheckRun(opts *CrosscheckOptions) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if opts.Suite {
		return crosscheckSuite(ctx, opts)
	}
	s, err := scenarios.Load(opts.Scenario, opts.Overrides)
	if err != nil {
		return err
	}
	if err := realsock.Check(s, opts.MaxDuration); err != nil {
		return &usageError{err: err}
	}
	out, err := crosscheckOne(ctx, opts, s, opts.OutDir)
	if err != nil {
		return err
	}
	if opts.Format == formatJSON {
		if err := writeJSON(opts.IO.Out, out); err != nil {
			return err
		}
	} else if err := printCrosscheck(opts.IO.Out, out, opts.OutDir); err != nil {
		return err
	}
	if !out.Agree {
		return errDisagree
	}
	return nil
}

// crosscheckOne runs s both ways, writes the files into dir and returns the
// comparison.
func crosscheckOne(ctx context.Context, opts *CrosscheckOptions, s *scenarios.Scenario, dir string) (*crosscheckOutcome, error) {
	iso := realsock.Auto
	if opts.HostLoopback {
		iso = realsock.HostLoopback
	}
	rep, model, err := realsock.Run(ctx, s, realsock.Options{Isolation: iso, MaxDuration: opts.MaxDuration})
	if err != nil {
		return nil, fmt.Errorf("%s on the kernel: %w", s.Name, err)
	}
	res, err := sim.Run(model)
	if err != nil {
		return nil, fmt.Errorf("%s in the simulator: %w", s.Name, err)
	}
	ms, err := crosscheck.Compare(model, rep.Result, res, rep.MaxLag)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.Name, err)
	}
	out := &crosscheckOutcome{
		Scenario:  s.Name,
		Kernel:    rep.Kernel,
		Isolation: rep.Isolation.String(),
		MaxLagMS:  float64(rep.MaxLag.Microseconds()) / 1000,
		Notes:     rep.Notes,
		Metrics:   ms,
		Agree:     true,
	}
	for _, m := range ms {
		out.Agree = out.Agree && m.Agree
	}
	return out, writeCrosscheckFiles(dir, out, rep.Result, res)
}

// writeCrosscheckFiles writes one scenario's comparison files into dir.
func writeCrosscheckFiles(dir string, out *crosscheckOutcome, kernel, model *sim.Result) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		sum  *sim.Summary
	}{{kernelSummaryFile, &kernel.Summary}, {modelSummaryFile, &model.Summary}} {
		b, err := marshalSummary(f.sum)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, f.name), b, 0o644); err != nil {
			return err
		}
	}
	if err := writeSeriesFile(filepath.Join(dir, kernelSeriesFile), &kernel.Series); err != nil {
		return err
	}
	if err := writeSeriesFile(filepath.Join(dir, modelSeriesFile), &model.Series); err != nil {
		return err
	}
	if err := writePortsFile(filepath.Join(dir, kernelPortsFile), kernel); err != nil {
		return err
	}
	if err := writePortsFile(filepath.Join(dir, modelPortsFile), model); err != nil {
		return err
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, comparisonFile), append(b, '\n'), 0o644); err != nil {
		return err
	}
	if err := plots.WriteCrosscheck(kernel, model, dir); err != nil {
		return fmt.Errorf("writing the overlay chart: %w", err)
	}
	return nil
}

// printCrosscheck prints one scenario's comparison: the run's conditions,
// the table, the notes and the files.
func printCrosscheck(w io.Writer, out *crosscheckOutcome, dir string) error {
	p := &printer{w: w}
	p.printf("crosscheck %s: Linux %s, %s, largest real-time lag %s ms\n\n",
		out.Scenario, out.Kernel, out.Isolation, strconv.FormatFloat(out.MaxLagMS, 'f', 1, 64))
	rows := make([][]string, 0, len(out.Metrics))
	agree := 0
	for _, m := range out.Metrics {
		rows = append(rows, []string{m.Name, m.Kernel, m.Model, m.Tolerance, verdict(m.Agree)})
		if m.Agree {
			agree++
		}
	}
	p.table([]string{"metric", "kernel", "simulator", "tolerance", "verdict"}, rows)
	for _, n := range out.Notes {
		p.note(n)
	}
	p.printf("\n%d of %d metrics agree.\n", agree, len(out.Metrics))
	if dir != "" {
		p.printf("Wrote %s (%s, kernel and simulator summaries and series, %s).\n",
			dir, comparisonFile, crosscheckPNGFile)
	}
	return p.err
}

// writeJSON writes v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// suiteOutcome is what --suite --format json prints.
type suiteOutcome struct {
	Scenarios []*crosscheckOutcome `json:"scenarios"`
	// MatrixCases and MatrixAgree count the bind-conflict matrix.
	MatrixCases int  `json:"bind_matrix_cases"`
	MatrixAgree int  `json:"bind_matrix_agree"`
	Agree       bool `json:"agree"`
}

// crosscheckSuite runs every scenario of the suite and the bind-conflict
// matrix, writing each scenario's files into its own subdirectory.
func crosscheckSuite(ctx context.Context, opts *CrosscheckOptions) error {
	var so suiteOutcome
	so.Agree = true
	var rows [][]string
	for _, in := range scenarios.Suite() {
		s, err := scenarios.Load(in.Name, nil)
		if err != nil {
			return err
		}
		start := time.Now()
		out, err := crosscheckOne(ctx, opts, s, filepath.Join(opts.OutDir, s.Name))
		if err != nil {
			return err
		}
		so.Scenarios = append(so.Scenarios, out)
		agree, first := 0, ""
		for _, m := range out.Metrics {
			if m.Agree {
				agree++
			} else if first == "" {
				first = m.Name + ": kernel " + m.Kernel + ", simulator " + m.Model
			}
		}
		so.Agree = so.Agree && out.Agree
		rows = append(rows, []string{s.Name, strconv.Itoa(agree) + "/" + strconv.Itoa(len(out.Metrics)),
			verdict(out.Agree), time.Since(start).Round(100 * time.Millisecond).String(), first})
	}
	start := time.Now()
	matrix, err := realsock.RunBindMatrix(ctx)
	if err != nil {
		return fmt.Errorf("bind-conflict matrix: %w", err)
	}
	first := ""
	for _, r := range matrix {
		if r.Agree {
			so.MatrixAgree++
		} else if first == "" {
			first = r.String()
		}
	}
	so.MatrixCases = len(matrix)
	matrixOK := so.MatrixAgree == so.MatrixCases
	so.Agree = so.Agree && matrixOK
	rows = append(rows, []string{bindMatrixSuiteRow, strconv.Itoa(so.MatrixAgree) + "/" + strconv.Itoa(so.MatrixCases) + " cases",
		verdict(matrixOK), time.Since(start).Round(100 * time.Millisecond).String(), first})
	if err := os.MkdirAll(opts.OutDir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(matrix, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(opts.OutDir, bindMatrixFile), append(b, '\n'), 0o644); err != nil {
		return err
	}
	if opts.Format == formatJSON {
		if err := writeJSON(opts.IO.Out, &so); err != nil {
			return err
		}
	} else {
		p := &printer{w: opts.IO.Out}
		kernel, iso := "", ""
		if len(so.Scenarios) > 0 {
			kernel, iso = so.Scenarios[0].Kernel, so.Scenarios[0].Isolation
		}
		p.printf("crosscheck suite: Linux %s, %s\n\n", kernel, iso)
		p.table([]string{"scenario", "agree", "verdict", "took", "first disagreement"}, rows)
		p.printf("\nWrote %s (one directory per scenario, and %s).\n", opts.OutDir, bindMatrixFile)
		if p.err != nil {
			return p.err
		}
	}
	if !so.Agree {
		return errDisagree
	}
	return nil
}

// verdict prints an agreement as the metrics table does.
func verdict(ok bool) string { return crosscheck.Metric{Agree: ok}.Verdict() }
