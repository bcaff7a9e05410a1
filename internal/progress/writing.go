package progress

import (
	"fmt"
	"time"

	"github.com/schollz/progressbar/v3"
)

// Writing is the progress of writing a file of known size (fuze synth's model): the bytes
// written, the rate and the ETA. Its Set has the shape of gguf.Progress, so the writer feeds it.
//
// Lines mode prints a line at each tenth of the file and one when it is done:
//
//	writing m.gguf: 1.5 GiB of 15.0 GiB (10%), 250.0 MiB/s, ETA 54s
//	wrote m.gguf: 15.0 GiB in 1m1s, 250.0 MiB/s
type Writing struct {
	c        *Console
	what     string
	start    time.Time
	total    int64
	written  int64
	step     int64 // Lines: the last tenth printed
	bar      *progressbar.ProgressBar
	lastDraw time.Time
	done     bool
}

// redrawEvery bounds how often a bar is redrawn for a stream of small updates.
const redrawEvery = 100 * time.Millisecond

// Writing starts the progress of writing what (a file name).
func (c *Console) Writing(what string) *Writing {
	return &Writing{c: c, what: what, start: c.now()}
}

// Set reports written bytes of total.
func (p *Writing) Set(written, total int64) {
	c := p.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if p.done || total <= 0 {
		return
	}
	p.written, p.total = written, total
	now := c.now()
	switch c.mode {
	case Lines:
		if step := 10 * written / total; step > p.step && step < 10 {
			p.step = step
			c.line("writing %s: %s", p.what, p.status(now, true))
		}
	case Bars:
		if written >= total {
			return // Done draws the last state
		}
		if p.bar == nil {
			p.bar = c.newBar(total)
			c.setBar(p.bar)
		} else if now.Sub(p.lastDraw) < redrawEvery {
			return
		}
		p.lastDraw = now
		p.bar.Describe(c.fit(fmt.Sprintf("writing %s: %s", p.what, p.status(now, false)), 40))
		p.bar.Set64(written)
	}
}

// Done ends the progress: err is nil when the file is complete. The bar stays as the last
// state; a failure is left to the caller to say.
func (p *Writing) Done(err error) {
	c := p.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if p.done {
		return
	}
	p.done = true
	now := c.now()
	summary := fmt.Sprintf("wrote %s: %s in %s", p.what, Bytes(p.written), Duration(now.Sub(p.start)))
	if rate := p.rate(now); rate > 0 {
		summary += fmt.Sprintf(", %s/s", Bytes(int64(rate)))
	}
	switch c.mode {
	case Lines:
		if err == nil && p.total > 0 {
			c.line("%s", summary)
		}
	case Bars:
		if p.total <= 0 {
			return
		}
		if err != nil {
			summary = fmt.Sprintf("writing %s: stopped at %s of %s", p.what, Bytes(p.written), Bytes(p.total))
		}
		c.keepFinal(p.total, p.written, c.fit(summary, 40))
		p.bar = nil
	}
}

// rate is bytes per second so far (0 before any time has passed).
func (p *Writing) rate(now time.Time) float64 {
	if el := now.Sub(p.start); el > 0 {
		return float64(p.written) / el.Seconds()
	}
	return 0
}

// eta is "ETA 54s" from the rate so far ("ETA unknown" before there is one).
func (p *Writing) eta(now time.Time) string {
	rate := p.rate(now)
	if rate <= 0 {
		return "ETA unknown"
	}
	return "ETA " + Duration(time.Duration(float64(p.total-p.written)/rate*float64(time.Second)))
}

// status is "1.5 GiB of 15.0 GiB (10%), 250.0 MiB/s, ETA 54s" (without the percentage beside a
// bar, which shows it).
func (p *Writing) status(now time.Time, percent bool) string {
	s := fmt.Sprintf("%s of %s", Bytes(p.written), Bytes(p.total))
	if percent {
		s += fmt.Sprintf(" (%d%%)", 100*p.written/p.total)
	}
	if rate := p.rate(now); rate > 0 {
		s += fmt.Sprintf(", %s/s", Bytes(int64(rate)))
	}
	return s + ", " + p.eta(now)
}
