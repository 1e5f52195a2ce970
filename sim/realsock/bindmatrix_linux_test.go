//go:build linux

package realsock

import (
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/portsim/portsim/alloc"
)

// TestBindMatrix runs the bind-conflict matrix on the kernel, in a private
// network namespace, and requires every row to agree with the model.
func TestBindMatrix(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a private network namespace (unshare CLONE_NEWNET)")
	}
	// The namespace belongs to this thread only: keep the test on it, and
	// if the original namespace cannot be restored leave it locked, so
	// that the runtime ends the thread with the test's goroutine.
	runtime.LockOSThread()
	orig, err := netns.Get()
	require.NoError(t, err)
	defer orig.Close()
	defer func() {
		if err := netns.Set(orig); err != nil {
			t.Errorf("restoring the original network namespace: %v", err)
			return
		}
		runtime.UnlockOSThread()
	}()
	ns, err := netns.New()
	if err != nil {
		t.Skipf("cannot create a network namespace (unshare CLONE_NEWNET): %v", err)
	}
	defer ns.Close()
	lo, err := netlink.LinkByName("lo")
	require.NoError(t, err)
	require.NoError(t, netlink.LinkSetUp(lo))

	fdsBefore := openFDs(t)
	rows, err := BindMatrix()
	require.NoError(t, err)
	assert.Equal(t, fdsBefore, openFDs(t), "BindMatrix left descriptors open")
	require.Len(t, rows, len(MatrixCases()))
	var disagree []string
	for _, r := range rows {
		if !r.Agree {
			disagree = append(disagree, r.String())
		}
	}
	t.Logf("%d cases, %d disagreements", len(rows), len(disagree))
	assert.Zero(t, len(disagree), "kernel and model disagree:\n%s", strings.Join(disagree, "\n"))
}

// openFDs counts the process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	return len(fds)
}

// TestBindMatrixCases checks the generator: the size of the full product,
// unique names, and that the model accepts every set-up. It needs neither
// root nor the kernel.
func TestBindMatrixCases(t *testing.T) {
	cases := MatrixCases()
	require.Len(t, cases, 4*4*6*(5*2-1))
	require.LessOrEqual(t, len(cases), MatrixPortCount)
	names := map[string]bool{}
	for i, c := range cases {
		require.False(t, names[c.Name], "duplicate case name %s", c.Name)
		names[c.Name] = true
		_, _, err := ModelBindCase(c, uint16(MatrixPortLow+i))
		require.NoError(t, err)
	}
}

// TestBindMatrixModelAnchors pins a few cells of the Linux column of
// os-semantics.md §7.2 on the model, so that the matrix's plumbing is
// checked without the kernel.
func TestBindMatrixModelAnchors(t *testing.T) {
	byName := map[string]MatrixCase{}
	for _, c := range MatrixCases() {
		byName[c.Name] = c
	}
	for name, want := range map[string]MatrixOutcome{
		// Row 2: a wildcard holder blocks a specific bind.
		"bound.none@0.0.0.0/bind.none@127.0.0.1": {alloc.EADDRINUSE, StepBind},
		// Row 6: SO_REUSEADDR does not share with a listener...
		"listen.ra@0.0.0.0/bind.ra@0.0.0.0": {alloc.EADDRINUSE, StepBind},
		// ... so of two SO_REUSEADDR sockets bound together only the first
		// may listen (§3.3 item 6).
		"listen-later.ra@127.0.0.1/listen.ra@127.0.0.1": {alloc.EADDRINUSE, StepListen},
		// Row 7: two non-listening SO_REUSEADDR sockets share.
		"bound.ra@127.0.0.1/listen.ra@127.0.0.1": {},
		// Row 8: SO_REUSEPORT on both, same uid.
		"listen.rp@127.0.0.1/listen.rp@127.0.0.1": {},
		// Rows 9 and 10: a TIME_WAIT child of a listener with and without
		// SO_REUSEADDR.
		"tw-accepted.ra@127.0.0.1/bind.ra@0.0.0.0":   {},
		"tw-accepted.none@127.0.0.1/bind.ra@0.0.0.0": {alloc.EADDRINUSE, StepBind},
		// Row 11: different specific addresses.
		"bound.none@127.0.0.1/listen.none@127.0.0.2": {},
	} {
		c, ok := byName[name]
		require.True(t, ok, "no case %s", name)
		got, rule, err := ModelBindCase(c, MatrixPortLow)
		require.NoError(t, err)
		assert.Equal(t, want, got, "%s: %s", name, rule)
	}
}
