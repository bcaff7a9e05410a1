// Package engine runs the benchmark loop that is the same for every stack: baseline, sweep
// under the shared policy, repeats, one CSV row and one JSONL sample per configuration,
// flushed as measured, and the best configuration per (model, endpoint). It owns the clock:
// drivers send requests and report chunks, the engine times them. What happens is reported
// as typed events (events.go); the text reporter renders the console.
package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fuze-ai/fuze/internal/arrival"
	"github.com/fuze-ai/fuze/internal/gpu"
	"github.com/fuze-ai/fuze/internal/measure"
	"github.com/fuze-ai/fuze/internal/results"
	"github.com/fuze-ai/fuze/internal/stack"
	"github.com/fuze-ai/fuze/internal/stats"
	"github.com/fuze-ai/fuze/internal/sweep"
	"github.com/fuze-ai/fuze/internal/tune"
)

// Outcome is the result for one (target, endpoint).
type Outcome struct {
	Target   stack.Target
	Endpoint stack.Endpoint
	Baseline *measure.Sample
	Best     *stack.Candidate // the sweep's best; nil when no optimized candidate worked
	BestTPS  float64
	BestRun  *measure.Sample
	Rows     int
	// DefaultIsBest: the sweep's best did not significantly beat the baseline's repeats, so
	// the server's default stays the best configuration.
	DefaultIsBest bool
	// Comparison is the sweep's best against the baseline (nil when there is no best, or no
	// working, valid baseline to compare with).
	Comparison *stats.Comparison
}

// Engine runs a driver over its targets and endpoints.
type Engine struct {
	Driver    stack.Driver
	Endpoints []stack.Endpoint
	Policy    sweep.Policy
	Writer    *results.RunWriter
	// Repeat is how many measured requests each configuration gets (at least 1). The row
	// carries the median; a configuration counts as failed only when every repeat failed.
	Repeat int
	// Report receives every event; nil discards them.
	Report Reporter
	// Now is the clock that times requests and stamps rows (time.Now when nil).
	Now func() time.Time
	// Parallel lets Run measure the endpoints at the same time, one worker each, when the
	// driver allows it (stack.ParallelEndpoints); PARALLEL_ENDPOINTS=0 clears it.
	Parallel bool
	// Timing is set by Run: the run's wall time, overall and per endpoint.
	Timing RunTiming
	// Sampler, when set, measures the endpoint's hardware around every timed request
	// (telemetry.Hub): the sample carries the window's energy, power, clocks and memory.
	Sampler Sampler

	// tunings are the tuning reports of this run so far (tune.go), rewritten as one file.
	tunings []tune.Report
}

// attempts numbers requests across every engine of the process, so that no two requests of a
// run share a prompt (servers cache prompts).
var attempts atomic.Int64

// Run benchmarks every target on every endpoint. It returns the outcomes measured so far and
// ctx's error when interrupted; rows already written are on disk either way. Outcomes are in
// the same order however the endpoints ran: target by target, endpoints in their order.
//
// With Parallel, a driver that says its endpoints are independent (stack.ParallelEndpoints)
// and at least two endpoints, each endpoint gets a worker of its own that measures every
// target on it, so two GPUs are measured at the same time; an error on one endpoint (a row
// that cannot be written) or Ctrl-C stops both. Otherwise endpoints take turns, as before.
// Either way Timing says how long each endpoint and the whole run took.
func (e *Engine) Run(ctx context.Context) ([]Outcome, error) {
	targets, err := e.Driver.Targets(ctx)
	if err != nil {
		return nil, err
	}
	if len(targets) == 0 {
		e.emit(NoTargets{Stack: e.Driver.Name()})
		return nil, nil
	}
	start := e.now()
	n := len(e.Endpoints)
	per := make([][]Outcome, n) // per endpoint, in target order
	walls := make([]time.Duration, n)
	errs := make([]error, n)
	held := newHolds(e.Endpoints)
	one := func(ctx context.Context, i int, t stack.Target) error {
		e.releaseShared(ctx, held, i)
		t0 := e.now()
		o, err := e.runOne(ctx, t, e.Endpoints[i])
		walls[i] += e.now().Sub(t0)
		per[i] = append(per[i], o)
		return err
	}
	parallel := e.parallel()
	if parallel {
		// Endpoints that share a GPU (A+B with A or B) never run at the same time: they
		// would measure each other. Each phase runs endpoints on disjoint GPUs, one worker
		// each; the next phase starts when they are all done.
	phases:
		for _, phase := range gpuPhases(e.Endpoints) {
			wctx, cancel := context.WithCancel(ctx)
			var wg sync.WaitGroup
			for _, i := range phase {
				wg.Go(func() {
					for _, t := range targets {
						if errs[i] = one(wctx, i, t); errs[i] != nil {
							cancel() // the other endpoints stop too: the run ends with this error
							return
						}
					}
				})
			}
			wg.Wait()
			cancel()
			for _, i := range phase {
				if errs[i] != nil {
					break phases
				}
			}
		}
	} else {
	sequential:
		for _, t := range targets {
			for i := range e.Endpoints {
				if errs[i] = one(ctx, i, t); errs[i] != nil {
					break sequential
				}
			}
		}
	}
	e.Timing = RunTiming{Parallel: parallel, Wall: e.now().Sub(start)}
	for i, ep := range e.Endpoints {
		e.Timing.Endpoints = append(e.Timing.Endpoints, EndpointTiming{Endpoint: ep, Wall: walls[i], Outcomes: len(per[i])})
	}
	e.emit(RunFinished{Timing: e.Timing})
	return mergeOutcomes(per, len(targets)), firstError(errs)
}

func (e *Engine) runOne(ctx context.Context, t stack.Target, ep stack.Endpoint) (Outcome, error) {
	o := Outcome{Target: t, Endpoint: ep}
	e.emit(TuningStarted{Endpoint: ep, Target: t})
	base, err := e.Driver.Baseline(ctx, ep, t)
	if err != nil {
		return o, err
	}
	e.emit(ConfigurationStarted{Endpoint: ep, Target: t, Candidate: base, Baseline: true})
	o.Baseline, err = e.measureAndWrite(ctx, ep, t, base)
	o.Rows++
	if err != nil {
		return o, err
	}
	if err := ctx.Err(); err != nil {
		return o, err
	}
	cands, err := e.Driver.Candidates(ctx, ep, t)
	if err != nil {
		e.emit(NoCandidates{Stack: e.Driver.Name(), Endpoint: ep, Target: t, Err: err})
		return o, nil
	}
	if knobNames := TunedKnobs(cands); len(knobNames) > 0 {
		return e.runTune(ctx, t, ep, o, cands, knobNames) // tune.go
	}
	var writeErr error
	samples := make([]*measure.Sample, len(cands))
	index := func(c stack.Candidate) int {
		for i := range cands {
			if cands[i].ModelTag == c.ModelTag && cands[i].NumGPU == c.NumGPU && cands[i].ServerSettings() == c.ServerSettings() {
				return i
			}
		}
		return -1
	}
	res, err := sweep.Run(ctx, e.Policy, cands, func(ctx context.Context, c stack.Candidate) sweep.Measurement {
		if writeErr != nil {
			return sweep.Measurement{}
		}
		e.emit(ConfigurationStarted{Endpoint: ep, Target: t, Candidate: c, Index: index(c) + 1, Total: len(cands)})
		s, err := e.measureAndWrite(ctx, ep, t, c)
		o.Rows++
		if err != nil {
			writeErr = err
			return sweep.Measurement{}
		}
		if i := index(c); i >= 0 {
			samples[i] = s
		}
		return measurement(s)
	})
	if writeErr != nil {
		return o, writeErr
	}
	if res.StopReason != "" {
		e.emit(SweepStopped{Endpoint: ep, Target: t, Reason: res.StopReason})
	}
	if res.Best != nil {
		best := res.Best.Candidate
		o.Best, o.BestTPS = &best, res.Best.TokensPerSec
		if i := index(best); i >= 0 {
			o.BestRun = samples[i]
		}
		// The baseline is the incumbent: the sweep's best replaces the server's default only
		// when its repeats significantly beat the baseline's.
		ev := BestFound{Endpoint: ep, Target: t, Best: best, BestTPS: res.Best.TokensPerSec,
			BaselineTPS: measure.Derive(o.Baseline).DecodeTPS}
		if baseRepeats := results.SampleRepeats(o.Baseline); len(baseRepeats) > 0 && !results.MeasurementError(o.Baseline) {
			cmp := stats.Compare(res.Best.Repeats, baseRepeats, stats.DefaultAlpha)
			ev.Comparison, ev.DefaultIsBest = &cmp, !cmp.Better
		}
		o.DefaultIsBest, o.Comparison = ev.DefaultIsBest, ev.Comparison
		e.emit(ev)
		// Nothing to publish when the server's default stays best.
		if p, ok := e.Driver.(stack.Publisher); ok && err == nil && !o.DefaultIsBest {
			if pub, ok := p.Publish(ctx, ep, t, best); ok {
				e.emit(ConfigurationStarted{Endpoint: ep, Target: t, Candidate: pub, Published: true})
				if _, werr := e.measureAndWrite(ctx, ep, t, pub); werr != nil {
					return o, werr
				}
				o.Rows++
			}
		}
	} else if err == nil && len(cands) > 0 {
		e.emit(NoneWorked{Endpoint: ep, Target: t})
	}
	return o, err
}

// measureRepeated prepares the server for c, then sends Repeat timed requests. A
// configuration is a measurement only when every repeat produced a complete output: the
// sample returned is then the repeat whose rate is the lower median, carrying every repeat's
// rate (the row's figure is their median). Otherwise it is a failure: the first one, and
// "k of n repeats failed: …" when some repeats worked.
func (e *Engine) measureRepeated(ctx context.Context, ep stack.Endpoint, t stack.Target, c stack.Candidate) *measure.Sample {
	prep, prepErr := e.Driver.Prepare(ctx, ep, t, c)
	n := max(e.Repeat, 1)
	var ok []*measure.Sample
	var rates, ttfts, joules []float64
	var failed *measure.Sample
	for i := 0; i < n; i++ {
		s := e.attempt(ctx, ep, t, c, prep, prepErr)
		if s.Failed() {
			if failed == nil {
				failed = s
			}
			if prepErr != nil || s.Outcome == measure.ErrExited || ctx.Err() != nil {
				break // repeating against a dead server or after Ctrl-C measures nothing
			}
			continue
		}
		ok = append(ok, s)
		m := measure.Derive(s)
		rates = append(rates, m.DecodeTPS)
		ttfts = append(ttfts, float64(m.TTFT)/1e6)
		if m.JoulesPerToken != nil {
			joules = append(joules, *m.JoulesPerToken)
		}
	}
	if failed != nil {
		if len(ok) > 0 {
			failed.Error = fmt.Sprintf("%d of %d repeats failed: %s", n-len(ok), n, failed.Error)
			failed.RepeatTPS = rates // the repeats that worked, for the record
		}
		return failed
	}
	order := make([]int, len(ok))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(i, j int) bool { return rates[order[i]] < rates[order[j]] })
	median := ok[order[(len(ok)-1)/2]] // a request whose rate is the (lower) median
	median.RepeatTPS, median.RepeatTTFTms = rates, ttfts
	if len(joules) == len(ok) {
		median.RepeatJPerToken = joules
	}
	return median
}

// attempt sends one request and times it with the engine's clock.
func (e *Engine) attempt(ctx context.Context, ep stack.Endpoint, t stack.Target, c stack.Candidate, prep stack.Prepared, prepErr error) *measure.Sample {
	seq := int(attempts.Add(1))
	w := e.Driver.Workload()
	settings := c.SettingsMap()
	for k, v := range prep.Settings {
		settings[k] = v
	}
	s := &measure.Sample{
		Stack: e.Driver.Name(), Endpoint: ep.Addr, Model: t.Model, ModelTag: c.ModelTag, Label: c.Label,
		Settings: settings, MaxTokens: w.MaxTokens, Outcome: measure.OK,
		ServerLoadDuration: prep.LoadDuration,
	}
	s.Notes = append(s.Notes, prep.Notes...)
	req := stack.Request{
		Seq:       seq,
		Prompt:    fmt.Sprintf("[fuze run %s attempt %d] %s", w.RunTS, seq, w.Prompt),
		MaxTokens: w.MaxTokens,
	}
	if prepErr != nil {
		s.SetFailure(prepErr)
	} else {
		stop := e.StartTelemetry(ep)
		sctx, rec := e.newArrivals(ctx, s)
		start := rec.begin()
		counters, err := e.Driver.Send(sctx, ep, t, c, req, rec)
		s.End = e.now().Sub(start)
		rec.done()
		s.Telemetry = stop()
		s.SetServer(counters)
		s.Notes = append(s.Notes, counters.Notes...)
		for k, v := range counters.Extra {
			s.Settings[k] = v
		}
		if err != nil {
			s.SetFailure(err)
		} else if got := outputTokens(s); got < req.MaxTokens {
			// Rows compare equal work: a shorter output is not a measurement of it.
			s.Outcome, s.Error = measure.ErrShort, fmt.Sprintf("%d of %d tokens (stop reason %q)", got, req.MaxTokens, s.StopReason)
		}
	}
	if errors.Is(ctx.Err(), context.Canceled) && s.Failed() {
		s.Outcome = measure.ErrCanceled
	}
	if d, ok := e.Driver.(stack.Debugger); ok {
		d.Debug(ep, t, c, req, s)
	}
	return s
}

// Measure prepares ep's server for c and measures c (Repeat requests), as a sweep does, but
// writes nothing: the sample a row would carry.
func (e *Engine) Measure(ctx context.Context, ep stack.Endpoint, t stack.Target, c stack.Candidate) *measure.Sample {
	s := e.measureRepeated(ctx, ep, t, c)
	if errors.Is(ctx.Err(), context.Canceled) && s.Outcome != measure.OK {
		s.Outcome, s.Error = measure.ErrCanceled, "interrupted"
	}
	if f, ok := e.Driver.(stack.Finisher); ok {
		f.Finished(context.WithoutCancel(ctx), ep, t, c, s)
	}
	roofline(ep, t, s)
	return s
}

// outputTokens is the server's count of output tokens, or the client's when it gives none.
func outputTokens(s *measure.Sample) int {
	if s.ServerOutputTokens > 0 {
		return s.ServerOutputTokens
	}
	return len(s.ChunkTimes)
}

// arrivals stamps a request's stream: each chunk at the kernel's receive time of its bytes when
// the request's connection records one (arrival.Source: the time the bytes reached this
// machine, not when a busy client got round to reading them), else at the engine's clock.
//
// Chunks that came in one read share its stamp (the last segment's: the kernel keeps no
// earlier one), and a chunk of several tokens shares the gap before it among them
// (serving.ITLs), which is the best estimate of gaps the read did not see. A stream whose
// every token came in one read has no decode span at all on the kernel's stamps; it is then
// timed at the clock as the client read it (clock), as it would be without the stamps.
type arrivals struct {
	s       *measure.Sample
	start   time.Time
	now     func() time.Time
	kernel  kernelStamps // nil: the engine's clock only
	last    time.Duration
	stamped int // chunks stamped by the kernel

	calls  []arrivalCall // every Chunk and Tokens call, for the fallback to the clock
	cursor int           // Tokens' position in calls (its calls go in arrival order)
}

// arrivalCall is one Chunk or Tokens call: the time it recorded, the engine's clock when the
// chunk was read, its tokens; tokenless: a Chunk told of none (a count the driver gives later
// with Tokens).
type arrivalCall struct {
	at, clock time.Duration
	tokens    int
	tokenless bool
}

// kernelStamps is the kernel's receive time of the latest bytes read (arrival.Source).
type kernelStamps interface{ Latest() (time.Time, bool) }

// newArrivals prepares the stamps of a request to be sent with the returned context (before
// its clock starts: begin). The kernel's stamps are wall-clock times, so they are taken only
// when the engine runs on the real clock.
func (e *Engine) newArrivals(ctx context.Context, s *measure.Sample) (context.Context, *arrivals) {
	a := &arrivals{s: s, now: e.now}
	if e.realClock() {
		var src *arrival.Source
		ctx, src = arrival.Watch(ctx)
		a.kernel = src
		a.calls = make([]arrivalCall, 0, cap(s.ChunkTimes))
	}
	return ctx, a
}

// begin starts the request's clock: the sample's start, returned.
func (a *arrivals) begin() time.Time {
	a.start = a.now()
	a.s.Start = a.start
	return a.start
}

func (a *arrivals) Chunk(tokens int) time.Duration {
	now := a.now().Sub(a.start)
	at := now
	if a.kernel != nil {
		// Used only between the previous chunk and now: a stamp from before (an earlier
		// response's on a kept-alive connection) or a wall clock stepped meanwhile leaves the
		// engine's clock in charge.
		if k, ok := a.kernel.Latest(); ok {
			if d := k.Sub(a.start.Round(0)); d >= a.last && d <= now {
				at = d
				a.stamped++
			}
		}
		a.calls = append(a.calls, arrivalCall{at: at, clock: now, tokens: tokens, tokenless: tokens <= 0})
	}
	a.last = at
	a.s.Arrived(at, tokens)
	return at
}

func (a *arrivals) Tokens(at time.Duration, tokens int) {
	a.s.Arrived(at, tokens)
	if a.kernel == nil {
		return
	}
	// Chunks of one read share its stamp: the tokens go to the next chunk of that time that
	// came without any (a count the server gives per event or at the end), else to the latest
	// chunk of that time; their clock time is that chunk's.
	clock, latest := at, -1 // not a time Chunk returned: kept as given
	for i := a.cursor; i < len(a.calls); i++ {
		if c := &a.calls[i]; c.at == at && c.tokenless {
			c.tokenless, a.cursor, latest = false, i, i
			break
		} else if c.at == at {
			latest = i
		}
	}
	if latest >= 0 {
		clock = a.calls[latest].clock
	}
	a.calls = append(a.calls, arrivalCall{at: at, clock: clock, tokens: tokens})
}

// done records how the stream was stamped, and falls back to the clock for a stream whose
// tokens all came in one read: the calls replayed at the times the client read them.
func (a *arrivals) done() {
	a.s.KernelStamped = a.stamped
	if t := a.s.ChunkTimes; a.stamped > 0 && len(t) > 1 && t[len(t)-1] == t[0] {
		a.s.FirstByte, a.s.FirstToken, a.s.ChunkTimes = 0, 0, t[:0]
		for _, c := range a.calls {
			a.s.Arrived(c.clock, c.tokens)
		}
		a.s.KernelStamped = 0
	}
}

// measureAndWrite measures c and writes its row and sample. Only a failure to write is an
// error: a failed measurement is a 0.00 row.
func (e *Engine) measureAndWrite(ctx context.Context, ep stack.Endpoint, t stack.Target, c stack.Candidate) (*measure.Sample, error) {
	s := e.Measure(ctx, ep, t, c)
	m := measure.Derive(s)
	row := results.Row{
		TS:           e.now(),
		Endpoint:     ep.Addr,
		Unit:         ep.Unit,
		Suffix:       ep.Suffix,
		BaseModel:    t.Model,
		VariantLabel: c.Label,
		ModelTag:     c.ModelTag,
		NumGPU:       c.NumGPU,
		NumCtx:       c.NumCtx,
		Batch:        c.Batch,
		NumPredict:   c.NumPredict,
		TokensPerSec: m.DecodeTPS,
		GPULabel:     ep.GPULabel(),
		// A split endpoint's GPUs share each field, joined by stack.SplitSeparator, and
		// their memory adds up: the row keeps its 16 columns.
		GPUName:   ep.GPUNames(),
		GPUUUID:   ep.GPUUUIDs(),
		GPUMemMiB: ep.GPUMemoryMiB(),
	}
	if err := e.Writer.Write(row, s); err != nil {
		return s, fmt.Errorf("write result row: %w", err)
	}
	e.emit(AttemptMeasured{Endpoint: ep, Target: t, Candidate: c, Sample: s, Metrics: m})
	return s, nil
}

// roofline fills the sample's memory-bandwidth bound. A rate above the bound cannot be a
// decode rate of this model on this GPU: it is flagged as a measurement error. A split
// endpoint's bound uses the sum of its GPUs' bandwidths: each GPU reads its share of the
// weights at once (layer split) or its share of every tensor (row split).
func roofline(ep stack.Endpoint, t stack.Target, s *measure.Sample) {
	gpus := ep.GPUs()
	if len(gpus) == 0 || t.BytesPerToken <= 0 {
		return
	}
	bw := 0.0
	for _, g := range gpus {
		b, ok := gpu.PeakBandwidth(g.Name)
		if !ok {
			return // a partial sum would be a bound too low
		}
		bw += b
	}
	s.ModelBytes = t.BytesPerToken
	s.RooflineTPS = bw / float64(t.BytesPerToken)
	if tps := measure.Derive(s).DecodeTPS; tps > 0 {
		s.RooflineShare = tps / s.RooflineTPS
		if s.RooflineShare > 1 {
			s.Notes = append(s.Notes, fmt.Sprintf("measurement error: %.2f tok/s is above the memory-bandwidth roofline of %.2f tok/s", tps, s.RooflineTPS))
		}
	}
}

func (e *Engine) emit(ev Event) {
	if e.Report != nil {
		e.Report.Report(ev)
	}
}

func (e *Engine) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	if c, ok := e.Driver.(clocked); ok {
		return c.Now()
	}
	return time.Now()
}

// realClock says requests are timed with time.Now (no clock injected).
func (e *Engine) realClock() bool {
	_, simulated := e.Driver.(clocked)
	return e.Now == nil && !simulated
}

// clocked is a driver that simulates time (the scripted test driver): the engine then times
// its requests with the driver's clock.
type clocked interface{ Now() time.Time }
