package ollama_test

import (
	"bytes"
	"context"
	"math"
	"testing"
	"time"

	"github.com/fuze-ai/fuze/internal/engine"
	"github.com/fuze-ai/fuze/internal/gpu"
	"github.com/fuze-ai/fuze/internal/ollamatest"
	"github.com/fuze-ai/fuze/internal/serving"
	"github.com/fuze-ai/fuze/internal/stack/ollama"
)

// An open loop on a real Ollama (OLLAMA_NUM_PARALLEL 2): Poisson arrivals at 2 requests/s, then
// every request at once, at most 2 in flight. Every request completes with the asked prompt
// length; all at once, four arrivals find the cap full and wait.
func TestServingOpenLoopOnRealOllama(t *testing.T) {
	srv := ollamatest.StartWithTiny(t, "tiny:latest")
	cfg := config(t, srv)
	cfg.NumPredict = 8
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
	_, err = e.Serve(context.Background(), engine.Serving{
		Rates: []float64{2, math.Inf(1)}, Burstiness: 1, Seed: 1, MaxConcurrency: 2, Requests: 6, WarmupPerStream: 1,
		Parallel: []int{2}, InputTokens: 48, RequestTimeout: time.Minute,
		SLO: serving.SLO{TTFT: time.Minute, ITL: time.Minute}, Writer: w,
	})
	t.Logf("%s", log.String())
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	rows, err := serving.ReadCSV(w.CSVPath())
	if err != nil || len(rows) != 2 {
		t.Fatalf("%d rows: %v", len(rows), err)
	}
	for i, rate := range []string{"2", "inf"} {
		r := rows[i]
		if r["offered_rate"] != rate || r["completed"] != "6" || r["failed"] != "0" || r["input_tokens_min"] != "48" || r["input_tokens_max"] != "48" ||
			r["parallel"] != "2" || r["concurrency"] != "2" || r["seed"] != "1" || (r["max_in_flight"] != "1" && r["max_in_flight"] != "2") {
			t.Errorf("row %d: %v", i, r)
		}
	}
	if rows[1]["capped"] != "4" || rows[1]["max_in_flight"] != "2" {
		t.Errorf("all at once under a cap of 2: capped %s, max in flight %s", rows[1]["capped"], rows[1]["max_in_flight"])
	}
}
