package sim

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portsim/portsim/scenarios"
)

// runBuiltin runs a built-in scenario with --set overrides.
func runBuiltin(t *testing.T, name string, sets ...string) *Result {
	t.Helper()
	s, err := scenarios.Load(name, sets)
	require.NoError(t, err)
	res, err := Run(s)
	require.NoError(t, err)
	return res
}

// onlyDrops asserts that the NAT dropped for exactly one reason.
func onlyDrops(t *testing.T, ns *NATSummary, reason string) {
	t.Helper()
	require.NotZero(t, ns.Drops[reason], "drops: %v", ns.Drops)
	assert.Len(t, ns.Drops, 1, "drops: %v", ns.Drops)
}

// TestIncidentAWSNATGateway55k: nat.md §4 case 5. 20 VMs x 100/s, 40 s
// each, to one destination through one IP: the concurrent count reaches
// the 55,000 cap at 27.5 s and the gateway drops from then on, never
// holding more than 55,000; below the cap (27 s connections, at most about
// 54,000 at once) and with two IPs nothing drops.
func TestIncidentAWSNATGateway55k(t *testing.T) {
	res := runBuiltin(t, "nat-aws-55k")
	ns := &res.Summary.NATs[0]
	onlyDrops(t, ns, "per-destination-cap")
	require.NotNil(t, ns.FirstDropS)
	assert.InDelta(t, 27.5, *ns.FirstDropS, 1e-9, "the 55,001st concurrent connection arrives at 27.5 s")
	assert.Equal(t, 55000, ns.MappingsPeak)
	assert.Equal(t, 55000, ns.Destinations[0].PeakFlows)

	below := runBuiltin(t, "nat-aws-55k", "workloads.0.hold.value=27s")
	nb := &below.Summary.NATs[0]
	assert.Empty(t, nb.Drops)
	assert.Less(t, nb.MappingsPeak, 55000)
	assert.Greater(t, nb.MappingsPeak, 54000)

	two := runBuiltin(t, "nat-aws-55k", "nats.0.external_ips=2")
	n2 := &two.Summary.NATs[0]
	assert.Empty(t, n2.Drops)
	// Each flow lives from its SYN to the server's close 40.002 s later
	// (two RTTs), so 4,001 ticks of 20 arrivals overlap.
	assert.Equal(t, 20*4001, n2.MappingsPeak, "2,000/s x 40 s, spread over two IPs")
	for _, ip := range n2.ExternalIPs {
		assert.LessOrEqual(t, ip.PeakFlows, 55000, ip.Address)
	}
}

// TestIncidentGCPCloudNATMinPorts: nat.md §4 case 8. With 64 static ports
// the 65th concurrent connection to one destination (at 32 s) is the first
// drop; another destination shares the same 64 ports without a drop; the
// dropped connect() times out after Linux's 127 s of SYN retransmissions;
// 2,048 ports per VM remove the drops.
func TestIncidentGCPCloudNATMinPorts(t *testing.T) {
	res := runBuiltin(t, "nat-gcp-min-ports")
	ns := &res.Summary.NATs[0]
	onlyDrops(t, ns, "out-of-resources")
	require.NotNil(t, ns.FirstDropS)
	assert.InDelta(t, 32.0, *ns.FirstDropS, 1e-9)
	assert.Equal(t, 64, ns.Inside[0].PeakAllocated)
	for _, d := range ns.Destinations {
		if d.Destination == "198.51.100.30:443" {
			assert.Empty(t, d.Drops, "the registry shares the node's 64 ports")
			assert.Equal(t, 54, d.PeakFlows, "0.3/s for 180 s")
		} else {
			assert.Equal(t, 64, d.PeakFlows)
		}
	}
	require.NotNil(t, res.Summary.FirstFailureS)
	assert.InDelta(t, 32.0+127, *res.Summary.FirstFailureS, 1e-9, "SYN retransmissions at 1, 3, 7, ... 63 s, ETIMEDOUT at 127 s")
	assert.NotZero(t, res.Summary.Failures["ETIMEDOUT"])

	fixed := runBuiltin(t, "nat-gcp-min-ports", "nats.0.ports_per_host=2048")
	assert.Empty(t, fixed.Summary.NATs[0].Drops)
	assert.Empty(t, fixed.Summary.Failures)
}

// TestIncidentAzureLBPreallocation: nat.md §4 case 15 and §3.2. 1,024
// ports per VM on 8 frontend IPs of 64,000 ports: 62 VMs per IP get
// ports, 496 in all; the other 1,504 get none and every flow of theirs is
// dropped. 32 ports per VM fit all 2,000 on the first IP.
func TestIncidentAzureLBPreallocation(t *testing.T) {
	if testing.Short() {
		t.Skip("2,000 hosts")
	}
	res := runBuiltin(t, "nat-azure-lb-prealloc")
	ns := &res.Summary.NATs[0]
	onlyDrops(t, ns, "no-port-allocation")
	served := 0
	for _, in := range ns.Inside {
		switch in.PeakAllocated {
		case 1024:
			served++
			assert.Empty(t, in.Drops, in.Host)
		case 0:
			assert.NotZero(t, in.Drops["no-port-allocation"], in.Host)
		default:
			t.Fatalf("%s: %d ports allocated", in.Host, in.PeakAllocated)
		}
	}
	assert.Equal(t, 8*62, served)

	fits := runBuiltin(t, "nat-azure-lb-prealloc", "nats.0.ports_per_host=32")
	nf := &fits.Summary.NATs[0]
	assert.Empty(t, nf.Drops)
	for _, in := range nf.Inside {
		assert.Equal(t, 32, in.PeakAllocated, in.Host)
	}
	assert.NotZero(t, nf.ExternalIPs[0].PeakFlows)
	for _, ip := range nf.ExternalIPs[1:] {
		assert.Zero(t, ip.PeakFlows, "IPs are used one after another: %s", ip.Address)
	}
}

// TestIncidentAppService128: nat.md §4 case 17. One new connection per
// second, each holding its SNAT port 4 minutes past its close: the 129th,
// at 128 s, is the first drop. At one every two seconds at most 121 are
// held and nothing drops.
func TestIncidentAppService128(t *testing.T) {
	res := runBuiltin(t, "nat-app-service")
	ns := &res.Summary.NATs[0]
	onlyDrops(t, ns, "out-of-resources")
	require.NotNil(t, ns.FirstDropS)
	assert.InDelta(t, 128.0, *ns.FirstDropS, 1e-9)
	assert.Equal(t, 128, ns.MappingsPeak)

	slow := runBuiltin(t, "nat-app-service", "workloads.0.arrival.rate=0.5")
	assert.Empty(t, slow.Summary.NATs[0].Drops)
	assert.Equal(t, 121, slow.Summary.NATs[0].MappingsPeak)
}

// TestIncidentKubernetesMasquerade: nat.md §4 cases 1 and 3. Without a
// random flag, concurrent clash searches start from the shared rover and
// collide at confirm (insert-failed); the dropped SYNs are retransmitted a
// second later and get through, so no connect() fails. With random-fully
// the clashes vanish.
func TestIncidentKubernetesMasquerade(t *testing.T) {
	res := runBuiltin(t, "nat-k8s-masquerade")
	ns := &res.Summary.NATs[0]
	onlyDrops(t, ns, "insert-failed")
	assert.NotZero(t, ns.Searched, "pods share source ports, so the NAT cannot always preserve them")
	assert.Empty(t, res.Summary.Failures, "a retransmitted SYN gets through")

	fully := runBuiltin(t, "nat-k8s-masquerade", "nats.0.random=random-fully")
	nf := &fully.Summary.NATs[0]
	assert.Empty(t, nf.Drops)
	assert.Zero(t, nf.Preserved, "random-fully skips port preservation")
}

// TestNATHomeRouter: the teaching scenario's forwarded, hairpinned and
// filtered packets (RFC 4787 §5-6, REQ-9).
func TestNATHomeRouter(t *testing.T) {
	res := runBuiltin(t, "nat-home-router")
	ns := &res.Summary.NATs[0]
	onlyDrops(t, ns, "filtered")
	require.Len(t, res.Summary.Servers, 1)
	// 4 SSH connections from each of friend and laptop (0.2/s for 20 s).
	assert.Equal(t, uint64(8), res.Summary.Servers[0].Accepted)
	assert.NotZero(t, ns.Preserved, "the laptop's web connections keep their ports")
}
