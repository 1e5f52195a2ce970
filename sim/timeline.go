package sim

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/portsim/portsim/scenarios"
)

// CloseSide is how one connection ends.
type CloseSide uint8

// Close sides, drawn per connection from the workload's CloseMix.
const (
	CloseClient CloseSide = iota // the client closes first: active close, client TIME_WAIT
	CloseServer                  // the server closes first: passive close, no client TIME_WAIT
	CloseRST                     // SO_LINGER 0: RST, no TIME_WAIT
)

// String names the side as the scenario format does.
func (c CloseSide) String() string {
	switch c {
	case CloseClient:
		return "client"
	case CloseServer:
		return "server"
	default:
		return "rst"
	}
}

// draws are one workload's random draws, each on its own stream seeded from
// the scenario seed and the workload's name: arrival times, holding times
// and close sides.
type draws struct {
	arr      *arrivals
	hold     *holdSampler
	closeRNG *rand.Rand
	// cumulative close-side probabilities: client below pClient, server
	// below pServer, RST above.
	pClient, pServer float64
	pure             CloseSide // the only side when no draw is needed
	mixed            bool
}

func newDraws(seed uint64, w *scenarios.Workload) draws {
	d := draws{
		arr:      newArrivals(w, stream(seed, "workload/"+w.Name+"/arrival")),
		hold:     newHoldSampler(w.Hold, stream(seed, "workload/"+w.Name+"/hold")),
		closeRNG: rand.New(stream(seed, "workload/"+w.Name+"/close")),
		pClient:  w.Close.Client,
		pServer:  w.Close.Client + w.Close.Server,
	}
	switch {
	case w.Socket.UDP():
		// close() on a UDP socket frees its port at once.
		d.pure = CloseRST
	case w.Close.Client == 1:
		d.pure = CloseClient
	case w.Close.Server == 1:
		d.pure = CloseServer
	case w.Close.RST == 1:
		d.pure = CloseRST
	default:
		d.mixed = true
	}
	return d
}

// side draws how the next connection to close ends.
func (d *draws) side() CloseSide {
	if !d.mixed {
		return d.pure
	}
	switch u := d.closeRNG.Float64(); {
	case u < d.pClient:
		return CloseClient
	case u < d.pServer:
		return CloseServer
	default:
		return CloseRST
	}
}

// Timeline replays the draws Run makes for one workload, on the same random
// streams, so that a backend running in real time (sim/realsock) follows
// the same schedule as the simulator: the same attempt times, holding times
// and close sides. Run draws a holding time when a connection is
// established and a close side when it closes; a caller that does the same,
// in the same order, gets the same values.
type Timeline struct {
	d draws
}

// NewTimeline returns the timeline of s.Workloads[i]; it fails when i is out
// of range.
func NewTimeline(s *scenarios.Scenario, i int) (*Timeline, error) {
	if i < 0 || i >= len(s.Workloads) {
		return nil, fmt.Errorf("sim: workload %d out of range (the scenario has %d)", i, len(s.Workloads))
	}
	return &Timeline{d: newDraws(s.Seed, &s.Workloads[i])}, nil
}

// NextArrival returns the time of the next connection attempt since the
// start of the run, or false when the workload has no more.
func (t *Timeline) NextArrival() (time.Duration, bool) {
	at, ok := t.d.arr.next()
	return time.Duration(at), ok
}

// Hold draws how long the next established connection stays ESTABLISHED.
func (t *Timeline) Hold() time.Duration { return time.Duration(t.d.hold.draw()) }

// Close draws how the next connection to close ends.
func (t *Timeline) Close() CloseSide { return t.d.side() }

// Skeleton returns what a run of s starts from, without running it: the
// Summary's static part (scenario, hosts with their settings, the conflict
// domains with their analytic figures, the most loaded domain) with every
// counter zero and no rows; and for each workload, for each of its
// destinations in order, the index in Summary.Domains of the conflict
// domain its connections fall in. A backend that observes a real run
// (sim/realsock) fills in the counters, so its Result lines up with Run's
// domain by domain. Errors are those of Run.
func Skeleton(s *scenarios.Scenario) (*Result, [][]int, error) {
	m, err := newModel(s)
	if err != nil {
		return nil, nil, err
	}
	res := m.result()
	res.Summary.Events = 0
	res.Summary.Bursts = nil // measured on the series, which the backend fills
	for i := range res.Summary.Domains {
		res.Summary.Domains[i].Steady = nil
	}
	of := make([][]int, len(m.works))
	for i, wr := range m.works {
		of[i] = make([]int, len(wr.doms))
		for j, gi := range wr.doms {
			of[i][j] = int(gi)
		}
	}
	return res, of, nil
}
