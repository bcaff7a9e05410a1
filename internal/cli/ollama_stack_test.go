package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/fuze-ai/fuze/internal/ollamatest"
	"github.com/fuze-ai/fuze/internal/results"
)

// runFuze runs fuze in-process and returns exit status, stdout and stderr.
func runFuze(t *testing.T, ctx context.Context, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Main(ctx, args, strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

// synthTiny writes the tiny synthetic model with fuze's own synth command.
func synthTiny(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tiny.gguf")
	if code, _, stderr := runFuze(t, context.Background(), "synth", "--preset", "tiny", "-o", path); code != 0 {
		t.Fatalf("synth: exit %d: %s", code, stderr)
	}
	return path
}

// persistentWithTiny starts a real Ollama ("persistent daemon") holding the tiny model.
func persistentWithTiny(t *testing.T, name string) *ollamatest.Server {
	t.Helper()
	srv := ollamatest.Start(t)
	srv.CreateModel(t, name, synthTiny(t))
	return srv
}

type benchEnv struct {
	dir, logDir, envFile string
}

// writeBenchEnv writes an env file pointing fuze at srv, with a test daemon port of its own.
func writeBenchEnv(t *testing.T, srv *ollamatest.Server, extra string) benchEnv {
	t.Helper()
	dir := t.TempDir()
	_, port, _ := net.SplitHostPort(srv.Addr)
	be := benchEnv{dir: dir, logDir: filepath.Join(dir, "logs"), envFile: filepath.Join(dir, "bench.env")}
	body := fmt.Sprintf(`# written by the test
PERSISTENT_PORT=%s
TEST_PORT_A=%d
OLLAMA_MODELS_DIR=%s
OLLAMA_BIN=%s
LOG_DIR=%s
ALIAS_PREFIX=LLM-FuZe-
BENCH_NUM_PREDICT=12
BENCH_NUM_CTX=512
TEMPERATURE=0.0
TIMEOUT_GEN=120
%s
`, port, ollamatest.FreePort(t), srv.Models, ollamatest.Binary(t), be.logDir, extra)
	if err := os.WriteFile(be.envFile, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return be
}

// readRun reads the single run CSV (strictly: every record must have the header's width)
// and its JSONL records.
func readRun(t *testing.T, logDir string) ([][]string, []results.Record) {
	t.Helper()
	csvs, _ := filepath.Glob(filepath.Join(logDir, "ollama_bench_*.csv"))
	if len(csvs) != 1 {
		t.Fatalf("want one run CSV in %s, got %v", logDir, csvs)
	}
	f, err := os.Open(csvs[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := csv.NewReader(f) // FieldsPerRecord 0: every row must match the header's 16
	rows, err := r.ReadAll()
	if err != nil {
		t.Fatalf("%s is not a strict CSV: %v", csvs[0], err)
	}
	jf, err := os.Open(strings.TrimSuffix(csvs[0], ".csv") + ".jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer jf.Close()
	var recs []results.Record
	sc := bufio.NewScanner(jf)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if results.IsRunSummary(sc.Bytes()) {
			continue // the run's wall time closes the JSONL
		}
		var rec results.Record
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("JSONL line: %v", err)
		}
		recs = append(recs, rec)
	}
	return rows, recs
}

func TestOllamaStackBenchmarkRealServer(t *testing.T) {
	srv := persistentWithTiny(t, "tiny:latest")
	be := writeBenchEnv(t, srv, `EXHAUSTIVE=1
NG_PERCENT_SET="100 50 10"
ZERO_TOKPS_BREAK=3
NO_IMPROVE_LIMIT=0
CPU_TUNE=0`)
	code, stdout, stderr := runFuze(t, context.Background(), "stack", "@"+be.envFile, "ollama")
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	rows, recs := readRun(t, be.logDir)
	if !slices.Equal(rows[0], results.Header) {
		t.Fatalf("header %v", rows[0])
	}
	data := rows[1:]
	// tiny has 2 blocks + the output layer = 3 offloadable layers: 100% 50% 10% → 3 2 1.
	var labels, numGPU []string
	for _, r := range data {
		if len(r) != 16 {
			t.Fatalf("row with %d fields: %v", len(r), r)
		}
		labels = append(labels, r[5])
		numGPU = append(numGPU, r[7])
		if r[8] != "512" || r[10] != "12" {
			t.Errorf("num_ctx/num_predict not the values used: %v", r)
		}
		if r[2] != "proc" || r[3] != "A" || r[12] != "cpu" {
			t.Errorf("unit/suffix/gpu_label: %v", r)
		}
	}
	if want := []string{"base-as-is", "optimized", "optimized", "optimized"}; !slices.Equal(labels, want) {
		t.Fatalf("labels %v, want %v", labels, want)
	}
	if want := []string{"default", "3", "2", "1"}; !slices.Equal(numGPU, want) {
		t.Fatalf("num_gpu %v, want %v", numGPU, want)
	}
	if len(recs) != len(data) {
		t.Fatalf("%d JSONL records for %d rows", len(recs), len(data))
	}
	for i, rec := range recs {
		s := rec.Sample
		if s == nil || s.Outcome != "ok" {
			t.Fatalf("row %d: sample %+v", i, s)
		}
		if s.ServerOutputTokens != 12 || s.StopReason != "length" {
			t.Errorf("row %d: eval_count %d done_reason %q, want 12 \"length\"", i, s.ServerOutputTokens, s.StopReason)
		}
		// Column 12 is fuze's client's rate (the median of the repeats); Ollama's own
		// eval_count / eval_duration is beside it in the JSONL.
		got, err := strconv.ParseFloat(data[i][11], 64)
		if err != nil || math.Abs(got-rec.DecodeTPS) > 0.005 {
			t.Errorf("row %d: tokens_per_sec %s, the client measured %.4f", i, data[i][11], rec.DecodeTPS)
		}
		if server := float64(s.ServerOutputTokens) / s.ServerDecodeDuration.Seconds(); math.Abs(rec.ServerDecodeTPS-server) > 1e-6*server || rec.ServerClientRatio <= 0 {
			t.Errorf("row %d: server timer %.4f (ratio %.3f), the server says %.4f", i, rec.ServerDecodeTPS, rec.ServerClientRatio, server)
		}
		if s.Settings["num_gpu"] != data[i][7] {
			t.Errorf("row %d: JSONL num_gpu %q vs CSV %q", i, s.Settings["num_gpu"], data[i][7])
		}
	}
	if !strings.Contains(stdout, "LLM-FuZe-tiny-latest") || !strings.Contains(stdout, "base tok/s") {
		t.Errorf("summary table missing:\n%s", stdout)
	}
	assertNoListener(t, be)
}

// assertNoListener checks that the test daemon fuze started is gone.
func assertNoListener(t *testing.T, be benchEnv) {
	t.Helper()
	raw, _ := os.ReadFile(be.envFile)
	for _, line := range strings.Split(string(raw), "\n") {
		if port, ok := strings.CutPrefix(line, "TEST_PORT_A="); ok {
			if c, err := net.Dial("tcp", "127.0.0.1:"+port); err == nil {
				c.Close()
				t.Errorf("test daemon still listening on %s after the run", port)
			}
		}
	}
}
