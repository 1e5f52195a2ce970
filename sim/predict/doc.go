// Package predict is portsim's security analysis: how well an attacker can
// predict the source ports a victim's allocator hands out, how fast, and
// what that randomness costs in early reuse of a port toward the same peer.
//
// The victim is a host of a scenario: its own workloads are the background
// load, scaled to several levels, and every allocator compared runs on the
// same background (common random numbers: boot b of every allocator and
// load level uses the scenario's seed + b). Each allocator's ports come out
// of the real simulator (sim.Observe), so busy ports, TIME_WAIT and the
// kernel's probing are as in `portsim run`.
//
// Attacker models, with their assumptions (validation-and-security.md §3):
//
//   - Observer (model a): the attacker's server receives some of the
//     victim's connections (a web page or a query the attacker triggers)
//     and sees their source ports and times. Gap after each one it observes,
//     the victim opens a connection to another destination, which the
//     attacker never sees and has never seen (a fresh destination per
//     attempt, so a keyed hash of it is unknown), and the attacker guesses
//     its source port. It knows the algorithm, the ephemeral range and the
//     victim's load; it does not know the secret keys. Its predictive
//     distribution is that of the offset (target - observed) mod range size,
//     learned from half of the boots (training); every success probability
//     is measured on the other half (held out), so it is never flattered by
//     the sample it was learned from.
//   - Blind off-path spoofer (model b, Kaminsky-style DNS cache poisoning):
//     it cannot see the victim's query to the target, but it triggered it
//     and saw the observation just before; it sends K spoofed responses per
//     attempt, each a (port, transaction ID) guess, and must match both. The
//     16-bit ID is uniform (RFC 5452 §7: N = 65,536 IDs), so the best use
//     of K responses spends up to 65,536 IDs on the most likely port, then
//     the next.
//   - Device tracking (model c): the Kol-Klein-Gilad attack on Linux's
//     double-hash (RFC 6056 Algorithm 4) allocator, see Track.
//   - FreeBSD 13's fall-back to sequential (model d) needs no attacker of
//     its own: "freebsd-13" at each load level shows its predictability
//     switch with the allocation rate (ipport_tick, randomcps 10/s).
//
// Metrics (validation-and-security.md §3.6): min-entropy -log2(P1) of the
// predictive distribution with a 95 % interval; Shannon entropy
// (Miller-Madow corrected); success probability with K guesses and the
// attempts an attacker needs for 50 % success; cross-destination leakage,
// the squared correlation between the port increment the attacker sees
// between two observations and the victim's connections to other
// destinations in between (RFC 6056 Algorithm 3's global counter leaks it,
// Linux commit 190cc82489f4); the DNS-OARC porttest rating of 26
// consecutive observed ports; and the port reuse cycle, the fraction of the
// victim's connections whose local port was used toward the same
// destination less than one TIME_WAIT earlier (IETF 69 tsvwg's design goal;
// a collision with the peer's TIME_WAIT).
package predict
