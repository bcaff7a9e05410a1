package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fuze-ai/fuze/internal/arrival"
	"github.com/fuze-ai/fuze/internal/engine"
	"github.com/fuze-ai/fuze/internal/gpu"
	"github.com/fuze-ai/fuze/internal/measure"
	"github.com/fuze-ai/fuze/internal/serving"
	"github.com/fuze-ai/fuze/internal/stack"
	"github.com/fuze-ai/fuze/internal/stack/vllm"
	"github.com/fuze-ai/fuze/internal/stats"
)

// fakeOpenAI is an in-process OpenAI-style completions server (vLLM's stream: one SSE event
// per token with running usage, a last usage event, [DONE]) that records what it really did:
// when each token's write returned, how many tokens it sent, from the first request's arrival
// to the last stream's end. Its streams are written straight to the connection (no chunked
// framing; the connection closes at the end, as llama-server's streams do): it shares this
// machine's cores with the client it measures, so it spends as little as it can.
//
// Paced (TTFT or ITL set), two stepping goroutines each write the next event of every stream
// of theirs that is due (its first token TTFT after its request arrived, then each next one ITL
// after the stream's previous write returned), one write per event, so that no stream's gap is
// shorter than ITL: a fixed inter-token latency. A write that runs late (the fake shares two
// cores with the client) delays the stream's following tokens, as a late decode step of a real
// server does; the fake does not catch up, neither by writing missed tokens back to back (the
// kernel would deliver them as one segment that no client can split) nor by pacing from a
// step's start, which gave the streams written late in a step a short gap in the next one
// (where a real server's step sends every stream's token at once). Unpaced,
// each stream is written as fast as the connection takes it (a write buffer sends several
// events at once).
type fakeOpenAI struct {
	ttft, itl time.Duration
	record    bool // keep every token's write time (the true inter-token gaps)

	startOnce sync.Once
	steppers  []chan *fakeStream
	next      atomic.Uint64
	stop      chan struct{}
	stopped   sync.WaitGroup

	mu          sync.Mutex
	gaps        []float64 // ms between consecutive writes of a stream, every stream
	tokens      int
	first, last time.Time
	open        atomic.Int64 // connections open now
}

// fakeStream is one response being written.
type fakeStream struct {
	w      *bufio.Writer
	n      int       // tokens to send
	sent   int       // tokens sent
	due    time.Time // when the next token is due
	writes []time.Time
	err    error
	done   chan struct{}
}

func (f *fakeOpenAI) connState(_ net.Conn, s http.ConnState) {
	switch s {
	case http.StateNew:
		f.open.Add(1)
	case http.StateClosed, http.StateHijacked:
		f.open.Add(-1)
	}
}

func (f *fakeOpenAI) paced() bool { return f.ttft > 0 || f.itl > 0 }

// close stops the stepping goroutines.
func (f *fakeOpenAI) close() {
	if f.stop != nil {
		close(f.stop)
		f.stopped.Wait()
	}
}

func (f *fakeOpenAI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	arrived := time.Now()
	var req struct {
		MaxTokens int `json:"max_tokens"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.MaxTokens < 1 {
		http.Error(w, `{"error":{"message":"bad request","type":"BadRequestError","code":400}}`, 400)
		return
	}
	hj, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer hj.Close()
	if _, err := hj.Write([]byte("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nConnection: close\r\n\r\n")); err != nil {
		return
	}
	st := &fakeStream{w: bufio.NewWriterSize(hj, 64<<10), n: req.MaxTokens, due: arrived.Add(f.ttft), done: make(chan struct{})}
	if f.record {
		st.writes = make([]time.Time, 0, st.n)
	}
	if f.paced() {
		f.startOnce.Do(f.startSteppers)
		f.steppers[f.next.Add(1)%uint64(len(f.steppers))] <- st
		<-st.done
	} else {
		for st.sent < st.n && st.err == nil {
			f.writeToken(st, false)
		}
	}
	if st.err != nil {
		return
	}
	done := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := 1; i < len(st.writes); i++ {
		f.gaps = append(f.gaps, float64(st.writes[i].Sub(st.writes[i-1]))/1e6)
	}
	f.tokens += st.n
	if f.first.IsZero() || arrived.Before(f.first) {
		f.first = arrived
	}
	if done.After(f.last) {
		f.last = done
	}
}

func (f *fakeOpenAI) startSteppers() {
	f.stop = make(chan struct{})
	for range 2 {
		in := make(chan *fakeStream, 1024)
		f.steppers = append(f.steppers, in)
		f.stopped.Add(1)
		go f.step(in)
	}
}

// step writes the due events of its streams until stopped.
func (f *fakeOpenAI) step(in chan *fakeStream) {
	defer f.stopped.Done()
	var streams []*fakeStream
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		wait := time.Hour
		now := time.Now()
		for _, s := range streams {
			wait = min(wait, s.due.Sub(now))
		}
		timer.Reset(max(wait, 0))
		select {
		case s := <-in:
			streams = append(streams, s)
		case <-timer.C:
		case <-f.stop:
			return
		}
		now = time.Now()
		live := streams[:0]
		for _, s := range streams {
			if !s.due.After(now) {
				s.due = f.writeToken(s, true).Add(f.itl)
			}
			if s.sent == s.n || s.err != nil {
				close(s.done)
				continue
			}
			live = append(live, s)
		}
		clear(streams[len(live):])
		streams = live
	}
}

// writeToken writes st's next event (and the stream's end after its last token); flush sends
// it at once. It returns when the write returned, the true time of the token (kept in
// st.writes when recording).
func (f *fakeOpenAI) writeToken(st *fakeStream, flush bool) time.Time {
	st.sent++
	i, n := st.sent, st.n
	buf := make([]byte, 0, 512)
	buf = append(buf, `data: {"id":"cmpl-fake","object":"text_completion","created":0,"model":"m","choices":[{"index":0,"text":" ok","logprobs":null,"finish_reason":`...)
	if i == n {
		buf = append(buf, `"length"`...)
	} else {
		buf = append(buf, `null`...)
	}
	buf = append(buf, `,"stop_reason":null}],"usage":{"prompt_tokens":8,"total_tokens":`...)
	buf = strconv.AppendInt(buf, int64(8+i), 10)
	buf = append(buf, `,"completion_tokens":`...)
	buf = strconv.AppendInt(buf, int64(i), 10)
	buf = append(buf, "}}\n\n"...)
	if i == n {
		buf = append(buf, `data: {"id":"cmpl-fake","object":"text_completion","created":0,"model":"m","choices":[],"usage":{"prompt_tokens":8,"total_tokens":`...)
		buf = strconv.AppendInt(buf, int64(8+n), 10)
		buf = append(buf, `,"completion_tokens":`...)
		buf = strconv.AppendInt(buf, int64(n), 10)
		buf = append(buf, "}}\n\ndata: [DONE]\n\n"...)
	}
	if _, st.err = st.w.Write(buf); st.err == nil && (flush || i == n) {
		st.err = st.w.Flush()
	}
	written := time.Now()
	if st.err == nil && st.writes != nil {
		st.writes = append(st.writes, written)
	}
	return written
}

// offered is the fake's output rate: tokens sent over its first arrival to its last end.
func (f *fakeOpenAI) offered() float64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return float64(f.tokens) / f.last.Sub(f.first).Seconds()
}

// openAIDriver is fuze's OpenAI-style client (vllm.Complete: the vLLM driver's Send without
// its server management) over a keep-alive transport like the driver's (its connections
// record the kernel's receive stamps), pointed at a server that is already running.
type openAIDriver struct {
	addr      string
	maxTokens int
	tr        *http.Transport
	hc        *http.Client
}

func newOpenAIDriver(addr string, maxTokens int) *openAIDriver {
	tr := arrival.Transport()
	tr.MaxIdleConnsPerHost = 1024
	return &openAIDriver{addr: addr, maxTokens: maxTokens, tr: tr, hc: &http.Client{Transport: tr}}
}

func (d *openAIDriver) Name() string { return "vLLM" }
func (d *openAIDriver) Targets(context.Context) ([]stack.Target, error) {
	return []stack.Target{{Model: "m", Alias: "m"}}, nil
}
func (d *openAIDriver) Baseline(context.Context, stack.Endpoint, stack.Target) (stack.Candidate, error) {
	return stack.Candidate{Label: stack.LabelBaseline, ModelTag: "m"}, nil
}
func (d *openAIDriver) Candidates(context.Context, stack.Endpoint, stack.Target) ([]stack.Candidate, error) {
	return nil, nil
}
func (d *openAIDriver) Workload() stack.Workload {
	return stack.Workload{Prompt: "p", MaxTokens: d.maxTokens, RunTS: "20250101_000000"}
}
func (d *openAIDriver) Setup(context.Context, gpu.Selection) ([]stack.Endpoint, error) {
	return []stack.Endpoint{{Suffix: "A", Addr: d.addr, Unit: "proc"}}, nil
}
func (d *openAIDriver) Prepare(context.Context, stack.Endpoint, stack.Target, stack.Candidate) (stack.Prepared, error) {
	return stack.Prepared{}, nil
}
func (d *openAIDriver) Close(context.Context) { d.tr.CloseIdleConnections() }
func (d *openAIDriver) CloseIdleConnections() { d.tr.CloseIdleConnections() }
func (d *openAIDriver) Send(ctx context.Context, ep stack.Endpoint, _ stack.Target, c stack.Candidate, r stack.Request, rec stack.Arrivals) (measure.ServerCounters, error) {
	sc, _, _, err := vllm.Complete(ctx, d.hc, "http://"+ep.Addr, c.ModelTag, 0, r, rec)
	return sc, err
}

// serveFake runs one serving level against f through fuze's engine and returns the level.
func serveFake(tb testing.TB, f *fakeOpenAI, conc, requests, maxTokens int) (serving.Level, *openAIDriver, *httptest.Server) {
	srv := httptest.NewUnstartedServer(f)
	srv.Config.ConnState = f.connState
	srv.Start()
	d := newOpenAIDriver(srv.Listener.Addr().String(), maxTokens)
	w, err := serving.Create(tb.TempDir(), "vllm", time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	defer w.Close()
	eps, _ := d.Setup(context.Background(), gpu.Selection{})
	e := &engine.Engine{Driver: d, Endpoints: eps}
	out, err := e.Serve(context.Background(), engine.Serving{Concurrency: []int{conc}, Requests: requests,
		RequestTimeout: time.Minute, SLO: serving.SLO{TTFT: time.Hour, ITL: time.Hour}, Writer: w})
	if err != nil {
		tb.Fatal(err)
	}
	l := out[0].Levels[0]
	if l.Completed != requests {
		tb.Fatalf("%d of %d requests completed: %v %v", l.Completed, requests, l.Failures, l.FailureExamples)
	}
	return l, d, srv
}

// The load generator does not distort what it measures: 512 streams, each paced at 5 ms per
// token by the fake. Targets: fuze's ITL p99 within 10% of the gaps the fake really left
// between its writes, and fuze's aggregate output rate within 2% of what the fake sent.
func BenchmarkServing512Streams5msITL(b *testing.B) {
	const streams, perStream, tokens = 512, 2, 256
	for b.Loop() {
		f := &fakeOpenAI{ttft: 5 * time.Millisecond, itl: 5 * time.Millisecond, record: true}
		l, _, srv := serveFake(b, f, streams, streams*perStream, tokens)
		srv.Close()
		f.close()
		truth := stats.Quantile(f.gaps, 0.99)
		offered := f.offered()
		b.ReportMetric(l.ITL.P99, "fuze-itl-p99-ms")
		b.ReportMetric(truth, "true-itl-p99-ms")
		b.ReportMetric(l.ITL.P99/truth, "itl-p99-ratio")
		b.ReportMetric(l.ITL.P50, "fuze-itl-p50-ms")
		b.ReportMetric(stats.Quantile(f.gaps, 0.5), "true-itl-p50-ms")
		b.ReportMetric(l.OutputTPS, "fuze-tok/s")
		b.ReportMetric(offered, "offered-tok/s")
		b.ReportMetric(l.OutputTPS/offered, "throughput-ratio")
	}
}

// Without any delay, how many streamed tokens a second fuze's client takes in over 64 streams
// (target: at least 400,000).
func BenchmarkServing64StreamsNoDelay(b *testing.B) {
	const streams, perStream, tokens = 64, 8, 2048
	for b.Loop() {
		f := &fakeOpenAI{}
		l, _, srv := serveFake(b, f, streams, streams*perStream, tokens)
		srv.Close()
		f.close()
		b.ReportMetric(l.OutputTPS, "fuze-tok/s")
		b.ReportMetric(f.offered(), "offered-tok/s")
	}
}

// No goroutine and no connection outlives a serving run: after the levels, the server sees
// every connection closed and the process has the goroutines it had before.
func TestServingLevelsLeaveNoConnectionOrGoroutine(t *testing.T) {
	before := runtime.NumGoroutine()
	f := &fakeOpenAI{itl: 200 * time.Microsecond}
	srv := httptest.NewUnstartedServer(f)
	srv.Config.ConnState = f.connState
	srv.Start()
	d := newOpenAIDriver(srv.Listener.Addr().String(), 16)
	w, err := serving.Create(t.TempDir(), "vllm", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	eps, _ := d.Setup(context.Background(), gpu.Selection{})
	e := &engine.Engine{Driver: d, Endpoints: eps}
	out, err := e.Serve(context.Background(), engine.Serving{Concurrency: []int{1, 8, 64}, Requests: 128, WarmupPerStream: 1,
		RequestTimeout: time.Minute, SLO: serving.SLO{TTFT: time.Hour, ITL: time.Hour}, Writer: w})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range out[0].Levels {
		if l.Completed != 128 {
			t.Fatalf("c=%d: %d completed: %v", l.Concurrency, l.Completed, l.FailureExamples)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for f.open.Load() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := f.open.Load(); n != 0 {
		t.Fatalf("%d connections still open after the levels", n)
	}
	srv.Close()
	f.close()
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if after := runtime.NumGoroutine(); after > before {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines before, %d after:\n%s", before, after, buf[:runtime.Stack(buf, true)])
	}
}
