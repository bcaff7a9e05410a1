package llamacpp

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fuze-ai/fuze/internal/knobs"
)

func TestConfigFromKnobs(t *testing.T) {
	root := t.TempDir()
	cfg := knobs.Resolve([]string{"PATH=/usr/bin", "LLAMACPP_PATH_a_b=/m/a.gguf"},
		knobs.Layer{Name: "x.env", Vars: map[string]string{"LLAMACPP_PATH_c_": "/m/c.gguf", "PRED": "128"}})
	c, err := ConfigFromKnobs(cfg, root, "/logs", "20250220_000000")
	if err != nil {
		t.Fatal(err)
	}
	if c.CtxSize != 1024 || c.BatchSize != 32 || c.NumPredict != 128 || c.PortA != 11435 || c.PortB != 11436 || c.Seed != DefaultSeed {
		t.Errorf("ctx %d batch %d pred %d ports %d %d", c.CtxSize, c.BatchSize, c.NumPredict, c.PortA, c.PortB)
	}
	if !reflect.DeepEqual(c.NGL, []int{-1, 64, 48, 32, 24, 16, 0}) {
		t.Errorf("NGL %v", c.NGL)
	}
	if want := filepath.Join(root, "factory/LLM/refinery/stack/llama.cpp/models.env"); c.ModelsEnv != want {
		t.Errorf("models.env %q, want %q", c.ModelsEnv, want)
	}
	if len(c.PathVars) != 2 || c.PathVars["LLAMACPP_PATH_a_b"] != "/m/a.gguf" || c.PathVars["LLAMACPP_PATH_c_"] != "/m/c.gguf" || c.PathVarSource("LLAMACPP_PATH_c_") != "x.env" {
		t.Errorf("path vars %v", c.PathVars)
	}
	if c.ModelList != nil || c.ReadyTimeout != 0 || c.RequestTimeout != 0 || c.Bin != "" || c.ModelDir == "" || c.Prompt == "" {
		t.Errorf("%+v", c)
	}

	// BENCH_NUM_CTX and BENCH_NUM_PREDICT win when set; the Ollama deadlines apply when set.
	cfg = knobs.Resolve([]string{"BENCH_NUM_CTX=8192", "CTX=2048", "BENCH_NUM_PREDICT=32", "WAIT_API_SECS=900",
		"TIMEOUT_GEN=120", "MODELS=a:1|a-1|a*.gguf b:2", "NGL_CANDIDATES=-1,20", "LLAMACPP_MODELS_ENV=/abs/m.env"})
	c, err = ConfigFromKnobs(cfg, root, "/logs", "ts")
	if err != nil {
		t.Fatal(err)
	}
	if c.CtxSize != 8192 || c.NumPredict != 32 || c.ReadyTimeout != 900*time.Second || c.RequestTimeout != 2*time.Minute ||
		!reflect.DeepEqual(c.ModelList, []string{"a:1|a-1|a*.gguf", "b:2"}) || !reflect.DeepEqual(c.NGL, []int{-1, 20}) || c.ModelsEnv != "/abs/m.env" {
		t.Errorf("%+v", c)
	}
	cfg = knobs.Resolve([]string{"CTX=2048"})
	if c, _ = ConfigFromKnobs(cfg, root, "", ""); c.CtxSize != 2048 {
		t.Errorf("CTX: %d", c.CtxSize)
	}

	cfg = knobs.Resolve([]string{"PORT_A=0", "BATCH=0", "MODELS=a|b|c|d"})
	_, err = ConfigFromKnobs(cfg, root, "", "")
	for _, want := range []string{"PORT_A", "BATCH", "MODELS entry"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
}

func TestReadyTimeoutFor(t *testing.T) {
	if got := ReadyTimeoutFor(0); got != 2*time.Minute {
		t.Errorf("%s", got)
	}
	if got := ReadyTimeoutFor(400e9); got < 50*time.Minute || got > 55*time.Minute {
		t.Errorf("400 GB: %s", got)
	}
}
