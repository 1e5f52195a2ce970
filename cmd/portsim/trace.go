package main

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/olekukonko/tablewriter/tw"
	"github.com/spf13/cobra"

	"github.com/portsim/portsim/scenarios"
	"github.com/portsim/portsim/sim"
)

// TraceOptions are the parsed command line of "portsim trace".
type TraceOptions struct {
	// IO is where the command prints.
	IO *IOStreams
	// Scenario is a scenario file or a built-in name.
	Scenario string
	// Overrides are --set path=value settings, as for run.
	Overrides []string
	// Limit is the most steps printed; Socket, when not 0, keeps only that
	// socket's steps.
	Limit  int
	Socket int64
	// Format is "table" or "json".
	Format string
}

// NewCmdTrace builds "portsim trace": parsing into TraceOptions, then runF
// (tests) or traceRun.
func NewCmdTrace(ios *IOStreams, runF func(*TraceOptions) error) *cobra.Command {
	opts := &TraceOptions{IO: ios}
	cmd := &cobra.Command{
		Use:   "trace [SCENARIO]",
		Short: "Show a scenario step by step: each call, port, state and rule",
		Long: `Run a scenario and print its first steps as a teaching timeline: one row
per socket call, segment or timer, with the time, the socket, the local and
remote address, the state transition, the errno if the call failed, and why
— how the allocator chose the port (in its own terms: pass, offset, probes)
or the rule that produced the outcome, naming its source (kernel function,
RFC section).

Sockets are numbered in the order their connect() was attempted; --socket N
follows one of them from connect() to the end of TIME_WAIT.`,
		Example: `  portsim trace                      # the default scenario's first 40 steps
  portsim trace k6-no-reuse --limit 20
  portsim trace tw-reuse-loopback --socket 3 --format json`,
		Args: usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Scenario = scenarios.Default
			if len(args) == 1 {
				opts.Scenario = args[0]
			}
			if opts.Limit < 0 {
				return flagUsageError(cmd, fmt.Errorf("--limit must be >= 0, got %d", opts.Limit))
			}
			if opts.Socket < 0 {
				return flagUsageError(cmd, fmt.Errorf("--socket must be >= 0, got %d", opts.Socket))
			}
			if runF != nil {
				return runF(opts)
			}
			return traceRun(opts)
		},
	}
	cmd.SetFlagErrorFunc(flagUsageError)
	f := cmd.Flags()
	f.IntVar(&opts.Limit, "limit", 40, "most steps to show (0: all)")
	f.Int64Var(&opts.Socket, "socket", 0, "show only this socket's steps (0: all)")
	f.StringArrayVar(&opts.Overrides, "set", nil, "change a scenario field, `PATH=VALUE` (repeatable, as for run)")
	addFormatFlag(cmd, &opts.Format, "print a table, or the steps as JSON")
	return cmd
}

// traceRun loads the scenario, traces it and prints the steps.
func traceRun(opts *TraceOptions) error {
	s, err := scenarios.Load(opts.Scenario, opts.Overrides)
	if err != nil {
		return err
	}
	_, steps, err := sim.Trace(s, sim.TraceOptions{Limit: opts.Limit, Socket: opts.Socket})
	if err != nil {
		return fmt.Errorf("tracing %s: %w", s.Name, err)
	}
	if opts.Format == formatJSON {
		b, err := json.MarshalIndent(steps, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(opts.IO.Out, "%s\n", b)
		return err
	}
	rows := make([][]string, 0, len(steps))
	for _, st := range steps {
		state := st.From + " → " + st.To
		if st.From == "" {
			state = st.To // a NAT's or server's step says what became of the packet
		}
		if st.Errno != "" {
			state = st.Errno
		}
		sock := strconv.FormatInt(st.Socket, 10)
		if st.Socket == 0 {
			sock = "-"
		}
		rows = append(rows, []string{
			strconv.FormatFloat(st.TS, 'f', 6, 64), sock, st.Host,
			st.Event, st.Local, st.Remote, state, st.Why,
		})
	}
	if _, err := fmt.Fprintf(opts.IO.Out, "scenario %s, seed %d: %d steps\n", s.Name, s.Seed, len(steps)); err != nil {
		return err
	}
	return renderTable(opts.IO.Out, []string{"t (s)", "socket", "host", "event", "local", "remote", "state / errno", "why"},
		rows, tw.AlignRight, tw.AlignRight)
}
