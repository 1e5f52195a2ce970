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
Without a name, "portsim run" runs %q.`, scenarios.Default),
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(cmd, opts.Format); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return scenariosRun(opts)
		},
	}
	cmd.SetFlagErrorFunc(flagUsageError)
	cmd.Flags().StringVar(&opts.Format, "format", formatTable, "output format: table or json")
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
	rows := make([][]string, 0, len(list))
	for _, b := range list {
		name := b.Name
		if name == scenarios.Default {
			name += " (default)"
		}
		rows = append(rows, []string{name, strings.Join(wrap(b.Description, 72), "\n")})
	}
	return renderTable(opts.IO.Out, []string{"name", "description"}, rows)
}
