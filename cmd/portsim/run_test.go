package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/portsim/portsim/scenarios"
	"github.com/portsim/portsim/sim"
)

func TestNewCmdRun(t *testing.T) {
	tests := []struct {
		name    string
		argv    string
		want    RunOptions
		wantErr string // substring; "" means no error
	}{
		{
			name: "defaults",
			argv: "",
			want: RunOptions{Scenario: scenarios.Default, OutDir: "portsim-out", Format: "table"},
		},
		{
			name: "file and every flag",
			argv: "burst.yaml --out res --seed 7 --duration 1m30s --set workloads.0.arrival.rate=800 --set hosts.0.os=macos --format json",
			want: RunOptions{
				Scenario:  "burst.yaml",
				OutDir:    "res",
				Overrides: []string{"workloads.0.arrival.rate=800", "hosts.0.os=macos", "seed=7", "duration=1m30s"},
				Format:    "json",
			},
		},
		{
			name: "dedicated flags come after --set whatever the order",
			argv: "--seed 0 --set seed=9 linux-burst",
			want: RunOptions{Scenario: "linux-burst", OutDir: "portsim-out", Overrides: []string{"seed=9", "seed=0"}, Format: "table"},
		},
		{
			name: "duration is normalised",
			argv: "--duration 90s",
			want: RunOptions{Scenario: scenarios.Default, OutDir: "portsim-out", Overrides: []string{"duration=1m30s"}, Format: "table"},
		},
		{name: "two scenarios", argv: "a.yaml b.yaml", wantErr: "accepts at most 1 arg(s), received 2"},
		{name: "negative seed", argv: "--seed -1", wantErr: `invalid argument "-1" for "--seed"`},
		{name: "duration without unit", argv: "--duration 30", wantErr: `invalid argument "30" for "--duration"`},
		{name: "bad format", argv: "--format yaml", wantErr: `invalid argument "yaml" for "--format" flag`},
		{name: "unknown flag", argv: "--json", wantErr: "unknown flag: --json"},
		{name: "missing flag value", argv: "--out", wantErr: "flag needs an argument: --out"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ios, got := parseOnly(t, NewCmdRun, tt.argv, tt.wantErr)
			if got == nil {
				return
			}
			assert.Same(t, ios, got.IO)
			tt.want.IO = ios
			assert.Equal(t, &tt.want, got)
		})
	}
}

func TestNewCmdScenarios(t *testing.T) {
	for argv, want := range map[string]string{"": "table", "--format json": "json"} {
		ios, got := parseOnly(t, NewCmdScenarios, argv, "")
		assert.Same(t, ios, got.IO)
		assert.Equal(t, want, got.Format, argv)
	}
	parseOnly(t, NewCmdScenarios, "--format xml", `invalid argument "xml" for "--format" flag: must be table or json`)
	parseOnly(t, NewCmdScenarios, "extra", `unknown command "extra"`)
}

func TestRunHelpListsFiles(t *testing.T) {
	code, stdout, stderr := runCLI(t, "run --help")
	require.Equal(t, exitOK, code, stderr)
	for _, f := range []string{summaryFile, seriesFile, occPNGFile, occSVGFile, portsCSVFile, portsPNGFile, portsSVGFile, natCSVFile, natPNGFile, natSVGFile} {
		assert.Regexp(t, `(?m)^  `+regexp.QuoteMeta(f)+` +\S`, stdout, "file listed with its description")
	}
	assert.Contains(t, stdout, "the first 20,000 ports allocated")
	long, _, _ := strings.Cut(stdout, "Usage:")
	for line := range strings.Lines(long) {
		assert.LessOrEqual(t, len(strings.TrimSuffix(line, "\n")), 81, "fits a terminal: %q", line)
	}
}

func TestScenariosList(t *testing.T) {
	code, stdout, stderr := runCLI(t, "scenarios")
	require.Equal(t, exitOK, code, stderr)
	for _, b := range scenarios.Builtins() {
		assert.Contains(t, stdout, " "+b.Name+" ")
	}
	assert.Contains(t, stdout, scenarios.Default+" (default)")
	for line := range strings.Lines(stdout) {
		assert.LessOrEqual(t, len(strings.TrimSuffix(line, "\n")), 80, "fits a terminal: %q", line)
	}

	code, stdout, stderr = runCLI(t, "scenarios --format json")
	require.Equal(t, exitOK, code, stderr)
	var list []builtinJSON
	require.NoError(t, json.Unmarshal([]byte(stdout), &list))
	require.Len(t, list, len(scenarios.Builtins()))
	for _, b := range list {
		assert.Equal(t, b.Name == scenarios.Default, b.Default, b.Name)
		assert.NotEmpty(t, b.Description, b.Name)
	}
}

// summaryKeys are the top-level keys summary.json must have.
var summaryKeys = []string{
	"scenario", "seed", "duration_s", "attempts", "successes", "failures",
	"first_failure_s", "peak_time_wait", "peak_ports_in_use", "probes_per_alloc",
	"hosts", "analytic",
}

func TestRunEndToEnd(t *testing.T) {
	dir := t.TempDir()
	code, stdout, stderr := runCLI(t, "run --out "+dir+" --duration 20s")
	require.Equal(t, exitOK, code, stderr)
	assert.Empty(t, stderr)

	for _, f := range []string{summaryFile, seriesFile, occPNGFile, occSVGFile, portsCSVFile, portsPNGFile, portsSVGFile} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if assert.NoError(t, err, f) {
			assert.Positive(t, fi.Size(), f)
		}
		assert.Contains(t, stdout, filepath.Join(dir, f), "files written")
	}

	raw, err := os.ReadFile(filepath.Join(dir, summaryFile))
	require.NoError(t, err)
	assert.True(t, bytes.HasSuffix(raw, []byte("}\n")), "trailing newline")
	assert.True(t, bytes.HasPrefix(raw, []byte("{\n  \"scenario\": ")), "two-space indent")
	var top map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(raw, &top))
	for _, k := range summaryKeys {
		assert.Contains(t, top, k)
	}
	var probes map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(top["probes_per_alloc"], &probes))
	assert.Contains(t, probes, "p50")
	assert.Contains(t, probes, "p99")
	var sum sim.Summary
	require.NoError(t, json.Unmarshal(raw, &sum))
	assert.Equal(t, scenarios.Default, sum.Scenario)
	assert.InDelta(t, 20, sum.DurationS, 0)

	f, err := os.Open(filepath.Join(dir, seriesFile))
	require.NoError(t, err)
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	require.NoError(t, err)
	require.Greater(t, len(rows), 1)
	assert.Equal(t, seriesHeader, rows[0])
	for _, r := range rows[1:] {
		_, err := strconv.ParseFloat(r[0], 64)
		assert.NoError(t, err, "t_s %q", r[0])
	}

	ports := readCSV(t, filepath.Join(dir, portsCSVFile))
	assert.Equal(t, portsHeader, ports[0])
	require.Positive(t, sum.Successes)
	assert.Len(t, ports[1:], int(min(sum.Successes, sim.MaxPortChoices)), "one row per port chosen")
	for _, r := range ports[1:] {
		_, err := strconv.ParseFloat(r[0], 64)
		assert.NoError(t, err, "t_s %q", r[0])
		_, err = strconv.ParseUint(r[4], 10, 16)
		assert.NoError(t, err, "port %q", r[4])
	}
	pngBytes, err := os.ReadFile(filepath.Join(dir, portsPNGFile))
	require.NoError(t, err)
	img, err := png.Decode(bytes.NewReader(pngBytes))
	require.NoError(t, err)
	assert.Equal(t, 1200, img.Bounds().Dx())
	assert.NotContains(t, stdout, "no port was chosen")

	for _, want := range []string{
		"scenario  " + scenarios.Default, "file      builtin:" + scenarios.Default, "duration  20s",
		"Host settings", "ip_local_port_range", "tcp_max_tw_buckets",
		"Results", "attempts", "peak TIME_WAIT", "probes/alloc p99", "total",
		"Busiest destination", "Files written",
	} {
		assert.Contains(t, stdout, want)
	}
}

// readCSV reads a whole CSV file.
func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	require.NoError(t, err)
	require.NotEmpty(t, rows)
	return rows
}

func TestRunWithoutPortChoices(t *testing.T) {
	// At 0.0001 connects per second, 10 s of run have no connect at all
	// (with seed 1, as with 999 seeds in 1000).
	dir := t.TempDir()
	path := writeBad(t, dir, "rate: 100", "rate: 0.0001")
	out := filepath.Join(dir, "out")
	// Files from an earlier run are removed, not left to mislead.
	require.NoError(t, os.MkdirAll(out, 0o755))
	for _, f := range portsFiles {
		require.NoError(t, os.WriteFile(filepath.Join(out, f), []byte("old"), 0o644))
	}

	code, stdout, stderr := runCLI(t, "run "+path+" --out "+out)
	require.Equal(t, exitOK, code, stderr)
	assert.Empty(t, stderr)
	for _, f := range []string{summaryFile, seriesFile, occPNGFile, occSVGFile} {
		assert.FileExists(t, filepath.Join(out, f))
		assert.Contains(t, stdout, filepath.Join(out, f))
	}
	for _, f := range portsFiles {
		assert.NoFileExists(t, filepath.Join(out, f))
		assert.NotContains(t, stdout, filepath.Join(out, f))
	}
	assert.Contains(t, stdout, "(no connect() succeeded, so no port was chosen: ports.csv, ports.png and\nports.svg were not written)\n")

	code, stdout, stderr = runCLI(t, "run "+path+" --out "+out+" --format json")
	require.Equal(t, exitOK, code, stderr)
	raw, err := os.ReadFile(filepath.Join(out, summaryFile))
	require.NoError(t, err)
	assert.Equal(t, string(raw), stdout, "stdout is summary.json")
	assert.Equal(t, "portsim: note: "+noPortsNote+"\n", stderr)
}

func TestRunFormatJSON(t *testing.T) {
	dir := t.TempDir()
	code, stdout, stderr := runCLI(t, "run --out "+dir+" --duration 5s --format json")
	require.Equal(t, exitOK, code, stderr)
	raw, err := os.ReadFile(filepath.Join(dir, summaryFile))
	require.NoError(t, err)
	assert.Equal(t, string(raw), stdout, "stdout is summary.json")
}

func TestRunDeterministic(t *testing.T) {
	// runAt runs the default scenario with GOMAXPROCS n and returns its
	// summary.json, series.csv, ports.csv and ports.svg.
	runAt := func(t *testing.T, n int, seed string) (summary, series, ports, portsSVG []byte) {
		t.Helper()
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(n))
		dir := t.TempDir()
		code, _, stderr := runCLI(t, "run --out "+dir+" --duration 20s --format json --seed "+seed)
		require.Equal(t, exitOK, code, stderr)
		var files [4][]byte
		for i, f := range []string{summaryFile, seriesFile, portsCSVFile, portsSVGFile} {
			var err error
			files[i], err = os.ReadFile(filepath.Join(dir, f))
			require.NoError(t, err)
		}
		return files[0], files[1], files[2], files[3]
	}
	sum1, ser1, ports1, svg1 := runAt(t, 1, "7")
	sum2, ser2, ports2, svg2 := runAt(t, 2, "7")
	assert.Equal(t, string(sum1), string(sum2), "summary.json, GOMAXPROCS 1 vs 2")
	assert.Equal(t, string(ser1), string(ser2), "series.csv, GOMAXPROCS 1 vs 2")
	assert.Equal(t, string(ports1), string(ports2), "ports.csv, GOMAXPROCS 1 vs 2")
	assert.True(t, bytes.Equal(svg1, svg2), "ports.svg, GOMAXPROCS 1 vs 2")
	sum3, _, _, _ := runAt(t, 2, "7")
	assert.Equal(t, string(sum2), string(sum3), "summary.json, same settings twice")
	sum4, _, _, _ := runAt(t, 2, "8")
	assert.NotEqual(t, string(sum2), string(sum4), "another seed, another run")
}

// badScenarios are scenario files with one mistake each, derived from
// goodScenario, and the ":line:column: field: " each must be reported at.
var badScenarios = []struct {
	name, old, repl string
	wantAt          string
}{
	{"reversed port range", `"32768 60999"`, `"61000 32768"`, ":9:37: hosts[0].sysctls.net.ipv4.ip_local_port_range: "},
	{"negative rate", "rate: 100", "rate: -5", ":14:39: workloads[0].arrival.rate: "},
	{"unknown key", "    os: linux\n", "    os: linux\n    colour: blue\n", ":7:5: hosts[0].colour: "},
	{"unknown OS preset", "os: linux", "os: beos", ":6:9: hosts[0].os: "},
}

const goodScenario = `name: bad
seed: 1
duration: 10s
hosts:
  - name: client
    os: linux
    addresses: [10.0.0.1]
    sysctls:
      net.ipv4.ip_local_port_range: "32768 60999"
workloads:
  - name: api
    from: client
    to: ["203.0.113.10:443"]
    arrival: {process: poisson, rate: 100}
    hold: {dist: fixed, value: 10ms}
    close: client
`

// writeBad writes goodScenario with old replaced by repl into dir.
func writeBad(t *testing.T, dir, old, repl string) string {
	t.Helper()
	require.Equal(t, 1, strings.Count(goodScenario, old), "test data: %q", old)
	path := filepath.Join(dir, "scenario.yaml")
	require.NoError(t, os.WriteFile(path, []byte(strings.Replace(goodScenario, old, repl, 1)), 0o644))
	return path
}

func TestRunBadScenario(t *testing.T) {
	t.Run("good file runs", func(t *testing.T) {
		dir := t.TempDir()
		path := writeBad(t, dir, "seed: 1", "seed: 1")
		code, _, stderr := runCLI(t, "run "+path+" --out "+filepath.Join(dir, "out"))
		assert.Equal(t, exitOK, code, stderr)
	})
	for _, tt := range badScenarios {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := writeBad(t, dir, tt.old, tt.repl)
			out := filepath.Join(dir, "out")
			code, stdout, stderr := runCLI(t, "run "+path+" --out "+out)
			assert.Equal(t, exitUsage, code)
			assert.Empty(t, stdout)
			assert.Equal(t, 1, strings.Count(stderr, "\n"), "one line: %q", stderr)
			assert.Contains(t, stderr, "portsim: "+path+tt.wantAt)
			assert.NoDirExists(t, out, "nothing written for a bad scenario")
		})
	}
	t.Run("no such scenario", func(t *testing.T) {
		code, _, stderr := runCLI(t, "run no-such-scenario --out "+t.TempDir())
		assert.Equal(t, exitUsage, code)
		assert.Contains(t, stderr, "no-such-scenario: no such file or built-in scenario")
	})
}

// TestBinaryExitStatus builds portsim and checks the exit status of the
// real process, which the in-process tests cannot see.
func TestBinaryExitStatus(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command on PATH to build portsim: %v", err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "portsim")
	build := exec.Command(gobin, "build", "-o", bin, ".")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)

	bad := badScenarios[0]
	path := writeBad(t, dir, bad.old, bad.repl)
	cmd := exec.Command(bin, "run", path, "--out", filepath.Join(dir, "out"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	var exitErr *exec.ExitError
	require.ErrorAs(t, err, &exitErr)
	assert.Equal(t, exitUsage, exitErr.ExitCode())
	assert.Empty(t, stdout.String())
	assert.True(t, strings.HasPrefix(stderr.String(), "portsim: "+path+bad.wantAt), "stderr: %q", stderr.String())
	assert.Equal(t, 1, strings.Count(stderr.String(), "\n"), "one line: %q", stderr.String())
}

// natScenario is three VMs (count: 3) behind an AWS NAT gateway with two
// IPs whose per-destination cap is lowered to 50: at 20 connects/s each,
// held 10 s, the 101st concurrent connection (at about 100 / 60 per second)
// is the first dropped, and its SYN retransmissions are dropped again.
const natScenario = `name: nat-e2e
seed: 1
duration: 6s
hosts:
  - name: vm
    os: linux
    count: 3
    addresses: [10.0.1.1]
nats:
  - name: gw
    preset: aws-nat-gateway
    external_ips: 2
    per_destination_cap: 50
    inside: [vm]
workloads:
  - name: api
    from: vm
    to: ["203.0.113.10:443"]
    arrival: {process: constant, rate: 20}
    hold: {dist: fixed, value: 10s}
    close: server
`

func TestRunNATEndToEnd(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "nat.yaml")
	require.NoError(t, os.WriteFile(path, []byte(natScenario), 0o644))
	out := filepath.Join(dir, "out")
	code, stdout, stderr := runCLI(t, "run "+path+" --out "+out)
	require.Equal(t, exitOK, code, stderr)
	assert.Empty(t, stderr)

	for _, f := range []string{natCSVFile, natPNGFile, natSVGFile} {
		assert.FileExists(t, filepath.Join(out, f))
		assert.Contains(t, stdout, filepath.Join(out, f), "files written")
	}
	rows := readCSV(t, filepath.Join(out, natCSVFile))
	assert.Equal(t, []string{"t_s", "gw:flows", "gw:drops", "gw:ports@198.18.0.1", "gw:ports@198.18.0.2",
		"gw:flows@vm-1", "gw:flows@vm-2", "gw:flows@vm-3"}, rows[0])
	assert.Len(t, rows, 1+6, "one row per sample")
	assert.Equal(t, "100", rows[6][1], "two IPs x 50 to the one destination")

	for _, want := range []string{
		"\n setting                 | vm ×3\n",
		"\n metric                             | vm ×3 | total\n",
		"\n still retrying a SYN a NAT dropped |   260 |   260\n",
		"\nNAT gw (preset aws-nat-gateway): 2 external IPs, 3 inside addresses\n",
		"  set            per_destination_cap=50\n",
		"  mappings peak  100 (flows peak 100)\n",
		"the first at 1.65s: per-destination-cap",
		"  dropped for    3 of 3 inside addresses\n",
		"Sources and assumptions (aws-nat-gateway's numbers):\n",
	} {
		assert.Contains(t, stdout, want)
	}
	assert.NotContains(t, stdout, "| vm-1", "no column per instance")

	// The same run again gives the same NAT files.
	again := filepath.Join(dir, "again")
	code, _, stderr = runCLI(t, "run "+path+" --out "+again+" --format json")
	require.Equal(t, exitOK, code, stderr)
	for _, f := range []string{natCSVFile, natPNGFile, natSVGFile} {
		a, err := os.ReadFile(filepath.Join(out, f))
		require.NoError(t, err)
		b, err := os.ReadFile(filepath.Join(again, f))
		require.NoError(t, err)
		assert.True(t, bytes.Equal(a, b), "%s, same run twice", f)
	}

	// A run without NATs into the same directory removes the NAT files.
	code, _, stderr = runCLI(t, "run --out "+out+" --duration 2s")
	require.Equal(t, exitOK, code, stderr)
	for _, f := range []string{natCSVFile, natPNGFile, natSVGFile} {
		assert.NoFileExists(t, filepath.Join(out, f))
	}
}
