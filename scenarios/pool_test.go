package scenarios

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pool is a workload's keep-alive pool size: a whole number >= 0, absent
// meaning 0, copied to every instance of a host with count, refused on a
// UDP socket path; --set reaches it like any other field.
func TestPool(t *testing.T) {
	const stop = "    stop: 60s\n"
	for _, tc := range []struct {
		name string
		src  string
		set  []string
		want int    // Workload.Pool
		err  string // the whole error, when Parse must fail
	}{
		{name: "absent", src: base, want: 0},
		{name: "zero", src: edit(t, stop, stop+"    pool: 0\n"), want: 0},
		{name: "eight", src: edit(t, stop, stop+"    pool: 8\n"), want: 8},
		{name: "whole float", src: edit(t, stop, stop+"    pool: 8.0\n"), want: 8},
		{name: "override", src: base, set: []string{"workloads.0.pool=32"}, want: 32},
		{name: "override replaces", src: edit(t, stop, stop+"    pool: 8\n"), set: []string{"workloads.0.pool=0"}, want: 0},
		{name: "zero with UDP", src: edit(t, stop, stop+"    socket: udp-connect\n    pool: 0\n"), want: 0},
		{name: "negative", src: edit(t, stop, stop+"    pool: -1\n"),
			err: `t.yaml:17:11: workloads[0].pool: must be a whole number from 0 to 2147483647, got -1`},
		{name: "fraction", src: edit(t, stop, stop+"    pool: 2.5\n"),
			err: `t.yaml:17:11: workloads[0].pool: must be a whole number from 0 to 2147483647, got 2.5`},
		{name: "not a number", src: edit(t, stop, stop+"    pool: eight\n"),
			err: `t.yaml:17:11: workloads[0].pool: must be a number, got "eight"`},
		{name: "too big", src: edit(t, stop, stop+"    pool: 4294967296\n"),
			err: `t.yaml:17:11: workloads[0].pool: must be a whole number from 0 to 2147483647, got 4.294967296e+09`},
		{name: "UDP", src: edit(t, stop, stop+"    socket: udp-sendto\n    pool: 4\n"),
			err: `t.yaml:18:11: workloads[0].pool: a keep-alive pool reuses TCP connections; socket: udp-sendto has none (remove pool or use a TCP socket path)`},
		{name: "bad override", src: base, set: []string{"workloads.0.pool=-3"},
			err: `--set: workloads[0].pool: must be a whole number from 0 to 2147483647, got -3`},
		{name: "override onto UDP", src: edit(t, stop, stop+"    socket: udp-connect\n"), set: []string{"workloads.0.pool=2"},
			err: `--set: workloads[0].pool: a keep-alive pool reuses TCP connections; socket: udp-connect has none (remove pool or use a TCP socket path)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse([]byte(tc.src), "t.yaml", tc.set)
			if tc.err != "" {
				var e *Error
				require.ErrorAs(t, err, &e)
				assert.Equal(t, tc.err, err.Error())
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, s.Workloads[0].Pool)
		})
	}
}

// Every instance of a host with count runs the workload with its pool.
func TestPoolCountedHost(t *testing.T) {
	src := edit(t, "    os: linux\n", "    os: linux\n    count: 3\n")
	s, err := Parse([]byte(src), "t.yaml", []string{"workloads.0.pool=5"})
	require.NoError(t, err)
	require.Len(t, s.Workloads, 3)
	for _, w := range s.Workloads {
		assert.Equal(t, 5, w.Pool, w.Name)
	}
}
