package sim

// Time is virtual time in nanoseconds since the start of a run. Models use
// it instead of the wall clock, so a run is a pure function of its scenario
// and seed.
type Time int64

// Event is one scheduled occurrence: at T, of Kind, for ID (a connection
// slot, a workload or nothing); Kind and ID mean what the model using the
// Engine says they mean. Seq orders events that share a time: the
// one scheduled first runs first, which makes runs deterministic without
// relying on heap internals.
type Event struct {
	T    Time
	Seq  uint64
	ID   int32
	Kind uint8
}

// before is the engine's total order: by time, then by scheduling order.
func (a *Event) before(b *Event) bool {
	return a.T < b.T || (a.T == b.T && a.Seq < b.Seq)
}

// heap4 is a 4-ary min-heap of events by (T, Seq), specialised on the
// comparison so the hot loop makes no interface calls and no allocations
// (go-ecosystem.md §4: ~2.4x faster than container/heap; the Go runtime's
// timer heap in src/runtime/time.go is 4-ary for the same reason).
type heap4 struct {
	a []Event
}

func (h *heap4) len() int { return len(h.a) }

func (h *heap4) push(e Event) {
	h.a = append(h.a, e)
	i := len(h.a) - 1
	for i > 0 {
		p := (i - 1) / 4
		if !h.a[i].before(&h.a[p]) {
			break
		}
		h.a[i], h.a[p] = h.a[p], h.a[i]
		i = p
	}
}

// pop removes and returns the minimum; the heap must not be empty.
func (h *heap4) pop() Event {
	top := h.a[0]
	n := len(h.a) - 1
	last := h.a[n]
	h.a = h.a[:n]
	if n == 0 {
		return top
	}
	i := 0
	for {
		c := 4*i + 1
		if c >= n {
			break
		}
		m := c
		end := min(c+4, n)
		for j := c + 1; j < end; j++ {
			if h.a[j].before(&h.a[m]) {
				m = j
			}
		}
		if !h.a[m].before(&last) {
			break
		}
		h.a[i] = h.a[m]
		i = m
	}
	h.a[i] = last
	return top
}

// lane is a first-in-first-out queue of events that all have the same
// delay. Because the clock never goes back, events pushed with a fixed delay
// come out in (T, Seq) order, so a ring buffer replaces a heap: O(1) push
// and pop, and the heap stays small. Every TIME_WAIT of a host has the same
// length, so its expiries are a lane.
type lane struct {
	delay Time
	buf   []Event // len is a power of two
	head  int
	n     int
}

func (l *lane) push(e Event) {
	if l.n == len(l.buf) {
		l.grow()
	}
	l.buf[(l.head+l.n)&(len(l.buf)-1)] = e
	l.n++
}

func (l *lane) grow() {
	size := max(16, 2*len(l.buf))
	nb := make([]Event, size)
	for i := 0; i < l.n; i++ {
		nb[i] = l.buf[(l.head+i)&(len(l.buf)-1)]
	}
	l.buf, l.head = nb, 0
}

func (l *lane) front() *Event { return &l.buf[l.head] }

func (l *lane) pop() Event {
	e := l.buf[l.head]
	l.head = (l.head + 1) & (len(l.buf) - 1)
	l.n--
	return e
}

// LaneID names a lane of an Engine.
type LaneID int

// Engine is a deterministic discrete-Event scheduler: a virtual clock, a
// heap for events at arbitrary times and FIFO lanes for fixed delays. It
// runs on one goroutine; nothing in it reads the wall clock.
type Engine struct {
	now   Time
	seq   uint64
	heap  heap4
	lanes []lane
}

// Now returns the current virtual time.
func (e *Engine) Now() Time { return e.now }

// NewLane adds a lane whose events fire delay after they are scheduled and
// returns its id. delay must be >= 0.
func (e *Engine) NewLane(delay Time) LaneID {
	if delay < 0 {
		panic("sim: negative lane delay")
	}
	e.lanes = append(e.lanes, lane{delay: delay})
	return LaneID(len(e.lanes) - 1)
}

// At schedules an Event at absolute time t (not before Now).
func (e *Engine) At(t Time, kind uint8, id int32) {
	e.seq++
	e.heap.push(Event{T: t, Seq: e.seq, ID: id, Kind: kind})
}

// After schedules an Event on lane l, at Now plus the lane's delay.
func (e *Engine) After(l LaneID, kind uint8, id int32) {
	e.seq++
	ln := &e.lanes[l]
	ln.push(Event{T: e.now + ln.delay, Seq: e.seq, ID: id, Kind: kind})
}

// Next removes the earliest pending Event, advances the clock to it and
// returns it; ok is false when nothing is pending.
func (e *Engine) Next() (ev Event, ok bool) {
	var best *Event
	src := -1
	if e.heap.len() > 0 {
		best = &e.heap.a[0]
	}
	for i := range e.lanes {
		ln := &e.lanes[i]
		if ln.n == 0 {
			continue
		}
		if f := ln.front(); best == nil || f.before(best) {
			best, src = f, i
		}
	}
	if best == nil {
		return Event{}, false
	}
	if src < 0 {
		ev = e.heap.pop()
	} else {
		ev = e.lanes[src].pop()
	}
	e.now = ev.T
	return ev, true
}

// Pending returns the number of scheduled events.
func (e *Engine) Pending() int {
	n := e.heap.len()
	for i := range e.lanes {
		n += e.lanes[i].n
	}
	return n
}
