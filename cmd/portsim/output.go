package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/renderer"
	"github.com/olekukonko/tablewriter/tw"

	"github.com/portsim/portsim/scenarios"
	"github.com/portsim/portsim/sim"
)

// marshalSummary encodes a summary as summary.json: indented by two
// spaces, with a trailing newline. encoding/json sorts map keys and
// formats floats the same way every time, so equal summaries give equal
// bytes.
func marshalSummary(s *sim.Summary) ([]byte, error) {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding summary: %w", err)
	}
	return append(b, '\n'), nil
}

// seriesHeader is the first line of series.csv.
var seriesHeader = []string{"t_s", "attempts", "successes", "failures", "syn_sent", "established", "closing", "time_wait", "ports_in_use"}

// writeSeries writes the series as CSV, one row per sample.
func writeSeries(w io.Writer, s *sim.Series) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(seriesHeader); err != nil {
		return err
	}
	for _, r := range s.Rows {
		rec := []string{
			formatFloat(r.TS),
			strconv.FormatUint(r.Attempts, 10),
			strconv.FormatUint(r.Successes, 10),
			strconv.FormatUint(r.Failures, 10),
			strconv.Itoa(r.SynSent),
			strconv.Itoa(r.Established),
			strconv.Itoa(r.Closing),
			strconv.Itoa(r.TimeWait),
			strconv.Itoa(r.PortsInUse),
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// writeSeriesFile writes series.csv at path.
func writeSeriesFile(path string, s *sim.Series) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := writeSeries(f, s); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Close()
}

// portsHeader is the first line of ports.csv.
var portsHeader = []string{"t_s", "host", "local", "destination", "port"}

// writePorts writes res.Ports as CSV, one row per port chosen, in order:
// the time of the connect() in seconds, then the host, local address and
// destination ("*" for a port-exclusive host) of its conflict domain, and
// the port.
func writePorts(w io.Writer, res *sim.Result) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(portsHeader); err != nil {
		return err
	}
	doms := res.Summary.Domains
	for i, pc := range res.Ports {
		if pc.Domain < 0 || pc.Domain >= len(doms) {
			return fmt.Errorf("port choice %d names domain %d of %d", i, pc.Domain, len(doms))
		}
		d := &doms[pc.Domain]
		rec := []string{
			formatFloat(pc.TS),
			d.Host,
			d.Local,
			d.Destination,
			strconv.FormatUint(uint64(pc.Port), 10),
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// writePortsFile writes ports.csv at path. The file is written only once
// the whole CSV is ready, so a bad result leaves none behind.
func writePortsFile(path string, res *sim.Result) error {
	var buf bytes.Buffer
	if err := writePorts(&buf, res); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// formatFloat formats x with the fewest digits that read back exactly.
func formatFloat(x float64) string {
	return strconv.FormatFloat(x, 'f', -1, 64)
}

// seconds formats a time in seconds, e.g. "60s" or "12.5s".
func seconds(x float64) string {
	return formatFloat(x) + "s"
}

// millis formats a time in seconds rounded to the millisecond, e.g.
// "47.015s".
func millis(x float64) string {
	return seconds(math.Round(x*1000) / 1000)
}

// renderTable renders a compact borderless table (column separators, a
// line under the header, header names kept as written) with the given
// rows; align sets the alignment of the first columns (default left). The
// padding tablewriter puts after the last column is left out.
func renderTable(w io.Writer, header []string, rows [][]string, align ...tw.Align) error {
	var buf bytes.Buffer
	t := tablewriter.NewTable(&buf,
		tablewriter.WithRenderer(renderer.NewBlueprint(tw.Rendition{
			Borders: tw.BorderNone,
			Symbols: tw.NewSymbols(tw.StyleASCII),
			Settings: tw.Settings{
				Separators: tw.Separators{BetweenColumns: tw.On},
			},
		})),
		tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithRowAutoWrap(tw.WrapNone),
		tablewriter.WithHeaderAlignment(tw.AlignLeft),
		tablewriter.WithRowAlignmentConfig(tw.CellAlignment{Global: tw.AlignLeft, PerColumn: align}),
	)
	t.Header(header)
	if err := t.Bulk(rows); err != nil {
		return err
	}
	if err := t.Render(); err != nil {
		return err
	}
	var out strings.Builder
	for line := range strings.Lines(buf.String()) {
		out.WriteString(strings.TrimRight(line, " \n"))
		out.WriteByte('\n')
	}
	_, err := io.WriteString(w, out.String())
	return err
}

// printRunTables prints the human-readable summary of a run: what ran (with
// the --set overrides, which the description does not know about), the
// settings each host used and the results (one column for all the
// instances of a host written with count: N, see hostColumns), the most
// loaded domain beside the analytic estimates, what each NAT did, and the
// files written.
func printRunTables(w io.Writer, s *scenarios.Scenario, sum *sim.Summary, overrides, files []string) error {
	p := &printer{w: w}
	p.printf("scenario  %s\n", sum.Scenario)
	for _, line := range wrap(s.Description, 68) {
		p.printf("          %s\n", line)
	}
	p.printf("file      %s\n", sum.File)
	for _, o := range overrides {
		p.printf("set       %s\n", o)
	}
	p.printf("seed      %d\nduration  %s\n", sum.Seed, seconds(sum.DurationS))

	hosts := hostColumns(s, sum.Hosts)
	p.section("Host settings")
	header := []string{"setting"}
	for _, h := range hosts {
		header = append(header, h.name)
	}
	settings := [][]string{
		{"os"}, {"source"}, {"ip_local_port_range"}, {"ip_local_reserved_ports"},
		{"usable ports"}, {"TIME_WAIT"}, {"connect() shares ports"}, {"allocator"},
		{"tcp_tw_reuse"}, {"tcp_tw_reuse_delay"}, {"tcp_timestamps"}, {"tcp_max_tw_buckets"},
	}
	for _, h := range hosts {
		hs := h.settings
		vals := []string{
			hostOS(hs), hs.Source, hs.PortRange, orNone(hs.ReservedPorts),
			strconv.Itoa(hs.UsablePorts), timeWait(hs), yesNo(hs.ConnectSharesPort), hs.Allocator,
			twReuse(hs.TCPTwReuse), reuseDelay(hs.TCPTwReuseDelayMS), boolInt(hs.TCPTimestamps), twBuckets(hs.TCPMaxTwBuckets),
		}
		for i := range settings {
			settings[i] = append(settings[i], vals[i])
		}
	}
	p.table(header, settings)

	p.section("Results")
	header = []string{"metric"}
	var cols []resultColumn
	var overflows, recycled uint64
	grouped := false
	for _, h := range hosts {
		header = append(header, h.name)
		cols = append(cols, h.results)
		overflows += h.results.twOverflows
		recycled += h.results.twRecycled
		grouped = grouped || h.instances > 1
	}
	header = append(header, "total")
	cols = append(cols, resultColumn{sum.Totals, sum.ProbesPerAlloc, overflows, recycled})
	p.table(header, resultRows(cols), rightAligned(len(header))...)
	if grouped {
		p.note(groupedNote)
	}
	if len(sum.Servers) > 0 {
		p.section("Servers")
		p.table([]string{"server", "listen", "accepted", "per listener", "refused (RST)", "dropped SYNs", "start / restarts"},
			serverRows(sum.Servers), tw.AlignLeft, tw.AlignLeft, tw.AlignRight, tw.AlignLeft, tw.AlignRight, tw.AlignRight, tw.AlignLeft)
	}
	if len(sum.Bursts) > 0 {
		p.section("Bursts: after each burst ends, when the run's failures stop and its ports are back")
		rows, more := burstRows(sum.Bursts)
		p.table([]string{"workload", "burst ends", "failures stop", "ports back"}, rows, tw.AlignLeft, tw.AlignRight, tw.AlignRight, tw.AlignRight)
		if more > 0 {
			p.note(fmt.Sprintf("%d more bursts in %s", more, summaryFile))
		}
		p.note("measured on the series, every " + seconds(s.Sample.Seconds()) + ", up to the next burst's start or the end of the run: " +
			"failures stop at the end of the last interval with a failed connect(); ports are back when the ports held are at most what they were before the burst began")
	}

	if sum.MostLoaded >= 0 && sum.MostLoaded < len(sum.Domains) {
		d := &sum.Domains[sum.MostLoaded]
		p.section(fmt.Sprintf("Busiest destination (highest offered load): %s, %s -> %s (%d usable ports)", d.Host, d.Local, d.Destination, d.UsablePorts))
		p.domain(d)
	}

	for i := range sum.NATs {
		p.nat(&sum.NATs[i])
	}

	p.section("Files written")
	for _, f := range files {
		p.printf("  %s\n", f)
	}
	return p.err
}

// printer writes sections and tables, keeping the first error.
type printer struct {
	w   io.Writer
	err error
}

// printf prints unless an earlier write failed.
func (p *printer) printf(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, args...)
	}
}

// section starts a titled section after a blank line.
func (p *printer) section(title string) {
	p.printf("\n%s\n", title)
}

// table prints a table (see renderTable).
func (p *printer) table(header []string, rows [][]string, align ...tw.Align) {
	if p.err == nil {
		p.err = renderTable(p.w, header, rows, align...)
	}
}

// note prints a remark in parentheses, wrapped to the width of a terminal.
func (p *printer) note(text string) {
	for _, line := range wrap("("+text+")", 78) {
		p.printf("%s\n", line)
	}
}

// domain prints a domain's simulated figures beside the closed-form ones.
// The analytic figures describe the steady state, so they are set beside
// the figures measured after the warm-up (one mean holding time) when the
// run was long enough to have one; the whole-run figures are shown too.
// The steady-state and analytic columns appear only when they apply.
func (p *printer) domain(d *sim.DomainSummary) {
	a, st := d.Analytic, d.Steady
	blocking := 0.0
	if d.Attempts > 0 {
		blocking = float64(failureCount(d.Failures)) / float64(d.Attempts)
	}
	// One row per metric: name, whole run, steady state, analytic, model.
	rows := [][5]string{
		{"blocking (failures / attempts)", fmt.Sprintf("%.3g", blocking), "", fmt.Sprintf("%.3g", a.ErlangBBlocking), "Erlang B"},
		{"mean ports in use", fmt.Sprintf("%.1f", d.MeanPortsInUse), "", fmt.Sprintf("%.1f", a.LittlesLawPorts), "Little's law"},
		{"peak ports in use", strconv.Itoa(d.PeakPortsInUse)},
		{"offered load (Erlangs)", "", "", fmt.Sprintf("%.1f", a.OfferedLoadErlangs), "rate x mean holding time"},
		{"fluid limit rate (conn/s)", "", "", fmt.Sprintf("%.1f", a.FluidLimitRate), "usable ports / mean holding time"},
	}
	header := []string{"metric", "whole run", "", "analytic", "model"}
	align := []tw.Align{tw.AlignLeft, tw.AlignRight, tw.AlignRight, tw.AlignRight, tw.AlignLeft}
	cols := []int{0, 1}
	if st != nil {
		header[2] = fmt.Sprintf("after %s warm-up", millis(st.FromS))
		rows[0][2] = fmt.Sprintf("%.3g", st.Blocking)
		rows[1][2] = fmt.Sprintf("%.1f", st.MeanPortsInUse)
		cols = append(cols, 2)
	}
	if a.Applicable {
		cols = append(cols, 3, 4)
	} else {
		rows = rows[:3] // the last two rows hold only analytic figures
	}
	table := make([][]string, len(rows))
	for i, r := range rows {
		for _, c := range cols {
			table[i] = append(table[i], r[c])
		}
	}
	var hdr []string
	var al []tw.Align
	for _, c := range cols {
		hdr, al = append(hdr, header[c]), append(al, align[c])
	}
	p.table(hdr, table, al...)
	if !a.Applicable {
		p.note("analytic estimates not applicable: Erlang B needs Poisson arrivals over the whole run, every blocked attempt dropped, and TIME_WAIT not cut short by tcp_max_tw_buckets")
	}
	if st == nil {
		p.note("no steady-state window: the run is shorter than two mean holding times")
	}
}

// serverRows formats the servers: what they accepted, per listener of a
// SO_REUSEPORT group, what was refused while no listener was bound, and how
// the start and each restart went.
func serverRows(servers []sim.ServerSummary) [][]string {
	var rows [][]string
	for _, s := range servers {
		per := make([]string, len(s.PerListener))
		for i, n := range s.PerListener {
			per[i] = strconv.FormatUint(n, 10)
		}
		var events []string
		if s.StartErrno != "" {
			events = append(events, "start: "+s.StartErrno)
		}
		for _, r := range s.Restarts {
			e := "restart at " + seconds(r.AtS) + ": "
			if r.BoundS != nil {
				e += "bound at " + seconds(*r.BoundS)
			} else {
				e += "never bound again"
			}
			if r.Attempts > 1 || r.BoundS == nil {
				e += fmt.Sprintf(" after %d tries (%s)", r.Attempts, r.LastErrno)
			}
			events = append(events, e)
		}
		rows = append(rows, []string{s.Name, s.Listen, strconv.FormatUint(s.Accepted, 10), strings.Join(per, " "),
			strconv.FormatUint(s.Refused, 10), strconv.FormatUint(s.Dropped, 10), strings.Join(events, "; ")})
	}
	return rows
}

// maxBurstRows caps the Bursts table: an onoff load has a burst every
// period, and summary.json holds them all.
const maxBurstRows = 20

// burstRows formats the first maxBurstRows bursts: when each ended, and
// how long after it the failures stopped and the ports were back; more is
// how many were left out.
func burstRows(bursts []sim.Burst) (rows [][]string, more int) {
	later := func(s *float64) string {
		if s == nil {
			return "not observed"
		}
		return "+" + millis(*s)
	}
	for _, b := range bursts[:min(len(bursts), maxBurstRows)] {
		stop := later(b.RecoveryS)
		if b.RecoveryS != nil && !b.Recovered {
			stop = "still failing at " + stop
		}
		rows = append(rows, []string{b.Workload, millis(b.EndS), stop, later(b.PortsBackS)})
	}
	return rows, max(0, len(bursts)-maxBurstRows)
}

// hostColumn is one column of the Host settings and Results tables: a
// host, or all the instances of a host written with count: N.
type hostColumn struct {
	// name is the host's, or "NAME ×N" for N instances.
	name      string
	instances int
	// settings are the (first) instance's.
	settings sim.HostSettings
	results  resultColumn
}

// groupedNote explains the columns of hosts written with count: N.
const groupedNote = "a host written with count: N is one column, NAME ×N, with the settings of NAME-1; " +
	"attempts, successes, failures and TIME_WAIT skipped or taken over are summed over its instances, " +
	"the first failure is the earliest, and the peaks and probes/alloc are the highest of any one instance"

// hostColumns gives each host of the summary its column, except that the
// instances of a host written with count: N > 1 (by s, matched by name)
// share one, where the host first appears. The results of such a column
// add up the instances' counts (sim.Totals.Add) and keep the highest
// peaks and probe quantiles of any instance: peaks of instances do not
// add, since each instance has its own ports.
func hostColumns(s *scenarios.Scenario, hosts []sim.HostSummary) []hostColumn {
	group := map[string]string{}
	if s != nil {
		for _, h := range s.Hosts {
			if h.Count > 1 {
				group[h.Name] = h.Group
			}
		}
	}
	var cols []hostColumn
	at := map[string]int{}
	for _, h := range hosts {
		g, ok := group[h.Name]
		if !ok {
			cols = append(cols, hostColumn{h.Name, 1, h.Settings, resultColumn{h.Totals, h.ProbesPerAlloc, h.TwOverflows, h.TwRecycled}})
			continue
		}
		i, seen := at[g]
		if !seen {
			i = len(cols)
			at[g] = i
			cols = append(cols, hostColumn{settings: h.Settings, results: resultColumn{Totals: sim.Totals{Failures: map[string]uint64{}}}})
		}
		c := &cols[i]
		c.instances++
		c.name = fmt.Sprintf("%s ×%d", g, c.instances)
		r := &c.results
		r.Add(&h.Totals)
		r.PeakTimeWait = max(r.PeakTimeWait, h.PeakTimeWait)
		r.PeakPortsInUse = max(r.PeakPortsInUse, h.PeakPortsInUse)
		r.probes.P50 = max(r.probes.P50, h.ProbesPerAlloc.P50)
		r.probes.P99 = max(r.probes.P99, h.ProbesPerAlloc.P99)
		r.probes.Max = max(r.probes.Max, h.ProbesPerAlloc.Max)
		r.twOverflows += h.TwOverflows
		r.twRecycled += h.TwRecycled
	}
	return cols
}

// resultColumn is one column of the results table: a host or the total.
type resultColumn struct {
	sim.Totals
	probes      sim.Quantiles
	twOverflows uint64
	twRecycled  uint64
}

// resultRows turns the columns into metric rows. The last rows, TIME_WAIT
// skipped because tcp_max_tw_buckets was full, TIME_WAIT taken over under
// tcp_tw_reuse, SYNs still retried and requests served by a keep-alive
// pool's idle connections, appear only when the total column has any.
func resultRows(cols []resultColumn) [][]string {
	rows := [][]string{
		{"attempts"}, {"successes"}, {"failures"}, {"first failure"},
		{"peak TIME_WAIT"}, {"peak ports in use"}, {"probes/alloc p50"}, {"probes/alloc p99"},
		{"TIME_WAIT skipped (tcp_max_tw_buckets full)"},
		{"TIME_WAIT taken over (TIMEWAITRECYCLED)"},
		{"still retrying a SYN a NAT dropped"},
		{"requests on an idle pooled connection"},
	}
	for _, c := range cols {
		first := "none"
		if c.FirstFailureS != nil {
			first = millis(*c.FirstFailureS)
		}
		vals := []string{
			strconv.FormatUint(c.Attempts, 10),
			strconv.FormatUint(c.Successes, 10),
			failuresByErrno(c.Failures),
			first,
			strconv.Itoa(c.PeakTimeWait),
			strconv.Itoa(c.PeakPortsInUse),
			strconv.Itoa(c.probes.P50),
			strconv.Itoa(c.probes.P99),
			strconv.FormatUint(c.twOverflows, 10),
			strconv.FormatUint(c.twRecycled, 10),
			strconv.FormatUint(c.Retrying, 10),
			strconv.FormatUint(c.Reused, 10),
		}
		for i := range rows {
			rows[i] = append(rows[i], vals[i])
		}
	}
	total := cols[len(cols)-1]
	// The last rows only when they say something.
	optional := []bool{total.twOverflows > 0, total.twRecycled > 0, total.Retrying > 0, total.Reused > 0}
	keep := rows[:len(rows)-len(optional)]
	for i, show := range optional {
		if show {
			keep = append(keep, rows[len(rows)-len(optional)+i])
		}
	}
	return keep
}

// rightAligned aligns the first column left and the other n-1 right.
func rightAligned(n int) []tw.Align {
	a := make([]tw.Align, n)
	a[0] = tw.AlignLeft
	for i := 1; i < n; i++ {
		a[i] = tw.AlignRight
	}
	return a
}

// failuresByErrno formats failure counts as "EADDRNOTAVAIL 12, EAGAIN 3"
// in errno order, or "0".
func failuresByErrno(m map[string]uint64) string {
	var parts []string
	for _, errno := range slices.Sorted(maps.Keys(m)) {
		if m[errno] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", errno, m[errno]))
		}
	}
	if parts == nil {
		return "0"
	}
	return strings.Join(parts, ", ")
}

// failureCount sums failures over errnos.
func failureCount(m map[string]uint64) uint64 {
	var n uint64
	for _, c := range m {
		n += c
	}
	return n
}

// wrap breaks text into lines of at most width bytes at spaces (a longer
// word gets a line of its own).
func wrap(text string, width int) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(text) {
		switch {
		case line == "":
			line = word
		case len(line)+1+len(word) <= width:
			line += " " + word
		default:
			lines = append(lines, line)
			line = word
		}
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}

// The formatters below render one host setting each for the Host settings
// table.

func hostOS(hs sim.HostSettings) string {
	if hs.OS == "host" {
		return "host (settings read from this machine)"
	}
	return hs.OS
}

func timeWait(hs sim.HostSettings) string {
	if hs.TimeWaitHypothetical {
		return seconds(hs.TimeWaitS) + " (hypothetical)"
	}
	return seconds(hs.TimeWaitS)
}

// reuseDelay formats tcp_tw_reuse_delay in milliseconds, "-" where the
// stack has no such setting (0).
func reuseDelay(ms int) string {
	if ms == 0 {
		return "-"
	}
	return strconv.Itoa(ms) + " ms"
}

// twReuse adds what a tcp_tw_reuse value means (ip-sysctl.rst).
func twReuse(n int) string {
	switch n {
	case 0:
		return "0 (off)"
	case 1:
		return "1 (on)"
	case 2:
		return "2 (loopback only)"
	}
	return strconv.Itoa(n)
}

func twBuckets(n int) string {
	if n < 0 {
		return "no cap"
	}
	return strconv.Itoa(n)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func boolInt(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
