//go:build gpu

package ollama_test

// The GPU side of the run checks (gpu_results_test.go): a fresh `fuze stack ollama` run made on
// a GPU, which scripts/gpu-run.sh makes and then checks with this test. The run is given by
// FUZE_GPU_RUN_JSONL (one or more .jsonl paths separated by the OS path-list separator;
// relative paths from the repository root work too); the .csv of the same name beside it is
// read for column 12. Without FUZE_GPU_RUN_JSONL the test skips, saying so: only a GPU machine
// can make the run. The committed runs in results/gpu are checked without the tag, by
// TestCommittedGPUResults.
//
//	FUZE_GPU_RUN_JSONL=/path/to/run.jsonl go test -tags gpu ./internal/stack/ollama/ -run '^TestGPURun$' -v

import (
	"os"
	"path/filepath"
	"testing"
)

func TestGPURun(t *testing.T) {
	env := os.Getenv("FUZE_GPU_RUN_JSONL")
	if env == "" {
		t.Skip("GPU test skipped: FUZE_GPU_RUN_JSONL is not set. It checks a fresh `fuze stack ollama` run made on a GPU: " +
			"set it to that run's .jsonl (scripts/gpu-run.sh makes the run and sets it). " +
			"The committed runs in results/gpu are checked without the gpu tag by TestCommittedGPUResults.")
	}
	for _, path := range filepath.SplitList(env) {
		if path == "" {
			continue
		}
		t.Run(filepath.Base(path), func(t *testing.T) { checkGPURun(t, resolveRunPath(path)) })
	}
}
