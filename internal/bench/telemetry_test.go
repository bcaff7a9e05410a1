package bench

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/fuze-ai/fuze/internal/knobs"
	"github.com/fuze-ai/fuze/internal/results"
)

// TELEMETRY=1 (the default) gives every row's sample the telemetry of its endpoint's device:
// here the CPU (the scripted driver's endpoint has no GPU), whose energy comes from RAPL
// where it is readable and is otherwise n/a with the reason, never 0.
func TestRunStackTelemetry(t *testing.T) {
	registerScripted(t, "scripted", scriptedRates)
	cfg, _ := config(t, "TELEMETRY_IDLE_MS=0")
	var out, log bytes.Buffer
	csvPath, err := RunStack(context.Background(), &out, &log, cfg, t.TempDir(), "scripted")
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if !strings.Contains(log.String(), "Telemetry  : nvidia-smi every 100ms per GPU") || !strings.Contains(log.String(), "Telemetry  : cpu: ") {
		t.Errorf("log:\n%s", log.String())
	}
	recs, _, err := results.ReadRunJSONL(results.RunJSONLPath(csvPath))
	if err != nil || len(recs) != 3 {
		t.Fatal(recs, err)
	}
	for _, r := range recs {
		tel := r.Sample.Telemetry
		if tel == nil || tel.Device != "cpu" {
			t.Fatalf("telemetry %+v", tel)
		}
		if (tel.EnergyJ == nil) != (tel.NA != "") || (tel.EnergyJ == nil) != (r.JoulesPerToken == nil) || (tel.EnergyJ != nil && *r.JoulesPerToken <= 0) {
			t.Errorf("energy %v, n/a %q, J/token %v: want a positive figure or n/a with its reason", tel.EnergyJ, tel.NA, r.JoulesPerToken)
		}
	}
	if !strings.Contains(log.String(), "J/token") {
		t.Errorf("no J/token on the console:\n%s", log.String())
	}
}

// TELEMETRY=0 samples nothing; bad telemetry knobs are usage errors before any file is written.
func TestRunStackTelemetryKnobs(t *testing.T) {
	registerScripted(t, "scripted", scriptedRates)
	cfg, _ := config(t, "TELEMETRY=0")
	var log bytes.Buffer
	csvPath, err := RunStack(context.Background(), &bytes.Buffer{}, &log, cfg, t.TempDir(), "scripted")
	if err != nil {
		t.Fatal(err)
	}
	recs, _, _ := results.ReadRunJSONL(results.RunJSONLPath(csvPath))
	if len(recs) == 0 || recs[0].Sample.Telemetry != nil || strings.Contains(log.String(), "Telemetry  :") || strings.Contains(log.String(), "J/token") {
		t.Errorf("TELEMETRY=0: %+v\n%s", recs, log.String())
	}
	for _, bad := range []string{"TELEMETRY_INTERVAL_MS=0", "TELEMETRY_IDLE_MS=-1", "TELEMETRY=yes"} {
		cfg, logDir := config(t, bad)
		_, err := RunStack(context.Background(), &bytes.Buffer{}, &bytes.Buffer{}, cfg, t.TempDir(), "scripted")
		var ie *knobs.InvalidError
		if !errors.As(err, &ie) || !strings.Contains(err.Error(), strings.SplitN(bad, "=", 2)[0]) {
			t.Errorf("%s: %v", bad, err)
		}
		if files, _ := os.ReadDir(logDir); len(files) != 0 {
			t.Errorf("%s: files written before the knob was checked: %v", bad, files)
		}
	}
}
