package results

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/fuze-ai/fuze/internal/measure"
)

// FuzzReadRunCSV reads arbitrary files as run CSVs. It checks that ReadRunCSV never panics;
// that an error names the file and comes with no rows; that otherwise every data record is
// either a row or a warning, each warning one line "file:N: …; row skipped" with N rising;
// and that the rows, written back by a RunWriter, read back as the same rows (same fields)
// with no warnings, their JSONL records agreeing with them. The seed corpus
// (testdata/fuzz/FuzzReadRunCSV) holds the formats the reader accepts: this program's runs,
// the original scripts' 15-, 16- and 17-field rows, and header variants.
func FuzzReadRunCSV(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join("testdata", "run.golden.csv")); err == nil {
		f.Add(b)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := tempFile(t, dir, "ollama_bench_*.csv", data)
		rows, warns, err := ReadRunCSV(path)
		if err != nil {
			if rows != nil || warns != nil || !strings.Contains(err.Error(), path) {
				t.Fatalf("error %v with %d rows and %d warnings; want an error naming %s and nothing else", err, len(rows), len(warns), path)
			}
			return
		}
		if records := csvRecords(t, data); len(rows)+len(warns) != records-1 {
			t.Fatalf("%d rows + %d warnings for %d data records", len(rows), len(warns), records-1)
		}
		checkWarnings(t, warns, path, "; row skipped", 2, bytes.Count(data, []byte("\n"))+1)
		for i, r := range rows {
			if tps := r.TokensPerSec; math.IsNaN(tps) || math.IsInf(tps, 0) {
				t.Fatalf("row %d: tokens_per_sec %v", i, tps)
			}
		}

		if len(rows) == 0 {
			return
		}
		back, recs, _ := writeAndReadBack(t, dir, rows, nil)
		for i := range rows {
			if got, want := back[i].Fields(), rows[i].Fields(); !reflect.DeepEqual(got, want) {
				t.Fatalf("row %d written and read back:\n got %q\nwant %q", i, got, want)
			}
			if !back[i].TS.Equal(rows[i].TS.Truncate(time.Second)) {
				t.Fatalf("row %d: ts %v back, want %v to the second", i, back[i].TS, rows[i].TS)
			}
			checkRecordMatchesRow(t, i, recs[i], back[i])
		}
	})
}

// FuzzRunCSVRoundTrip writes one row (and, when hasSample, a sample made of the fuzzed
// numbers) with a RunWriter and reads both files back. The CSV row must come back equal
// except for what the format documents: ts to the second with its offset, tokens_per_sec to
// two decimals (0.00 when not finite), gpu_mem_mib <= 0 as 0, and "\r\n" inside a quoted
// field as "\n" (encoding/csv). The JSONL line must be the record's JSON and read back as
// it, and the same file torn inside that line (a run killed mid-write) must read as no
// record and one warning naming line 1. ts stays within years 1–9999 with a whole-minute
// offset, as time.Now gives.
func FuzzRunCSVRoundTrip(f *testing.F) {
	for i, r := range goldenRows() {
		f.Add(r.Endpoint, r.Unit, r.Suffix, r.BaseModel, r.VariantLabel, r.ModelTag, r.NumGPU, r.NumCtx, r.Batch,
			r.NumPredict, r.GPULabel, r.GPUName, r.GPUUUID, r.TS.Unix(), uint32(0), int16(120*i), false,
			r.TokensPerSec, r.GPUMemMiB, i == 0, false, 100, int64(2e9), 20, int64(1e8), int64(25e8), uint8(11), int64(1e8), uint16(40))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, endpoint, unit, suffix, baseModel, variant, modelTag, numGPU, numCtx, batch, numPredict,
		gpuLabel, gpuName, gpuUUID string, sec int64, nsec uint32, offsetMin int16, zeroTS bool, tps float64, mem int,
		hasSample, failed bool, outTok int, decodeNs int64, promptTok int, promptNs int64, endNs int64, chunks uint8, gapNs int64,
		cut uint16) {
		ts := fuzzTime(sec, nsec, offsetMin)
		if zeroTS {
			ts = time.Time{}
		}
		row := Row{
			TS: ts, Endpoint: endpoint, Unit: unit, Suffix: suffix, BaseModel: baseModel, VariantLabel: variant,
			ModelTag: modelTag, NumGPU: numGPU, NumCtx: numCtx, Batch: batch, NumPredict: numPredict, TokensPerSec: tps,
			GPULabel: gpuLabel, GPUName: gpuName, GPUUUID: gpuUUID, GPUMemMiB: mem,
		}
		var sample *measure.Sample
		if hasSample {
			sample = &measure.Sample{
				Stack: "ollama", Endpoint: endpoint, Model: baseModel, ModelTag: modelTag, Label: variant,
				Settings: map[string]string{"num_gpu": numGPU, "num_ctx": numCtx}, MaxTokens: outTok,
				ServerPromptTokens: promptTok, ServerOutputTokens: outTok, ServerPromptDuration: time.Duration(promptNs),
				ServerDecodeDuration: time.Duration(decodeNs), Start: ts, End: time.Duration(endNs), Outcome: measure.OK,
			}
			for i := range int(chunks) {
				sample.Arrived(time.Duration(gapNs*int64(i+1)), 1)
			}
			if failed {
				sample.Outcome, sample.Error = measure.ErrTimeout, "context deadline exceeded"
			}
		}

		back, recs, jsonl := writeAndReadBack(t, dir, []Row{row}, []*measure.Sample{sample})
		got := back[0]
		want := row
		want.TS = ts.Truncate(time.Second)
		want.TokensPerSec, _ = strconv.ParseFloat(strconv.FormatFloat(finite(tps), 'f', 2, 64), 64)
		want.GPUMemMiB = max(mem, 0)
		for _, s := range []*string{&want.Endpoint, &want.Unit, &want.Suffix, &want.BaseModel, &want.VariantLabel,
			&want.ModelTag, &want.NumGPU, &want.NumCtx, &want.Batch, &want.NumPredict, &want.GPULabel, &want.GPUName, &want.GPUUUID} {
			*s = strings.ReplaceAll(*s, "\r\n", "\n")
		}
		if !got.TS.Equal(want.TS) {
			t.Fatalf("ts %v back, want %v", got.TS, want.TS)
		}
		if _, off := got.TS.Zone(); !zeroTS && off != offsetOf(ts) {
			t.Fatalf("ts %v back: offset %d, want %d", got.TS, off, offsetOf(ts))
		}
		got.TS, want.TS = time.Time{}, time.Time{}
		if got != want {
			t.Fatalf("row read back:\n got %+v\nwant %+v", got, want)
		}
		checkRecordMatchesRow(t, 0, recs[0], back[0])

		// The JSONL line is exactly the record, and reads back as it; torn anywhere inside, it
		// is one warning.
		line, err := json.Marshal(NewRecord(row, sample))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(jsonl, append(line, '\n')) {
			t.Fatalf("JSONL file\n%s\nwant the record's JSON\n%s", jsonl, line)
		}
		var wantRec Record
		if err := json.Unmarshal(line, &wantRec); err != nil || !reflect.DeepEqual(recs[0], wantRec) {
			t.Fatalf("JSONL record read back as\n%+v\nwant\n%+v (%v)", recs[0], wantRec, err)
		}
		k := 1 + int(cut)%(len(line)-1)
		path := tempFile(t, dir, "torn_*.jsonl", line[:k])
		recs, warns, err := ReadRunJSONL(path)
		if err != nil || len(recs) != 0 || len(warns) != 1 || !strings.HasPrefix(warns[0], path+":1: ") {
			t.Fatalf("line torn after %d of %d bytes: %d records, warnings %q, error %v; want one warning for line 1", k, len(line), len(recs), warns, err)
		}
	})
}

// FuzzReadRunJSONL reads arbitrary files as run JSONL. It checks that ReadRunJSONL never
// panics and gives no error (every line is short of its 64 MiB limit); that every non-blank
// line (lines split as bufio.ScanLines does) is either a record or a warning, each warning one
// line "file:N: …; line skipped" with N rising; and that every record re-encodes to JSON
// that decodes and re-encodes to the same bytes. The seed corpus
// (testdata/fuzz/FuzzReadRunJSONL) holds records as the writer writes them, with and without
// samples, a failed attempt, and a torn last line.
func FuzzReadRunJSONL(f *testing.F) {
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := tempFile(t, dir, "ollama_bench_*.jsonl", data)
		recs, warns, err := ReadRunJSONL(path)
		if err != nil {
			t.Fatalf("%d bytes: error %v", len(data), err)
		}
		lines, nonBlank := 0, 0
		for rest := data; len(rest) > 0; lines++ {
			line := rest
			if i := bytes.IndexByte(rest, '\n'); i >= 0 {
				line, rest = rest[:i], rest[i+1:]
			} else {
				rest = nil
			}
			if len(bytes.TrimSpace(bytes.TrimSuffix(line, []byte("\r")))) > 0 {
				nonBlank++
			}
		}
		if len(recs)+len(warns) != nonBlank {
			t.Fatalf("%d records + %d warnings for %d non-blank lines", len(recs), len(warns), nonBlank)
		}
		checkWarnings(t, warns, path, "; line skipped", 1, lines)
		for i, rec := range recs {
			b, err := json.Marshal(rec)
			if err != nil {
				t.Fatalf("record %d does not re-encode: %v", i, err)
			}
			var again Record
			if err := json.Unmarshal(b, &again); err != nil {
				t.Fatalf("record %d re-encoded as %s does not decode: %v", i, b, err)
			}
			if b2, _ := json.Marshal(again); !bytes.Equal(b, b2) {
				t.Fatalf("record %d: JSON not stable:\n%s\n%s", i, b, b2)
			}
		}
	})
}

// tempFile writes data to a new file in dir, removed when the test ends.
func tempFile(t *testing.T, dir, pattern string, data []byte) string {
	t.Helper()
	fh, err := os.CreateTemp(dir, pattern)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(fh.Name()) })
	_, err = fh.Write(data)
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	return fh.Name()
}

// csvRecords counts the records a lenient CSV reader finds in data.
func csvRecords(t *testing.T, data []byte) int {
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord, r.LazyQuotes = -1, true
	n := 0
	for {
		_, err := r.Read()
		if errors.Is(err, io.EOF) {
			return n
		}
		if err != nil {
			t.Fatalf("lenient CSV reader: %v", err)
		}
		n++
	}
}

// checkWarnings checks that every warning is one line "path:N: …suffix" with first <= N <= last
// and N rising from one warning to the next.
func checkWarnings(t *testing.T, warns []string, path, suffix string, first, last int) {
	t.Helper()
	prev := first - 1
	for _, w := range warns {
		rest, ok := strings.CutPrefix(w, path+":")
		num, _, ok2 := strings.Cut(rest, ": ")
		n, err := strconv.Atoi(num)
		if !ok || !ok2 || err != nil || !strings.HasSuffix(w, suffix) || strings.ContainsAny(w, "\r\n") {
			t.Fatalf("warning %q is not one line %q", w, path+":N: …"+suffix)
		}
		if n <= prev || n > last {
			t.Fatalf("warning %q: line %d after line %d, of %d lines", w, n, prev, last)
		}
		prev = n
	}
}

// writeAndReadBack writes rows (with samples, when not nil) as a run and reads both of its
// files back, failing the test unless every row comes back from each without warnings. It
// returns the rows and records read, and the JSONL file's bytes.
func writeAndReadBack(t *testing.T, dir string, rows []Row, samples []*measure.Sample) ([]Row, []Record, []byte) {
	t.Helper()
	runDir, err := os.MkdirTemp(dir, "run")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(runDir)
	w, err := CreateRun(runDir, "ollama", ts0)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rows {
		var s *measure.Sample
		if samples != nil {
			s = samples[i]
		}
		if err := w.Write(r, s); err != nil {
			w.Close()
			t.Fatalf("row %d: Write: %v", i, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	back, warns, err := ReadRunCSV(w.CSVPath())
	if err != nil || len(warns) != 0 || len(back) != len(rows) {
		t.Fatalf("%d rows written, %d read back, warnings %q, error %v", len(rows), len(back), warns, err)
	}
	recs, warns, err := ReadRunJSONL(w.JSONLPath())
	if err != nil || len(warns) != 0 || len(recs) != len(rows) {
		t.Fatalf("%d rows written, %d JSONL records read back, warnings %q, error %v", len(rows), len(recs), warns, err)
	}
	jsonl, err := os.ReadFile(w.JSONLPath())
	if err != nil {
		t.Fatal(err)
	}
	return back, recs, jsonl
}

// checkRecordMatchesRow checks that a JSONL record carries the values of its CSV row: the same
// ts text, tokens_per_sec and gpu_mem_mib, and the same strings where JSON can carry them
// unchanged (valid UTF-8; the CSV turns a quoted "\r\n" into "\n").
func checkRecordMatchesRow(t *testing.T, i int, rec Record, row Row) {
	t.Helper()
	j, fields := rec.Row, row.Fields()
	if j.TS != fields[0] || j.TokensPerSec != row.TokensPerSec || j.GPUMemMiB != row.GPUMemMiB {
		t.Fatalf("row %d: JSONL ts %q tps %v mem %d, CSV %q %v %d", i, j.TS, j.TokensPerSec, j.GPUMemMiB, fields[0], row.TokensPerSec, row.GPUMemMiB)
	}
	jsonStrings := []string{j.Endpoint, j.Unit, j.Suffix, j.BaseModel, j.VariantLabel, j.ModelTag, j.NumGPU, j.NumCtx,
		j.Batch, j.NumPredict, j.GPULabel, j.GPUName, j.GPUUUID}
	csvStrings := []string{row.Endpoint, row.Unit, row.Suffix, row.BaseModel, row.VariantLabel, row.ModelTag, row.NumGPU,
		row.NumCtx, row.Batch, row.NumPredict, row.GPULabel, row.GPUName, row.GPUUUID}
	for k, s := range csvStrings {
		if utf8.ValidString(s) && strings.ReplaceAll(jsonStrings[k], "\r\n", "\n") != s {
			t.Fatalf("row %d: JSONL has %q where the CSV has %q", i, jsonStrings[k], s)
		}
	}
}

// fuzzTime maps fuzzed numbers to a time between 0001-01-02 and 9999-12-30 in a fixed zone
// of a whole number of minutes within ±23:59.
func fuzzTime(sec int64, nsec uint32, offsetMin int16) time.Time {
	lo := time.Date(1, 1, 2, 0, 0, 0, 0, time.UTC).Unix()
	hi := time.Date(9999, 12, 30, 0, 0, 0, 0, time.UTC).Unix()
	s := lo + int64(uint64(sec)%uint64(hi-lo))
	off := int(offsetMin) % (24 * 60)
	return time.Unix(s, int64(nsec%1e9)).In(time.FixedZone("", off*60))
}

func offsetOf(t time.Time) int {
	_, off := t.Zone()
	return off
}
