package bench

import (
	"sync"

	"github.com/fuze-ai/fuze/internal/engine"
	"github.com/fuze-ai/fuze/internal/progress"
	"github.com/fuze-ai/fuze/internal/stack"
)

// endpointSweeps gives every endpoint a progress line of its own ("[A] m-1: configuration 2
// of 6…", "[B] …"): endpoints measured in parallel interleave their events, and one Sweep
// follows one sweep at a time. Only in Lines mode: the console has one bar, so in Bars mode
// every event goes to the first Sweep.
type endpointSweeps struct {
	con   *progress.Console
	first *progress.Sweep

	mu     sync.Mutex
	byAddr map[string]*progress.Sweep
}

func newEndpointSweeps(con *progress.Console, first *progress.Sweep) *endpointSweeps {
	return &endpointSweeps{con: con, first: first, byAddr: map[string]*progress.Sweep{}}
}

// Report implements engine.Reporter.
func (e *endpointSweeps) Report(ev engine.Event) {
	e.sweep(ev).Report(ev)
}

func (e *endpointSweeps) sweep(ev engine.Event) *progress.Sweep {
	ep, ok := endpointOf(ev)
	if !ok || e.con.Mode() != progress.Lines {
		return e.first
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.byAddr[ep.Addr]
	if s == nil {
		s = e.first
		if len(e.byAddr) > 0 {
			s = e.con.Sweep()
		}
		e.byAddr[ep.Addr] = s
	}
	return s
}

// Close ends every endpoint's sweep.
func (e *endpointSweeps) Close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.first.Close()
	for _, s := range e.byAddr {
		s.Close()
	}
}

func endpointOf(ev engine.Event) (stack.Endpoint, bool) {
	switch ev := ev.(type) {
	case engine.TuningStarted:
		return ev.Endpoint, true
	case engine.ConfigurationStarted:
		return ev.Endpoint, true
	case engine.AttemptMeasured:
		return ev.Endpoint, true
	case engine.SweepStopped:
		return ev.Endpoint, true
	case engine.BestFound:
		return ev.Endpoint, true
	case engine.NoneWorked:
		return ev.Endpoint, true
	case engine.NoCandidates:
		return ev.Endpoint, true
	}
	return stack.Endpoint{}, false
}
