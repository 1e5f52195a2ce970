package scenarios

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/lexer"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"

	"github.com/portsim/portsim/alloc"
	"github.com/portsim/portsim/tcpstate"
)

// Defaults for optional fields.
const (
	// DefaultSeed is the seed of a scenario that does not set one.
	DefaultSeed = 1
	// DefaultSample is the series interval of a scenario that does not set
	// one (shortened to the run's duration for runs under a second).
	DefaultSample = time.Second
	// DefaultRTT is a workload's round-trip time when it does not set one.
	DefaultRTT = time.Millisecond
)

// Parse reads a scenario from YAML source, applies command-line overrides
// and validates it. file names the source in error messages and becomes
// Scenario.File.
//
// The format is strict: unknown keys are errors, and so are fields that do
// not belong to the chosen arrival process or holding-time distribution.
// Times are Go durations with a unit ("100ms", "60s"); rates are connections
// per second. A document looks like
//
//	name: linux-burst                # required
//	description: one line            # optional
//	seed: 1                          # optional, default 1
//	duration: 120s                   # required, > 0
//	sample: 1s                       # optional, default 1s, <= duration
//	hosts:
//	  - name: client
//	    count: 1                     # optional, 1..100000: N identical VMs or pods
//	    os: linux                    # a tcpstate preset, or "host"
//	    addresses: [10.0.0.1]
//	    ephemeral_range: "32768 60999" # optional, any OS
//	    allocator: linux             # optional, an alloc name for connect()
//	    so_reuse_unicastport: true   # optional, Windows only
//	    sysctls:                     # optional, Linux only, kernel spellings
//	      net.ipv4.ip_local_port_range: "32768 60999"
//	    time_wait: 60s               # optional what-if
//	workloads:
//	  - name: api
//	    from: client                 # a host name
//	    to: ["203.0.113.10:443"]     # ip:port destinations, round-robin
//	    arrival: {process: poisson, rate: 600}
//	    hold: {dist: exponential, mean: 100ms}
//	    close: client                # or server, rst, {client: 0.9, rst: 0.1}
//	    start: 0s                    # optional
//	    stop: 60s                    # optional, default: the end of the run
//	    rtt: 1ms                     # optional, default 1ms
//	    source: 10.0.0.1             # optional, one of the host's addresses
//	    pool: 8                      # optional keep-alive pool per destination, default 0 (none)
//	nats:                            # optional NAT middleboxes
//	  - name: gw                     # required, unique
//	    preset: aws-nat-gateway      # required, a sim/nat preset
//	    external_ips: 2              # required: a count, or [198.51.100.1, ...]
//	    inside: [client]             # required: the hosts behind it
//	    per_destination_cap: 1000    # optional overrides of the preset
//	    timeouts: {tcp_established: 350s}
//	    forwards: [{external_port: 2222, to: "10.0.0.1:22"}]
//
// A host with count: N stands for N identical machines: it becomes N hosts
// named NAME-1 .. NAME-N, instance i with each written address advanced by
// i-1 (10.0.0.1 -> 10.0.0.i). A name elsewhere in the file (a workload's
// from, a NAT's inside) means every instance; NAME-i means that one. A
// workload from such a host runs on every instance, as workloads named
// WORKLOAD@NAME-i, its source mapped to the instance's address. Servers
// cannot run on a host with count > 1. Addresses of instances may not
// collide with any other host's.
//
// A NAT takes its behaviour from its preset and the file's overrides:
// mapping (TCP and UDP) and udp_mapping (UDP alone), each
// endpoint-independent, address-dependent or address-and-port-dependent;
// filtering (the same three); pooling (paired, arbitrary, spread, fill);
// reuse_mapping, port_preservation, port_parity and hairpin (true or
// false); random (none, random, random-fully: the Linux rule's flag);
// picker (an alloc NAT port picker); ports ("LOW HIGH", inclusive);
// per_destination_cap, max_flows, ports_per_host, max_ports_per_host,
// block_size and max_blocks (whole numbers >= 0); allocation (shared,
// static, dynamic, blocks, deterministic); timeouts {tcp_established,
// tcp_transitory, tcp_time_wait, tcp_close, udp, udp_stream,
// udp_stream_after}, cool_down {fin, rst, half_open, udp} and
// confirm_window (durations); forwards, static inbound rules
// {external_port, to: an inside host's ip:port, proto: tcp (default) or
// udp, external_ip: one of the NAT's (default the first)}. external_ips: N
// gives the K-th NAT (from 0) the addresses 198.18.K.1 .. 198.18.K.N (RFC
// 2544's benchmarking range, N <= 254); listed ones may not be a host's or
// another NAT's. A host is inside at most one NAT. The result is checked as
// the NAT vendor would (nat.Config.Validate): a value that breaks a rule is
// reported where the file sets it, or at preset when it is the preset's. A
// workload may connect to a NAT's external ip:port (hairpin, or a forward).
//
// A workload's pool: K (a whole number >= 0; TCP socket paths only) makes
// its arrivals requests served over a keep-alive pool of up to K idle
// connections per destination, as Go net/http Transport's
// MaxIdleConnsPerHost; see Workload.Pool.
//
// Arrival processes: constant {rate}, poisson {rate}, ramp {from, to},
// onoff {rate, on, off}. Holding times: fixed {value}, exponential {mean},
// lognormal {median, sigma}, pareto {scale, shape}. Anchors, aliases and
// merge keys (<<: *base) may be used; YAML tags may not.
//
// overrides are --set PATH=VALUE strings, applied to the document before it
// is decoded: PATH is dot-separated keys and list indexes
// (workloads.0.arrival.rate, nats.0.timeouts.udp; after "sysctls." the
// rest of the path is one sysctl key, dots included), VALUE is a YAML
// scalar or flow value (800, 30s, ["1.2.3.4:80"]). A missing final key, or
// missing mappings on the way to it, are added; a list index must exist.
//
// Every error is an *Error.
func Parse(src []byte, file string, overrides []string) (*Scenario, error) {
	f, perr := parseYAML(file, src)
	if perr != nil {
		return nil, perr
	}
	d := &decoder{file: file, origin: map[ast.Node]string{}}
	var root ast.Node
	for _, doc := range f.Docs {
		if doc == nil || doc.Body == nil {
			continue
		}
		if root != nil {
			return nil, d.fail(val{node: doc.Body}, "a scenario file holds one YAML document")
		}
		root = doc.Body
	}
	if root == nil {
		if len(overrides) == 0 {
			return nil, &Error{File: file, Msg: "the file is empty; a scenario needs name, duration, hosts and workloads"}
		}
		root = ast.Mapping(&token.Token{Position: &token.Position{}}, false)
	}
	// Anchors are collected first so that overrides can see what merge
	// keys bring in; overrides add no anchors and keep the existing ones.
	d.anchors = collectAnchors(root)
	for _, o := range overrides {
		if err := d.override(root, o); err != nil {
			return nil, err
		}
	}
	rv, err := d.child(val{}, root, "")
	if err != nil {
		return nil, err
	}
	sc, err := d.scenario(rv)
	if err != nil {
		return nil, err
	}
	sc.Overrides = append(make([]string, 0, len(overrides)), overrides...)
	return sc, nil
}

// Limits on input that goccy/go-yaml would take too long to parse.
const (
	// MaxSize is the largest scenario file Parse accepts, in bytes.
	MaxSize = 1 << 20
	// MaxNesting is how deep flow collections ([...] and {...}) may nest.
	// A scenario needs fewer than ten levels; the YAML parser's time grows
	// faster than linearly with depth (seconds for 20,000 levels).
	MaxNesting = 64
)

// parseYAML parses src into an AST after checking MaxSize and MaxNesting.
// Errors are *Error for file.
func parseYAML(file string, src []byte) (*ast.File, *Error) {
	if len(src) > MaxSize {
		return nil, &Error{File: file, Msg: fmt.Sprintf("%d bytes is more than the %d a scenario may have", len(src), MaxSize)}
	}
	tokens := lexer.Tokenize(string(src))
	depth := 0
	for _, tk := range tokens {
		switch tk.Type {
		case token.SequenceStartType, token.MappingStartType:
			depth++
		case token.SequenceEndType, token.MappingEndType:
			depth--
		}
		if depth > MaxNesting {
			e := &Error{File: file, Msg: fmt.Sprintf("YAML: [ and { nest more than %d deep", MaxNesting)}
			if tk.Position != nil {
				e.Line, e.Column = tk.Position.Line, tk.Position.Column
			}
			return nil, e
		}
	}
	f, err := parser.Parse(tokens, 0)
	if err != nil {
		return nil, yamlError(file, err)
	}
	return f, nil
}

// yamlError turns a goccy/go-yaml error into a positioned *Error, keeping
// only the message line (goccy's Error() adds a source excerpt).
func yamlError(file string, err error) *Error {
	e := &Error{File: file, Msg: err.Error()}
	var ye interface {
		GetToken() *token.Token
		GetMessage() string
	}
	if errors.As(err, &ye) {
		e.Msg = ye.GetMessage()
		if tk := ye.GetToken(); tk != nil && tk.Position != nil {
			e.Line, e.Column = tk.Position.Line, tk.Position.Column
		}
	}
	e.Msg = "YAML: " + e.Msg
	return e
}

// scenario decodes the top-level mapping.
func (d *decoder) scenario(root val) (*Scenario, error) {
	f, err := d.fields(root, "name", "description", "seed", "duration", "sample", "hosts", "workloads", "servers", "nats")
	if err != nil {
		return nil, err
	}
	s := &Scenario{File: d.file, Seed: DefaultSeed}
	if s.Name, err = f.name("scenario"); err != nil {
		return nil, err
	}
	if v, ok := f.get("description"); ok {
		if s.Description, err = d.str(v); err != nil {
			return nil, err
		}
	}
	if v, ok := f.get("seed"); ok {
		if s.Seed, err = d.uint64(v); err != nil {
			return nil, err
		}
	}
	v, err := f.required("duration", "how long the run lasts, e.g. 120s")
	if err != nil {
		return nil, err
	}
	if s.Duration, err = bounded(d, v, d.duration, positive); err != nil {
		return nil, err
	}
	s.Sample = min(DefaultSample, s.Duration)
	if v, ok := f.get("sample"); ok {
		if s.Sample, err = d.duration(v); err != nil {
			return nil, err
		}
		if s.Sample <= 0 || s.Sample > s.Duration {
			return nil, d.fail(v, "must be > 0 and at most the duration (%v), got %v", s.Duration, s.Sample)
		}
	}
	if err := d.hosts(f, s); err != nil {
		return nil, err
	}
	made := 0
	workloads := func(v val) ([]Workload, error) {
		ws, err := d.workloads(v, s, made)
		made += len(ws)
		return ws, err
	}
	workloadName := func(w Workload) []string { return []string{w.Name} }
	const workloadHint = "; a workload from a host with count: N becomes NAME@HOST-1 .. NAME@HOST-N"
	l, err := namedList(f, "workloads", "workload", workloadHint, workloads, workloadName)
	if err != nil {
		return nil, err
	}
	s.Workloads = l.items
	if err := d.reuseUnicastPort(s, l.entry); err != nil {
		return nil, err
	}
	if v, ok := f.get("servers"); ok {
		items, err := d.list(v)
		if err != nil {
			return nil, err
		}
		for _, sv := range items {
			srv, err := d.server(sv, s)
			if err != nil {
				return nil, err
			}
			for _, o := range s.Servers {
				if o.Name == srv.Name {
					return nil, d.fail(sv, "duplicate server name %q", srv.Name)
				}
			}
			s.Servers = append(s.Servers, srv)
		}
	}
	if err := d.nats(f, s); err != nil {
		return nil, err
	}
	return s, nil
}

// server decodes one entry of servers.
func (d *decoder) server(sv val, s *Scenario) (Server, error) {
	srv := Server{Listeners: 1}
	f, err := d.fields(sv, "name", "host", "listen", "listeners", "options", "restarts")
	if err != nil {
		return srv, err
	}
	if srv.Name, err = f.name("server"); err != nil {
		return srv, err
	}
	hv, err := f.required("host", "name the host the server runs on")
	if err != nil {
		return srv, err
	}
	hostName, err := d.str(hv)
	if err != nil {
		return srv, err
	}
	var ok bool
	if srv.Host, _, ok = d.lookupHost(s, hostName); !ok {
		return srv, d.fail(hv, "no host named %q", hostName)
	}
	host := &s.Hosts[srv.Host]
	if host.Count > 1 {
		return srv, d.fail(hv, "host %q stands for %d instances (count: %d); servers on a host with count > 1 are not supported: write the server's host without count", host.Group, host.Count, host.Count)
	}
	lv, err := f.required("listen", `the address and port to bind, e.g. "0.0.0.0:8080"`)
	if err != nil {
		return srv, err
	}
	text, err := d.str(lv)
	if err != nil {
		return srv, err
	}
	if srv.Listen, err = netip.ParseAddrPort(text); err != nil || srv.Listen.Port() == 0 {
		return srv, d.fail(lv, "%q is not an ip:port with a port of 1..65535", text)
	}
	if a := srv.Listen.Addr(); !a.IsUnspecified() && !slices.Contains(host.Addresses, a) {
		return srv, d.fail(lv, "%v is not an address of host %q (addresses: %v) nor a wildcard", a, host.Name, host.Addresses)
	}
	if v, ok := f.get("listeners"); ok {
		if srv.Listeners, err = d.whole(v, 1, 1024); err != nil {
			return srv, err
		}
	}
	if v, ok := f.get("options"); ok {
		if srv.Options, err = d.sockOptions(v, host); err != nil {
			return srv, err
		}
	}
	if v, ok := f.get("restarts"); ok {
		items, err := d.list(v)
		if err != nil {
			return srv, err
		}
		for _, rv := range items {
			r := Restart{Retry: time.Second, Options: srv.Options}
			rf, err := d.fields(rv, "at", "down", "retry", "options")
			if err != nil {
				return srv, err
			}
			av, err := rf.required("at", "when the listeners close, e.g. 30s")
			if err != nil {
				return srv, err
			}
			if r.At, err = bounded(d, av, d.duration, nonNegative); err != nil {
				return srv, err
			}
			if r.At >= s.Duration {
				return srv, d.fail(av, "must be before the end of the run (%v), got %v", s.Duration, r.At)
			}
			if n := len(srv.Restarts); n > 0 && r.At <= srv.Restarts[n-1].At {
				return srv, d.fail(av, "restarts must be in time order")
			}
			if v, ok := rf.get("down"); ok {
				if r.Down, err = bounded(d, v, d.duration, nonNegative); err != nil {
					return srv, err
				}
			}
			if v, ok := rf.get("retry"); ok {
				if r.Retry, err = bounded(d, v, d.duration, positive); err != nil {
					return srv, err
				}
			}
			if v, ok := rf.get("options"); ok {
				if r.Options, err = d.sockOptions(v, host); err != nil {
					return srv, err
				}
			}
			srv.Restarts = append(srv.Restarts, r)
		}
	}
	return srv, nil
}

// reuseUnicastPort applies SO_REUSE_UNICASTPORT: a Windows host whose TCP
// connect() workloads all set it shares local ports across destinations
// (so-port-scalability.md). A host where only some set it would need
// per-socket sharing rules, which the connect() table does not model, so
// that mix is refused. entry gives each workload's index in the file.
func (d *decoder) reuseUnicastPort(s *Scenario, entry []int) error {
	// The last workload of each host with the option and without it.
	on, off := make([]int, len(s.Hosts)), make([]int, len(s.Hosts))
	for hi := range s.Hosts {
		on[hi], off[hi] = -1, -1
	}
	for i, w := range s.Workloads {
		switch {
		case w.Socket.UDP():
		case w.Options.ReuseUnicastPort:
			on[w.From] = i
		default:
			off[w.From] = i
		}
	}
	for hi := range s.Hosts {
		h := &s.Hosts[hi]
		if on[hi] >= 0 && off[hi] >= 0 {
			return &Error{File: d.file, Field: fmt.Sprintf("workloads[%d].options", entry[on[hi]]),
				Msg: fmt.Sprintf("SO_REUSE_UNICASTPORT is set here but not on workload %q of the same host; set it on every TCP workload of host %q or on none", s.Workloads[off[hi]].Name, h.Name)}
		}
		if on[hi] >= 0 {
			h.Profile.ConnectSharesPort = true
		}
	}
	return nil
}

// named is a decoded list of named entries: items, and for each item the
// index in entries (the list as written) of the entry it comes from; a
// host with count, or a workload from one, makes several items.
type named[T any] struct {
	items   []T
	entry   []int
	entries []val
}

// namedList decodes the required list key of f (hosts, workloads, nats):
// at least one entry, each decoded by decode into one or more items, no two
// names the same. names gives the names an item answers to (a host with
// count answers to its written name and its instance's). noun names an
// entry in messages ("host"); hint is added to a duplicate-name message
// when one of the two entries made several items.
func namedList[T any](f *fields, key, noun, hint string, decode func(val) ([]T, error), names func(T) []string) (named[T], error) {
	d := f.d
	var l named[T]
	vs, err := f.nonEmptyList(key, "list at least one "+noun)
	if err != nil {
		return l, err
	}
	l.entries = vs
	seen := map[string]int{}
	made := make([]int, len(vs))
	for i, ev := range vs {
		items, err := decode(ev)
		if err != nil {
			return l, err
		}
		made[i] = len(items)
		for _, e := range items {
			for _, n := range names(e) {
				if j, dup := seen[n]; dup {
					msg := fmt.Sprintf("duplicate %s name %q (%s[%d] has it too)", noun, n, key, j)
					if made[i] > 1 || made[j] > 1 {
						msg += hint
					}
					return l, d.fail(d.field(ev, "name"), "%s", msg)
				}
				seen[n] = i
			}
			l.entry = append(l.entry, i)
		}
		// A host with count can make 100,000 items of 8 KB: take the
		// first entry's slice as it is, and append the others at once.
		if l.items == nil {
			l.items = items
		} else {
			l.items = append(l.items, items...)
		}
	}
	return l, nil
}

// nonEmptyList decodes the required list key of f, which must have at
// least one entry; why says what to write when it is missing or empty.
func (f *fields) nonEmptyList(key, why string) ([]val, error) {
	v, err := f.required(key, why)
	if err != nil {
		return nil, err
	}
	vs, err := f.d.list(v)
	if err != nil {
		return nil, err
	}
	if len(vs) == 0 {
		return nil, f.d.fail(v, "%s", why)
	}
	return vs, nil
}

// field returns the field name of mapping v, already decoded once, to
// position an error found after decoding (a duplicate name).
func (d *decoder) field(v val, name string) val {
	f, err := d.fields(v)
	if err != nil {
		return v
	}
	if fv, ok := f.get(name); ok {
		return fv
	}
	return v
}

// name decodes the required, non-blank name of a scenario, host or
// workload (noun).
func (f *fields) name(noun string) (string, error) {
	v, err := f.required("name", "every "+noun+" has a name")
	if err != nil {
		return "", err
	}
	s, err := f.d.str(v)
	if err != nil {
		return "", err
	}
	if strings.TrimSpace(s) == "" {
		return "", f.d.fail(v, "must not be empty")
	}
	return s, nil
}

// host decodes one entry of hosts.
func (d *decoder) host(hv val) (Host, error) {
	var h Host
	f, err := d.fields(hv, "name", "count", "os", "addresses", "ephemeral_range", "allocator", "so_reuse_unicastport", "privileged", "sysctls", "time_wait")
	if err != nil {
		return h, err
	}
	if h.Name, err = f.name("host"); err != nil {
		return h, err
	}
	h.Group, h.Instance, h.Count = h.Name, 1, 1
	if v, ok := f.get("count"); ok {
		if h.Count, err = d.whole(v, 1, MaxHosts); err != nil {
			return h, err
		}
	}

	osv, err := f.required("os", "one of "+strings.Join(tcpstate.PresetNames(), ", "))
	if err != nil {
		return h, err
	}
	if h.OS, err = d.str(osv); err != nil {
		return h, err
	}
	if h.OS == tcpstate.HostPreset {
		h.Profile, err = tcpstate.ReadHost(tcpstate.DefaultSysctlDir)
	} else {
		h.Profile, err = tcpstate.Preset(h.OS)
	}
	if err != nil {
		return h, d.fail(osv, "%v", err)
	}

	addrs, err := f.nonEmptyList("addresses", "list the host's IP addresses, e.g. [10.0.0.1]")
	if err != nil {
		return h, err
	}
	for _, av := range addrs {
		s, err := d.str(av)
		if err != nil {
			return h, err
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return h, d.fail(av, "%q is not an IP address", s)
		}
		if j := slices.Index(h.Addresses, a); j >= 0 {
			return h, d.fail(av, "duplicate address %v (addresses[%d] has it too)", a, j)
		}
		h.Addresses = append(h.Addresses, a)
	}

	if v, ok := f.get("sysctls"); ok {
		sf, err := d.fields(v)
		if err != nil {
			return h, err
		}
		h.Sysctls = map[string]string{}
		for _, k := range slices.Sorted(maps.Keys(sf.vals)) {
			kv := sf.vals[k]
			text, err := d.scalarText(kv)
			if err != nil {
				return h, err
			}
			if err := h.Profile.SetSysctl(k, text); err != nil {
				// Point at the value, unless the key itself is wrong.
				if !slices.Contains(tcpstate.SysctlNames(), k) {
					kv = sf.keys[k]
				}
				// The message names the field, which shows the value.
				var re *alloc.RangeError
				if errors.As(err, &re) {
					err = re.Err
				}
				return h, d.fail(kv, "%v", err)
			}
			h.Sysctls[k] = text
		}
	}

	// ephemeral_range is every OS's range knob (FreeBSD and XNU
	// net.inet.ip.portrange.first/last, Windows netsh dynamicport, ns-3
	// m_portFirst/m_portLast); on Linux it is ip_local_port_range, and
	// setting both to different values is a contradiction.
	if v, ok := f.get("ephemeral_range"); ok {
		r, err := d.portRange(v)
		if err != nil {
			return h, err
		}
		if set, ok := h.Sysctls["net.ipv4.ip_local_port_range"]; ok && r != h.Profile.PortRange {
			return h, d.fail(v, "%s contradicts sysctls net.ipv4.ip_local_port_range %q; set one of them", r, set)
		}
		h.Profile.SetPortRange(r)
	}

	if v, ok := f.get("allocator"); ok {
		name, err := d.str(v)
		if err != nil {
			return h, err
		}
		if !slices.Contains(alloc.Names(), name) {
			return h, d.fail(v, "unknown allocator %q (known: %s)", name, strings.Join(alloc.Names(), ", "))
		}
		h.Profile.Allocator = name
	}

	// so_reuse_unicastport: every outbound socket of the host sets Windows'
	// SO_REUSE_UNICASTPORT (.NET ReuseUnicastPort), which defers the port
	// choice to connect() so a local port is shared across destinations
	// (so-port-scalability.md, os-semantics.md §6.2).
	if v, ok := f.get("so_reuse_unicastport"); ok {
		on, err := d.boolean(v)
		if err != nil {
			return h, err
		}
		if h.Profile.Family != "windows" {
			return h, d.fail(v, "SO_REUSE_UNICASTPORT is a Windows socket option; os %q has none (Linux and FreeBSD connect() share ports anyway)", h.OS)
		}
		h.Profile.ConnectSharesPort = on
	}

	h.Privileged = true
	if v, ok := f.get("privileged"); ok {
		if h.Privileged, err = d.boolean(v); err != nil {
			return h, err
		}
	}

	if v, ok := f.get("time_wait"); ok {
		tw, err := bounded(d, v, d.duration, positive)
		if err != nil {
			return h, err
		}
		h.TimeWaitHypothetical = h.Profile.TimeWaitFixed && tw != h.Profile.TimeWait
		h.Profile.TimeWait = tw
	}
	return h, nil
}

// workload decodes one entry of workloads; s has its hosts and duration.
// From is the host `from` names, or the first instance of a host with
// count; n is how many instances the workload runs on.
func (d *decoder) workload(wv val, s *Scenario) (w Workload, n int, err error) {
	w = Workload{RTT: DefaultRTT, Stop: s.Duration}
	f, err := d.fields(wv, "name", "from", "to", "arrival", "hold", "close", "start", "stop", "rtt", "source", "socket", "options", "port_range", "peer_close_delay", "pool")
	if err != nil {
		return w, 0, err
	}
	if w.Name, err = f.name("workload"); err != nil {
		return w, 0, err
	}

	fromv, err := f.required("from", "name the host that opens the connections")
	if err != nil {
		return w, 0, err
	}
	from, err := d.str(fromv)
	if err != nil {
		return w, 0, err
	}
	var ok bool
	if w.From, n, ok = d.lookupHost(s, from); !ok {
		return w, 0, d.fail(fromv, "no host named %q (hosts: %s)", from, strings.Join(hostNames(s), ", "))
	}
	host := &s.Hosts[w.From]
	if n > 1 {
		// The workload runs on every instance; its fields refer to the
		// host as written (the first instance's addresses are the
		// written ones).
		written := *host
		written.Name = host.Group
		host = &written
	}
	w, err = d.workloadBody(f, w, s, host)
	return w, n, err
}

// workloadBody decodes the fields of a workload after name and from.
func (d *decoder) workloadBody(f *fields, w Workload, s *Scenario, host *Host) (Workload, error) {

	if err := d.destinations(f, &w); err != nil {
		return w, err
	}
	if err := d.source(f, &w, host); err != nil {
		return w, err
	}

	v, err := f.required("arrival", "e.g. {process: poisson, rate: 600}")
	if err != nil {
		return w, err
	}
	if w.Arrival, err = d.arrival(v); err != nil {
		return w, err
	}
	if v, err = f.required("hold", "e.g. {dist: exponential, mean: 100ms}"); err != nil {
		return w, err
	}
	if w.Hold, err = d.hold(v); err != nil {
		return w, err
	}
	if v, err = f.required("close", "client, server, rst, or weights such as {client: 0.9, rst: 0.1}"); err != nil {
		return w, err
	}
	if w.Close, err = d.closeMix(v); err != nil {
		return w, err
	}

	if v, ok := f.get("start"); ok {
		if w.Start, err = bounded(d, v, d.duration, nonNegative); err != nil {
			return w, err
		}
	}
	if v, ok := f.get("stop"); ok {
		if w.Stop, err = d.duration(v); err != nil {
			return w, err
		}
		if w.Stop > s.Duration {
			return w, d.fail(v, "%v is after the end of the run (duration %v)", w.Stop, s.Duration)
		}
		if w.Stop <= w.Start {
			return w, d.fail(v, "must be after start (%v), got %v", w.Start, w.Stop)
		}
	} else if w.Start >= w.Stop {
		v, _ := f.get("start")
		return w, d.fail(v, "must be before the end of the run (duration %v), got %v", s.Duration, w.Start)
	}
	if v, ok := f.get("rtt"); ok {
		if w.RTT, err = bounded(d, v, d.duration, nonNegative); err != nil {
			return w, err
		}
	}
	if v, ok := f.get("peer_close_delay"); ok {
		if w.PeerCloseDelay, err = bounded(d, v, d.duration, nonNegative); err != nil {
			return w, err
		}
	}
	if err := d.socketPath(f, &w, host); err != nil {
		return w, err
	}
	if v, ok := f.get("pool"); ok {
		if w.Pool, err = d.whole(v, 0, math.MaxInt32); err != nil {
			return w, err
		}
		if w.Pool > 0 && w.Socket.UDP() {
			// A UDP socket has no connection to keep open between
			// requests in this sense: each datagram exchange is the
			// workload's "connection".
			return w, d.fail(v, "a keep-alive pool reuses TCP connections; socket: %v has none (remove pool or use a TCP socket path)", w.Socket)
		}
	}
	return w, nil
}

// socketPath decodes socket, options and port_range, and checks that the
// host's stack has them: IP_BIND_ADDRESS_NO_PORT and IP_LOCAL_PORT_RANGE are
// Linux socket options (os-semantics.md §2.7-2.8), SO_REUSE_UNICASTPORT and
// SO_EXCLUSIVEADDRUSE Windows ones (§6.2, §7.3).
func (d *decoder) socketPath(f *fields, w *Workload, host *Host) error {
	if v, ok := f.get("socket"); ok {
		name, err := d.str(v)
		if err != nil {
			return err
		}
		i := slices.Index(socketPathNames[:], name)
		if i < 0 {
			return d.fail(v, "unknown socket path %q (known: %s)", name, strings.Join(socketPathNames[:], ", "))
		}
		w.Socket = SocketPath(i)
		if opt, linuxOnly := linuxPathOption[w.Socket]; linuxOnly && host.Profile.Family != "linux" {
			return d.fail(v, "%s needs the Linux socket option %s; os %q has none", name, opt, host.OS)
		}
	}
	rv, hasRange := f.get("port_range")
	if w.Socket == PortRange && !hasRange {
		v, _ := f.get("socket")
		return d.fail(v, "socket: port-range needs port_range: \"LOW HIGH\"")
	}
	if hasRange {
		if w.Socket != PortRange {
			return d.fail(rv, "port_range goes with socket: port-range (IP_LOCAL_PORT_RANGE)")
		}
		r, err := d.portRange(rv)
		if err != nil {
			return err
		}
		w.PortRange = r
	}
	if v, ok := f.get("options"); ok {
		var err error
		if w.Options, err = d.sockOptions(v, host); err != nil {
			return err
		}
	}
	if w.Socket.UDP() && w.Close != (CloseMix{Client: 1}) {
		v, _ := f.get("close")
		return d.fail(v, "a UDP socket has no close handshake and no TIME_WAIT; use close: client")
	}
	return nil
}

// sockOptions decodes a list of socket options; the Windows-only ones are
// refused on other stacks.
func (d *decoder) sockOptions(v val, host *Host) (SockOptions, error) {
	var o SockOptions
	items, err := d.list(v)
	if err != nil {
		return o, err
	}
	for _, iv := range items {
		name, err := d.str(iv)
		if err != nil {
			return o, err
		}
		switch name {
		case "SO_REUSEADDR":
			o.ReuseAddr = true
		case "SO_REUSEPORT":
			o.ReusePort = true
		case "SO_REUSE_UNICASTPORT", "SO_EXCLUSIVEADDRUSE":
			if host.Profile.Family != "windows" {
				return o, d.fail(iv, "%s is a Windows socket option; os %q has none", name, host.OS)
			}
			o.ReuseUnicastPort = o.ReuseUnicastPort || name == "SO_REUSE_UNICASTPORT"
			o.ExclusiveAddrUse = o.ExclusiveAddrUse || name == "SO_EXCLUSIVEADDRUSE"
		default:
			return o, d.fail(iv, "unknown socket option %q (known: SO_REUSEADDR, SO_REUSEPORT, SO_REUSE_UNICASTPORT, SO_EXCLUSIVEADDRUSE)", name)
		}
	}
	return o, nil
}

// linuxPathOption names the Linux-only option behind a socket path.
var linuxPathOption = map[SocketPath]string{BindNoPort: "IP_BIND_ADDRESS_NO_PORT", PortRange: "IP_LOCAL_PORT_RANGE"}

// destinations decodes a workload's to: one or more ip:port of one family.
func (d *decoder) destinations(f *fields, w *Workload) error {
	tos, err := f.nonEmptyList("to", `list ip:port destinations, e.g. ["203.0.113.10:443"]`)
	if err != nil {
		return err
	}
	for i, tv := range tos {
		s, err := d.str(tv)
		if err != nil {
			return err
		}
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			return d.fail(tv, "%q is not ip:port (IPv6 as [::1]:80)", s)
		}
		if ap.Port() == 0 {
			return d.fail(tv, "port must be 1..65535, got 0")
		}
		if i > 0 && ap.Addr().Is4() != w.To[0].Addr().Is4() {
			return d.fail(tv, "%v is %s but %v is %s; a workload's destinations share one address family",
				ap, family(ap.Addr()), w.To[0], family(w.To[0].Addr()))
		}
		w.To = append(w.To, ap)
	}
	return nil
}

// source decodes or defaults a workload's source address: one of the host's
// addresses, of the destinations' family. The default is the host's first
// address of that family.
func (d *decoder) source(f *fields, w *Workload, h *Host) error {
	want := family(w.To[0].Addr())
	v, ok := f.get("source")
	if !ok {
		for _, a := range h.Addresses {
			if family(a) == want {
				w.Source = a
				return nil
			}
		}
		to, _ := f.get("to")
		return d.fail(to, "host %q has no %s address to reach %v from (addresses: %s)", h.Name, want, w.To[0], addrList(h.Addresses))
	}
	s, err := d.str(v)
	if err != nil {
		return err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return d.fail(v, "%q is not an IP address", s)
	}
	if !slices.Contains(h.Addresses, a) {
		return d.fail(v, "%v is not an address of host %q (addresses: %s)", a, h.Name, addrList(h.Addresses))
	}
	if family(a) != want {
		return d.fail(v, "%v is %s but the destinations are %s", a, family(a), want)
	}
	w.Source = a
	return nil
}

// family names an address's family.
func family(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}

// addrList formats addresses for messages.
func addrList(as []netip.Addr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}

// variant is one choice of a mapping whose selector field decides which
// other fields it takes (arrival.process, hold.dist).
type variant struct {
	name   string   // the selector's value, e.g. "poisson"
	fields []string // the fields it takes besides the selector
}

// The arrival processes and holding-time distributions by their YAML names,
// indexed by ArrivalProcess and HoldDist.
var (
	processes = []variant{
		Constant: {"constant", []string{"rate"}},
		Poisson:  {"poisson", []string{"rate"}},
		Ramp:     {"ramp", []string{"from", "to"}},
		OnOff:    {"onoff", []string{"rate", "on", "off"}},
	}
	dists = []variant{
		Fixed:       {"fixed", []string{"value"}},
		Exponential: {"exponential", []string{"mean"}},
		Lognormal:   {"lognormal", []string{"median", "sigma"}},
		Pareto:      {"pareto", []string{"scale", "shape"}},
	}
)

// variant decodes mapping v whose field selector names one of vs, and
// refuses fields that the chosen variant does not take. It returns the
// mapping's fields, with choice set ("process poisson") for the messages of
// need, and the index of the variant in vs.
func (d *decoder) variant(v val, selector string, vs []variant) (*fields, int, error) {
	names := make([]string, len(vs))
	known := []string{selector}
	for i, c := range vs {
		names[i] = c.name
		for _, k := range c.fields {
			if !slices.Contains(known, k) {
				known = append(known, k)
			}
		}
	}
	f, err := d.fields(v, known...)
	if err != nil {
		return nil, 0, err
	}
	sv, err := f.required(selector, "one of "+strings.Join(names, ", "))
	if err != nil {
		return nil, 0, err
	}
	name, err := d.str(sv)
	if err != nil {
		return nil, 0, err
	}
	i := slices.Index(names, name)
	if i < 0 {
		return nil, 0, d.fail(sv, "unknown %s %q (known: %s)", selector, name, strings.Join(names, ", "))
	}
	f.choice = selector + " " + name
	takes := append([]string{selector}, vs[i].fields...)
	for _, k := range f.order {
		if !slices.Contains(takes, k) {
			return nil, 0, d.fail(f.keys[k], "does not apply to %s (it takes %s)", f.choice, strings.Join(takes, ", "))
		}
	}
	return f, i, nil
}

// What the fields of arrival processes and holding-time distributions
// hold, for "missing" messages.
const (
	perSecond = "connections per second"
	aDuration = "a duration such as 100ms"
)

// arrival decodes an arrival process.
func (d *decoder) arrival(v val) (Arrival, error) {
	f, i, err := d.variant(v, "process", processes)
	if err != nil {
		return Arrival{}, err
	}
	a := Arrival{Process: ArrivalProcess(i)}
	switch a.Process {
	case Constant, Poisson:
		a.Rate, err = need(f, "rate", perSecond, d.number, positive)
	case Ramp:
		if a.Rate, err = need(f, "from", perSecond, d.number, nonNegative); err != nil {
			return a, err
		}
		if a.RateTo, err = need(f, "to", perSecond, d.number, nonNegative); err != nil {
			return a, err
		}
		if a.Rate == 0 && a.RateTo == 0 {
			to, _ := f.get("to")
			return a, d.fail(to, "a ramp from 0 to 0 opens no connections; one end must be > 0")
		}
	case OnOff:
		if a.Rate, err = need(f, "rate", perSecond, d.number, positive); err != nil {
			return a, err
		}
		if a.On, err = need(f, "on", aDuration, d.duration, positive); err != nil {
			return a, err
		}
		a.Off, err = need(f, "off", aDuration, d.duration, nonNegative)
	}
	return a, err
}

// hold decodes a holding-time distribution.
func (d *decoder) hold(v val) (Hold, error) {
	f, i, err := d.variant(v, "dist", dists)
	if err != nil {
		return Hold{}, err
	}
	h := Hold{Dist: HoldDist(i)}
	switch h.Dist {
	case Fixed:
		h.Value, err = need(f, "value", aDuration, d.duration, nonNegative)
	case Exponential:
		h.Mean, err = need(f, "mean", aDuration, d.duration, positive)
	case Lognormal:
		if h.Median, err = need(f, "median", aDuration, d.duration, positive); err == nil {
			h.Sigma, err = need(f, "sigma", "", d.number, positive)
		}
	case Pareto:
		if h.Scale, err = need(f, "scale", aDuration, d.duration, positive); err == nil {
			h.Shape, err = need(f, "shape", "", d.number, positive)
		}
	}
	return h, err
}

// bound is the lower limit bounded checks.
type bound bool

// Lower limits of bounded.
const (
	positive    bound = false // > 0
	nonNegative bound = true  // >= 0
)

// bounded decodes v with decode (d.number or d.duration) and checks it
// against b.
func bounded[T float64 | time.Duration](d *decoder, v val, decode func(val) (T, error), b bound) (T, error) {
	x, err := decode(v)
	switch {
	case err != nil:
		return 0, err
	case x < 0 && b == nonNegative:
		return 0, d.fail(v, "must be >= 0, got %v", x)
	case x <= 0 && b == positive:
		return 0, d.fail(v, "must be > 0, got %v", x)
	}
	return x, nil
}

// need decodes the required field name of a mapping decoded by variant,
// like bounded. what says what the field holds, for the message when it is
// missing ("process poisson needs rate (connections per second)").
func need[T float64 | time.Duration](f *fields, name, what string, decode func(val) (T, error), b bound) (T, error) {
	why := f.choice + " needs " + name
	if what != "" {
		why += " (" + what + ")"
	}
	v, err := f.required(name, why)
	if err != nil {
		return 0, err
	}
	return bounded(f.d, v, decode, b)
}

// closeMix decodes close: a single way (client, server, rst) or weights.
func (d *decoder) closeMix(v val) (CloseMix, error) {
	var c CloseMix
	if s, ok := v.node.(*ast.StringNode); ok {
		switch s.Value {
		case "client":
			c.Client = 1
		case "server":
			c.Server = 1
		case "rst":
			c.RST = 1
		default:
			return c, d.fail(v, "must be client, server, rst or weights such as {client: 0.9, rst: 0.1}, got %q", s.Value)
		}
		return c, nil
	}
	if _, ok := v.node.(*ast.MappingNode); !ok {
		return c, d.fail(v, "must be client, server, rst or weights such as {client: 0.9, rst: 0.1}, got %s", describe(v.node))
	}
	f, err := d.fields(v, "client", "server", "rst")
	if err != nil {
		return c, err
	}
	for _, w := range []struct {
		name string
		p    *float64
	}{{"client", &c.Client}, {"server", &c.Server}, {"rst", &c.RST}} {
		wv, ok := f.get(w.name)
		if !ok {
			continue
		}
		x, err := d.number(wv)
		if err != nil {
			return c, err
		}
		if x < 0 {
			return c, d.fail(wv, "weights must be >= 0, got %v", x)
		}
		*w.p = x
	}
	sum := c.Client + c.Server + c.RST
	if sum == 0 || math.IsInf(sum, 0) {
		return c, d.fail(v, "weights must add up to a finite number > 0, got %v", sum)
	}
	c.Client, c.Server, c.RST = c.Client/sum, c.Server/sum, c.RST/sum
	return c, nil
}
