package triton

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fuze-ai/fuze/internal/engine"
	"github.com/fuze-ai/fuze/internal/gpu"
	"github.com/fuze-ai/fuze/internal/measure"
	"github.com/fuze-ai/fuze/internal/results"
	"github.com/fuze-ai/fuze/internal/stack"
	"github.com/fuze-ai/fuze/internal/stack/stacktest"
	"github.com/fuze-ai/fuze/internal/sweep"
)

func TestMain(m *testing.M) {
	switch {
	case os.Getenv("FUZE_FAKE_TRITON") == "1":
		os.Exit(fakeTriton(os.Args[1:]))
	case os.Getenv("FUZE_FAKE_PERF_ANALYZER") == "1":
		os.Exit(fakePerfAnalyzer(os.Args[1:]))
	}
	os.Exit(m.Run())
}

func self(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startCmd is a TRITON_START_CMD running the fake server in the given mode.
func startCmd(t *testing.T, mode string, models ...string) string {
	cmd := fmt.Sprintf("FUZE_FAKE_TRITON=1 exec '%s' --http-port={port} --mode=%s", self(t), mode)
	for _, m := range models {
		cmd += " --model=" + m
	}
	return cmd
}

// fakePerfAnalyzer writes a perf_analyzer executable that runs the fake.
func fakePA(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "perf_analyzer")
	body := fmt.Sprintf("#!/bin/sh\nFUZE_FAKE_PERF_ANALYZER=1 exec '%s' \"$@\"\n", self(t))
	if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func config(t *testing.T, logDir, cmd string, models ...Model) Config {
	return Config{
		EndpointA: freeAddr(t), EndpointB: "", Models: models, StartCmd: cmd,
		Prompt: "Tell me a fun fact about GPUs.", NumPredict: 8, Temperature: 0,
		Concurrency: 1, Batch: 1, RequestCount: 20,
		RequestTimeout: 10 * time.Second, ReadyTimeout: 10 * time.Second,
		LogDir: logDir, RunTS: "20261127_000000",
		Environ: []string{"PATH=" + os.Getenv("PATH")},
	}
}

func TestDriverSuite(t *testing.T) {
	stacktest.Run(t, stacktest.Harness{
		// Two models, one per streaming backend flavour: the vLLM backend reporting
		// num_output_tokens, a TensorRT-LLM ensemble without token counts.
		Working: func(t *testing.T, logDir string) stack.Driver {
			cfg := config(t, logDir, startCmd(t, "normal", "llama:tensorrtllm:1:0", "mistral:vllm:1:1"),
				Model{Name: "llama", Alias: "llama-8b"}, Model{Name: "mistral", Alias: "mistral-7b"})
			cfg.PerfAnalyzer = fakePA(t)
			return New(cfg, &bytes.Buffer{})
		},
		// Events without text_output.
		Broken: func(t *testing.T, logDir string) stack.Driver {
			return New(config(t, logDir, startCmd(t, "no-text", "llama:tensorrtllm:1:0"), Model{Name: "llama", Alias: "llama-8b"}), &bytes.Buffer{})
		},
		// Health answers 400 forever.
		NeverReady: func(t *testing.T, logDir string) stack.Driver {
			cfg := config(t, logDir, startCmd(t, "never-ready", "llama:tensorrtllm:1:0"), Model{Name: "llama", Alias: "llama-8b"})
			cfg.ReadyTimeout = 300 * time.Millisecond
			return New(cfg, &bytes.Buffer{})
		},
	})
}

// run sets the driver up, runs the engine once over it and returns rows and samples.
func run(t *testing.T, d *Driver, logDir string) ([]results.Row, []*measure.Sample, []stack.Endpoint, error) {
	t.Helper()
	eps, err := d.Setup(context.Background(), gpu.Selection{})
	if err != nil {
		d.Close(context.Background())
		return nil, nil, nil, err
	}
	defer d.Close(context.Background())
	w, err := results.CreateRun(logDir, d.Name(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	e := &engine.Engine{Driver: d, Endpoints: eps, Policy: sweep.Policy{Exhaustive: true}, Writer: w, Report: engine.TextReporter(d.log), Repeat: 2}
	if _, err := e.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	w.Close()
	rows, _, err := results.ReadRunCSV(w.CSVPath())
	if err != nil {
		t.Fatal(err)
	}
	recs, _, err := results.ReadRunJSONL(w.JSONLPath())
	if err != nil {
		t.Fatal(err)
	}
	var samples []*measure.Sample
	for _, r := range recs {
		samples = append(samples, r.Sample)
	}
	return rows, samples, eps, nil
}

func TestMeasurementDetails(t *testing.T) {
	logDir := t.TempDir()
	var log bytes.Buffer
	cfg := config(t, logDir, startCmd(t, "normal", "llama:tensorrtllm:1:0", "mistral:vllm:1:1", "gpt:tensorrtllm:0:1", "phi:llmapi:1:0"),
		Model{Name: "llama", Alias: "llama-8b"}, Model{Name: "mistral", Alias: "mistral-7b"},
		Model{Name: "gpt", Alias: "gpt-2b"}, Model{Name: "phi", Alias: "phi-3"}, Model{Name: "ghost", Alias: "ghost-1b"})
	record := filepath.Join(t.TempDir(), "pa-args.json")
	cfg.PerfAnalyzer = fakePA(t)
	cfg.Environ = append(cfg.Environ, "FAKE_PA_RECORD="+record)
	t.Setenv("FAKE_PA_RECORD", record)
	d := New(cfg, &log)
	rows, samples, eps, err := run(t, d, logDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(log.String())
	if len(rows) != 5 {
		t.Fatalf("want one baseline row per model, got %d\n%s", len(rows), log.String())
	}
	byModel := map[string]*measure.Sample{}
	for i, r := range rows {
		byModel[r.ModelTag] = samples[i]
		if r.VariantLabel != stack.LabelBaseline || r.NumGPU != "default" || r.Batch != "1" || r.NumPredict != "8" || r.Unit != "proc" {
			t.Errorf("row %d: %+v", i, r)
		}
	}
	// TensorRT-LLM ensemble without counts: min_tokens fixed the length, one token per event.
	llama := byModel["llama"]
	if llama.Outcome != measure.OK || llama.ServerOutputTokens != 8 || !strings.HasPrefix(llama.Settings["output_tokens_source"], "stream events") ||
		llama.Settings["request_flavour"] != "tensorrtllm" || !strings.Contains(llama.Settings["perf_analyzer"], "decoupled") {
		t.Errorf("llama: %+v", llama)
	}
	// vLLM backend: ignore_eos fixed the length; the server's num_output_tokens counted; the
	// final empty response is no token.
	mistral := byModel["mistral"]
	if mistral.Outcome != measure.OK || mistral.ServerOutputTokens != 8 || mistral.Settings["output_tokens_source"] != "server num_output_tokens (per response)" ||
		len(mistral.ChunkTimes) != 8 || mistral.Settings["request_flavour"] != "vllm" {
		t.Errorf("mistral: %+v", mistral)
	}
	// On the wall clock the rate is only consistent with the token times (the tokens after the
	// first chunk's: two events one read took in share its stamp); its value, exact on the
	// fake's 3 ms per token, is TestRatesAreExactOnTheFakesTimings'.
	afterFirst := 0
	for _, at := range mistral.ChunkTimes {
		if at > mistral.ChunkTimes[0] {
			afterFirst++
		}
	}
	if tps := measure.Derive(mistral).StreamDecodeTPS; tps <= 0 || math.Abs(tps-float64(afterFirst)/(mistral.ChunkTimes[7]-mistral.ChunkTimes[0]).Seconds()) > 1e-9*tps {
		t.Errorf("mistral: %.1f tok/s from the token times %v", tps, mistral.ChunkTimes)
	}
	// LLM API: no way to ignore EOS: a shorter output is not the same work, so the row is a
	// failure that says so (and why the backend could not be told to go on).
	phi := byModel["phi"]
	if phi.Outcome != measure.ErrShort || phi.Error != `6 of 8 tokens (stop reason "")` || phi.ServerOutputTokens != 6 || len(phi.Notes) == 0 || !strings.Contains(phi.Notes[0], "no request setting to ignore the end of sequence") {
		t.Errorf("phi: %+v", phi)
	}
	// Not decoupled: no token stream (a failure row with the reason), but perf_analyzer runs
	// and its inferences/sec is recorded as such.
	gpt := byModel["gpt"]
	if gpt.Outcome != measure.ErrOther || !strings.Contains(gpt.Error, "not decoupled") {
		t.Errorf("gpt: outcome %q error %q", gpt.Outcome, gpt.Error)
	}
	if gpt.Settings["perf_analyzer_infer_per_sec"] != "12.50" || gpt.Settings["perf_analyzer_p99_latency_us"] != "80500" {
		t.Errorf("gpt perf_analyzer settings: %v", gpt.Settings)
	}
	if !strings.Contains(log.String(), "perf_analyzer [A] gpt: 12.50 inferences/sec") || strings.Contains(log.String(), "12.50 tok/s") {
		t.Errorf("console must label perf_analyzer's rate as inferences/sec:\n%s", log.String())
	}
	if rows[2].TokensPerSec != 0 {
		t.Errorf("perf_analyzer's rate leaked into tokens_per_sec: %+v", rows[2])
	}
	var args []string
	raw, err := os.ReadFile(record)
	if err != nil {
		t.Fatalf("perf_analyzer did not run: %v\n%s", err, log.String())
	}
	json.Unmarshal(raw, &args)
	base := filepath.Join(logDir, "triton_a_gpt-2b_gpt_20261127_000000")
	want := []string{"-m", "gpt", "-u", eps[0].Addr, "-i", "http", "--concurrency-range", "1", "-b", "1", "--request-count", "20",
		"--input-data", base + ".perf_input.json", "-f", base + ".perf.csv"}
	if !reflect.DeepEqual(args, want) {
		t.Errorf("perf_analyzer args\n got %q\nwant %q", args, want)
	}
	// A model the server does not know: a failure row naming it, the run goes on.
	ghost := byModel["ghost"]
	if ghost.Outcome != measure.ErrLoad || !strings.Contains(ghost.Error, "unknown model") {
		t.Errorf("ghost: outcome %q error %q", ghost.Outcome, ghost.Error)
	}
	if _, err := os.Stat(filepath.Join(logDir, "triton_a_20261127_000000.log")); err != nil {
		t.Errorf("server log not in LOG_DIR: %v", err)
	}
	assertStopped(t, eps)
}

// The rates, exactly on the fake's declared timings: the fake server (3 ms per token) runs
// in-process over in-memory connections inside a synctest bubble, where its sleeps are virtual
// time, and the driver measures it through Config.Transport. Every flavour's tokens arrive
// 3 ms apart from 3 ms on: n tokens give (n-1) / ((n-1) × 3 ms) = 333.33 tok/s, the first token
// at 3 ms, the end at n × 3 ms.
func TestRatesAreExactOnTheFakesTimings(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := &fakeServer{mode: "normal", gap: 3 * time.Millisecond, models: map[string]fakeModel{
			"llama":   {name: "llama", flavour: FlavourTRTLLM, decoupled: true},
			"mistral": {name: "mistral", flavour: FlavourVLLM, decoupled: true, counts: true},
			"phi":     {name: "phi", flavour: FlavourLLMAPI, decoupled: true},
		}}
		srv := stacktest.NewPipeServer(fake)
		defer srv.Close()
		cfg := config(t, t.TempDir(), "", Model{Name: "llama", Alias: "llama-8b"}, Model{Name: "mistral", Alias: "mistral-7b"}, Model{Name: "phi", Alias: "phi-3"})
		cfg.EndpointA, cfg.Transport = "fake-triton:8000", srv.Transport()
		d := New(cfg, &bytes.Buffer{})
		ctx := context.Background()
		ep := stack.Endpoint{Suffix: "A", Addr: cfg.EndpointA}
		targets, _ := d.Targets(ctx)
		ms := time.Millisecond
		for i, want := range []int{8, 8, 6} { // phi (LLM API) cannot ignore the end of sequence
			c, err := d.Baseline(ctx, ep, targets[i])
			if err != nil {
				t.Fatal(err)
			}
			s := (&engine.Engine{Driver: d}).Measure(ctx, ep, targets[i], c)
			wantOutcome := measure.OK
			if want < 8 {
				wantOutcome = measure.ErrShort // its rate is still timed, but it is not the same work
			}
			if s.Outcome != wantOutcome || s.ServerOutputTokens != want || len(s.ChunkTimes) != want {
				t.Fatalf("%s: %s %s, %d tokens, times %v", c.ModelTag, s.Outcome, s.Error, s.ServerOutputTokens, s.ChunkTimes)
			}
			for k, at := range s.ChunkTimes {
				if at != time.Duration(k+1)*3*ms {
					t.Errorf("%s: token %d at %s, the fake sends it at %s", c.ModelTag, k, at, time.Duration(k+1)*3*ms)
				}
			}
			if s.FirstToken != 3*ms || s.End != time.Duration(want)*3*ms {
				t.Errorf("%s: first token %s, end %s", c.ModelTag, s.FirstToken, s.End)
			}
			if got := measure.Derive(s).StreamDecodeTPS; s.Outcome == measure.OK && math.Abs(got-1000.0/3) > 1e-9 {
				t.Errorf("%s: %.12f tok/s, the fake decodes at 333.33", c.ModelTag, got)
			}
		}
	})
}

func assertStopped(t *testing.T, eps []stack.Endpoint) {
	t.Helper()
	for _, ep := range eps {
		if c, err := net.DialTimeout("tcp", ep.Addr, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after Close", ep.Addr)
		}
	}
}

func TestGarbageEventsAreFailureRows(t *testing.T) {
	logDir := t.TempDir()
	d := New(config(t, logDir, startCmd(t, "garbage", "mistral:vllm:1:1"), Model{Name: "mistral", Alias: "m"}), &bytes.Buffer{})
	rows, samples, eps, err := run(t, d, logDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].TokensPerSec != 0 || samples[0].Outcome != measure.ErrMalformed || !strings.Contains(samples[0].Error, "not a JSON object") {
		t.Fatalf("rows %+v sample %+v", rows, samples[0])
	}
	assertStopped(t, eps)
}

// A gRPC port is reported at once, not after the readiness deadline: with a deadline of an
// hour, Setup returns the gRPC diagnosis, not a "not ready after 1h0m0s" timeout (the
// context's two minutes only keep a regression from hanging the test).
func TestGRPCPortIsNamed(t *testing.T) {
	logDir := t.TempDir()
	cfg := config(t, logDir, startCmd(t, "grpc-port"), Model{Name: "llama", Alias: "l"})
	cfg.ReadyTimeout = time.Hour
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, err := New(cfg, &bytes.Buffer{}).Setup(ctx, gpu.Selection{})
	if err == nil || !strings.Contains(err.Error(), "not ready") || !strings.Contains(err.Error(), "HTTP/2 frame") ||
		!strings.Contains(err.Error(), "gRPC") || !strings.Contains(err.Error(), "TRITON_HTTP_A") ||
		strings.Contains(err.Error(), "not ready after") || ctx.Err() != nil {
		t.Fatalf("got %v (context: %v)", err, ctx.Err())
	}
	t.Log(err)
	if c, err := net.DialTimeout("tcp", cfg.EndpointA, time.Second); err == nil {
		c.Close()
		t.Error("the server is still running after the failed Setup")
	}
}

// An already-running server (no TRITON_START_CMD) whose port is a gRPC port: endpoint B of
// the original's defaults. A is used, B is reported and left out.
func TestExternalGRPCEndpointBIsLeftOut(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Write([]byte{0, 0, 0, 0x4, 0, 0, 0, 0, 0})
			c.Close()
		}
	}()
	logDir := t.TempDir()
	srv := config(t, logDir, startCmd(t, "normal", "llama:tensorrtllm:1:0"), Model{Name: "llama", Alias: "l"})
	owner := New(srv, &bytes.Buffer{})
	if _, err := owner.Setup(context.Background(), gpu.Selection{}); err != nil {
		t.Fatal(err)
	}
	defer owner.Close(context.Background())

	cfg := srv
	cfg.StartCmd = ""
	cfg.EndpointB = l.Addr().String()
	var log bytes.Buffer
	eps, err := New(cfg, &log).Setup(context.Background(), gpu.Selection{})
	if err != nil {
		t.Fatal(err)
	}
	if len(eps) != 1 || eps[0].Suffix != "A" || eps[0].Unit != "external" {
		t.Fatalf("endpoints %+v", eps)
	}
	if !strings.Contains(log.String(), "TRITON_HTTP_B") || !strings.Contains(log.String(), "HTTP/2 frame") {
		t.Errorf("log does not explain B:\n%s", log.String())
	}
}

func TestServerExitingAtStartShowsItsLog(t *testing.T) {
	cfg := config(t, t.TempDir(), startCmd(t, "exit"), Model{Name: "llama", Alias: "l"})
	_, err := New(cfg, &bytes.Buffer{}).Setup(context.Background(), gpu.Selection{})
	if err == nil || !strings.Contains(err.Error(), "failed to load model repository") || !strings.Contains(err.Error(), "exit status 1") {
		t.Fatalf("got %v", err)
	}
	t.Log(err)
}

func TestPortTakenIsAnError(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cfg := config(t, t.TempDir(), startCmd(t, "normal", "llama:tensorrtllm:1:0"), Model{Name: "llama", Alias: "l"})
	cfg.EndpointA = l.Addr().String()
	_, err = New(cfg, &bytes.Buffer{}).Setup(context.Background(), gpu.Selection{})
	if err == nil || !strings.Contains(err.Error(), "already in use by pid "+strconv.Itoa(os.Getpid())) || !strings.Contains(err.Error(), "TRITON_HTTP_A") {
		t.Fatalf("got %v", err)
	}
}

// Nothing listening where an already-running server should be is said after two seconds of
// refused connections, not after the readiness deadline: with an hour's deadline, Setup
// returns that diagnosis, not a timeout (which a 300 ms deadline on a busy machine gave
// before any probe was answered).
func TestNoServerRunning(t *testing.T) {
	cfg := config(t, t.TempDir(), "", Model{Name: "llama", Alias: "l"})
	cfg.ReadyTimeout = time.Hour
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, err := New(cfg, &bytes.Buffer{}).Setup(ctx, gpu.Selection{})
	if err == nil || !strings.Contains(err.Error(), "not ready: nothing listens there (connection refused)") || !strings.Contains(err.Error(), "TRITON_START_CMD") ||
		strings.Contains(err.Error(), "not ready after") || ctx.Err() != nil {
		t.Fatalf("got %v (context: %v)", err, ctx.Err())
	}
}

func TestParseModels(t *testing.T) {
	got, err := ParseModels([]string{"llama|llama4-16x17b", "deepseek|deepseek-r1-70b", "solo", "llama|dup"})
	if err != nil {
		t.Fatal(err)
	}
	want := []Model{{"llama", "llama4-16x17b"}, {"deepseek", "deepseek-r1-70b"}, {"solo", "solo"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v", got)
	}
	for _, bad := range [][]string{{"|alias"}, {"a|b|c"}, {"a/b|x"}, {"a|"}, {"a|x", "b|x"}} {
		if _, err := ParseModels(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestPerfAnalyzerArgs(t *testing.T) {
	p := PerfAnalyzer{Model: "ensemble", Addr: "127.0.0.1:8000", Concurrency: 4, Batch: 2, RequestCount: 3, InputData: "in.json", CSV: "out.csv"}
	want := []string{"-m", "ensemble", "-u", "127.0.0.1:8000", "-i", "http", "--concurrency-range", "4", "-b", "2",
		"--request-count", "4", "--input-data", "in.json", "-f", "out.csv"}
	if got := p.Args(); !reflect.DeepEqual(got, want) {
		t.Errorf("got %q", got)
	}
	for _, a := range p.Args() {
		if a == "-p" || a == "-v" || strings.HasPrefix(a, "--request-interval") || strings.Contains(a, "://") {
			t.Errorf("argument %q is the original's misuse", a)
		}
	}
}

func TestParsePerfCSV(t *testing.T) {
	// perf_analyzer's report: server columns present, rows sorted by Inferences/Second.
	in := "Concurrency,Inferences/Second,Client Send,Network+Server Send/Recv,Server Queue,Server Compute Input,Server Compute Infer,Server Compute Output,Client Recv,p50 latency,p90 latency,p95 latency,p99 latency\n" +
		"1,12.5,30,100,5,10,79800,20,15,80100,80200,80300,80500\n" +
		"2,20.25,31,120,40000,10,79000,20,16,98000,99000,99500,99900\n"
	r, err := ParsePerfCSV(strings.NewReader(in), 1)
	if err != nil {
		t.Fatal(err)
	}
	if r.Concurrency != 1 || r.InferPerSec != 12.5 || r.ClientSendUs != 30 || r.ClientRecvUs != 15 ||
		!reflect.DeepEqual(r.LatencyUs, map[int]float64{50: 80100, 90: 80200, 95: 80300, 99: 80500}) {
		t.Errorf("got %+v", r)
	}
	// Decoupled models add Response Throughput; no server stats; an unknown level: last row.
	in = "Concurrency,Inferences/Second,Response Throughput,Client Send,Client Recv,p50 latency,p90 latency,p95 latency,p99 latency\n8,3.5,210.75,40,20,1,2,3,4\n"
	r, err = ParsePerfCSV(strings.NewReader(in), 2)
	if err != nil || r.InferPerSec != 3.5 || r.ResponseThroughput != 210.75 || r.Concurrency != 8 {
		t.Errorf("got %+v %v", r, err)
	}
	for _, bad := range []string{"", "Concurrency,Throughput\n1,2\n", "Concurrency,Inferences/Second\n", "Concurrency,Inferences/Second\n1,abc\n"} {
		if _, err := ParsePerfCSV(strings.NewReader(bad), 1); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestHTTP2Detection(t *testing.T) {
	if !isHTTP2Frame([]byte{0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 3}) || !isHTTP2Frame([]byte{0, 0, 8, 7, 0, 0, 0, 0, 0}) {
		t.Error("SETTINGS/GOAWAY on stream 0 not recognised")
	}
	if isHTTP2Frame([]byte("HTTP/1.1 200 OK\r\n")) || isHTTP2Frame([]byte{0, 0, 6, 4, 0, 0, 0, 0, 1}) {
		t.Error("false positive")
	}
	e := &NotHTTPError{Addr: "127.0.0.1:8001", Kind: "http2", First: []byte{0, 0, 6, 4, 0, 0, 0, 0, 0}}
	if msg := e.Error(); !strings.Contains(msg, "gRPC") || !strings.Contains(msg, "8001") || !strings.Contains(msg, "HTTP/2 frame (00 00 06 04") {
		t.Errorf("message %q", msg)
	}
}

func TestTally(t *testing.T) {
	ms := time.Millisecond
	ev := func(at time.Duration, text string, count int, hasCount bool) event {
		return event{at: at, text: text, hasText: true, count: count, hasCount: hasCount}
	}
	cases := []struct {
		name    string
		flavour Flavour
		events  []event
		tokens  int
		tps     float64
		source  string
		err     string
	}{
		{"one per event", FlavourTRTLLM, []event{ev(10*ms, "a", 0, false), ev(20*ms, "b", 0, false), ev(30*ms, "c", 0, false)}, 3, 100, "stream events", ""},
		{"per-response counts", FlavourVLLM, []event{ev(10*ms, "a", 1, true), ev(20*ms, "bc", 2, true), ev(30*ms, "", 0, true)}, 3, 200, "server num_output_tokens (per response)", ""},
		{"running total", FlavourTRTLLM, []event{ev(10*ms, "a", 1, true), ev(20*ms, "b", 2, true), ev(40*ms, "c", 3, true)}, 3, 2 / 0.03, "server num_output_tokens (running total)", ""},
		{"no text field", FlavourTRTLLM, []event{{at: ms, fields: []string{"model_name"}}}, 0, 0, "", "fields of the first: model_name"},
		{"all empty", FlavourGeneric, []event{ev(ms, "", 0, false), ev(2*ms, "", 0, false)}, 0, 0, "", "empty"},
		{"one token", FlavourGeneric, []event{ev(ms, "a", 0, false)}, 0, 0, "", "no decode interval"},
		// Two tokens in one response: not streamed token by token.
		{"one response", FlavourVLLM, []event{ev(ms, "ab", 2, true)}, 0, 0, "", "no decode interval"},
		// Three events that one read took in at once share its stamp: the client was behind the
		// stream, which is no fault of the server (the engine then times it at its clock).
		{"read at once", FlavourTRTLLM, []event{ev(ms, "a", 0, false), ev(ms, "b", 0, false), ev(ms, "c", 0, false)}, 3, 0, "stream events", ""},
		{"no event", FlavourGeneric, nil, 0, 0, "", "no event"},
	}
	for _, tc := range cases {
		s := &measure.Sample{Outcome: measure.OK, Settings: map[string]string{}}
		total, source, err := tally(tc.events, tc.flavour, sampleArrivals{s})
		s.ServerOutputTokens, s.Settings["output_tokens_source"] = total, source
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, errMalformed) {
				t.Errorf("%s: error %v, want %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if s.ServerOutputTokens != tc.tokens || !strings.HasPrefix(s.Settings["output_tokens_source"], tc.source) {
			t.Errorf("%s: %d tokens from %q", tc.name, s.ServerOutputTokens, s.Settings["output_tokens_source"])
		}
		if got := s.DecodeTokensPerSec(); got < tc.tps*0.999 || got > tc.tps*1.001 {
			t.Errorf("%s: %.3f tok/s, want %.3f", tc.name, got, tc.tps)
		}
		if atOnce := strings.Contains(s.Settings["output_tokens_source"], "read at once"); atOnce != (tc.name == "read at once") {
			t.Errorf("%s: source %q", tc.name, s.Settings["output_tokens_source"])
		}
	}
}

func TestFlavourDetectionAndBodies(t *testing.T) {
	in := func(names ...string) map[string]bool {
		m := map[string]bool{}
		for _, n := range names {
			m[n] = true
		}
		return m
	}
	for _, tc := range []struct {
		inputs  map[string]bool
		backend string
		want    Flavour
	}{
		{in("text_input", "stream", "sampling_parameters"), "vllm", FlavourVLLM},
		{in("text_input", "max_tokens", "stream"), "", FlavourTRTLLM},
		{in("text_input", "streaming", "sampling_param_max_tokens"), "python", FlavourLLMAPI},
		{in("text_input"), "vllm", FlavourVLLM},
		{in("text_input"), "python", FlavourGeneric},
	} {
		if got, why := detectFlavour(tc.inputs, tc.backend); got != tc.want || why == "" {
			t.Errorf("%v %q: %s (%s)", tc.inputs, tc.backend, got, why)
		}
	}
	vllm := &modelInfo{Flavour: FlavourVLLM, Inputs: in("text_input", "stream", "sampling_parameters", "exclude_input_in_output", "return_num_output_tokens")}
	b, _ := json.Marshal(vllm.generateBody("hi", 64, 0, true))
	if string(b) != `{"parameters":{"exclude_input_in_output":true,"return_num_output_tokens":true,"sampling_parameters":"{\"ignore_eos\":true,\"max_tokens\":64,\"temperature\":0}","stream":true},"text_input":"hi"}` {
		t.Errorf("vLLM body %s", b)
	}
	trt := &modelInfo{Flavour: FlavourTRTLLM, Inputs: in("text_input", "max_tokens", "stream", "min_tokens", "top_k", "temperature"), Required: []string{"text_input", "max_tokens"}}
	b, _ = json.Marshal(trt.generateBody("hi", 64, 0, true))
	if string(b) != `{"parameters":{"max_tokens":64,"min_tokens":64,"stream":true,"top_k":1},"text_input":"hi"}` {
		t.Errorf("TensorRT-LLM body %s", b)
	}
	pi, missing := trt.perfInputs("hi", 64, 0.7)
	if len(missing) != 0 || !reflect.DeepEqual(pi, map[string]any{"text_input": "hi", "max_tokens": 64, "min_tokens": 64, "stream": false, "temperature": 0.7}) {
		t.Errorf("perf inputs %v missing %v", pi, missing)
	}
	if f, err := ParseFlavour("TensorRT-LLM"); err != nil || f != FlavourTRTLLM {
		t.Errorf("ParseFlavour: %v %v", f, err)
	}
	if _, err := ParseFlavour("onnx"); err == nil {
		t.Error("ParseFlavour accepted onnx")
	}
}

// sampleArrivals records tally's attributions on a sample, as the engine does.
type sampleArrivals struct{ s *measure.Sample }

func (a sampleArrivals) Chunk(tokens int) time.Duration      { return 0 }
func (a sampleArrivals) Tokens(at time.Duration, tokens int) { a.s.Arrived(at, tokens) }
