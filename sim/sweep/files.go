package sweep

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// Files a sweep writes into its output directory (plots aside).
const (
	JSONFile = "sweep.json"
	CSVFile  = "sweep.csv"
)

// WriteFiles writes res as sweep.json (the whole Result, indented) and
// sweep.csv (one row per point: its index, the varied values, then mean,
// ci95_lo and ci95_hi of each figure, the replications behind the steady
// blocking and first failure, the Erlang B blocking (empty where it does
// not apply) and the offered load) into dir, creating dir.
func WriteFiles(res *Result, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	js, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, JSONFile), append(js, '\n'), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, CSVFile), csvOf(res), 0o644)
}

// csvOf renders sweep.csv.
func csvOf(res *Result) []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	head := []string{"index"}
	for _, v := range res.Vary {
		head = append(head, v.Path)
	}
	for _, f := range []string{"failure_prob", "steady_blocking", "first_failure_s", "peak_ports_in_use", "probes_per_alloc"} {
		head = append(head, f+"_mean", f+"_ci95_lo", f+"_ci95_hi")
	}
	head = append(head, "steady_reps", "failed_reps", "erlang_b", "offered_load_erlangs")
	_ = w.Write(head)
	g := func(x float64) string { return strconv.FormatFloat(x, 'g', 10, 64) }
	for i := range res.Points {
		p := &res.Points[i]
		row := []string{strconv.Itoa(p.Index)}
		row = append(row, p.Values...)
		for _, s := range []Stat{p.FailureProb, p.SteadyBlocking, p.FirstFailureS, p.PeakPortsInUse, p.ProbesPerAlloc} {
			if s.N == 0 {
				row = append(row, "", "", "")
				continue
			}
			row = append(row, g(s.Mean), g(s.Lo), g(s.Hi))
		}
		eb := ""
		if p.ErlangB != nil {
			eb = g(*p.ErlangB)
		}
		row = append(row, strconv.Itoa(p.SteadyBlocking.N), strconv.Itoa(p.FirstFailureS.N), eb, g(p.OfferedLoad))
		_ = w.Write(row)
	}
	w.Flush()
	return b.Bytes()
}

// ReadResult reads dir/sweep.json.
//
// Errors: the file cannot be read, or is not a sweep result.
func ReadResult(dir string) (*Result, error) {
	name := filepath.Join(dir, JSONFile)
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	var res Result
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&res); err != nil {
		return nil, fmt.Errorf("%s: not a sweep result: %w", name, err)
	}
	if len(res.Vary) == 0 || res.Replications < 1 {
		return nil, fmt.Errorf("%s: not a sweep result: no varied parameter or no replications", name)
	}
	return &res, nil
}
