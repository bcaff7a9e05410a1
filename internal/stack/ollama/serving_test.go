package ollama_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fuze-ai/fuze/internal/engine"
	"github.com/fuze-ai/fuze/internal/gpu"
	"github.com/fuze-ai/fuze/internal/ollamatest"
	"github.com/fuze-ai/fuze/internal/serving"
	"github.com/fuze-ai/fuze/internal/stack/ollama"
)

// A real Ollama serving the tiny model at concurrency 1 and 2, with OLLAMA_NUM_PARALLEL 1 and
// then 2 (the test daemon restarted with it): every request completes, prompts are the asked
// length as Ollama counts them, and the daemon's own configuration shows the setting.
func TestServingOnRealOllama(t *testing.T) {
	srv := ollamatest.StartWithTiny(t, "tiny:latest")
	cfg := config(t, srv)
	cfg.NumPredict = 16
	var log bytes.Buffer
	d := ollama.New(cfg, &log)
	eps, err := d.Setup(context.Background(), gpu.Selection{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close(context.Background())
	w, err := serving.Create(cfg.LogDir, "ollama", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	e := &engine.Engine{Driver: d, Endpoints: eps, Report: engine.ServingReporter(&log, false, engine.TextReporter(&log))}
	outcomes, err := e.Serve(context.Background(), engine.Serving{
		Concurrency: []int{1, 2}, Requests: 4, WarmupPerStream: 1, Parallel: []int{1, 2},
		InputTokens: 48, RequestTimeout: time.Minute,
		SLO: serving.SLO{TTFT: time.Minute, ITL: time.Minute}, Writer: w,
	})
	t.Logf("%s", log.String())
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	rows, err := serving.ReadCSV(w.CSVPath())
	if err != nil || len(rows) != 4 || len(outcomes) != 2 {
		t.Fatalf("%d rows, %d outcomes: %v", len(rows), len(outcomes), err)
	}
	for i, want := range [][2]string{{"1", "1"}, {"1", "2"}, {"2", "1"}, {"2", "2"}} {
		r := rows[i]
		if r["parallel"] != want[0] || r["concurrency"] != want[1] || r["completed"] != "4" || r["failed"] != "0" || r["error"] != "" {
			t.Errorf("row %d: %v", i, r)
		}
		if r["input_tokens_min"] != "48" || r["input_tokens_max"] != "48" || r["output_tokens_mean"] != "16.00" || r["ttft_n"] != "4" || r["itl_n"] != "60" {
			t.Errorf("row %d: tokens in %s–%s out %s, ttft n %s itl n %s", i, r["input_tokens_min"], r["input_tokens_max"], r["output_tokens_mean"], r["ttft_n"], r["itl_n"])
		}
		if !strings.Contains(r["server_settings"], "OLLAMA_NUM_PARALLEL="+want[0]) {
			t.Errorf("row %d: server settings %q", i, r["server_settings"])
		}
	}
	// Goodput is the highest level within the (generous) SLO that physics does not flag. On a
	// busy CPU a single-stream level can run slower than the two-stream one's streams, and the
	// physics check then flags the higher level: the flag must say so, goodput must not claim it.
	for _, o := range outcomes {
		for _, l := range o.Levels {
			if o.Goodput != nil && o.Goodput.Concurrency == l.Concurrency && l.PhysicsFlag != "" {
				t.Errorf("goodput at a flagged level: %+v", l)
			}
		}
		if o.Goodput == nil && !slices.ContainsFunc(o.Levels, func(l serving.Level) bool { return l.PhysicsFlag != "" }) {
			t.Errorf("no goodput and no level flagged: %+v", o.Levels)
		}
	}
	// On Linux the chunks are timed at the kernel's receipt: at least one request of the run
	// says so (a request whose every token came in one read is timed at the clock instead).
	if runtime.GOOS == "linux" {
		b, err := os.ReadFile(w.JSONLPath())
		if err != nil {
			t.Fatal(err)
		}
		stamped := 0
		for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
			var r serving.RequestRecord
			if err := json.Unmarshal(line, &r); err == nil && r.Type == "request" && r.Sample.KernelStamped > 0 {
				stamped++
			}
		}
		if stamped == 0 {
			t.Error("no request's chunks were timed at the kernel's receipt")
		}
	}
	// The daemon was restarted with each setting: Ollama logs its configuration at start.
	logs, _ := filepath.Glob(filepath.Join(cfg.LogDir, "ollama_a_*.log"))
	var daemonLog []byte
	for _, p := range logs {
		b, _ := os.ReadFile(p)
		daemonLog = append(daemonLog, b...)
	}
	for _, v := range []string{"OLLAMA_NUM_PARALLEL:1", "OLLAMA_NUM_PARALLEL:2"} {
		if !bytes.Contains(daemonLog, []byte(v)) {
			t.Errorf("the daemon's log never shows %s", v)
		}
	}
}
