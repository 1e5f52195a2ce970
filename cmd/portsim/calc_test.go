package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portsim/portsim/sim/analytic"
)

func TestNewCmdCalc(t *testing.T) {
	tests := []struct {
		name    string
		argv    string
		want    CalcOptions
		wantErr string // substring; "" means no error
	}{
		{
			name: "required only, defaults",
			argv: "--ports 28232 --rate 470",
			want: CalcOptions{
				Input:  analytic.CalcInput{Ports: 28232, Rate: 470, TimeWait: 60 * time.Second, Destinations: 1, TargetBlocking: 0.01},
				Format: "table",
			},
		},
		{
			name: "every flag",
			argv: "--ports 1000 --rate 2.5 --hold 1.5s --time-wait 2m --destinations 10 --target-blocking 0.001 --format json",
			want: CalcOptions{
				Input:  analytic.CalcInput{Ports: 1000, Rate: 2.5, Hold: 1500 * time.Millisecond, TimeWait: 2 * time.Minute, Destinations: 10, TargetBlocking: 0.001},
				Format: "json",
			},
		},
		{
			// Range checks are analytic.Calc's; parsing passes values on.
			name: "negative rate parses",
			argv: "--ports 10 --rate -1",
			want: CalcOptions{
				Input:  analytic.CalcInput{Ports: 10, Rate: -1, TimeWait: 60 * time.Second, Destinations: 1, TargetBlocking: 0.01},
				Format: "table",
			},
		},
		{name: "missing ports", argv: "--rate 470", wantErr: "required flag --ports not set"},
		{name: "missing rate", argv: "--ports 10", wantErr: "required flag --rate not set"},
		{name: "rate not a number", argv: "--ports 10 --rate fast", wantErr: `"--rate"`},
		{name: "hold without unit", argv: "--ports 10 --rate 1 --hold 5", wantErr: `"--hold"`},
		{name: "ports not an integer", argv: "--ports 1.5 --rate 1", wantErr: `"--ports"`},
		{name: "bad format", argv: "--ports 10 --rate 1 --format yaml", wantErr: `"--format"`},
		{name: "positional argument", argv: "--ports 10 --rate 1 extra", wantErr: `unknown command "extra"`},
		{name: "unknown flag", argv: "--ports 10 --rate 1 --erlangs 3", wantErr: "--erlangs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ios, got := parseOnly(t, NewCmdCalc, tt.argv, tt.wantErr)
			if got == nil {
				return
			}
			assert.Same(t, ios, got.IO)
			assert.Equal(t, tt.want.Input, got.Input)
			assert.Equal(t, tt.want.Format, got.Format)
		})
	}
}

func TestCalcEndToEnd(t *testing.T) {
	const args = "calc --ports 28232 --rate 470 --hold 0s --time-wait 60s"

	t.Run("table", func(t *testing.T) {
		code, stdout, stderr := runCLI(t, args)
		require.Equal(t, exitOK, code, stderr)
		assert.Empty(t, stderr)
		for _, want := range []string{
			"metric", "value", "unit / explanation",
			"ports", "28232",
			"offered load", "28200.0", // 470/s x 60 s
			"blocking (Erlang B)",
			"ports held (Little's law)",
			"max rate",
			"fluid limit", "470.5", // 28232 / 60 s
			"first failure", "never", // 470 x 60 < 28232
		} {
			assert.Contains(t, stdout, want)
		}
		assert.NotContains(t, stdout, "OFFERED", "header auto-format must be off")
	})

	t.Run("json", func(t *testing.T) {
		code, stdout, stderr := runCLI(t, args+" --format json")
		require.Equal(t, exitOK, code, stderr)
		var got analytic.CalcResult
		require.NoError(t, json.Unmarshal([]byte(stdout), &got))
		assert.Equal(t, 28232, got.Ports)
		assert.InDelta(t, 28200, got.OfferedLoadErlangs, 1e-9)
		assert.InDelta(t, 60, got.HoldingTimeS, 1e-12)
		assert.InDelta(t, 28232.0/60, got.FluidLimitRate, 1e-9)
		assert.Greater(t, got.ErlangBBlocking, 0.0)
		assert.Less(t, got.ErlangBBlocking, 0.05)
		assert.InDelta(t, 470*60*(1-got.ErlangBBlocking), got.PortsHeldLittlesLaw, 1e-6)
		assert.Nil(t, got.FirstFailureS)
		assert.True(t, strings.HasSuffix(stdout, "}\n"))
	})

	t.Run("invalid rate", func(t *testing.T) {
		code, stdout, stderr := runCLI(t, "calc --ports 28232 --rate -1")
		assert.Equal(t, exitUsage, code)
		assert.Empty(t, stdout)
		assert.Contains(t, stderr, "--rate")
		assert.Equal(t, 1, strings.Count(stderr, "\n"), "one line: %q", stderr)
	})
}
