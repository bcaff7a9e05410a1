package results

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/fuze-ai/fuze/internal/measure"
	"github.com/fuze-ai/fuze/internal/stackname"
)

// RunWriter appends rows to one run's CSV and JSONL files. It is safe for concurrent use.
type RunWriter struct {
	*Pair
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
		return nil, fmt.Errorf("results: unknown stack %q (want one of %s)", stack, stackname.List())
	}
	p, err := CreatePair(logDir, prefix+"_bench_"+ts.Format(RunTSLayout), Header)
	if err != nil {
		return nil, err
	}
	return &RunWriter{p}, nil
}

// Write appends row to the CSV (exactly NumColumns fields) and its record to the JSONL, and
// hands both to the operating system before returning, so a crash or Ctrl-C after Write
// returns loses nothing. sample may be nil.
func (w *RunWriter) Write(row Row, sample *measure.Sample) error {
	line, err := json.Marshal(NewRecord(row, sample))
	if err != nil {
		return fmt.Errorf("results: encode record: %w", err)
	}
	return w.Append(row.Fields(), append(line, '\n'))
}
