package cli

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fuze-ai/fuze/internal/report"
	"github.com/fuze-ai/fuze/internal/testfixture"
)

// With serving CSVs in LOG_DIR the summary ends with the serving view (text and JSON); with
// --only-global it does not.
func TestSummaryServingView(t *testing.T) {
	_, logDir := reportEnv(t)
	agg := copyFile(t, reportFixture(t, "benchmarks.csv"), filepath.Join(t.TempDir(), "benchmarks.csv"))
	for _, name := range []string{"serving_ollama_llama8b.csv", "serving_llamacpp_llama8b.csv"} {
		copyFile(t, testfixture.Repo(t, "results", "gpu", name), filepath.Join(logDir, name))
	}
	out, errOut, err := runReportCmd(t, newSummaryCommand, "--csv", agg, "--no-paths")
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	i := strings.Index(out, report.ServingTitle)
	if i < 0 || !strings.Contains(out[i:], "LLM-FuZe-llama-8b") || !strings.Contains(out[i:], "519.02") || !strings.Contains(out[i:], "310.97") {
		t.Errorf("no serving view:\n%s", out)
	}
	out, _, err = runReportCmd(t, newSummaryCommand, "--csv", agg, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var js struct {
		Serving struct {
			Rows []struct {
				Stack    string  `json:"stack"`
				Parallel string  `json:"parallel"`
				Conc     int     `json:"goodput_concurrency"`
				TPS      float64 `json:"output_tps"`
			} `json:"rows"`
		} `json:"serving"`
	}
	if err := json.Unmarshal([]byte(out), &js); err != nil || len(js.Serving.Rows) != 2 || js.Serving.Rows[0].Parallel != "8" || js.Serving.Rows[0].Conc != 8 {
		t.Errorf("JSON serving %+v %v", js.Serving, err)
	}
	out, _, _ = runReportCmd(t, newSummaryCommand, "--csv", agg, "--only-global")
	if strings.Contains(out, report.ServingTitle) {
		t.Errorf("--only-global printed the serving view")
	}
}
