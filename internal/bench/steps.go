// Package bench is the orchestration of `fuze bench` and `fuze stack … benchmark`: the lock
// on the repository, the step log, the profile × stack loop, and the benchmark run every stack
// shares (GPU inventory and selection, the driver from the stack registry, the run files, the
// engine, the baseline-vs-best table). The CLI parses flags and calls it.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/fuze-ai/fuze/internal/envfile"
	"github.com/fuze-ai/fuze/internal/knobs"
	"github.com/fuze-ai/fuze/internal/stack"
)

// exitInterrupted is the step rc of an interrupted step (the process exit status of Ctrl-C).
const exitInterrupted = 130

// OneLine keeps an error on a single line, as every console message is.
func OneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}

// Plan is what a bench run does after its set-up: every env file × stack as a step.
type Plan struct {
	EnvFiles []string // profiles, in order
	Stacks   []string // canonical stack names, in order
	Environ  []string // the process environment the profiles apply over
	// RunStack runs one stack's benchmark on one profile's knobs and returns its run CSV
	// (also with an error, once the file exists).
	RunStack func(ctx context.Context, cfg *knobs.Config, stack string) (csvPath string, err error)
	// RunServing runs one stack's serving levels on one profile's knobs (RunServing with the
	// CLI's streams); a profile with BENCH_SERVING=1 gets it after each stack's sweep. Nil:
	// never.
	RunServing func(ctx context.Context, cfg *knobs.Config, stack string) (csvPath string, err error)
}

// Run runs the plan's steps and returns the run CSVs produced, in order. A failing step is
// reported in steps and the loop goes on; Ctrl-C stops it. The error is a profile that
// cannot be parsed (a knobs.InvalidError). A profile with BENCH_SERVING=1 adds a serving step
// after each stack's benchmark step: its own step, so that a serving failure is reported for
// that stack while the sweep's run CSV is already on disk and collected.
func Run(ctx context.Context, steps *Steps, out io.Writer, p Plan) ([]string, error) {
	var runCSVs []string
	for _, path := range p.EnvFiles {
		fmt.Fprintf(out, "== ENV: %s\n", filepath.Base(path))
		file, err := envfile.ParseFile(path)
		if err != nil {
			return runCSVs, knobs.Invalid(err)
		}
		cfg := knobs.Resolve(p.Environ, knobs.Layer{Name: path, Vars: file.Map()})
		for _, st := range p.Stacks {
			if ctx.Err() != nil {
				return runCSVs, nil
			}
			step := st + ":" + strings.TrimSuffix(filepath.Base(path), ".env")
			var sweepErr error
			steps.Run(step+":benchmark", func() error {
				if err := cfg.Validate(); err != nil {
					return err
				}
				csvPath, err := p.RunStack(ctx, cfg, st)
				if csvPath != "" {
					runCSVs = append(runCSVs, csvPath)
				}
				sweepErr = err
				return err
			})
			if !wantServing(cfg, p) || ctx.Err() != nil || isUnavailable(sweepErr) {
				// Ctrl-C during the sweep stops here; a stack this machine lacks would only be
				// reported unavailable a second time.
				continue
			}
			steps.Run(step+":serving", func() error {
				_, err := p.RunServing(ctx, cfg, st)
				return err
			})
		}
	}
	return runCSVs, nil
}

// wantServing is whether the profile asks for serving levels. A profile whose knobs do not
// validate (BENCH_SERVING=yes included) failed the benchmark step, which reported why.
func wantServing(cfg *knobs.Config, p Plan) bool {
	if p.RunServing == nil || cfg.Validate() != nil {
		return false
	}
	on, err := cfg.Bool01("BENCH_SERVING")
	return err == nil && on
}

func isUnavailable(err error) bool {
	var unavailable *stack.UnavailableError
	return errors.As(err, &unavailable)
}

// Steps prints step start/end lines and records ts,step,rc,seconds rows.
type Steps struct {
	log  io.Writer
	file *os.File
	ts   string
	// Path is the step file; Failed, Total and Unavailable count the steps run so far.
	Path                       string
	Failed, Total, Unavailable int
}

func OpenSteps(log io.Writer, path, ts string) (*Steps, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	if _, err := fmt.Fprintln(f, "ts,step,rc,seconds"); err != nil {
		f.Close()
		return nil, err
	}
	return &Steps{log: log, file: f, Path: path, ts: ts}, nil
}

func (l *Steps) Run(name string, fn func() error) {
	fmt.Fprintf(l.log, "== [%s]\n", name)
	start := time.Now()
	err := fn()
	secs := int(time.Since(start).Round(time.Second).Seconds())
	rc := 0
	l.Total++
	var unavailable *stack.UnavailableError
	if errors.As(err, &unavailable) {
		// A stack this machine does not have: said, with the reason, but not a failure.
		l.Unavailable++
		fmt.Fprintf(l.log, "- [%s] unavailable (%ds): %s\n", name, secs, OneLine(err.Error()))
		fmt.Fprintf(l.file, "%s,%s,%d,%d\n", l.ts, name, rc, secs)
		return
	}
	if err != nil {
		rc = 1
		if errors.Is(err, context.Canceled) {
			rc = exitInterrupted
		}
		l.Failed++
		fmt.Fprintf(l.log, "✖ [%s] rc=%d (%ds): %s\n", name, rc, secs, OneLine(err.Error()))
	} else {
		fmt.Fprintf(l.log, "✔ [%s] done (%ds)\n", name, secs)
	}
	fmt.Fprintf(l.file, "%s,%s,%d,%d\n", l.ts, name, rc, secs)
}

func (l *Steps) Close() { l.file.Close() }

// lockRoot takes an exclusive lock on the root so that a second concurrent bench fails fast.
// The kernel drops the lock when the process ends, however it ends.
func Lock(root string) (func(), error) {
	dir := filepath.Join(root, "factory", "LLM", "refinery")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("root %s is not writable: %w", root, err)
	}
	path := filepath.Join(dir, ".fuze-bench.lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("root %s is not writable: %w", root, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		return nil, fmt.Errorf("another fuze bench is running on %s (lock %s held by pid %s)", root, path, strings.TrimSpace(string(holder)))
	}
	f.Truncate(0)
	fmt.Fprintf(f, "%d\n", os.Getpid())
	return func() {
		f.Truncate(0)
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
