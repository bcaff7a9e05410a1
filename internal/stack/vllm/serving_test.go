package vllm_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fuze-ai/fuze/internal/engine"
	"github.com/fuze-ai/fuze/internal/gpu"
	"github.com/fuze-ai/fuze/internal/serving"
	"github.com/fuze-ai/fuze/internal/stack/vllm"
)

// Serving on the fake vLLM: one server per --max-num-seqs value, prompts sized by its
// /tokenize to exactly the tokens asked (usage.prompt_tokens says so), merged chunks and a
// held-back token counted as vLLM's running usage says.
func TestServingOnFakeVLLM(t *testing.T) {
	logDir := t.TempDir()
	cfg := config(t, "", logDir)
	var log bytes.Buffer
	d := vllm.New(cfg, &log)
	eps, err := d.Setup(context.Background(), gpu.Selection{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close(context.Background())
	w, err := serving.Create(t.TempDir(), "vllm", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	e := &engine.Engine{Driver: d, Endpoints: eps, Report: engine.ServingReporter(&log, false, engine.TextReporter(&log))}
	outcomes, err := e.Serve(context.Background(), engine.Serving{
		Concurrency: []int{1, 4}, Requests: 8, WarmupPerStream: 1, Parallel: []int{2, 4},
		InputTokens: 20, OutputTokens: 12, RequestTimeout: 20 * time.Second,
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
		if r["completed"] != "8" || r["input_tokens_min"] != "20" || r["input_tokens_max"] != "20" || r["output_tokens_mean"] != "12.00" || r["itl_n"] != "88" {
			t.Errorf("row %d: %v\n%s", i, r, log.String())
		}
	}
	if rows[0]["parallel"] != "2" || rows[3]["parallel"] != "4" || !strings.Contains(rows[3]["server_settings"], "max_num_seqs=4") {
		t.Errorf("rows %v", rows)
	}
	if n := starts(cfg.Launcher); n != 2 {
		t.Errorf("%d server starts, want one per --max-num-seqs", n)
	}
	srvLog := readLog(t, logDir)
	for _, want := range []string{"--max-num-seqs 2", "--max-num-seqs 4"} {
		if !strings.Contains(srvLog, want) {
			t.Errorf("no server started with %s:\n%s", want, srvLog)
		}
	}
}
