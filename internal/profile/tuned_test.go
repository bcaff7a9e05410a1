package profile

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fuze-ai/fuze/internal/envfile"
)

func TestApplyTunedWritesAndReplacesItsBlock(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "LLM-FuZe-m-1.env")
	if err := os.WriteFile(path, []byte("INCLUDE_MODELS='^m:1$'\nNUM_BATCH_SET=\"\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "LLM-FuZe-x.env")
	os.WriteFile(other, []byte("INCLUDE_MODELS='^x$'\n"), 0o644)
	tuned := []Tuned{{Model: "m:1", Stack: "ollama", Source: "run.tuning.json",
		Settings: map[string]string{"num_batch": "128", "OLLAMA_FLASH_ATTENTION": "1", "num_gpu": "33", "num_ctx": "8192"}}}
	for range 2 { // twice: the second replaces the first block
		if n, err := ApplyTuned(io.Discard, dir, tuned, false); err != nil || n != 1 {
			t.Fatalf("applied %d: %v", n, err)
		}
	}
	raw, _ := os.ReadFile(path)
	if strings.Count(string(raw), tunedBegin) != 1 {
		t.Errorf("blocks:\n%s", raw)
	}
	f, err := envfile.ParseFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := f.Map()
	if m["NUM_BATCH_SET"] != "128" || m["OLLAMA_FLASH_ATTENTION_SET"] != "1" || m["BENCH_NUM_CTX"] != "8192" {
		t.Errorf("profile values %v", m)
	}
	if raw, _ := os.ReadFile(other); strings.Contains(string(raw), tunedBegin) {
		t.Error("another model's profile was changed")
	}
}
