// Package sim runs portsim scenarios in virtual time.
//
// A run is one goroutine processing events in (time, sequence) order: a
// 4-ary heap holds events at arbitrary times (arrivals, the ends of random
// holding times) and first-in-first-out lanes hold events with a fixed delay
// (one RTT in SYN_SENT, FIN_WAIT_1 or LAST_ACK; TIME_WAIT; fixed holding
// times), which come out in order without a heap. The model is
// connection-level: a connection is a 16-byte slot in a slab, its port a bit
// in its conflict domain's bitset (tcpstate.Table), its state a counter. Each
// workload and host draws from its own PCG stream derived from the scenario
// seed, so the same scenario and seed give the same Result, byte for byte,
// whatever GOMAXPROCS is.
//
// The client lifecycle follows RFC 9293 §3.3.2: connect() allocates a port
// and enters SYN_SENT; one RTT later ESTABLISHED; after the holding time the
// client closes (FIN_WAIT_1 for one RTT, FIN_WAIT_2, then TIME_WAIT for the
// profile's length), or the server closes (CLOSE_WAIT, LAST_ACK for one RTT,
// CLOSED: the TIME_WAIT is the server's), or an RST (SO_LINGER 0) closes it
// at once.
package sim
