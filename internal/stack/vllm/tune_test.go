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

// Serving crosses the tuning sets with --max-num-seqs: one server configuration each, every
// one with its own command line.
func TestServingCrossesTuningSets(t *testing.T) {
	d := New(Config{MaxModelLen: 2048, MaxTokens: 8, DType: "auto", GPUMemUtil: 0.9, Launcher: Launcher{Path: "vllm"},
		Tune: Tuning{PrefixCaching: []string{"0", "1"}}}, io.Discard)
	ep := stack.Endpoint{Addr: "127.0.0.1:8000"}
	cands, err := d.ServingCandidates(context.Background(), ep, stack.Target{Model: "org/m", Alias: "m"}, []int{8, 64})
	if err != nil || len(cands) != 4 {
		t.Fatalf("%d candidates (%v), want 4", len(cands), err)
	}
	cmds := map[string]bool{}
	for _, c := range cands {
		cmd := d.ServerCommand(ep, stack.Target{}, c)
		cmds[cmd] = true
		if !strings.Contains(cmd, "--max-num-seqs") || !strings.Contains(cmd, "prefix-caching") {
			t.Errorf("command %q lacks the slot count or the tuned flag", cmd)
		}
	}
	if len(cmds) != 4 {
		t.Errorf("%d distinct command lines among 4 configurations", len(cmds))
	}
}
