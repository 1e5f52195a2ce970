package main

import (
	"bytes"
	"cmp"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/olekukonko/tablewriter/tw"

	"github.com/portsim/portsim/plots"
	"github.com/portsim/portsim/sim"
)

// natCSVFile is the NAT series, written when the scenario has NATs.
const natCSVFile = "nat.csv"

// natStalePatterns match the NAT files an earlier run may have left in the
// output directory.
var natStalePatterns = []string{natCSVFile, "nat.png", "nat.svg", "nat-*.png", "nat-*.svg"}

// How many rows the NAT section's tables show at most; the rest are
// counted in a last "+N more" row.
const (
	natMaxIPRows     = 8
	natMaxInsideRows = 5
	natMaxDestRows   = 5
)

// natHeader is the header of nat.csv: t_s, then for each NAT NAME (in the
// summary's order) NAME:flows, NAME:drops, NAME:ports@IP for each
// external IP and NAME:flows@HOST for each inside host (see
// plots.NATInsideNames for a host with several addresses).
func natHeader(res *sim.Result) []string {
	h := []string{"t_s"}
	for i := range res.Series.NATs {
		ser := &res.Series.NATs[i]
		var sum sim.NATSummary
		if i < len(res.Summary.NATs) {
			sum = res.Summary.NATs[i]
		}
		h = append(h, ser.Name+":flows", ser.Name+":drops")
		for _, ip := range ser.IPs {
			h = append(h, ser.Name+":ports@"+ip)
		}
		for _, name := range plots.NATInsideNames(&sum, ser) {
			h = append(h, ser.Name+":flows@"+name)
		}
	}
	return h
}

// writeNATSeries writes the NAT series of res as CSV in wide form, one row
// per sample (natHeader's columns): the time, then for each NAT the
// flows held, the drops during the interval ending then, the distinct
// ports in use on each external IP and the flows of each inside host.
// Wide rather than one row per (sample, column): a NAT in front of
// thousands of hosts would otherwise repeat the time and names thousands
// of times per sample.
func writeNATSeries(w io.Writer, res *sim.Result) error {
	rows := res.Series.Rows
	for _, ser := range res.Series.NATs {
		if len(ser.Rows) != len(rows) {
			return fmt.Errorf("NAT %s has %d rows for %d samples", ser.Name, len(ser.Rows), len(rows))
		}
		for j, r := range ser.Rows {
			if len(r.IPPorts) != len(ser.IPs) || len(r.InsideFlows) != len(ser.Inside) {
				return fmt.Errorf("NAT %s sample %d has %d IP and %d inside columns for %d IPs and %d inside hosts",
					ser.Name, j, len(r.IPPorts), len(r.InsideFlows), len(ser.IPs), len(ser.Inside))
			}
		}
	}
	header := natHeader(res)
	cw := csv.NewWriter(w)
	if err := cw.Write(header); err != nil {
		return err
	}
	rec := make([]string, 0, len(header))
	for j, r := range rows {
		rec = append(rec[:0], formatFloat(r.TS))
		for _, ser := range res.Series.NATs {
			nr := &ser.Rows[j]
			rec = append(rec, strconv.Itoa(nr.Flows), strconv.FormatUint(nr.Drops, 10))
			for _, v := range nr.IPPorts {
				rec = append(rec, strconv.Itoa(v))
			}
			for _, v := range nr.InsideFlows {
				rec = append(rec, strconv.Itoa(v))
			}
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// writeNATFiles writes nat.csv and the NAT charts (plots.WriteNAT) into
// dir when res has NATs, and returns the names of the files written, in
// the order they are listed. NAT files an earlier run left in dir that
// this run does not write are removed, so that dir holds only this run's
// results. Nothing is written when the CSV or a chart cannot be made.
func writeNATFiles(dir string, res *sim.Result) ([]string, error) {
	var files []string
	if len(res.Summary.NATs) > 0 {
		files = append(files, natCSVFile)
		for _, name := range plots.NATFileNames(res) {
			files = append(files, name+".png", name+".svg")
		}
	}
	if err := removeStaleNATFiles(dir, files); err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, nil
	}
	var buf bytes.Buffer
	if err := writeNATSeries(&buf, res); err != nil {
		return nil, fmt.Errorf("writing %s: %w", filepath.Join(dir, natCSVFile), err)
	}
	// The charts check the series too, and write nothing when one fails.
	if err := plots.WriteNAT(res, dir); err != nil {
		return nil, fmt.Errorf("writing plots: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, natCSVFile), buf.Bytes(), 0o644); err != nil {
		return nil, err
	}
	return files, nil
}

// removeStaleNATFiles removes the files of dir that match natStalePatterns
// and are not in keep.
func removeStaleNATFiles(dir string, keep []string) error {
	for _, pat := range natStalePatterns {
		matches, err := filepath.Glob(filepath.Join(dir, pat))
		if err != nil {
			return err
		}
		for _, m := range matches {
			if slices.Contains(keep, filepath.Base(m)) {
				continue
			}
			if err := os.Remove(m); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	return nil
}

// natLabelWidth is the width of the labels of a NAT section's first lines.
const natLabelWidth = 15

// nat prints the section of one NAT: what it is, whether, why and from
// when it dropped and for how many inside addresses, how it chose ports, then its external IPs, the inside
// hosts that dropped most (or held most), its destinations, and the
// sources and assumptions of its preset.
func (p *printer) nat(n *sim.NATSummary) {
	title := "NAT " + n.Name
	if n.Preset != "" {
		title += " (preset " + n.Preset + ")"
	}
	p.section(fmt.Sprintf("%s: %s, %s", title, plural(len(n.ExternalIPs), "external IP"), plural(len(n.Inside), "inside address")))
	if len(n.Settings) > 0 {
		var set []string
		for _, k := range slices.Sorted(maps.Keys(n.Settings)) {
			set = append(set, k+"="+n.Settings[k])
		}
		p.field("set", strings.Join(set, ", "))
	}
	limits := groupThousands(n.PoolPorts) + " ports per external IP"
	if n.PerDestinationCap > 0 {
		limits += ", at most " + groupThousands(n.PerDestinationCap) + " flows per IP to one destination"
	}
	if n.PortsPerHost > 0 {
		limits += ", " + groupThousands(n.PortsPerHost) + " per inside address"
	}
	p.field("limits", limits)
	p.field("mappings peak", fmt.Sprintf("%d (flows peak %d)", n.MappingsPeak, n.FlowsPeak))
	p.field("drops", natDrops(n))
	if failureCount(n.Drops) > 0 && len(n.Inside) > 0 {
		hit := 0
		for _, in := range n.Inside {
			if failureCount(in.Drops) > 0 {
				hit++
			}
		}
		if hit > 0 { // inbound drops (filtered) have no inside address
			p.field("dropped for", fmt.Sprintf("%d of %s", hit, plural(len(n.Inside), "inside address")))
		}
	}
	searched := fmt.Sprintf("searched %d", n.Searched)
	if n.Searched > 0 {
		searched += fmt.Sprintf(" (probes per search: mean %.3g, max %d)", n.ProbesPerSearch, n.ProbesMax)
	}
	p.field("ports chosen", fmt.Sprintf("preserved %d, reused mapping %d, %s, evicted %d", n.Preserved, n.Reused, searched, n.Evicted))

	ips := make([][]string, 0, len(n.ExternalIPs))
	for _, ip := range n.ExternalIPs {
		ips = append(ips, []string{ip.Address, strconv.Itoa(ip.PeakFlows), strconv.Itoa(ip.PeakPorts)})
	}
	p.printf("\n")
	p.table([]string{"external IP", "peak flows", "peak ports"}, capRows(ips, natMaxIPRows), tw.AlignLeft, tw.AlignRight, tw.AlignRight)

	if len(n.Inside) > 0 {
		p.printf("\n")
		p.natInside(n.Inside)
	}
	if len(n.Destinations) > 0 {
		dests := slices.Clone(n.Destinations)
		slices.SortStableFunc(dests, func(a, b sim.NATDestSummary) int {
			return cmp.Or(cmp.Compare(failureCount(b.Drops), failureCount(a.Drops)), cmp.Compare(b.PeakFlows, a.PeakFlows))
		})
		rows := make([][]string, 0, len(dests))
		for _, d := range dests {
			rows = append(rows, []string{d.Destination, d.Proto, strconv.Itoa(d.PeakFlows), failuresByErrno(d.Drops)})
		}
		p.printf("\n")
		p.table([]string{"destination", "proto", "peak flows", "drops"}, capRows(rows, natMaxDestRows),
			tw.AlignLeft, tw.AlignLeft, tw.AlignRight, tw.AlignLeft)
	}
	if len(n.Notes) > 0 {
		what := "the NAT's"
		if n.Preset != "" {
			what = n.Preset + "'s"
		}
		p.printf("\nSources and assumptions (%s numbers):\n", what)
		for _, note := range n.Notes {
			for i, line := range wrap(note, 74) {
				lead := "    "
				if i == 0 {
					lead = "  - "
				}
				p.printf("%s%s\n", lead, line)
			}
		}
	}
}

// natInside prints the inside hosts that dropped most, then those with the
// highest peak flows (so, when none dropped, the busiest), at most
// natMaxInsideRows. The column of ports allocated to each host is left out
// when every host's is 0 (the NAT shares its ports).
func (p *printer) natInside(inside []sim.NATInsideSummary) {
	hosts := slices.Clone(inside)
	slices.SortStableFunc(hosts, func(a, b sim.NATInsideSummary) int {
		return cmp.Or(cmp.Compare(failureCount(b.Drops), failureCount(a.Drops)), cmp.Compare(b.PeakFlows, a.PeakFlows))
	})
	allocated := slices.ContainsFunc(hosts, func(h sim.NATInsideSummary) bool { return h.PeakAllocated > 0 })
	order := "highest peak flows first"
	if failureCount(hosts[0].Drops) > 0 {
		order = "most drops first"
	}
	header := []string{"inside host (" + order + ")", "address", "peak flows"}
	align := []tw.Align{tw.AlignLeft, tw.AlignLeft, tw.AlignRight}
	if allocated {
		header = append(header, "peak ports allocated")
		align = append(align, tw.AlignRight)
	}
	header = append(header, "drops")
	align = append(align, tw.AlignLeft)
	rows := make([][]string, 0, len(hosts))
	for _, h := range hosts {
		r := []string{h.Host, h.Address, strconv.Itoa(h.PeakFlows)}
		if allocated {
			r = append(r, strconv.Itoa(h.PeakAllocated))
		}
		rows = append(rows, append(r, failuresByErrno(h.Drops)))
	}
	p.table(header, capRows(rows, natMaxInsideRows), align...)
}

// natDrops says whether, from when and why a NAT dropped: "none", or
// "4840, the first at 50s: per-destination-cap 4800, table-full 40".
func natDrops(n *sim.NATSummary) string {
	total := failureCount(n.Drops)
	if total == 0 {
		return "none"
	}
	s := strconv.FormatUint(total, 10)
	if n.FirstDropS != nil {
		s += ", the first at " + millis(*n.FirstDropS)
	}
	return s + ": " + failuresByErrno(n.Drops)
}

// field prints "  LABEL  VALUE", the value wrapped to a terminal's width
// under itself.
func (p *printer) field(label, value string) {
	indent := strings.Repeat(" ", 2+natLabelWidth)
	for i, line := range wrap(value, 78-len(indent)) {
		if i == 0 {
			p.printf("  %-*s%s\n", natLabelWidth, label, line)
		} else {
			p.printf("%s%s\n", indent, line)
		}
	}
}

// capRows returns the first n rows, and a last row counting the others
// ("+3 more") when there are more.
func capRows(rows [][]string, n int) [][]string {
	if len(rows) <= n {
		return rows
	}
	more := make([]string, len(rows[0]))
	more[0] = fmt.Sprintf("+%d more", len(rows)-n)
	return append(rows[:n:n], more)
}

// plural is "1 NOUN" or "N NOUNs" (with "es" after a final s).
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	if strings.HasSuffix(noun, "s") {
		return strconv.Itoa(n) + " " + noun + "es"
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
