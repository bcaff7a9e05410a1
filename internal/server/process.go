// Package server supervises inference-server processes: it starts them in their own process
// group with their own environment and log file, waits for readiness with a deadline, notices
// early exits (reporting the last lines of the log), and stops the whole group with TERM then
// KILL so that no child (vLLM's engine, Ollama's runners) is left holding GPU memory.
package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Spec describes a server process to start.
type Spec struct {
	Name    string   // short name used in messages, e.g. "ollama-test-a"
	Path    string   // executable
	Args    []string // arguments after the executable
	Env     []string // complete environment (KEY=VALUE); nil means the current process's
	Dir     string   // working directory; "" means the current one
	LogPath string   // stdout and stderr are appended here; "" keeps only the in-memory tail
}

// Process is a running (or exited) server process.
type Process struct {
	spec    Spec
	cmd     *exec.Cmd
	logFile *os.File
	tail    *tailBuffer
	done    chan struct{}
	waitErr error
	stopMu  sync.Mutex
}

// ErrExited reports that a server process ended before it was asked to stop.
var ErrExited = errors.New("server process exited")

// Start launches spec in a new process group. ctx only bounds the start itself; the process
// lives until Stop (callers defer Stop right after Start).
func Start(spec Spec) (*Process, error) {
	if spec.Path == "" {
		return nil, fmt.Errorf("start %s: no executable given", spec.Name)
	}
	p := &Process{spec: spec, tail: newTailBuffer(64 << 10), done: make(chan struct{})}
	var out io.Writer = p.tail
	if spec.LogPath != "" {
		f, err := os.OpenFile(spec.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("start %s: log file: %w", spec.Name, err)
		}
		p.logFile = f
		out = io.MultiWriter(f, p.tail)
	}
	cmd := exec.Command(spec.Path, spec.Args...)
	cmd.Env = spec.Env
	cmd.Dir = spec.Dir
	cmd.Stdout = out
	cmd.Stderr = out
	// Own process group: Stop signals the group, reaching every child the server forks.
	// Pdeathsig: if fuze itself is killed, the kernel kills the server rather than leaving it
	// holding its port and GPU memory.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		p.closeLog()
		return nil, fmt.Errorf("start %s (%s): %w", spec.Name, spec.Path, err)
	}
	p.cmd = cmd
	go func() {
		p.waitErr = cmd.Wait()
		p.closeLog()
		close(p.done)
	}()
	return p, nil
}

func (p *Process) closeLog() {
	if p.logFile != nil {
		p.logFile.Close()
	}
}

// Name returns the spec's name.
func (p *Process) Name() string { return p.spec.Name }

// PID returns the process id (also the process group id).
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// ExitError describes how the process ended; valid after Done is closed.
func (p *Process) ExitError() error {
	select {
	case <-p.done:
		return p.exitError()
	default:
		return nil
	}
}

func (p *Process) exitError() error {
	state := "exited"
	if p.waitErr != nil {
		state = p.waitErr.Error()
	} else if p.cmd.ProcessState != nil {
		state = p.cmd.ProcessState.String()
	}
	last := p.LastLines(5)
	msg := fmt.Sprintf("%s (pid %d) %s", p.spec.Name, p.cmd.Process.Pid, state)
	if len(last) > 0 {
		msg += "; last log lines: " + strings.Join(last, " | ")
	}
	return fmt.Errorf("%w: %s", ErrExited, msg)
}

// LastLines returns up to n of the last non-empty lines the process printed.
func (p *Process) LastLines(n int) []string {
	lines := strings.Split(strings.TrimSpace(string(p.tail.Bytes())), "\n")
	var out []string
	for _, l := range lines {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return out
}

// FindInLog returns the submatches of the last match of re in the process's recent output,
// or nil. Servers started on port 0 report their real address this way.
func (p *Process) FindInLog(re *regexp.Regexp) []string {
	all := re.FindAllSubmatch(p.tail.Bytes(), -1)
	if len(all) == 0 {
		return nil
	}
	last := all[len(all)-1]
	out := make([]string, len(last))
	for i, m := range last {
		out[i] = string(m)
	}
	return out
}

// Stop sends SIGTERM to the process group, waits up to grace, then SIGKILLs the group.
// It returns once the leader has exited; stopping an exited process is not an error.
func (p *Process) Stop(grace time.Duration) error {
	p.stopMu.Lock()
	defer p.stopMu.Unlock()
	pgid := -p.cmd.Process.Pid
	select {
	case <-p.done:
		// The leader is gone, but children in its group may survive it.
		_ = syscall.Kill(pgid, syscall.SIGKILL)
		return nil
	default:
	}
	_ = syscall.Kill(pgid, syscall.SIGTERM)
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-p.done:
	case <-timer.C:
		_ = syscall.Kill(pgid, syscall.SIGKILL)
		<-p.done
	}
	// Children that ignored TERM must not outlive the server.
	_ = syscall.Kill(pgid, syscall.SIGKILL)
	return nil
}

// WaitReady polls probe every interval until it succeeds, the process exits, the timeout
// passes or ctx is cancelled. Errors name the server and include its last log lines.
func (p *Process) WaitReady(ctx context.Context, timeout, interval time.Duration, probe func(context.Context) error) error {
	return WaitFor(ctx, p.spec.Name, timeout, interval, probe, p.ExitError, func() []string { return p.LastLines(3) })
}

// PermanentError is returned by a readiness probe that knows waiting longer cannot help (the
// port speaks another protocol, nothing will ever listen): WaitFor returns it at once.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent marks a probe error as one that waiting cannot cure.
func Permanent(err error) error { return &PermanentError{Err: err} }

// WaitFor is the readiness loop of every server: probe every interval (each probe bounded by
// the interval, at least a second) until it succeeds; stop early when exited reports the
// server's death (its error is returned), when the probe returns a PermanentError, or when ctx
// is cancelled; after timeout, an error naming the server, the last probe error and lastLines.
// exited and lastLines may be nil (a server fuze did not start). The wait is reported to ctx's
// WaitProgress (WithWaitProgress), if any.
func WaitFor(ctx context.Context, name string, timeout, interval time.Duration, probe func(context.Context) error, exited func() error, lastLines func() []string) (waitErr error) {
	r := newWaitReporter(ctx, name, lastLines)
	defer func() { r.done(waitErr) }()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		probeCtx, probeCancel := context.WithTimeout(ctx, max(interval, time.Second))
		err := probe(probeCtx)
		probeCancel()
		if err == nil {
			return nil
		}
		var permanent *PermanentError
		if errors.As(err, &permanent) {
			return permanent.Err
		}
		if exited != nil {
			if exit := exited(); exit != nil {
				return exit
			}
		}
		select {
		case <-ctx.Done():
			if cause := context.Cause(ctx); errors.Is(cause, context.Canceled) {
				return cause
			}
			msg := fmt.Sprintf("%s not ready after %s: %v", name, timeout, err)
			if lastLines != nil {
				if last := lastLines(); len(last) > 0 {
					msg += "; last log lines: " + strings.Join(last, " | ")
				}
			}
			return errors.New(msg)
		case <-ticker.C:
			r.tick()
		}
	}
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func newTailBuffer(max int) *tailBuffer { return &tailBuffer{max: max} }

func (t *tailBuffer) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if over := len(t.buf) - t.max; over > 0 {
		// Cut at a line boundary so LastLines never returns half a line.
		cut := over
		if i := bytes.IndexByte(t.buf[over:], '\n'); i >= 0 {
			cut = over + i + 1
		}
		t.buf = append([]byte(nil), t.buf[cut:]...)
	}
	return len(b), nil
}

func (t *tailBuffer) Bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]byte(nil), t.buf...)
}
