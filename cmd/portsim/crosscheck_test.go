package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portsim/portsim/scenarios"
	"github.com/portsim/portsim/sim/realsock"
)

// TestMain serves the child processes "portsim crosscheck" starts: they
// are this test binary, started again in a private network namespace.
func TestMain(m *testing.M) {
	realsock.ServeChild()
	os.Exit(m.Run())
}

func TestCrosscheckUsage(t *testing.T) {
	for _, tc := range []struct{ name, args, stderr string }{
		{"nothing to check", "crosscheck", "give a SCENARIO to cross-check, or --suite"},
		{"both", "crosscheck crosscheck/exhaust-one --suite", "not both"},
		{"set with suite", "crosscheck --suite --set seed=2", "--set applies to one SCENARIO"},
		{"destination off loopback", "crosscheck bind-before-connect", "not on loopback"},
		{"too long", "crosscheck crosscheck/exhaust-one --max-duration 1s", "longer than the 1s"},
		{"bad max duration", "crosscheck crosscheck/exhaust-one --max-duration 0s", "--max-duration must be > 0"},
		{"bad scenario", "crosscheck no-such-scenario", "no such file or built-in scenario"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tc.args)
			assert.Equal(t, exitUsage, code)
			assert.Empty(t, stdout)
			assert.Contains(t, stderr, tc.stderr)
		})
	}
	assert.Equal(t, exitFailure, exitCode(errDisagree), "a disagreement exits 1")
}

// TestCrosscheckSuite runs "portsim crosscheck --suite" on this machine's
// kernel: every scenario of the suite and the bind-conflict matrix must
// agree with the simulator. It needs root for the private namespaces (CI
// runs as root) and skips elsewhere.
func TestCrosscheckSuite(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for private network namespaces (CLONE_NEWNET); CI runs as root")
	}
	if err := exec.Command("unshare", "-n", "true").Run(); err != nil {
		t.Skipf("cannot make a network namespace here (unshare -n: %v)", err)
	}
	dir := t.TempDir()
	code, stdout, stderr := runCLI(t, "crosscheck --suite --out "+dir)
	require.Equal(t, exitOK, code, "stdout:\n%s\nstderr: %s", stdout, stderr)
	assert.NotContains(t, stdout, "DISAGREE")
	assert.Contains(t, stdout, "bind-conflict-matrix")
	for _, in := range scenarios.Suite() {
		name := strings.TrimPrefix(in.Name, scenarios.SuitePrefix)
		assert.Contains(t, stdout, " "+name+" ")
		b, err := os.ReadFile(filepath.Join(dir, name, comparisonFile))
		require.NoError(t, err)
		var out crosscheckOutcome
		require.NoError(t, json.Unmarshal(b, &out))
		assert.True(t, out.Agree, name)
		assert.Equal(t, "private network namespace", out.Isolation)
		for _, f := range []string{kernelSummaryFile, kernelSeriesFile, modelSummaryFile, modelSeriesFile, crosscheckPNGFile, crosscheckSVGFile} {
			assert.FileExists(t, filepath.Join(dir, name, f))
		}
	}
	assert.FileExists(t, filepath.Join(dir, bindMatrixFile))
}
