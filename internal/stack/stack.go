// Package stack defines what an inference stack driver provides (targets, candidate settings,
// one measurement) and runs the benchmark loop that is the same for every stack: baseline,
// sweep under the shared policy, one CSV row and one JSONL sample per attempt, flushed as
// measured, and the best configuration per (model, endpoint).
package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/fuze-ai/fuze/internal/gpu"
	"github.com/fuze-ai/fuze/internal/measure"
	"github.com/fuze-ai/fuze/internal/results"
	"github.com/fuze-ai/fuze/internal/sweep"
)

// Endpoint is one server slot pinned to one GPU, or to the CPU when GPU is nil.
type Endpoint struct {
	Suffix string   // CSV column "suffix": "A", "B", or the port when it is neither test port
	Addr   string   // host:port the stack's server listens on
	Unit   string   // CSV column "unit": the systemd unit, or "proc" for a process fuze supervises
	GPU    *gpu.GPU // nil: the CPU
}

// GPULabel is the normalised label of the endpoint's GPU, or "cpu".
func (e Endpoint) GPULabel() string {
	if e.GPU == nil {
		return gpu.CPULabel
	}
	return e.GPU.Label
}

// Target is one model to benchmark.
type Target struct {
	Model string // CSV base_model, as the stack names it (an Ollama tag, a GGUF alias…)
	Alias string // the one alias used in names and summaries
	// WeightBytes is the size of the model's weights (0: unknown), for the roofline.
	WeightBytes int64
}

// Candidate is one configuration to measure.
type Candidate struct {
	Label    string // CSV variant_label: base-as-is | optimized | published
	ModelTag string // CSV model_tag: what is actually requested
	// CSV columns with the values really used ("default" when the server decides).
	NumGPU, NumCtx, Batch, NumPredict string
}

// Labels of the CSV variant_label column.
const (
	LabelBaseline  = "base-as-is"
	LabelOptimized = "optimized"
	LabelPublished = "published"
)

// Driver is an inference stack. It knows its API, its servers and its settings; it has no
// loop, CSV code or process supervision of its own.
type Driver interface {
	// Name is the stack's name as written in file names and summaries (e.g. "ollama").
	Name() string
	// Targets lists the models to benchmark.
	Targets(ctx context.Context) ([]Target, error)
	// Baseline is the server's own default configuration for t on ep.
	Baseline(ctx context.Context, ep Endpoint, t Target) (Candidate, error)
	// Candidates are the settings to sweep, most promising first.
	Candidates(ctx context.Context, ep Endpoint, t Target) ([]Candidate, error)
	// Measure runs one attempt. Failures are returned as a Sample with a failure outcome.
	Measure(ctx context.Context, ep Endpoint, t Target, c Candidate) *measure.Sample
}

// Runner is a driver with per-run set-up: Setup starts whatever servers the endpoints need
// (one per selected GPU, or one on the CPU when there is none) and returns the endpoints;
// Close stops them all and must be safe to call after a failed Setup.
type Runner interface {
	Driver
	Setup(ctx context.Context, sel gpu.Selection) ([]Endpoint, error)
	Close(ctx context.Context)
}

// UnavailableError says a stack cannot run on this machine: its server is not installed, or
// not running where fuze was told to find it and fuze was not asked to start it. The
// orchestrator reports it with its reason and goes on; it is not a failed measurement.
type UnavailableError struct{ Err error }

func (e *UnavailableError) Error() string { return e.Err.Error() }
func (e *UnavailableError) Unwrap() error { return e.Err }

// Unavailable marks err as the stack being unavailable here.
func Unavailable(err error) error { return &UnavailableError{Err: err} }

// Publisher is implemented by drivers that can publish the best configuration as a model of
// its own (Ollama's PUBLISH_BEST); the engine measures what they publish as a "published" row.
type Publisher interface {
	Publish(ctx context.Context, ep Endpoint, t Target, best Candidate) (Candidate, bool)
}

// Outcome is the result for one (target, endpoint).
type Outcome struct {
	Target   Target
	Endpoint Endpoint
	Baseline *measure.Sample
	Best     *Candidate // nil when no optimized candidate worked
	BestTPS  float64
	BestRun  *measure.Sample
	Rows     int
}

// Engine runs a driver over its targets and endpoints.
type Engine struct {
	Driver    Driver
	Endpoints []Endpoint
	Policy    sweep.Policy
	Writer    *results.RunWriter
	// Repeat is how many measured requests each configuration gets (at least 1). The row
	// carries the median; a configuration counts as failed only when every repeat failed.
	Repeat int
	Log    io.Writer // progress and warnings (stderr)
	Now    func() time.Time
}

// Run benchmarks every target on every endpoint. It returns the outcomes measured so far and
// ctx's error when interrupted; rows already written are on disk either way.
func (e *Engine) Run(ctx context.Context) ([]Outcome, error) {
	targets, err := e.Driver.Targets(ctx)
	if err != nil {
		return nil, err
	}
	if len(targets) == 0 {
		fmt.Fprintf(e.Log, "! No models to benchmark for %s\n", e.Driver.Name())
		return nil, nil
	}
	var outcomes []Outcome
	for _, t := range targets {
		for _, ep := range e.Endpoints {
			o, err := e.runOne(ctx, t, ep)
			outcomes = append(outcomes, o)
			if err != nil {
				return outcomes, err
			}
		}
	}
	return outcomes, nil
}

func (e *Engine) runOne(ctx context.Context, t Target, ep Endpoint) (Outcome, error) {
	o := Outcome{Target: t, Endpoint: ep}
	fmt.Fprintf(e.Log, "=== Tuning on %s — base: %s (alias %s) ===\n", ep.Addr, t.Model, t.Alias)
	base, err := e.Driver.Baseline(ctx, ep, t)
	if err != nil {
		return o, err
	}
	o.Baseline, err = e.measureAndWrite(ctx, ep, t, base)
	o.Rows++
	if err != nil {
		return o, err
	}
	if err := ctx.Err(); err != nil {
		return o, err
	}
	cands, err := e.Driver.Candidates(ctx, ep, t)
	if err != nil {
		fmt.Fprintf(e.Log, "! %s: no candidates for %s on %s: %v\n", e.Driver.Name(), t.Model, ep.Addr, err)
		return o, nil
	}
	var writeErr error
	samples := map[Candidate]*measure.Sample{}
	res, err := sweep.Run(ctx, e.Policy, cands, func(ctx context.Context, c Candidate) float64 {
		if writeErr != nil {
			return 0
		}
		s, err := e.measureAndWrite(ctx, ep, t, c)
		o.Rows++
		if err != nil {
			writeErr = err
			return 0
		}
		samples[c] = s
		return s.DecodeTokensPerSec()
	})
	if writeErr != nil {
		return o, writeErr
	}
	if res.StopReason != "" {
		fmt.Fprintf(e.Log, "   stop: %s\n", res.StopReason)
	}
	if res.Best != nil {
		best := res.Best.Candidate
		o.Best, o.BestTPS, o.BestRun = &best, res.Best.TokensPerSec, samples[best]
		if base := o.Baseline.DecodeTokensPerSec(); base >= res.Best.TokensPerSec {
			fmt.Fprintf(e.Log, "✔  Best: the server's default (%s) at %.2f tok/s; no candidate beat it (best candidate %s at %.2f)\n",
				LabelBaseline, base, best.NumGPU, res.Best.TokensPerSec)
		} else {
			fmt.Fprintf(e.Log, "✔  Best so far: %s (num_gpu=%s) at %.2f tok/s\n", best.ModelTag, best.NumGPU, res.Best.TokensPerSec)
		}
		if p, ok := e.Driver.(Publisher); ok && err == nil {
			if pub, ok := p.Publish(ctx, ep, t, best); ok {
				if _, werr := e.measureAndWrite(ctx, ep, t, pub); werr != nil {
					return o, werr
				}
				o.Rows++
			}
		}
	} else if err == nil && len(cands) > 0 {
		fmt.Fprintf(e.Log, "!  No optimized configuration worked for %s on %s\n", t.Model, ep.Addr)
	}
	return o, err
}

// measureRepeated measures c Repeat times and returns the median successful sample, with
// every repeat's rate attached; the first failure when none succeeded.
func (e *Engine) measureRepeated(ctx context.Context, ep Endpoint, t Target, c Candidate) *measure.Sample {
	var ok []*measure.Sample
	var failed *measure.Sample
	var failures []string
	for i := 0; i < max(e.Repeat, 1); i++ {
		s := e.Driver.Measure(ctx, ep, t, c)
		if s == nil {
			s = &measure.Sample{Outcome: measure.ErrOther, Error: "driver returned no sample"}
		}
		if s.Failed() {
			failures = append(failures, s.Outcome+": "+s.Error)
			if failed == nil {
				failed = s
			}
			if s.Outcome == measure.ErrExited || ctx.Err() != nil {
				break // repeating against a dead server or after Ctrl-C measures nothing
			}
			continue
		}
		ok = append(ok, s)
	}
	if len(ok) == 0 {
		return failed
	}
	sort.SliceStable(ok, func(i, j int) bool { return ok[i].DecodeTokensPerSec() < ok[j].DecodeTokensPerSec() })
	median := ok[(len(ok)-1)/2] // lower median: a rate that was really measured
	if len(ok) > 1 || len(failures) > 0 {
		median.RepeatTPS = nil
		for _, s := range ok {
			median.RepeatTPS = append(median.RepeatTPS, s.DecodeTokensPerSec())
		}
	}
	for _, f := range failures {
		median.Notes = append(median.Notes, "a repeat failed: "+f)
	}
	return median
}

// measureAndWrite measures c and writes its row and sample. Only a failure to write is an
// error: a failed measurement is a 0.00 row.
func (e *Engine) measureAndWrite(ctx context.Context, ep Endpoint, t Target, c Candidate) (*measure.Sample, error) {
	s := e.measureRepeated(ctx, ep, t, c)
	if errors.Is(ctx.Err(), context.Canceled) && s.Outcome != measure.OK {
		s.Outcome, s.Error = measure.ErrCanceled, "interrupted"
	}
	e.roofline(ep, t, s)
	tps := s.DecodeTokensPerSec()
	row := results.Row{
		TS:           e.now(),
		Endpoint:     ep.Addr,
		Unit:         ep.Unit,
		Suffix:       ep.Suffix,
		BaseModel:    t.Model,
		VariantLabel: c.Label,
		ModelTag:     c.ModelTag,
		NumGPU:       c.NumGPU,
		NumCtx:       c.NumCtx,
		Batch:        c.Batch,
		NumPredict:   c.NumPredict,
		TokensPerSec: tps,
		GPULabel:     ep.GPULabel(),
	}
	if ep.GPU != nil {
		row.GPUName, row.GPUUUID, row.GPUMemMiB = ep.GPU.Name, ep.GPU.UUID, ep.GPU.MemoryMiB
	}
	if err := e.Writer.Write(row, s); err != nil {
		return s, fmt.Errorf("write result row: %w", err)
	}
	ng := c.NumGPU
	if ng == "" {
		ng = "default"
	}
	if s.Failed() {
		fmt.Fprintf(e.Log, "✖ [%s] %s %s num_gpu=%s -> 0.00 tok/s (%s: %s)\n", ep.Suffix, c.Label, c.ModelTag, ng, s.Outcome, s.Error)
	} else {
		spread := ""
		if lo, hi := s.Spread(); len(s.RepeatTPS) > 1 {
			spread = fmt.Sprintf(", median of %d: %.2f–%.2f", len(s.RepeatTPS), lo, hi)
		}
		decode := s.ServerDecodeDuration
		if decode == 0 && len(s.ChunkTimes) > 1 { // no server timing: the stream's span
			decode = s.ChunkTimes[len(s.ChunkTimes)-1] - s.ChunkTimes[0]
		}
		fmt.Fprintf(e.Log, "✔ [%s] %s %s num_gpu=%s -> %.2f tok/s (%d tokens, decode %s%s)\n", ep.Suffix, c.Label, c.ModelTag, ng, tps, s.ServerOutputTokens, decode.Round(time.Millisecond), spread)
	}
	if s.RooflineTPS > 0 && !s.Failed() {
		fmt.Fprintf(e.Log, "   roofline: %.2f tok/s (%s bandwidth / %.2f GB of weights): %.0f%% of it\n",
			s.RooflineTPS, ep.GPULabel(), float64(s.ModelBytes)/1e9, 100*s.RooflineShare)
	}
	for _, n := range s.Notes {
		fmt.Fprintf(e.Log, "! [%s] %s: %s\n", ep.Suffix, c.ModelTag, n)
	}
	return s, nil
}

// roofline fills the sample's memory-bandwidth bound. A rate above the bound cannot be a
// decode rate of this model on this GPU: it is flagged as a measurement error.
func (e *Engine) roofline(ep Endpoint, t Target, s *measure.Sample) {
	if ep.GPU == nil || t.WeightBytes <= 0 {
		return
	}
	bw, ok := gpu.PeakBandwidth(ep.GPU.Name)
	if !ok {
		return
	}
	s.ModelBytes = t.WeightBytes
	s.RooflineTPS = bw / float64(t.WeightBytes)
	if tps := s.DecodeTokensPerSec(); tps > 0 {
		s.RooflineShare = tps / s.RooflineTPS
		if s.RooflineShare > 1 {
			s.Notes = append(s.Notes, fmt.Sprintf("measurement error: %.2f tok/s is above the memory-bandwidth roofline of %.2f tok/s", tps, s.RooflineTPS))
		}
	}
}

func (e *Engine) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}
