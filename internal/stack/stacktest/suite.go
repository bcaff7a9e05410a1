// Package stacktest is the conformance suite every stack driver passes: discovery, launch and
// measurement, failure rows, readiness timeouts, and stopping with nothing left running. Each
// driver's tests call Run with a Harness that builds the driver against a real server or a
// faithful fake of its documented protocol.
package stacktest

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/fuze-ai/fuze/internal/engine"
	"github.com/fuze-ai/fuze/internal/gpu"
	"github.com/fuze-ai/fuze/internal/measure"
	"github.com/fuze-ai/fuze/internal/results"
	"github.com/fuze-ai/fuze/internal/stack"
	"github.com/fuze-ai/fuze/internal/sweep"
)

// Harness builds drivers for the suite. Each constructor gets a fresh LOG_DIR.
type Harness struct {
	// Working returns a driver whose server answers correctly.
	Working func(t *testing.T, logDir string) stack.Driver
	// Broken returns a driver whose server answers requests without the timings or usage a
	// measurement needs (or with garbage): every attempt must become a failure row.
	Broken func(t *testing.T, logDir string) stack.Driver
	// NeverReady returns a driver whose server starts but never becomes ready, with a short
	// readiness deadline. Nil for stacks whose servers fuze does not start.
	NeverReady func(t *testing.T, logDir string) stack.Driver
}

// Run runs the suite.
func Run(t *testing.T, h Harness) {
	t.Run("DiscoveryAndMeasurement", func(t *testing.T) { discoveryAndMeasurement(t, h) })
	t.Run("FailureRows", func(t *testing.T) { failureRows(t, h) })
	if h.NeverReady != nil {
		t.Run("ReadinessTimeout", func(t *testing.T) { readinessTimeout(t, h) })
	}
}

// engineRun runs the shared engine over d and returns rows, samples and endpoints.
func engineRun(t *testing.T, d stack.Driver, logDir string) ([]results.Row, []results.Record, []stack.Endpoint, string, error) {
	t.Helper()
	var log bytes.Buffer
	eps, err := d.Setup(context.Background(), gpu.Selection{})
	if err != nil {
		d.Close(context.Background())
		return nil, nil, nil, log.String(), err
	}
	w, err := results.CreateRun(logDir, d.Name(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	e := &engine.Engine{Driver: d, Endpoints: eps, Policy: sweep.Policy{Exhaustive: true, ZeroBreak: 2}, Writer: w, Report: engine.TextReporter(&log)}
	_, runErr := e.Run(context.Background())
	d.Close(context.Background())
	w.Close()
	rows, warns, err := results.ReadRunCSV(w.CSVPath())
	if err != nil || len(warns) > 0 {
		t.Fatalf("run CSV: %v %v", err, warns)
	}
	recs, _, err := results.ReadRunJSONL(w.JSONLPath())
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(rows) {
		t.Fatalf("%d JSONL records for %d rows", len(recs), len(rows))
	}
	return rows, recs, eps, log.String(), runErr
}

func discoveryAndMeasurement(t *testing.T, h Harness) {
	logDir := t.TempDir()
	d := h.Working(t, logDir)
	rows, recs, eps, log, err := engineRun(t, d, logDir)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, log)
	}
	if len(rows) < 2 {
		t.Fatalf("want a baseline and at least one candidate, got %d rows\n%s", len(rows), log)
	}
	if rows[0].VariantLabel != stack.LabelBaseline {
		t.Errorf("first row %q, want %s", rows[0].VariantLabel, stack.LabelBaseline)
	}
	for i, r := range rows {
		s := recs[i].Sample
		if s == nil || s.Outcome != measure.OK {
			t.Fatalf("row %d (%s %s num_gpu=%s): sample %+v\n%s", i, r.VariantLabel, r.ModelTag, r.NumGPU, s, log)
		}
		if r.TokensPerSec <= 0 || r.BaseModel == "" || r.ModelTag == "" || r.Endpoint == "" || r.NumGPU == "" || r.NumPredict == "" {
			t.Errorf("row %d incomplete: %+v", i, r)
		}
		if want := s.DecodeTokensPerSec(); abs(r.TokensPerSec-want) > 0.006 {
			t.Errorf("row %d: CSV %.2f tok/s, sample says %.4f", i, r.TokensPerSec, want)
		}
		if s.ServerOutputTokens <= 0 {
			t.Errorf("row %d: no output token count", i)
		}
	}
	assertStopped(t, eps)
}

func failureRows(t *testing.T, h Harness) {
	logDir := t.TempDir()
	d := h.Broken(t, logDir)
	rows, recs, eps, log, err := engineRun(t, d, logDir)
	if err != nil {
		t.Fatalf("a broken server must give failure rows, not abort the run: %v\n%s", err, log)
	}
	if len(rows) == 0 {
		t.Fatalf("no rows\n%s", log)
	}
	for i, r := range rows {
		if r.TokensPerSec != 0 || recs[i].Sample == nil || recs[i].Sample.Outcome == measure.OK || recs[i].Sample.Error == "" {
			t.Errorf("row %d: %.2f tok/s, sample %+v: want a 0.00 row with its reason", i, r.TokensPerSec, recs[i].Sample)
		}
	}
	assertStopped(t, eps)
}

func readinessTimeout(t *testing.T, h Harness) {
	logDir := t.TempDir()
	d := h.NeverReady(t, logDir)
	rows, recs, eps, log, err := engineRun(t, d, logDir)
	if err != nil {
		if !strings.Contains(err.Error(), "not ready") {
			t.Fatalf("readiness error %q does not say the server was not ready", err)
		}
		return
	}
	// Stacks that start a server per candidate report it per attempt.
	if len(rows) == 0 {
		t.Fatalf("no error and no rows\n%s", log)
	}
	for i := range rows {
		s := recs[i].Sample
		if s.Outcome != measure.ErrTimeout || !strings.Contains(s.Error, "not ready") {
			t.Errorf("row %d: outcome %q error %q, want a readiness timeout", i, s.Outcome, s.Error)
		}
	}
	assertStopped(t, eps)
}

// assertStopped checks that no endpoint accepts connections any more.
func assertStopped(t *testing.T, eps []stack.Endpoint) {
	t.Helper()
	for _, ep := range eps {
		if c, err := net.DialTimeout("tcp", ep.Addr, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after Close", ep.Addr)
		}
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
