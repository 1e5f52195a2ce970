package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"

	"github.com/olekukonko/tablewriter/tw"
	"github.com/spf13/cobra"

	"github.com/portsim/portsim/sim/plan"
)

// PlanOptions are the parsed command line of "portsim plan".
type PlanOptions struct {
	IO     *IOStreams
	Plan   plan.Options
	Format string
}

// NewCmdPlan builds "portsim plan". It parses the command line into
// PlanOptions and hands them to runF, or to runPlan when runF is nil.
func NewCmdPlan(ios *IOStreams, runF func(*PlanOptions) error) *cobra.Command {
	opts := &PlanOptions{IO: ios}
	var (
		sets []string
		seed uint64
	)
	cmd := &cobra.Command{
		Use:   "plan SCENARIO --target-failure P",
		Short: "Find the sustainable rate and rank the remedies that raise it",
		Long: `Find the largest connection rate a workload of the scenario sustains with a
failure probability of at most P, then try the standard remedies one at a
time and together, and rank them by the rate they sustain.

The rate is found by simulation: the workload's arrival rates are scaled,
each trial runs --replications runs (seeds seed..seed+R-1, the same at every
trial), the search starts from the Erlang B estimate where the scenario
meets its assumptions (Poisson arrivals) and from the workload's own rate
otherwise, brackets by doubling or halving, and bisects down to --precision.
The failure probability is failed attempts over attempts (requests on pooled
connections included) over the whole run, as the scenario describes it.

Remedies, each where it applies to the scenario:
  widen the ephemeral range       ip_local_port_range 1024-65535
  add source addresses            4 in all, connections spread evenly
  add destination addresses       4 in all (the next addresses), same port
  enable tcp_tw_reuse             tcp_tw_reuse=1 with timestamps (Linux)
  let the server close first      no client TIME_WAIT
  SO_LINGER 0                     RST close, no TIME_WAIT (risky: see caveat)
  reuse connections               a keep-alive pool per destination (--pool)
  add NAT IPs                     twice the NAT's external IPs
  raise the NAT ports per host    4 times the ports per inside host
  all configuration remedies      every one above that needs no application
                                  or protocol change, together
A remedy that sustains --max-factor times the scenario's own sustainable rate
is reported as at least that ("≥"), where the search stops. Each row states
its caveat.`,
		Example: `  portsim plan k6-no-reuse --target-failure 0.01
  portsim plan linux-burst --target-failure 0.001 --replications 5 -j 2 --format json`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			o := &opts.Plan
			o.Scenario = args[0]
			if !cmd.Flags().Changed("target-failure") {
				return flagUsageError(cmd, fmt.Errorf("--target-failure is required"))
			}
			switch {
			case !(o.Target > 0 && o.Target < 1):
				return flagUsageError(cmd, fmt.Errorf("--target-failure must be in (0, 1), got %v", o.Target))
			case o.Replications < 1:
				return flagUsageError(cmd, fmt.Errorf("--replications must be >= 1, got %d", o.Replications))
			case o.Jobs < 1:
				return flagUsageError(cmd, fmt.Errorf("-j must be >= 1, got %d", o.Jobs))
			case !(o.Precision > 0 && o.Precision < 1):
				return flagUsageError(cmd, fmt.Errorf("--precision must be in (0, 1), got %v", o.Precision))
			case !(o.MaxFactor > 1):
				return flagUsageError(cmd, fmt.Errorf("--max-factor must be > 1, got %v", o.MaxFactor))
			case o.Pool < 0:
				return flagUsageError(cmd, fmt.Errorf("--pool must be >= 0, got %d", o.Pool))
			}
			o.Overrides = overridesWithSeed(cmd, sets, seed)
			if runF != nil {
				return runF(opts)
			}
			return runPlan(opts)
		},
	}
	cmd.SetFlagErrorFunc(flagUsageError)
	f := cmd.Flags()
	f.Float64Var(&opts.Plan.Target, "target-failure", 0, "failure probability to sustain, in (0, 1)")
	f.StringVar(&opts.Plan.Workload, "workload", "", "the workload whose rate is searched (default: the first)")
	f.IntVar(&opts.Plan.Replications, "replications", 3, "runs per trial rate")
	f.IntVarP(&opts.Plan.Jobs, "jobs", "j", 1, "remedies searched at once")
	f.Float64Var(&opts.Plan.Precision, "precision", 0.02, "relative precision of each sustainable rate")
	f.Float64Var(&opts.Plan.MaxFactor, "max-factor", 32, "stop each search at this factor over the scenario's own sustainable rate")
	f.IntVar(&opts.Plan.Pool, "pool", 0, "keep-alive pool size to try (0: twice the requests in flight at the search's cap)")
	f.Uint64Var(&seed, "seed", 0, "base random seed (overrides the scenario's seed)")
	f.StringArrayVar(&sets, "set", nil, "change a scenario field, `PATH=VALUE` (repeatable)")
	addFormatFlag(cmd, &opts.Format, "print the plan as a table, or as JSON (json)")
	return cmd
}

// runPlan makes the plan and prints it.
func runPlan(opts *PlanOptions) error {
	ctx, stop := interruptContext()
	defer stop()
	res, err := plan.Run(ctx, opts.Plan)
	if err != nil {
		return err
	}
	if opts.Format == formatJSON {
		b, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return err
		}
		_, err = opts.IO.Out.Write(append(b, '\n'))
		return err
	}
	return printPlan(opts.IO.Out, res)
}

// printPlan prints a plan as tables.
func printPlan(w io.Writer, res *plan.Result) error {
	p := &printer{w: w}
	p.printf("scenario  %s, workload %s at %s connections/s\n", res.Scenario, res.Workload, formatFloat(res.GivenRate))
	p.printf("target    failure probability <= %v (%d replications per trial)\n", res.Target, res.Replications)
	if res.AnalyticRate != nil {
		p.printf("estimate  Erlang B: %.4g connections/s (the search's starting point)\n", *res.AnalyticRate)
	}
	b := &res.Baseline
	p.printf("as given  sustains %s connections/s; at %s/s, %.2f%% of attempts fail\n", rateText(b), formatFloat(res.GivenRate), 100*b.FailureAtGiven)
	bursts := b.RecoveryS != nil
	if bursts {
		p.printf("bursts    failures stop %s after the slowest burst ends (at the given rate)\n", recoveryText(b))
	}
	p.section("remedies, best first")
	rows := make([][]string, len(res.Remedies))
	for i := range res.Remedies {
		r := &res.Remedies[i]
		factor := fmt.Sprintf("%.2fx", r.Factor)
		if r.AtLeast {
			factor = "≥ " + factor
		}
		rows[i] = []string{strconv.Itoa(i + 1), r.Remedy, rateText(r), factor, fmt.Sprintf("%.2f%%", 100*r.FailureAtGiven)}
		if bursts {
			rows[i] = append(rows[i], recoveryText(r))
		}
	}
	header := []string{"#", "remedy", "sustainable rate (conn/s)", "factor", "failures at given rate"}
	if bursts {
		header = append(header, "recovery after burst")
	}
	p.table(header, rows, tw.AlignRight, tw.AlignLeft, tw.AlignRight, tw.AlignRight, tw.AlignRight, tw.AlignRight)
	p.section("what each remedy changes, and its caveat")
	for i, r := range res.Remedies {
		p.printf("%2d %s: %s\n", i+1, r.Remedy, r.Change)
		for _, line := range wrap("caveat: "+r.Caveat, 74) {
			p.printf("   %s\n", line)
		}
	}
	return p.err
}

// rateText formats a sustainable rate in connections per second (whole
// numbers from 100 up, three significant digits below), "≥" when the
// search stopped at its cap.
func rateText(f *plan.Finding) string {
	s := fmt.Sprintf("%.3g", f.Rate)
	if f.Rate >= 100 {
		s = fmt.Sprintf("%.0f", f.Rate)
	}
	if f.AtLeast {
		s = "≥ " + s
	}
	return s
}

// recoveryText formats a finding's recovery after its slowest burst: "-"
// without one, "> T" when a burst had not recovered by the next burst or
// the run's end.
func recoveryText(f *plan.Finding) string {
	switch {
	case f.RecoveryS == nil:
		return "-"
	case !f.Recovered:
		return "> " + seconds(*f.RecoveryS)
	}
	return seconds(*f.RecoveryS)
}
