//go:build linux

package realsock

import (
	"context"
	"encoding/json"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/portsim/portsim/scenarios"
	"github.com/portsim/portsim/sim"
	"github.com/portsim/portsim/sim/crosscheck"
)

func TestMain(m *testing.M) {
	ServeChild()
	os.Exit(m.Run())
}

func TestDriver(t *testing.T) {
	p := os.Getenv("XC")
	if p == "" {
		t.Skip()
	}
	s, err := scenarios.Load(p, nil)
	require.NoError(t, err)
	rep, model, err := Run(context.Background(), s, Options{})
	require.NoError(t, err)
	mres, err := sim.Run(model)
	require.NoError(t, err)
	b, _ := json.MarshalIndent(rep.Result.Summary.Totals, "", " ")
	t.Logf("kernel %s lag %v notes %v", b, rep.MaxLag, rep.Notes)
	b, _ = json.MarshalIndent(mres.Summary.Totals, "", " ")
	t.Logf("sim %s", b)
	for i := range rep.Result.Series.Rows {
		t.Logf("k %+v\n  s %+v", rep.Result.Series.Rows[i], mres.Series.Rows[i])
	}
	n := min(240, len(rep.Result.Ports), len(mres.Ports))
	kp, sp := []uint16{}, []uint16{}
	for i := 0; i < n; i++ {
		kp = append(kp, rep.Result.Ports[i].Port)
		sp = append(sp, mres.Ports[i].Port)
	}
	t.Logf("kernel ports %v\nsim ports %v", kp, sp)
}

func TestSuiteDriver(t *testing.T) {
	if os.Getenv("XCSUITE") == "" {
		t.Skip()
	}
	for _, in := range scenarios.Suite() {
		s, err := scenarios.Load(in.Name, nil)
		require.NoError(t, err, in.Name)
		rep, model, err := Run(context.Background(), s, Options{})
		require.NoError(t, err, in.Name)
		mres, err := sim.Run(model)
		require.NoError(t, err)
		ms, err := crosscheck.Compare(model, rep.Result, mres, rep.MaxLag)
		require.NoError(t, err)
		for _, m := range ms {
			if !m.Agree || os.Getenv("XCV") != "" {
				t.Logf("%s: %s: kernel %s sim %s tol %s %s", in.Name, m.Name, m.Kernel, m.Model, m.Tolerance, m.Verdict())
			}
		}
		t.Logf("%s done lag %v notes %v", in.Name, rep.MaxLag, rep.Notes)
	}
}
