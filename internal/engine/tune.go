package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/fuze-ai/fuze/internal/measure"
	"github.com/fuze-ai/fuze/internal/results"
	"github.com/fuze-ai/fuze/internal/stack"
	"github.com/fuze-ai/fuze/internal/stats"
	"github.com/fuze-ai/fuze/internal/tune"
)

// offloadSettings are the settings of the seed's layer-offload sweep: candidates that vary in
// these alone keep the seed's sweep (sweep.Run, first working or exhaustive with its guards).
var offloadSettings = map[string]bool{"num_gpu": true, "n_gpu_layers": true, "n_gpu_layers_arg": true}

// TunedKnobs are the names of the settings that vary among cands beyond the layer offload,
// sorted; none means the seed's sweep.
func TunedKnobs(cands []stack.Candidate) []string {
	values := map[string]map[string]bool{}
	for _, c := range cands {
		for _, s := range c.Settings {
			if values[s.Name] == nil {
				values[s.Name] = map[string]bool{}
			}
			values[s.Name][s.Value] = true
		}
	}
	var out []string
	for name, vs := range values {
		if len(vs) > 1 && !offloadSettings[name] {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// TuneEvent is a step of the tuning search, rendered as one console line (Text) and one JSON
// object.
type TuneEvent struct {
	Endpoint stack.Endpoint
	Target   stack.Target
	Step     string // round, measure, pruned, done
	Line     string
	Fields   map[string]any
}

func (TuneEvent) Kind() string { return "tune" }

// TuningDone carries the tuning report of one (model, endpoint).
type TuningDone struct {
	Endpoint stack.Endpoint
	Target   stack.Target
	Report   tune.Report
}

func (TuningDone) Kind() string { return "tuning_done" }

// runTune is runOne's search when the candidates vary more than the layer offload: the
// tuning search (internal/tune), then the best by decode rate against the baseline as the
// seed's sweep does, the published best, and the tuning report.
func (e *Engine) runTune(ctx context.Context, t stack.Target, ep stack.Endpoint, o Outcome, cands []stack.Candidate, knobNames []string) (Outcome, error) {
	p := tune.Policy{Exhaustive: e.Policy.Exhaustive, Rounds: max(e.Policy.TuneRounds, 1)}
	if p.Exhaustive {
		p.Rounds = 1 // the full grid, each configuration measured once (BENCH_REPEAT requests)
	}
	emit := func(step, line string, fields map[string]any) {
		e.emit(TuneEvent{Endpoint: ep, Target: t, Step: step, Line: line, Fields: fields})
	}
	tuned := func(c stack.Candidate) map[string]string {
		m := map[string]string{}
		all := c.SettingsMap()
		for _, k := range knobNames {
			m[k] = all[k]
		}
		return m
	}
	label := func(c stack.Candidate) string { return tune.SettingsText(tuned(c)) }
	emit("start", fmt.Sprintf("   tuning %d configurations of %s (%s; TUNE_ROUNDS=%d, EXHAUSTIVE=%v)",
		len(cands), strings.Join(knobNames, ", "), searchName(p), p.Rounds, p.Exhaustive), map[string]any{"configurations": len(cands), "knobs": knobNames})
	var writeErr error
	measured := 0
	samples := make([]*measure.Sample, len(cands))
	res, err := tune.Run(ctx, p, cands, stack.Candidate.ServerSettings, func(ctx context.Context, i int, c stack.Candidate) tune.Measurement {
		if writeErr != nil {
			return tune.Measurement{Error: writeErr.Error()}
		}
		// The progress counts measurements against the most the search can make (every
		// configuration every round): pruning ends it early.
		measured++
		e.emit(ConfigurationStarted{Endpoint: ep, Target: t, Candidate: c, Index: measured, Total: len(cands) * p.Rounds})
		emit("measure", fmt.Sprintf("   [%d/%d] %s", i+1, len(cands), label(c)), map[string]any{"index": i + 1, "settings": tuned(c)})
		s, err := e.measureAndWrite(ctx, ep, t, c)
		o.Rows++
		if err != nil {
			writeErr = err
			return tune.Measurement{Error: err.Error()}
		}
		samples[i] = s
		m := measurement(s)
		if s.Failed() {
			return tune.Measurement{Error: s.Error}
		}
		ttft := s.RepeatTTFTms
		if len(ttft) == 0 {
			ttft = []float64{float64(measure.Derive(s).TTFT) / 1e6}
		}
		return tune.Measurement{Decode: m.Repeats, TTFTms: ttft, JPerToken: s.RepeatJPerToken, Invalid: m.Invalid}
	}, func(ev tune.Event) {
		switch ev.Kind {
		case "round":
			emit("round", fmt.Sprintf("   round %d: %d configurations", ev.Round, ev.Survivors), map[string]any{"round": ev.Round, "survivors": ev.Survivors})
		case "pruned":
			emit("pruned", fmt.Sprintf("   pruned after round %d: %s — %.3fx of the leader %s (p=%.4f)", ev.Round,
				label(cands[ev.Candidate]), ev.Ratio, label(cands[ev.Leader]), ev.P),
				map[string]any{"round": ev.Round, "settings": tuned(cands[ev.Candidate]), "leader": tuned(cands[ev.Leader]), "p_value": ev.P, "ratio": ev.Ratio})
		}
	})
	if writeErr != nil {
		return o, writeErr
	}
	rep := e.tuningReport(t, ep, o.Baseline, res, knobNames, tuned, p)
	emit("done", "", map[string]any{"server_starts": res.ServerStarts, "grid_server_starts": res.GridServerStarts,
		"grouped_grid_server_starts": res.GroupedGridStarts, "measurements": res.Measurements, "grid_measurements": res.GridMeasurements})
	e.emit(TuningDone{Endpoint: ep, Target: t, Report: rep})
	e.tunings = append(e.tunings, rep)
	if werr := e.writeTunings(); werr != nil {
		e.emit(TuneEvent{Endpoint: ep, Target: t, Step: "error", Line: "! tuning report: " + werr.Error()})
	}
	if res.Best < 0 {
		if err == nil && len(cands) > 0 {
			e.emit(NoneWorked{Endpoint: ep, Target: t})
		}
		return o, err
	}
	bc := res.Candidates[res.Best]
	best := bc.C
	o.Best, o.BestTPS, o.BestRun = &best, bc.Median(), samples[res.Best]
	ev := BestFound{Endpoint: ep, Target: t, Best: best, BestTPS: bc.Median(), BaselineTPS: measure.Derive(o.Baseline).DecodeTPS}
	if baseRepeats := results.SampleRepeats(o.Baseline); len(baseRepeats) > 0 && !results.MeasurementError(o.Baseline) {
		cmp := stats.Compare(bc.Decode, baseRepeats, stats.DefaultAlpha)
		ev.Comparison, ev.DefaultIsBest = &cmp, !cmp.Better
	}
	o.DefaultIsBest, o.Comparison = ev.DefaultIsBest, ev.Comparison
	e.emit(ev)
	if cl, ok := e.Driver.(stack.CommandLiner); ok {
		cmd := cl.ServerCommand(ep, t, best)
		what := "the best configuration"
		if o.DefaultIsBest {
			what = "the fastest configuration (not significantly faster than the default)"
		}
		emit("command", fmt.Sprintf("   %s: %s", what, cmd), map[string]any{"command": cmd, "default_is_best": o.DefaultIsBest})
	}
	if p, ok := e.Driver.(stack.Publisher); ok && err == nil && !o.DefaultIsBest {
		if pub, ok := p.Publish(ctx, ep, t, best); ok {
			e.emit(ConfigurationStarted{Endpoint: ep, Target: t, Candidate: pub, Published: true})
			if _, werr := e.measureAndWrite(ctx, ep, t, pub); werr != nil {
				return o, werr
			}
			o.Rows++
		}
	}
	return o, err
}

func searchName(p tune.Policy) string {
	if p.Exhaustive {
		return "exhaustive"
	}
	return "halving"
}

func (e *Engine) tuningReport(t stack.Target, ep stack.Endpoint, base *measure.Sample, res tune.Result[stack.Candidate], knobNames []string, tuned func(stack.Candidate) map[string]string, p tune.Policy) tune.Report {
	rep := tune.Report{Stack: e.Driver.Name(), Model: t.Model, Endpoint: ep.Addr, GPULabel: ep.GPULabel(), Knobs: knobNames,
		Search: searchName(p), Rounds: res.Rounds, Repeat: max(e.Repeat, 1), Summary: res.Describe(),
		Starts: res.ServerStarts, GridStart: res.GridServerStarts, GroupedGS: res.GroupedGridStarts,
		Measured: res.Measurements, GridMeas: res.GridMeasurements,
		Limitations: []string{
			"pruning uses the decode rate only: a configuration pruned for slow decoding is not followed for TTFT or J/token",
			"throughput at the SLO is measured by `fuze stack <stack> serving`, not by this search",
		}}
	for _, c := range res.Candidates {
		rep.Configs = append(rep.Configs, tune.ConfigResult{Settings: tuned(c.C), Server: c.Server, Rounds: c.Rounds,
			DecodeTPS: c.Decode, TTFTms: c.TTFTms, JPerToken: c.JPerToken, Median: c.Median(),
			Error: c.Error, Invalid: c.Invalid, PrunedRound: c.PrunedRound, PrunedP: c.PrunedP, PrunedRatio: c.PrunedRatio})
	}
	var baseVals [3][]float64
	if base != nil && !base.Failed() {
		baseVals = [3][]float64{results.SampleRepeats(base), base.RepeatTTFTms, base.RepeatJPerToken}
	}
	for oi, obj := range tune.Objectives {
		i := tune.BestBy(res.Candidates, obj)
		if i < 0 {
			continue
		}
		c := res.Candidates[i]
		vals := obj.Of(c.Decode, c.TTFTms, c.JPerToken)
		ob := tune.ObjectiveBest{Objective: obj.Name, Settings: tuned(c.C), Median: stats.Median(vals)}
		if bv := baseVals[oi]; len(bv) > 0 {
			cmp := stats.Compare(vals, bv, stats.DefaultAlpha)
			ob.BaselineMedian, ob.Ratio, ob.P, ob.Significant, ob.Note = cmp.IncumbentMedian, cmp.Ratio, cmp.P, cmp.Significant, cmp.Note
		}
		rep.Best = append(rep.Best, ob)
	}
	rep.Effects = tune.Effects(res.Candidates, tuned)
	return rep
}

// writeTunings rewrites the run's tuning report with every (model, endpoint) tuned so far.
func (e *Engine) writeTunings() error {
	if e.Writer == nil || e.Writer.CSVPath() == "" {
		return nil
	}
	b, err := json.MarshalIndent(e.tunings, "", "  ")
	if err != nil {
		return err
	}
	if err := results.WriteFileAtomic(tune.Path(e.Writer.CSVPath()), append(b, '\n'), 0o644); err != nil {
		return err
	}
	var md strings.Builder
	tune.WriteMarkdown(&md, e.tunings)
	return results.WriteFileAtomic(tune.MarkdownPath(e.Writer.CSVPath()), []byte(md.String()), 0o644)
}

// tuneText renders the tuning events on the console.
func tuneText(w io.Writer, ev Event) bool {
	switch ev := ev.(type) {
	case TuneEvent:
		if ev.Line != "" {
			fmt.Fprintln(w, ev.Line)
		}
	case TuningDone:
		ev.Report.WriteText(w)
	default:
		return false
	}
	return true
}

// tuneJSON is the JSON object of a tuning event (nil for other events).
func tuneJSON(ev Event) map[string]any {
	switch ev := ev.(type) {
	case TuneEvent:
		line := map[string]any{"event": ev.Kind(), "step": ev.Step, "endpoint": ev.Endpoint.Addr, "model": ev.Target.Model}
		for k, v := range ev.Fields {
			line[k] = v
		}
		return line
	case TuningDone:
		return map[string]any{"event": ev.Kind(), "endpoint": ev.Endpoint.Addr, "model": ev.Target.Model, "report": ev.Report}
	}
	return nil
}
