package engine

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fuze-ai/fuze/internal/gpu"
	"github.com/fuze-ai/fuze/internal/measure"
	"github.com/fuze-ai/fuze/internal/serving"
	"github.com/fuze-ai/fuze/internal/stack"
)

// Serving is what a serving run measures: for every target, endpoint and serving
// configuration, a closed loop at each concurrency level.
type Serving struct {
	// Concurrency is the levels, in the order measured (CONCURRENCY_SET).
	Concurrency []int
	// Requests is the measured requests per level (REQUESTS_PER_LEVEL); 0: DefaultRequests
	// of the level, or as many as Duration allows when Duration is set.
	Requests int
	// Duration: a level sends no new request once this long has passed since its first
	// measured request (SERVING_DURATION_SECS; 0: none). Requests in flight finish.
	Duration time.Duration
	// WarmupPerStream is the unrecorded requests each stream sends before a level is
	// measured (SERVING_WARMUP): C × WarmupPerStream at concurrency C.
	WarmupPerStream int
	// RequestTimeout bounds one request (SERVING_REQUEST_TIMEOUT_SECS; 0: the driver's own
	// deadline only): a stalled stream becomes a "timeout" failure and the level goes on.
	RequestTimeout time.Duration
	// InputTokens sizes every prompt to this many tokens (SERVING_INPUT_TOKENS), counted by the
	// server's tokenizer where the driver is a stack.Tokenizer; 0: the stack's prompt.
	InputTokens int
	// OutputTokens is every request's token budget (SERVING_OUTPUT_TOKENS); 0: the stack's.
	OutputTokens int
	// Parallel is the values of the server's concurrency setting to measure
	// (SERVING_PARALLEL_SET; empty: the server's default), for drivers that are a
	// stack.ServingPlanner.
	Parallel []int
	// Rates makes the levels an open loop (REQUEST_RATE_SET): one level per offered rate in
	// requests per second (+Inf: every request at once), arrivals drawn by serving.Arrivals
	// with Burstiness (SERVING_BURSTINESS; 0: 1, Poisson) and Seed (SERVING_SEED), at most
	// MaxConcurrency in flight (SERVING_MAX_CONCURRENCY; 0: no cap). Concurrency is then not
	// used. Empty: closed-loop levels.
	Rates          []float64
	Burstiness     float64
	Seed           uint64
	MaxConcurrency int
	SLO            serving.SLO
	Writer         *serving.Writer
	// Procs is GOMAXPROCS during a level of many streams (SERVING_GOMAXPROCS): 0 chooses
	// (levelProcs), -1 leaves Go's default.
	Procs int
}

// levelProcs is the GOMAXPROCS a level of conc streams runs with, given the process's cur and
// the machine's cpus, and the Procs setting. At 64 streams or more it is eight a core (at most
// 64, never fewer than cur): with every P busy Go polls the network only when a run queue
// empties or on sysmon's 10 ms tick, so a stream's reader wakes late and its tokens are
// stamped late; a P left idle is parked in the poller and runs the reader as its bytes arrive.
// Against an in-process fake server pacing 512 streams at 5 ms on 2 cores (bench/), ITL p99 was
// 1.7–1.8× the fake's true one at GOMAXPROCS 2 and 1.1–1.25× at 16 to 64. Fewer streams keep
// cur: the client is then a small share of the machine, and extra Ps would only add threads
// beside a server that may run on the same cores.
func levelProcs(conc, cpus, cur, procs int) int {
	switch {
	case procs > 0:
		return procs
	case procs < 0 || conc < 64:
		return cur
	}
	return max(cur, min(8*cpus, 64))
}

// level is one level to measure: a closed loop of conc streams, or (rate > 0) an open loop
// at rate with at most conc in flight.
type level struct {
	conc int
	rate float64
}

func (opt Serving) levels() []level {
	var out []level
	if len(opt.Rates) > 0 {
		for _, r := range opt.Rates {
			out = append(out, level{conc: opt.MaxConcurrency, rate: r})
		}
		return out
	}
	for _, c := range opt.Concurrency {
		out = append(out, level{conc: c})
	}
	return out
}

// DefaultOpenRequests is an open-loop level's measured requests when neither
// REQUESTS_PER_LEVEL nor a duration says: ten seconds of arrivals, at least 32 and at most 1000
// (vLLM's default prompt count); every request at once: DefaultRequests of the cap, also
// when a duration is set (with no schedule to end, a duration alone would send without end).
func DefaultOpenRequests(rate float64, maxConcurrency int) int {
	if math.IsInf(rate, 1) {
		return DefaultRequests(maxConcurrency)
	}
	return min(1000, max(32, int(math.Ceil(10*rate))))
}

// DefaultRequests is a level's measured requests when neither REQUESTS_PER_LEVEL nor a
// duration says: 8 per stream, at least 32.
func DefaultRequests(concurrency int) int { return max(32, 8*concurrency) }

// ServingOutcome is one configuration's serving run.
type ServingOutcome struct {
	Target    stack.Target
	Endpoint  stack.Endpoint
	Candidate stack.Candidate
	Config    serving.Config
	Levels    []serving.Level
	Goodput   *serving.Level // nil: no level met the SLO
	Err       error          // the configuration could not be served
}

// Serve runs the serving benchmark over every target and endpoint. It returns what was
// measured and ctx's error when interrupted (the level in progress is written with what
// completed), or the first error writing the results.
func (e *Engine) Serve(ctx context.Context, opt Serving) ([]ServingOutcome, error) {
	if len(opt.Concurrency) == 0 && len(opt.Rates) == 0 {
		return nil, errors.New("serving: no concurrency level")
	}
	targets, err := e.Driver.Targets(ctx)
	if err != nil {
		return nil, err
	}
	if len(targets) == 0 {
		e.emit(NoTargets{Stack: e.Driver.Name()})
		return nil, nil
	}
	var outcomes []ServingOutcome
	held := newHolds(e.Endpoints)
	for _, t := range targets {
		for i, ep := range e.Endpoints {
			// A split endpoint shares A's and B's GPUs: what their servers keep loaded is
			// released before it is served, and the other way round.
			e.releaseShared(ctx, held, i)
			cands, err := e.servingCandidates(ctx, ep, t, opt.Parallel)
			if err != nil {
				e.emit(NoCandidates{Stack: e.Driver.Name(), Endpoint: ep, Target: t, Err: err})
				continue
			}
			for _, c := range cands {
				o, err := e.serveConfig(ctx, ep, t, c, opt)
				outcomes = append(outcomes, o)
				if err != nil {
					return outcomes, err
				}
				if err := ctx.Err(); err != nil {
					return outcomes, err
				}
			}
		}
	}
	return outcomes, nil
}

func (e *Engine) servingCandidates(ctx context.Context, ep stack.Endpoint, t stack.Target, parallel []int) ([]stack.Candidate, error) {
	if p, ok := e.Driver.(stack.ServingPlanner); ok {
		return p.ServingCandidates(ctx, ep, t, parallel)
	}
	base, err := e.Driver.Baseline(ctx, ep, t)
	if err != nil {
		return nil, err
	}
	if len(parallel) > 0 {
		e.emitNote(ep, t, fmt.Sprintf("%s has no server setting fuze sweeps for concurrency: SERVING_PARALLEL_SET ignored, the server's own configuration is served", e.Driver.Name()))
	}
	return []stack.Candidate{base.WithParallel("", 0)}, nil
}

// serveConfig prepares the server for c and measures every level. Only a failure to write,
// or an interruption, is an error.
func (e *Engine) serveConfig(ctx context.Context, ep stack.Endpoint, t stack.Target, c stack.Candidate, opt Serving) (ServingOutcome, error) {
	o := ServingOutcome{Target: t, Endpoint: ep, Candidate: c}
	w := e.Driver.Workload()
	maxTokens := w.MaxTokens
	if opt.OutputTokens > 0 {
		maxTokens = opt.OutputTokens
	}
	prep, prepErr := e.Driver.Prepare(ctx, ep, t, c)
	settings := c.SettingsMap()
	for k, v := range prep.Settings {
		settings[k] = v
	}
	cfg := serving.Config{
		Stack: e.Driver.Name(), Endpoint: ep.Addr, GPULabel: ep.GPULabel(), Model: t.Model, Alias: t.Alias,
		Label: c.Label, ModelTag: c.ModelTag, Parallel: c.ParallelValue(), ServerSettings: c.ServerSettings(),
		Settings: settings, InputTokens: opt.InputTokens, OutputTokens: maxTokens, RooflineTPS: rooflineTPS(ep, t),
	}
	o.Config = cfg
	notes := append([]string(nil), prep.Notes...)
	var p prompter
	if prepErr == nil && ctx.Err() == nil {
		var note string
		p, note = e.calibrate(ctx, ep, t, c, w, opt.InputTokens)
		if note != "" {
			notes = append(notes, note)
		}
	}
	e.emit(ServingStarted{Endpoint: ep, Target: t, Candidate: c, Config: cfg, Notes: notes, Err: prepErr})
	if prepErr != nil {
		if errors.Is(ctx.Err(), context.Canceled) {
			return o, ctx.Err()
		}
		o.Err = prepErr
		outcome, msg := measure.Classify(prepErr)
		for _, lv := range opt.levels() {
			l := serving.Summarize(cfg, lv.conc, opt.requests(lv), nil, opt.SLO, false)
			l.Open = opt.openLoop(lv)
			l.Error, l.Notes = outcome+": "+msg, notes
			if err := opt.Writer.WriteLevel(&l, nil, e.now()); err != nil {
				return o, err
			}
			o.Levels = append(o.Levels, l)
			e.emit(ServingLevelMeasured{Endpoint: ep, Target: t, Candidate: c, Level: l})
		}
		return o, nil
	}
	var single float64 // the concurrency-1 level's stream decode rate
	for _, lv := range opt.levels() {
		if ctx.Err() != nil {
			break
		}
		l, reqs := e.serveLevel(ctx, ep, t, c, prep, cfg, opt, lv, p, maxTokens)
		// An open loop has no single-stream level: its aggregate is checked against the
		// roofline only.
		if lv.rate == 0 && lv.conc == 1 && l.StreamDecodeTPS > 0 && !l.Interrupted {
			single = l.StreamDecodeTPS
		}
		l.CheckPhysics(single)
		l.Notes = append(slices.Clone(notes), l.Notes...)
		if err := opt.Writer.WriteLevel(&l, reqs, e.now()); err != nil {
			return o, err
		}
		o.Levels = append(o.Levels, l)
		e.emit(ServingLevelMeasured{Endpoint: ep, Target: t, Candidate: c, Level: l})
		if l.Interrupted {
			break
		}
	}
	// A concurrency-1 level measured after higher ones still bounds them.
	if single > 0 {
		for i := range o.Levels {
			if o.Levels[i].PhysicsLimitTPS == 0 {
				o.Levels[i].CheckPhysics(single)
			}
		}
	}
	o.Goodput = serving.Goodput(o.Levels)
	if err := opt.Writer.WriteGoodput(o.Levels); err != nil {
		return o, err
	}
	e.emit(ServingGoodput{Endpoint: ep, Target: t, Candidate: c, Levels: o.Levels, Goodput: o.Goodput, SLO: opt.SLO})
	return o, nil
}

func (opt Serving) requests(lv level) int {
	if math.IsInf(lv.rate, 1) && opt.Requests == 0 {
		// Every request at once needs a count: a duration alone would send without end.
		return DefaultOpenRequests(lv.rate, lv.conc)
	}
	if opt.Requests > 0 || opt.Duration > 0 {
		return opt.Requests
	}
	if lv.rate > 0 {
		return DefaultOpenRequests(lv.rate, lv.conc)
	}
	return DefaultRequests(lv.conc)
}

// openLoop is the level's OpenLoop before it is run (nil: closed loop).
func (opt Serving) openLoop(lv level) *serving.OpenLoop {
	if lv.rate == 0 {
		return nil
	}
	b := opt.Burstiness
	if b <= 0 {
		b = 1
	}
	return &serving.OpenLoop{Rate: serving.Rate(lv.rate), Burstiness: b, Seed: opt.Seed, MaxConcurrency: lv.conc}
}

// serveLevel runs one level: the warm-up (unrecorded, C in flight; an open loop's warm-up is
// a closed loop at its cap, at least 1), then the measured requests, C in flight or arriving
// at the level's rate, until the level's count or deadline; then it closes the driver's idle
// connections. Every goroutine it starts has returned when it returns.
func (e *Engine) serveLevel(ctx context.Context, ep stack.Endpoint, t stack.Target, c stack.Candidate, prep stack.Prepared,
	cfg serving.Config, opt Serving, lv level, p prompter, maxTokens int) (serving.Level, []serving.Request) {
	conc := lv.conc
	defer func() {
		if ic, ok := e.Driver.(stack.IdleCloser); ok {
			ic.CloseIdleConnections()
		}
	}()
	if cur, want := runtime.GOMAXPROCS(0), levelProcs(conc, runtime.NumCPU(), runtime.GOMAXPROCS(0), opt.Procs); want != cur {
		runtime.GOMAXPROCS(want)
		defer runtime.GOMAXPROCS(cur)
	}
	var reqs []serving.Request
	if opt.WarmupPerStream > 0 {
		wc := max(conc, 1)
		warm := e.closedLoop(ctx, ep, t, c, prep, opt, wc, wc*opt.WarmupPerStream, 0, p, maxTokens)
		for i, r := range warm {
			reqs = append(reqs, serving.Request{Sample: r.s, Warmup: true, Index: i})
		}
	}
	n := opt.requests(lv)
	open := opt.openLoop(lv)
	var measured []sent
	var tel *measure.Telemetry
	if ctx.Err() == nil {
		// One telemetry window over the whole measured level: its requests overlap, so the
		// level's energy over all their tokens is the energy per token.
		stop := e.StartTelemetry(ep)
		if open != nil {
			measured = e.openLoopRun(ctx, ep, t, c, prep, opt, open, n, p, maxTokens)
		} else {
			measured = e.closedLoop(ctx, ep, t, c, prep, opt, conc, n, opt.Duration, p, maxTokens)
		}
		tel = stop()
	}
	samples := make([]*measure.Sample, len(measured))
	for i, r := range measured {
		samples[i] = r.s
		reqs = append(reqs, serving.Request{Sample: r.s, Index: i})
	}
	interrupted := ctx.Err() != nil
	l := serving.Summarize(cfg, conc, n, samples, opt.SLO, interrupted)
	l.Open = open
	l.SetTelemetry(tel)
	// Per-request debug records are written after the level, outside its measured time.
	if d, ok := e.Driver.(stack.Debugger); ok {
		for _, r := range measured {
			d.Debug(ep, t, c, r.req, r.s)
		}
	}
	return l, reqs
}

// sent is one request of a level and what came of it.
type sent struct {
	req stack.Request
	s   *measure.Sample
}

// closedLoop keeps conc requests in flight: each stream sends its next request as soon as its
// previous one ends, until n requests have been sent (n ≤ 0: no count), the deadline has
// passed (d > 0) or ctx is done. The results are in the order the requests were issued.
func (e *Engine) closedLoop(ctx context.Context, ep stack.Endpoint, t stack.Target, c stack.Candidate, prep stack.Prepared,
	opt Serving, conc, n int, d time.Duration, p prompter, maxTokens int) []sent {
	var next atomic.Int64
	var deadline time.Time
	if d > 0 {
		deadline = e.now().Add(d)
	}
	var mu sync.Mutex
	var out []sent
	var idx []int
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for ctx.Err() == nil {
				if !deadline.IsZero() && !e.now().Before(deadline) {
					return
				}
				i := int(next.Add(1) - 1)
				if n > 0 && i >= n {
					return
				}
				r := e.serveRequest(ctx, ep, t, c, prep, opt.RequestTimeout, p, maxTokens)
				mu.Lock()
				out, idx = append(out, r), append(idx, i)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	order := make([]int, len(out))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return idx[order[a]] < idx[order[b]] })
	sorted := make([]sent, len(out))
	for i, j := range order {
		sorted[i] = out[j]
	}
	return sorted
}

// openLoopRun sends requests as they arrive: the first at once, each next one a gap of
// o's Arrivals after the previous arrival (arrival times are absolute, so a late wake-up
// does not shift the schedule), until n requests have arrived (n ≤ 0: no count), the level's
// duration has passed (an arrival due after it, or still waiting for the cap then, is not
// sent) or ctx is done. An arrival that finds o.MaxConcurrency requests in
// flight is counted in o.Capped and waits for one to end; the arrivals after it keep their
// times and are sent at once when they are due by then, and one that fell due while an
// earlier arrival waited for the cap is counted in o.Capped too: it was not sent at its time
// either (whether a slot is free the moment it is looked at, when two requests end at once,
// must not decide that). The gaps are waited on a timer of the
// time package, virtual inside a testing/synctest bubble. The results are in arrival order;
// o.MaxInFlight is set.
func (e *Engine) openLoopRun(ctx context.Context, ep stack.Endpoint, t stack.Target, c stack.Candidate, prep stack.Prepared,
	opt Serving, o *serving.OpenLoop, n int, p prompter, maxTokens int) []sent {
	arr := serving.NewArrivals(float64(o.Rate), o.Burstiness, o.Seed)
	var sem chan struct{}
	if o.MaxConcurrency > 0 {
		sem = make(chan struct{}, o.MaxConcurrency)
	}
	start := e.now()
	var deadline time.Time
	if opt.Duration > 0 {
		deadline = start.Add(opt.Duration)
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var mu sync.Mutex
	var out []sent
	var inFlight int
	var wg sync.WaitGroup
	due := start
	var capWaitEnded time.Time // when the last arrival that waited for the cap got its slot
arrive:
	for i := 0; n <= 0 || i < n; i++ {
		if i > 0 {
			due = due.Add(arr.Next())
		}
		if !deadline.IsZero() && (!due.Before(deadline) || !e.now().Before(deadline)) {
			break
		}
		if wait := due.Sub(e.now()); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-ctx.Done():
				break arrive
			}
		}
		if ctx.Err() != nil {
			break
		}
		if sem != nil {
			select {
			case sem <- struct{}{}:
				if due.Before(capWaitEnded) {
					o.Capped++ // due while an earlier arrival waited for the cap
				}
			default:
				o.Capped++
				select {
				case sem <- struct{}{}:
				case <-ctx.Done():
					break arrive
				}
				capWaitEnded = e.now()
				if !deadline.IsZero() && !capWaitEnded.Before(deadline) {
					<-sem // the level's time ran out while it waited: not sent
					o.Capped--
					break arrive
				}
			}
		}
		mu.Lock()
		out = append(out, sent{})
		inFlight++
		o.MaxInFlight = max(o.MaxInFlight, inFlight)
		mu.Unlock()
		wg.Go(func() {
			r := e.serveRequest(ctx, ep, t, c, prep, opt.RequestTimeout, p, maxTokens)
			mu.Lock()
			out[i] = r
			inFlight--
			mu.Unlock()
			if sem != nil {
				<-sem
			}
		})
	}
	wg.Wait()
	return out
}

// serveRequest sends one request with a prompt no other request has had, timed by the
// engine's clock, and classifies its outcome as attempt does; a request past its deadline is a
// timeout, one cut by ctx canceled.
func (e *Engine) serveRequest(ctx context.Context, ep stack.Endpoint, t stack.Target, c stack.Candidate, prep stack.Prepared,
	timeout time.Duration, p prompter, maxTokens int) sent {
	seq := int(attempts.Add(1))
	settings := c.SettingsMap()
	for k, v := range prep.Settings {
		settings[k] = v
	}
	s := &measure.Sample{
		Stack: e.Driver.Name(), Endpoint: ep.Addr, Model: t.Model, ModelTag: c.ModelTag, Label: c.Label,
		Settings: settings, MaxTokens: maxTokens, PromptTokens: p.tokens, Outcome: measure.OK,
		ChunkTimes: make([]time.Duration, 0, maxTokens),
	}
	req := stack.Request{Seq: seq, Prompt: p.prompt(seq), MaxTokens: maxTokens}
	rctx, cancel := ctx, context.CancelFunc(func() {})
	if timeout > 0 {
		rctx, cancel = context.WithTimeout(ctx, timeout)
	}
	sctx, rec := e.newArrivals(rctx, s)
	start := rec.begin()
	counters, err := e.Driver.Send(sctx, ep, t, c, req, rec)
	s.End = e.now().Sub(start)
	rec.done()
	timedOut := errors.Is(rctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil
	cancel()
	s.SetServer(counters)
	s.Notes = append(s.Notes, counters.Notes...)
	for k, v := range counters.Extra {
		s.Settings[k] = v
	}
	switch {
	case err != nil:
		s.SetFailure(err)
	case outputTokens(s) < maxTokens:
		s.Outcome, s.Error = measure.ErrShort, fmt.Sprintf("%d of %d tokens (stop reason %q)", outputTokens(s), maxTokens, s.StopReason)
	}
	switch {
	case !s.Failed():
	case errors.Is(ctx.Err(), context.Canceled):
		s.Outcome = measure.ErrCanceled
	case timedOut:
		s.Outcome, s.Error = measure.ErrTimeout, fmt.Sprintf("no complete answer within %s: %s", timeout, s.Error)
	}
	return sent{req: req, s: s}
}

// rooflineTPS is the memory-bandwidth bound of one stream on ep (0: unknown).
func rooflineTPS(ep stack.Endpoint, t stack.Target) float64 {
	if ep.GPU == nil || t.BytesPerToken <= 0 {
		return 0
	}
	bw, ok := gpu.PeakBandwidth(ep.GPU.Name)
	if !ok {
		return 0
	}
	return bw / float64(t.BytesPerToken)
}

// prompter makes every request's prompt: a head unique to the request (so that no server can
// reuse a cached prefix: the prompts differ from their first word) and a body of the
// workload's size.
type prompter struct {
	runTS  string
	salt   uint32
	body   string
	tokens int // tokens asked per prompt (0: the stack's prompt as it is)
}

func newPrompter(runTS string) prompter {
	h := fnv.New32a()
	h.Write([]byte(runTS))
	return prompter{runTS: runTS, salt: h.Sum32()}
}

// prompt is "<w1> <w2> <seq> [fuze <RunTS>] <body>": two words that change with every
// request (the first one differs between consecutive requests), then the sequence number at a
// fixed width, so that heads have the same length in tokens on most tokenizers.
func (p prompter) prompt(seq int) string {
	k := uint32(seq) + p.salt
	n := uint32(len(headWords))
	head := fmt.Sprintf("%s %s %08d [fuze %s]", headWords[k%n], headWords[(k/n+7)%n], seq%100000000, p.runTS)
	if p.body == "" {
		return head
	}
	return head + " " + p.body
}

// filler is the body of a sized prompt: the first n characters of a text of common words,
// never ending in a space (a prompt that ends in one makes some models answer with text-less
// tokens).
func filler(n int) string {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(fillerWords[(i*7+i/len(fillerWords))%len(fillerWords)])
	}
	return strings.TrimRight(b.String()[:n], " ")
}

// calibrate sizes the prompts' body: with InputTokens 0 it is the workload's prompt; else the
// filler text cut at the length (in characters) that makes prompt(seq) InputTokens tokens long
// as the driver's Tokenizer counts them, found by interpolating between lengths counted too
// short and too long (a dozen counts); one token per 4 characters after the head when the
// driver cannot count. The note says what was done.
func (e *Engine) calibrate(ctx context.Context, ep stack.Endpoint, t stack.Target, c stack.Candidate, w stack.Workload, want int) (prompter, string) {
	p := newPrompter(w.RunTS)
	if want <= 0 {
		p.body = w.Prompt
		return p, ""
	}
	p.tokens = want
	tok, ok := e.Driver.(stack.Tokenizer)
	if !ok {
		p.body = filler(4 * max(1, want-headTokenGuess))
		return p, fmt.Sprintf("input length: %s cannot count tokens; prompts are %d characters for %d tokens (4 characters a token after a head of about %d tokens), not exact",
			e.Driver.Name(), len(p.prompt(1)), want, headTokenGuess)
	}
	counts := map[int]int{}
	count := func(chars int) (int, error) {
		if n, ok := counts[chars]; ok {
			return n, nil
		}
		q := p
		q.body = filler(chars)
		n, err := tok.CountTokens(ctx, ep, t, c, q.prompt(int(attempts.Add(1))))
		counts[chars] = n
		return n, err
	}
	head, err := count(0)
	if err != nil {
		p.body = filler(4 * max(1, want-headTokenGuess))
		return p, fmt.Sprintf("input length: counting tokens failed (%v); prompts are %d characters, not calibrated", err, len(p.prompt(1)))
	}
	if head >= want {
		return p, fmt.Sprintf("input length: %d tokens asked, but a prompt's unique head alone is %d tokens: prompts are the head only", want, head)
	}
	lo, nlo := 0, head // longest length known too short
	hi, nhi := -1, 0   // shortest length known too long (-1: none yet)
	chars := 4 * (want - head)
	best, bestN := 0, head
	for range 24 {
		n, err := count(chars)
		if err != nil {
			break
		}
		if abs(n-want) < abs(bestN-want) || (n == want && bestN != want) {
			best, bestN = chars, n
		}
		if n == want {
			break
		}
		if n < want {
			lo, nlo = chars, n
		} else {
			hi, nhi = chars, n
		}
		if hi >= 0 && hi-lo <= 1 {
			break // no length gives exactly want (a token of several characters spans it)
		}
		// Interpolate: tokens grow about linearly with characters.
		if hi < 0 {
			chars = lo + max(1, int(float64(want-nlo)*float64(max(lo, 1))/float64(max(nlo-head, 1))))
		} else {
			chars = lo + int(float64(want-nlo)*float64(hi-lo)/float64(max(nhi-nlo, 1)))
			chars = min(max(chars, lo+1), hi-1)
		}
	}
	p.body = filler(best)
	if bestN != want {
		return p, fmt.Sprintf("input length: %d tokens asked, the closest prompt the server counts is %d tokens (%d characters of filler)", want, bestN, best)
	}
	return p, fmt.Sprintf("input length: %d tokens as the server counts them (%d characters of filler, %d counts)", want, best, len(counts))
}

// headTokenGuess is about how many tokens a prompt's head takes, for drivers that cannot
// count.
const headTokenGuess = 12

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func (e *Engine) emitNote(ep stack.Endpoint, t stack.Target, note string) {
	e.emit(ServingNote{Endpoint: ep, Target: t, Note: note})
}

// headWords start every prompt: 256 common five-letter words, so that every head has the
// same length in characters (and so in tokens on byte-level tokenizers) and in words (one
// token each on most subword tokenizers).
var headWords = strings.Fields(`
apple river stone cloud green paper music table light water horse bread night chair sound
field glass dream honey lemon onion salad sugar tiger whale wheat acorn album arrow badge
berry cabin cargo cedar coral daisy eagle ember flame goose hazel heron ivory jewel kayak
koala lilac linen lotus maple melon olive otter panda pearl poppy quill raven robin scarf
shell slate storm topaz tulip vapor canoe comet delta fable glade igloo orbit prism atlas
about above actor adult after again agent agree ahead alarm alert alive allow alone along
alpha amber angel anger angle angry ankle apart apron arena argue armor aroma aside audio
award aware bacon badly baker basic basin beach beard beast begin being bench birth black
blade blank blast blaze bless blind block bloom board boast bonus boost booth brain brake
brand brass brave brick bride brief bring broad brook brown brush build bunch burst buyer
cable camel canal candy carry catch cause chain chalk charm chart chase cheap check cheek
cheer chess chest chief child chill choir civic claim class clean clear clerk click cliff
climb clock close coach coast couch count court cover craft crane crash cream creek crisp
crowd crown crust curve cycle dance dealt decay delay dense depth diary dirty dough draft
drain drama drawn dress drift drill drink drive eager early earth eight elbow elder empty
enjoy enter entry equal essay event every exact exist extra faith false fancy feast fence
fever fiber fifty final flock floor flour fluid focus force forge forty forum found frame
fresh
`)

// fillerWords make the body of a sized prompt.
var fillerWords = strings.Fields(`
the of and to in is it that was for on are as with his they at be this have from or one
had by word but not what all were we when your can said there use an each which she do how
their if will up other about out many then them these so some her would make like him into
time has look two more write go see number no way could people my than first water been
call who oil its now find long down day did get come made may part over new sound take only
little work know place year live me back give most very after thing our just name good
sentence man think say great where help through much before line right too mean old any
same tell boy follow came want show also around form three small set put end does another
well large must big even such because turn here why ask went men read need land different
home us move try kind hand picture again change off play spell air away animal house point
page letter mother answer found study still learn should world high every near add food
between own below country plant last school father keep tree never start city earth eye
light thought head under story saw left few while along might close something seem next
hard open example begin life always those both paper together got group often run
`)
