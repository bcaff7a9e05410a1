// Package scripted is a stack driver for tests: no server, scripted rates.
package scripted

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/fuze-ai/fuze/internal/gpu"
	"github.com/fuze-ai/fuze/internal/measure"
	"github.com/fuze-ai/fuze/internal/stack"
)

// Driver is a driver whose server side is imaginary and whose client side replays scripted
// decode rates: per candidate model tag, a queue of rates (0: the request fails with HTTP
// 500). Every request reports 10 tokens whose server-side decode time gives exactly the
// scripted rate. It lets the engine and the orchestration be tested in milliseconds, without
// any real server.
type Driver struct {
	StackName  string
	Models     []stack.Target
	Rates      map[string][]float64
	Cands      []stack.Candidate // nil: ng3 and ng2 at num_ctx 512
	Published  bool              // Publish returns a "pub" candidate
	SetupError error             // returned by Setup (e.g. stack.Unavailable(...))
	// TimerFactor makes the server's own timer report TimerFactor × the rate the client sees
	// (0: an honest timer).
	TimerFactor float64
	// ShortBy makes every answer that many tokens shorter than asked (an early end).
	ShortBy int
	// Endpoints, when set, are what Setup returns (default: A on the CPU).
	Endpoints []stack.Endpoint
	// FromSelection makes Setup build the endpoints from the GPU selection as the real
	// drivers do: A, B when selected, A+B with SPLIT_ENDPOINTS.
	FromSelection bool
	// Parallel is what ParallelEndpoints answers: whether the engine may measure the
	// endpoints at the same time.
	Parallel bool
	// OnSend, when set, is called at the start of every Send, outside the driver's lock: a
	// test can block one endpoint until another has started, which proves they run at the
	// same time without reading a clock.
	OnSend func(ctx context.Context, ep stack.Endpoint)

	// clock is the driver's virtual time: Send advances it by each token's decode time, and
	// the engine reads it through Now, so rates are exact whatever the machine is doing.
	clock time.Time

	// sendMu makes requests take turns on the virtual clock: endpoints measured in parallel
	// would otherwise advance it for each other, and every rate would be wrong.
	sendMu   sync.Mutex
	mu       sync.Mutex
	Calls    []string // model tags sent, in order
	Prepared []string // model tags prepared, in order
	Released []string // endpoint suffixes released (stack.Releaser), in order
	Closed   bool
	// Starts counts the imaginary server's starts: a Prepare whose candidate's server-level
	// settings differ from the previous Prepare's (the first one included).
	Starts     int
	lastServer *string
}

// Now is the driver's virtual clock (the engine times requests with it).
func (d *Driver) Now() time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.clock.IsZero() {
		d.clock = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	return d.clock
}

func (d *Driver) advance(dt time.Duration) {
	d.Now()
	d.mu.Lock()
	d.clock = d.clock.Add(dt)
	d.mu.Unlock()
}

func (d *Driver) Name() string {
	if d.StackName == "" {
		return "scripted"
	}
	return d.StackName
}

func (d *Driver) Workload() stack.Workload {
	return stack.Workload{Prompt: "scripted prompt", MaxTokens: 10, RunTS: "20250101_000000"}
}

func (d *Driver) Setup(_ context.Context, sel gpu.Selection) ([]stack.Endpoint, error) {
	if d.SetupError != nil {
		return nil, d.SetupError
	}
	if d.FromSelection {
		d.Endpoints = []stack.Endpoint{{Suffix: "A", Addr: "127.0.0.1:1", Unit: "proc", GPU: sel.A}}
		if sel.B != nil {
			d.Endpoints = append(d.Endpoints, stack.Endpoint{Suffix: "B", Addr: "127.0.0.1:2", Unit: "proc", GPU: sel.B})
		}
		if ep, ok := stack.SplitEndpoint(sel, "127.0.0.1:3"); ok {
			d.Endpoints = append(d.Endpoints, ep)
		}
	}
	if d.Endpoints != nil {
		return d.Endpoints, nil
	}
	return []stack.Endpoint{{Suffix: "A", Addr: "127.0.0.1:1", Unit: "proc"}}, nil
}

// Release implements stack.Releaser: it records the endpoint.
func (d *Driver) Release(_ context.Context, ep stack.Endpoint) {
	d.mu.Lock()
	d.Released = append(d.Released, ep.Suffix)
	d.mu.Unlock()
}

// ParallelEndpoints implements stack.ParallelEndpoints.
func (d *Driver) ParallelEndpoints() bool { return d.Parallel }

func (d *Driver) Close(context.Context) {
	d.mu.Lock()
	d.Closed = true
	d.mu.Unlock()
}

func (d *Driver) Targets(context.Context) ([]stack.Target, error) {
	if d.Models == nil {
		return []stack.Target{{Model: "m:1", Alias: "m-1"}}, nil
	}
	return d.Models, nil
}

func (d *Driver) Baseline(context.Context, stack.Endpoint, stack.Target) (stack.Candidate, error) {
	return stack.Candidate{Label: stack.LabelBaseline, ModelTag: "base", NumGPU: "default", NumCtx: "512", Batch: "default", NumPredict: "10"}, nil
}

func (d *Driver) Candidates(context.Context, stack.Endpoint, stack.Target) ([]stack.Candidate, error) {
	if d.Cands != nil {
		return d.Cands, nil
	}
	return []stack.Candidate{
		{Label: stack.LabelOptimized, ModelTag: "ng3", NumGPU: "3", NumCtx: "512", NumPredict: "10"},
		{Label: stack.LabelOptimized, ModelTag: "ng2", NumGPU: "2", NumCtx: "512", NumPredict: "10"},
	}, nil
}

func (d *Driver) Prepare(_ context.Context, _ stack.Endpoint, _ stack.Target, c stack.Candidate) (stack.Prepared, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.Prepared = append(d.Prepared, c.ModelTag)
	if key := c.ServerSettings(); d.lastServer == nil || *d.lastServer != key {
		d.Starts++
		d.lastServer = &key
	}
	return stack.Prepared{Settings: map[string]string{"prepared": "yes"}}, nil
}

func (d *Driver) Send(ctx context.Context, ep stack.Endpoint, _ stack.Target, c stack.Candidate, req stack.Request, rec stack.Arrivals) (measure.ServerCounters, error) {
	if d.OnSend != nil {
		d.OnSend(ctx, ep)
	}
	d.sendMu.Lock()
	defer d.sendMu.Unlock()
	d.mu.Lock()
	d.Calls = append(d.Calls, c.ModelTag)
	q := d.Rates[c.ModelTag]
	if len(q) == 0 {
		d.mu.Unlock()
		return measure.ServerCounters{}, measure.Fail(measure.ErrOther, fmt.Errorf("no scripted rate left for %s", c.ModelTag))
	}
	r := q[0]
	d.Rates[c.ModelTag] = q[1:]
	d.mu.Unlock()
	if r == 0 {
		return measure.ServerCounters{}, measure.Fail(measure.ErrHTTP, fmt.Errorf("HTTP 500: boom"))
	}
	// One token every 1/r seconds of virtual time: the client sees exactly r tokens/s. The
	// server's timer counts every token over the same gaps (as llama.cpp's does).
	gap := time.Duration(float64(time.Second) / r)
	d.advance(50 * time.Millisecond) // time to first token
	n := req.MaxTokens - d.ShortBy
	for range n {
		rec.Chunk(1)
		d.advance(gap)
	}
	timer := time.Duration(n) * gap
	if d.TimerFactor > 0 {
		timer = time.Duration(float64(timer) / d.TimerFactor)
	}
	return measure.ServerCounters{OutputTokens: n, DecodeDuration: timer, StopReason: "stop"}, nil
}

func (d *Driver) Publish(_ context.Context, _ stack.Endpoint, _ stack.Target, best stack.Candidate) (stack.Candidate, bool) {
	if !d.Published {
		return stack.Candidate{}, false
	}
	return stack.Candidate{Label: stack.LabelPublished, ModelTag: "pub", NumGPU: best.NumGPU}, true
}
