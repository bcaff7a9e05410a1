package results

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/fuze-ai/fuze/internal/measure"
)

// withEnergy is s with a window of secs seconds that used joules, idle at idleW.
func withEnergy(s *measure.Sample, joules, secs, idleW float64) *measure.Sample {
	s.Telemetry = &measure.Telemetry{Source: measure.SourcePowerIntegral, Device: "GPU-a",
		Window: time.Duration(secs * float64(time.Second)), EnergyJ: measure.F(joules), IdlePowerW: measure.F(idleW)}
	return s
}

// The aggregate's evidence carries the optimum's J/token (the tuned row when it wins, else the
// baseline), through Collect and ReadAggregate; a model whose optimum has no energy has none.
func TestEvidenceCarriesTheOptimumsEnergy(t *testing.T) {
	logDir := t.TempDir()
	run := writeScriptedRun(t, logDir, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), []scriptedRow{
		{"A", "tuned-wins", "base-as-is", "default", withEnergy(sampleOf(five(12)...), 500, 2, 100)},
		{"A", "tuned-wins", "optimized", "30", withEnergy(sampleOf(five(22)...), 300, 1, 100)},
		{"A", "base-stays", "base-as-is", "default", withEnergy(sampleOf(five(20)...), 400, 2, 100)},
		{"A", "base-stays", "optimized", "30", withEnergy(sampleOf(five(20)...), 100, 1, 100)},
		{"A", "no-energy", "base-as-is", "default", sampleOf(five(20)...)},
	})
	agg := filepath.Join(t.TempDir(), "benchmarks.csv")
	if _, _, err := Collect(agg, []string{run}, "h"); err != nil {
		t.Fatal(err)
	}
	rows, warns, err := ReadAggregate(agg)
	if err != nil || len(warns) != 0 || len(rows) != 3 {
		t.Fatal(rows, warns, err)
	}
	got := map[string]*AggEvidence{}
	for _, r := range rows {
		got[r.Model] = r.Evidence
	}
	// 300 J over 100 tokens; above idle: 300 − 100 W × 1 s = 200 J.
	if e := got["tuned-wins"]; e.OptimalJoulesPerToken == nil || *e.OptimalJoulesPerToken != 3 || *e.OptimalJoulesPerTokenAboveIdle != 2 || e.OptimalEnergySource != measure.SourcePowerIntegral {
		t.Errorf("tuned-wins: %+v", e)
	}
	if e := got["base-stays"]; e.Optimum != OptimumBaseline || e.OptimalJoulesPerToken == nil || *e.OptimalJoulesPerToken != 4 {
		t.Errorf("base-stays: the baseline's 4 J/token, got %+v", e)
	}
	if e := got["no-energy"]; e == nil || e.OptimalJoulesPerToken != nil || e.OptimalJoulesPerTokenAboveIdle != nil || e.OptimalEnergySource != "" {
		t.Errorf("no-energy: %+v", e)
	}
}
