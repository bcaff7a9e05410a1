package results

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fuze-ai/fuze/internal/testfixture"
)

// fixture is a file of the original system in testdata/original (testdata/SOURCES.md); a
// missing one fails the test.
func fixture(t *testing.T, name string) string {
	t.Helper()
	return testfixture.Original(t, name)
}

func TestReadLegacy15FieldFixture(t *testing.T) {
	p := fixture(t, "ollama_bench_20250913_160342.csv")
	rows, warns, err := ReadRunCSV(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) != 0 {
		t.Errorf("warnings: %q", warns)
	}
	if len(rows) != 2 {
		t.Fatalf("%d rows, want 2", len(rows))
	}
	ts := time.Date(2025, 9, 13, 16, 3, 42, 0, time.Local)
	want := []Row{
		{
			TS: ts, Endpoint: "127.0.0.1:11435", Unit: "ollama-test-a.service", Suffix: "A",
			BaseModel: "gemma3:4b-it-fp16", VariantLabel: "base-as-is", ModelTag: "gemma3:4b-it-fp16",
			TokensPerSec: 48.68, GPULabel: "nvidia-5060ti", GPUName: "NVIDIA GeForce RTX 5060 Ti",
			GPUUUID: "GPU-6bef0f05-20d7-81db-4f84-cf9491db6704", GPUMemMiB: 16311,
		},
		{
			TS: ts, Endpoint: "127.0.0.1:11435", Unit: "ollama-test-a.service", Suffix: "A",
			BaseModel: "gemma3:4b-it-fp16", VariantLabel: "optimized", ModelTag: "gemma3:4b-it-fp16",
			NumGPU: "35", TokensPerSec: 49.52, GPULabel: "nvidia-5060ti", GPUName: "NVIDIA GeForce RTX 5060 Ti",
			GPUUUID: "GPU-6bef0f05-20d7-81db-4f84-cf9491db6704", GPUMemMiB: 16311,
		},
	}
	for i := range want {
		assertRow(t, i, rows[i], want[i])
	}
}

func assertRow(t *testing.T, i int, got, want Row) {
	t.Helper()
	if !got.TS.Equal(want.TS) {
		t.Errorf("row %d: TS %v, want %v", i, got.TS, want.TS)
	}
	got.TS, want.TS = time.Time{}, time.Time{}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("row %d:\n got %+v\nwant %+v", i, got, want)
	}
}

func TestReadAggregateIsNotARunCSV(t *testing.T) {
	p := fixture(t, "benchmarks.csv")
	_, _, err := ReadRunCSV(p)
	if err == nil || !strings.Contains(err.Error(), p) {
		t.Fatalf("err = %v, want an error naming %s", err, p)
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRead17FieldAndMixedRows(t *testing.T) {
	head := strings.Join(Header, ",") + "\n"
	content := head +
		// original vLLM row: ISO ts, trailing comma → 17 fields
		"2025-09-14T03:00:47+00:00,127.0.0.1:11435,proc,A,llama4:16x17b,base-as-is,meta-llama/Llama-4-Scout-17B-16E-Instruct,default,8192,8,256,41.37,nvidia-5090,,,\n" +
		// bad number → warning, line 3
		"2025-09-14T03:00:48+00:00,127.0.0.1:11435,proc,A,m,base-as-is,m,default,8192,8,256,fast,nvidia-5090,,,\n" +
		// 17th field not empty → warning, line 4
		"2025-09-14T03:00:49+00:00,127.0.0.1:11435,proc,A,m,base-as-is,m,default,8192,8,256,1.00,nvidia-5090,,,,junk\n" +
		// wrong width → warning, line 5
		"2025-09-14T03:00:50+00:00,127.0.0.1:11435,proc\n" +
		// original ollama 16-field row: compact ts, leading-space memory
		"20250914_045417,127.0.0.1:11436,ollama-test-b.service,B,gemma3:4b-it-fp16,optimized,gemma3:4b-it-fp16,28,,,,148.70,nvidia-3090ti,NVIDIA GeForce RTX 3090 Ti,GPU-1, 24564\n" +
		// bad ts → warning, line 7
		"yesterday,127.0.0.1:11436,proc,B,m,base-as-is,m,,,,,1.00,,,,\n" +
		// bad memory → warning, line 8
		"2025-09-14T03:00:51Z,127.0.0.1:11436,proc,B,m,base-as-is,m,,,,,1.00,,,,lots\n" +
		// Triton row with NA settings and an empty label
		"2025-09-14T05:00:52+02:00,127.0.0.1:8000,proc,X,llama4-16x17b,base-as-is,llama4,default,NA,1,NA,12.50,,,,\n"
	p := writeFile(t, "vllm_bench_20250914_030047.csv", content)
	rows, warns, err := ReadRunCSV(p)
	if err != nil {
		t.Fatal(err)
	}
	wantWarnLines := []string{":3:", ":4:", ":5:", ":7:", ":8:"}
	if len(warns) != len(wantWarnLines) {
		t.Fatalf("warnings %q, want %d", warns, len(wantWarnLines))
	}
	for i, w := range warns {
		if !strings.Contains(w, p+wantWarnLines[i]) {
			t.Errorf("warning %q does not name %s%s", w, p, wantWarnLines[i])
		}
	}
	if len(rows) != 3 {
		t.Fatalf("%d rows, want 3", len(rows))
	}
	assertRow(t, 0, rows[0], Row{
		TS: time.Date(2025, 9, 14, 3, 0, 47, 0, time.UTC), Endpoint: "127.0.0.1:11435", Unit: "proc", Suffix: "A",
		BaseModel: "llama4:16x17b", VariantLabel: "base-as-is", ModelTag: "meta-llama/Llama-4-Scout-17B-16E-Instruct",
		NumGPU: "default", NumCtx: "8192", Batch: "8", NumPredict: "256", TokensPerSec: 41.37, GPULabel: "nvidia-5090",
	})
	assertRow(t, 1, rows[1], Row{
		TS: time.Date(2025, 9, 14, 4, 54, 17, 0, time.Local), Endpoint: "127.0.0.1:11436", Unit: "ollama-test-b.service",
		Suffix: "B", BaseModel: "gemma3:4b-it-fp16", VariantLabel: "optimized", ModelTag: "gemma3:4b-it-fp16",
		NumGPU: "28", TokensPerSec: 148.70, GPULabel: "nvidia-3090ti", GPUName: "NVIDIA GeForce RTX 3090 Ti",
		GPUUUID: "GPU-1", GPUMemMiB: 24564,
	})
	if r := rows[2]; r.NumCtx != "NA" || r.TokensPerSec != 12.5 || !r.TS.Equal(time.Date(2025, 9, 14, 3, 0, 52, 0, time.UTC)) {
		t.Errorf("Triton row: %+v", r)
	}
	if _, off := rows[2].TS.Zone(); off != 2*3600 {
		t.Errorf("ISO offset not kept: %v", rows[2].TS)
	}
}

func TestReadHeaderErrors(t *testing.T) {
	for name, content := range map[string]string{
		"empty.csv":   "",
		"legacy.csv":  "host,timestamp,endpoint,gpu_name,gpu_uuid,label,model,num_gpu,endpoint_suffix,eval_count,eval_duration,tokens_per_sec\n",
		"shifted.csv": "endpoint,ts,unit,suffix,base_model,variant_label,model_tag,num_gpu,num_ctx,batch,num_predict,tokens_per_sec,gpu_label,gpu_name,gpu_uuid,gpu_mem_mib\n",
	} {
		p := writeFile(t, name, content)
		var nr *NotRunCSVError
		if _, _, err := ReadRunCSV(p); !errors.As(err, &nr) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: err = %v, want a *NotRunCSVError naming the file", name, err)
		}
	}
	if _, _, err := ReadRunCSV(filepath.Join(t.TempDir(), "missing.csv")); err == nil {
		t.Error("missing file: no error")
	}
	// Tolerated header variants: BOM, CRLF, a trailing empty header field; header-only file.
	p := writeFile(t, "ok.csv", "\ufeff"+strings.Join(Header, ",")+",\r\n")
	if rows, warns, err := ReadRunCSV(p); err != nil || len(rows) != 0 || len(warns) != 0 {
		t.Errorf("header-only file: rows %v warnings %q err %v", rows, warns, err)
	}
}

func TestReadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	want := goldenRows()
	w := writeRun(t, dir, "Triton", want, nil)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, warns, err := ReadRunCSV(w.CSVPath())
	if err != nil || len(warns) != 0 {
		t.Fatalf("ReadRunCSV: %v %q", err, warns)
	}
	if len(got) != len(want) {
		t.Fatalf("%d rows, want %d", len(got), len(want))
	}
	want[0].TokensPerSec = 136.37 // written with two decimals
	want[2].TokensPerSec = 0      // NaN is written as 0.00
	for i := range want {
		assertRow(t, i, got[i], want[i])
	}
	if _, off := got[1].TS.Zone(); off != 2*3600 {
		t.Errorf("offset lost: %v", got[1].TS)
	}
}

func TestFileNames(t *testing.T) {
	for _, tc := range []struct {
		name, stack, runTS string
		ok                 bool
	}{
		{"ollama_bench_20250913_160342.csv", "ollama", "20250913_160342", true},
		{"/var/log/fuze-stack/vllm_bench_20250914_030047.csv", "vLLM", "20250914_030047", true},
		{"llamacpp_bench_20250914_030047_2.csv", "llama.cpp", "20250914_030047", true},
		{"triton_bench_20250914_030047.csv", "Triton", "20250914_030047", true},
		{"triton_bench_20250914_030047.jsonl", "", "", false},
		{"llm_bench_20250912_ALL.csv", "", "", false},
		{"ollama_export_20250914_053542.csv", "", "", false},
		{"ollama_bench_.csv", "", "", false},
	} {
		s, ok := StackFromFileName(tc.name)
		if s != tc.stack || ok != tc.ok {
			t.Errorf("StackFromFileName(%q) = %q, %v; want %q, %v", tc.name, s, ok, tc.stack, tc.ok)
		}
		r, ok := RunTSFromFileName(tc.name)
		if r != tc.runTS || ok != tc.ok {
			t.Errorf("RunTSFromFileName(%q) = %q, %v; want %q, %v", tc.name, r, ok, tc.runTS, tc.ok)
		}
	}
	for in, want := range map[string]string{"OLLAMA": "ollama", "vllm": "vLLM", "VLLM": "vLLM",
		"llamacpp": "llama.cpp", "Llama.CPP": "llama.cpp", "triton": "Triton"} {
		if got, ok := CanonicalStack(in); !ok || got != want {
			t.Errorf("CanonicalStack(%q) = %q, %v", in, got, ok)
		}
	}
	if _, ok := CanonicalStack("sglang"); ok {
		t.Error("CanonicalStack(sglang) ok")
	}
}
