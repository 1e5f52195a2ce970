package sim

import (
	"time"

	"github.com/portsim/portsim/alloc"
	"github.com/portsim/portsim/scenarios"
)

// Connect is one connect() (or UDP autobind) attempt as an observer sees it:
// when, which workload toward which of its destinations, and the local port
// it got.
type Connect struct {
	// At is the virtual time of the call.
	At time.Duration
	// Workload indexes Scenario.Workloads; Dest indexes that workload's To.
	Workload, Dest int
	// Port is the local port chosen, 0 when the call failed.
	Port uint16
	// Err is alloc.OK, or the errno of a failed allocation.
	Err alloc.Errno
}

// Observe runs s like Run and calls fn for every connect() attempt, in the
// order the run makes them, with the port the allocator chose: the raw
// material of the security analysis (sim/predict), which needs every port a
// victim's allocator hands out, not the first MaxPortChoices. Requests
// served on an idle pooled connection make no call. fn must not retain the
// model's state; it runs on the calling goroutine inside the event loop, so
// a run that does not observe pays one nil check per connect().
func Observe(s *scenarios.Scenario, fn func(Connect)) (*Result, error) {
	m, err := newModel(s)
	if err != nil {
		return nil, err
	}
	m.obs = fn
	m.loop()
	return m.result(), nil
}
