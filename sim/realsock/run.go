//go:build linux

package realsock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/portsim/portsim/alloc"
	"github.com/portsim/portsim/scenarios"
	"github.com/portsim/portsim/sim"
	"github.com/portsim/portsim/tcpstate"
)

// Run executes s on real sockets, one host at a time, and returns what the
// kernel did (Report.Result) together with the scenario the simulator must
// run to be compared with it: s itself in a private namespace; in the
// host-loopback fallback, s with the settings that could not be applied
// replaced by the machine's own (see Effective). s must pass Check.
// Errors: Check's, ErrNeedsLinux elsewhere, a refusal when neither a
// namespace nor the fallback is possible, and any failure to set up the
// run; a run cut short by ctx returns ctx's error.
func Run(ctx context.Context, s *scenarios.Scenario, opt Options) (*Report, *scenarios.Scenario, error) {
	if err := Check(s, opt.MaxDuration); err != nil {
		return nil, nil, err
	}
	iso := opt.Isolation
	if iso == Auto {
		iso = HostLoopback
		if os.Geteuid() == 0 {
			iso = Namespace
		}
	}
	unlock, err := lockMachine(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer unlock()
	var reps []*Report
	model := s
	switch iso {
	case Namespace:
		for h := range s.Hosts {
			reply, err := spawn(ctx, childSpec{Scenario: strings.TrimPrefix(s.File, "builtin:"), Overrides: s.Overrides, Host: h})
			if err != nil {
				return nil, nil, fmt.Errorf("host %s: %w", s.Hosts[h].Name, err)
			}
			reps = append(reps, reply.Report)
		}
	case HostLoopback:
		eff, notes, err := Effective(s, sysctlDir)
		if err != nil {
			return nil, nil, err
		}
		model = eff
		for h := range s.Hosts {
			rep, err := runHost(ctx, s, h, true)
			if err != nil {
				return nil, nil, fmt.Errorf("host %s: %w", s.Hosts[h].Name, err)
			}
			rep.Notes = append(slices.Clone(notes), rep.Notes...)
			reps = append(reps, rep)
		}
	}
	rep := merge(reps)
	rep.Isolation = iso
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		rep.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	return rep, model, nil
}

// Effective returns the scenario the simulator runs to match a
// host-loopback run, which cannot write sysctls: every host takes the
// machine's settings (read from dir, normally /proc/sys/net/ipv4) except
// the ephemeral range, which each socket narrows with IP_LOCAL_PORT_RANGE
// to the intersection of the scenario's range and the machine's
// (inet_sk_get_local_port_range, Linux 6.3); connect() workloads become the
// port-range path, whose allocator has no parity split (Linux 6.8). The
// notes say what differs from s. Bind and UDP paths are refused: the
// simulator does not model a per-socket range for them.
func Effective(s *scenarios.Scenario, dir string) (*scenarios.Scenario, []string, error) {
	eff := *s
	eff.Hosts = slices.Clone(s.Hosts)
	eff.Workloads = slices.Clone(s.Workloads)
	var notes []string
	for i := range eff.Hosts {
		h := &eff.Hosts[i]
		mine, err := tcpstate.ReadHost(dir)
		if err != nil {
			return nil, nil, err
		}
		want := profileSysctls(&h.Profile)
		have := profileSysctls(&mine)
		for j := range want {
			if want[j][0] != "ip_local_port_range" && norm(want[j][1]) != norm(have[j][1]) {
				notes = append(notes, fmt.Sprintf("host %s: net.ipv4.%s is %q on this machine, not %q: not applied (no private namespace without root); the simulator uses the machine's value", h.Name, want[j][0], have[j][1], want[j][1]))
			}
		}
		lo, hi := max(h.Profile.PortRange.Low, mine.PortRange.Low), min(h.Profile.PortRange.High, mine.PortRange.High)
		if lo > hi {
			return nil, nil, fmt.Errorf("host %s: the range %v does not meet this machine's ip_local_port_range %v, and IP_LOCAL_PORT_RANGE can only narrow it", h.Name, h.Profile.PortRange, mine.PortRange)
		}
		r := alloc.Range{Low: lo, High: hi}
		if r != h.Profile.PortRange {
			notes = append(notes, fmt.Sprintf("host %s: range %v narrowed to %v, its intersection with this machine's ip_local_port_range", h.Name, h.Profile.PortRange, r))
		}
		mine.SetPortRange(r)
		h.Profile = mine
	}
	for i := range eff.Workloads {
		w := &eff.Workloads[i]
		switch w.Socket {
		case scenarios.Connect:
			w.Socket, w.PortRange = scenarios.PortRange, eff.Hosts[w.From].Profile.PortRange
		case scenarios.PortRange:
		default:
			return nil, nil, fmt.Errorf("workload %s: the %s path needs a private network namespace (run as root): without one only connect() can be narrowed to the scenario's range", w.Name, w.Socket)
		}
	}
	return &eff, notes, nil
}

// merge joins the reports of single-host runs. Each started from the whole
// scenario's skeleton and filled only its own host, so the domains and
// hosts are taken from the report that ran them, and the rows are summed.
func merge(reps []*Report) *Report {
	out := reps[0]
	res := out.Result
	sum := &res.Summary
	for h, rep := range reps {
		r := rep.Result
		if h > 0 {
			out.Notes = append(out.Notes, rep.Notes...)
			out.MaxLag = max(out.MaxLag, rep.MaxLag)
			res.Ports = append(res.Ports, r.Ports...)
			for i := range res.Series.Rows {
				if i < len(r.Series.Rows) {
					addRow(&res.Series.Rows[i], &r.Series.Rows[i])
				}
			}
		}
		name := sum.Hosts[h].Name
		sum.Hosts[h] = r.Summary.Hosts[h]
		for i := range sum.Domains {
			if sum.Domains[i].Host == name {
				sum.Domains[i] = r.Summary.Domains[i]
				if i == sum.MostLoaded {
					res.Series.Domain = r.Series.Domain
				}
			}
		}
	}
	slices.SortStableFunc(res.Ports, func(a, b sim.PortChoice) int {
		switch {
		case a.TS < b.TS:
			return -1
		case a.TS > b.TS:
			return 1
		}
		return 0
	})
	if len(res.Ports) > sim.MaxPortChoices {
		res.Ports = res.Ports[:sim.MaxPortChoices]
	}
	sum.Totals = sim.Totals{Failures: map[string]uint64{}}
	for i := range sum.Hosts {
		sum.Totals.Add(&sum.Hosts[i].Totals)
	}
	sum.PeakTimeWait, sum.PeakPortsInUse = 0, 0
	for _, row := range res.Series.Rows {
		sum.PeakTimeWait = max(sum.PeakTimeWait, row.TimeWait)
		sum.PeakPortsInUse = max(sum.PeakPortsInUse, row.PortsInUse)
	}
	return out
}

// addRow adds src's counts to dst (same sample time).
func addRow(dst, src *sim.Row) {
	dst.Attempts += src.Attempts
	dst.Successes += src.Successes
	dst.Failures += src.Failures
	dst.SynSent += src.SynSent
	dst.Established += src.Established
	dst.Closing += src.Closing
	dst.TimeWait += src.TimeWait
	dst.PortsInUse += src.PortsInUse
}

// RunBindMatrix runs the bind-conflict matrix (BindMatrix) in a child
// process in a fresh network namespace, which needs root.
func RunBindMatrix(ctx context.Context) ([]MatrixRow, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("the bind-conflict matrix needs root, for a private network namespace")
	}
	unlock, err := lockMachine(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	reply, err := spawn(ctx, childSpec{Matrix: true, Host: -1})
	if err != nil {
		return nil, err
	}
	return reply.Matrix, nil
}

// lockMachine takes a machine-wide lock (flock on a file in the temporary
// directory) for the length of a real run, waiting for another portsim
// process's run to end. Runs must not overlap even in separate namespaces:
// Linux keeps one table_perturb for the whole machine (a static array in
// inet_hashtables.c, indexed by a hash that does not include the
// namespace), so the connect()s of one run move the next port of another,
// and the two would compete for the CPU as well.
func lockMachine(ctx context.Context) (func(), error) {
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "portsim-realsock.lock"), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, fmt.Errorf("the real-run lock: %w", err)
	}
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() }, nil
		}
		if err != unix.EWOULDBLOCK && err != unix.EINTR {
			f.Close()
			return nil, fmt.Errorf("the real-run lock: %w", err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
