package llamacpp_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fuze-ai/fuze/internal/engine"
	"github.com/fuze-ai/fuze/internal/gpu"
	"github.com/fuze-ai/fuze/internal/serving"
	"github.com/fuze-ai/fuze/internal/stack/llamacpp"
)

// Serving on the fake llama-server: one server per --parallel value, started with --ctx-size
// scaled by the slots and continuous batching; prompts sized by its /tokenize to exactly the
// tokens asked (the request's prompt_n says so). (The fake serves one request at a time
// whatever --parallel says: this tests the driver, not batching.)
func TestServingOnFakeLlamaServer(t *testing.T) {
	cfg, recPath := fakeConfig(t, "normal", "FUZE_FAKE_LLAMA_CLOCK=wall")
	var log bytes.Buffer
	d := llamacpp.New(cfg, &log)
	eps, err := d.Setup(context.Background(), gpu.Selection{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close(context.Background())
	w, err := serving.Create(t.TempDir(), "llama.cpp", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	e := &engine.Engine{Driver: d, Endpoints: eps, Report: engine.ServingReporter(&log, false, engine.TextReporter(&log))}
	outcomes, err := e.Serve(context.Background(), engine.Serving{
		Concurrency: []int{1, 2}, Requests: 3, WarmupPerStream: 1, Parallel: []int{1, 2},
		InputTokens: 30, OutputTokens: 6, RequestTimeout: 20 * time.Second,
		SLO: serving.SLO{TTFT: time.Minute, ITL: time.Minute}, Writer: w,
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	w.Close()
	rows, err := serving.ReadCSV(w.CSVPath())
	if err != nil || len(rows) != 4 || len(outcomes) != 2 {
		t.Fatalf("%d rows %d outcomes %v\n%s", len(rows), len(outcomes), err, log.String())
	}
	for i, r := range rows {
		if r["completed"] != "3" || r["input_tokens_min"] != "30" || r["input_tokens_max"] != "30" || r["output_tokens_mean"] != "6.00" || r["itl_n"] != "15" {
			t.Errorf("row %d: %v\n%s", i, r, log.String())
		}
	}
	if rows[2]["parallel"] != "2" || !strings.Contains(rows[2]["server_settings"], "ctx_size=1024") || !strings.Contains(rows[2]["server_settings"], "n_parallel=2") {
		t.Errorf("row 2: %v", rows[2])
	}
	starts, _ := readRecords(t, recPath)
	var argvs []string
	for _, s := range starts {
		argvs = append(argvs, strings.Join(s.Argv, " "))
	}
	if len(argvs) != 2 || !strings.Contains(argvs[0], "--ctx-size 512 --batch-size 32 --parallel 1 --cont-batching") ||
		!strings.Contains(argvs[1], "--ctx-size 1024 --batch-size 32 --parallel 2 --cont-batching") {
		t.Errorf("server starts:\n%s", strings.Join(argvs, "\n"))
	}
}
