package alloc

import "fmt"

// Formatting helpers of the Explain methods (see Explainer). Every
// allocator records scalars in Allocate and formats them only here, on
// demand, so the trace costs nothing in a run that does not print it.

// notYet is the explanation before the first Allocate.
func notYet(name string) string { return name + ": no Allocate call yet" }

// probed is "1 candidate probed" or "N candidates probed".
func probed(n int) string {
	if n == 1 {
		return "1 candidate probed"
	}
	return fmt.Sprintf("%d candidates probed", n)
}

// parityName is "even" or "odd", the parity of port p.
func parityName(p int) string {
	if p&1 == 0 {
		return "even"
	}
	return "odd"
}

// wrapNote is ", wrapped at HIGH" when a linear probe from start ended on a
// port below it, i.e. went past High and continued at Low.
func wrapNote(r Range, start, port int) string {
	if port < start {
		return fmt.Sprintf(", wrapped %d → %d", r.High, r.Low)
	}
	return ""
}
