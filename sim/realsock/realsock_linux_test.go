//go:build linux

package realsock

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portsim/portsim/scenarios"
	"github.com/portsim/portsim/sim"
	"github.com/portsim/portsim/sim/crosscheck"
)

// TestMain serves the child processes Run starts: they are this test
// binary, started again in a private network namespace.
func TestMain(m *testing.M) {
	ServeChild()
	os.Exit(m.Run())
}

// needNamespace skips the test where a private network namespace cannot
// be made: not root, or unshare(CLONE_NEWNET) refused (a container without
// CAP_SYS_ADMIN).
func needNamespace(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for a private network namespace (CLONE_NEWNET); CI runs as root")
	}
	if err := exec.Command("unshare", "-n", "true").Run(); err != nil {
		t.Skipf("cannot make a network namespace here (unshare -n: %v)", err)
	}
}

func readSysctl(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(sysctlDir, name))
	require.NoError(t, err)
	return string(b)
}

// TestRunNamespace runs constant-rate exhaustion in a private namespace:
// 64 ports, 200 attempts/s for 2 s, tcp_tw_reuse=0, so exactly 64
// successes and 336 EADDRNOTAVAIL; the machine's own sysctls are untouched.
func TestRunNamespace(t *testing.T) {
	needNamespace(t)
	before := readSysctl(t, "ip_local_port_range")
	beforeReuse := readSysctl(t, "tcp_tw_reuse")
	s, err := scenarios.Load("crosscheck/exhaust-one", nil)
	require.NoError(t, err)
	rep, model, err := Run(context.Background(), s, Options{Isolation: Namespace})
	require.NoError(t, err)
	assert.Same(t, s, model, "in a namespace the simulator runs the scenario itself")
	assert.Equal(t, Namespace, rep.Isolation)
	assert.Empty(t, rep.Notes)
	sum := rep.Result.Summary
	assert.Equal(t, uint64(400), sum.Attempts)
	assert.Equal(t, uint64(64), sum.Successes)
	assert.Equal(t, map[string]uint64{"EADDRNOTAVAIL": 336}, sum.Failures)
	require.NotNil(t, sum.FirstFailureS)
	assert.InDelta(t, 0.32, *sum.FirstFailureS, 1e-9, "attempt 65 of a 200/s process")
	require.Len(t, rep.Result.Series.Rows, 8)
	assert.Equal(t, 64, rep.Result.Series.Rows[7].TimeWait, "every port in TIME_WAIT at the end")
	assert.Equal(t, before, readSysctl(t, "ip_local_port_range"), "the host's range must not change")
	assert.Equal(t, beforeReuse, readSysctl(t, "tcp_tw_reuse"), "the host's tcp_tw_reuse must not change")
}

// TestRunSeveralHosts runs each host in its own namespace (tcp_tw_reuse
// differs between them) and merges the results.
func TestRunSeveralHosts(t *testing.T) {
	needNamespace(t)
	s, err := scenarios.Load("tw-reuse-loopback", []string{"duration=2s", "sample=500ms",
		"workloads.0.arrival.rate=100", "workloads.1.arrival.rate=100",
		`hosts.0.sysctls.net.ipv4.ip_local_port_range="40000 40063"`,
		`hosts.1.sysctls.net.ipv4.ip_local_port_range="40000 40063"`})
	require.NoError(t, err)
	rep, model, err := Run(context.Background(), s, Options{})
	require.NoError(t, err)
	res, err := sim.Run(model)
	require.NoError(t, err)
	require.Len(t, rep.Result.Summary.Hosts, 2)
	assert.Equal(t, uint64(200), rep.Result.Summary.Hosts[0].Attempts)
	assert.Equal(t, uint64(200), rep.Result.Summary.Hosts[1].Attempts)
	ms, err := crosscheck.Compare(model, rep.Result, res, rep.MaxLag)
	require.NoError(t, err)
	for _, m := range ms {
		assert.True(t, m.Agree, "%s: kernel %s, simulator %s (%s)", m.Name, m.Kernel, m.Model, m.Tolerance)
	}
}

// TestRunHostLoopback is the fallback without a namespace: the machine's
// loopback, each socket's range narrowed with IP_LOCAL_PORT_RANGE, the
// machine's other settings in the simulator's scenario.
func TestRunHostLoopback(t *testing.T) {
	if _, err := os.Stat(filepath.Join(sysctlDir, "ip_local_port_range")); err != nil {
		t.Skip("no /proc/sys/net/ipv4 here")
	}
	s, err := scenarios.Load("crosscheck/exhaust-one", nil)
	require.NoError(t, err)
	rep, model, err := Run(context.Background(), s, Options{Isolation: HostLoopback})
	if errors.Is(err, ErrLeftovers) {
		t.Skipf("an earlier run's sockets are still in TIME_WAIT: %v", err)
	}
	require.NoError(t, err)
	assert.Equal(t, HostLoopback, rep.Isolation)
	assert.Equal(t, scenarios.PortRange, model.Workloads[0].Socket, "connect() runs with IP_LOCAL_PORT_RANGE")
	res, err := sim.Run(model)
	require.NoError(t, err)
	ms, err := crosscheck.Compare(model, rep.Result, res, rep.MaxLag)
	require.NoError(t, err)
	for _, m := range ms {
		assert.True(t, m.Agree, "%s: kernel %s, simulator %s (%s)", m.Name, m.Kernel, m.Model, m.Tolerance)
	}
}

// TestServeRefusesParentNamespace: a child that is not in a namespace of
// its own must not touch a sysctl.
func TestServeRefusesParentNamespace(t *testing.T) {
	ns, err := netnsInode()
	require.NoError(t, err)
	_, _, err = serve(&childSpec{Scenario: "crosscheck/exhaust-one", ParentNetNS: ns})
	require.ErrorContains(t, err, "refusing to touch sysctls")
}

// TestEffective builds the fallback's scenario from a machine whose
// settings differ from the scenario's.
func TestEffective(t *testing.T) {
	dir := t.TempDir()
	for name, v := range map[string]string{
		"ip_local_port_range":     "40032\t60999",
		"ip_local_reserved_ports": "",
		"tcp_tw_reuse":            "2",
		"tcp_tw_reuse_delay":      "1000",
		"tcp_timestamps":          "1",
		"tcp_fin_timeout":         "60",
		"tcp_max_tw_buckets":      "262144",
		"ip_autobind_reuse":       "0",
		"tcp_syn_retries":         "6",
	} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(v+"\n"), 0o644))
	}
	s, err := scenarios.Load("crosscheck/exhaust-one", nil)
	require.NoError(t, err)
	eff, notes, err := Effective(s, dir)
	require.NoError(t, err)
	h := eff.Hosts[0].Profile
	assert.Equal(t, "40032-40063", h.PortRange.String(), "the intersection of the two ranges")
	assert.Equal(t, 2, h.TCPTwReuse, "the machine's tcp_tw_reuse, which could not be applied")
	assert.Equal(t, 262144, h.TCPMaxTwBuckets)
	assert.Equal(t, scenarios.PortRange, eff.Workloads[0].Socket)
	assert.Equal(t, h.PortRange, eff.Workloads[0].PortRange)
	assert.Equal(t, scenarios.Connect, s.Workloads[0].Socket, "the scenario itself is not changed")
	assert.Len(t, notes, 3, "tcp_tw_reuse, tcp_max_tw_buckets and the narrowed range: %q", notes)

	b, err := scenarios.Load("crosscheck/bind-connect", nil)
	require.NoError(t, err)
	_, _, err = Effective(b, dir)
	require.ErrorContains(t, err, "needs a private network namespace")
}
