package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fuze-ai/fuze/internal/results"
	"github.com/fuze-ai/fuze/internal/stack/scripted"
)

// fakeTwoH200 puts an nvidia-smi first on the process's PATH (where the GPU inventory looks)
// that lists two H200s, and returns the PATH knob.
func fakeTwoH200(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	script := "#!/bin/sh\ncat <<'EOF'\n" +
		"0, NVIDIA H200, GPU-aaaaaaaa-0000-0000-0000-000000000000, 143771, 771, 570.133.20, 00000000:19:00.0, 700.00\n" +
		"1, NVIDIA H200, GPU-bbbbbbbb-0000-0000-0000-000000000000, 143771, 771, 570.133.20, 00000000:3B:00.0, 700.00\n" +
		"EOF\n"
	if err := os.WriteFile(filepath.Join(dir, "nvidia-smi"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	path := dir + string(os.PathListSeparator) + os.Getenv("PATH")
	t.Setenv("PATH", path)
	return "PATH=" + path
}

func steady() *scripted.Driver {
	r := map[string][]float64{}
	for _, tag := range []string{"base", "ng3", "ng2"} {
		for range 30 {
			r[tag] = append(r[tag], 20)
		}
	}
	return &scripted.Driver{StackName: "scripted", Rates: r, FromSelection: true, Parallel: true}
}

// Two GPUs with SPLIT_ENDPOINTS=1: endpoints A, B and A+B, rows for each, and the run's wall
// time on the console and as the JSONL's run_summary, in parallel by default and one after
// another with PARALLEL_ENDPOINTS=0.
func TestRunStackTwoGPUsAndSplit(t *testing.T) {
	for _, tc := range []struct{ knob, mode string }{{"", "endpoints in parallel"}, {"PARALLEL_ENDPOINTS=0", "endpoints one after another"}} {
		t.Run(tc.mode, func(t *testing.T) {
			registerScripted(t, "scripted", steady)
			extra := []string{fakeTwoH200(t), "TELEMETRY=0", "SPLIT_ENDPOINTS=1", "MATCH_GPU_A=H200", "MATCH_GPU_B=H200"}
			if tc.knob != "" {
				extra = append(extra, tc.knob)
			}
			cfg, _ := config(t, extra...)
			var out, log bytes.Buffer
			csvPath, err := RunStack(context.Background(), &out, &log, cfg, t.TempDir(), "scripted")
			if err != nil {
				t.Fatalf("%v\n%s", err, log.String())
			}
			rows, warns, err := results.ReadRunCSV(csvPath)
			if err != nil || len(warns) > 0 || len(rows) != 9 {
				t.Fatalf("%d rows %v %v", len(rows), warns, err)
			}
			labels := map[string]string{}
			for _, r := range rows {
				if r.TokensPerSec != 20 {
					t.Errorf("row %+v: the scripted rate is 20", r)
				}
				labels[r.Suffix] = r.GPULabel + " " + r.GPUUUID
			}
			if labels["A+B"] != "nvidia-h200+nvidia-h200 GPU-aaaaaaaa-0000-0000-0000-000000000000+GPU-bbbbbbbb-0000-0000-0000-000000000000" ||
				labels["A"] != "nvidia-h200 GPU-aaaaaaaa-0000-0000-0000-000000000000" || labels["B"] != "nvidia-h200 GPU-bbbbbbbb-0000-0000-0000-000000000000" {
				t.Fatalf("rows by endpoint %v", labels)
			}
			if !strings.Contains(out.String(), "wall time ") || !strings.Contains(out.String(), tc.mode+": [A] ") || !strings.Contains(out.String(), "[A+B] ") {
				t.Fatalf("out:\n%s", out.String())
			}
			// The samples still pair with their rows; the closing line is the run's timing.
			recs, warns := results.ReadRunSamples(csvPath, rows)
			for i, r := range recs {
				if r == nil {
					t.Fatalf("row %d has no record (%v)", i, warns)
				}
			}
			b, _ := os.ReadFile(results.RunJSONLPath(csvPath))
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			var last struct {
				Summary struct {
					Parallel  bool    `json:"parallel"`
					WallS     float64 `json:"wall_s"`
					Endpoints []struct {
						Suffix, GPULabel string
						WallS            float64 `json:"wall_s"`
					} `json:"endpoints"`
				} `json:"run_summary"`
			}
			if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil || len(last.Summary.Endpoints) != 3 ||
				last.Summary.Parallel != (tc.knob == "") || last.Summary.Endpoints[2].Suffix != "A+B" {
				t.Fatalf("run_summary %s (%v)", lines[len(lines)-1], err)
			}
		})
	}
}
