package llamacpp_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fuze-ai/fuze/internal/engine"
	"github.com/fuze-ai/fuze/internal/gpu"
	"github.com/fuze-ai/fuze/internal/measure"
	"github.com/fuze-ai/fuze/internal/results"
	"github.com/fuze-ai/fuze/internal/stack"
	"github.com/fuze-ai/fuze/internal/stack/llamacpp"
	"github.com/fuze-ai/fuze/internal/stack/llamacpp/llamafake"
	"github.com/fuze-ai/fuze/internal/stack/stacktest"
	"github.com/fuze-ai/fuze/internal/sweep"
)

// TestMain turns the test binary into the fake llama-server when the driver starts it with
// FUZE_FAKE_LLAMA_SERVER=1 (the binary is LLAMACPP_BIN in these tests).
func TestMain(m *testing.M) {
	if os.Getenv("FUZE_FAKE_LLAMA_SERVER") == "1" {
		os.Exit(llamafake.Main(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// writeGGUF writes a file the fake accepts as a model (the GGUF magic and some bytes).
func writeGGUF(t *testing.T, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, append([]byte("GGUF\x03\x00\x00\x00"), make([]byte, 4096)...), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// fakeConfig is a driver configuration whose LLAMACPP_BIN is the fake llama-server in mode.
// The fake records its command lines and requests in the returned file.
func fakeConfig(t *testing.T, mode string, extraEnv ...string) (llamacpp.Config, string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	model := writeGGUF(t, dir, "tiny-model.gguf")
	record := filepath.Join(dir, "record.jsonl")
	env := append([]string{
		"PATH=" + os.Getenv("PATH"),
		"FUZE_FAKE_LLAMA_SERVER=1",
		"FUZE_FAKE_LLAMA_MODE=" + mode,
		"FUZE_FAKE_LLAMA_LOAD_MS=100",
		"FUZE_FAKE_LLAMA_RECORD=" + record,
		"CUDA_VISIBLE_DEVICES=GPU-should-be-replaced",
	}, extraEnv...)
	return llamacpp.Config{
		Bin:   exe,
		PortA: freePort(t), PortB: freePort(t),
		PathVars:   map[string]string{"LLAMACPP_PATH_tiny_model_": model},
		ModelsEnv:  filepath.Join(dir, "models.env"), // absent
		NGL:        []int{-1, 16, 0},
		CtxSize:    512,
		BatchSize:  32,
		NumPredict: 8,
		Seed:       42,
		Prompt:     "Tell me a 1-sentence fun fact about GPUs.",
		// Short deadlines: the fake loads in 100 ms.
		ReadyTimeout: 10 * time.Second, RequestTimeout: 20 * time.Second, StopGrace: 2 * time.Second,
		LogDir: t.TempDir(), RunTS: "20250220_000000",
		Environ: env,
	}, record
}

func TestDriverSuite(t *testing.T) {
	stacktest.Run(t, stacktest.Harness{
		Working: func(t *testing.T, logDir string) stack.Driver {
			cfg, _ := fakeConfig(t, "normal")
			cfg.LogDir = logDir
			return llamacpp.New(cfg, &bytes.Buffer{})
		},
		Broken: func(t *testing.T, logDir string) stack.Driver {
			cfg, _ := fakeConfig(t, "no-timings")
			cfg.LogDir = logDir
			return llamacpp.New(cfg, &bytes.Buffer{})
		},
		NeverReady: func(t *testing.T, logDir string) stack.Driver {
			cfg, _ := fakeConfig(t, "never-ready")
			cfg.LogDir = logDir
			cfg.ReadyTimeout = 300 * time.Millisecond
			return llamacpp.New(cfg, &bytes.Buffer{})
		},
	})
}

// record is one line the fake wrote: a start (argv) or a request.
type record struct {
	Argv    []string        `json:"argv"`
	CUDA    string          `json:"cuda_visible_devices"`
	PID     int             `json:"pid"`
	Request json.RawMessage `json:"request"`
}

func readRecords(t *testing.T, path string) (starts, requests []record) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		if r.Argv != nil {
			starts = append(starts, r)
		} else {
			requests = append(requests, r)
		}
	}
	return starts, requests
}

type runResult struct {
	rows    []results.Row
	recs    []results.Record
	eps     []stack.Endpoint
	log     string
	csvPath string
}

// run runs the shared engine over the driver and reads back what it wrote.
func run(t *testing.T, cfg llamacpp.Config, sel gpu.Selection, policy sweep.Policy, repeat int) runResult {
	t.Helper()
	var log bytes.Buffer
	d := llamacpp.New(cfg, &log)
	eps, err := d.Setup(context.Background(), sel)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close(context.Background())
	w, err := results.CreateRun(cfg.LogDir, d.Name(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	e := &engine.Engine{Driver: d, Endpoints: eps, Policy: policy, Writer: w, Report: engine.TextReporter(&log), Repeat: repeat}
	if _, err := e.Run(context.Background()); err != nil {
		t.Fatalf("run: %v\n%s", err, log.String())
	}
	d.Close(context.Background())
	w.Close()
	rows, warns, err := results.ReadRunCSV(w.CSVPath())
	if err != nil || len(warns) > 0 {
		t.Fatalf("CSV: %v %v", err, warns)
	}
	recs, _, err := results.ReadRunJSONL(w.JSONLPath())
	if err != nil || len(recs) != len(rows) {
		t.Fatalf("JSONL: %v (%d records, %d rows)", err, len(recs), len(rows))
	}
	return runResult{rows, recs, eps, log.String(), w.CSVPath()}
}

func fakeGPU(uuid string) *gpu.GPU {
	return &gpu.GPU{Index: 0, Name: "NVIDIA Fake GPU", UUID: uuid, MemoryMiB: 24576, Label: "nvidia-fake"}
}

// fakeTimings is what the fake declares for n_gpu_layers ngl (its default 32 layers): the
// time of one generated token, and the decode rate that makes, as the CSV carries it.
func fakeTimings(ngl int) (step time.Duration, csvRate float64) {
	step = llamafake.Options{Layers: 32, NGL: ngl}.Step()
	csvRate, _ = strconv.ParseFloat(strconv.FormatFloat(float64(time.Second)/float64(step), 'f', 2, 64), 64)
	return step, csvRate
}

// The sweep on a GPU endpoint: one server per candidate (repeats share it), the command line,
// the environment and the requests the server really got, tokens/sec from the server's
// timings, the offload the server reported, and nothing left running. The fake's timings are
// declared (llamafake.DeclaredClock), so every rate is exactly the fake's, however busy the
// machine is.
func TestSweepOnGPUEndpoint(t *testing.T) {
	cfg, recPath := fakeConfig(t, "normal")
	res := run(t, cfg, gpu.Selection{A: fakeGPU("GPU-aaaa-1111")}, sweep.Policy{Exhaustive: true}, 2)
	if len(res.rows) != 4 {
		t.Fatalf("want baseline + 3 candidates, got %d rows\n%s", len(res.rows), res.log)
	}
	wantTags := []string{"tiny-model", "tiny-model-nvidia-fake-ngl-1", "tiny-model-nvidia-fake-ngl16", "tiny-model-nvidia-fake-ngl0"}
	wantNumGPU := []string{"default", "-1", "16", "0"}
	wantOffload := []string{"0/33", "33/33", "16/33", "0/33"}
	wantArg := []string{"not passed", "999", "16", "0"}
	wantLayers := []int{0, 33, 16, 0} // on the GPU: the server's default (0), all, 16, none
	for i, r := range res.rows {
		s := res.recs[i].Sample
		if s.Outcome != measure.OK {
			t.Fatalf("row %d: %s %s\n%s", i, s.Outcome, s.Error, res.log)
		}
		if r.ModelTag != wantTags[i] || r.NumGPU != wantNumGPU[i] || r.NumCtx != "512" || r.Batch != "32" || r.NumPredict != "8" || r.BaseModel != "tiny-model" {
			t.Errorf("row %d: %+v", i, r)
		}
		if s.Settings["offloaded_layers"] != wantOffload[i] || s.Settings["n_gpu_layers_arg"] != wantArg[i] {
			t.Errorf("row %d settings %v", i, s.Settings)
		}
		if s.ServerOutputTokens != 8 || s.ServerPromptTokens < 10 || s.ServerPromptDuration <= 0 || len(s.ChunkTimes) != 8 || s.FirstToken <= 0 {
			t.Errorf("row %d sample: %d out, %d prompt in %s, %d chunks", i, s.ServerOutputTokens, s.ServerPromptTokens, s.ServerPromptDuration, len(s.ChunkTimes))
		}
		// The CSV rate is fuze's client's (checked against the record's own metrics); the
		// server's predicted_per_second, the fake's declared rate (8 steps of 1/(CPURate +
		// LayerRate × layers on the GPU), exactly), is the cross-check beside it.
		step, want := fakeTimings(wantLayers[i])
		if m := res.recs[i].Metrics; math.Abs(r.TokensPerSec-m.DecodeTPS) > 0.006 || math.Abs(m.ServerDecodeTPS-want) > 1e-6*want {
			t.Errorf("row %d: %.2f tok/s in the CSV, the client measured %.4f; server timer %.4f, the fake declares %.2f", i, r.TokensPerSec, m.DecodeTPS, m.ServerDecodeTPS, want)
		}
		if s.ServerDecodeDuration != 8*step || s.ServerPromptDuration != llamafake.PrefillTime(s.ServerPromptTokens) {
			t.Errorf("row %d: decode %s, prefill %s for %d tokens; the fake declares 8 × %s and %s",
				i, s.ServerDecodeDuration, s.ServerPromptDuration, s.ServerPromptTokens, step, llamafake.PrefillTime(s.ServerPromptTokens))
		}
		if s.Settings["server_predicted_per_second"] != strconv.FormatFloat(1e9/float64(step), 'f', 4, 64) {
			t.Errorf("row %d: the server said %s; the fake decodes at %.2f", i, s.Settings["server_predicted_per_second"], want)
		}
		if len(s.RepeatTPS) != 2 {
			t.Errorf("row %d: repeats %v", i, s.RepeatTPS)
		}
	}
	// More layers on the GPU decode faster: the fall the sweep exists to find, on the fake's
	// declared timings (40 + 10 per layer: 370, 200, 40 tok/s by the server's timer).
	if got := []float64{res.recs[1].Metrics.ServerDecodeTPS, res.recs[2].Metrics.ServerDecodeTPS, res.recs[3].Metrics.ServerDecodeTPS}; math.Abs(got[0]-370) > 1e-4 || math.Abs(got[1]-200) > 1e-4 || math.Abs(got[2]-40) > 1e-4 {
		t.Errorf("full, 16 and 0 layers at %v tok/s by the server timer, the fake decodes at 370, 200 and 40", got)
	}

	starts, reqs := readRecords(t, recPath)
	if len(starts) != 4 {
		t.Fatalf("%d server starts, want one per configuration (4)", len(starts))
	}
	for i, st := range starts {
		args := strings.Join(st.Argv, " ")
		if !strings.Contains(args, "--host 127.0.0.1 --port "+strconv.Itoa(cfg.PortA)) || !strings.Contains(args, "--ctx-size 512 --batch-size 32 --parallel 1") ||
			!strings.Contains(args, "--model "+cfg.PathVars["LLAMACPP_PATH_tiny_model_"]) {
			t.Errorf("start %d: %s", i, args)
		}
		hasNGL := strings.Contains(args, "--n-gpu-layers")
		if (i == 0) == hasNGL {
			t.Errorf("start %d: %s (the baseline runs without --n-gpu-layers, candidates with)", i, args)
		}
		if i > 0 && !strings.HasSuffix(args, "--n-gpu-layers "+wantArg[i]) {
			t.Errorf("start %d: %s", i, args)
		}
		if st.CUDA != "GPU-aaaa-1111" {
			t.Errorf("start %d: CUDA_VISIBLE_DEVICES=%q", i, st.CUDA)
		}
		if err := syscall.Kill(st.PID, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("server pid %d still exists after Close (%v)", st.PID, err)
		}
	}
	// Per configuration: a warm-up, then 2 measured requests.
	if len(reqs) != 12 {
		t.Fatalf("%d requests, want 12", len(reqs))
	}
	prompts := map[string]bool{}
	for i, r := range reqs {
		var body map[string]any
		json.Unmarshal(r.Request, &body)
		if body["stream"] != true || body["cache_prompt"] != false || body["ignore_eos"] != true || body["seed"] != 42.0 || body["temperature"] != 0.0 {
			t.Errorf("request %d: %s", i, r.Request)
		}
		if i%3 == 0 {
			continue // warm-up
		}
		if body["n_predict"] != 8.0 {
			t.Errorf("request %d: %s", i, r.Request)
		}
		p := body["prompt"].(string)
		if prompts[p] {
			t.Errorf("prompt %q sent twice", p)
		}
		prompts[p] = true
	}
	// One log per endpoint, appended to by every start.
	logs, _ := filepath.Glob(filepath.Join(cfg.LogDir, "llamacpp_*.log"))
	if len(logs) != 1 || filepath.Base(logs[0]) != "llamacpp_a_20250220_000000.log" {
		t.Fatalf("logs %v", logs)
	}
	b, _ := os.ReadFile(logs[0])
	if n := strings.Count(string(b), "==== fuze "); n != 4 {
		t.Errorf("log has %d start headers, want 4", n)
	}
	if n := strings.Count(string(b), "main: model loaded"); n != 4 {
		t.Errorf("log has %d loads, want 4", n)
	}
}

// A newer server's own default offload (all layers) is what the baseline records.
func TestBaselineRecordsTheServersDefaultOffload(t *testing.T) {
	cfg, _ := fakeConfig(t, "normal", "FUZE_FAKE_LLAMA_DEFAULT_NGL=999")
	cfg.NGL = []int{0}
	res := run(t, cfg, gpu.Selection{}, sweep.Policy{Exhaustive: true}, 1)
	if len(res.rows) != 2 {
		t.Fatalf("%d rows", len(res.rows))
	}
	base := res.recs[0].Sample
	if res.rows[0].NumGPU != "default" || base.Settings["offloaded_layers"] != "33/33" || base.Settings["n_gpu_layers_arg"] != "not passed" {
		t.Errorf("baseline %+v settings %v", res.rows[0], base.Settings)
	}
	if res.rows[0].GPULabel != "cpu" || res.rows[1].ModelTag != "tiny-model-cpu-ngl0" {
		t.Errorf("rows %+v", res.rows)
	}
	if a, b := res.recs[0].Metrics.ServerDecodeTPS, res.recs[1].Metrics.ServerDecodeTPS; math.Abs(a-370) > 1e-4 || math.Abs(b-40) > 1e-4 {
		t.Errorf("full default offload at %.2f tok/s, -ngl 0 at %.2f by the server timer; the fake decodes at 370 and 40", a, b)
	}
}

// A server built without GPU offload logs its loader without an "offloaded N/M layers to GPU"
// line and ignores --n-gpu-layers (with a warning). On a GPU endpoint, the driver records
// that the build has no GPU offload, for the baseline and every candidate alike, and their
// rates are all the fake's CPU rate: the sweep's flat line is explained, not a mystery.
func TestCPUBuildRecordsNoOffload(t *testing.T) {
	cfg, _ := fakeConfig(t, "normal", "FUZE_FAKE_LLAMA_BUILD=cpu")
	cfg.NGL = []int{-1, 0}
	res := run(t, cfg, gpu.Selection{A: fakeGPU("GPU-dddd")}, sweep.Policy{Exhaustive: true}, 1)
	if len(res.rows) != 3 {
		t.Fatalf("%d rows\n%s", len(res.rows), res.log)
	}
	wantArg := []string{"not passed", "999", "0"}
	for i, r := range res.rows {
		s := res.recs[i].Sample
		if s.Outcome != measure.OK {
			t.Fatalf("row %d: %s: %s\n%s", i, s.Outcome, s.Error, res.log)
		}
		if s.Settings["offloaded_layers"] != llamacpp.NoOffload || s.Settings["n_gpu_layers_arg"] != wantArg[i] {
			t.Errorf("row %d: offloaded_layers %q, n_gpu_layers_arg %q; want %q and %q",
				i, s.Settings["offloaded_layers"], s.Settings["n_gpu_layers_arg"], llamacpp.NoOffload, wantArg[i])
		}
		if got := res.recs[i].Metrics.ServerDecodeTPS; math.Abs(got-llamafake.CPURate) > 1e-4 || r.TokensPerSec <= 0 {
			t.Errorf("row %d: %.2f tok/s by the server timer (CSV %.2f), the fake's CPU build decodes at %.2f", i, got, r.TokensPerSec, llamafake.CPURate)
		}
	}
	if n := strings.Count(res.log, "offloaded "+llamacpp.NoOffload+", log "); n != 3 {
		t.Errorf("the console names the missing offload %d times, want 3:\n%s", n, res.log)
	}
	b, err := os.ReadFile(filepath.Join(cfg.LogDir, "llamacpp_a_20250220_000000.log"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "--gpu-layers option will be ignored"); n != 2 || strings.Contains(string(b), "layers to GPU") {
		t.Errorf("server log: %d --gpu-layers warnings (want 2, one per candidate), offload lines: %v\n%s",
			n, strings.Contains(string(b), "layers to GPU"), b)
	}
}

// A server that dies at start: a failure row naming the server's last log lines, one start
// per configuration, the sweep goes on, nothing left running.
func TestServerExitsAtStart(t *testing.T) {
	cfg, recPath := fakeConfig(t, "crash")
	cfg.NGL = []int{-1, 0}
	res := run(t, cfg, gpu.Selection{A: fakeGPU("GPU-bbbb")}, sweep.Policy{Exhaustive: true}, 3)
	if len(res.rows) != 3 {
		t.Fatalf("%d rows\n%s", len(res.rows), res.log)
	}
	for i, r := range res.rows {
		s := res.recs[i].Sample
		if r.TokensPerSec != 0 || s.Outcome != measure.ErrExited ||
			!strings.Contains(s.Error, "main: exiting due to model loading error") || !strings.Contains(s.Error, "llamacpp_a_") {
			t.Errorf("row %d: %.2f tok/s, %s: %s", i, r.TokensPerSec, s.Outcome, s.Error)
		}
	}
	if starts, _ := readRecords(t, recPath); len(starts) != 3 {
		t.Errorf("%d starts for 3 configurations", len(starts))
	}
}

// A server that never gets ready is started once per configuration, not once per repeat, and
// its timeout names the server's last /health answer. The deadline fires whatever the load
// (the server never gets ready); it only has to outlast the fake's own start, which binds the
// port first thing and answers 503 from then on: 5 s, not a tight 1 s that a busy machine's
// process start can use up before the first answer.
func TestNeverReadyIsNotRetriedPerRepeat(t *testing.T) {
	cfg, recPath := fakeConfig(t, "never-ready")
	cfg.ReadyTimeout = 5 * time.Second
	cfg.NGL = []int{16}
	ctx := context.Background()
	d := llamacpp.New(cfg, nil)
	eps, err := d.Setup(ctx, gpu.Selection{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close(ctx)
	targets, err := d.Targets(ctx)
	if err != nil || len(targets) != 1 {
		t.Fatal(targets, err)
	}
	cands, err := d.Candidates(ctx, eps[0], targets[0])
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 { // three repeats of one configuration
		s := (&engine.Engine{Driver: d}).Measure(ctx, eps[0], targets[0], cands[0])
		if s.Outcome != measure.ErrTimeout || !strings.Contains(s.Error, "not ready after 5s") || !strings.Contains(s.Error, "Loading model") {
			t.Errorf("repeat %d: %s: %s", i, s.Outcome, s.Error)
		}
	}
	starts, reqs := readRecords(t, recPath)
	if len(starts) != 1 || len(reqs) != 0 {
		t.Errorf("%d starts and %d completion requests, want 1 and 0", len(starts), len(reqs))
	}
}

// A server that crashes mid-answer gives a server_exit row with its last words.
func TestServerDiesMidStream(t *testing.T) {
	cfg, _ := fakeConfig(t, "die-mid-stream")
	cfg.NGL = []int{-1}
	res := run(t, cfg, gpu.Selection{}, sweep.Policy{Exhaustive: true}, 1)
	for i, rec := range res.recs {
		if rec.Sample.Outcome != measure.ErrExited || !strings.Contains(rec.Sample.Error, "out of memory") {
			t.Errorf("row %d: %s: %s", i, rec.Sample.Outcome, rec.Sample.Error)
		}
	}
}

// A port held by another process (another stack's server, as in the original) is an error
// naming the process before anything starts.
func TestPortHeldByAnotherProcess(t *testing.T) {
	cfg, _ := fakeConfig(t, "normal")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cfg.PortA = l.Addr().(*net.TCPAddr).Port
	_, err = llamacpp.New(cfg, nil).Setup(context.Background(), gpu.Selection{})
	want := "port " + strconv.Itoa(cfg.PortA) + " is already in use by pid " + strconv.Itoa(os.Getpid())
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "PORT_A") {
		t.Fatalf("got %v, want it to contain %q and PORT_A", err, want)
	}
}

func TestMissingBinaryNamesLLAMACPP_BIN(t *testing.T) {
	notFound := func(string) (string, error) { return "", errors.New("not found") }
	for _, bin := range []string{"", "/nonexistent/llama-server", "llama-server-nope"} {
		cfg, _ := fakeConfig(t, "normal")
		cfg.Bin, cfg.LookPath = bin, notFound
		_, err := llamacpp.New(cfg, nil).Setup(context.Background(), gpu.Selection{})
		if err == nil || !strings.Contains(err.Error(), "LLAMACPP_BIN") {
			t.Errorf("LLAMACPP_BIN=%q: %v", bin, err)
		}
	}
	// Unset: llama-server on PATH, else the older name "server".
	got, err := llamacpp.ResolveBin("", func(name string) (string, error) {
		if name == "server" {
			return "/opt/llama/server", nil
		}
		return "", errors.New("not found")
	})
	if err != nil || got != "/opt/llama/server" {
		t.Errorf("got %q %v", got, err)
	}
}

func TestCandidatesAndCommandLine(t *testing.T) {
	cfg, _ := fakeConfig(t, "normal")
	cfg.NGL = []int{-1, 64, 48, 0}
	d := llamacpp.New(cfg, nil)
	ep := stack.Endpoint{Suffix: "B", Addr: "127.0.0.1:11436", Unit: "proc", GPU: fakeGPU("GPU-cccc")}
	tg := stack.Target{Model: "gemma3:4b", Alias: "gemma3-4b"}
	cands, err := d.Candidates(context.Background(), ep, tg)
	if err != nil || len(cands) != 4 {
		t.Fatal(cands, err)
	}
	if c := cands[1]; c.Label != stack.LabelOptimized || c.ModelTag != "gemma3-4b-nvidia-fake-ngl64" || c.NumGPU != "64" || c.NumCtx != "512" || c.Batch != "32" || c.NumPredict != "8" {
		t.Errorf("%+v", c)
	}
	base, _ := d.Baseline(context.Background(), ep, tg)
	if base.Label != stack.LabelBaseline || base.ModelTag != "gemma3-4b" || base.NumGPU != "default" {
		t.Errorf("%+v", base)
	}
	got := strings.Join(d.ServerArgs(ep, "/m/g.gguf", cands[0]), " ")
	if want := "--model /m/g.gguf --host 127.0.0.1 --port 11436 --ctx-size 512 --batch-size 32 --parallel 1 --n-gpu-layers 999"; got != want {
		t.Errorf("args %q\nwant %q", got, want)
	}
	if got := strings.Join(d.ServerArgs(ep, "/m/g.gguf", base), " "); strings.Contains(got, "gpu-layers") {
		t.Errorf("baseline args %q", got)
	}
	env := d.ServerEnv(ep)
	n := 0
	for _, kv := range env {
		if strings.HasPrefix(kv, "CUDA_VISIBLE_DEVICES=") {
			n++
			if kv != "CUDA_VISIBLE_DEVICES=GPU-cccc" {
				t.Errorf("%s", kv)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d CUDA_VISIBLE_DEVICES in %v", n, env)
	}
	if env := d.ServerEnv(stack.Endpoint{Addr: "127.0.0.1:1"}); env[len(env)-1] != "CUDA_VISIBLE_DEVICES=" {
		t.Errorf("CPU endpoint env %v", env)
	}
}
