package ollamastore

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"github.com/fuze-ai/fuze/internal/naming"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fuze-ai/fuze/internal/envfile"
	"github.com/fuze-ai/fuze/internal/gguf"
)

// ExportOptions configures Export.
type ExportOptions struct {
	Store Store
	Dest  string // directory receiving <alias>.gguf files
	// Models are the names to export as the daemon lists them (/api/tags); nil exports
	// every manifest of the store.
	Models           []string
	Include, Exclude *regexp.Regexp // on the name as Ollama lists it; nil: no filter
	KeepVariants     bool           // also export fuze's baked variants (SKIP_VARIANTS=0)
	AutoFilter       bool           // skip families llama.cpp cannot load from one GGUF (AUTO_FILTER_NON_GGUF)
	Overwrite        bool           // re-export over existing files
	// TrustExisting keeps any existing file without checking it (VALIDATE_EXISTING=0);
	// otherwise an existing file is kept only when it is the blob itself (a hard link) or a
	// valid GGUF of the blob's size.
	TrustExisting bool
	Clean         bool      // remove DEST/*.gguf first (GGUF_CLEAN=1)
	DryRun        bool      // report, change nothing
	Log           io.Writer // one line per model; nil: none
	Now           func() time.Time
}

// Export methods (ledger column "method").
const (
	MethodLink = "link" // hard link to the blob (same file system): no bytes copied
	MethodCopy = "copy" // copied through a temporary file, sha256 checked
	MethodSkip = "skip" // an up-to-date file was already there
	MethodNone = "none" // filtered out or failed
)

// Export statuses (ledger column "status"); filtered and failed ones carry ":<reason>".
const (
	StatusExported = "exported"
	StatusExists   = "exists"
	StatusDryRun   = "dry-run"
	StatusFiltered = "filtered"
	StatusFailed   = "failed"
)

// ExportRow is one ledger row: one model considered by an export.
type ExportRow struct {
	TS     time.Time
	Model  string // the name as Ollama lists it
	Alias  string // FileAlias(Model): the file is <Alias>.gguf, the env key EnvKey(Alias)
	Blob   string // the model layer's blob
	Dest   string // the GGUF file in DEST
	Method string
	Bytes  int64
	Status string
}

// OK reports whether the row leaves a usable GGUF at Dest.
func (r ExportRow) OK() bool { return r.Status == StatusExported || r.Status == StatusExists }

// Failed reports whether the model could not be exported.
func (r ExportRow) Failed() bool { return strings.HasPrefix(r.Status, StatusFailed) }

var aliasSepRE = regexp.MustCompile(`[/:]+`)

// FileAlias is the GGUF file alias of a model name: runs of '/' and ':' become '-'
// ("gemma3:4b-it-fp16" → "gemma3-4b-it-fp16", "tiny:latest" → "tiny-latest"), as the
// original exporter named its files. It carries no ALIAS_PREFIX/SUFFIX, which env files
// change, so every profile finds the same file.
func FileAlias(name string) string { return aliasSepRE.ReplaceAllString(name, "-") }

var nonAlnumRE = regexp.MustCompile(`[^A-Za-z0-9]`)

// EnvPrefix starts every models.env key.
const EnvPrefix = "LLAMACPP_PATH_"

// EnvKey is the models.env variable of an alias: every non-alphanumeric becomes '_'
// (LLAMACPP_PATH_gemma3_4b_it_fp16). The original's form had one more trailing '_'; the
// llama.cpp driver accepts both.
func EnvKey(alias string) string { return EnvPrefix + nonAlnumRE.ReplaceAllString(alias, "_") }

// TagPrefix names the Ollama model a GGUF came from, LLAMACPP_TAG_<alias> beside
// LLAMACPP_PATH_<alias>: the llama.cpp driver reports that tag as base_model, so both stacks'
// rows of one model meet in the summaries.
const TagPrefix = "LLAMACPP_TAG_"

// TagKey is the models.env variable holding the Ollama tag of an alias.
func TagKey(alias string) string { return TagPrefix + strings.TrimPrefix(EnvKey(alias), EnvPrefix) }

var moeSizeRE = regexp.MustCompile(`:[0-9]+x[0-9.]+b`)

// autoFilterReason says why AUTO_FILTER_NON_GGUF skips a model ("" when it does not): the
// families the original found llama.cpp could not load from Ollama's single weights file.
func autoFilterReason(name string) string {
	lower := strings.ToLower(name)
	switch {
	case strings.HasPrefix(lower, "llama4:"), strings.HasPrefix(lower, "deepseek-r1:"):
		return "family llama.cpp cannot load from one GGUF"
	case moeSizeRE.MatchString(lower):
		return "mixture-of-experts size"
	case strings.Contains(lower, "embed"):
		return "embedding model"
	}
	return ""
}

// Export writes the model layer of each selected model into DEST as <alias>.gguf: a hard
// link to the blob on one file system, else a copy through a temporary file (checked against
// the layer's sha256). The blob must be a GGUF (magic, header, metadata and tensor directory
// parse). Up-to-date files are skipped unless Overwrite. It returns one row per model
// considered, filtered ones included; an error only when DEST itself is unusable.
func Export(o ExportOptions) ([]ExportRow, error) {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	logf := func(format string, args ...any) {
		if o.Log != nil {
			fmt.Fprintf(o.Log, format+"\n", args...)
		}
	}
	if o.Dest == "" {
		return nil, errors.New("export: no destination directory")
	}
	entries, err := exportEntries(o)
	if err != nil {
		return nil, err
	}
	if !o.DryRun {
		if err := os.MkdirAll(o.Dest, 0o755); err != nil {
			return nil, fmt.Errorf("GGUF destination: %w", err)
		}
	}
	if o.Clean {
		if err := cleanDest(o.Dest, o.DryRun, logf); err != nil {
			return nil, err
		}
	}
	var rows []ExportRow
	aliases := map[string]string{}
	for _, e := range entries {
		row := ExportRow{TS: now(), Model: e.name, Alias: FileAlias(e.name), Method: MethodNone}
		row.Dest = filepath.Join(o.Dest, row.Alias+".gguf")
		if reason := filterReason(o, e.name); reason != "" {
			row.Status, row.Dest = StatusFiltered+":"+reason, ""
			logf("skip %s: %s", e.name, reason)
			rows = append(rows, row)
			continue
		}
		if other, dup := aliases[strings.ToLower(row.Alias)]; dup {
			row.Status = fmt.Sprintf("%s:file name %s.gguf already used by %s", StatusFailed, row.Alias, other)
		} else {
			aliases[strings.ToLower(row.Alias)] = e.name
			exportOne(o, e, &row)
		}
		switch {
		case strings.HasPrefix(row.Status, StatusFiltered):
			logf("skip %s: %s", e.name, strings.TrimPrefix(row.Status, StatusFiltered+":"))
		case row.Failed():
			logf("FAIL %s: %s", e.name, strings.TrimPrefix(row.Status, StatusFailed+":"))
		case row.Status == StatusDryRun:
			logf("DRY  %-4s %s -> %s (%d bytes)", row.Method, e.name, row.Dest, row.Bytes)
		case row.Status == StatusExists:
			logf("SKIP %s -> %s: up to date", e.name, row.Dest)
		default:
			logf("OK   %-4s %s -> %s (%d bytes)", row.Method, e.name, row.Dest, row.Bytes)
		}
		rows = append(rows, row)
	}
	return rows, nil
}

type exportEntry struct {
	name  string
	entry Entry
	err   error
}

// exportEntries resolves the models to consider, sorted by name.
func exportEntries(o ExportOptions) ([]exportEntry, error) {
	var out []exportEntry
	if o.Models == nil {
		all, err := o.Store.Manifests()
		if err != nil {
			return nil, err
		}
		for _, e := range all {
			out = append(out, exportEntry{name: e.Name.String(), entry: e, err: e.Err})
		}
		return out, nil
	}
	if _, err := os.Stat(o.Store.Dir); err != nil {
		return nil, fmt.Errorf("Ollama model store: %w", err)
	}
	names := append([]string(nil), o.Models...)
	sort.Strings(names)
	for _, n := range names {
		e, err := o.Store.Lookup(n)
		if err == nil {
			n = e.Name.String()
			err = e.Err
		} else if errors.Is(err, ErrNotFound) {
			err = fmt.Errorf("no manifest in %s (is it the daemon's OLLAMA_MODELS store?)", o.Store.Dir)
		}
		out = append(out, exportEntry{name: n, entry: e, err: err})
	}
	return out, nil
}

func filterReason(o ExportOptions, name string) string {
	switch {
	case o.Include != nil && !o.Include.MatchString(name):
		return "not matched by --include"
	case o.Exclude != nil && o.Exclude.MatchString(name):
		return "matched by --exclude"
	case !o.KeepVariants && naming.IsVariant(name):
		return "baked variant"
	case o.AutoFilter:
		return autoFilterReason(name)
	}
	return ""
}

func cleanDest(dest string, dryRun bool, logf func(string, ...any)) error {
	old, err := filepath.Glob(filepath.Join(dest, "*.gguf"))
	if err != nil {
		return err
	}
	for _, p := range old {
		if st, err := os.Lstat(p); err != nil || st.IsDir() {
			continue
		}
		if dryRun {
			logf("DRY  would remove %s (GGUF_CLEAN=1)", p)
			continue
		}
		if err := os.Remove(p); err != nil {
			return fmt.Errorf("GGUF_CLEAN: %w", err)
		}
		logf("removed %s (GGUF_CLEAN=1)", p)
	}
	return nil
}

func failRow(row *ExportRow, format string, args ...any) {
	msg := strings.Join(strings.Fields(fmt.Sprintf(format, args...)), " ")
	row.Status, row.Method = StatusFailed+":"+msg, MethodNone
}

func exportOne(o ExportOptions, e exportEntry, row *ExportRow) {
	if e.err != nil {
		failRow(row, "%v", e.err)
		return
	}
	if _, ok := e.entry.Manifest.ModelLayer(); !ok {
		row.Status, row.Dest = StatusFiltered+":no local weights (no model layer; a remote model?)", ""
		return
	}
	blob, layer, err := o.Store.ModelBlob(e.entry)
	row.Blob = blob
	if err != nil {
		failRow(row, "%v", err)
		return
	}
	bst, err := os.Stat(blob)
	if err != nil {
		failRow(row, "%v", err)
		return
	}
	row.Bytes = bst.Size()
	same := false
	if dst, err := os.Stat(row.Dest); err == nil {
		same = os.SameFile(bst, dst)
		if same || (!o.Overwrite && upToDate(row.Dest, dst, layer, o.TrustExisting)) {
			row.Method, row.Status = MethodSkip, StatusExists
			return
		}
	}
	if _, err := gguf.ReadFile(blob); err != nil {
		failRow(row, "model blob is not a usable GGUF: %v", err)
		return
	}
	if o.DryRun {
		row.Method, row.Status = MethodCopy, StatusDryRun
		if sameDevice(blob, o.Dest) {
			row.Method = MethodLink
		}
		return
	}
	if err := linkInto(blob, row.Dest); err == nil {
		row.Method, row.Status = MethodLink, StatusExported
		return
	}
	// Another file system (or links refused): copy, checking the layer's sha256 on the way.
	sum := ""
	if m := digestRE.FindStringSubmatch(strings.ToLower(layer.Digest)); m != nil {
		sum = m[1]
	}
	n, err := copyFile(blob, row.Dest, sum)
	if err != nil {
		failRow(row, "copy: %v", err)
		return
	}
	row.Method, row.Status, row.Bytes = MethodCopy, StatusExported, n
}

// upToDate decides whether an existing DEST file (not the blob itself) can stay.
func upToDate(path string, st os.FileInfo, layer Layer, trust bool) bool {
	if trust {
		return true
	}
	if layer.Size > 0 && st.Size() != layer.Size {
		return false // another model's weights under this name, or a truncated copy
	}
	_, err := gguf.ReadFile(path)
	return err == nil
}

// sameDevice reports whether path and dir (or its nearest existing parent) are on one
// file system, i.e. whether a hard link can work.
func sameDevice(path, dir string) bool {
	a, err := os.Stat(path)
	if err != nil {
		return false
	}
	for {
		b, err := os.Stat(dir)
		if err == nil {
			as, ok1 := a.Sys().(*syscall.Stat_t)
			bs, ok2 := b.Sys().(*syscall.Stat_t)
			return ok1 && ok2 && as.Dev == bs.Dev
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return false
		}
		dir = parent
	}
}

// LedgerHeader is the export ledger's CSV header.
const LedgerHeader = "ts,model,alias,blob,dest,method,bytes,status"

// LedgerName is the ledger's file name for a run timestamp (YYYYmmdd_HHMMSS).
func LedgerName(ts string) string { return "ollama_export_" + ts + ".csv" }

// WriteLedger writes the rows as CSV: ts (RFC 3339), model, alias, blob, dest, method
// (link|copy|skip|none), bytes (the GGUF's size), status (exported, exists, dry-run,
// filtered:<why>, failed:<why>).
func WriteLedger(w io.Writer, rows []ExportRow) error {
	cw := csv.NewWriter(w)
	_ = cw.Write(strings.Split(LedgerHeader, ","))
	for _, r := range rows {
		_ = cw.Write([]string{r.TS.Format(time.RFC3339), r.Model, r.Alias, r.Blob, r.Dest, r.Method,
			strconv.FormatInt(r.Bytes, 10), r.Status})
	}
	cw.Flush()
	return cw.Error()
}

// WriteLedgerFile writes the ledger as dir/ollama_export_<ts>.csv and returns its path.
func WriteLedgerFile(dir, ts string, rows []ExportRow) (string, error) {
	var buf bytes.Buffer
	if err := WriteLedger(&buf, rows); err != nil {
		return "", err
	}
	path := filepath.Join(dir, LedgerName(ts))
	if err := writeFileAtomic(path, buf.Bytes(), 0o644); err != nil {
		return "", fmt.Errorf("export ledger: %w", err)
	}
	return path, nil
}

// EnvAssignments maps every row that left a usable GGUF to its models.env line, sorted by key.
func EnvAssignments(rows []ExportRow) []envfile.Assignment {
	var out []envfile.Assignment
	for _, r := range rows {
		if r.OK() {
			out = append(out, envfile.Assignment{Key: EnvKey(r.Alias), Value: r.Dest},
				envfile.Assignment{Key: TagKey(r.Alias), Value: r.Model})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// WriteModelsEnv replaces path (atomically) with LLAMACPP_PATH_<alias>='<gguf>' lines that
// envfile.Parse and bash both read: the rows' mappings, plus the previous file's
// LLAMACPP_PATH_ mappings of other models whose file still exists (so an export limited by
// --include does not drop them). header lines are written as comments first. It returns the
// assignments written; a previous file that does not parse is replaced (warning set).
func WriteModelsEnv(path string, rows []ExportRow, header []string) (written []envfile.Assignment, warning string, err error) {
	fresh := EnvAssignments(rows)
	have := map[string]bool{}
	for _, a := range fresh {
		have[a.Key] = true
	}
	written = fresh
	if old, perr := envfile.ParseFile(path); perr == nil {
		kept := map[string]bool{} // alias keys (without prefix) of the old mappings kept
		for _, a := range old.Assignments {
			// The original's keys had one more trailing '_': a fresh key replaces that form too.
			if !strings.HasPrefix(a.Key, EnvPrefix) || have[a.Key] || have[strings.TrimSuffix(a.Key, "_")] {
				continue
			}
			if _, serr := os.Stat(a.Value); serr != nil {
				continue
			}
			have[a.Key] = true
			kept[strings.TrimPrefix(a.Key, EnvPrefix)] = true
			written = append(written, envfile.Assignment{Key: a.Key, Value: a.Value})
		}
		for _, a := range old.Assignments {
			if k, ok := strings.CutPrefix(a.Key, TagPrefix); ok && kept[k] && !have[a.Key] {
				have[a.Key] = true
				written = append(written, envfile.Assignment{Key: a.Key, Value: a.Value})
			}
		}
	} else if !errors.Is(perr, os.ErrNotExist) {
		warning = fmt.Sprintf("previous %s not readable as an env file, replaced: %v", path, perr)
	}
	sort.Slice(written, func(i, j int) bool { return written[i].Key < written[j].Key })
	var buf bytes.Buffer
	for _, h := range header {
		fmt.Fprintf(&buf, "# %s\n", h)
	}
	if err := envfile.Write(&buf, written); err != nil {
		return nil, warning, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, warning, fmt.Errorf("models.env: %w", err)
	}
	if err := writeFileAtomic(path, buf.Bytes(), 0o644); err != nil {
		return nil, warning, fmt.Errorf("models.env: %w", err)
	}
	return written, warning, nil
}
