// Package bench holds fuze's speed and memory targets as Go benchmarks (run them with
// `go test -run x -bench . -benchmem ./bench/`; README.md lists the targets). Unit tests never
// time anything; these benchmarks report the figures the targets are about.
package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fuze-ai/fuze/internal/envfile"
	"github.com/fuze-ai/fuze/internal/gguf"
	"github.com/fuze-ai/fuze/internal/measure"
	"github.com/fuze-ai/fuze/internal/ollamaapi"
	"github.com/fuze-ai/fuze/internal/results"
	"github.com/fuze-ai/fuze/internal/sse"
)

// peakHeap runs f while sampling the live heap and returns the highest value seen.
func peakHeap(f func()) uint64 {
	runtime.GC()
	var peak atomic.Uint64
	done := make(chan struct{})
	go func() {
		var ms runtime.MemStats
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	f()
	close(done)
	return peak.Load()
}

// Writing a synthetic model streams: memory stays flat whatever the model's size
// (target: peak live heap under 64 MB; throughput reported as MB/s).
func BenchmarkSynthWrite(b *testing.B) {
	sh := gguf.Shape{Dim: 2048, Layers: 4, FFN: 8192, Heads: 32, KVHeads: 8, Vocab: 32000, Context: 8192}
	for _, typ := range []gguf.TensorType{gguf.F16, gguf.Q8_0} {
		b.Run(gguf.TypeName(typ), func(b *testing.B) {
			m, err := gguf.NewSynth(gguf.SynthOptions{Shape: sh, Type: typ})
			if err != nil {
				b.Fatal(err)
			}
			var peak uint64
			for b.Loop() {
				var n int64
				p := peakHeap(func() { n, err = m.WriteTo(context.Background(), io.Discard) })
				if err != nil {
					b.Fatal(err)
				}
				peak = max(peak, p)
				b.SetBytes(n)
			}
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
		})
	}
}

// The timed path of a measurement only timestamps and decodes: reading a streamed Ollama
// answer costs the client little per token (target: under 20 µs per chunk, so that even
// 1000 tok/s servers are measured with under 2% client overhead).
func BenchmarkOllamaStreamPerChunk(b *testing.B) {
	const chunks = 1000
	var body strings.Builder
	for i := 0; i < chunks; i++ {
		fmt.Fprintf(&body, `{"model":"m","created_at":"2026-11-27T07:00:00Z","response":"tok%d","done":false}`+"\n", i)
	}
	body.WriteString(`{"model":"m","response":"","done":true,"done_reason":"length","eval_count":1000,"eval_duration":1000000000}` + "\n")
	payload := body.String()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, payload)
	}))
	defer srv.Close()
	c := ollamaapi.New(srv.URL)
	b.ResetTimer()
	for b.Loop() {
		n := 0
		start := time.Now()
		_, err := c.Generate(context.Background(), ollamaapi.GenerateRequest{Model: "m", Stream: true}, func(ch ollamaapi.GenerateChunk, at time.Time) {
			_ = at.Sub(start)
			n++
		})
		if err != nil || n != chunks+1 {
			b.Fatal(err, n)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*chunks)/1000, "µs/chunk")
}

// SSE (llama-server, vLLM, Triton) costs the same little per event (target: under 5 µs).
func BenchmarkSSEPerEvent(b *testing.B) {
	const events = 1000
	var body strings.Builder
	for i := 0; i < events; i++ {
		fmt.Fprintf(&body, "data: {\"content\":\"tok%d\",\"stop\":false}\n\n", i)
	}
	payload := body.String()
	for b.Loop() {
		r := sse.NewReader(strings.NewReader(payload))
		n := 0
		for {
			if _, err := r.Next(); err != nil {
				break
			}
			n++
		}
		if n != events {
			b.Fatal(n)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*events)/1000, "µs/event")
}

// Every row reaches the disk as it is measured (CSV + JSONL, flushed per row); that must stay
// cheap next to a request (target: under 200 µs per row).
func BenchmarkRunWriterRow(b *testing.B) {
	w, err := results.CreateRun(b.TempDir(), "ollama", time.Now())
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	s := &measure.Sample{Stack: "ollama", Model: "m:1", Outcome: measure.OK, ServerOutputTokens: 128,
		ServerDecodeDuration: 800 * time.Millisecond, ChunkTimes: make([]time.Duration, 128), Settings: map[string]string{"num_gpu": "33"}}
	row := results.Row{TS: time.Now(), Endpoint: "127.0.0.1:11435", Unit: "proc", Suffix: "A", BaseModel: "m:1",
		VariantLabel: "optimized", ModelTag: "m:1", NumGPU: "33", NumCtx: "4096", Batch: "default", NumPredict: "128", TokensPerSec: 160}
	for b.Loop() {
		if err := w.Write(row, s); err != nil {
			b.Fatal(err)
		}
	}
}

// Env files are parsed, never executed (target: a template in under 100 µs).
func BenchmarkEnvfileParseTemplate(b *testing.B) {
	path := filepath.Join("..", "factory", "LLM", "refinery", "stack", "env", "templates", "FuZeCORE-explore.env.template")
	raw, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := envfile.Parse(path, strings.NewReader(string(raw))); err != nil {
			b.Fatal(err)
		}
	}
}
