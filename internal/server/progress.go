package server

import (
	"context"
	"time"
)

// WaitStatus is one report of a wait for a server: its readiness (WaitFor) or a request that
// makes it load a model (Loading).
type WaitStatus struct {
	Name     string        // the server, as its messages name it
	Elapsed  time.Duration // since the wait began
	LastLine string        // the server log's last non-empty line ("" when unknown)
	// Done is set on the last report of a wait; Err is then why it failed (nil: ready).
	Done bool
	Err  error
}

// WaitProgress receives the reports of waits for servers.
type WaitProgress func(WaitStatus)

type waitProgressKey struct{}

// WithWaitProgress returns a context whose waits for servers (WaitFor, WaitReady, Loading)
// report to f: once when the wait begins, about once a second while it lasts, and once when
// it ends. Drivers need not know: the context reaches them through Setup and Prepare.
func WithWaitProgress(ctx context.Context, f WaitProgress) context.Context {
	return context.WithValue(ctx, waitProgressKey{}, f)
}

func waitProgressOf(ctx context.Context) WaitProgress {
	f, _ := ctx.Value(waitProgressKey{}).(WaitProgress)
	return f
}

// reportEvery is how often a wait reports while it lasts.
const reportEvery = time.Second

// waitReporter reports one wait to a WaitProgress (a no-op without one).
type waitReporter struct {
	f         WaitProgress
	name      string
	start     time.Time
	last      time.Time
	lastLines func() []string
}

func newWaitReporter(ctx context.Context, name string, lastLines func() []string) *waitReporter {
	now := time.Now()
	r := &waitReporter{f: waitProgressOf(ctx), name: name, start: now, lastLines: lastLines}
	if r.f != nil {
		r.f(r.status(now))
		r.last = now
	}
	return r
}

func (r *waitReporter) status(now time.Time) WaitStatus {
	st := WaitStatus{Name: r.name, Elapsed: now.Sub(r.start)}
	if r.lastLines != nil {
		// Only when someone listens: a systemd unit's lines come from journalctl.
		if lines := r.lastLines(); len(lines) > 0 {
			st.LastLine = lines[len(lines)-1]
		}
	}
	return st
}

// tick reports the wait when a report is due.
func (r *waitReporter) tick() {
	if r.f == nil {
		return
	}
	if now := time.Now(); now.Sub(r.last) >= reportEvery {
		r.f(r.status(now))
		r.last = now
	}
}

// done reports the end of the wait.
func (r *waitReporter) done(err error) {
	if r.f == nil {
		return
	}
	st := r.status(time.Now())
	st.Done, st.Err = true, err
	r.f(st)
}

// Loading runs fn, a request that waits for the server to load a model (Ollama's warm-up),
// and reports the wait to ctx's WaitProgress like a readiness wait: its elapsed time and the
// last line of h's log (when h keeps one). Without a WaitProgress it only runs fn.
func Loading(ctx context.Context, name string, h any, fn func() error) error {
	if waitProgressOf(ctx) == nil {
		return fn()
	}
	var lastLines func() []string
	if l, ok := h.(interface{ LastLines(int) []string }); ok {
		lastLines = func() []string { return l.LastLines(1) }
	}
	r := newWaitReporter(ctx, name, lastLines)
	stop := make(chan struct{})
	ticked := make(chan struct{})
	go func() {
		defer close(ticked)
		t := time.NewTicker(reportEvery)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				r.tick()
			}
		}
	}()
	err := fn()
	close(stop)
	<-ticked // no report after the last one
	r.done(err)
	return err
}
