package analytic

import (
	"fmt"
	"math"
	"time"
)

// DefaultTargetBlocking is the blocking probability Calc sizes for when
// CalcInput.TargetBlocking is 0: 1 % of connects refused.
const DefaultTargetBlocking = 0.01

// MaxCalcPorts bounds CalcInput.Ports (256 addresses × 65536 ports). Calc
// takes O(Ports) time per Erlang B evaluation, so the bound keeps
// `portsim calc` within a few seconds.
const MaxCalcPorts = 1 << 24

// CalcInput is what `portsim calc` is asked. Each field names the flag it
// comes from in Calc's error messages.
type CalcInput struct {
	// Ports is the number of usable local ports (--ports).
	Ports int
	// Rate is the total rate of new connections, in connections per second,
	// spread evenly over Destinations (--rate).
	Rate float64
	// Hold is how long a connection stays open before the client closes it
	// (--hold); TimeWait is how long the closed socket keeps its port
	// (--time-wait).
	Hold, TimeWait time.Duration
	// Destinations is the number of distinct (address, port) destinations;
	// 0 means 1 (--destinations).
	Destinations int
	// TargetBlocking is the refused fraction MaxRateForTarget sizes for, in
	// (0, 1); 0 means DefaultTargetBlocking (--target-blocking).
	TargetBlocking float64
}

// CalcResult holds the closed-form answers for one CalcInput, written as
// JSON by `portsim calc --json`. Rates are connections per second, times
// seconds, port counts sockets.
type CalcResult struct {
	// Ports, Rate, HoldS, TimeWaitS, Destinations and TargetBlocking echo
	// the input with defaults applied.
	Ports          int     `json:"ports"`
	Rate           float64 `json:"rate"`
	HoldS          float64 `json:"hold_s"`
	TimeWaitS      float64 `json:"time_wait_s"`
	Destinations   int     `json:"destinations"`
	TargetBlocking float64 `json:"target_blocking"`
	// HoldingTimeS is how long each connection keeps its port: Hold plus
	// TimeWait (the client closes first, so it holds TIME_WAIT).
	HoldingTimeS float64 `json:"holding_time_s"`
	// RatePerDestination is Rate / Destinations.
	RatePerDestination float64 `json:"rate_per_destination"`
	// PortsHeldLittlesLaw is the mean number of sockets holding a local
	// port, summed over destinations (Little's law with the rate of
	// successful connects: Rate × (1 − ErlangBBlocking) × HoldingTimeS). A
	// port number can be held once per destination, so this may exceed
	// Ports.
	PortsHeldLittlesLaw float64 `json:"ports_held_littles_law"`
	// OfferedLoadErlangs is RatePerDestination × HoldingTimeS: the load on
	// each destination's pool.
	OfferedLoadErlangs float64 `json:"offered_load_erlangs"`
	// ErlangBBlocking is B(Ports, OfferedLoadErlangs): the fraction of
	// connects refused with Poisson arrivals, for each destination.
	ErlangBBlocking float64 `json:"erlang_b_blocking"`
	// MaxRateForTarget is the largest total Rate at which each destination's
	// blocking stays at most TargetBlocking.
	MaxRateForTarget float64 `json:"max_rate_for_target"`
	// FluidLimitRate is Destinations × Ports / HoldingTimeS: the total rate
	// above which the pools cannot keep up.
	FluidLimitRate float64 `json:"fluid_limit_rate"`
	// FirstFailureS is when a constant-rate burst at Rate, sent round-robin
	// over the destinations from t = 0, first fails to get a port; nil
	// when it never does.
	FirstFailureS *float64 `json:"first_failure_s"`
}

// Calc returns the closed-form answers for in. The model is Linux's
// connect() without bind(): ports are shared across destinations, so each
// destination is its own Erlang loss system with N = Ports servers and
// Rate / Destinations arrivals, and each connection holds its port for
// Hold + TimeWait (the client is the active closer). Sources: ErlangB,
// MaxRate, LittlesLaw, FluidLimit and FirstFailure;
// validation-and-security.md §2.1–2.3.
//
// Calc validates in: Ports in [1, MaxCalcPorts], Rate > 0 and finite,
// Hold >= 0, TimeWait >= 0 with Hold + TimeWait > 0, Destinations >= 1
// (0 means 1) and TargetBlocking in (0, 1) (0 means
// DefaultTargetBlocking). Errors name the flag: "--rate must be > 0, got -3".
func Calc(in CalcInput) (CalcResult, error) {
	if in.Destinations == 0 {
		in.Destinations = 1
	}
	if in.TargetBlocking == 0 {
		in.TargetBlocking = DefaultTargetBlocking
	}
	if err := in.validate(); err != nil {
		return CalcResult{}, err
	}

	holding := in.Hold + in.TimeWait
	k := float64(in.Destinations)
	perDest := in.Rate / k
	load := perDest * holding.Seconds()
	blocking := ErlangB(in.Ports, load)
	res := CalcResult{
		Ports:               in.Ports,
		Rate:                in.Rate,
		HoldS:               in.Hold.Seconds(),
		TimeWaitS:           in.TimeWait.Seconds(),
		Destinations:        in.Destinations,
		TargetBlocking:      in.TargetBlocking,
		HoldingTimeS:        holding.Seconds(),
		RatePerDestination:  perDest,
		PortsHeldLittlesLaw: LittlesLaw(in.Rate*(1-blocking), holding),
		OfferedLoadErlangs:  load,
		ErlangBBlocking:     blocking,
		MaxRateForTarget:    k * MaxRate(in.Ports, holding, in.TargetBlocking),
		FluidLimitRate:      k * FluidLimit(in.Ports, holding),
	}
	if at, ok := FirstFailure(in.Ports, perDest, holding); ok {
		s := at.Seconds()
		res.FirstFailureS = &s
	}
	return res, nil
}

// validate checks in after defaults are applied.
func (in CalcInput) validate() error {
	switch {
	case in.Ports < 1:
		return fmt.Errorf("--ports must be >= 1, got %d", in.Ports)
	case in.Ports > MaxCalcPorts:
		return fmt.Errorf("--ports must be <= %d, got %d", MaxCalcPorts, in.Ports)
	case !(in.Rate > 0):
		return fmt.Errorf("--rate must be > 0, got %v", in.Rate)
	case math.IsInf(in.Rate, 1):
		return fmt.Errorf("--rate must be finite, got %v", in.Rate)
	case in.Hold < 0:
		return fmt.Errorf("--hold must be >= 0, got %v", in.Hold)
	case in.TimeWait < 0:
		return fmt.Errorf("--time-wait must be >= 0, got %v", in.TimeWait)
	case in.Hold+in.TimeWait <= 0:
		return fmt.Errorf("--hold plus --time-wait must be > 0, got %v", in.Hold+in.TimeWait)
	case in.Destinations < 1:
		return fmt.Errorf("--destinations must be >= 1, got %d", in.Destinations)
	case !(in.TargetBlocking > 0 && in.TargetBlocking < 1):
		return fmt.Errorf("--target-blocking must be in (0, 1), got %v", in.TargetBlocking)
	}
	return nil
}
