package vllm

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/fuze-ai/fuze/internal/stack"
)

func TestTuningCandidatesAndCommandLine(t *testing.T) {
	d := New(Config{MaxModelLen: 2048, MaxTokens: 8, DType: "auto", GPUMemUtil: 0.9, Launcher: Launcher{Path: "vllm"},
		Tune: Tuning{PrefixCaching: []string{"0", "1"}, MaxBatchedTokens: []int{2048, 8192}, KVCacheDType: []string{"auto", "fp8"}}}, io.Discard)
	ep := stack.Endpoint{Addr: "127.0.0.1:8000"}
	cands, err := d.Candidates(context.Background(), ep, stack.Target{Model: "org/m", Alias: "m"})
	if err != nil || len(cands) != 8 {
		t.Fatalf("%d candidates (%v), want 8", len(cands), err)
	}
	cmd := d.ServerCommand(ep, stack.Target{}, cands[7])
	if !strings.HasSuffix(cmd, "--enable-prefix-caching --max-num-batched-tokens 8192 --kv-cache-dtype fp8") || !strings.HasPrefix(cmd, "vllm serve org/m") {
		t.Errorf("command %q", cmd)
	}
	d.cfg.Tune = Tuning{}
	if cands, _ := d.Candidates(context.Background(), ep, stack.Target{Model: "org/m"}); len(cands) != 0 {
		t.Errorf("no tuning sets: %d candidates", len(cands))
	}
}
