package triton

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// PerfAnalyzer is one perf_analyzer run against a Triton HTTP endpoint. perf_analyzer measures
// requests: its throughput is inferences (completed requests) per second, never tokens.
//
// Flags (perf_analyzer's documented CLI):
//
//	-m <model>                 model name
//	-u <host:port>             server URL, no scheme (default localhost:8000 for HTTP)
//	-i http                    protocol
//	--concurrency-range <C>    one concurrency level ("start" only)
//	-b <B>                     batch size of each request
//	--request-count <N>        total requests to measure (switches to count windows; must be
//	                           ≥ concurrency). Not -p: -p is --measurement-interval, in ms.
//	--input-data <file.json>   the prompt and generation inputs (random strings mean nothing
//	                           to an LLM and random max_tokens values are garbage)
//	-f <out.csv>               the latency report CSV
//
// Decoupled (streaming) models need `-i grpc --async --streaming`; fuze speaks only to the
// HTTP endpoint, so it does not run perf_analyzer for them. genai-perf (perf_analyzer's LLM
// front end) reports token rates but is not required by fuze.
type PerfAnalyzer struct {
	Bin          string
	Model        string
	Addr         string // host:port of the HTTP endpoint
	Concurrency  int
	Batch        int
	RequestCount int
	InputData    string // path of the --input-data JSON
	CSV          string // path of the -f report
}

// Args are perf_analyzer's arguments.
func (p PerfAnalyzer) Args() []string {
	c := max(p.Concurrency, 1)
	n := max(p.RequestCount, c)
	return []string{
		"-m", p.Model,
		"-u", p.Addr,
		"-i", "http",
		"--concurrency-range", strconv.Itoa(c),
		"-b", strconv.Itoa(max(p.Batch, 1)),
		"--request-count", strconv.Itoa(n),
		"--input-data", p.InputData,
		"-f", p.CSV,
	}
}

// WriteInputData writes perf_analyzer's --input-data JSON: one data entry with every input
// given as {"content": [v], "shape": [1]} (the shape makes variable-sized inputs explicit;
// it excludes the batch dimension, which -b sets).
func WriteInputData(path string, inputs map[string]any) error {
	entry := map[string]any{}
	for name, v := range inputs {
		entry[name] = map[string]any{"content": []any{v}, "shape": []int{1}}
	}
	b, err := json.MarshalIndent(map[string]any{"data": []any{entry}}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// PerfResult is one row of perf_analyzer's CSV report. Latencies are in microseconds.
type PerfResult struct {
	Concurrency        int
	RequestRate        float64
	InferPerSec        float64 // "Inferences/Second": completed requests per second
	ResponseThroughput float64 // "Response Throughput" (decoupled models only), 0 if absent
	ClientSendUs       float64
	ClientRecvUs       float64
	LatencyUs          map[int]float64 // percentile → latency ("p50 latency" …)
}

// ParsePerfCSV reads perf_analyzer's -f report: a header line ("Concurrency" or
// "Request Rate", "Inferences/Second", ["Response Throughput"], "Client Send", [server
// columns], "Client Recv", "p50 latency", "p90 latency", "p95 latency", "p99 latency",
// [verbose columns]) and one row per load level, sorted by Inferences/Second. It returns the
// row of the given concurrency, else the last one.
func ParsePerfCSV(r io.Reader, concurrency int) (PerfResult, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	recs, err := cr.ReadAll()
	if err != nil {
		return PerfResult{}, fmt.Errorf("perf_analyzer CSV: %w", err)
	}
	if len(recs) < 2 {
		return PerfResult{}, errors.New("perf_analyzer CSV has no data row")
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[strings.TrimSpace(h)] = i
	}
	ips, ok := col["Inferences/Second"]
	if !ok {
		return PerfResult{}, fmt.Errorf("perf_analyzer CSV header has no Inferences/Second column: %q", strings.Join(recs[0], ","))
	}
	num := func(rec []string, name string) (float64, bool) {
		i, ok := col[name]
		if !ok || i >= len(rec) {
			return 0, false
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rec[i]), 64)
		return v, err == nil
	}
	var rows []PerfResult
	for _, rec := range recs[1:] {
		if len(rec) == 0 || (len(rec) == 1 && strings.TrimSpace(rec[0]) == "") {
			continue
		}
		if ips >= len(rec) {
			return PerfResult{}, fmt.Errorf("perf_analyzer CSV row %q is shorter than its header", strings.Join(rec, ","))
		}
		var res PerfResult
		v, err := strconv.ParseFloat(strings.TrimSpace(rec[ips]), 64)
		if err != nil {
			return PerfResult{}, fmt.Errorf("perf_analyzer CSV: Inferences/Second %q is not a number", rec[ips])
		}
		res.InferPerSec = v
		if c, ok := num(rec, "Concurrency"); ok {
			res.Concurrency = int(c)
		}
		res.RequestRate, _ = num(rec, "Request Rate")
		res.ResponseThroughput, _ = num(rec, "Response Throughput")
		res.ClientSendUs, _ = num(rec, "Client Send")
		res.ClientRecvUs, _ = num(rec, "Client Recv")
		res.LatencyUs = map[int]float64{}
		for name := range col {
			var p int
			if _, err := fmt.Sscanf(name, "p%d latency", &p); err == nil {
				if v, ok := num(rec, name); ok {
					res.LatencyUs[p] = v
				}
			}
		}
		rows = append(rows, res)
	}
	if len(rows) == 0 {
		return PerfResult{}, errors.New("perf_analyzer CSV has no data row")
	}
	for _, row := range rows {
		if concurrency > 0 && row.Concurrency == concurrency {
			return row, nil
		}
	}
	return rows[len(rows)-1], nil
}

// Run runs perf_analyzer (in its own process group, killed whole on timeout or Ctrl-C),
// writes its console output to logPath and parses the CSV report.
func (p PerfAnalyzer) Run(ctx context.Context, timeout time.Duration, logPath string) (PerfResult, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.Bin, p.Args()...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var out tail
	var w io.Writer = &out
	if logPath != "" {
		if f, err := os.Create(logPath); err == nil {
			defer f.Close()
			w = io.MultiWriter(f, &out)
		}
	}
	cmd.Stdout, cmd.Stderr = w, w
	_ = os.Remove(p.CSV)
	err := cmd.Run()
	if ctx.Err() != nil {
		return PerfResult{}, fmt.Errorf("perf_analyzer stopped after %s: %w", timeout, ctx.Err())
	}
	if err != nil {
		return PerfResult{}, fmt.Errorf("perf_analyzer %s: %v; last output: %s", strings.Join(p.Args(), " "), err, out.last(3))
	}
	f, err := os.Open(p.CSV)
	if err != nil {
		return PerfResult{}, fmt.Errorf("perf_analyzer wrote no report (-f %s): %v; last output: %s", p.CSV, err, out.last(3))
	}
	defer f.Close()
	return ParsePerfCSV(f, p.Concurrency)
}

// tail keeps the last 8 KiB written to it.
type tail struct{ b []byte }

func (t *tail) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 8<<10 {
		t.b = t.b[len(t.b)-8<<10:]
	}
	return len(p), nil
}

func (t *tail) last(n int) string {
	var lines []string
	for _, l := range strings.Split(string(t.b), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	if len(lines) == 0 {
		return "(none)"
	}
	return strings.Join(lines, " | ")
}
