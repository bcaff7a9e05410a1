package vllm

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// BenchmarkReadStreamPerChunk is the client's per-chunk work on a vLLM stream (SSE framing, the
// chunk decoder, the stamp), without the network: what the serving benchmark's client spends
// on each token besides its read system call.
func BenchmarkReadStreamPerChunk(b *testing.B) {
	const n = 256
	var body strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&body, `data: {"id":"cmpl-fake","object":"text_completion","created":0,"model":"m","choices":[{"index":0,"text":" ok","logprobs":null,"finish_reason":null,"stop_reason":null}],"usage":{"prompt_tokens":8,"total_tokens":%d,"completion_tokens":%d}}`+"\n\n", 8+i, i)
	}
	body.WriteString("data: [DONE]\n\n")
	payload := body.String()
	start := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		res, err := readStream("bench", strings.NewReader(payload), start, time.Now, func(int) {})
		if err != nil || res.Chunks != n {
			b.Fatal(err, res.Chunks)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/chunk")
}
