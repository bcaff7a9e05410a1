package results

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
)

// RunJSONLPath is the JSONL written beside a run CSV: the same path with .jsonl for .csv
// ("" when csvPath does not end in .csv).
func RunJSONLPath(csvPath string) string {
	if !strings.HasSuffix(csvPath, ".csv") {
		return ""
	}
	return strings.TrimSuffix(csvPath, ".csv") + ".jsonl"
}

// ReadRunSamples reads the JSONL beside the run CSV csvPath and pairs its records with rows
// (MatchRecords). Without a JSONL every row has a nil record; a JSONL that cannot be read is a
// warning, and so is each line that does not decode.
func ReadRunSamples(csvPath string, rows []Row) ([]*Record, []string) {
	out := make([]*Record, len(rows))
	p := RunJSONLPath(csvPath)
	if p == "" {
		return out, nil
	}
	recs, warnings, err := ReadRunJSONL(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return out, nil
	case err != nil:
		warnings = append(warnings, fmt.Sprintf("%s: %v; read without samples", p, err))
	}
	return MatchRecords(rows, recs), warnings
}

// recordKey identifies a row by the values its CSV line and its JSONL record share.
func recordKey(ts, endpoint, model, label, tag, numGPU string, tps float64) string {
	return strings.Join([]string{ts, endpoint, model, label, tag, numGPU, formatTPS(tps)}, "\x00")
}

// MatchRecords pairs every row with its JSONL record (nil when it has none): records are
// matched by content (ts, endpoint, model, label, tag, num_gpu, tokens_per_sec), in order, so
// a JSONL missing a line (a run killed mid-write) leaves only that row without a sample.
func MatchRecords(rows []Row, recs []Record) []*Record {
	out := make([]*Record, len(rows))
	if len(recs) == 0 {
		return out
	}
	queue := map[string][]*Record{}
	for i := range recs {
		rec := &recs[i]
		r := rec.Row
		k := recordKey(r.TS, r.Endpoint, r.BaseModel, r.VariantLabel, r.ModelTag, r.NumGPU, r.TokensPerSec)
		queue[k] = append(queue[k], rec)
	}
	for i, r := range rows {
		k := recordKey(formatTS(r.TS), r.Endpoint, r.BaseModel, r.VariantLabel, r.ModelTag, r.NumGPU, r.TokensPerSec)
		if q := queue[k]; len(q) > 0 {
			out[i], queue[k] = q[0], q[1:]
		}
	}
	return out
}
