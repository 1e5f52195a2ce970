package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A keep-alive pool set with --set shows in the results table as a row of
// reused requests and in summary.json as requests and reused; without a
// pool neither appears.
func TestRunPool(t *testing.T) {
	const row = "\n requests on an idle pooled connection |   71974 | 71974\n"
	for _, tc := range []struct {
		name, set string
		want      bool
	}{
		{"pool", " --set workloads.0.pool=32", true},
		{"no pool", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			code, stdout, stderr := runCLI(t, "run k6-no-reuse --out "+out+tc.set)
			require.Equal(t, exitOK, code, stderr)
			raw, err := os.ReadFile(filepath.Join(out, summaryFile))
			require.NoError(t, err)
			var sum map[string]any
			require.NoError(t, json.Unmarshal(raw, &sum))
			if !tc.want {
				assert.NotContains(t, stdout, "pooled")
				assert.NotContains(t, sum, "requests")
				assert.NotContains(t, sum, "reused")
				return
			}
			assert.Contains(t, stdout, row)
			assert.EqualValues(t, 72000, sum["requests"])
			assert.EqualValues(t, 71974, sum["reused"])
			assert.EqualValues(t, 26, sum["attempts"])
		})
	}
}
