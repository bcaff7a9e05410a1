package engine

// Endpoints measured at the same time: which endpoints may share a phase (disjoint GPUs),
// releasing what an endpoint sharing a GPU still holds, the order of outcomes, and the run's
// wall time. Run (engine.go) uses them.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/fuze-ai/fuze/internal/stack"
)

// parallel says whether Run measures the endpoints at the same time.
func (e *Engine) parallel() bool {
	p, ok := e.Driver.(stack.ParallelEndpoints)
	return e.Parallel && len(e.Endpoints) > 1 && ok && p.ParallelEndpoints()
}

// gpuPhases groups endpoint indexes, in order, into phases whose endpoints use disjoint GPUs
// (the CPU counts as one device): A and B share a phase, A+B gets one of its own.
func gpuPhases(eps []stack.Endpoint) [][]int {
	var phases [][]int
	var used []map[string]bool
	for i, ep := range eps {
		devs := devices(ep)
		placed := false
		for p := range phases {
			if !overlaps(used[p], devs) {
				phases[p] = append(phases[p], i)
				for _, d := range devs {
					used[p][d] = true
				}
				placed = true
				break
			}
		}
		if !placed {
			m := map[string]bool{}
			for _, d := range devs {
				m[d] = true
			}
			phases, used = append(phases, []int{i}), append(used, m)
		}
	}
	return phases
}

// devices names what an endpoint's server occupies: its GPUs' UUIDs, or "cpu".
func devices(ep stack.Endpoint) []string {
	gs := ep.GPUs()
	if len(gs) == 0 {
		return []string{"cpu"}
	}
	out := make([]string, len(gs))
	for i, g := range gs {
		out[i] = g.UUID
	}
	return out
}

func overlaps(used map[string]bool, devs []string) bool {
	for _, d := range devs {
		if used[d] {
			return true
		}
	}
	return false
}

// holds remembers which endpoints' servers may still hold GPU memory (they ran since they
// were last released).
type holds struct {
	mu   sync.Mutex
	held []bool
	devs [][]string
}

func newHolds(eps []stack.Endpoint) *holds {
	h := &holds{held: make([]bool, len(eps))}
	for _, ep := range eps {
		h.devs = append(h.devs, devices(ep))
	}
	return h
}

// releaseShared asks the driver (stack.Releaser) to free what other endpoints sharing a GPU
// with endpoint i still hold, before i runs: a model the B daemon keeps loaded would
// otherwise take memory the A+B server counts on, and the other way round.
func (e *Engine) releaseShared(ctx context.Context, h *holds, i int) {
	r, ok := e.Driver.(stack.Releaser)
	h.mu.Lock()
	var release []int
	for j := range h.held {
		if j != i && h.held[j] && overlaps(setOf(h.devs[i]), h.devs[j]) {
			release = append(release, j)
			h.held[j] = false
		}
	}
	h.held[i] = true
	h.mu.Unlock()
	if !ok {
		return
	}
	for _, j := range release {
		r.Release(context.WithoutCancel(ctx), e.Endpoints[j])
	}
}

func setOf(devs []string) map[string]bool {
	m := make(map[string]bool, len(devs))
	for _, d := range devs {
		m[d] = true
	}
	return m
}

// mergeOutcomes orders the workers' outcomes as a sequential run does: target by target,
// endpoints in their order (a worker stopped early has fewer).
func mergeOutcomes(per [][]Outcome, targets int) []Outcome {
	var out []Outcome
	for ti := range targets {
		for _, os := range per {
			if ti < len(os) {
				out = append(out, os[ti])
			}
		}
	}
	return out
}

// firstError is the error that ended the run: one that is not the cancellation a failing
// worker caused in the others, else the first.
func firstError(errs []error) error {
	var first error
	for _, err := range errs {
		if err == nil {
			continue
		}
		if !errors.Is(err, context.Canceled) {
			return err
		}
		if first == nil {
			first = err
		}
	}
	return first
}

// RunTiming is how long a Run took: overall and per endpoint (the time spent on that
// endpoint's targets), and whether the endpoints ran at the same time, so that a parallel
// run's wall time can be set beside a sequential one's.
type RunTiming struct {
	Parallel  bool
	Wall      time.Duration
	Endpoints []EndpointTiming
}

// String is the console's wall-time line: "wall time 2m0s, endpoints in parallel: [A] 1m58s,
// [B] 1m59s".
func (t RunTiming) String() string {
	mode := "endpoints one after another"
	if t.Parallel {
		mode = "endpoints in parallel"
	}
	parts := make([]string, len(t.Endpoints))
	for i, et := range t.Endpoints {
		parts[i] = fmt.Sprintf("[%s] %s", et.Endpoint.Suffix, et.Wall.Round(time.Millisecond))
	}
	return fmt.Sprintf("wall time %s, %s: %s", t.Wall.Round(time.Millisecond), mode, strings.Join(parts, ", "))
}

// TimingSummary is RunTiming as the run JSONL's last line and --progress json carry it.
type TimingSummary struct {
	Parallel  bool                    `json:"parallel"`
	WallS     float64                 `json:"wall_s"`
	Endpoints []EndpointTimingSummary `json:"endpoints"`
}

// EndpointTimingSummary is one endpoint's wall time, by suffix and address.
type EndpointTimingSummary struct {
	Suffix   string  `json:"suffix"`
	Endpoint string  `json:"endpoint"`
	GPULabel string  `json:"gpu_label"`
	GPUUUID  string  `json:"gpu_uuid,omitempty"`
	WallS    float64 `json:"wall_s"`
	Outcomes int     `json:"outcomes"`
}

// Summary is the timing for JSON.
func (t RunTiming) Summary() TimingSummary {
	s := TimingSummary{Parallel: t.Parallel, WallS: t.Wall.Seconds()}
	for _, et := range t.Endpoints {
		s.Endpoints = append(s.Endpoints, EndpointTimingSummary{Suffix: et.Endpoint.Suffix, Endpoint: et.Endpoint.Addr,
			GPULabel: et.Endpoint.GPULabel(), GPUUUID: et.Endpoint.GPUUUIDs(), WallS: et.Wall.Seconds(), Outcomes: et.Outcomes})
	}
	return s
}

// EndpointTiming is one endpoint's share of a run.
type EndpointTiming struct {
	Endpoint stack.Endpoint
	Wall     time.Duration
	Outcomes int
}
