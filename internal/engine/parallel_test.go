package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fuze-ai/fuze/internal/gpu"
	"github.com/fuze-ai/fuze/internal/results"
	"github.com/fuze-ai/fuze/internal/stack"
	"github.com/fuze-ai/fuze/internal/stack/scripted"
	"github.com/fuze-ai/fuze/internal/sweep"
)

var (
	gpuA = &gpu.GPU{Index: 0, Name: "NVIDIA H200", UUID: "GPU-aaaa", MemoryMiB: 143771, Label: "nvidia-h200"}
	gpuB = &gpu.GPU{Index: 1, Name: "NVIDIA H200", UUID: "GPU-bbbb", MemoryMiB: 143771, Label: "nvidia-h200"}
)

func twoEndpoints() []stack.Endpoint {
	return []stack.Endpoint{
		{Suffix: "A", Addr: "127.0.0.1:1", Unit: "proc", GPU: gpuA},
		{Suffix: "B", Addr: "127.0.0.1:2", Unit: "proc", GPU: gpuB},
	}
}

// steadyRates gives every configuration the same rate n times over: endpoints that run at the
// same time draw from one queue in an order nobody controls.
func steadyRates(n int) map[string][]float64 {
	m := map[string][]float64{}
	for _, tag := range []string{"base", "ng3", "ng2"} {
		for range n {
			m[tag] = append(m[tag], 20)
		}
	}
	return m
}

func runTwo(t *testing.T, d *scripted.Driver, parallel bool) (*Engine, []Outcome, []results.Row, string, error) {
	t.Helper()
	w, err := results.CreateRun(t.TempDir(), "ollama", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var log bytes.Buffer
	e := &Engine{Driver: d, Endpoints: d.Endpoints, Policy: sweep.Policy{Exhaustive: true}, Writer: w,
		Report: TextReporter(&log), Repeat: 2, Parallel: parallel}
	out, runErr := e.Run(context.Background())
	rows, warns, err := results.ReadRunCSV(w.CSVPath())
	if err != nil || len(warns) > 0 {
		t.Fatal(err, warns)
	}
	return e, out, rows, log.String(), runErr
}

// A's requests wait until B has sent one: only endpoints measured at the same time get past
// that. No clock is read; the timeout only turns a hang into a failure.
func TestEndpointsRunConcurrently(t *testing.T) {
	bStarted := make(chan struct{})
	var once sync.Once
	d := &scripted.Driver{
		Models:    []stack.Target{{Model: "m:1", Alias: "m-1"}, {Model: "m:2", Alias: "m-2"}},
		Rates:     steadyRates(40),
		Endpoints: twoEndpoints(),
		Parallel:  true,
		OnSend: func(ctx context.Context, ep stack.Endpoint) {
			switch ep.Suffix {
			case "B":
				once.Do(func() { close(bStarted) })
			case "A":
				select {
				case <-bStarted:
				case <-time.After(20 * time.Second):
					t.Error("endpoint A never saw B start: the endpoints did not run concurrently")
				}
			}
		},
	}
	e, out, rows, log, err := runTwo(t, d, true)
	if err != nil {
		t.Fatal(err)
	}
	if !e.Timing.Parallel || len(e.Timing.Endpoints) != 2 {
		t.Fatalf("timing %+v", e.Timing)
	}
	// Outcomes in the order a sequential run gives them, whatever finished first.
	var got []string
	for _, o := range out {
		got = append(got, o.Target.Model+"@"+o.Endpoint.Suffix)
	}
	if want := "m:1@A m:1@B m:2@A m:2@B"; strings.Join(got, " ") != want {
		t.Fatalf("outcomes %s, want %s", strings.Join(got, " "), want)
	}
	// 2 targets × 2 endpoints × (baseline + 2 candidates), each a whole CSV row.
	if len(rows) != 12 {
		t.Fatalf("%d rows", len(rows))
	}
	uuids := map[string]int{}
	for _, r := range rows {
		uuids[r.Suffix+" "+r.GPUUUID]++
	}
	if uuids["A GPU-aaaa"] != 6 || uuids["B GPU-bbbb"] != 6 {
		t.Fatalf("rows per endpoint %v", uuids)
	}
	// Every console line about an endpoint keeps its prefix, and an attempt's lines stay together.
	for _, line := range strings.Split(log, "\n") {
		if strings.HasPrefix(line, "✔") && !strings.HasPrefix(line, "✔ [A]") && !strings.HasPrefix(line, "✔ [B]") {
			t.Fatalf("line without its endpoint: %q", line)
		}
	}
	if !strings.Contains(log, "endpoints in parallel: [A] ") {
		t.Fatalf("no wall-time line:\n%s", log)
	}
}

// PARALLEL_ENDPOINTS=0 (Parallel false), or a driver that does not allow it, keeps the old
// order: every endpoint of a target before the next target, one request at a time.
func TestEndpointsSequential(t *testing.T) {
	for _, tc := range []struct {
		name               string
		parallel, driverOK bool
	}{{"knob off", false, true}, {"driver not parallel-safe", true, false}} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var order []string
			inFlight := 0
			d := &scripted.Driver{
				Models:    []stack.Target{{Model: "m:1", Alias: "m-1"}, {Model: "m:2", Alias: "m-2"}},
				Rates:     steadyRates(40),
				Endpoints: twoEndpoints(),
				Parallel:  tc.driverOK,
				OnSend: func(_ context.Context, ep stack.Endpoint) {
					mu.Lock()
					defer mu.Unlock()
					inFlight++
					if inFlight > 1 {
						t.Error("two requests at once in a sequential run")
					}
					if len(order) == 0 || order[len(order)-1] != ep.Suffix {
						order = append(order, ep.Suffix)
					}
					inFlight--
				},
			}
			e, out, _, log, err := runTwo(t, d, tc.parallel)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(order, ""); got != "ABAB" {
				t.Fatalf("endpoint turns %s, want ABAB", got)
			}
			if e.Timing.Parallel || len(out) != 4 || !strings.Contains(log, "endpoints one after another: [A] ") {
				t.Fatalf("timing %+v, %d outcomes\n%s", e.Timing, len(out), log)
			}
		})
	}
}

// One endpoint (the CPU-only host) is the old loop: no worker, no wall-time line.
func TestOneEndpointUnchanged(t *testing.T) {
	d := &scripted.Driver{Rates: steadyRates(10), Parallel: true}
	d.Endpoints = []stack.Endpoint{{Suffix: "A", Addr: "127.0.0.1:1", Unit: "proc"}}
	e, out, rows, log, err := runTwo(t, d, true)
	if err != nil || len(out) != 1 || len(rows) != 3 || e.Timing.Parallel {
		t.Fatalf("err %v, %d outcomes, %d rows, timing %+v", err, len(out), len(rows), e.Timing)
	}
	if strings.Contains(log, "wall time") || rows[0].GPULabel != "cpu" || rows[0].GPUUUID != "" {
		t.Fatalf("row %+v\n%s", rows[0], log)
	}
}

// Ctrl-C during a parallel run stops both workers; what completed is on disk.
func TestParallelInterruptStopsBoth(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	sent := map[string]int{}
	d := &scripted.Driver{
		Models:    []stack.Target{{Model: "m:1", Alias: "m-1"}, {Model: "m:2", Alias: "m-2"}},
		Rates:     steadyRates(40),
		Endpoints: twoEndpoints(),
		Parallel:  true,
		OnSend: func(_ context.Context, ep stack.Endpoint) {
			mu.Lock()
			defer mu.Unlock()
			sent[ep.Suffix]++
			if sent["A"] >= 3 && sent["B"] >= 3 {
				cancel()
			}
		},
	}
	w, err := results.CreateRun(t.TempDir(), "ollama", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	e := &Engine{Driver: d, Endpoints: d.Endpoints, Policy: sweep.Policy{Exhaustive: true}, Writer: w, Repeat: 2, Parallel: true}
	out, err := e.Run(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
	rows, _, _ := results.ReadRunCSV(w.CSVPath())
	if len(out) == 0 || len(out) >= 4 || len(rows) == 0 || len(rows) >= 12 {
		t.Fatalf("%d outcomes, %d rows: the run went on after Ctrl-C", len(out), len(rows))
	}
}

// A split endpoint's row names both GPUs inside the 16 columns, and its roofline is the sum
// of their bandwidths.
func TestSplitEndpointRowAndRoofline(t *testing.T) {
	split := stack.Endpoint{Suffix: "A+B", Addr: "127.0.0.1:3", Unit: "proc", GPU: gpuA, Split: []*gpu.GPU{gpuA, gpuB}}
	d := &scripted.Driver{Rates: steadyRates(10), Endpoints: []stack.Endpoint{split},
		Models: []stack.Target{{Model: "m:1", Alias: "m-1", BytesPerToken: 16e9}}}
	_, out, rows, log, err := runTwo(t, d, true)
	if err != nil {
		t.Fatal(err)
	}
	r := rows[0]
	if r.Suffix != "A+B" || r.GPULabel != "nvidia-h200+nvidia-h200" || r.GPUUUID != "GPU-aaaa+GPU-bbbb" ||
		r.GPUName != "NVIDIA H200+NVIDIA H200" || r.GPUMemMiB != 2*143771 {
		t.Fatalf("row %+v", r)
	}
	if got, want := out[0].Baseline.RooflineTPS, 2*4.8e12/16e9; got != want {
		t.Fatalf("roofline %v, want %v (two H200s)", got, want)
	}
	if !strings.Contains(log, "✔ [A+B] base-as-is") {
		t.Fatalf("console:\n%s", log)
	}
}

// A split endpoint shares its GPUs with A and B: it runs after them, never beside them, and
// what A and B still hold is released before it starts (and its own before they run again).
func TestSplitEndpointNeverRunsBesideItsGPUs(t *testing.T) {
	for _, parallel := range []bool{true, false} {
		t.Run(fmt.Sprint("parallel=", parallel), func(t *testing.T) {
			eps := append(twoEndpoints(), stack.Endpoint{Suffix: "A+B", Addr: "127.0.0.1:3", Unit: "proc", GPU: gpuA, Split: []*gpu.GPU{gpuA, gpuB}})
			var mu sync.Mutex
			var sends []string
			d := &scripted.Driver{
				Models: []stack.Target{{Model: "m:1", Alias: "m-1"}, {Model: "m:2", Alias: "m-2"}},
				Rates:  steadyRates(60), Endpoints: eps, Parallel: true,
				OnSend: func(_ context.Context, ep stack.Endpoint) {
					mu.Lock()
					sends = append(sends, ep.Suffix)
					mu.Unlock()
				},
			}
			_, out, rows, _, err := runTwo(t, d, parallel)
			if err != nil || len(out) != 6 || len(rows) != 18 {
				t.Fatalf("err %v, %d outcomes, %d rows", err, len(out), len(rows))
			}
			var got []string
			for _, o := range out {
				got = append(got, o.Target.Model+"@"+o.Endpoint.Suffix)
			}
			if want := "m:1@A m:1@B m:1@A+B m:2@A m:2@B m:2@A+B"; strings.Join(got, " ") != want {
				t.Fatalf("outcomes %s", strings.Join(got, " "))
			}
			if parallel {
				// Every request of A and B before the first of A+B.
				firstSplit := slices.Index(sends, "A+B")
				if firstSplit < 0 || slices.Contains(sends[firstSplit:], "A") || slices.Contains(sends[firstSplit:], "B") {
					t.Fatalf("A+B beside A or B: %v", sends)
				}
			}
			released := strings.Join(d.Released, " ")
			want := "A B" // parallel: A and B are done with both models before A+B starts
			if !parallel {
				want = "A B A+B A B" // m:1 on A, B, A+B; m:2 on A (A+B released), B, A+B (A, B released)
			}
			if released != want && !(parallel && released == "B A") {
				t.Fatalf("released %q, want %q", released, want)
			}
		})
	}
}
