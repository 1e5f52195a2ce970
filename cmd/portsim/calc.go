package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/olekukonko/tablewriter/tw"
	"github.com/spf13/cobra"

	"github.com/portsim/portsim/sim/analytic"
)

// CalcOptions are the parsed command line of "portsim calc".
type CalcOptions struct {
	// IO is where the command prints.
	IO *IOStreams
	// Input is handed to analytic.Calc unchanged; Calc validates it and
	// names the offending flag.
	Input analytic.CalcInput
	// Format is "table" or "json".
	Format string
}

// NewCmdCalc builds "portsim calc". It parses the command line into
// CalcOptions and hands them to runF, or to calcRun when runF is nil.
func NewCmdCalc(ios *IOStreams, runF func(*CalcOptions) error) *cobra.Command {
	opts := &CalcOptions{IO: ios}
	in := &opts.Input
	cmd := &cobra.Command{
		Use:   "calc --ports N --rate R [flags]",
		Short: "Closed-form estimates: Erlang B blocking, Little's law, capacity",
		Long: `Estimate port exhaustion without simulating, from closed-form models.

The model is connect() without bind() on Linux: a local port can be reused
toward each destination, so every destination is its own pool of --ports ports
(an Erlang loss system). Each connection holds its port for --hold, then for
--time-wait in TIME_WAIT (the client closes first). Arrivals are assumed to be
Poisson for the blocking figures and constant-rate for the first failure.`,
		Example: `  portsim calc --ports 28232 --rate 470 --time-wait 60s
  portsim calc --ports 28232 --rate 2000 --hold 2s --destinations 10 --format json`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, name := range []string{"ports", "rate"} {
				if !cmd.Flags().Changed(name) {
					return flagUsageError(cmd, fmt.Errorf("required flag --%s not set", name))
				}
			}
			if runF != nil {
				return runF(opts)
			}
			return calcRun(opts)
		},
	}
	cmd.SetFlagErrorFunc(flagUsageError)
	f := cmd.Flags()
	f.IntVar(&in.Ports, "ports", 0, "usable local ports, e.g. 28232 for Linux's default 32768-60999 (required)")
	f.Float64Var(&in.Rate, "rate", 0, "new connections per second, over all destinations (required)")
	f.DurationVar(&in.Hold, "hold", 0, "how long a connection stays open before the client closes it")
	f.DurationVar(&in.TimeWait, "time-wait", 60*time.Second, "how long TIME_WAIT keeps the port after the close")
	f.IntVar(&in.Destinations, "destinations", 1, "distinct destinations (address, port) the rate is spread over")
	f.Float64Var(&in.TargetBlocking, "target-blocking", analytic.DefaultTargetBlocking, "acceptable fraction of refused connects, for the maximum rate")
	addFormatFlag(cmd, &opts.Format, "print a table, or the answers as JSON")
	return cmd
}

// calcRun prints analytic.Calc's answers. Calc is pure arithmetic, so any
// error it returns is about the input: a usage error.
func calcRun(opts *CalcOptions) error {
	r, err := analytic.Calc(opts.Input)
	if err != nil {
		return &usageError{err: err, hint: "portsim calc"}
	}
	if opts.Format == formatJSON {
		b, err := json.MarshalIndent(r, "", "  ")
		if err != nil {
			return err
		}
		_, err = opts.IO.Out.Write(append(b, '\n'))
		return err
	}
	first := "never"
	if r.FirstFailureS != nil {
		first = millis(*r.FirstFailureS)
	}
	rows := [][]string{
		{"ports", fmt.Sprint(r.Ports), "usable local ports, per destination"},
		{"rate", fmt.Sprintf("%.1f", r.Rate), "connections/s, all destinations"},
		{"destinations", fmt.Sprint(r.Destinations), ""},
		{"holding time", seconds(r.HoldingTimeS), fmt.Sprintf("hold %s + TIME_WAIT %s", seconds(r.HoldS), seconds(r.TimeWaitS))},
		{"rate per destination", fmt.Sprintf("%.1f", r.RatePerDestination), "connections/s"},
		{"offered load", fmt.Sprintf("%.1f", r.OfferedLoadErlangs), "erlangs per destination: its rate x holding time"},
		{"blocking (Erlang B)", fmt.Sprintf("%.4g", r.ErlangBBlocking), "fraction of connects refused, Poisson arrivals"},
		{"ports held (Little's law)", fmt.Sprintf("%.1f", r.PortsHeldLittlesLaw), "mean sockets holding a port, all destinations"},
		{"max rate", fmt.Sprintf("%.1f", r.MaxRateForTarget), fmt.Sprintf("connections/s, all destinations, for blocking <= %g", r.TargetBlocking)},
		{"fluid limit", fmt.Sprintf("%.1f", r.FluidLimitRate), "connections/s: destinations x ports / holding time"},
		{"first failure", first, "constant-rate burst from t=0"},
	}
	return renderTable(opts.IO.Out, []string{"metric", "value", "unit / explanation"}, rows,
		tw.AlignLeft, tw.AlignRight, tw.AlignLeft)
}
