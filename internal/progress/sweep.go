package progress

import (
	"fmt"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/fuze-ai/fuze/internal/engine"
	"github.com/fuze-ai/fuze/internal/server"
)

// Sweep is an engine.Reporter that shows where a sweep is: configuration i of N, the time
// elapsed since the model's tuning began, and an ETA from the durations of the configurations
// measured so far (their mean × the configurations left, less the current one's time so far).
// Its Wait method (a server.WaitProgress) shows waits for a server: elapsed and the server
// log's last line. It renders only progress; the engine's results stay the text reporter's.
//
// Lines mode prints one line per step:
//
//	[A] m-1: baseline (the server's default), elapsed 0s
//	[A] m-1: configuration 1 of 2, elapsed 3s, ETA 6s
//	waiting for llama-server A: 0s; log: load_tensors: loading model
//	llama-server A ready after 14s
//	[A] m-1: done, 2 of 2 configurations measured, elapsed 9s
//
// (a wait also prints a line every 10 s while it lasts). Bars mode shows the same words beside
// a bar of the configurations measured, refreshed every second.
type Sweep struct {
	c *Console

	active    bool // between TuningStarted and the sweep's end
	label     string
	start     time.Time // the model's tuning began
	cfgStart  time.Time
	running   bool // a configuration is being measured
	durations []time.Duration
	index     int // the candidate being measured, 1..total; 0 for the baseline
	total     int
	measured  int // candidates measured
	published bool
	bar       *progressbar.ProgressBar
	barMax    int64

	wait       *server.WaitStatus // the wait in progress (nil when none)
	waitBucket time.Duration      // Lines: the last 10-s step of the wait printed

	stop chan struct{}
}

// waitLineEvery is how often Lines mode prints a wait that lasts.
const waitLineEvery = 10 * time.Second

// Sweep is the progress of the engine's sweeps on c. Close it when the run ends.
func (c *Console) Sweep() *Sweep {
	s := &Sweep{c: c, stop: make(chan struct{})}
	if c.mode == Bars {
		go s.refresh(time.Second)
	}
	return s
}

// refresh redraws the bar every interval, so that elapsed times and the ETA move while a
// configuration runs.
func (s *Sweep) refresh(interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.c.mu.Lock()
			s.draw()
			s.c.mu.Unlock()
		}
	}
}

// Close ends the sweep in progress and stops refreshing.
func (s *Sweep) Close() {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	select {
	case <-s.stop:
		return
	default:
		close(s.stop)
	}
	s.end()
	s.wait = nil
	s.c.dropBar()
	s.bar = nil
}

// Report implements engine.Reporter.
func (s *Sweep) Report(ev engine.Event) {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	switch ev := ev.(type) {
	case engine.TuningStarted:
		s.end()
		name := ev.Target.Alias
		if name == "" {
			name = ev.Target.Model
		}
		s.active, s.label, s.start = true, fmt.Sprintf("[%s] %s", ev.Endpoint.Suffix, name), now
		s.running, s.durations, s.index, s.total, s.measured, s.published = false, nil, 0, 0, 0, false
	case engine.ConfigurationStarted:
		s.running, s.cfgStart = true, now
		s.index, s.published = ev.Index, ev.Published
		if ev.Total > 0 {
			s.total = ev.Total
		}
		if c.mode == Lines {
			c.line("%s", s.describe(now))
		}
		s.draw()
	case engine.AttemptMeasured:
		if !s.running {
			return
		}
		s.running = false
		s.durations = append(s.durations, now.Sub(s.cfgStart))
		if s.index > 0 {
			s.measured++
		}
		if s.published && !s.active {
			s.dropSpinner()
			return
		}
		s.draw()
	case engine.BestFound, engine.NoneWorked, engine.NoCandidates:
		s.end()
	}
}

// end closes the current model's sweep with its last state (c.mu held).
func (s *Sweep) end() {
	if !s.active {
		return
	}
	s.active = false
	c := s.c
	now := c.now()
	final := fmt.Sprintf("%s: done, %d of %d configurations measured, elapsed %s", s.label, s.measured, s.total, Duration(now.Sub(s.start)))
	switch {
	case c.mode == Lines:
		c.line("%s", final)
	case s.bar != nil && s.barMax > 0:
		c.keepFinal(s.barMax, int64(s.measured), c.fit(final, 40), progressbar.OptionShowCount())
		s.bar = nil
	default:
		s.dropSpinner()
		c.line("%s", final)
	}
}

// describe is the state of the sweep: "[A] m-1: configuration 2 of 6, elapsed 1m10s, ETA 3m".
func (s *Sweep) describe(now time.Time) string {
	switch {
	case s.published:
		return fmt.Sprintf("%s: the published best, elapsed %s", s.label, Duration(now.Sub(s.start)))
	case s.index == 0:
		return fmt.Sprintf("%s: baseline (the server's default), elapsed %s", s.label, Duration(now.Sub(s.start)))
	}
	d := fmt.Sprintf("%s: configuration %d of %d, elapsed %s, ", s.label, s.index, s.total, Duration(now.Sub(s.start)))
	if len(s.durations) == 0 {
		return d + "ETA unknown"
	}
	var sum time.Duration
	for _, x := range s.durations {
		sum += x
	}
	left := sum / time.Duration(len(s.durations)) * time.Duration(s.total-s.index+1)
	if s.running {
		left -= now.Sub(s.cfgStart)
	}
	return d + "ETA " + Duration(left)
}

// Wait implements server.WaitProgress.
func (s *Sweep) Wait(st server.WaitStatus) {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mode == Lines {
		switch {
		case st.Done && st.Err == nil:
			c.line("%s ready after %s", st.Name, Duration(st.Elapsed))
		case st.Done:
			c.line("%s not ready after %s", st.Name, Duration(st.Elapsed))
		case s.wait == nil || st.Name != s.wait.Name:
			s.waitBucket = 0
			c.line("waiting for %s: %s", st.Name, waitDetail(st))
		case st.Elapsed/waitLineEvery > s.waitBucket:
			s.waitBucket = st.Elapsed / waitLineEvery
			c.line("waiting for %s: %s", st.Name, waitDetail(st))
		}
	}
	if st.Done {
		s.wait = nil
		if c.mode == Bars && !s.active && !s.running {
			s.dropSpinner()
			return
		}
	} else {
		s.wait = &st
	}
	s.draw()
}

// waitDetail is "12s; log: <the log's last line>".
func waitDetail(st server.WaitStatus) string {
	d := Duration(st.Elapsed)
	if line := strings.TrimSpace(st.LastLine); line != "" {
		d += "; log: " + line
	}
	return d
}

// draw shows the state on the bar (Bars mode; c.mu held): a bar of the configurations
// measured while candidates run, a spinner for the baseline, the published best or a wait.
func (s *Sweep) draw() {
	c := s.c
	if c.mode != Bars {
		return
	}
	now := c.now()
	var parts []string
	if s.running || s.active {
		parts = append(parts, s.describe(now))
	}
	if s.wait != nil {
		parts = append(parts, "waiting for "+s.wait.Name+": "+waitDetail(*s.wait))
	}
	if len(parts) == 0 {
		return
	}
	var max int64 = -1
	if s.active && s.total > 0 && !s.published {
		max = int64(s.total)
	}
	if s.bar == nil || s.barMax != max || s.bar.IsFinished() { // a finished bar draws nothing more
		opts := []progressbar.Option{}
		if max > 0 {
			opts = append(opts, progressbar.OptionShowCount())
		}
		s.bar, s.barMax = c.newBar(max, opts...), max
		c.setBar(s.bar)
	}
	s.bar.Describe(c.fit(strings.Join(parts, " · "), 40))
	if max > 0 {
		s.bar.Set(s.measured)
	}
}

// dropSpinner takes the bar off the terminal (c.mu held).
func (s *Sweep) dropSpinner() {
	if s.bar != nil {
		s.c.dropBar()
		s.bar = nil
	}
}
