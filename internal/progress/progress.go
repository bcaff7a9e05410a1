// Package progress shows the progress of long work on stderr: a model being written (fuze
// synth), a sweep's configurations, a wait for a server to load a model. On a terminal it is a
// bar redrawn in place (github.com/schollz/progressbar/v3); with NO_COLOR set, TERM=dumb, or
// when stderr is not a terminal (a pipe, a file, CI), it is one plain line per step, without
// escape codes. Times come from an injectable clock, so the plain lines are exact in tests.
package progress

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// Mode is how progress is shown.
type Mode int

const (
	// Lines: one plain line per step, no bar, no escape codes.
	Lines Mode = iota
	// Bars: a bar on the last line of a terminal, redrawn in place.
	Bars
)

// ModeOf is Bars when w is a terminal and neither NO_COLOR (any non-empty value) nor TERM=dumb
// is set; Lines otherwise. A writer that is not an *os.File (a buffer, a tee into a
// transcript) is not a terminal.
func ModeOf(w io.Writer) Mode {
	if os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return Lines
	}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return Bars
	}
	return Lines
}

// Console shares one stream between progress and the lines of a log: in Bars mode the bar
// stays on the last line, and log lines written through Writer appear above it.
type Console struct {
	mu      sync.Mutex
	w       io.Writer
	mode    Mode
	now     func() time.Time
	width   int                      // the terminal's columns (Bars)
	bar     *progressbar.ProgressBar // the bar on the last line; nil when none
	partial bool                     // the log's last write did not end its line
}

// New is a console on w in w's mode (ModeOf). now is the clock of elapsed times and ETAs
// (time.Now when nil).
func New(w io.Writer, now func() time.Time) *Console { return NewMode(w, ModeOf(w), now) }

// NewMode is a console on w in the given mode.
func NewMode(w io.Writer, mode Mode, now func() time.Time) *Console {
	if now == nil {
		now = time.Now
	}
	c := &Console{w: w, mode: mode, now: now, width: 80}
	if f, ok := w.(*os.File); ok && mode == Bars {
		if cols, _, err := term.GetSize(int(f.Fd())); err == nil && cols > 0 {
			c.width = cols
		}
	}
	return c
}

// Mode is the console's mode.
func (c *Console) Mode() Mode { return c.mode }

// Writer is the stream for log lines: writes are serialized with the progress, and in Bars
// mode the bar is taken off the last line while a line is written, then drawn again below it.
func (c *Console) Writer() io.Writer { return logWriter{c} }

type logWriter struct{ c *Console }

func (l logWriter) Write(p []byte) (int, error) {
	c := l.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bar != nil && !c.partial {
		c.bar.Clear()
	}
	n, err := c.w.Write(p)
	c.partial = len(p) > 0 && !bytes.HasSuffix(p, []byte("\n")) || len(p) == 0 && c.partial
	if c.bar != nil && !c.partial {
		c.bar.RenderBlank()
	}
	return n, err
}

// line writes one plain line (c.mu held).
func (c *Console) line(format string, args ...any) {
	if c.partial {
		io.WriteString(c.w, "\n")
		c.partial = false
	}
	fmt.Fprintf(c.w, format+"\n", args...)
}

// setBar makes b the bar on the last line, taking the previous one off (c.mu held).
func (c *Console) setBar(b *progressbar.ProgressBar) {
	if c.bar != nil && c.bar != b {
		c.bar.Clear()
	}
	c.bar = b
}

// keepBar leaves the bar where it is, as a line of the log, and ends its line (c.mu held).
func (c *Console) keepBar() {
	if c.bar != nil {
		io.WriteString(c.w, "\n")
		c.bar = nil
	}
}

// dropBar takes the bar off the last line (c.mu held).
func (c *Console) dropBar() { c.setBar(nil) }

// newBar is a bar on the console's stream: max < 0 is a spinner of unknown length. Bars never
// draw from a goroutine of their own (no spinner ticker): every draw happens under c.mu.
func (c *Console) newBar(max int64, opts ...progressbar.Option) *progressbar.ProgressBar {
	base := []progressbar.Option{
		progressbar.OptionSetWriter(c.w),
		progressbar.OptionSetWidth(20),
		progressbar.OptionSetPredictTime(false),
		progressbar.OptionSetElapsedTime(false),
		progressbar.OptionShowDescriptionAtLineEnd(),
		progressbar.OptionSetSpinnerChangeInterval(0),
		progressbar.OptionUseANSICodes(true),
	}
	return progressbar.NewOptions64(max, append(base, opts...)...)
}

// keepFinal draws a bar's last state, value of max with desc, as a line of the log. It is a new
// bar: a progressbar that reached its max draws nothing more.
func (c *Console) keepFinal(max, value int64, desc string, opts ...progressbar.Option) {
	b := c.newBar(max, append(opts, progressbar.OptionSetDescription(desc))...)
	c.setBar(b)
	b.Set64(value)
	if !b.IsFinished() {
		b.RenderBlank()
	}
	c.keepBar()
}

// fit shortens s so that a bar line (about reserve columns besides s) stays on one line of the
// terminal: a line that wraps cannot be redrawn in place.
func (c *Console) fit(s string, reserve int) string {
	room := max(c.width-reserve, 16)
	if utf8.RuneCountInString(s) <= room {
		return s
	}
	r := []rune(s)
	return string(r[:room-1]) + "…"
}

// Duration is d as time.Duration prints it, rounded to the second ("1m10s"), or to a tenth of
// a second under 10 s ("4.3s", "300ms", "0s").
func Duration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	if d < 10*time.Second {
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// Bytes is n in binary units with one decimal ("1.5 GiB"), as fuze synth prints sizes.
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n), -1
	for v >= unit && i < 4 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGTP"[i])
}
