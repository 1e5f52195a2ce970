// Package analytic holds the closed-form models portsim compares its runs
// against: Erlang B blocking, the rate a pool sustains at a target blocking,
// Little's law, the fluid limit and the first failure of a constant-rate
// burst. It is pure arithmetic: no I/O, no randomness.
//
// Units throughout: rates are connections per second, times are
// time.Duration, pools are counts of ports, loads are erlangs (rate ×
// mean holding time in seconds).
//
// A port pool is an Erlang loss system (M/G/N/N) when the N servers are the
// ports of one conflict domain, the holding time is connection lifetime
// plus TIME_WAIT on the active closer, arrivals are Poisson and independent
// of the pool, refused connects are dropped and the allocator finds any free
// port (validation-and-security.md §2.2).
package analytic

import (
	"math"
	"time"
)

// ErlangB returns the Erlang B blocking probability B(N, A): the fraction
// of attempts refused by a loss system of N servers (ports) offered A
// erlangs (arrival rate in connections per second × mean holding time in
// seconds). The answer is insensitive to the holding-time distribution.
//
// Source: A. K. Erlang (1917); computed by the stable recursion
// B(0) = 1, B(n) = A·B(n-1) / (n + A·B(n-1)) (Octave queueing erlangb;
// validation-and-security.md §2.1). Every step is a contraction, so the
// recursion neither overflows nor loses precision; it takes O(N) time
// (about 0.2 ms for N = 28232). Results below the smallest float64
// underflow to 0, which is the correctly rounded answer.
//
// B(0, A) = 1 and B(N, 0) = 0 for N > 0; B(N, +Inf) = 1. It returns NaN
// when servers < 0, erlangs < 0 or erlangs is NaN.
func ErlangB(servers int, erlangs float64) float64 {
	switch {
	case servers < 0 || erlangs < 0 || math.IsNaN(erlangs):
		return math.NaN()
	case servers == 0 || math.IsInf(erlangs, 1):
		return 1
	}
	b := 1.0
	for n := 1; n <= servers; n++ {
		ab := erlangs * b
		b = ab / (float64(n) + ab)
		if b == 0 {
			// Underflowed: every later step keeps 0, so stop. A lightly
			// loaded domain (a few erlangs on 28,232 ports) gets here in
			// a few hundred steps; a run with thousands of them (sim/predict's
			// fresh targets) would otherwise spend most of its time here.
			return 0
		}
	}
	return b
}

// MaxRate returns the largest arrival rate λ, in connections per second,
// that N ports with mean holding time hold carry at a blocking probability
// of at most target: the largest λ with ErlangB(N, λ·hold) <= target.
//
// Source: the inverse of ErlangB (validation-and-security.md §2.1,
// "Capacity at target blocking"). B is increasing in A, and
// B(N, A) > 1 − N/A (the carried load A·(1 − B) is below N), so the answer
// lies in [0, N/(1 − target)]; MaxRate bisects that interval to a relative
// width of 1e-9 and returns the feasible end.
//
// It returns 0 when servers == 0 (every attempt is refused) and NaN when
// servers < 0, hold <= 0 or target is not in (0, 1).
func MaxRate(servers int, hold time.Duration, target float64) float64 {
	switch {
	case servers < 0 || hold <= 0 || !(target > 0 && target < 1):
		return math.NaN()
	case servers == 0:
		return 0
	}
	lo, hi := 0.0, float64(servers)/(1-target)
	for hi-lo > 1e-9*hi {
		mid := lo + (hi-lo)/2
		if mid <= lo || mid >= hi {
			break // adjacent floats: as precise as float64 allows
		}
		if ErlangB(servers, mid) <= target {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo / hold.Seconds()
}

// LittlesLaw returns L = λ·W, the long-run mean number in a stable system,
// for an arrival rate λ in connections per second and a mean time in
// system W. Applied to ports, L is the mean number of ports held when λ is
// the rate of successful connects (λ·(1 − B)) and W the mean holding time
// (lifetime plus TIME_WAIT on the active closer).
//
// Source: J. D. C. Little, "A Proof for the Queuing Formula: L = λW"
// (Operations Research, 1961); validation-and-security.md §2.3. It holds
// for any arrival and holding-time distributions.
func LittlesLaw(rate float64, hold time.Duration) float64 {
	return rate * hold.Seconds()
}

// FluidLimit returns N / hold in connections per second: the rate above
// which N ports, each held for hold, cannot keep up, so that a sustained
// load beyond it must be refused in the fraction 1 − N/(λ·hold).
//
// Source: the deterministic (fluid) approximation of a loss system; it is
// the "ports / TIME_WAIT" rule of thumb (validation-and-security.md §2.1,
// column "fluid N/H"). It returns +Inf when hold is 0.
func FluidLimit(servers int, hold time.Duration) float64 {
	return float64(servers) / hold.Seconds()
}

// FirstFailure returns when a constant-rate burst first fails to get a
// port, and whether it ever does. The burst makes its k-th attempt
// (k = 0, 1, ...) at t = k/λ, rate λ in connections per second, and every
// successful attempt holds its port for exactly hold.
//
// Convention at ties: a port released at the same instant as an attempt
// is free for that attempt. This matches an event queue that orders equal
// times by scheduling order, because a release is scheduled when its
// connection is made, before the attempt that meets it is scheduled.
//
// Derivation (exact): attempt k finds the ports of attempts j < k with
// j/λ + hold > k/λ still held, so at most ⌈λ·hold⌉ − 1 at once. Hence no
// attempt fails when λ·hold <= N; otherwise attempts 0..N−1 succeed and
// attempt N, at t = N/λ, finds all N ports held (the oldest is released at
// hold > N/λ). FirstFailure(28232, 1000, 60s) = 28.232s.
//
// The time is N/λ rounded to the nanosecond; the comparison hold > N/λ is
// made in float64 nanoseconds. With N <= 0 the first attempt, at 0, fails.
// A rate <= 0 (or NaN) makes no attempts: (0, false).
func FirstFailure(servers int, rate float64, hold time.Duration) (time.Duration, bool) {
	switch {
	case !(rate > 0):
		return 0, false
	case servers <= 0:
		return 0, true
	}
	at := float64(servers) * float64(time.Second) / rate
	if !(float64(hold) > at) {
		return 0, false
	}
	return time.Duration(math.Round(at)), true
}
