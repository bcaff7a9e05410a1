package bench

import (
	"bufio"
	"encoding/json"
	"os"
	"testing"

	"github.com/fuze-ai/fuze/internal/stats"
	"github.com/fuze-ai/fuze/internal/testfixture"
)

// twoGPURow is one committed row: where and what it measured, and its repeats' rates.
type twoGPURow struct {
	Suffix       string  `json:"suffix"`
	VariantLabel string  `json:"variant_label"`
	NumGPU       string  `json:"num_gpu"`
	GPUUUID      string  `json:"gpu_uuid"`
	TokensPerSec float64 `json:"tokens_per_sec"`
	Repeats      []float64
}

// twoGPURun is the part of a committed two-GPU run JSONL these checks read: its rows and its
// closing run_summary line.
type twoGPURun struct {
	rows     []twoGPURow
	wall     float64
	parallel bool
	uuids    map[string]string // endpoint suffix → GPU UUID, from the run summary
}

func readTwoGPURun(t *testing.T, name string) twoGPURun {
	t.Helper()
	f, err := os.Open(testfixture.Repo(t, "results", "gpu", "two-gpu", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	run := twoGPURun{uuids: map[string]string{}}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var line struct {
			Row    *twoGPURow `json:"row"`
			Sample struct {
				RepeatTPS []float64 `json:"repeat_tps"`
			} `json:"sample"`
			Summary *struct {
				Parallel  bool    `json:"parallel"`
				Wall      float64 `json:"wall_s"`
				Endpoints []struct {
					Suffix  string `json:"suffix"`
					GPUUUID string `json:"gpu_uuid"`
				} `json:"endpoints"`
			} `json:"run_summary"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		switch {
		case line.Summary != nil:
			run.wall, run.parallel = line.Summary.Wall, line.Summary.Parallel
			for _, ep := range line.Summary.Endpoints {
				run.uuids[ep.Suffix] = ep.GPUUUID
			}
		case line.Row != nil:
			r := *line.Row
			r.Repeats = line.Sample.RepeatTPS
			run.rows = append(run.rows, r)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return run
}

// The committed two-H200 runs (docs/gpu-results.md): A and B pinned to different GPUs, measured
// in parallel in at most 0.6 × the sequential wall time, each configuration's rate on each GPU
// not significantly different from the sequential run's (Mann–Whitney, α = 0.05).
func TestCommittedTwoGPUResults(t *testing.T) {
	seq, par := readTwoGPURun(t, "seq.jsonl"), readTwoGPURun(t, "par.jsonl")
	if seq.parallel || !par.parallel {
		t.Fatalf("seq parallel=%v, par parallel=%v", seq.parallel, par.parallel)
	}
	if r := par.wall / seq.wall; r > 0.6 {
		t.Errorf("parallel %.1f s / sequential %.1f s = %.2f, want ≤ 0.6", par.wall, seq.wall, r)
	}
	for _, run := range []twoGPURun{seq, par} {
		if run.uuids["A"] == "" || run.uuids["A"] == run.uuids["B"] {
			t.Errorf("endpoint UUIDs %v: want two different GPUs", run.uuids)
		}
		for _, r := range run.rows {
			if r.GPUUUID != run.uuids[r.Suffix] {
				t.Errorf("row %s %s on %s, its endpoint on %s", r.Suffix, r.NumGPU, r.GPUUUID, run.uuids[r.Suffix])
			}
		}
	}
	if len(seq.rows) != 4 || len(par.rows) != 4 {
		t.Fatalf("%d sequential and %d parallel rows, want 4 each", len(seq.rows), len(par.rows))
	}
	for _, s := range seq.rows {
		found := false
		for _, p := range par.rows {
			if p.Suffix != s.Suffix || p.NumGPU != s.NumGPU {
				continue
			}
			found = true
			if len(s.Repeats) != 5 || len(p.Repeats) != 5 {
				t.Errorf("%s %s: %d and %d repeats, want 5", s.Suffix, s.NumGPU, len(s.Repeats), len(p.Repeats))
			}
			if c := stats.Compare(p.Repeats, s.Repeats, stats.DefaultAlpha); c.Better || c.Worse {
				t.Errorf("%s num_gpu %s: parallel %v vs sequential %v differ (p=%.3f)", s.Suffix, s.NumGPU, p.Repeats, s.Repeats, c.P)
			}
		}
		if !found {
			t.Errorf("no parallel row for %s num_gpu %s", s.Suffix, s.NumGPU)
		}
	}
	// The split run was stopped during partial offload (0.4 tok/s with about half the model on
	// the CPU): its rows are failures, never figures.
	for _, r := range readTwoGPURun(t, "split.jsonl").rows {
		if r.TokensPerSec != 0 {
			t.Errorf("split row %s: %.2f tok/s recorded for an interrupted configuration", r.Suffix, r.TokensPerSec)
		}
	}
}
