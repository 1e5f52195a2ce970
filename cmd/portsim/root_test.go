package main

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portsim/portsim/scenarios"
)

func TestExitCode(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, exitOK},
		{"scenario error", scenarioErr, exitUsage},
		{"wrapped scenario error", fmt.Errorf("loading: %w", scenarioErr), exitUsage},
		{"cobra flag error", flagError(t), exitUsage},
		{"usage error", &usageError{err: errors.New("bad"), hint: "portsim"}, exitUsage},
		{"other", errors.New("disk full"), exitFailure},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, exitCode(tt.err))
		})
	}
}

// scenarioErr is what scenarios.Load returns for a bad field.
var scenarioErr = &scenarios.Error{File: "bad.yaml", Line: 3, Column: 7, Field: "seed", Msg: "must be an integer"}

// flagError returns the error cobra reports for an unknown flag.
func flagError(t *testing.T) error {
	t.Helper()
	ios, _, _ := testIO()
	err := executeCmd(NewCmdRoot(ios), "run --no-such-flag")
	require.Error(t, err)
	require.Contains(t, err.Error(), "unknown flag: --no-such-flag")
	return err
}

func TestExecuteUsage(t *testing.T) {
	tests := []struct {
		name       string
		args       string
		wantCode   int
		wantStderr string // substring of the single stderr line
	}{
		{"unknown command", "rn", exitUsage, `unknown command "rn" for "portsim"; did you mean "run"?`},
		{"unknown root flag", "--verbose", exitUsage, "unknown flag: --verbose"},
		{"unknown run flag", "run --sed 7", exitUsage, "unknown flag: --sed (see 'portsim run --help')"},
		{"bad seed", "run --seed -1", exitUsage, `"--seed"`},
		{"bad duration", "run --duration soon", exitUsage, `"--duration"`},
		{"too many scenarios", "run a b", exitUsage, "accepts at most 1 arg(s), received 2"},
		{"bad format", "scenarios --format xml", exitUsage, `invalid argument "xml" for "--format" flag`},
		{"calc without ports", "calc --rate 1", exitUsage, "required flag --ports not set"},
		{"seed not a whole number", "run --seed -1", exitUsage, `invalid argument "-1" for "--seed" flag: want a whole number >= 0 (see`},
		{"rate not a number", "calc --ports 10 --rate x", exitUsage, `invalid argument "x" for "--rate" flag: want a number (see`},
		{"ports out of range", "calc --ports 99999999999999999999 --rate 1", exitUsage, `for "--ports" flag: out of range (see`},
		{"zero duration names the flag", "run --duration 0s", exitUsage, "--duration must be > 0, got 0s (see 'portsim run --help')"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tt.args)
			assert.Equal(t, tt.wantCode, code)
			assert.Empty(t, stdout)
			assert.Contains(t, stderr, tt.wantStderr)
			assert.True(t, strings.HasPrefix(stderr, "portsim: "), stderr)
			assert.Equal(t, 1, strings.Count(stderr, "\n"), "one line: %q", stderr)
		})
	}
}

func TestHelp(t *testing.T) {
	for _, args := range []string{"--help", ""} {
		code, stdout, stderr := runCLI(t, args)
		require.Equal(t, exitOK, code, stderr)
		assert.Contains(t, stdout, "discrete-event simulator")
		for _, c := range []string{"run", "scenarios", "calc"} {
			sub, _, err := NewCmdRoot(&IOStreams{}).Find([]string{c})
			require.NoError(t, err)
			assert.Regexp(t, `(?m)^\s+`+c+`\s+`+regexp.QuoteMeta(sub.Short)+`$`, stdout)
		}
	}
}

// testIO returns IOStreams writing to buffers.
func testIO() (ios *IOStreams, stdout, stderr *bytes.Buffer) {
	stdout, stderr = &bytes.Buffer{}, &bytes.Buffer{}
	return &IOStreams{Out: stdout, ErrOut: stderr}, stdout, stderr
}

// executeCmd runs cmd in-process with argv split on spaces, as gh's tests
// do, and returns its error.
func executeCmd(cmd *cobra.Command, argv string) error {
	cmd.SetArgs(strings.Fields(argv))
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetErr(&bytes.Buffer{})
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	_, err := cmd.ExecuteC()
	return err
}

// parseOnly runs the command newCmd builds on argv with a runF that keeps
// the parsed options instead of running. With wantErr set, it checks that
// parsing failed with a usage error containing wantErr before runF was
// called, and returns nil options; otherwise it returns what runF got.
func parseOnly[O any](t *testing.T, newCmd func(*IOStreams, func(*O) error) *cobra.Command, argv, wantErr string) (*IOStreams, *O) {
	t.Helper()
	ios, _, _ := testIO()
	var got *O
	cmd := newCmd(ios, func(o *O) error {
		got = o
		return nil
	})
	err := executeCmd(cmd, argv)
	if wantErr != "" {
		require.Error(t, err)
		assert.Contains(t, err.Error(), wantErr)
		assert.Equal(t, exitUsage, exitCode(err), "exit status of %v", err)
		assert.Nil(t, got, "runF must not be called")
		return ios, nil
	}
	require.NoError(t, err)
	require.NotNil(t, got)
	return ios, got
}

// runCLI runs the whole portsim command line (space-separated args)
// through execute and returns the exit status and what it printed.
func runCLI(t *testing.T, args string) (code int, stdout, stderr string) {
	t.Helper()
	ios, out, errOut := testIO()
	code = execute(strings.Fields(args), ios)
	return code, out.String(), errOut.String()
}
