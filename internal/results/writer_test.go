package results

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fuze-ai/fuze/internal/measure"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

var ts0 = time.Date(2025, 9, 14, 3, 0, 47, 0, time.UTC)

// goldenRows exercise every formatting rule of the run CSV.
func goldenRows() []Row {
	plus2 := time.FixedZone("CEST", 2*3600)
	return []Row{
		{
			TS: ts0, Endpoint: "127.0.0.1:11435", Unit: "ollama-test-a.service", Suffix: "A",
			BaseModel: "gemma3:4b-it-fp16", VariantLabel: "base-as-is", ModelTag: "gemma3:4b-it-fp16",
			NumCtx: "4096", NumPredict: "256", TokensPerSec: 136.369,
			GPULabel: "nvidia-5090", GPUName: "NVIDIA GeForce RTX 5090",
			GPUUUID: "GPU-6bef0f05-20d7-81db-4f84-cf9491db6704", GPUMemMiB: 32607,
		},
		{
			TS: ts0.Add(time.Second).In(plus2), Endpoint: "127.0.0.1:11436", Unit: "proc", Suffix: "B",
			BaseModel: "llama4:16x17b", VariantLabel: "optimized", ModelTag: "llama4-16x17b-nvidia-3090ti-ngl28",
			NumGPU: "28", NumCtx: "default", Batch: "8", NumPredict: "128", TokensPerSec: 150,
			GPULabel: "nvidia-3090ti", GPUName: `NVIDIA GeForce RTX 3090 Ti, "rev A"`,
		},
		{
			TS: ts0.Add(2 * time.Second), Endpoint: "127.0.0.1:8000", Unit: "proc", Suffix: "X",
			BaseModel: "llama4-16x17b", VariantLabel: "base-as-is", ModelTag: "llama4",
			NumGPU: "default", NumCtx: "NA", NumPredict: "NA", TokensPerSec: math.NaN(),
		},
	}
}

func TestFields(t *testing.T) {
	rows := goldenRows()
	got := rows[0].Fields()
	want := []string{"2025-09-14T03:00:47+00:00", "127.0.0.1:11435", "ollama-test-a.service", "A",
		"gemma3:4b-it-fp16", "base-as-is", "gemma3:4b-it-fp16", "", "4096", "", "256", "136.37",
		"nvidia-5090", "NVIDIA GeForce RTX 5090", "GPU-6bef0f05-20d7-81db-4f84-cf9491db6704", "32607"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Fields() =\n%q\nwant\n%q", got, want)
	}
	for i, r := range append(rows, Row{}) {
		if n := len(r.Fields()); n != NumColumns || n != len(Header) {
			t.Errorf("row %d: %d fields, want %d", i, n, NumColumns)
		}
	}
	if f := (Row{}).Fields(); f[0] != "" || f[11] != "0.00" || f[15] != "" {
		t.Errorf("zero row fields = %q", f)
	}
	if f := rows[1].Fields(); f[0] != "2025-09-14T05:00:48+02:00" || f[11] != "150.00" {
		t.Errorf("row 1 ts/tps = %q %q", f[0], f[11])
	}
}

func TestHeaderIsSeedSchema(t *testing.T) {
	const seed = "ts,endpoint,unit,suffix,base_model,variant_label,model_tag,num_gpu,num_ctx,batch,num_predict,tokens_per_sec,gpu_label,gpu_name,gpu_uuid,gpu_mem_mib"
	if got := strings.Join(Header, ","); got != seed {
		t.Fatalf("Header = %s\nwant     %s", got, seed)
	}
	if Header[11] != "tokens_per_sec" {
		t.Fatalf("tokens_per_sec must be column 12")
	}
}

func writeRun(t *testing.T, dir, stack string, rows []Row, samples []*measure.Sample) *RunWriter {
	t.Helper()
	w, err := CreateRun(dir, stack, ts0)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rows {
		var s *measure.Sample
		if samples != nil {
			s = samples[i]
		}
		if err := w.Write(r, s); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

func TestGoldenCSV(t *testing.T) {
	dir := t.TempDir()
	w := writeRun(t, dir, "llama.cpp", goldenRows(), nil)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "llamacpp_bench_20250914_030047.csv"); w.CSVPath() != want {
		t.Errorf("CSVPath = %s, want %s", w.CSVPath(), want)
	}
	got, err := os.ReadFile(w.CSVPath())
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "run.golden.csv")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("run CSV differs from %s:\n--- got\n%s--- want\n%s", golden, got, want)
	}
	// A strict reader (fixed field count, no lazy quotes) accepts it: 16 fields everywhere.
	r := csv.NewReader(bytes.NewReader(got))
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatalf("strict csv read: %v", err)
	}
	if len(recs) != 1+len(goldenRows()) {
		t.Fatalf("%d records, want %d", len(recs), 1+len(goldenRows()))
	}
	if !reflect.DeepEqual(recs[0], Header) {
		t.Errorf("first line %q is not the header", recs[0])
	}
	for i, rec := range recs {
		if len(rec) != NumColumns {
			t.Errorf("record %d has %d fields", i, len(rec))
		}
	}
	if recs[2][13] != `NVIDIA GeForce RTX 3090 Ti, "rev A"` {
		t.Errorf("comma/quote field read back as %q", recs[2][13])
	}
}

func TestCreateRunNames(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ stack, prefix string }{
		{"ollama", "ollama"}, {"vLLM", "vllm"}, {"vllm", "vllm"}, {"llama.cpp", "llamacpp"},
		{"Triton", "triton"}, {"triton", "triton"},
	} {
		w, err := CreateRun(dir, tc.stack, ts0)
		if err != nil {
			t.Fatalf("%s: %v", tc.stack, err)
		}
		base := filepath.Base(w.CSVPath())
		if !strings.HasPrefix(base, tc.prefix+"_bench_20250914_030047") {
			t.Errorf("%s: file %s", tc.stack, base)
		}
		if w.JSONLPath() != strings.TrimSuffix(w.CSVPath(), ".csv")+".jsonl" {
			t.Errorf("%s: JSONL %s not beside CSV %s", tc.stack, w.JSONLPath(), w.CSVPath())
		}
		if s, ok := StackFromFileName(base); !ok || s != mustCanon(t, tc.stack) {
			t.Errorf("StackFromFileName(%s) = %q, %v", base, s, ok)
		}
		if rts, ok := RunTSFromFileName(w.CSVPath()); !ok || rts != "20250914_030047" {
			t.Errorf("RunTSFromFileName(%s) = %q, %v", base, rts, ok)
		}
		w.Close()
	}
	if _, err := CreateRun(dir, "tgi", ts0); err == nil {
		t.Error("unknown stack accepted")
	}
}

func mustCanon(t *testing.T, s string) string {
	c, ok := CanonicalStack(s)
	if !ok {
		t.Fatalf("CanonicalStack(%q) failed", s)
	}
	return c
}

func TestCreateRunNeverOverwrites(t *testing.T) {
	dir := t.TempDir()
	first := writeRun(t, dir, "ollama", goldenRows()[:1], nil)
	defer first.Close()
	before, _ := os.ReadFile(first.CSVPath())

	// A stray JSONL of the _2 name must also be respected.
	stray := filepath.Join(dir, "ollama_bench_20250914_030047_2.jsonl")
	if err := os.WriteFile(stray, []byte("keep\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	second, err := CreateRun(dir, "ollama", ts0)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if got, want := filepath.Base(second.CSVPath()), "ollama_bench_20250914_030047_3.csv"; got != want {
		t.Errorf("second run file %s, want %s", got, want)
	}
	if got, want := filepath.Base(second.JSONLPath()), "ollama_bench_20250914_030047_3.jsonl"; got != want {
		t.Errorf("second run JSONL %s, want %s", got, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "ollama_bench_20250914_030047_2.csv")); err == nil {
		t.Error("created a CSV beside a stray JSONL")
	}
	if b, _ := os.ReadFile(stray); string(b) != "keep\n" {
		t.Error("stray JSONL changed")
	}
	after, _ := os.ReadFile(first.CSVPath())
	if !bytes.Equal(before, after) {
		t.Error("first run file changed")
	}
	if rts, ok := RunTSFromFileName(second.CSVPath()); !ok || rts != "20250914_030047" {
		t.Errorf("RunTSFromFileName(_3) = %q, %v", rts, ok)
	}
}

func TestFlushPerRow(t *testing.T) {
	dir := t.TempDir()
	rows := goldenRows()
	w := writeRun(t, dir, "ollama", rows[:1], []*measure.Sample{okSample()})
	defer w.Close()
	b, err := os.ReadFile(w.CSVPath())
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join(Header, ",") + "\n" + strings.Join(rows[0].Fields(), ",") + "\n"
	if string(b) != want {
		t.Errorf("before Close the CSV holds\n%s\nwant\n%s", b, want)
	}
	j, err := os.ReadFile(w.JSONLPath())
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Count(string(j), "\n"); lines != 1 {
		t.Errorf("before Close the JSONL holds %d lines, want 1:\n%s", lines, j)
	}
}

func okSample() *measure.Sample {
	chunks := make([]time.Duration, 11)
	for i := range chunks {
		chunks[i] = 300*time.Millisecond + time.Duration(i)*100*time.Millisecond
	}
	return &measure.Sample{
		Stack: "ollama", Endpoint: "127.0.0.1:11435", Model: "gemma3:4b-it-fp16",
		ModelTag: "gemma3:4b-it-fp16", Label: "optimized", Settings: map[string]string{"num_gpu": "28"},
		MaxTokens: 100, ServerPromptTokens: 20, ServerOutputTokens: 100,
		ServerPromptDuration: 100 * time.Millisecond, ServerDecodeDuration: 2 * time.Second,
		ServerLoadDuration: time.Second, ServerTotalDuration: 3 * time.Second, StopReason: "length",
		Start: ts0, FirstByte: 250 * time.Millisecond, FirstToken: 300 * time.Millisecond,
		End: 2500 * time.Millisecond, ChunkTimes: chunks, Outcome: measure.OK,
	}
}

func TestJSONL(t *testing.T) {
	dir := t.TempDir()
	rows := goldenRows()
	failed := &measure.Sample{Stack: "ollama", Outcome: measure.ErrTimeout, Error: "deadline exceeded", Start: ts0}
	samples := []*measure.Sample{okSample(), failed, nil}
	w := writeRun(t, dir, "ollama", rows, samples)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(w.JSONLPath())
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != len(rows) {
		t.Fatalf("%d JSONL lines, want %d", len(lines), len(rows))
	}
	var recs []Record
	for i, l := range lines {
		var rec Record
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		recs = append(recs, rec)
		// The row object carries every column by name.
		var raw struct {
			Row map[string]any `json:"row"`
		}
		if err := json.Unmarshal([]byte(l), &raw); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		for _, col := range Header {
			if _, ok := raw.Row[col]; !ok {
				t.Errorf("line %d: row lacks column %s", i+1, col)
			}
		}
		for _, k := range []string{"decode_tps", "prefill_tps", "e2e_tps", "stream_decode_tps", "ttft_ns", "sample"} {
			if !strings.Contains(l, `"`+k+`":`) {
				t.Errorf("line %d lacks %s: %s", i+1, k, l)
			}
		}
	}
	if !reflect.DeepEqual(recs[0].Sample, samples[0]) {
		t.Errorf("sample did not round-trip:\n got %+v\nwant %+v", recs[0].Sample, samples[0])
	}
	r0 := recs[0]
	// decode_tps is the client's rate; the server's timer is beside it, with the ratio.
	if r0.DecodeTPS != 10 || r0.ServerDecodeTPS != 50 || r0.ServerClientRatio != 5 || !r0.TimerDisagrees || r0.PrefillTPS != 200 || r0.E2ETPS != 40 || r0.TTFT != 300*time.Millisecond {
		t.Errorf("derived rates: %+v", r0.Metrics)
	}
	if math.Abs(r0.StreamDecodeTPS-10) > 1e-9 {
		t.Errorf("stream_decode_tps = %v, want 10", r0.StreamDecodeTPS)
	}
	if r0.Row.TS != "2025-09-14T03:00:47+00:00" || r0.Row.TokensPerSec != 136.37 || r0.Row.GPUMemMiB != 32607 || r0.Row.NumCtx != "4096" {
		t.Errorf("row: %+v", r0.Row)
	}
	if recs[1].Sample == nil || recs[1].Sample.Outcome != measure.ErrTimeout || recs[1].DecodeTPS != 0 {
		t.Errorf("failed sample record: %+v", recs[1])
	}
	if recs[2].Sample != nil || !strings.Contains(lines[2], `"sample":null`) || recs[2].Row.TokensPerSec != 0 {
		t.Errorf("nil sample record: %s", lines[2])
	}

	got, warns, err := ReadRunJSONL(w.JSONLPath())
	if err != nil || len(warns) != 0 || !reflect.DeepEqual(got, recs) {
		t.Errorf("ReadRunJSONL: %d records, warnings %q, err %v", len(got), warns, err)
	}
	// A run killed mid-line: the complete lines survive, the torn one is a warning.
	torn := filepath.Join(dir, "torn.jsonl")
	os.WriteFile(torn, append(b, []byte(`{"row":{"ts":"2025`)...), 0o644)
	got, warns, err = ReadRunJSONL(torn)
	if err != nil || len(got) != len(rows) || len(warns) != 1 || !strings.Contains(warns[0], "torn.jsonl:4:") {
		t.Errorf("torn JSONL: %d records, warnings %q, err %v", len(got), warns, err)
	}
}

func TestConcurrentWrites(t *testing.T) {
	dir := t.TempDir()
	w, err := CreateRun(dir, "vLLM", ts0)
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 8, 50
	var wg sync.WaitGroup
	for g := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				r := goldenRows()[1]
				r.ModelTag = fmt.Sprintf("w%d-i%d", g, i)
				r.TokensPerSec = float64(g*1000 + i)
				if err := w.Write(r, okSample()); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(goldenRows()[0], nil); err == nil {
		t.Error("Write after Close succeeded")
	}
	rows, warns, err := ReadRunCSV(w.CSVPath())
	if err != nil || len(warns) != 0 {
		t.Fatalf("ReadRunCSV: %v %q", err, warns)
	}
	if len(rows) != workers*each {
		t.Fatalf("%d rows, want %d", len(rows), workers*each)
	}
	seen := map[string]bool{}
	for _, r := range rows {
		seen[r.ModelTag] = true
	}
	if len(seen) != workers*each {
		t.Errorf("%d distinct rows, want %d", len(seen), workers*each)
	}
	recs, warns, err := ReadRunJSONL(w.JSONLPath())
	if err != nil || len(warns) != 0 || len(recs) != workers*each {
		t.Errorf("JSONL: %d records, warnings %q, err %v", len(recs), warns, err)
	}
}
