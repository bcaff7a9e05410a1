package engine

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/fuze-ai/fuze/internal/arrival"
	"github.com/fuze-ai/fuze/internal/measure"
	"github.com/fuze-ai/fuze/internal/stack"
	"github.com/fuze-ai/fuze/internal/stack/scripted"
)

// fakeStamps is a connection's kernel stamp, set by the test.
type fakeStamps struct {
	at time.Time
	ok bool
}

func (f *fakeStamps) Latest() (time.Time, bool) { return f.at, f.ok }

// A chunk is timed at the kernel's stamp of its bytes when that stamp lies between the previous
// chunk and now; otherwise (none, one from before the request, one past the clock's now: a
// stepped wall clock, one before the previous chunk) at the engine's clock. The sample counts
// the kernel-stamped chunks.
func TestChunksTakeTheKernelStampWhenItFits(t *testing.T) {
	start := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	clock := start
	s := &measure.Sample{}
	k := &fakeStamps{}
	a := &arrivals{s: s, start: start, now: func() time.Time { return clock }, kernel: k}
	for _, step := range []struct {
		clock, stamp int
		stamped      bool
		want         int
	}{
		{clock: 10, stamp: -1, stamped: true, want: 10}, // an earlier response's stamp
		{clock: 20, stamp: 17, stamped: true, want: 17},
		{clock: 30, stamp: 12, stamped: true, want: 30}, // before the previous chunk
		{clock: 40, stamp: 45, stamped: true, want: 40}, // after now
		{clock: 50, stamped: false, want: 50},
		{clock: 60, stamp: 55, stamped: true, want: 55},
	} {
		clock = start.Add(ms(step.clock))
		k.at, k.ok = start.Add(ms(step.stamp)), step.stamped
		if got := a.Chunk(1); got != ms(step.want) {
			t.Errorf("clock %d ms, stamp %d ms (%v): chunk at %v, want %d ms", step.clock, step.stamp, step.stamped, got, step.want)
		}
	}
	a.done()
	if want := []time.Duration{ms(10), ms(17), ms(30), ms(40), ms(50), ms(55)}; !slices.Equal(s.ChunkTimes, want) || s.KernelStamped != 2 {
		t.Errorf("chunks %v (%d kernel-stamped), want %v (2)", s.ChunkTimes, s.KernelStamped, want)
	}
}

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// readAtOnce is a stream whose every chunk carries the kernel's stamp 5 ms after the start;
// readAt(n) sets the engine's clock n ms after it.
func readAtOnce() (*measure.Sample, *arrivals, func(n int)) {
	start := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	clock := start
	s := &measure.Sample{}
	a := &arrivals{s: s, start: start, now: func() time.Time { return clock }, kernel: &fakeStamps{at: start.Add(ms(5)), ok: true}}
	return s, a, func(n int) { clock = start.Add(ms(n)) }
}

// A stream whose tokens all came in one read has no decode span on the kernel's stamps: it is
// timed at the clock, as the client read it, tokens counted at the end included.
func TestAStreamReadAtOnceFallsBackToTheClock(t *testing.T) {
	s, a, readAt := readAtOnce()
	for i, tokens := range []int{1, 1, 0} {
		readAt(6 + i)
		if at := a.Chunk(tokens); at != ms(5) {
			t.Fatalf("chunk %d at %v, want the kernel's 5ms", i, at)
		}
	}
	a.Tokens(ms(5), 2) // a count given at the end, for the last chunk
	a.done()
	if want := []time.Duration{ms(6), ms(7), ms(8), ms(8)}; !slices.Equal(s.ChunkTimes, want) || s.FirstToken != ms(6) || s.FirstByte != ms(6) || s.KernelStamped != 0 {
		t.Errorf("chunks %v, first token %v, first byte %v, %d kernel-stamped; want %v at the clock, none kernel-stamped", s.ChunkTimes, s.FirstToken, s.FirstByte, s.KernelStamped, want)
	}
}

// Tokens counted per event after the stream (Triton: every event a Chunk(0), then Tokens for
// each in order) keep their events' clock times when the stream falls back to the clock.
func TestTokensCountedLaterKeepTheirEventsClockTimes(t *testing.T) {
	s, a, readAt := readAtOnce()
	var ats []time.Duration
	for i := range 3 {
		readAt(6 + i)
		ats = append(ats, a.Chunk(0))
	}
	for _, at := range ats {
		a.Tokens(at, 1)
	}
	a.done()
	if want := []time.Duration{ms(6), ms(7), ms(8)}; !slices.Equal(s.ChunkTimes, want) || s.KernelStamped != 0 {
		t.Errorf("chunks %v, %d kernel-stamped; want %v at the clock", s.ChunkTimes, s.KernelStamped, want)
	}
}

// streamDriver is a driver whose Send reads a real HTTP stream over internal/arrival's
// transport, a chunk a line; its planner and server are the scripted driver's, without its
// virtual clock (the engine then runs on the real one).
type streamDriver struct {
	stack.Planner
	stack.Server
	url string
	tr  *http.Transport
}

func (d *streamDriver) Send(ctx context.Context, _ stack.Endpoint, _ stack.Target, _ stack.Candidate, _ stack.Request, rec stack.Arrivals) (measure.ServerCounters, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", d.url, nil)
	resp, err := (&http.Client{Transport: d.tr}).Do(req)
	if err != nil {
		return measure.ServerCounters{}, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		rec.Chunk(1)
	}
	return measure.ServerCounters{}, sc.Err()
}

// Through the engine on the real clock, a stream read over a socket is stamped by the kernel
// (Linux): the request's connection is followed from the engine's context to its reads.
func TestEngineTimesChunksAtTheKernelsReceipt(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("kernel receive stamps are read on Linux only")
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for range 20 {
			w.Write([]byte("data: x\n"))
			w.(http.Flusher).Flush()
		}
	}))
	defer srv.Close()
	sd := &scripted.Driver{}
	d := &streamDriver{Planner: sd, Server: sd, url: srv.URL, tr: arrival.Transport()}
	defer d.tr.CloseIdleConnections()
	e := &Engine{Driver: d, Endpoints: []stack.Endpoint{epA}}
	if !e.realClock() {
		t.Fatal("the engine does not run on the real clock")
	}
	// The kernel turns stamping on machine-wide a moment after the first socket asks: the
	// first requests of a fresh machine may come unstamped.
	for i := range 50 {
		s := e.attempt(context.Background(), epA, stack.Target{Model: "m"}, stack.Candidate{Label: "base"}, stack.Prepared{}, nil)
		if len(s.ChunkTimes) != 20 || !slices.IsSorted(s.ChunkTimes) || s.ChunkTimes[19] > s.End {
			t.Fatalf("request %d: chunks %v, end %v", i, s.ChunkTimes, s.End)
		}
		if s.KernelStamped > 0 {
			return
		}
	}
	t.Fatal("no chunk of 50 requests was stamped by the kernel")
}
