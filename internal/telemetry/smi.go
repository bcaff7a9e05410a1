package telemetry

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fuze-ai/fuze/internal/gpu"
)

// Roles of the columns fuze asks nvidia-smi for.
const (
	colTime = iota
	colPower
	colSMClock
	colMemClock
	colUtilGPU
	colUtilMem
	colMemUsed
	colReasons
	numCols
)

// fieldChoices are, per column, the nvidia-smi query fields in order of preference: the first
// one `nvidia-smi --help-query-gpu` lists is used. power.draw.instant is the instantaneous
// board power; power.draw is, on Ampere and newer, a one-second average, which would smear
// the edges of a sub-second window. clocks_event_reasons.* was clocks_throttle_reasons.* on
// drivers before 535.
var fieldChoices = [numCols][]string{
	colTime:     {"timestamp"},
	colPower:    {"power.draw.instant", "power.draw"},
	colSMClock:  {"clocks.sm"},
	colMemClock: {"clocks.mem"},
	colUtilGPU:  {"utilization.gpu"},
	colUtilMem:  {"utilization.memory"},
	colMemUsed:  {"memory.used"},
	colReasons:  {"clocks_event_reasons.active", "clocks_throttle_reasons.active"},
}

// fallbackFields are asked for when --help-query-gpu cannot be read: fields every driver
// since long before Ampere knows (no throttle reasons: their name changed in 535).
var fallbackFields = [numCols]string{
	colTime: "timestamp", colPower: "power.draw", colSMClock: "clocks.sm", colMemClock: "clocks.mem",
	colUtilGPU: "utilization.gpu", colUtilMem: "utilization.memory", colMemUsed: "memory.used",
}

// queryFields picks the query fields from the output of `nvidia-smi --help-query-gpu`
// (which lists each field as "name"). A column no listed field serves is "" (not asked).
func queryFields(help []byte) [numCols]string {
	var out [numCols]string
	for c, choices := range fieldChoices {
		for _, f := range choices {
			if bytes.Contains(help, []byte(`"`+f+`"`)) {
				out[c] = f
				break
			}
		}
	}
	return out
}

// fieldList is the --query-gpu argument: the chosen fields, in column order, without the
// columns not asked for; cols maps each position of a line to its column.
func fieldList(fields [numCols]string) (arg string, cols []int) {
	var names []string
	for c, f := range fields {
		if f != "" {
			names = append(names, f)
			cols = append(cols, c)
		}
	}
	return strings.Join(names, ","), cols
}

// smiTimeLayout is nvidia-smi's timestamp field (local time, milliseconds).
const smiTimeLayout = "2006/01/02 15:04:05.000"

// parseLine parses one line of the stream (the columns cols, in order). A line whose
// timestamp is missing or unreadable is stamped arrived. ok is false for a line that is not
// a sample (an error message, a short line).
func parseLine(line string, cols []int, arrived time.Time) (Point, bool) {
	f := strings.Split(strings.TrimSpace(line), ",")
	if len(f) != len(cols) {
		return Point{}, false
	}
	p := Point{T: arrived, PowerW: math.NaN(), SMClockMHz: math.NaN(), MemClockMHz: math.NaN(),
		UtilGPU: math.NaN(), UtilMem: math.NaN(), MemUsedMiB: math.NaN()}
	numbers := 0
	for i, c := range cols {
		v := strings.TrimSpace(f[i])
		if v == "N/A" || strings.HasPrefix(v, "[") && strings.HasSuffix(v, "]") {
			continue
		}
		switch c {
		case colTime:
			if t, err := time.ParseInLocation(smiTimeLayout, v, time.Local); err == nil {
				p.T = t
			}
		case colReasons:
			if r, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(v), "0x"), 16, 64); err == nil {
				p.Reasons, p.HasReasons = r, true
			}
		default:
			x, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return Point{}, false // not a sample: a message that happens to have commas
			}
			numbers++
			switch c {
			case colPower:
				p.PowerW = x
			case colSMClock:
				p.SMClockMHz = x
			case colMemClock:
				p.MemClockMHz = x
			case colUtilGPU:
				p.UtilGPU = x
			case colUtilMem:
				p.UtilMem = x
			case colMemUsed:
				p.MemUsedMiB = x
			}
		}
	}
	return p, numbers > 0 || p.HasReasons
}

// ring keeps the last len(buf) points.
type ring struct {
	buf   []Point
	next  int   // where the next point goes
	total int64 // points ever added
}

func newRing(n int) *ring { return &ring{buf: make([]Point, max(n, 2))} }

func (r *ring) add(p Point) {
	r.buf[r.next] = p
	r.next = (r.next + 1) % len(r.buf)
	r.total++
}

func (r *ring) len() int { return int(min(r.total, int64(len(r.buf)))) }

// at is the i-th oldest point kept.
func (r *ring) at(i int) Point {
	start := 0
	if r.total > int64(len(r.buf)) {
		start = r.next
	}
	return r.buf[(start+i)%len(r.buf)]
}

func (r *ring) last() (Point, bool) {
	if r.total == 0 {
		return Point{}, false
	}
	return r.at(r.len() - 1), true
}

// around copies the points of [t0, t1] with the last one before t0 and the first one after
// t1; lost reports that points of the window were overwritten (the window is longer than the
// ring holds).
func (r *ring) around(t0, t1 time.Time) (ps []Point, lost bool) {
	n := r.len()
	first := n // the first point at or after t0
	for i := n - 1; i >= 0; i-- {
		if r.at(i).T.Before(t0) {
			break
		}
		first = i
	}
	from := max(first-1, 0)
	lost = first == 0 && r.total > int64(len(r.buf))
	for i := from; i < n; i++ {
		p := r.at(i)
		ps = append(ps, p)
		if p.T.After(t1) {
			break
		}
	}
	return ps, lost
}

// stream is one nvidia-smi -lms process for one GPU, its samples in a ring.
type stream struct {
	uuid     string
	interval time.Duration
	fields   string

	mu      sync.Mutex
	ring    *ring
	changed chan struct{} // closed and replaced whenever a point arrives or the process ends
	done    bool
	exitErr string
	badLine string // the first line that was not a sample
	wait    chan struct{}
}

// startStream starts `nvidia-smi --query-gpu=… -lms N -i uuid` (through command) and reads
// its samples until ctx ends or the process exits.
func startStream(ctx context.Context, command func(context.Context, string, ...string) *exec.Cmd, runner gpu.Runner,
	uuid string, interval time.Duration, capacity int, now func() time.Time) (*stream, error) {
	fields := fallbackFields
	hctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	help, err := runner.Output(hctx, "nvidia-smi", "--help-query-gpu")
	cancel()
	if err == nil {
		if f := queryFields(help); f[colPower] != "" {
			fields = f
		}
	} else if errors.Is(err, exec.ErrNotFound) {
		return nil, errors.New("nvidia-smi not found")
	}
	arg, cols := fieldList(fields)
	ms := max(interval.Milliseconds(), 1)
	cmd := command(ctx, "nvidia-smi", "--query-gpu="+arg, "--format=csv,noheader,nounits", "-lms", strconv.FormatInt(ms, 10), "-i", uuid)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr tail
	cmd.Stderr = &stderr
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start nvidia-smi: %w", err)
	}
	s := &stream{uuid: uuid, interval: time.Duration(ms) * time.Millisecond, fields: arg,
		ring: newRing(capacity), changed: make(chan struct{}), wait: make(chan struct{})}
	go func() {
		defer close(s.wait)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			p, ok := parseLine(line, cols, now())
			s.mu.Lock()
			if ok {
				s.ring.add(p)
				s.notify()
			} else if s.badLine == "" && strings.TrimSpace(line) != "" {
				s.badLine = strings.TrimSpace(line)
			}
			s.mu.Unlock()
		}
		werr := cmd.Wait()
		s.mu.Lock()
		defer s.mu.Unlock()
		s.done = true
		msg := s.badLine
		if msg == "" {
			msg = stderr.first()
		}
		switch {
		case ctx.Err() != nil:
			s.exitErr = "stopped"
		case werr != nil && msg != "":
			s.exitErr = fmt.Sprintf("nvidia-smi exited (%v): %s", werr, msg)
		case werr != nil:
			s.exitErr = fmt.Sprintf("nvidia-smi exited (%v)", werr)
		case msg != "":
			s.exitErr = "nvidia-smi exited: " + msg
		default:
			s.exitErr = "nvidia-smi exited"
		}
		s.notify()
	}()
	return s, nil
}

// notify wakes the waiters (s.mu held).
func (s *stream) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// waitFor waits until cond (called with s.mu held) holds, the process has ended or timeout
// passed; it reports whether cond held.
func (s *stream) waitFor(cond func() bool, timeout time.Duration) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		if cond() {
			s.mu.Unlock()
			return true
		}
		if s.done {
			s.mu.Unlock()
			return false
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			return false
		}
	}
}

// ended is why the stream stopped ("" while it runs).
func (s *stream) ended() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.done {
		return ""
	}
	return s.exitErr
}

// tail keeps the first KiB written to it (nvidia-smi's error message).
type tail struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if room := 1024 - len(t.buf); room > 0 {
		t.buf = append(t.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (t *tail) first() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, l := range strings.Split(string(t.buf), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	return ""
}

var _ io.Writer = (*tail)(nil)
