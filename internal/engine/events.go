package engine

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/fuze-ai/fuze/internal/measure"
	"github.com/fuze-ai/fuze/internal/stack"
	"github.com/fuze-ai/fuze/internal/stats"
)

// Event is something the engine did or saw. Reporters render events; tests assert them.
type Event interface{ Kind() string }

// NoTargets: the driver found no model to benchmark.
type NoTargets struct{ Stack string }

// TuningStarted: a model's baseline and sweep begin on an endpoint.
type TuningStarted struct {
	Endpoint stack.Endpoint
	Target   stack.Target
}

// NoCandidates: the driver could not list the configurations to sweep.
type NoCandidates struct {
	Stack    string
	Endpoint stack.Endpoint
	Target   stack.Target
	Err      error
}

// ConfigurationStarted: the engine begins a configuration (its server prepared, the warm-up,
// then its repeats); AttemptMeasured follows when its row is written. Index is the candidate's
// place in the sweep, 1 to Total. The baseline (Baseline), measured before the candidates are
// listed, and the published best (Published), measured after the sweep, have Index and Total 0.
type ConfigurationStarted struct {
	Endpoint            stack.Endpoint
	Target              stack.Target
	Candidate           stack.Candidate
	Index, Total        int
	Baseline, Published bool
}

// AttemptMeasured: a configuration was measured (all its repeats) and its row written.
type AttemptMeasured struct {
	Endpoint  stack.Endpoint
	Target    stack.Target
	Candidate stack.Candidate
	Sample    *measure.Sample
	Metrics   measure.Metrics
}

// SweepStopped: the sweep policy stopped before the last candidate.
type SweepStopped struct {
	Endpoint stack.Endpoint
	Target   stack.Target
	Reason   string
}

// BestFound: the best configuration of a sweep, or the server's default when the sweep's best
// did not significantly beat it (DefaultIsBest).
type BestFound struct {
	Endpoint             stack.Endpoint
	Target               stack.Target
	Best                 stack.Candidate
	BestTPS, BaselineTPS float64
	DefaultIsBest        bool
	// Comparison is Best's repeats against the baseline's (nil when the baseline failed or is
	// a measurement error: then Best replaces it without a test).
	Comparison *stats.Comparison
}

// NoneWorked: no candidate of the sweep produced a measurement.
type NoneWorked struct {
	Endpoint stack.Endpoint
	Target   stack.Target
}

// RunFinished: every endpoint is done (or the run was stopped); how long it took.
type RunFinished struct{ Timing RunTiming }

func (RunFinished) Kind() string          { return "run_finished" }
func (NoTargets) Kind() string            { return "no_targets" }
func (TuningStarted) Kind() string        { return "tuning_started" }
func (NoCandidates) Kind() string         { return "no_candidates" }
func (ConfigurationStarted) Kind() string { return "configuration_started" }
func (AttemptMeasured) Kind() string      { return "attempt_measured" }
func (SweepStopped) Kind() string         { return "sweep_stopped" }
func (BestFound) Kind() string            { return "best_found" }
func (NoneWorked) Kind() string           { return "none_worked" }

// Reporter receives the engine's events.
type Reporter interface{ Report(Event) }

// ReporterFunc adapts a function to a Reporter.
type ReporterFunc func(Event)

func (f ReporterFunc) Report(ev Event) { f(ev) }

// Reporters fans events out to several reporters (nil ones are skipped).
func Reporters(rs ...Reporter) Reporter {
	return ReporterFunc(func(ev Event) {
		for _, r := range rs {
			if r != nil {
				r.Report(ev)
			}
		}
	})
}

// TextReporter renders events as the console lines of the original (✔/✖, roofline, notes).
// It is safe for concurrent use: endpoints measured in parallel report from their own
// goroutines, and an event's lines (an attempt, its latency and roofline lines) stay together;
// every line about one endpoint carries its [A]/[B]/[A+B] prefix.
func TextReporter(w io.Writer) Reporter {
	var mu sync.Mutex
	return ReporterFunc(func(ev Event) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case NoTargets:
			fmt.Fprintf(w, "! No models to benchmark for %s\n", ev.Stack)
		case TuningStarted:
			fmt.Fprintf(w, "=== Tuning on %s — base: %s (alias %s) ===\n", ev.Endpoint.Addr, ev.Target.Model, ev.Target.Alias)
		case NoCandidates:
			fmt.Fprintf(w, "! %s: no candidates for %s on %s: %v\n", ev.Stack, ev.Target.Model, ev.Endpoint.Addr, ev.Err)
		case AttemptMeasured:
			writeAttempt(w, ev)
		case SweepStopped:
			fmt.Fprintf(w, "   [%s] stop: %s\n", ev.Endpoint.Suffix, ev.Reason)
		case BestFound:
			switch cmp := ev.Comparison; {
			case ev.DefaultIsBest && cmp != nil && !cmp.Significant:
				fmt.Fprintf(w, "✔ [%s] Best: the server's default (%s) at %.2f tok/s; no candidate beat it significantly (best candidate %s at %.2f: %s)\n",
					ev.Endpoint.Suffix, stack.LabelBaseline, ev.BaselineTPS, ev.Best.NumGPU, ev.BestTPS, cmp)
				if cmp.Note != "" {
					fmt.Fprintf(w, "   %s\n", cmp.Note)
				}
			case ev.DefaultIsBest:
				fmt.Fprintf(w, "✔ [%s] Best: the server's default (%s) at %.2f tok/s; no candidate beat it (best candidate %s at %.2f)\n",
					ev.Endpoint.Suffix, stack.LabelBaseline, ev.BaselineTPS, ev.Best.NumGPU, ev.BestTPS)
			default:
				fmt.Fprintf(w, "✔ [%s] Best so far: %s (num_gpu=%s) at %.2f tok/s\n", ev.Endpoint.Suffix, ev.Best.ModelTag, ev.Best.NumGPU, ev.BestTPS)
			}
		case NoneWorked:
			fmt.Fprintf(w, "! [%s] No optimized configuration worked for %s on %s\n", ev.Endpoint.Suffix, ev.Target.Model, ev.Endpoint.Addr)
		case RunFinished:
			// One endpoint has nothing to compare: the line is for two or more.
			if len(ev.Timing.Endpoints) > 1 {
				fmt.Fprintf(w, "== %s\n", ev.Timing)
			}
		default:
			tuneText(w, ev)
		}
	})
}

func writeAttempt(w io.Writer, ev AttemptMeasured) {
	s, c, ep := ev.Sample, ev.Candidate, ev.Endpoint
	ng := c.NumGPU
	if ng == "" {
		ng = "default"
	}
	if s.Failed() {
		fmt.Fprintf(w, "✖ [%s] %s %s num_gpu=%s -> 0.00 tok/s (%s: %s)\n", ep.Suffix, c.Label, c.ModelTag, ng, s.Outcome, s.Error)
	} else {
		spread := ""
		if lo, hi := s.Spread(); len(s.RepeatTPS) > 1 {
			spread = fmt.Sprintf(", median of %d: %.2f–%.2f", len(s.RepeatTPS), lo, hi)
		}
		var decode time.Duration // the client's: first to last token arrival
		if len(s.ChunkTimes) > 1 {
			decode = s.ChunkTimes[len(s.ChunkTimes)-1] - s.ChunkTimes[0]
		}
		fmt.Fprintf(w, "✔ [%s] %s %s num_gpu=%s -> %.2f tok/s (%d tokens, decode %s%s)\n", ep.Suffix, c.Label, c.ModelTag, ng, ev.Metrics.DecodeTPS, outputTokens(s), decode.Round(time.Millisecond), spread)
		fmt.Fprintf(w, "   %s\n", latencyLine(s, ev.Metrics))
	}
	if s.RooflineTPS > 0 && !s.Failed() {
		fmt.Fprintf(w, "   roofline: %.2f tok/s (%s bandwidth / %.2f GB read per token): %.0f%% of it\n",
			s.RooflineTPS, ep.GPULabel(), float64(s.ModelBytes)/1e9, 100*s.RooflineShare)
	}
	for _, n := range s.Notes {
		fmt.Fprintf(w, "! [%s] %s: %s\n", ep.Suffix, c.ModelTag, n)
	}
}

// latencyLine is what else the client saw of the median request, and the server's own decode
// rate beside the client's (flagged when they differ by more than measure.RatioTolerance).
func latencyLine(s *measure.Sample, m measure.Metrics) string {
	ms := func(d time.Duration) string { return d.Round(time.Millisecond).String() }
	line := fmt.Sprintf("ttft %s, e2e %s", ms(m.TTFT), ms(m.E2E))
	if m.PrefillTPS > 0 {
		line += fmt.Sprintf(", prefill %.1f tok/s", m.PrefillTPS)
	}
	if s.ServerLoadDuration > 0 {
		line += ", load " + ms(s.ServerLoadDuration)
	}
	if m.ServerDecodeTPS > 0 {
		line += fmt.Sprintf("; server timer %.2f tok/s (server/client %.3f", m.ServerDecodeTPS, m.ServerClientRatio)
		if m.TimerDisagrees {
			line += fmt.Sprintf(": differs by more than %.0f%%", 100*measure.RatioTolerance)
		}
		line += ")"
	}
	if et := energyText(s, m); et != "" {
		line += "; " + et
	}
	return line
}

// JSONReporter writes one JSON object per event ({"event": kind, ...fields}), for programs
// that follow a run (`--progress json`).
func JSONReporter(w io.Writer) Reporter {
	var mu sync.Mutex
	enc := json.NewEncoder(w)
	return ReporterFunc(func(ev Event) {
		line := map[string]any{"event": ev.Kind()}
		if tl := tuneJSON(ev); tl != nil {
			line = tl
		}
		switch ev := ev.(type) {
		case NoTargets:
			line["stack"] = ev.Stack
		case TuningStarted:
			line["endpoint"], line["model"], line["alias"] = ev.Endpoint.Addr, ev.Target.Model, ev.Target.Alias
		case NoCandidates:
			line["endpoint"], line["model"], line["error"] = ev.Endpoint.Addr, ev.Target.Model, ev.Err.Error()
		case ConfigurationStarted:
			line["endpoint"], line["model"], line["label"], line["model_tag"] = ev.Endpoint.Addr, ev.Target.Model, ev.Candidate.Label, ev.Candidate.ModelTag
			line["index"], line["total"], line["baseline"], line["published"] = ev.Index, ev.Total, ev.Baseline, ev.Published
		case AttemptMeasured:
			line["endpoint"], line["model"], line["label"], line["model_tag"] = ev.Endpoint.Addr, ev.Target.Model, ev.Candidate.Label, ev.Candidate.ModelTag
			line["num_gpu"], line["outcome"], line["error"] = ev.Candidate.NumGPU, ev.Sample.Outcome, ev.Sample.Error
			line["metrics"], line["repeat_tps"], line["notes"] = ev.Metrics, ev.Sample.RepeatTPS, ev.Sample.Notes
			if ev.Sample.Telemetry != nil {
				line["telemetry"] = ev.Sample.Telemetry
			}
		case SweepStopped:
			line["endpoint"], line["model"], line["reason"] = ev.Endpoint.Addr, ev.Target.Model, ev.Reason
		case BestFound:
			line["endpoint"], line["model"], line["model_tag"], line["num_gpu"] = ev.Endpoint.Addr, ev.Target.Model, ev.Best.ModelTag, ev.Best.NumGPU
			line["best_tps"], line["baseline_tps"], line["default_is_best"] = ev.BestTPS, ev.BaselineTPS, ev.DefaultIsBest
			if c := ev.Comparison; c != nil {
				line["comparison"], line["p_value"], line["significant"] = c.String(), c.P, c.Significant
				if c.Note != "" {
					line["comparison_note"] = c.Note
				}
			}
		case NoneWorked:
			line["endpoint"], line["model"] = ev.Endpoint.Addr, ev.Target.Model
		case RunFinished:
			line["run"] = ev.Timing.Summary()
		}
		mu.Lock()
		defer mu.Unlock()
		enc.Encode(line)
	})
}
