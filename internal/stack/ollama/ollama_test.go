package ollama_test

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fuze-ai/fuze/internal/naming"

	"github.com/fuze-ai/fuze/internal/engine"
	"github.com/fuze-ai/fuze/internal/gpu"
	"github.com/fuze-ai/fuze/internal/measure"
	"github.com/fuze-ai/fuze/internal/ollamatest"
	"github.com/fuze-ai/fuze/internal/results"
	"github.com/fuze-ai/fuze/internal/server"
	"github.com/fuze-ai/fuze/internal/stack"
	"github.com/fuze-ai/fuze/internal/stack/ollama"
	"github.com/fuze-ai/fuze/internal/stack/stacktest"
	"github.com/fuze-ai/fuze/internal/sweep"
)

func config(t *testing.T, srv *ollamatest.Server) ollama.Config {
	_, port, _ := net.SplitHostPort(srv.Addr)
	p, _ := strconv.Atoi(port)
	return ollama.Config{
		PersistentPort: p, TestPortA: ollamatest.FreePort(t), TestPortB: ollamatest.FreePort(t),
		ModelsDir: srv.Models, Bin: ollamatest.Binary(t),
		AliasPrefix: "LLM-FuZe-", Prompt: "Tell me a fun fact about GPUs.",
		NumPredict: 8, NumCtx: 512, FastMode: true, AutoNG: true,
		NGPercents: []float64{100, 90, 75, 60, 50, 40, 30, 20, 10},
		TimeoutGen: time.Minute, TimeoutTags: 10 * time.Second, WaitAPI: time.Minute,
		LogDir: t.TempDir(), RunTS: "20261127_000000",
		Environ: []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()},
	}
}

// killingDriver kills the endpoint's test daemon (the whole process group, as a crash
// would) right after the n-th measurement.
type killingDriver struct {
	*ollama.Driver
	n    int
	addr string
}

func (k *killingDriver) Send(ctx context.Context, ep stack.Endpoint, tg stack.Target, c stack.Candidate, req stack.Request, rec stack.Arrivals) (measure.ServerCounters, error) {
	sc, err := k.Driver.Send(ctx, ep, tg, c, req, rec)
	k.n--
	if k.n == 0 {
		p := k.Driver.Daemon(k.addr).(*server.Process)
		_ = syscall.Kill(-p.PID(), syscall.SIGKILL)
		<-p.Done()
	}
	return sc, err
}

func TestServerKilledMidSweepGivesFailureRows(t *testing.T) {
	srv := ollamatest.StartWithTiny(t, "tiny:latest")
	cfg := config(t, srv)
	var log bytes.Buffer
	d := ollama.New(cfg, &log)
	eps, err := d.Setup(context.Background(), gpu.Selection{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close(context.Background())
	w, err := results.CreateRun(cfg.LogDir, "ollama", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	// Baseline and first candidate succeed; the daemon dies; the next candidates fail.
	e := &engine.Engine{Driver: &killingDriver{Driver: d, n: 2, addr: eps[0].Addr}, Endpoints: eps,
		Policy: sweep.Policy{Exhaustive: true, ZeroBreak: 2}, Writer: w, Report: engine.TextReporter(&log)}
	outcomes, err := e.Run(context.Background())
	if err != nil {
		t.Fatalf("a dead server must not abort the run: %v\n%s", err, log.String())
	}
	rows, warnings, err := results.ReadRunCSV(w.CSVPath())
	if err != nil || len(warnings) > 0 {
		t.Fatalf("read back: %v %v", err, warnings)
	}
	// base + num_gpu 3 (ok), then the daemon dies: 2 and 1 fail and are still rows.
	if len(rows) != 4 {
		t.Fatalf("want 4 rows, got %d\n%s", len(rows), log.String())
	}
	if rows[0].TokensPerSec <= 0 || rows[1].TokensPerSec <= 0 {
		t.Fatalf("rows before the kill must be measurements: %+v", rows[:2])
	}
	recs, _, err := results.ReadRunJSONL(w.JSONLPath())
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{2, 3} {
		if rows[i].TokensPerSec != 0 {
			t.Errorf("row %d after the kill: %.2f tok/s", i, rows[i].TokensPerSec)
		}
		if recs[i].Sample.Outcome != measure.ErrExited || !strings.Contains(recs[i].Sample.Error, "killed") {
			t.Errorf("row %d: outcome %q error %q, want server_exit naming the signal", i, recs[i].Sample.Outcome, recs[i].Sample.Error)
		}
	}
	if !strings.Contains(log.String(), "server_exit") {
		t.Errorf("console lacks the failure reasons:\n%s", log.String())
	}
	if len(outcomes) != 1 || outcomes[0].Best == nil {
		t.Fatalf("outcomes %+v", outcomes)
	}
}

func TestPersistentDaemonDownIsAClearError(t *testing.T) {
	cfg := ollama.Config{PersistentPort: ollamatest.FreePort(t), TimeoutTags: 2 * time.Second}
	_, err := ollama.New(cfg, &bytes.Buffer{}).Setup(context.Background(), gpu.Selection{})
	want := regexp.MustCompile(`persistent Ollama daemon on 127\.0\.0\.1:\d+ is not answering /api/tags .*connection refused`)
	if err == nil || !want.MatchString(err.Error()) {
		t.Fatalf("got %v", err)
	}
}

func TestTestPortTakenIsAnError(t *testing.T) {
	srv := ollamatest.StartWithTiny(t, "tiny:latest")
	cfg := config(t, srv)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cfg.TestPortA = l.Addr().(*net.TCPAddr).Port
	_, err = ollama.New(cfg, &bytes.Buffer{}).Setup(context.Background(), gpu.Selection{})
	if err == nil || !strings.Contains(err.Error(), "port "+strconv.Itoa(cfg.TestPortA)+" is already in use by pid "+strconv.Itoa(os.Getpid())) {
		t.Fatalf("got %v", err)
	}
}

func TestCancelStopsCleanly(t *testing.T) {
	srv := ollamatest.StartWithTiny(t, "tiny:latest")
	cfg := config(t, srv)
	d := ollama.New(cfg, &bytes.Buffer{})
	eps, err := d.Setup(context.Background(), gpu.Selection{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close(context.Background()) // also when an assertion fails; a second Close is a no-op
	w, err := results.CreateRun(cfg.LogDir, "ollama", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	// Ctrl-C lands after the baseline: the sweep stops, the baseline row stays on disk.
	e := &engine.Engine{Driver: &cancellingDriver{Driver: d, cancel: cancel}, Endpoints: eps,
		Policy: sweep.Policy{Exhaustive: true}, Writer: w}
	_, err = e.Run(ctx)
	if err != context.Canceled {
		t.Fatalf("want context.Canceled, got %v", err)
	}
	d.Close(context.Background())
	w.Close()
	rows, _, err := results.ReadRunCSV(w.CSVPath())
	if err != nil || len(rows) < 1 || rows[0].VariantLabel != "base-as-is" || rows[0].TokensPerSec <= 0 {
		t.Fatalf("rows %+v err %v", rows, err)
	}
	if c, err := net.Dial("tcp", eps[0].Addr); err == nil {
		c.Close()
		t.Fatal("test daemon still listening after Close")
	}
	matches, _ := filepath.Glob(filepath.Join(cfg.LogDir, "ollama_a_*.log"))
	if len(matches) != 1 {
		t.Fatalf("daemon log not kept in LOG_DIR: %v", matches)
	}
}

type cancellingDriver struct {
	*ollama.Driver
	cancel func()
}

func (c *cancellingDriver) Send(ctx context.Context, ep stack.Endpoint, tg stack.Target, cand stack.Candidate, req stack.Request, rec stack.Arrivals) (measure.ServerCounters, error) {
	sc, err := c.Driver.Send(ctx, ep, tg, cand, req, rec)
	c.cancel()
	return sc, err
}

func TestAlias(t *testing.T) {
	for _, tc := range []struct{ tag, prefix, suffix, want string }{
		{"gemma3:4b-it-fp16", "LLM-FuZe-", "-explore", "LLM-FuZe-gemma3-4b-i-f16-explore"},
		{"gemma3:4b-it-fp16", "FuZeCORE-", "", "FuZeCORE-gemma3-4b-i-f16"},
		{"library/llama3.1:8b-instruct-bf16", "LLM-FuZe-", "", "LLM-FuZe-library-llama3.1-8b-instruct-b16"},
		{"mistral:7b-italian-q4", "p-", "", "p-mistral-7b-italian-q4"},
		{"qwen:7b-it-it", "", "", "qwen-7b-i-i"},
		{"LLM-FuZe-gemma3:4b", "LLM-FuZe-", "", "LLM-FuZe-gemma3-4b"},
	} {
		if got := naming.Alias(tc.tag, tc.prefix, tc.suffix); got != tc.want {
			t.Errorf("Alias(%q,%q,%q) = %q, want %q", tc.tag, tc.prefix, tc.suffix, got, tc.want)
		}
	}
	for name, want := range map[string]bool{
		"LLM-FuZe-gemma3-4b-i-f16-nvidia-5090-ng35:latest": true,
		"LLM-FuZe-gemma3-4b-i-f16-nvidia-3090ti-ng4":       true,
		"LLM-FuZe-llama-8b-nvidia-h100-80gb-ng33:latest":   true,
		"LLM-FuZe-tiny-cpu-ng3:latest":                     true,
		"gemma3:4b-it-fp16":                                false,
		"nvidia-nemotron:70b":                              false,
	} {
		if got := naming.IsVariant(name); got != want {
			t.Errorf("IsVariant(%q) = %v", name, got)
		}
	}
}

func TestDriverSuite(t *testing.T) {
	stacktest.Run(t, stacktest.Harness{
		Working: func(t *testing.T, logDir string) stack.Driver {
			srv := ollamatest.StartWithTiny(t, "tiny:latest")
			cfg := config(t, srv)
			cfg.LogDir = logDir
			cfg.NGPercents = []float64{100, 50}
			return ollama.New(cfg, &bytes.Buffer{})
		},
		// A real failure: the model is listed, but its weights file is garbage now.
		Broken: func(t *testing.T, logDir string) stack.Driver {
			srv := ollamatest.StartWithTiny(t, "ghost:latest")
			blobs, _ := filepath.Glob(filepath.Join(srv.Models, "blobs", "sha256-*"))
			for _, b := range blobs {
				if st, err := os.Stat(b); err == nil && st.Size() > 100000 {
					os.WriteFile(b, bytes.Repeat([]byte("garbage!"), int(st.Size()/8)), 0o644)
				}
			}
			cfg := config(t, srv)
			cfg.LogDir = logDir
			cfg.AutoNG = false
			cfg.NumGPUFallback = []int{2, 1}
			return ollama.New(cfg, &bytes.Buffer{})
		},
		// Not an Ollama at all: something that accepts connections and never answers HTTP.
		NeverReady: func(t *testing.T, logDir string) stack.Driver {
			srv := ollamatest.StartWithTiny(t, "tiny:latest")
			cfg := config(t, srv)
			cfg.LogDir = logDir
			cfg.Bin = writeScript(t, "#!/bin/sh\nexec sleep 300\n")
			cfg.WaitAPI = 300 * time.Millisecond
			return ollama.New(cfg, &bytes.Buffer{})
		},
	})
}

func writeScript(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fake-server")
	if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// FAST_MODE=0 bakes num_gpu into variant tags on the persistent daemon and benches the tags.
func TestBakedVariants(t *testing.T) {
	srv := ollamatest.StartWithTiny(t, "tiny:latest")
	cfg := config(t, srv)
	cfg.FastMode = false
	cfg.NumGPUFallback = []int{2, 1}
	cfg.GCAfterRun = true
	var log bytes.Buffer
	d := ollama.New(cfg, &log)
	eps, err := d.Setup(context.Background(), gpu.Selection{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close(context.Background())
	w, err := results.CreateRun(cfg.LogDir, "ollama", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	e := &engine.Engine{Driver: d, Endpoints: eps, Policy: sweep.Policy{Exhaustive: true}, Writer: w, Report: engine.TextReporter(&log), Repeat: 2}
	if _, err := e.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	d.Close(context.Background())
	w.Close()
	rows, _, _ := results.ReadRunCSV(w.CSVPath())
	if len(rows) != 3 || rows[1].ModelTag != "LLM-FuZe-tiny-latest-cpu-ng2:latest" || rows[2].ModelTag != "LLM-FuZe-tiny-latest-cpu-ng1:latest" {
		t.Fatalf("rows %+v\n%s", rows, log.String())
	}
	created, err := os.ReadFile(filepath.Join(cfg.LogDir, "ollama_created_"+cfg.RunTS+".txt"))
	if err != nil || string(created) != "LLM-FuZe-tiny-latest-cpu-ng2\nLLM-FuZe-tiny-latest-cpu-ng1\n" {
		t.Fatalf("created list %q %v (each variant baked once despite BENCH_REPEAT=2)", created, err)
	}
	// Both worked, so GC keeps them; the daemon lists them with num_gpu baked in.
	show, err := srv.Client.Show(context.Background(), "LLM-FuZe-tiny-latest-cpu-ng1:latest")
	if err != nil || !strings.Contains(show.Parameters, "num_gpu") {
		t.Fatalf("variant parameters %+v %v", show, err)
	}
	if !strings.Contains(log.String(), "GC created variants: removed=0 kept=2") {
		t.Fatalf("GC line missing:\n%s", log.String())
	}
}

// fakeSystemd plays systemd for the unit files the driver writes: "start" runs the unit's
// ExecStart with its Environment= lines, "is-active" and "stop" act on that process.
type fakeSystemd struct {
	t     *testing.T
	dir   string
	procs map[string]*server.Process
}

func (f *fakeSystemd) run(_ context.Context, name string, args ...string) ([]byte, error) {
	if name != "systemctl" || len(args) < 2 {
		return nil, nil
	}
	unit := args[1]
	switch args[0] {
	case "start":
		raw, err := os.ReadFile(filepath.Join(f.dir, unit))
		if err != nil {
			return nil, err
		}
		spec := server.Spec{Name: unit, Env: []string{"PATH=" + os.Getenv("PATH")}}
		for _, line := range strings.Split(string(raw), "\n") {
			if v, ok := strings.CutPrefix(line, "Environment="); ok {
				unq, _ := strconv.Unquote(v)
				spec.Env = append(spec.Env, unq)
			}
			if v, ok := strings.CutPrefix(line, "ExecStart="); ok {
				fields := strings.Fields(v)
				spec.Path, spec.Args = fields[0], fields[1:]
			}
		}
		p, err := server.Start(spec)
		if err != nil {
			return nil, err
		}
		f.procs[unit] = p
		f.t.Cleanup(func() { p.Stop(5 * time.Second) })
	case "is-active":
		if p := f.procs[unit]; p != nil && p.ExitError() == nil {
			return []byte("active\n"), nil
		}
		return []byte("inactive\n"), nil
	case "stop":
		if p := f.procs[unit]; p != nil {
			p.Stop(5 * time.Second)
		}
	}
	return nil, nil
}

func TestSystemdTestUnits(t *testing.T) {
	srv := ollamatest.StartWithTiny(t, "tiny:latest")
	cfg := config(t, srv)
	cfg.NGPercents = []float64{100}
	fake := &fakeSystemd{t: t, dir: t.TempDir(), procs: map[string]*server.Process{}}
	cfg.Systemd = &server.Systemd{UnitDir: fake.dir, Run: fake.run}
	d := ollama.New(cfg, &bytes.Buffer{})
	eps, err := d.Setup(context.Background(), gpu.Selection{})
	if err != nil {
		t.Fatal(err)
	}
	if eps[0].Unit != "ollama-test-a.service" {
		t.Fatalf("unit column %q", eps[0].Unit)
	}
	s := (&engine.Engine{Driver: d}).Measure(context.Background(), eps[0], stack.Target{Model: "tiny:latest"}, stack.Candidate{Label: stack.LabelBaseline, ModelTag: "tiny:latest", NumGPU: "default"})
	if s.Failed() {
		t.Fatalf("measure through the unit: %s %s", s.Outcome, s.Error)
	}
	d.Close(context.Background())
	if c, err := net.Dial("tcp", eps[0].Addr); err == nil {
		c.Close()
		t.Fatal("unit still serving after Close: the original left its units running")
	}
}

// SKIP_TEST_UNITS=1 (or TEST_PORT_A equal to the persistent port) benches the stock daemon
// itself: no test daemon is started and the row names the persistent port.
func TestStockDaemonMode(t *testing.T) {
	srv := ollamatest.StartWithTiny(t, "tiny:latest")
	cfg := config(t, srv)
	cfg.TestPortA = cfg.PersistentPort
	cfg.DebugBench = true
	d := ollama.New(cfg, &bytes.Buffer{})
	eps, err := d.Setup(context.Background(), gpu.Selection{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close(context.Background())
	if len(eps) != 1 || eps[0].Addr != srv.Addr || eps[0].Suffix != strconv.Itoa(cfg.PersistentPort) || d.Daemon(srv.Addr) != nil {
		t.Fatalf("endpoints %+v", eps)
	}
	s := (&engine.Engine{Driver: d}).Measure(context.Background(), eps[0], stack.Target{Model: "tiny:latest"}, stack.Candidate{Label: stack.LabelOptimized, ModelTag: "tiny:latest", NumGPU: "1", NumCtx: "512", NumPredict: "8"})
	if s.Failed() || s.ServerOutputTokens != 8 {
		t.Fatalf("%+v", s)
	}
	// DEBUG_BENCH=1: the request really carries the options inside "options".
	reqs, _ := filepath.Glob(filepath.Join(cfg.LogDir, "debug_"+cfg.RunTS, "*.request.json"))
	if len(reqs) != 1 {
		t.Fatalf("debug captures %v", reqs)
	}
	raw, _ := os.ReadFile(reqs[0])
	if !regexp.MustCompile(`"options": \{[^}]*"num_gpu": 1`).Match(raw) {
		t.Fatalf("request capture:\n%s", raw)
	}
}
