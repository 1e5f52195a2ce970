package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/olekukonko/tablewriter/tw"
	"github.com/spf13/cobra"

	"github.com/portsim/portsim/alloc"
	"github.com/portsim/portsim/plots"
	"github.com/portsim/portsim/sim/predict"
)

// PredictFile is the JSON report predict writes into its output directory.
const PredictFile = "predict.json"

// PredictOptions are the parsed command line of "portsim predict".
type PredictOptions struct {
	IO      *IOStreams
	Predict predict.Options
	OutDir  string
	Format  string
}

// NewCmdPredict builds "portsim predict". It parses the command line into
// PredictOptions and hands them to runF, or to runPredict when runF is nil.
func NewCmdPredict(ios *IOStreams, runF func(*PredictOptions) error) *cobra.Command {
	opts := &PredictOptions{IO: ios}
	var (
		sets []string
		seed uint64
	)
	o := &opts.Predict
	cmd := &cobra.Command{
		Use:   "predict [--scenario FILE] [--allocators a,b,...] [--observations N] [--guesses K]",
		Short: "Compare allocators by how well an attacker predicts their ports, and what randomness costs",
		Long: `Simulate a victim host, whose own connections follow the scenario's workloads
(the background load, scaled to each --loads factor), under each allocator,
and attackers with stated capabilities; report how predictable the victim's
source ports are and how soon a port comes back toward the same peer.

Attacker models and their assumptions:
  observer (a)    The attacker's server receives some of the victim's
                  connections (a page or query it triggers; one every
                  --interval) and sees their source ports and times. --gap
                  after each, the victim connects to another destination the
                  attacker never sees and has never seen (a fresh one each
                  time, so keyed hashes of it are unknown), and the attacker
                  guesses its port. It knows the algorithm, the range and the
                  victim's load, not the secret keys: its guesses are the
                  most frequent offsets (target - observed port) in half of
                  the boots, scored on the other half.
  spoofer (b)     Off-path DNS cache poisoning (Kaminsky): it cannot see the
                  victim's query, only the observation before it, and sends
                  K spoofed responses per attempt, each a (port, 16-bit
                  transaction ID) guess; the ID is uniform (RFC 5452 §7).
                  The query's port is taken as the allocator's connect()
                  port (a resolver on TCP, or a UDP stack using the same
                  algorithm); Linux's own UDP autobind is another allocator.
  tracker (c)     Kol, Klein and Gilad's device tracking on Linux's
                  double-hash allocator (CVE-2022-32296): a web page makes
                  the browser connect to the attacker's server and to
                  loopback ports in a prescribed order; source ports reveal
                  which destinations share a table_perturb slot, and the
                  loopback collisions are a device ID until reboot. Their
                  PoC's algorithm, run against table sizes 256 and 65,536
                  (5.12-5.17 algorithm) and against Linux 5.18+, the
                  victim's own connections going on meanwhile (not for
                  65,536, which like the published estimate assumes none).

The victim must not be behind a NAT (the attacker would see the NAT's ports,
which is not modelled); linux-bind and linux-udp are not connect()
allocators and are refused.
  FreeBSD (d)     No attacker of its own: freebsd-13 turns sequential while
                  the host allocates more than 10 ports a second (randomcps),
                  the attacker's own connections included; compare its rows
                  across load levels.

Metrics: min-entropy and Shannon entropy of the attacker's predictive
distribution (bits, with 95 % intervals; "≥" where only a bound is known),
success with K guesses and the attempts needed for 50 %, the spoofer's
success per attempt, cross-destination leakage (r² between the increment of
the observed port and the victim's connections elsewhere), the DNS-OARC
porttest rating (std. dev. of 26 consecutive observed ports, here --interval
apart rather than back to back as porttest sends them), and the port
reuse cycle (connections whose port was used toward the same destination
less than one TIME_WAIT before: a collision with the peer's TIME_WAIT).

The output directory (--out) receives predict.json and the plots
predict-tradeoff.png (min-entropy against reuse, every allocator and load)
and predict-guesses.png (success against K).`,
		Example: `  portsim predict
  portsim predict --allocators sequential,linux,freebsd-13 --loads 0.1,1,10,100
  portsim predict --scenario my-proxy.yaml --observations 100000 --guesses 1000 -j 2`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case o.Observations < 4:
				return flagUsageError(cmd, fmt.Errorf("--observations must be >= 4, got %d", o.Observations))
			case o.Guesses < 1:
				return flagUsageError(cmd, fmt.Errorf("--guesses must be >= 1, got %d", o.Guesses))
			case o.Workers < 1:
				return flagUsageError(cmd, fmt.Errorf("-j must be >= 1, got %d", o.Workers))
			case o.Gap <= 0 || o.Gap >= o.Interval:
				return flagUsageError(cmd, fmt.Errorf("need 0 < --gap < --interval, got %v and %v", o.Gap, o.Interval))
			case o.TrackBoots < 0 || o.TrackBoots == 1:
				return flagUsageError(cmd, fmt.Errorf("--tracking-boots must be 0 (skip) or >= 2, got %d", o.TrackBoots))
			case !(o.AttackRate > 0) || math.IsInf(o.AttackRate, 0):
				return flagUsageError(cmd, fmt.Errorf("--attack-rate must be a positive number, got %v", o.AttackRate))
			case opts.OutDir == "":
				return flagUsageError(cmd, fmt.Errorf("--out must not be empty"))
			}
			o.Overrides = overridesWithSeed(cmd, sets, seed)
			if runF != nil {
				return runF(opts)
			}
			return runPredict(opts)
		},
	}
	cmd.SetFlagErrorFunc(flagUsageError)
	f := cmd.Flags()
	f.StringVar(&o.Scenario, "scenario", "predict-victim", "the victim's scenario: a built-in name or a file")
	f.StringVar(&o.Host, "host", "", "the victim host (default: the host of the first workload)")
	f.StringSliceVar(&o.Allocators, "allocators", predict.DefaultAllocators, "allocators to compare")
	f.Float64SliceVar(&o.Scales, "loads", predict.DefaultScales, "load levels: factors on the victim's connection rates")
	f.IntVar(&o.Observations, "observations", predict.DefaultObservations, "victim connections the attacker observes, per allocator and load")
	f.IntVar(&o.Guesses, "guesses", predict.DefaultGuesses, "K: guesses (or spoofed responses) per attempt")
	f.DurationVar(&o.Gap, "gap", predict.DefaultGap, "time from an observation to the connection predicted")
	f.DurationVar(&o.Interval, "interval", predict.DefaultInterval, "time between observations")
	f.IntVarP(&o.Workers, "jobs", "j", 1, "boots simulated at once")
	f.IntVar(&o.TrackBoots, "tracking-boots", 20, "boots of the device-tracking attack per kernel (0: skip it)")
	f.Float64Var(&o.AttackRate, "attack-rate", 1000, "connections per second the tracking page triggers")
	f.StringVar(&opts.OutDir, "out", "portsim-predict", "directory to write predict.json and the plots to")
	f.Uint64Var(&seed, "seed", 0, "base random seed (overrides the scenario's seed)")
	f.StringArrayVar(&sets, "set", nil, "change a scenario field, `PATH=VALUE` (repeatable)")
	addFormatFlag(cmd, &opts.Format, "print the report as tables, or predict.json (json)")
	return cmd
}

// runPredict runs the analysis with a progress bar and Ctrl-C handling,
// writes predict.json and the plots, and prints the report.
func runPredict(opts *PredictOptions) error {
	ctx, stop := interruptContext()
	defer stop()
	o := opts.Predict
	var finish func()
	o.Progress, finish = progress(opts.IO.ErrOut, "predict")
	defer finish()
	rep, err := predict.Run(ctx, o)
	if errors.Is(err, predict.ErrOptions) {
		return &usageError{err: err, hint: "portsim predict"}
	}
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if err := os.MkdirAll(opts.OutDir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(opts.OutDir, PredictFile), b, 0o644); err != nil {
		return err
	}
	figs, err := plots.WritePredict(rep, opts.OutDir)
	if err != nil {
		return fmt.Errorf("writing plots: %w", err)
	}
	if opts.Format == formatJSON {
		_, err = opts.IO.Out.Write(b)
		return err
	}
	return printPredict(opts.IO.Out, rep, opts.OutDir, append([]string{PredictFile}, figs...))
}

// printPredict prints the report as tables and the files written.
func printPredict(w io.Writer, rep *predict.Report, dir string, files []string) error {
	p := &printer{w: w}
	p.printf("scenario  %s (%s), victim %s at %s\n", rep.Scenario, rep.File, rep.Host, rep.Source)
	p.printf("ports     %s (%d), TIME_WAIT %s\n", rep.Range, rep.RangeSize, seconds(rep.TimeWaitS))
	p.printf("attacker  %d observations per allocator and load (%d boots of %d, seed %d + boot; half train, half test),\n",
		rep.Observations, rep.Boots, rep.PerBoot, rep.Seed)
	p.printf("          one every %s after %s of background; each target %s after its observation; K = %d\n",
		seconds(rep.IntervalS), seconds(rep.WarmS), seconds(rep.GapS), rep.Guesses)

	p.section("observer (a) and spoofer (b): the next port to a destination the attacker never saw")
	k := rep.Guesses
	header := []string{"allocator", "load", "conn/s", "between", "min-entropy (bits)", "Shannon", fmt.Sprintf("P(hit in %d)", k), "attempts for 50%",
		fmt.Sprintf("DNS spoof, %d resp.", k), "attempts for 50%"}
	var rows [][]string
	for i := range rep.Rows {
		r := &rep.Rows[i]
		sh := fmt.Sprintf("%.2f", r.Shannon)
		if r.ShannonLowerBound {
			sh = "≥ " + sh
		}
		rows = append(rows, []string{r.Allocator, "×" + formatFloat(r.Scale), fmt.Sprintf("%.3g", r.Rate), fmt.Sprintf("%.2f", r.Load),
			bitsText(r.MinEntropy), sh, probText(r.Success), countText(r.Attempts50), probText(r.Spoof), countText(r.SpoofAttempts50)})
	}
	p.table(header, rows, tw.AlignLeft, tw.AlignRight, tw.AlignRight, tw.AlignRight, tw.AlignRight, tw.AlignRight, tw.AlignRight, tw.AlignRight, tw.AlignRight, tw.AlignRight)

	p.section("leakage, DNS-OARC rating and the port reuse cycle")
	header = []string{"allocator", "load", "leak r² [95% CI]", "OARC std. dev.", "rating", "reuse within TIME_WAIT [95% CI]"}
	rows = rows[:0]
	for i := range rep.Rows {
		r := &rep.Rows[i]
		rows = append(rows, []string{r.Allocator, "×" + formatFloat(r.Scale),
			fmt.Sprintf("%.3f [%.3f, %.3f]", r.Leakage.Value, r.Leakage.Low, r.Leakage.High),
			fmt.Sprintf("%.0f (%.1f bits)", r.OARC.StdDev, r.OARC.Bits), r.OARC.Rating,
			fmt.Sprintf("%s [%s, %s]", pct(r.ReuseCycle.Value), pct(r.ReuseCycle.Low), pct(r.ReuseCycle.High))})
	}
	p.table(header, rows, tw.AlignLeft, tw.AlignRight, tw.AlignRight, tw.AlignRight, tw.AlignLeft, tw.AlignRight)
	p.note("load: factor on the victim's rates; between: the victim's own connections between an observation and the target. " +
		"Intervals are 95 %; \"≥\" marks a bound where the held-out sample had no hit.")

	if len(rep.Tracking) > 0 {
		p.section("tracker (c): Kol-Klein-Gilad device tracking on Linux's double-hash allocator")
		header = []string{"victim kernel", "table", "attacker assumes", "identified", "connections [95% CI]", "phase 1", "time at attack rate", "distinct IDs"}
		rows = rows[:0]
		for i := range rep.Tracking {
			t := &rep.Tracking[i]
			c := &t.Config
			kernel, table := "5.12-5.17", "256"
			switch {
			case c.Allocator != alloc.NameLinuxAlg4:
				kernel, table = "5.18+", "65536, reseeded every 10 s"
			case c.TableSize != 0:
				kernel, table = "5.12-5.17 algorithm", strconv.Itoa(c.TableSize)
			}
			rows = append(rows, []string{kernel + " (" + c.Allocator + ")", table, strconv.Itoa(c.Assumed),
				fmt.Sprintf("%d of %d", t.Identified, t.Boots),
				fmt.Sprintf("%.0f [%.0f, %.0f]", t.Connections.Mean, t.Connections.Low, t.Connections.High),
				fmt.Sprintf("%.0f", t.Phase1.Mean), duration(t.Seconds.Mean), strconv.Itoa(t.Distinct)})
		}
		p.table(header, rows, tw.AlignLeft, tw.AlignRight, tw.AlignRight, tw.AlignRight, tw.AlignRight, tw.AlignRight, tw.AlignRight, tw.AlignRight)
		c := &rep.Tracking[0].Config
		p.note(fmt.Sprintf("The attacker's page triggers %s connections/s; the victim's own %s/s go on meanwhile (not with 65,536 slots). "+
			"A boot not identified gave up after 200 x the assumed table size in connections. "+
			"Published: about 40 x the table size, 10,000 connections for 256 (phase 1), 2.6 million for 65,536 (kernel commit 4c2c8f03a5ab).",
			formatFloat(c.AttackRate), formatFloat(c.BackgroundRate)))
	}

	p.section("files")
	for _, f := range files {
		p.printf("  %s\n", filepath.Join(dir, f))
	}
	return p.err
}

// duration formats seconds as s, min or h.
func duration(s float64) string {
	switch {
	case s >= 3600:
		return fmt.Sprintf("%.1f h", s/3600)
	case s >= 120:
		return fmt.Sprintf("%.1f min", s/60)
	}
	return fmt.Sprintf("%.1f s", s)
}

// bitsText formats an entropy estimate in bits with its interval.
func bitsText(e predict.Estimate) string {
	if e.Open {
		return fmt.Sprintf("≥ %.2f", e.Value)
	}
	return fmt.Sprintf("%.2f [%.2f, %.2f]", e.Value, e.Low, e.High)
}

// probText formats a probability estimate, "< HIGH" when nothing hit.
func probText(e predict.Estimate) string {
	if e.Value == 0 {
		return "< " + probShort(e.High)
	}
	return probShort(e.Value)
}

// probShort prints a probability with three significant digits.
func probShort(x float64) string {
	if x >= 0.001 {
		return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.4f", x), "0"), ".")
	}
	return fmt.Sprintf("%.3g", x)
}

// countText formats an attempts estimate, "≥ N" when unbounded above.
func countText(e predict.Estimate) string {
	if e.Open {
		return fmt.Sprintf("≥ %.3g", e.Low)
	}
	return fmt.Sprintf("%.3g", e.Value)
}

// pct formats a fraction in percent.
func pct(x float64) string { return fmt.Sprintf("%.3g%%", 100*x) }
