package main

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/portsim/portsim/scenarios"
)

// IOStreams are the writers a command prints to. Commands never touch
// os.Stdout or os.Stderr directly, so tests can run them in-process and
// read what they wrote.
type IOStreams struct {
	// Out receives results (tables, JSON).
	Out io.Writer
	// ErrOut receives the error line.
	ErrOut io.Writer
}

// Exit statuses (sysexits-like, as most CLIs do): 2 when the user has to
// change the command line or the scenario, 1 for anything else.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// usageError marks an error the user fixes by changing the command line:
// a bad flag or argument, or an invalid value. exitCode maps it to 2.
type usageError struct {
	err error
	// hint is the command whose help explains the fix.
	hint string
}

// Error is the message followed by where to read about the fix.
func (e *usageError) Error() string {
	return fmt.Sprintf("%v (see '%s --help')", e.err, e.hint)
}

// Unwrap returns the error without the hint.
func (e *usageError) Unwrap() error { return e.err }

// flagUsageError wraps err as a usage error pointing at cmd's help. It is
// every command's FlagErrorFunc.
func flagUsageError(cmd *cobra.Command, err error) error {
	return &usageError{err: plainNumberError(err), hint: cmd.CommandPath()}
}

// numberWants says what a numeric flag takes, by the strconv function that
// pflag parses it with.
var numberWants = map[string]string{
	"ParseUint":  "want a whole number >= 0",
	"ParseInt":   "want a whole number",
	"ParseFloat": "want a number",
}

// plainNumberError replaces the strconv error at the end of a bad numeric
// flag's error, `invalid argument "-1" for "--seed" flag: strconv.ParseUint:
// parsing "-1": invalid syntax`, with what the flag wants: `... flag: want a
// whole number >= 0`. Other errors are returned unchanged.
func plainNumberError(err error) error {
	var ne *strconv.NumError
	if !errors.As(err, &ne) {
		return err
	}
	want := numberWants[ne.Func]
	if errors.Is(ne.Err, strconv.ErrRange) {
		want = "out of range"
	}
	msg, ok := strings.CutSuffix(err.Error(), ne.Error())
	if !ok || want == "" {
		return err
	}
	return fmt.Errorf("%s%s", msg, want)
}

// exitCode maps an error from a command to the process exit status:
// usage errors (flags, arguments, invalid values) and scenario errors
// (*scenarios.Error, which points at file:line:column) give 2, anything
// else 1.
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var ue *usageError
	var se *scenarios.Error
	if errors.As(err, &ue) || errors.As(err, &se) {
		return exitUsage
	}
	return exitFailure
}

// execute runs the portsim command line args, prints a failure as one line
// on ios.ErrOut and returns the exit status. A panic (a bug) is reported
// the same way, without a stack trace, and exits 1.
func execute(args []string, ios *IOStreams) (code int) {
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(ios.ErrOut, "portsim: internal error: %v\n", r)
			code = exitFailure
		}
	}()
	root := NewCmdRoot(ios)
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		fmt.Fprintf(ios.ErrOut, "portsim: %s\n", oneLine(err.Error()))
		return exitCode(err)
	}
	return exitOK
}

// oneLine keeps an error message on a single line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// NewCmdRoot builds the portsim command tree writing to ios.
func NewCmdRoot(ios *IOStreams) *cobra.Command {
	root := &cobra.Command{
		Use:   "portsim",
		Short: "Simulate ephemeral port allocation and exhaustion",
		Long: `portsim is a deterministic discrete-event simulator of ephemeral (source) port
allocation and exhaustion. It models how operating systems pick local ports for
outgoing connections (ip_local_port_range, reserved ports, the allocation
algorithm, port sharing across destinations), how long ports stay taken
(connection lifetime, who closes first, TIME_WAIT, tcp_max_tw_buckets), and
when connect() starts failing with EADDRNOTAVAIL. Runs are in virtual time:
the same scenario and seed always give the same results, byte for byte.

Describe hosts and workloads in a YAML scenario (or pick a built-in one), run it
with "portsim run", and compare the outcome with closed-form estimates from
"portsim calc".`,
		Example: `  portsim run                                  # the default built-in scenario
  portsim run burst.yaml --seed 7 --out results
  portsim run linux-burst --set workloads.0.arrival.rate=800
  portsim calc --ports 28232 --rate 470 --time-wait 60s`,
		Args:                       rootArgs,
		SuggestionsMinimumDistance: 2,
		SilenceUsage:               true,
		SilenceErrors:              true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	root.SetOut(ios.Out)
	root.SetErr(ios.ErrOut)
	root.SetFlagErrorFunc(flagUsageError)
	root.AddCommand(
		NewCmdRun(ios, nil),
		NewCmdScenarios(ios, nil),
		NewCmdCalc(ios, nil),
		NewCmdTrace(ios, nil),
		NewCmdCrosscheck(ios, nil),
		NewCmdSweep(ios, nil),
		NewCmdMerge(ios),
		NewCmdPlan(ios, nil),
		NewCmdPredict(ios, nil),
	)
	return root
}

// rootArgs rejects anything that is not a subcommand, as cobra does for a
// root without Run, but as a usage error on one line.
func rootArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	err := fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath())
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		err = fmt.Errorf("%w; did you mean %q?", err, strings.Join(s, `" or "`))
	}
	return flagUsageError(cmd, err)
}

// usageArgs wraps a cobra positional-argument validator so that its errors
// are usage errors.
func usageArgs(v cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := v(cmd, args); err != nil {
			return flagUsageError(cmd, err)
		}
		return nil
	}
}

// overridesWithSeed returns the --set values in order, then seed=N when
// --seed was given, so that the dedicated flag wins.
func overridesWithSeed(cmd *cobra.Command, sets []string, seed uint64) []string {
	out := append([]string(nil), sets...)
	if cmd.Flags().Changed("seed") {
		out = append(out, "seed="+strconv.FormatUint(seed, 10))
	}
	return out
}

// Output formats of --format.
const (
	formatTable = "table"
	formatJSON  = "json"
)

// formatValue is the value of a --format flag. Set refuses anything but
// formatTable and formatJSON, so a bad format is reported while the flags
// are parsed, as a usage error like any other bad flag value.
type formatValue string

// addFormatFlag defines --format on cmd, stored in p (default "table");
// usage says what each format prints.
func addFormatFlag(cmd *cobra.Command, p *string, usage string) {
	*p = formatTable
	cmd.Flags().Var((*formatValue)(p), "format", usage)
}

// String returns the format.
func (f *formatValue) String() string { return string(*f) }

// Set checks and stores a format.
func (f *formatValue) Set(s string) error {
	if s != formatTable && s != formatJSON {
		return fmt.Errorf("must be %s or %s", formatTable, formatJSON)
	}
	*f = formatValue(s)
	return nil
}

// Type is the placeholder help shows for the value.
func (f *formatValue) Type() string { return formatTable + "|" + formatJSON }
