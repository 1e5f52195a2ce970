package scenarios

import (
	"errors"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portsim/portsim/alloc"
	"github.com/portsim/portsim/sim/nat"
)

// The YAML spellings of the nat enums, indexed by their values.
var (
	mappingNames = []string{
		nat.EndpointIndependent:     "endpoint-independent",
		nat.AddressDependent:        "address-dependent",
		nat.AddressAndPortDependent: "address-and-port-dependent",
	}
	filteringNames = []string{
		nat.EndpointIndependentFiltering:     "endpoint-independent",
		nat.AddressDependentFiltering:        "address-dependent",
		nat.AddressAndPortDependentFiltering: "address-and-port-dependent",
	}
	poolingNames = []string{
		nat.Paired:    "paired",
		nat.Arbitrary: "arbitrary",
		nat.Spread:    "spread",
		nat.Fill:      "fill",
	}
	natModeNames = []string{
		alloc.NATDefault:     "none",
		alloc.NATRandom:      "random",
		alloc.NATRandomFully: "random-fully",
	}
	allocationNames = []string{
		nat.Shared:        "shared",
		nat.Static:        "static",
		nat.Dynamic:       "dynamic",
		nat.Blocks:        "blocks",
		nat.Deterministic: "deterministic",
	}
)

// natParam is a preset parameter a NAT entry may override.
type natParam struct {
	// key is the YAML key path below the NAT entry ("timeouts.udp"), the
	// spelling of nat.FieldError.Field.
	key string
	// set decodes v into c.
	set func(d *decoder, v val, c *nat.Config) error
	// get is the parameter's value in c, for messages.
	get func(c *nat.Config) string
}

// enumParam is a parameter spelled as one of names (indexed by value).
func enumParam[T ~uint8](key string, names []string, field func(*nat.Config) *T) natParam {
	return natParam{key: key,
		set: func(d *decoder, v val, c *nat.Config) error {
			s, err := d.str(v)
			if err != nil {
				return err
			}
			i := slices.Index(names, s)
			if i < 0 {
				return d.fail(v, "unknown %s %q (known: %s)", lastKey(key), s, strings.Join(names, ", "))
			}
			*field(c) = T(i)
			return nil
		},
		get: func(c *nat.Config) string { return names[*field(c)] },
	}
}

// boolParam is a true/false parameter.
func boolParam(key string, field func(*nat.Config) *bool) natParam {
	return natParam{key: key,
		set: func(d *decoder, v val, c *nat.Config) (err error) {
			*field(c), err = d.boolean(v)
			return err
		},
		get: func(c *nat.Config) string { return strconv.FormatBool(*field(c)) },
	}
}

// intParam is a count >= 0.
func intParam(key string, field func(*nat.Config) *int) natParam {
	return natParam{key: key,
		set: func(d *decoder, v val, c *nat.Config) (err error) {
			*field(c), err = d.whole(v, 0, math.MaxInt32)
			return err
		},
		get: func(c *nat.Config) string { return strconv.Itoa(*field(c)) },
	}
}

// durationParam is a duration, > 0 or >= 0 as b says.
func durationParam(key string, b bound, field func(*nat.Config) *time.Duration) natParam {
	return natParam{key: key,
		set: func(d *decoder, v val, c *nat.Config) (err error) {
			*field(c), err = bounded(d, v, d.duration, b)
			return err
		},
		get: func(c *nat.Config) string { return field(c).String() },
	}
}

// lastKey is the last element of a key path.
func lastKey(key string) string {
	return key[strings.LastIndexByte(key, '.')+1:]
}

// natParams are the overridable parameters, in the order they are applied
// (mapping before udp_mapping, which refines it).
var natParams = []natParam{
	{key: "mapping",
		set: func(d *decoder, v val, c *nat.Config) error {
			// mapping is the NAT's behaviour for TCP and UDP;
			// udp_mapping, applied after it, sets UDP's alone.
			err := enumParam("mapping", mappingNames, func(c *nat.Config) *nat.Mapping { return &c.Mapping }).set(d, v, c)
			c.UDPMapping = c.Mapping
			return err
		},
		get: func(c *nat.Config) string { return mappingNames[c.Mapping] },
	},
	enumParam("udp_mapping", mappingNames, func(c *nat.Config) *nat.Mapping { return &c.UDPMapping }),
	enumParam("filtering", filteringNames, func(c *nat.Config) *nat.Filtering { return &c.Filtering }),
	enumParam("pooling", poolingNames, func(c *nat.Config) *nat.Pooling { return &c.Pooling }),
	boolParam("reuse_mapping", func(c *nat.Config) *bool { return &c.ReuseMapping }),
	boolParam("port_preservation", func(c *nat.Config) *bool { return &c.PortPreservation }),
	boolParam("port_parity", func(c *nat.Config) *bool { return &c.PortParity }),
	enumParam("random", natModeNames, func(c *nat.Config) *alloc.NATMode { return &c.Mode }),
	{key: "picker",
		set: func(d *decoder, v val, c *nat.Config) error {
			s, err := d.str(v)
			if err != nil {
				return err
			}
			if !slices.Contains(alloc.NATPickerNames(), s) {
				return d.fail(v, "unknown NAT port picker %q (known: %s)", s, strings.Join(alloc.NATPickerNames(), ", "))
			}
			c.Picker = s
			return nil
		},
		get: func(c *nat.Config) string { return c.Picker },
	},
	{key: "ports",
		set: func(d *decoder, v val, c *nat.Config) (err error) {
			c.Ports, err = d.portRange(v)
			return err
		},
		get: func(c *nat.Config) string { return c.Ports.String() },
	},
	intParam("per_destination_cap", func(c *nat.Config) *int { return &c.PerDestinationCap }),
	intParam("max_flows", func(c *nat.Config) *int { return &c.MaxFlows }),
	enumParam("allocation", allocationNames, func(c *nat.Config) *nat.Allocation { return &c.Allocation }),
	intParam("ports_per_host", func(c *nat.Config) *int { return &c.PortsPerHost }),
	intParam("max_ports_per_host", func(c *nat.Config) *int { return &c.MaxPortsPerHost }),
	intParam("block_size", func(c *nat.Config) *int { return &c.BlockSize }),
	intParam("max_blocks", func(c *nat.Config) *int { return &c.MaxBlocks }),
	durationParam("timeouts.tcp_established", positive, func(c *nat.Config) *time.Duration { return &c.Timeouts.TCPEstablished }),
	durationParam("timeouts.tcp_transitory", nonNegative, func(c *nat.Config) *time.Duration { return &c.Timeouts.TCPTransitory }),
	durationParam("timeouts.tcp_time_wait", nonNegative, func(c *nat.Config) *time.Duration { return &c.Timeouts.TCPTimeWait }),
	durationParam("timeouts.tcp_close", nonNegative, func(c *nat.Config) *time.Duration { return &c.Timeouts.TCPClose }),
	durationParam("timeouts.udp", positive, func(c *nat.Config) *time.Duration { return &c.Timeouts.UDP }),
	durationParam("timeouts.udp_stream", nonNegative, func(c *nat.Config) *time.Duration { return &c.Timeouts.UDPStream }),
	durationParam("timeouts.udp_stream_after", nonNegative, func(c *nat.Config) *time.Duration { return &c.Timeouts.UDPStreamAfter }),
	durationParam("cool_down.fin", nonNegative, func(c *nat.Config) *time.Duration { return &c.CoolDowns.FIN }),
	durationParam("cool_down.rst", nonNegative, func(c *nat.Config) *time.Duration { return &c.CoolDowns.RST }),
	durationParam("cool_down.half_open", nonNegative, func(c *nat.Config) *time.Duration { return &c.CoolDowns.HalfOpen }),
	durationParam("cool_down.udp", nonNegative, func(c *nat.Config) *time.Duration { return &c.CoolDowns.UDP }),
	durationParam("confirm_window", nonNegative, func(c *nat.Config) *time.Duration { return &c.ConfirmWindow }),
	boolParam("hairpin", func(c *nat.Config) *bool { return &c.Hairpin }),
}

// natKeys are the keys of a NAT entry, and natGroups the keys holding a
// mapping of parameters (timeouts, cool_down) with the keys each takes.
var natKeys, natGroups = func() ([]string, map[string][]string) {
	keys := []string{"name", "preset", "external_ips", "inside"}
	groups := map[string][]string{}
	for _, p := range natParams {
		group, leaf, nested := strings.Cut(p.key, ".")
		if !slices.Contains(keys, group) {
			keys = append(keys, group)
		}
		if nested {
			groups[group] = append(groups[group], leaf)
		}
	}
	return append(keys, "forwards"), groups
}()

// maxGeneratedNATs is how many NATs may give external_ips as a count: the
// K-th NAT (0-based) gets 198.18.K.1 .. 198.18.K.N.
const maxGeneratedNATs = 256

// natState is what the NATs decoded so far hold, for the checks across
// NATs.
type natState struct {
	// insideOf maps a host index to the NAT it is behind.
	insideOf map[int]string
	// external maps an external IP to its NAT.
	external map[netip.Addr]string
}

// nats decodes the optional nats list into s.NATs; s has its hosts.
func (d *decoder) nats(f *fields, s *Scenario) error {
	if _, ok := f.get("nats"); !ok {
		return nil
	}
	st := &natState{insideOf: map[int]string{}, external: map[netip.Addr]string{}}
	k := 0
	decode := func(nv val) ([]NAT, error) {
		n, err := d.nat(nv, k, s, st)
		k++
		return []NAT{n}, err
	}
	names := func(n NAT) []string { return []string{n.Name} }
	l, err := namedList(f, "nats", "NAT", "", decode, names)
	if err != nil {
		return err
	}
	s.NATs = l.items
	return nil
}

// nat decodes the k-th entry of nats.
func (d *decoder) nat(nv val, k int, s *Scenario, st *natState) (NAT, error) {
	var n NAT
	f, err := d.fields(nv, natKeys...)
	if err != nil {
		return n, err
	}
	if n.Name, err = f.name("NAT"); err != nil {
		return n, err
	}
	pv, err := f.required("preset", "one of "+strings.Join(nat.PresetNames(), ", "))
	if err != nil {
		return n, err
	}
	preset, err := d.str(pv)
	if err != nil {
		return n, err
	}
	c, err := nat.Preset(preset)
	if err != nil {
		return n, d.fail(pv, "%v", err)
	}
	// written holds the nodes of the keys the file sets, by
	// nat.FieldError's spelling of their path.
	written := map[string]val{"preset": pv}

	iv, err := f.required("inside", "list the hosts behind the NAT")
	if err != nil {
		return n, err
	}
	written["inside"] = iv
	inside, err := d.natInside(f, &n, s, st)
	if err != nil {
		return n, err
	}

	ev, err := f.required("external_ips", "a count (1..254) or a list of addresses")
	if err != nil {
		return n, err
	}
	written["external_ips"] = ev
	if c.ExternalIPs, err = d.externalIPs(ev, k, n.Name, s, st); err != nil {
		return n, err
	}

	groups := map[string]*fields{}
	for _, p := range natParams {
		group, leaf, nested := strings.Cut(p.key, ".")
		pf := f
		if nested {
			if pf = groups[group]; pf == nil {
				gv, ok := f.get(group)
				if !ok {
					continue
				}
				if pf, err = d.fields(gv, natGroups[group]...); err != nil {
					return n, err
				}
				groups[group] = pf
				written[group] = gv
			}
		} else {
			leaf = group
		}
		v, ok := pf.get(leaf)
		if !ok {
			continue
		}
		if err := p.set(d, v, &c); err != nil {
			return n, err
		}
		written[p.key] = v
		n.setting(p.key, v)
	}
	if err := d.forwards(f, &c, &n, inside, written); err != nil {
		return n, err
	}

	if err := c.Validate(len(inside)); err != nil {
		return n, d.natError(err, &c, written)
	}
	n.Config = c
	return n, nil
}

// setting records in n.Settings that the file set key to v.
func (n *NAT) setting(key string, v val) {
	if n.Settings == nil {
		n.Settings = map[string]string{}
	}
	n.Settings[key] = valueText(v)
}

// natInside decodes inside into n.Inside, and returns the inside hosts'
// addresses (every address of every instance), which must differ: the NAT
// tells its inside hosts apart by address.
func (d *decoder) natInside(f *fields, n *NAT, s *Scenario, st *natState) (map[netip.Addr]bool, error) {
	items, err := f.nonEmptyList("inside", "list the hosts behind the NAT")
	if err != nil {
		return nil, err
	}
	addrs := map[netip.Addr]int{}
	for _, hv := range items {
		name, err := d.str(hv)
		if err != nil {
			return nil, err
		}
		first, count, ok := d.lookupHost(s, name)
		if !ok {
			return nil, d.fail(hv, "no host named %q (hosts: %s)", name, strings.Join(hostNames(s), ", "))
		}
		for i := first; i < first+count; i++ {
			h := &s.Hosts[i]
			if o, taken := st.insideOf[i]; taken {
				if o == n.Name {
					return nil, d.fail(hv, "host %q is listed twice", h.Name)
				}
				return nil, d.fail(hv, "host %q is already inside NAT %q; a host is behind at most one NAT", h.Name, o)
			}
			st.insideOf[i] = n.Name
			n.Inside = append(n.Inside, i)
			for _, a := range h.Addresses {
				if o, dup := addrs[a]; dup {
					return nil, d.fail(hv, "host %q has address %v, as host %q does; the hosts behind a NAT need addresses of their own", h.Name, a, s.Hosts[o].Name)
				}
				addrs[a] = i
			}
		}
	}
	inside := make(map[netip.Addr]bool, len(addrs))
	for a := range addrs {
		inside[a] = true
	}
	return inside, nil
}

// externalIPs decodes external_ips of the k-th NAT, named name: a count N,
// for 198.18.k.1 .. 198.18.k.N (RFC 2544's benchmarking range), or a list
// of addresses. None may be a host's address or another NAT's.
func (d *decoder) externalIPs(v val, k int, name string, s *Scenario, st *natState) ([]netip.Addr, error) {
	var ips []netip.Addr
	var at []val // where each address is written
	if items, err := d.list(v); err == nil {
		if len(items) == 0 {
			return nil, d.fail(v, "list at least one address, or give a count")
		}
		for i, iv := range items {
			text, err := d.str(iv)
			if err != nil {
				return nil, err
			}
			a, err := netip.ParseAddr(text)
			if err != nil || a.Zone() != "" {
				return nil, d.fail(iv, "%q is not an IP address", text)
			}
			if a.IsUnspecified() {
				return nil, d.fail(iv, "%v is the unspecified address, not one a NAT can use", a)
			}
			if j := slices.Index(ips, a); j >= 0 {
				return nil, d.fail(iv, "duplicate address %v (external_ips[%d] has it too)", a, j)
			}
			if i > 0 && a.Is4() != ips[0].Is4() {
				return nil, d.fail(iv, "%v is %s but %v is %s; a NAT's external IPs share one address family", a, family(a), ips[0], family(ips[0]))
			}
			ips = append(ips, a)
			at = append(at, iv)
		}
	} else {
		if _, err := d.number(v); err != nil {
			return nil, d.fail(v, "must be a count of external IPs or a list of addresses, got %s", describe(v.node))
		}
		count, err := d.whole(v, 1, 254)
		if err != nil {
			return nil, d.fail(v, "a count of external IPs must be a whole number from 1 to 254 (they are 198.18.%d.1 .. 198.18.%d.254); list the addresses for more, got %s", k, k, describe(v.node))
		}
		if k >= maxGeneratedNATs {
			return nil, d.fail(v, "only the first %d NATs may give external_ips as a count (NAT K gets 198.18.K.1 ..); list this one's addresses", maxGeneratedNATs)
		}
		for i := 1; i <= count; i++ {
			ips = append(ips, netip.AddrFrom4([4]byte{198, 18, byte(k), byte(i)}))
			at = append(at, v)
		}
	}
	for i, a := range ips {
		if h, ok := d.hostAddr[a]; ok {
			return nil, d.fail(at[i], "%v is an address of host %q; a NAT's external IPs must not be a host's", a, s.Hosts[h].Name)
		}
		if o, ok := st.external[a]; ok {
			return nil, d.fail(at[i], "%v is an external IP of NAT %q too", a, o)
		}
	}
	for _, a := range ips {
		st.external[a] = name
	}
	return ips, nil
}

// forwards decodes forwards into c.Forwards; inside are the NAT's inside
// addresses.
func (d *decoder) forwards(f *fields, c *nat.Config, n *NAT, inside map[netip.Addr]bool, written map[string]val) error {
	v, ok := f.get("forwards")
	if !ok {
		return nil
	}
	items, err := d.list(v)
	if err != nil {
		return err
	}
	written["forwards"] = v
	for i, fv := range items {
		key := "forwards." + strconv.Itoa(i)
		written[key] = fv
		ff, err := d.fields(fv, "external_port", "to", "proto", "external_ip")
		if err != nil {
			return err
		}
		var fw nat.Forward
		pv, err := ff.required("external_port", "the port the NAT forwards, 1..65535")
		if err != nil {
			return err
		}
		port, err := d.whole(pv, 1, 65535)
		if err != nil {
			return err
		}
		fw.ExternalPort = uint16(port)
		tv, err := ff.required("to", `the inside ip:port, e.g. "192.168.1.10:22"`)
		if err != nil {
			return err
		}
		text, err := d.str(tv)
		if err != nil {
			return err
		}
		if fw.Inside, err = netip.ParseAddrPort(text); err != nil || fw.Inside.Port() == 0 {
			return d.fail(tv, "%q is not an ip:port with a port of 1..65535", text)
		}
		if !inside[fw.Inside.Addr()] {
			return d.fail(tv, "%v is not an address of a host inside NAT %q", fw.Inside.Addr(), n.Name)
		}
		if pv, ok := ff.get("proto"); ok {
			proto, err := d.str(pv)
			if err != nil {
				return err
			}
			if proto != "tcp" && proto != "udp" {
				return d.fail(pv, "must be tcp or udp, got %q", proto)
			}
			fw.UDP = proto == "udp"
		}
		if ev, ok := ff.get("external_ip"); ok {
			text, err := d.str(ev)
			if err != nil {
				return err
			}
			a, err := netip.ParseAddr(text)
			if err != nil {
				return d.fail(ev, "%q is not an IP address", text)
			}
			if fw.ExternalIP = slices.Index(c.ExternalIPs, a); fw.ExternalIP < 0 {
				return d.fail(ev, "%v is not one of the NAT's external IPs (%s)", a, addrList(c.ExternalIPs))
			}
		}
		for _, k := range ff.order {
			written[key+"."+k] = ff.vals[k]
			n.setting(key+"."+k, ff.vals[k])
		}
		c.Forwards = append(c.Forwards, fw)
	}
	return nil
}

// natError turns an error of nat.Config.Validate into an *Error: at the
// field when the file set it, else at the preset, whose value of the
// field is what conflicts with the file's settings.
func (d *decoder) natError(err error, c *nat.Config, written map[string]val) error {
	var fe *nat.FieldError
	if !errors.As(err, &fe) {
		return d.fail(written["preset"], "%v", err)
	}
	if v, ok := written[fe.Field]; ok {
		return d.fail(v, "%s", fe.Msg)
	}
	what := fe.Field
	if i := slices.IndexFunc(natParams, func(p natParam) bool { return p.key == fe.Field }); i >= 0 {
		what += " " + natParams[i].get(c)
	}
	return d.fail(written["preset"], "preset %s's %s does not fit this NAT's settings: %s (set %s to override the preset)", c.Preset, what, fe.Msg, fe.Field)
}
