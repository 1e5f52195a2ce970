package scenarios

import (
	"net/netip"
	"strconv"
)

// Limits on what count expands to.
const (
	// MaxHosts is the most hosts a scenario may have once every host with
	// count: N has become N instances (and the largest count).
	MaxHosts = 100000
	// MaxWorkloads is the most workloads a scenario may have once every
	// workload from a host with count: N has become N workloads.
	MaxWorkloads = 200000
)

// maxHosts and maxWorkloads are the limits in force: MaxHosts and
// MaxWorkloads, lowered by tests and fuzzers (a Host is 8 KB, so 100,000
// instances take most of a gigabyte).
var maxHosts, maxWorkloads = MaxHosts, MaxWorkloads

// hosts decodes the hosts list into s.Hosts, each host with count: N
// expanded into N instances, and indexes them for lookupHost.
func (d *decoder) hosts(f *fields, s *Scenario) error {
	total := 0
	decode := func(hv val) ([]Host, error) {
		h, err := d.host(hv)
		if err != nil {
			return nil, err
		}
		if total+h.Count > maxHosts {
			return nil, d.fail(d.field(hv, "count"), "the hosts come to %d instances with this one; a scenario may have at most %d", total+h.Count, maxHosts)
		}
		total += h.Count
		return d.instances(hv, h)
	}
	names := func(h Host) []string {
		if h.Count > 1 && h.Instance == 1 {
			return []string{h.Group, h.Name}
		}
		return []string{h.Name}
	}
	const hint = "; a host with count: N stands for NAME-1 .. NAME-N"
	l, err := namedList(f, "hosts", "host", hint, decode, names)
	if err != nil {
		return err
	}
	s.Hosts = l.items
	d.hostIndex = make(map[string]int, len(s.Hosts))
	d.groupIndex = map[string]int{}
	d.hostAddr = map[netip.Addr]int{}
	for i, h := range s.Hosts {
		d.hostIndex[h.Name] = i
		if h.Count > 1 && h.Instance == 1 {
			d.groupIndex[h.Group] = i
		}
		for j, a := range h.Addresses {
			o, taken := d.hostAddr[a]
			if !taken {
				d.hostAddr[a] = i
				continue
			}
			// Hosts written one by one may share an address, as
			// before count existed; an instance may not.
			if h.Count == 1 && s.Hosts[o].Count == 1 {
				continue
			}
			av := d.addressVal(l.entries[l.entry[i]], j)
			if h.Instance > 1 {
				return d.fail(av, "instance %s's address %v (this address advanced by %d) is also an address of host %q; addresses of instances must not collide",
					h.Name, a, h.Instance-1, s.Hosts[o].Name)
			}
			return d.fail(av, "%v is also an address of host %q (an instance of %q, which has count: %d); addresses of instances must not collide",
				a, s.Hosts[o].Name, s.Hosts[o].Group, s.Hosts[o].Count)
		}
	}
	return nil
}

// addressVal is element j of the addresses of host entry hv, to position
// an error found after decoding.
func (d *decoder) addressVal(hv val, j int) val {
	av := d.field(hv, "addresses")
	if items, err := d.list(av); err == nil && j < len(items) {
		return items[j]
	}
	return av
}

// instances expands host h, decoded from hv, into its h.Count instances:
// NAME-1 .. NAME-N, instance i with each of the written addresses advanced
// by i-1. A host without count is returned as it is.
func (d *decoder) instances(hv val, h Host) ([]Host, error) {
	if h.Count == 1 {
		return []Host{h}, nil
	}
	out := make([]Host, h.Count)
	for i := range out {
		in := h
		in.Name = h.Name + "-" + strconv.Itoa(i+1)
		in.Instance = i + 1
		in.Addresses = make([]netip.Addr, len(h.Addresses))
		for j, a := range h.Addresses {
			if i > 0 {
				a = out[i-1].Addresses[j].Next()
				if !a.IsValid() {
					return nil, d.fail(d.addressVal(hv, j), "instance %s would need the address after %v, past the end of the %s address space; count %d is too many for %v",
						in.Name, out[i-1].Addresses[j], family(h.Addresses[j]), h.Count, h.Addresses[j])
				}
			}
			in.Addresses[j] = a
		}
		out[i] = in
	}
	return out, nil
}

// lookupHost finds what a host name in the file means: the host of that
// name (first, 1), or every instance of a host written with count: N
// (its first instance, N).
func (d *decoder) lookupHost(s *Scenario, name string) (first, n int, ok bool) {
	if i, ok := d.hostIndex[name]; ok {
		return i, 1, true
	}
	if i, ok := d.groupIndex[name]; ok {
		return i, s.Hosts[i].Count, true
	}
	return 0, 0, false
}

// hostNames lists the hosts as written, for messages: each host with
// count once, by its written name.
func hostNames(s *Scenario) []string {
	var names []string
	for _, h := range s.Hosts {
		if h.Instance == 1 {
			names = append(names, h.Group)
		}
	}
	return names
}

// workloads decodes one workload entry. A workload from a host with
// count: N becomes N workloads, one per instance, named NAME@HOST-i (so
// that names, and the random streams seeded by them, differ), each with
// the instance's address in place of the written one. made is how many
// workloads the earlier entries made.
func (d *decoder) workloads(wv val, s *Scenario, made int) ([]Workload, error) {
	w, n, err := d.workload(wv, s)
	if err != nil {
		return nil, err
	}
	if n == 1 {
		return []Workload{w}, nil
	}
	if made+n > maxWorkloads {
		return nil, d.fail(d.field(wv, "from"), "the workloads come to %d with this one's %d copies, one per instance of host %q; a scenario may have at most %d",
			made+n, n, s.Hosts[w.From].Group, maxWorkloads)
	}
	// Source is one of the first instance's addresses, which are the
	// written ones.
	src := 0
	for j, a := range s.Hosts[w.From].Addresses {
		if a == w.Source {
			src = j
		}
	}
	out := make([]Workload, n)
	for i := range out {
		c := w
		c.From = w.From + i
		h := &s.Hosts[c.From]
		c.Name = w.Name + "@" + h.Name
		c.Source = h.Addresses[src]
		out[i] = c
	}
	return out, nil
}
