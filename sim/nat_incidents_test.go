package sim

import (
	"strings"
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

	// Just below the limit: the API's arrivals stop at 32 s, 64 in all.
	below := runBuiltin(t, "nat-gcp-min-ports", "workloads.0.stop=32s")
	assert.Empty(t, below.Summary.NATs[0].Drops)
	assert.Equal(t, 64, below.Summary.NATs[0].Destinations[0].PeakFlows)

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

	// At the limit and one past it: 496 VMs all get ports, the 497th none.
	at := runBuiltin(t, "nat-azure-lb-prealloc", "hosts.0.count=496")
	assert.Empty(t, at.Summary.NATs[0].Drops)
	past := runBuiltin(t, "nat-azure-lb-prealloc", "hosts.0.count=497")
	np := &past.Summary.NATs[0]
	onlyDrops(t, np, "no-port-allocation")
	assert.Equal(t, "vm-497", np.Inside[496].Host)
	assert.NotZero(t, np.Inside[496].Drops["no-port-allocation"])
	assert.Empty(t, np.Inside[495].Drops)

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

// drainYAML has a NAT with connections that end every way (client FIN,
// server FIN, RST, UDP, hairpinned to a forward, hairpinned to a filtered
// port until connect() gives up) beside a host outside the NAT; its
// workloads stop at 10 s and the run goes on past every retransmission and
// hold.
const drainYAML = `
name: drain
duration: 300s
hosts:
  - {name: lan, os: linux, addresses: [192.168.1.20]}
  - {name: nas, os: linux, addresses: [192.168.1.10]}
  - {name: outside, os: linux, addresses: [198.51.100.7]}
servers:
  - {name: sshd, host: nas, listen: "0.0.0.0:22"}
nats:
  - name: router
    preset: linux-masquerade
    external_ips: [203.0.113.5]
    inside: [lan, nas]
    forwards: [{external_port: 2222, to: "192.168.1.10:22"}]
workloads:
  - {name: fin, from: lan, to: ["198.51.100.1:443"], arrival: {process: constant, rate: 10}, hold: {dist: fixed, value: 1s}, close: client, stop: 10s}
  - {name: srvfin, from: lan, to: ["198.51.100.1:443"], arrival: {process: constant, rate: 10}, hold: {dist: fixed, value: 1s}, close: server, stop: 10s}
  - {name: rst, from: lan, to: ["198.51.100.1:443"], arrival: {process: constant, rate: 10}, hold: {dist: fixed, value: 1s}, close: rst, stop: 10s}
  - {name: dns, from: lan, to: ["198.51.100.2:53"], socket: udp-connect, arrival: {process: constant, rate: 10}, hold: {dist: fixed, value: 10ms}, close: client, stop: 10s}
  - {name: ssh, from: lan, to: ["203.0.113.5:2222"], arrival: {process: constant, rate: 1}, hold: {dist: fixed, value: 2s}, close: client, stop: 10s}
  - {name: closed-port, from: lan, to: ["203.0.113.5:40000"], arrival: {process: constant, rate: 1}, hold: {dist: fixed, value: 2s}, close: client, stop: 10s}
  - {name: direct, from: outside, to: ["198.51.100.1:443"], arrival: {process: constant, rate: 10}, hold: {dist: fixed, value: 1s}, close: client, stop: 10s}
`

// TestNATFlowsDrain: every NAT flow is closed exactly once and expires
// after its hold, whichever way its connection ended; hosts outside the
// NAT run beside it; a hairpinned SYN to a filtered port is retransmitted
// on the same outbound flow and its connect() gives up with ETIMEDOUT.
func TestNATFlowsDrain(t *testing.T) {
	s, err := scenarios.Parse([]byte(drainYAML), "drain.yaml", nil)
	require.NoError(t, err)
	m, err := newModel(s)
	require.NoError(t, err)
	m.loop()
	st := m.nats[0].n.Stats()
	assert.Zero(t, st.Flows, "every flow expired")
	assert.Zero(t, st.Mappings)
	for _, ip := range st.IPs {
		assert.Zero(t, ip.Flows)
		assert.Zero(t, ip.Ports)
	}
	res := m.result()
	assert.Equal(t, uint64(10), res.Summary.Failures["ETIMEDOUT"], "the 10 SYNs to the filtered port give up")
	assert.Zero(t, res.Summary.Retrying)
	assert.Equal(t, uint64(10), res.Summary.Servers[0].Accepted, "the hairpinned SSH connections")
	// 10 first SYNs plus 6 retransmissions each, all filtered; no other drop.
	assert.Equal(t, map[string]uint64{"filtered": 70}, res.Summary.NATs[0].Drops)
	// The outbound flow of a hairpinned connection was opened once per
	// connection, not per retransmission: 100 per TCP workload (three),
	// 100 UDP, 10 + 10 hairpinned.
	assert.Equal(t, uint64(420), st.Preserved+st.Reused+st.Searched)
}

// TestNATHairpinSource: the NAS sees a hairpinned connection come from
// the router's public address (RFC 4787 REQ-9), and a friend's from the
// friend's own address (destination NAT only).
func TestNATHairpinSource(t *testing.T) {
	s, err := scenarios.Load("nat-home-router", nil)
	require.NoError(t, err)
	_, steps, err := Trace(s, TraceOptions{})
	require.NoError(t, err)
	seen := map[string]int{}
	for _, st := range steps {
		if st.Event == "accept()" {
			a, _, _ := strings.Cut(st.Local, ":")
			seen[st.Workload+" from "+a]++
		}
	}
	assert.Equal(t, map[string]int{"ssh-from-home from 203.0.113.5": 4, "ssh-from-outside from 198.51.100.7": 4}, seen)
}

// TestNATNoHairpin: without hairpinning (RFC 4787 REQ-9 unmet) the
// laptop's SYNs to the router's own public address are dropped as
// no-hairpin, counted for the laptop and that destination; the friend's
// forwarded connections still arrive.
func TestNATNoHairpin(t *testing.T) {
	res := runBuiltin(t, "nat-home-router", "nats.0.hairpin=false")
	ns := &res.Summary.NATs[0]
	assert.Equal(t, uint64(4), res.Summary.Servers[0].Accepted, "the friend's, not the laptop's")
	// Connects at 0, 5, 10 and 15 s, each SYN retransmitted 1, 3, 7, 15 s
	// after it: 5 + 5 + 4 + 3 SYNs by the end of the 20 s run.
	require.Equal(t, uint64(17), ns.Drops["no-hairpin"])
	for _, in := range ns.Inside {
		if in.Host == "laptop" {
			assert.Equal(t, ns.Drops["no-hairpin"], in.Drops["no-hairpin"])
		}
	}
	for _, d := range ns.Destinations {
		if d.Destination == "203.0.113.5:2222" {
			assert.Equal(t, ns.Drops["no-hairpin"], d.Drops["no-hairpin"])
		}
	}
}
