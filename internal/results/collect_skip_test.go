package results

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// legacyAllHeaderLine is the header of the original's 2025-09-12 llm_bench_*_ALL.csv files, as
// the spec documents it; the files found in old logs often hold nothing else.
const legacyAllHeaderLine = "host,timestamp,endpoint,gpu_name,gpu_uuid,label,model,num_gpu,endpoint_suffix,eval_count,eval_duration,tokens_per_sec\n"

// oldLogDir is a logs folder as the original left it: a real run CSV (the fixture), the
// header-only legacy llm_bench_*_ALL.csv, and CSVs that are not run CSVs.
func oldLogDir(t *testing.T) (dir, good string, others map[string]string) {
	t.Helper()
	dir = t.TempDir()
	data, err := os.ReadFile(fixture(t, "ollama_bench_20250913_160342.csv"))
	if err != nil {
		t.Fatal(err)
	}
	good = filepath.Join(dir, "ollama_bench_20250913_160342.csv")
	files := map[string]string{
		"ollama_bench_20250913_160342.csv":  string(data),
		"llm_bench_20250912_101500_ALL.csv": legacyAllHeaderLine,
		"notes.csv":                         "model,comment\ngemma3,fast\n",
		"vllm_bench_20250914_000000.csv":    strings.Join(Header, ",") + "\n", // a run that wrote no row
		"triton_bench_20250914_000001.csv":  "",
		"mystery_bench_20250914_000002.csv": string(data),
	}
	others = map[string]string{}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if p != good {
			others[name] = p
		}
	}
	return dir, good, others
}

func TestCollectSkipsWhatIsNotARunCSV(t *testing.T) {
	_, good, others := oldLogDir(t)
	agg := filepath.Join(t.TempDir(), "benchmarks.csv")
	in := []string{
		others["llm_bench_20250912_101500_ALL.csv"], others["notes.csv"], good,
		others["vllm_bench_20250914_000000.csv"], others["triton_bench_20250914_000001.csv"],
		others["mystery_bench_20250914_000002.csv"],
	}
	res, warns, err := Collect(agg, in, "h")
	if err != nil {
		t.Fatalf("collect: %v", err)
	}
	if res.Added != 1 || res.Collected != 1 || len(warns) != 0 {
		t.Errorf("result %+v, warnings %q", res, warns)
	}
	want := []struct{ file, why string }{
		{"llm_bench_20250912_101500_ALL.csv", "legacy llm_bench_*_ALL.csv format (2025-09-12), whose columns fuze does not read (header only, no rows)"},
		{"notes.csv", `not a run CSV: header "model,comment"`},
		{"vllm_bench_20250914_000000.csv", "header only, no rows"},
		{"triton_bench_20250914_000001.csv", "empty file, no header"},
		{"mystery_bench_20250914_000002.csv", "cannot tell the stack from the file name"},
	}
	if len(res.Skipped) != len(want) {
		t.Fatalf("skipped %q, want %d lines", res.Skipped, len(want))
	}
	for i, w := range want {
		line := res.Skipped[i]
		if !strings.HasPrefix(line, others[w.file]+": ") || !strings.Contains(line, w.why) || strings.Contains(line, "\n") {
			t.Errorf("skipped line %d = %q, want %s: …%s…", i, line, others[w.file], w.why)
		}
	}
	rows, _, err := ReadAggregate(agg)
	if err != nil || len(rows) != 1 || rows[0].CSVFile != good || rows[0].Model != "gemma3:4b-it-fp16" {
		t.Errorf("aggregate rows %+v, err %v", rows, err)
	}

	// Only files that are not run CSVs: nothing collected, nothing added, the aggregate unchanged.
	before, _ := os.ReadFile(agg)
	res, _, err = Collect(agg, []string{others["llm_bench_20250912_101500_ALL.csv"], others["notes.csv"]}, "h")
	if err != nil || res.Collected != 0 || res.Added != 0 || len(res.Skipped) != 2 {
		t.Errorf("nothing to collect: %+v, err %v", res, err)
	}
	if after, _ := os.ReadFile(agg); !bytes.Equal(before, after) {
		t.Error("collecting nothing changed the aggregate")
	}

	// A file that cannot be read is still an error, not a skip.
	missing := filepath.Join(t.TempDir(), "ollama_bench_20990101_000000.csv")
	if _, _, err := Collect(agg, []string{good, missing}, "h"); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing file: err %v", err)
	}
}

func TestNotRunCSVErrors(t *testing.T) {
	_, _, others := oldLogDir(t)
	for _, name := range []string{"llm_bench_20250912_101500_ALL.csv", "notes.csv", "vllm_bench_20250914_000000.csv", "mystery_bench_20250914_000002.csv"} {
		_, _, err := SummarizeRun(others[name], "h")
		var nr *NotRunCSVError
		if !errors.As(err, &nr) || nr.Path != others[name] || !strings.HasPrefix(err.Error(), "results: "+others[name]+": ") {
			t.Errorf("SummarizeRun(%s): %v, want a *NotRunCSVError naming it", name, err)
		}
	}
	// Rows that are all unreadable: no readable rows, with the reader's warnings.
	p := writeFile(t, "ollama_bench_20250914_000003.csv", strings.Join(Header, ",")+"\n1,2,3\n")
	_, warns, err := SummarizeRun(p, "h")
	var nr *NotRunCSVError
	if !errors.As(err, &nr) || nr.Reason != "no readable rows (1 skipped)" || len(warns) != 1 {
		t.Errorf("unreadable rows: %v %q", err, warns)
	}
}

func TestStrayBenchCSVs(t *testing.T) {
	dir, _, others := oldLogDir(t)
	got, err := StrayBenchCSVs(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{others["llm_bench_20250912_101500_ALL.csv"], others["mystery_bench_20250914_000002.csv"]}
	if !slices.Equal(got, want) {
		t.Errorf("StrayBenchCSVs = %q, want %q", got, want)
	}
	if _, err := StrayBenchCSVs(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing dir: no error")
	}
}
