package results

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
)

// maxSameSecondRuns bounds the _N suffixes CreatePair tries.
const maxSameSecondRuns = 1000

// Pair is a run's two files: <stem>.csv (header first) and <stem>.jsonl beside it, appended
// together under one lock, every append handed to the operating system before it returns.
// The benchmark run writer and the serving writer both write through it.
type Pair struct {
	mu        sync.Mutex
	csvFile   *os.File
	jsonlFile *os.File
	csv       *csv.Writer
	csvPath   string
	jsonlPath string
	closed    bool
}

// CreatePair creates <logDir>/<stem>.csv with header written and <stem>.jsonl, never
// overwriting: when either name exists (two runs started in the same second), the next free
// <stem>_2, _3, … is used.
func CreatePair(logDir, stem string, header []string) (*Pair, error) {
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, fmt.Errorf("results: create log dir: %w", err)
	}
	for n := 1; n <= maxSameSecondRuns; n++ {
		base := stem
		if n > 1 {
			base += "_" + strconv.Itoa(n)
		}
		p, err := createPair(filepath.Join(logDir, base), header)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return p, nil
	}
	return nil, fmt.Errorf("results: %s: %d runs with this timestamp already exist",
		filepath.Join(logDir, stem+".csv"), maxSameSecondRuns)
}

// createPair creates base.csv and base.jsonl exclusively; fs.ErrExist if either exists.
func createPair(base string, header []string) (*Pair, error) {
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
		return nil, fmt.Errorf("results: create %s: %w", csvPath, err)
	}
	jf, err := os.OpenFile(jsonlPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		cf.Close()
		os.Remove(csvPath)
		if errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		return nil, fmt.Errorf("results: create %s: %w", jsonlPath, err)
	}
	p := &Pair{csvFile: cf, jsonlFile: jf, csv: csv.NewWriter(cf), csvPath: csvPath, jsonlPath: jsonlPath}
	if err := p.csv.Write(header); err == nil {
		p.csv.Flush()
	}
	if err := p.csv.Error(); err != nil {
		cf.Close()
		jf.Close()
		os.Remove(csvPath)
		os.Remove(jsonlPath)
		return nil, fmt.Errorf("results: write header of %s: %w", csvPath, err)
	}
	return p, nil
}

// CSVPath is the path of the CSV.
func (p *Pair) CSVPath() string { return p.csvPath }

// JSONLPath is the path of the JSONL.
func (p *Pair) JSONLPath() string { return p.jsonlPath }

// Append writes row to the CSV (none when nil) and jsonl (whole lines, possibly several) to
// the JSONL, and hands both to the operating system before returning.
func (p *Pair) Append(row []string, jsonl []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return fmt.Errorf("results: write to closed run %s", p.csvPath)
	}
	if row != nil {
		if err := p.csv.Write(row); err != nil {
			return fmt.Errorf("results: write %s: %w", p.csvPath, err)
		}
		p.csv.Flush()
		if err := p.csv.Error(); err != nil {
			return fmt.Errorf("results: write %s: %w", p.csvPath, err)
		}
	}
	if len(jsonl) > 0 {
		if _, err := p.jsonlFile.Write(jsonl); err != nil {
			return fmt.Errorf("results: write %s: %w", p.jsonlPath, err)
		}
	}
	return nil
}

// Sync commits both files to stable storage.
func (p *Pair) Sync() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	return errors.Join(p.csvFile.Sync(), p.jsonlFile.Sync())
}

// Close syncs and closes both files. Calling it again is a no-op.
func (p *Pair) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	p.csv.Flush()
	return errors.Join(
		p.csv.Error(),
		p.csvFile.Sync(), p.csvFile.Close(),
		p.jsonlFile.Sync(), p.jsonlFile.Close(),
	)
}
