package alloc

import (
	"errors"
	"math/rand/v2"
	"net/netip"
)

// NATMode is the port-randomisation flag of a Linux SNAT/MASQUERADE rule
// (nat.md §2.5): none, --random (NF_NAT_RANGE_PROTO_RANDOM) or
// --random-fully (NF_NAT_RANGE_PROTO_RANDOM_FULLY). Since Linux 5.0 the two
// flags behave the same; before, --random started from a keyed hash and
// --random-fully from the PRNG (nat.md §2.4).
type NATMode uint8

// NAT randomisation modes.
const (
	NATDefault     NATMode = iota // no flag: preference steps, then the search
	NATRandom                     // --random
	NATRandomFully                // --random-fully
)

// NATRequest is one new outbound flow, as a NAT port picker sees it: the
// search for a free external port after the NAT's preference steps (reuse
// of the inside endpoint's mapping, port preservation) did not settle it.
// This is the split of Linux get_unique_tuple (preferences) and
// nf_nat_l4proto_unique_tuple (the search), nat.md §2.2-2.3.
type NATRequest struct {
	// Inside is the flow's original source address and port.
	Inside netip.AddrPort
	// Remote is the flow's destination address and port.
	Remote netip.AddrPort
	// External is the external (post-NAT source) address chosen for the
	// flow, on which Pool lies. Only the pre-5.0 --random hash reads it:
	// the kernel hashes the tuple after find_best_ips_proto has rewritten
	// its source address (nf_nat_ipv4_secure_port passes t->src.u3.ip to
	// secure_ipv4_port_ephemeral), so every inside host starts from the same
	// offset toward one destination. The zero Addr means unknown: the hash
	// then uses Inside's address instead.
	External netip.Addr
	// UDP is the protocol: false for TCP.
	UDP bool
	// Pool is the inclusive range of external ports this flow may take on
	// the chosen external IP: the NAT's pool, or the inside host's
	// preallocated range or port block. It must pass Range.Validate; the
	// pickers panic on one that does not (a caller bug: port 0 must never
	// be handed out).
	Pool Range
	// Mode is the rule's randomisation flag (pre-5.0 pickers read it).
	Mode NATMode
	// Parity asks for a port of Inside's parity (RFC 4787 §4.2.2 REQ-4,
	// port parity preservation): only ports p with p%2 == Inside.Port()%2
	// are candidates.
	Parity bool
	// Evictable, when non-nil, holds the busy ports whose flow may be
	// evicted to make room: Linux 6.5+ lets a TCP SYN take over an SNAT
	// entry in TIME_WAIT or later in the last NFNatHarderThresh probes of a
	// round ("netfilter: snat: evict closing tcp entries on reply tuple
	// collision", nat.md §2.3). A picker that does not evict ignores it.
	// The caller tells an eviction from a plain success by
	// busy.Has(Result.Port) and then ends the old flow.
	Evictable Busy
}

// NATPicker chooses an external port for one flow. busy reports the ports
// whose external 5-tuple toward req.Remote is taken (or which the NAT's
// mapping rules forbid for this flow). Implementations are not safe for
// concurrent use; like Allocator they must not allocate memory per call and
// must cost O(pool/64) word operations plus their bounded probe budget.
//
// On success Result.Port is in req.Pool and not busy (or busy and in
// req.Evictable, for an evicting picker), and Result.Probes counts the
// candidates examined including the chosen one. On failure Result.Err is
// EADDRNOTAVAIL, meaning "no tuple found": the NAT drops the packet (Linux
// keeps the clashing tuple and conntrack confirm drops it, nat.md §2.2).
type NATPicker interface {
	// Name returns the registry name the picker was created with.
	Name() string
	// Pick searches req.Pool for a usable external port.
	Pick(req *NATRequest, busy Busy) Result
}

// Names of the NAT port pickers NewNATPicker knows (see each picker's
// doc comment for its source).
const (
	NATPickerNetfilter      = "netfilter"       // Linux 5.0-6.4 nf_nat_l4proto_unique_tuple: random windows, ≤ 248 probes
	NATPickerNetfilter65    = "netfilter-6.5"   // Linux 6.5+: the same, evicting closing TCP entries in a round's last 32 probes
	NATPickerNetfilterRover = "netfilter-rover" // Linux before 5.0: per-protocol rover (or hash, PRNG), whole-pool scan
	NATPickerRandom         = "random"          // uniform over the free ports (Azure NAT Gateway)
	NATPickerSequential     = "sequential"      // next free port after the last one given
)

// NATConfig configures a named NAT picker (see NewNATPicker).
type NATConfig struct {
	// Rand is the picker's random stream (seeded by the caller); required
	// by every picker that draws, and keyed pickers draw their secret from
	// it when they are built.
	Rand *rand.Rand
}

// NFNatHarderThresh is NF_NAT_HARDER_THRESH, the number of probes at the
// end of each search round in which Linux 6.5+ may evict a closing TCP
// entry (nat.md §2.3).
const NFNatHarderThresh = 32

// ErrUnknownNATPicker is wrapped by NewNATPicker's error for a name it does
// not know.
var ErrUnknownNATPicker = errors.New("unknown NAT port picker")

// natRegistry maps NAT picker names to constructors; files that define
// pickers add theirs with registerNAT in an init function.
var natRegistry = registryOf[NATConfig, NATPicker]{
	noun: "NAT picker", err: ErrUnknownNATPicker,
	mk: map[string]func(NATConfig) (NATPicker, error){},
}

// registerNAT adds a NAT picker constructor under name.
func registerNAT(name string, mk func(NATConfig) (NATPicker, error)) { natRegistry.add(name, mk) }

// NewNATPicker returns the NAT port picker registered under name.
//
// Errors: an unknown name (wrapping ErrUnknownNATPicker and listing the
// known names), or a nil cfg.Rand for a picker that draws.
func NewNATPicker(name string, cfg NATConfig) (NATPicker, error) {
	mk, err := natRegistry.lookup(name)
	if err != nil {
		return nil, err
	}
	return mk(cfg)
}

// NATPickerNames returns the names NewNATPicker accepts, sorted; the slice
// is the caller's.
func NATPickerNames() []string { return natRegistry.names() }
