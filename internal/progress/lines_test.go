package progress

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fuze-ai/fuze/internal/engine"
	"github.com/fuze-ai/fuze/internal/server"
	"github.com/fuze-ai/fuze/internal/stack"
)

// clock is a fake clock that moves only when told.
type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *clock               { return &clock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)} }
func lines(s string) []string        { return strings.Split(strings.TrimSuffix(s, "\n"), "\n") }
func same(t *testing.T, got, want string) {
	t.Helper()
	if got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
	if strings.ContainsRune(got, '\x1b') || strings.ContainsRune(got, '\r') {
		t.Fatalf("escape codes or carriage returns in plain lines: %q", got)
	}
}

var (
	ep  = stack.Endpoint{Suffix: "A", Addr: "127.0.0.1:1"}
	tgt = stack.Target{Model: "m:1", Alias: "m-1"}
)

func cand(tag string) stack.Candidate { return stack.Candidate{ModelTag: tag} }

// A sweep of a baseline and three candidates, stopped after two, with a wait for a server in
// the second: one plain line per step, elapsed and ETA by the injected clock.
func TestSweepPlainLines(t *testing.T) {
	clk := newClock()
	var out bytes.Buffer
	con := NewMode(&out, Lines, clk.now)
	s := con.Sweep()
	log := con.Writer()
	// The text reporter's lines interleave with progress lines through the console's writer.
	report := engine.Reporters(engine.ReporterFunc(func(ev engine.Event) {
		if a, ok := ev.(engine.AttemptMeasured); ok {
			log.Write([]byte("✔ " + a.Candidate.ModelTag + "\n"))
		}
	}), s)
	measured := func(tag string, d time.Duration) {
		clk.add(d)
		report.Report(engine.AttemptMeasured{Endpoint: ep, Target: tgt, Candidate: cand(tag)})
	}
	report.Report(engine.TuningStarted{Endpoint: ep, Target: tgt})
	report.Report(engine.ConfigurationStarted{Endpoint: ep, Target: tgt, Candidate: cand("base"), Baseline: true})
	measured("base", 4*time.Second)
	report.Report(engine.ConfigurationStarted{Endpoint: ep, Target: tgt, Candidate: cand("ng3"), Index: 1, Total: 3})
	measured("ng3", 8*time.Second)
	clk.add(time.Second) // between configurations (the sweep's own work)
	report.Report(engine.ConfigurationStarted{Endpoint: ep, Target: tgt, Candidate: cand("ng2"), Index: 2, Total: 3})
	for _, el := range []time.Duration{0, time.Second, 9 * time.Second, 10 * time.Second, 11 * time.Second, 21 * time.Second} {
		s.Wait(server.WaitStatus{Name: "llama-server A", Elapsed: el, LastLine: "load_tensors: layer " + Duration(el)})
	}
	s.Wait(server.WaitStatus{Name: "llama-server A", Elapsed: 22 * time.Second, Done: true})
	measured("ng2", 24*time.Second)
	report.Report(engine.SweepStopped{Endpoint: ep, Target: tgt, Reason: "no improvement"})
	report.Report(engine.BestFound{Endpoint: ep, Target: tgt, Best: cand("ng3")})
	report.Report(engine.ConfigurationStarted{Endpoint: ep, Target: tgt, Candidate: cand("pub"), Published: true})
	measured("pub", 2*time.Second)
	s.Wait(server.WaitStatus{Name: "vllm B", Elapsed: 0})
	s.Wait(server.WaitStatus{Name: "vllm B", Elapsed: 3 * time.Second, Done: true, Err: errors.New("exited")})
	s.Close()

	same(t, out.String(), `[A] m-1: baseline (the server's default), elapsed 0s
✔ base
[A] m-1: configuration 1 of 3, elapsed 4s, ETA 12s
✔ ng3
[A] m-1: configuration 2 of 3, elapsed 13s, ETA 12s
waiting for llama-server A: 0s; log: load_tensors: layer 0s
waiting for llama-server A: 10s; log: load_tensors: layer 10s
waiting for llama-server A: 21s; log: load_tensors: layer 21s
llama-server A ready after 22s
✔ ng2
[A] m-1: done, 2 of 3 configurations measured, elapsed 37s
[A] m-1: the published best, elapsed 37s
✔ pub
waiting for vllm B: 0s
vllm B not ready after 3s
`)
}

// A model without candidates ends with its baseline; a second model starts afresh.
func TestSweepPlainLinesNoCandidates(t *testing.T) {
	clk := newClock()
	var out bytes.Buffer
	s := NewMode(&out, Lines, clk.now).Sweep()
	s.Report(engine.TuningStarted{Endpoint: ep, Target: tgt})
	s.Report(engine.ConfigurationStarted{Candidate: cand("base"), Baseline: true})
	clk.add(90 * time.Second)
	s.Report(engine.AttemptMeasured{Candidate: cand("base")})
	s.Report(engine.NoCandidates{Err: errors.New("no layers")})
	s.Report(engine.TuningStarted{Endpoint: stack.Endpoint{Suffix: "B"}, Target: stack.Target{Model: "other:2"}})
	s.Report(engine.ConfigurationStarted{Candidate: cand("base"), Baseline: true})
	clk.add(time.Minute)
	s.Report(engine.AttemptMeasured{Candidate: cand("base")})
	s.Report(engine.ConfigurationStarted{Candidate: cand("ng1"), Index: 1, Total: 1})
	clk.add(30 * time.Second)
	s.Close() // interrupted: Close ends the sweep with what it measured
	same(t, out.String(), `[A] m-1: baseline (the server's default), elapsed 0s
[A] m-1: done, 0 of 0 configurations measured, elapsed 1m30s
[B] other:2: baseline (the server's default), elapsed 0s
[B] other:2: configuration 1 of 1, elapsed 1m0s, ETA 1m0s
[B] other:2: done, 0 of 1 configurations measured, elapsed 1m30s
`)
}

// Writing a file: a line at each tenth reached (one for a jump over several), one when done.
func TestWritingPlainLines(t *testing.T) {
	clk := newClock()
	var out bytes.Buffer
	w := NewMode(&out, Lines, clk.now).Writing("m.gguf")
	const total = 10 << 30 // 10 GiB at 256 MiB/s
	for _, n := range []int64{0, 1 << 20, 1 << 30, 1<<30 + 1, 3 << 30, 10 << 30} {
		clk.t = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(n / (256 << 20) * int64(time.Second)))
		w.Set(n, total)
	}
	w.Done(nil)
	w.Done(nil)
	same(t, out.String(), `writing m.gguf: 1.0 GiB of 10.0 GiB (10%), 256.0 MiB/s, ETA 36s
writing m.gguf: 3.0 GiB of 10.0 GiB (30%), 256.0 MiB/s, ETA 28s
wrote m.gguf: 10.0 GiB in 40s, 256.0 MiB/s
`)
	if n := len(lines(out.String())); n != 3 {
		t.Fatalf("%d lines", n)
	}

	// A failed write says nothing more (the caller reports the error).
	out.Reset()
	w = NewMode(&out, Lines, clk.now).Writing("x.gguf")
	w.Set(1, 100)
	w.Done(errors.New("disk full"))
	if out.Len() != 0 {
		t.Fatalf("%q", out.String())
	}
}
