//go:build linux

package realsock

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/portsim/portsim/scenarios"
	"github.com/portsim/portsim/tcpstate"
)

// ServeChild turns the process into a realsock child when Run started it
// (the PORTSIM_REALSOCK_CHILD environment variable is set): it does the
// work, writes the reply to standard output and exits. Otherwise it returns
// at once. Call it first in main, and in TestMain of any test that calls
// Run, because the child is the same executable (/proc/self/exe).
func ServeChild() {
	v, ok := os.LookupEnv(childEnv)
	if !ok {
		return
	}
	var spec childSpec
	reply := childReply{}
	if err := json.Unmarshal([]byte(v), &spec); err != nil {
		reply.Err = "bad child spec: " + err.Error()
	} else if rep, m, err := serve(&spec); err != nil {
		reply.Err = err.Error()
	} else {
		reply.Report, reply.Matrix = rep, m
	}
	json.NewEncoder(os.Stdout).Encode(&reply)
	if reply.Err != "" {
		os.Exit(1)
	}
	os.Exit(0)
}

// serve is the child's work, inside its fresh network namespace.
func serve(spec *childSpec) (*Report, []MatrixRow, error) {
	ns, err := netnsInode()
	if err != nil {
		return nil, nil, err
	}
	if ns == spec.ParentNetNS {
		return nil, nil, errors.New("the child is still in its parent's network namespace; refusing to touch sysctls")
	}
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return nil, nil, fmt.Errorf("loopback: %w", err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		return nil, nil, fmt.Errorf("bringing loopback up: %w", err)
	}
	if spec.Matrix {
		m, err := BindMatrix()
		return nil, m, err
	}
	s, err := scenarios.Load(spec.Scenario, spec.Overrides)
	if err != nil {
		return nil, nil, err
	}
	if spec.Host < 0 || spec.Host >= len(s.Hosts) {
		return nil, nil, fmt.Errorf("host %d out of range", spec.Host)
	}
	notes, err := writeSysctls(&s.Hosts[spec.Host].Profile)
	if err != nil {
		return nil, nil, err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, s.Duration+30*time.Second)
	defer cancel()
	rep, err := runHost(ctx, s, spec.Host, false)
	if err != nil {
		return nil, nil, err
	}
	rep.Isolation = Namespace
	rep.Notes = append(notes, rep.Notes...)
	return rep, nil, nil
}

// netnsInode is the inode of the calling process's network namespace.
func netnsInode() (uint64, error) {
	var st syscall.Stat_t
	if err := syscall.Stat("/proc/self/ns/net", &st); err != nil {
		return 0, fmt.Errorf("reading the network namespace: %w", err)
	}
	return st.Ino, nil
}

// sysctlDir is where the namespace's IPv4 sysctls are: /proc/sys/net shows
// the network namespace of the process that opens it.
const sysctlDir = "/proc/sys/net/ipv4"

// profileSysctls renders p as the values its net.ipv4 sysctls take, in the
// order they are written. tcp_max_tw_buckets is left out for a profile
// without a cap (no Linux preset has none).
func profileSysctls(p *tcpstate.Profile) [][2]string {
	b := func(v bool) string {
		if v {
			return "1"
		}
		return "0"
	}
	kv := [][2]string{
		{"ip_local_port_range", fmt.Sprintf("%d %d", p.PortRange.Low, p.PortRange.High)},
		{"ip_local_reserved_ports", p.Reserved.String()},
		{"tcp_tw_reuse", strconv.Itoa(p.TCPTwReuse)},
		{"tcp_tw_reuse_delay", strconv.Itoa(int(p.TCPTwReuseDelay / time.Millisecond))},
		{"tcp_timestamps", b(p.TCPTimestamps)},
		{"ip_autobind_reuse", b(p.AutobindReuse)},
		{"tcp_fin_timeout", strconv.Itoa(int(p.TCPFinTimeout / time.Second))},
		{"ip_unprivileged_port_start", strconv.Itoa(p.UnprivilegedPortStart)},
	}
	if p.TCPMaxTwBuckets != tcpstate.NoTwCap {
		kv = append(kv, [2]string{"tcp_max_tw_buckets", strconv.Itoa(p.TCPMaxTwBuckets)})
	}
	return kv
}

// writeSysctls writes p's settings to this namespace and reads each back.
// A sysctl this kernel does not have is a note when the profile asks for
// what such a kernel does anyway, an error otherwise.
func writeSysctls(p *tcpstate.Profile) ([]string, error) {
	var notes []string
	for _, kv := range profileSysctls(p) {
		path := filepath.Join(sysctlDir, kv[0])
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			notes = append(notes, fmt.Sprintf("net.ipv4.%s does not exist in this kernel; not applied", kv[0]))
			continue
		}
		if err := os.WriteFile(path, []byte(kv[1]+"\n"), 0o644); err != nil {
			return notes, fmt.Errorf("writing net.ipv4.%s = %q in the private namespace: %w", kv[0], kv[1], err)
		}
		got, err := os.ReadFile(path)
		if err != nil {
			return notes, err
		}
		if norm(string(got)) != norm(kv[1]) {
			return notes, fmt.Errorf("net.ipv4.%s reads %q after writing %q", kv[0], strings.TrimSpace(string(got)), kv[1])
		}
	}
	return notes, nil
}

// norm folds the tabs and spaces of a sysctl's text.
func norm(s string) string { return strings.Join(strings.Fields(s), " ") }

// spawn runs spec in a child process in a fresh network namespace and
// returns its reply. The child dies with the parent (PR_SET_PDEATHSIG), is
// sent SIGTERM when ctx ends, and is killed 5 s later.
func spawn(ctx context.Context, spec childSpec) (*childReply, error) {
	ns, err := netnsInode()
	if err != nil {
		return nil, err
	}
	spec.ParentNetNS = ns
	b, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	// The child is this executable. "-test.run=^$" makes a test binary
	// whose TestMain forgot ServeChild run no test instead of all of them;
	// ServeChild exits before any flag is parsed.
	cmd := exec.CommandContext(ctx, "/proc/self/exe", "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(b))
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	runErr := cmd.Run()
	var reply childReply
	if err := json.Unmarshal(out.Bytes(), &reply); err != nil {
		if runErr != nil {
			return nil, fmt.Errorf("starting the child in a new network namespace: %v %s", runErr, strings.TrimSpace(stderr.String()))
		}
		return nil, fmt.Errorf("the child wrote no reply (does main call realsock.ServeChild first?): %s", strings.TrimSpace(stderr.String()))
	}
	if reply.Err != "" {
		return nil, errors.New(reply.Err)
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return &reply, nil
}
