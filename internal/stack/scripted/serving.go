package scripted

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fuze-ai/fuze/internal/gpu"
	"github.com/fuze-ai/fuze/internal/measure"
	"github.com/fuze-ai/fuze/internal/stack"
)

// Fault is what a ServingDriver does to one request instead of answering it.
type Fault int

const (
	NoFault   Fault = iota
	HTTP429         // answers 429 Too Many Requests before any token
	HTTP503         // answers 503 Service Unavailable before any token
	Drop            // sends half its tokens, then the connection drops
	Stall           // sends its first token, then nothing until the request's context ends
	EarlyStop       // ends the answer after half its tokens (an end of sequence)
)

// ServingDriver is a driver for serving tests whose server decodes on a declared schedule:
// every request waits for one of the server's slots (queueing: its TTFT includes the wait),
// then gets its first chunk TTFT later and a chunk every TokensPerChunk × ITL after that. Send
// sleeps that schedule on the real clock, so run it inside a testing/synctest bubble, where
// sleeping is virtual and every figure exact; it has no clock of its own (the engine times it
// with time.Now). Faults script failures by the order requests reach Send.
type ServingDriver struct {
	StackName      string
	TTFT, ITL      time.Duration
	TokensPerChunk int // 0: 1
	// Slots is how many requests the server serves at once when the configuration does not
	// say (its ParallelSetting); 0: unlimited.
	Slots int
	// Fault, when set, gives the fault of the n-th request Send receives (from 0).
	Fault func(n int) Fault
	// Tokens reports the prompt's word count as its token count (CountTokens too).
	MaxTokens int // the workload's budget (0: 10)

	mu        sync.Mutex
	n         int
	slots     map[string]chan struct{} // by ParallelSetting value
	inFlight  int
	MaxSeen   int      // the most requests in Send at once
	Prepared  []string // ServerSettings of each Prepare
	IdleClose int      // CloseIdleConnections calls
	Closed    bool
	Counted   int // CountTokens calls
	// Events is what the run did to the servers, in order: "prepare <endpoint>" and
	// "release <endpoint>" (stack.Releaser).
	Events []string
}

// Release implements stack.Releaser: it records the endpoint.
func (d *ServingDriver) Release(_ context.Context, ep stack.Endpoint) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.Events = append(d.Events, "release "+ep.Suffix)
}

func (d *ServingDriver) Name() string {
	if d.StackName == "" {
		return "scripted"
	}
	return d.StackName
}

func (d *ServingDriver) Workload() stack.Workload {
	n := d.MaxTokens
	if n == 0 {
		n = 10
	}
	return stack.Workload{Prompt: "scripted prompt", MaxTokens: n, RunTS: "20250101_000000"}
}

func (d *ServingDriver) Setup(context.Context, gpu.Selection) ([]stack.Endpoint, error) {
	return []stack.Endpoint{{Suffix: "A", Addr: "127.0.0.1:1", Unit: "proc"}}, nil
}

func (d *ServingDriver) Close(context.Context) {
	d.mu.Lock()
	d.Closed = true
	d.mu.Unlock()
}

func (d *ServingDriver) Targets(context.Context) ([]stack.Target, error) {
	return []stack.Target{{Model: "m:1", Alias: "m-1"}}, nil
}

func (d *ServingDriver) Baseline(context.Context, stack.Endpoint, stack.Target) (stack.Candidate, error) {
	return stack.Candidate{Label: stack.LabelBaseline, ModelTag: "base", NumGPU: "default", NumCtx: "512", Batch: "default", NumPredict: "10"}, nil
}

func (d *ServingDriver) Candidates(context.Context, stack.Endpoint, stack.Target) ([]stack.Candidate, error) {
	return nil, nil
}

// ServingCandidates implements stack.ServingPlanner: the slots are the server setting.
func (d *ServingDriver) ServingCandidates(ctx context.Context, ep stack.Endpoint, t stack.Target, parallel []int) ([]stack.Candidate, error) {
	base, _ := d.Baseline(ctx, ep, t)
	if len(parallel) == 0 {
		return []stack.Candidate{base.WithParallel("slots", 0)}, nil
	}
	var out []stack.Candidate
	for _, p := range parallel {
		out = append(out, base.WithParallel("slots", p))
	}
	return out, nil
}

func (d *ServingDriver) Prepare(_ context.Context, ep stack.Endpoint, _ stack.Target, c stack.Candidate) (stack.Prepared, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.Prepared = append(d.Prepared, c.ServerSettings())
	d.Events = append(d.Events, "prepare "+ep.Suffix)
	return stack.Prepared{Settings: map[string]string{"prepared": "yes"}}, nil
}

// CountTokens implements stack.Tokenizer: one token per word.
func (d *ServingDriver) CountTokens(_ context.Context, _ stack.Endpoint, _ stack.Target, _ stack.Candidate, text string) (int, error) {
	d.mu.Lock()
	d.Counted++
	d.mu.Unlock()
	return len(strings.Fields(text)), nil
}

// CloseIdleConnections implements stack.IdleCloser (counted).
func (d *ServingDriver) CloseIdleConnections() {
	d.mu.Lock()
	d.IdleClose++
	d.mu.Unlock()
}

func (d *ServingDriver) slot(c stack.Candidate) chan struct{} {
	n := d.Slots
	if v, err := strconv.Atoi(c.ParallelValue()); err == nil {
		n = v
	}
	if n <= 0 {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.slots == nil {
		d.slots = map[string]chan struct{}{}
	}
	key := strconv.Itoa(n)
	if d.slots[key] == nil {
		d.slots[key] = make(chan struct{}, n)
	}
	return d.slots[key]
}

func sleep(ctx context.Context, dt time.Duration) error {
	if dt <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(dt)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Send implements stack.Client on the declared schedule.
func (d *ServingDriver) Send(ctx context.Context, _ stack.Endpoint, _ stack.Target, c stack.Candidate, req stack.Request, rec stack.Arrivals) (measure.ServerCounters, error) {
	d.mu.Lock()
	n := d.n
	d.n++
	d.inFlight++
	d.MaxSeen = max(d.MaxSeen, d.inFlight)
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		d.inFlight--
		d.mu.Unlock()
	}()
	fault := NoFault
	if d.Fault != nil {
		fault = d.Fault(n)
	}
	sc := measure.ServerCounters{PromptTokens: len(strings.Fields(req.Prompt))}
	switch fault {
	case HTTP429:
		return sc, measure.Fail(measure.ErrHTTP, fmt.Errorf("scripted server answered HTTP 429: too many requests"))
	case HTTP503:
		return sc, measure.Fail(measure.ErrHTTP, fmt.Errorf("scripted server answered HTTP 503: service unavailable"))
	}
	if sem := d.slot(c); sem != nil {
		select {
		case sem <- struct{}{}:
			defer func() { <-sem }()
		case <-ctx.Done():
			return sc, ctx.Err()
		}
	}
	k := max(d.TokensPerChunk, 1)
	if err := sleep(ctx, d.TTFT); err != nil {
		return sc, err
	}
	total := req.MaxTokens
	if fault == Drop || fault == EarlyStop {
		total /= 2
	}
	for sent := 0; sent < total; {
		if sent > 0 {
			if err := sleep(ctx, time.Duration(k)*d.ITL); err != nil {
				return sc, err
			}
		}
		m := min(k, total-sent)
		rec.Chunk(m)
		sent += m
		sc.OutputTokens = sent
		if fault == Stall {
			<-ctx.Done()
			return sc, ctx.Err()
		}
	}
	if fault == Drop {
		return sc, measure.Fail(measure.ErrConnect, fmt.Errorf("reading the stream: %w", io.ErrUnexpectedEOF))
	}
	sc.DecodeDuration = time.Duration(max(total-1, 0)) * d.ITL
	sc.StopReason = "length"
	if fault == EarlyStop {
		sc.StopReason = "stop"
	}
	return sc, nil
}
