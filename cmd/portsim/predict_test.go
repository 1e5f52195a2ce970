package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portsim/portsim/sim/predict"
)

func TestNewCmdPredict(t *testing.T) {
	_, o := parseOnly(t, NewCmdPredict, "--allocators sequential,linux --loads 0.5,2 --observations 100 --guesses 7 --gap 50ms --interval 2s -j 2 --tracking-boots 0 --seed 9", "")
	assert.Equal(t, []string{"sequential", "linux"}, o.Predict.Allocators)
	assert.Equal(t, []float64{0.5, 2}, o.Predict.Scales)
	assert.Equal(t, 100, o.Predict.Observations)
	assert.Equal(t, 7, o.Predict.Guesses)
	assert.Equal(t, 50*time.Millisecond, o.Predict.Gap)
	assert.Equal(t, 2*time.Second, o.Predict.Interval)
	assert.Equal(t, 0, o.Predict.TrackBoots)
	assert.Equal(t, []string{"seed=9"}, o.Predict.Overrides)
	for argv, want := range map[string]string{
		"--observations 3":         "--observations must be >= 4",
		"--guesses 0":              "--guesses must be >= 1",
		"--gap 2s":                 "need 0 < --gap < --interval",
		"--tracking-boots 1":       "--tracking-boots must be 0 (skip) or >= 2",
		"--attack-rate 0":          "--attack-rate must be a positive number",
		"--loads x":                "loads",
		"extra":                    "unknown command",
		"--observations 10 -j 0":   "-j must be >= 1",
		"--out ''":                 "",
		"--interval 10ms --gap 1s": "need 0 < --gap < --interval",
	} {
		parseOnly(t, NewCmdPredict, argv, want)
	}
}

// TestPredictEndToEnd runs the command on a small analysis and checks the
// files, the JSON and the exit codes of bad input.
func TestPredictEndToEnd(t *testing.T) {
	dir := t.TempDir()
	code, out, errOut := runCLI(t, "predict --allocators sequential,random-pick --loads 1 --observations 64 --tracking-boots 2 --out "+dir)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "observer (a) and spoofer (b)")
	assert.Contains(t, out, "tracker (c)")
	b, err := os.ReadFile(filepath.Join(dir, PredictFile))
	require.NoError(t, err)
	var rep predict.Report
	require.NoError(t, json.Unmarshal(b, &rep))
	require.Len(t, rep.Rows, 2)
	assert.Len(t, rep.Tracking, 3)
	for _, f := range []string{"predict-tradeoff.png", "predict-guesses.png"} {
		st, err := os.Stat(filepath.Join(dir, f))
		require.NoError(t, err, f)
		assert.Positive(t, st.Size())
	}
	code, _, errOut = runCLI(t, "predict --allocators nope --tracking-boots 0 --out "+dir)
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, `unknown allocator "nope"`)
	code, _, errOut = runCLI(t, "predict --host nobody --tracking-boots 0 --out "+dir)
	assert.Equal(t, 2, code)
	assert.Contains(t, errOut, `no host "nobody"`)
}
