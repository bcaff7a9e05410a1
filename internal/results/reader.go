package results

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// ReadRunCSV reads a run CSV written by this program or by the original scripts. It accepts
// rows of
//   - 16 fields: the current format (and the original Ollama script's);
//   - 17 fields whose last is empty: the original vLLM, llama.cpp and Triton scripts' rows;
//   - 15 fields: the 2025-09-13 Ollama rows, which wrote two empty fields instead of three
//     between num_gpu and tokens_per_sec (tokens_per_sec is field 11). Fields 1–8 map to ts …
//     num_gpu, fields 9 and 10 to num_ctx and batch, num_predict stays empty, and fields 11–15
//     map to tokens_per_sec … gpu_mem_mib. Those scripts left all three setting columns empty,
//     so nothing is lost whichever of them was the missing one.
//
// ts may be RFC 3339 (also `date -Iseconds`), or the compact YYYYmmdd_HHMMSS run timestamp,
// read as local time; an empty ts gives a zero TS. Numeric fields may carry surrounding spaces
// (the original wrote gpu_mem_mib as " 32607"); an empty gpu_mem_mib is 0.
//
// The header must be Header (a trailing empty header field is tolerated); an empty file or
// another header is a *NotRunCSVError naming the file. A row that cannot be read (wrong width,
// bad ts, bad number) is skipped with a warning "file:line: …"; it does not stop the read.
func ReadRunCSV(path string) ([]Row, []string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("results: %w", err)
	}
	defer f.Close()

	r := csv.NewReader(bufio.NewReader(f))
	r.FieldsPerRecord = -1
	r.LazyQuotes = true
	r.ReuseRecord = false

	head, err := r.Read()
	if errors.Is(err, io.EOF) {
		return nil, nil, &NotRunCSVError{Path: path, Reason: "empty file, no header"}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("results: %s: header: %w", path, err)
	}
	if !isRunHeader(head) {
		reason := fmt.Sprintf("not a run CSV: header %q, want %q", strings.Join(head, ","), strings.Join(Header, ","))
		if matchesHeader(head, LegacyAllHeader) {
			reason = "not a run CSV: the original's legacy llm_bench_*_ALL.csv format (2025-09-12), whose columns fuze does not read"
		}
		if _, err := r.Read(); errors.Is(err, io.EOF) {
			reason += " (header only, no rows)"
		}
		return nil, nil, &NotRunCSVError{Path: path, Reason: reason}
	}

	var rows []Row
	var warnings []string
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				warnings = append(warnings, fmt.Sprintf("%s:%d: %v; row skipped", path, pe.StartLine, pe.Err))
				continue
			}
			return rows, warnings, fmt.Errorf("results: %s: %w", path, err)
		}
		line, _ := r.FieldPos(0)
		row, err := parseRecord(rec)
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("%s:%d: %v; row skipped", path, line, err))
			continue
		}
		rows = append(rows, row)
	}
	return rows, warnings, nil
}

// LegacyAllHeader is the header of the original's 2025-09-12 llm_bench_*_ALL.csv files, found
// in old logs (often with no rows). They are not run CSVs: collect skips them with a warning.
var LegacyAllHeader = []string{
	"host", "timestamp", "endpoint", "gpu_name", "gpu_uuid", "label", "model", "num_gpu",
	"endpoint_suffix", "eval_count", "eval_duration", "tokens_per_sec",
}

// NotRunCSVError says why a file is not a run CSV that can be collected: it is empty, has
// another header, holds no rows, or its name does not say the stack. Collect skips such files
// with a warning instead of failing; errors reading a file are other errors.
type NotRunCSVError struct {
	Path   string
	Reason string
}

func (e *NotRunCSVError) Error() string { return fmt.Sprintf("results: %s: %s", e.Path, e.Reason) }

func isRunHeader(h []string) bool { return matchesHeader(h, Header) }

// matchesHeader compares a header record with want, tolerating the original's trailing empty
// field, a byte-order mark and spaces around names.
func matchesHeader(h, want []string) bool {
	if len(h) == len(want)+1 && strings.TrimSpace(h[len(want)]) == "" {
		h = h[:len(want)]
	}
	if len(h) != len(want) {
		return false
	}
	for i, name := range h {
		if i == 0 {
			name = strings.TrimPrefix(name, "\ufeff")
		}
		if strings.TrimSpace(name) != want[i] {
			return false
		}
	}
	return true
}

// parseRecord maps a data record of any accepted width onto a Row.
func parseRecord(rec []string) (Row, error) {
	var f []string
	switch len(rec) {
	case NumColumns:
		f = rec
	case NumColumns + 1:
		if rec[NumColumns] != "" {
			return Row{}, fmt.Errorf("17 fields and the 17th is not empty (%q)", rec[NumColumns])
		}
		f = rec[:NumColumns]
	case NumColumns - 1:
		// 2025-09-13 Ollama: ts..num_gpu, two empty settings, tokens_per_sec, gpu_*.
		f = make([]string, 0, NumColumns)
		f = append(f, rec[:10]...)
		f = append(f, "") // num_predict
		f = append(f, rec[10:]...)
	default:
		return Row{}, fmt.Errorf("%d fields, want %d", len(rec), NumColumns)
	}

	ts, err := parseTS(f[0])
	if err != nil {
		return Row{}, err
	}
	tpsText := strings.TrimSpace(f[11])
	tps, err := strconv.ParseFloat(tpsText, 64)
	if err != nil || finite(tps) != tps {
		return Row{}, fmt.Errorf("tokens_per_sec %q is not a number", f[11])
	}
	mem := 0
	if m := strings.TrimSpace(f[15]); m != "" {
		mem, err = strconv.Atoi(m)
		if err != nil {
			return Row{}, fmt.Errorf("gpu_mem_mib %q is not an integer", f[15])
		}
	}
	return Row{
		TS:           ts,
		Endpoint:     f[1],
		Unit:         f[2],
		Suffix:       f[3],
		BaseModel:    f[4],
		VariantLabel: f[5],
		ModelTag:     f[6],
		NumGPU:       f[7],
		NumCtx:       f[8],
		Batch:        f[9],
		NumPredict:   f[10],
		TokensPerSec: tps,
		GPULabel:     f[12],
		GPUName:      f[13],
		GPUUUID:      f[14],
		GPUMemMiB:    mem,
	}, nil
}

// parseTS reads the ts column in any of the formats the stacks have written.
func parseTS(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation(RunTSLayout, s, time.Local); err == nil {
		return t, nil
	}
	// ISO 8601 offsets without a colon (+0000), as some `date` formats write.
	if t, err := time.Parse("2006-01-02T15:04:05-0700", s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("ts %q is neither RFC 3339 nor YYYYmmdd_HHMMSS", s)
}

// RunSummaryKey is the key of the run JSONL's closing line, {"run_summary": {...}}: the
// run's wall time overall and per endpoint (engine.TimingSummary), not a row's record.
const RunSummaryKey = "run_summary"

// IsRunSummary says a run JSONL line is the run_summary line.
func IsRunSummary(line []byte) bool {
	return bytes.HasPrefix(bytes.TrimSpace(line), []byte(`{"`+RunSummaryKey+`"`))
}

// ReadRunJSONL reads the records of a run JSONL. A line that does not decode (for instance
// the last line of a run killed mid-write) is skipped with a warning "file:line: …"; the
// run_summary line is skipped silently.
func ReadRunJSONL(path string) ([]Record, []string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("results: %w", err)
	}
	defer f.Close()
	var recs []Record
	var warnings []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 64*1024*1024)
	for n := 1; sc.Scan(); n++ {
		b := sc.Bytes()
		if len(strings.TrimSpace(string(b))) == 0 {
			continue
		}
		if IsRunSummary(b) {
			continue // the run's timing, not a row's record
		}
		var rec Record
		if err := json.Unmarshal(b, &rec); err != nil {
			warnings = append(warnings, fmt.Sprintf("%s:%d: %v; line skipped", path, n, err))
			continue
		}
		recs = append(recs, rec)
	}
	if err := sc.Err(); err != nil {
		return recs, warnings, fmt.Errorf("results: %s: %w", path, err)
	}
	return recs, warnings, nil
}
