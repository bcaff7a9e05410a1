package results

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/fuze-ai/fuze/internal/measure"
)

// maxSameSecondRuns bounds the _N suffixes CreateRun tries.
const maxSameSecondRuns = 1000

// RunWriter appends rows to one run's CSV and JSONL files. It is safe for concurrent use.
type RunWriter struct {
	mu        sync.Mutex
	csvFile   *os.File
	jsonlFile *os.File
	csv       *csv.Writer
	csvPath   string
	jsonlPath string
	closed    bool
}

// Record is one line of the run JSONL.
type Record struct {
	Row    JSONRow         `json:"row"`
	Sample *measure.Sample `json:"sample"` // null for rows written without a sample
	// The figures derived from Sample by measure.Derive (all 0 when Sample is null).
	measure.Metrics
}

// JSONRow is a CSV row by column name, with the values the CSV carries (ts in TimeLayout,
// tokens_per_sec rounded to the CSV's two decimals, gpu_mem_mib 0 when unknown).
type JSONRow struct {
	TS           string  `json:"ts"`
	Endpoint     string  `json:"endpoint"`
	Unit         string  `json:"unit"`
	Suffix       string  `json:"suffix"`
	BaseModel    string  `json:"base_model"`
	VariantLabel string  `json:"variant_label"`
	ModelTag     string  `json:"model_tag"`
	NumGPU       string  `json:"num_gpu"`
	NumCtx       string  `json:"num_ctx"`
	Batch        string  `json:"batch"`
	NumPredict   string  `json:"num_predict"`
	TokensPerSec float64 `json:"tokens_per_sec"`
	GPULabel     string  `json:"gpu_label"`
	GPUName      string  `json:"gpu_name"`
	GPUUUID      string  `json:"gpu_uuid"`
	GPUMemMiB    int     `json:"gpu_mem_mib"`
}

func jsonRow(r Row) JSONRow {
	tps, _ := strconv.ParseFloat(formatTPS(r.TokensPerSec), 64)
	mem := r.GPUMemMiB
	if mem < 0 {
		mem = 0
	}
	return JSONRow{
		TS: formatTS(r.TS), Endpoint: r.Endpoint, Unit: r.Unit, Suffix: r.Suffix,
		BaseModel: r.BaseModel, VariantLabel: r.VariantLabel, ModelTag: r.ModelTag,
		NumGPU: r.NumGPU, NumCtx: r.NumCtx, Batch: r.Batch, NumPredict: r.NumPredict,
		TokensPerSec: tps, GPULabel: r.GPULabel, GPUName: r.GPUName, GPUUUID: r.GPUUUID,
		GPUMemMiB: mem,
	}
}

// NewRecord builds the JSONL record of a row and its sample (which may be nil).
func NewRecord(row Row, sample *measure.Sample) Record {
	return Record{Row: jsonRow(row), Sample: sample, Metrics: measure.Derive(sample)}
}

// CreateRun creates <logDir>/<prefix>_bench_<YYYYmmdd_HHMMSS>.csv (ts formatted in its own
// location; pass local time to match the original's names) with the header already written,
// and <same base>.jsonl beside it. stack is any spelling CanonicalStack accepts.
//
// An existing run is never overwritten: if either file of that name already exists (two runs
// started in the same second), the next free name <prefix>_bench_<TS>_2, _3, … is used.
// RunTSFromFileName and StackFromFileName understand these names.
func CreateRun(logDir, stack string, ts time.Time) (*RunWriter, error) {
	prefix, ok := FilePrefix(stack)
	if !ok {
		return nil, fmt.Errorf("results: unknown stack %q (want ollama, vLLM, llama.cpp or Triton)", stack)
	}
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, fmt.Errorf("results: create log dir: %w", err)
	}
	stem := prefix + "_bench_" + ts.Format(RunTSLayout)
	for n := 1; n <= maxSameSecondRuns; n++ {
		base := stem
		if n > 1 {
			base += "_" + strconv.Itoa(n)
		}
		w, err := createPair(filepath.Join(logDir, base))
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return w, nil
	}
	return nil, fmt.Errorf("results: %s: %d runs with this timestamp already exist",
		filepath.Join(logDir, stem+".csv"), maxSameSecondRuns)
}

// createPair creates base.csv and base.jsonl exclusively; fs.ErrExist if either exists.
func createPair(base string) (*RunWriter, error) {
	csvPath, jsonlPath := base+".csv", base+".jsonl"
	// Check the JSONL first so that a stray JSONL of the same name never gets its CSV removed.
	if _, err := os.Lstat(jsonlPath); err == nil {
		return nil, fs.ErrExist
	}
	cf, err := os.OpenFile(csvPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		return nil, fmt.Errorf("results: create run CSV: %w", err)
	}
	jf, err := os.OpenFile(jsonlPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		cf.Close()
		os.Remove(csvPath)
		if errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		return nil, fmt.Errorf("results: create run JSONL: %w", err)
	}
	w := &RunWriter{csvFile: cf, jsonlFile: jf, csv: csv.NewWriter(cf), csvPath: csvPath, jsonlPath: jsonlPath}
	if err := w.csv.Write(Header); err == nil {
		w.csv.Flush()
	}
	if err := w.csv.Error(); err != nil {
		cf.Close()
		jf.Close()
		os.Remove(csvPath)
		os.Remove(jsonlPath)
		return nil, fmt.Errorf("results: write header of %s: %w", csvPath, err)
	}
	return w, nil
}

// CSVPath is the path of the run CSV.
func (w *RunWriter) CSVPath() string { return w.csvPath }

// JSONLPath is the path of the run JSONL.
func (w *RunWriter) JSONLPath() string { return w.jsonlPath }

// Write appends row to the CSV (exactly NumColumns fields) and its record to the JSONL, and
// hands both to the operating system before returning, so a crash or Ctrl-C after Write
// returns loses nothing. sample may be nil.
func (w *RunWriter) Write(row Row, sample *measure.Sample) error {
	line, err := json.Marshal(NewRecord(row, sample))
	if err != nil {
		return fmt.Errorf("results: encode record: %w", err)
	}
	line = append(line, '\n')
	fields := row.Fields()

	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return fmt.Errorf("results: write to closed run %s", w.csvPath)
	}
	if err := w.csv.Write(fields); err != nil {
		return fmt.Errorf("results: write %s: %w", w.csvPath, err)
	}
	w.csv.Flush()
	if err := w.csv.Error(); err != nil {
		return fmt.Errorf("results: write %s: %w", w.csvPath, err)
	}
	if _, err := w.jsonlFile.Write(line); err != nil {
		return fmt.Errorf("results: write %s: %w", w.jsonlPath, err)
	}
	return nil
}

// Sync commits both files to stable storage.
func (w *RunWriter) Sync() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	return errors.Join(w.csvFile.Sync(), w.jsonlFile.Sync())
}

// Close syncs and closes both files. Calling it again is a no-op.
func (w *RunWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	w.csv.Flush()
	return errors.Join(
		w.csv.Error(),
		w.csvFile.Sync(), w.csvFile.Close(),
		w.jsonlFile.Sync(), w.jsonlFile.Close(),
	)
}
