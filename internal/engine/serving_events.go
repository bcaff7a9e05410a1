package engine

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"

	"github.com/fuze-ai/fuze/internal/measure"
	"github.com/fuze-ai/fuze/internal/serving"
	"github.com/fuze-ai/fuze/internal/stack"
)

// ServingStarted: a serving configuration was prepared (Err: it could not be).
type ServingStarted struct {
	Endpoint  stack.Endpoint
	Target    stack.Target
	Candidate stack.Candidate
	Config    serving.Config
	Notes     []string
	Err       error
}

// ServingLevelMeasured: a concurrency level ended and its row was written.
type ServingLevelMeasured struct {
	Endpoint  stack.Endpoint
	Target    stack.Target
	Candidate stack.Candidate
	Level     serving.Level
}

// ServingGoodput: a configuration's levels are done; Goodput is the highest concurrency that
// met the SLO (nil: none).
type ServingGoodput struct {
	Endpoint  stack.Endpoint
	Target    stack.Target
	Candidate stack.Candidate
	Levels    []serving.Level
	Goodput   *serving.Level
	SLO       serving.SLO
}

// ServingNote: something the serving run says about an endpoint and model.
type ServingNote struct {
	Endpoint stack.Endpoint
	Target   stack.Target
	Note     string
}

func (ServingStarted) Kind() string       { return "serving_started" }
func (ServingLevelMeasured) Kind() string { return "serving_level" }
func (ServingGoodput) Kind() string       { return "serving_goodput" }
func (ServingNote) Kind() string          { return "serving_note" }

// ServingReporter renders the serving events as text lines (asJSON: one JSON object each) and
// hands every other event to next.
func ServingReporter(w io.Writer, asJSON bool, next Reporter) Reporter {
	var mu sync.Mutex
	enc := json.NewEncoder(w)
	return ReporterFunc(func(ev Event) {
		switch ev.(type) {
		case ServingStarted, ServingLevelMeasured, ServingGoodput, ServingNote:
		default:
			if next != nil {
				next.Report(ev)
			}
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if asJSON {
			enc.Encode(servingJSON(ev))
			return
		}
		writeServing(w, ev)
	})
}

func servingJSON(ev Event) map[string]any {
	line := map[string]any{"event": ev.Kind()}
	switch ev := ev.(type) {
	case ServingStarted:
		line["endpoint"], line["model"], line["model_tag"], line["parallel"] = ev.Endpoint.Addr, ev.Target.Model, ev.Candidate.ModelTag, ev.Config.Parallel
		line["server_settings"], line["notes"] = ev.Config.ServerSettings, ev.Notes
		if ev.Err != nil {
			outcome, msg := measure.Classify(ev.Err)
			line["outcome"], line["error"] = outcome, msg
		}
	case ServingLevelMeasured:
		line["endpoint"], line["model"], line["level"] = ev.Endpoint.Addr, ev.Target.Model, ev.Level
	case ServingGoodput:
		line["endpoint"], line["model"], line["model_tag"], line["parallel"] = ev.Endpoint.Addr, ev.Target.Model, ev.Candidate.ModelTag, ev.Candidate.ParallelValue()
		line["slo_ttft_ms"], line["slo_itl_ms"] = ev.SLO.TTFT.Seconds()*1000, ev.SLO.ITL.Seconds()*1000
		if g := ev.Goodput; g != nil {
			line["goodput_concurrency"], line["goodput_request_rate"], line["goodput_output_tps"] = g.Concurrency, g.RequestRate, g.OutputTPS
			if g.Open != nil {
				line["goodput_offered_rate"] = g.Open.Rate
			}
		} else {
			line["goodput_concurrency"] = 0
		}
	case ServingNote:
		line["endpoint"], line["model"], line["note"] = ev.Endpoint.Addr, ev.Target.Model, ev.Note
	}
	return line
}

func writeServing(w io.Writer, ev Event) {
	switch ev := ev.(type) {
	case ServingStarted:
		fmt.Fprintf(w, "=== Serving on %s — %s (alias %s), parallel=%s [%s], %d output tokens per request\n",
			ev.Endpoint.Addr, ev.Candidate.ModelTag, ev.Target.Alias, ev.Config.Parallel, ev.Config.ServerSettings, ev.Config.OutputTokens)
		for _, n := range ev.Notes {
			fmt.Fprintf(w, "   %s\n", n)
		}
		if ev.Err != nil {
			outcome, msg := measure.Classify(ev.Err)
			fmt.Fprintf(w, "✖ [%s] %s parallel=%s could not be served (%s: %s)\n", ev.Endpoint.Suffix, ev.Candidate.ModelTag, ev.Config.Parallel, outcome, msg)
		}
	case ServingLevelMeasured:
		writeLevel(w, ev.Endpoint, ev.Level)
	case ServingGoodput:
		slo := fmt.Sprintf("p99 TTFT ≤ %s and p99 ITL ≤ %s", ev.SLO.TTFT, ev.SLO.ITL)
		if g := ev.Goodput; g != nil {
			at := fmt.Sprintf("concurrency %d", g.Concurrency)
			if g.Open != nil {
				at = "offered " + g.Name()
			}
			fmt.Fprintf(w, "✔  Goodput (%s, parallel=%s): %s — %.2f req/s, %.2f tok/s — under %s\n",
				ev.Candidate.ModelTag, ev.Candidate.ParallelValue(), at, g.RequestRate, g.OutputTPS, slo)
		} else {
			fmt.Fprintf(w, "!  Goodput (%s, parallel=%s): no level met %s with every request completed\n", ev.Candidate.ModelTag, ev.Candidate.ParallelValue(), slo)
		}
	case ServingNote:
		fmt.Fprintf(w, "! [%s] %s: %s\n", ev.Endpoint.Suffix, ev.Target.Model, ev.Note)
	}
}

func writeLevel(w io.Writer, ep stack.Endpoint, l serving.Level) {
	if l.Error != "" {
		fmt.Fprintf(w, "✖ [%s] %-5s not served: %s\n", ep.Suffix, l.Name(), l.Error)
		return
	}
	mark := "✔"
	if l.Failed > 0 || l.Completed == 0 || l.Interrupted {
		mark = "✖"
	}
	done := fmt.Sprintf("%d/%d ok", l.Completed, l.Sent)
	if l.Failed > 0 {
		done += fmt.Sprintf(", %d failed (%s)", l.Failed, l.FailureSummary())
	}
	if l.Canceled > 0 {
		done += fmt.Sprintf(", %d canceled", l.Canceled)
	}
	slo := "SLO ✖"
	if l.SLOMet {
		slo = "SLO ✔"
	}
	if o := l.Open; o != nil {
		done += fmt.Sprintf(", %d waited for the cap, at most %d in flight", o.Capped, o.MaxInFlight)
	}
	fmt.Fprintf(w, "%s [%s] %-5s %s — %.2f req/s, %.2f tok/s (stream %.2f tok/s); ttft %s, itl %s, tpot %s, e2e %s ms p50/p90/p99; %s\n",
		mark, ep.Suffix, l.Name(), done, l.RequestRate, l.OutputTPS, l.StreamDecodeTPS,
		dist(l.TTFT), dist(l.ITL), dist(l.TPOT), dist(l.E2E), slo)
	if l.InputTokens > 0 && l.InputTokensMean > 0 {
		fmt.Fprintf(w, "   input tokens as the server counted them: mean %.1f (%d–%d) for %d asked\n", l.InputTokensMean, l.InputTokensMin, l.InputTokensMax, l.InputTokens)
	}
	if l.PhysicsFlag != "" {
		fmt.Fprintf(w, "! [%s] %s %s\n", ep.Suffix, l.Name(), l.PhysicsFlag)
	}
	for _, reason := range slices.Sorted(maps.Keys(l.FailureExamples)) {
		fmt.Fprintf(w, "   %s: %s\n", reason, l.FailureExamples[reason])
	}
	if l.Interrupted {
		fmt.Fprintf(w, "!  %s interrupted: the row holds the %d requests that completed\n", l.Name(), l.Completed)
	}
}

func dist(d serving.Dist) string {
	if d.N == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f/%.1f/%.1f", d.P50, d.P90, d.P99)
}
