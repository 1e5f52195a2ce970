package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/portsim/portsim/scenarios"
)

// ScenariosOptions are the parsed command line of "portsim scenarios".
type ScenariosOptions struct {
	// IO is where the command prints.
	IO *IOStreams
	// Format is "table" or "json".
	Format string
	// Suite lists the cross-check suite instead of the built-ins.
	Suite bool
}

// NewCmdScenarios builds "portsim scenarios". It parses the command line
// into ScenariosOptions and hands them to runF, or to scenariosRun when
// runF is nil.
func NewCmdScenarios(ios *IOStreams, runF func(*ScenariosOptions) error) *cobra.Command {
	opts := &ScenariosOptions{IO: ios}
	cmd := &cobra.Command{
		Use:   "scenarios",
		Short: "List the built-in scenarios",
		Long: fmt.Sprintf(`List the built-in scenarios, which "portsim run NAME" runs.
Without a name, "portsim run" runs %q.

--suite lists the cross-check suite instead: small loopback scenarios that
"portsim crosscheck --suite" runs on the real kernel (and "portsim run" or
"portsim crosscheck" run by name).`, scenarios.Default),
		Args: usageArgs(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			if runF != nil {
				return runF(opts)
			}
			return scenariosRun(opts)
		},
	}
	cmd.SetFlagErrorFunc(flagUsageError)
	cmd.Flags().BoolVar(&opts.Suite, "suite", false, "list the cross-check suite's scenarios")
	addFormatFlag(cmd, &opts.Format, "print a table, or JSON: [{name, description, default}]")
	return cmd
}

// builtinJSON is one entry of "portsim scenarios --format json".
type builtinJSON struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Default     bool   `json:"default"`
}

// scenariosRun prints the built-in scenarios.
func scenariosRun(opts *ScenariosOptions) error {
	list := scenarios.Builtins()
	if opts.Suite {
		list = scenarios.Suite()
	}
	if opts.Format == formatJSON {
		out := make([]builtinJSON, 0, len(list))
		for _, b := range list {
			out = append(out, builtinJSON{b.Name, b.Description, b.Name == scenarios.Default})
		}
		enc, err := json.MarshalIndent(out, "", "  ")
		if err != nil {
			return err
		}
		_, err = opts.IO.Out.Write(append(enc, '\n'))
		return err
	}
	names := make([]string, len(list))
	nameWidth := 0
	for i, b := range list {
		names[i] = b.Name
		if b.Name == scenarios.Default {
			names[i] += " (default)"
		}
		nameWidth = max(nameWidth, len(names[i]))
	}
	// Wrap the descriptions so that the table fits in 80 columns: a row is
	// " NAME | DESCRIPTION".
	descWidth := max(40, 79-len(" ")-nameWidth-len(" | "))
	rows := make([][]string, len(list))
	for i, b := range list {
		rows[i] = []string{names[i], strings.Join(wrap(b.Description, descWidth), "\n")}
	}
	return renderTable(opts.IO.Out, []string{"name", "description"}, rows)
}
