// Package nat models NAT middleboxes between inside hosts and their
// destinations: the external IP pool, RFC 4787 mapping, filtering and
// pooling behaviours, port preservation and parity, port allocation
// (shared, static per host, dynamic, port blocks, RFC 7422 deterministic),
// the external 5-tuple kept unique (so one external port serves many
// destinations), per-state timeouts and post-close cool-downs, a
// per-destination cap, a table-size limit, static inbound rules
// (destination NAT), hairpinning and inbound filtering.
//
// Presets carry vendor numbers with their sources
// (../shared/reference/nat.md): linux-masquerade, aws-nat-gateway,
// azure-nat-gateway, azure-lb-outbound, azure-app-service, gcp-cloud-nat,
// cgn-port-block, cgn-deterministic. The port search itself is an alloc
// NATPicker (netfilter by kernel era, random, sequential).
//
// A NAT is told the time and returns what happens; the simulator schedules
// the expiry of each flow's hold. It imports only alloc.
package nat
