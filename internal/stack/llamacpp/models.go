package llamacpp

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/fuze-ai/fuze/internal/envfile"
)

// BuiltinModels is the original's hard-coded list (tag|alias|glob under MODEL_DIR), used when
// neither MODELS, LLAMACPP_MODEL, the models.env file nor any LLAMACPP_PATH_<alias> variable
// names a model.
var BuiltinModels = []string{
	"llama4:16x17b|llama4-16x17b|llama*16*17b*.*gguf",
	"deepseek-r1:70b|deepseek-r1-70b|deepseek*70b*.*gguf",
	"llama4:128x17b|llama4-128x17b|llama*128*17b*.*gguf",
}

// PathVarPrefix starts the variables that name a model's GGUF file.
const PathVarPrefix = "LLAMACPP_PATH_"

// TagVarPrefix names the model tag a GGUF was exported from (LLAMACPP_TAG_<alias>, written by
// `fuze ollama export-gguf` beside LLAMACPP_PATH_<alias>). With it, llama.cpp rows carry the
// same base_model as the Ollama rows of that model, so summaries compare the two stacks on one
// model instead of listing two.
const TagVarPrefix = "LLAMACPP_TAG_"

// Model is one GGUF model to benchmark.
type Model struct {
	Tag    string // CSV base_model (an Ollama tag, or the alias when no tag is known)
	Alias  string
	Path   string
	Source string // where the path came from, for messages
	Bytes  int64  // file size, all parts of a split model
}

// spec is one tag|alias|glob entry.
type spec struct{ Tag, Alias, Glob string }

var nonAlnum = regexp.MustCompile(`[^A-Za-z0-9]`)

// PathKey is the <alias> part of LLAMACPP_PATH_<alias>: every non-alphanumeric character of
// the alias becomes '_'. The original exporter appended one more '_'; both forms are read.
func PathKey(alias string) string { return nonAlnum.ReplaceAllString(alias, "_") }

// exporterAlias is the alias the GGUF exporter gives an Ollama tag: runs of '/' and ':'
// become '-' (the file is written as <alias>.gguf).
func exporterAlias(tag string) string { return separators.ReplaceAllString(tag, "-") }

var separators = regexp.MustCompile(`[/:]+`)

// parseSpec reads a MODELS entry: tag|alias|glob, tag|alias (glob *<alias>*.gguf) or tag.
func parseSpec(entry string) (spec, error) {
	parts := strings.Split(entry, "|")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	if len(parts) > 3 || parts[0] == "" {
		return spec{}, fmt.Errorf("MODELS entry %q: want tag|alias|glob", entry)
	}
	s := spec{Tag: parts[0]}
	if len(parts) > 1 {
		s.Alias = parts[1]
	}
	if len(parts) > 2 {
		s.Glob = parts[2]
	}
	if s.Alias == "" {
		s.Alias = exporterAlias(s.Tag)
	}
	if s.Glob == "" {
		s.Glob = "*" + s.Alias + "*.gguf"
	}
	if strings.ContainsRune(s.Glob, '/') {
		return spec{}, fmt.Errorf("MODELS entry %q: the glob is a file name pattern under MODEL_DIR, without '/'", entry)
	}
	if _, err := filepath.Match(s.Glob, ""); err != nil {
		return spec{}, fmt.Errorf("MODELS entry %q: bad glob: %v", entry, err)
	}
	return s, nil
}

// resolver finds model files.
type resolver struct {
	cfg      *Config
	fileVars map[string]string // models.env assignments
	fileKeys []string          // models.env LLAMACPP_PATH_ keys in file order
	warnings []string
}

func newResolver(cfg *Config) *resolver {
	r := &resolver{cfg: cfg, fileVars: map[string]string{}}
	if cfg.ModelsEnv == "" {
		return r
	}
	f, err := envfile.ParseFile(cfg.ModelsEnv)
	switch {
	case errors.Is(err, os.ErrNotExist):
		// Written by the GGUF export; absent until then.
	case err != nil:
		r.warnings = append(r.warnings, fmt.Sprintf("LLAMACPP_MODELS_ENV: %v (file ignored)", err))
	default:
		seen := map[string]bool{}
		for _, a := range f.Assignments {
			r.fileVars[a.Key] = a.Value
			if strings.HasPrefix(a.Key, PathVarPrefix) && !seen[a.Key] {
				seen[a.Key] = true
				r.fileKeys = append(r.fileKeys, a.Key)
			}
		}
	}
	return r
}

func (r *resolver) varSource(name string) string {
	if r.cfg.PathVarSource != nil {
		if s := r.cfg.PathVarSource(name); s != "" {
			return s
		}
	}
	return "environment"
}

// lookupVar finds LLAMACPP_PATH_<key> or LLAMACPP_PATH_<key>_ naming an existing file: the
// environment and env files first, then the models.env file. Variables that name no file are
// reported in tried.
func (r *resolver) lookupVar(key string) (path, source string, tried []string) {
	names := []string{PathVarPrefix + key, PathVarPrefix + key + "_"}
	for _, n := range names {
		if v := r.cfg.PathVars[n]; v != "" {
			if isFile(v) {
				return v, n + " (from " + r.varSource(n) + ")", nil
			}
			tried = append(tried, fmt.Sprintf("%s=%s (from %s) names no file", n, v, r.varSource(n)))
		}
	}
	for _, n := range names {
		if v := r.fileVars[n]; v != "" {
			if isFile(v) {
				return v, n + " (from " + r.cfg.ModelsEnv + ")", nil
			}
			tried = append(tried, fmt.Sprintf("%s=%s (from %s) names no file", n, v, r.cfg.ModelsEnv))
		}
	}
	return "", "", tried
}

// resolve finds the file of one spec: LLAMACPP_PATH_<alias> (either form), else the first
// match of its glob under MODEL_DIR. The error names what was tried and the variable that
// would set it.
func (r *resolver) resolve(s spec) (Model, error) {
	key := PathKey(s.Alias)
	m := Model{Tag: s.Tag, Alias: s.Alias}
	if t := r.tagOf(key); t != "" && s.Tag == s.Alias {
		// A bare alias names its model by LLAMACPP_TAG_<alias> where one is set (the exporter
		// writes it), so the rows share the base model of the other stacks' rows.
		m.Tag = t
	}
	path, source, tried := r.lookupVar(key)
	if path == "" && r.cfg.ModelDir != "" {
		pattern := filepath.Join(r.cfg.ModelDir, s.Glob)
		matches, _ := filepath.Glob(pattern)
		sort.Strings(matches)
		for _, p := range matches {
			if isFile(p) {
				path, source = p, "MODEL_DIR match of "+pattern
				break
			}
		}
		if path == "" {
			tried = append(tried, "no file matches "+pattern)
		}
	}
	if path == "" {
		if r.cfg.ModelDir == "" {
			tried = append(tried, "MODEL_DIR is empty")
		}
		return m, fmt.Errorf("model file for %s (alias %s) not found: %s; set %s%s=/path/to/model.gguf or put the file in MODEL_DIR",
			s.Tag, s.Alias, strings.Join(tried, "; "), PathVarPrefix, key)
	}
	m.Path, m.Source, m.Bytes = path, source, modelBytes(path)
	return m, nil
}

// Models resolves the models to benchmark, in order:
//   - LLAMACPP_MODEL: that one model (a .gguf path, or a tag or alias resolved as below);
//   - MODELS: its tag|alias|glob entries;
//   - else every LLAMACPP_PATH_<alias> of the models.env file and of the environment;
//   - else the built-in list.
//
// A model whose file is missing is a warning naming the variable that would set it; it is an
// error when it was asked for by LLAMACPP_MODEL or when no model is left.
func (c *Config) Models() ([]Model, []string, error) {
	r := newResolver(c)
	var specs []spec
	for _, e := range c.ModelList {
		s, err := parseSpec(e)
		if err != nil {
			return nil, r.warnings, err
		}
		specs = append(specs, s)
	}
	if c.Model != "" {
		m, err := r.one(c.Model, specs)
		if err != nil {
			return nil, r.warnings, fmt.Errorf("LLAMACPP_MODEL=%s: %w", c.Model, err)
		}
		return []Model{m}, r.warnings, nil
	}
	if len(specs) == 0 {
		if ms, problems, found := r.discover(); found {
			if len(ms) == 0 {
				return nil, r.warnings, fmt.Errorf("no llama.cpp model file found: %s", strings.Join(problems, "; "))
			}
			return ms, append(r.warnings, problems...), nil
		}
		for _, e := range BuiltinModels {
			s, _ := parseSpec(e)
			specs = append(specs, s)
		}
	}
	var out []Model
	var missing []string
	seen := map[string]bool{}
	for _, s := range specs {
		m, err := r.resolve(s)
		if err != nil {
			missing = append(missing, err.Error())
			continue
		}
		if seen[m.Alias] {
			continue
		}
		seen[m.Alias] = true
		out = append(out, m)
	}
	if len(out) == 0 {
		return nil, r.warnings, fmt.Errorf("no llama.cpp model file found: %s", strings.Join(missing, "; "))
	}
	for _, m := range missing {
		r.warnings = append(r.warnings, m+"; skipping it")
	}
	return out, r.warnings, nil
}

// one resolves LLAMACPP_MODEL.
func (r *resolver) one(name string, specs []spec) (Model, error) {
	if strings.HasSuffix(name, ".gguf") && strings.ContainsRune(name, '/') {
		if !isFile(name) {
			return Model{}, fmt.Errorf("no such file")
		}
		alias := strings.TrimSuffix(filepath.Base(name), ".gguf")
		return Model{Tag: alias, Alias: alias, Path: name, Source: "LLAMACPP_MODEL", Bytes: modelBytes(name)}, nil
	}
	for _, s := range append(specs, builtinSpecs()...) {
		if s.Tag == name || s.Alias == name {
			return r.resolve(s)
		}
	}
	s, err := parseSpec(name)
	if err != nil {
		return Model{}, err
	}
	return r.resolve(s)
}

func builtinSpecs() []spec {
	var out []spec
	for _, e := range BuiltinModels {
		s, _ := parseSpec(e)
		out = append(out, s)
	}
	return out
}

// discover lists the models named by LLAMACPP_PATH_<alias> variables: the models.env file's
// in file order, then the environment's sorted by name (an environment variable overrides
// the file's for the same alias). found is false when no such variable exists at all.
func (r *resolver) discover() (models []Model, problems []string, found bool) {
	type entry struct{ name, value, source string }
	var entries []entry
	index := map[string]int{} // alias key (without the exporter's trailing _) → entries index
	add := func(name, value, source string) {
		if value == "" {
			return
		}
		found = true
		k := strings.TrimSuffix(strings.TrimPrefix(name, PathVarPrefix), "_")
		if i, ok := index[k]; ok {
			entries[i] = entry{name, value, source}
			return
		}
		index[k] = len(entries)
		entries = append(entries, entry{name, value, source})
	}
	for _, n := range r.fileKeys {
		add(n, r.fileVars[n], r.cfg.ModelsEnv)
	}
	var names []string
	for n := range r.cfg.PathVars {
		if strings.HasPrefix(n, PathVarPrefix) && len(n) > len(PathVarPrefix) {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		add(n, r.cfg.PathVars[n], r.varSource(n))
	}
	seen := map[string]bool{}
	for _, e := range entries {
		if !isFile(e.value) {
			problems = append(problems, fmt.Sprintf("%s=%s (from %s) names no file; skipping it", e.name, e.value, e.source))
			continue
		}
		key := strings.TrimSuffix(strings.TrimPrefix(e.name, PathVarPrefix), "_")
		// The exporter writes <alias>.gguf: the file name keeps the alias's dashes and dots,
		// which the variable name lost.
		alias := strings.TrimSuffix(filepath.Base(e.value), ".gguf")
		if strings.TrimSuffix(PathKey(alias), "_") != key {
			alias = key
		}
		if seen[alias] {
			continue
		}
		seen[alias] = true
		tag := alias
		if t := r.tagOf(key); t != "" {
			tag = t
		}
		models = append(models, Model{Tag: tag, Alias: alias, Path: e.value, Source: e.name + " (from " + e.source + ")", Bytes: modelBytes(e.value)})
	}
	return models, problems, found
}

// tagOf is the LLAMACPP_TAG_<key> of an alias key: the environment's, else the models.env file's.
func (r *resolver) tagOf(key string) string {
	if v := r.cfg.PathVars[TagVarPrefix+key]; v != "" {
		return v
	}
	return r.fileVars[TagVarPrefix+key]
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

var splitPart = regexp.MustCompile(`^(.*)-(\d{5})-of-(\d{5})\.gguf$`)

// modelBytes is the size of a model file, summing all parts of a split model
// (<name>-00001-of-00003.gguf …).
func modelBytes(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	m := splitPart.FindStringSubmatch(path)
	if m == nil {
		return st.Size()
	}
	n, _ := strconv.Atoi(m[3])
	var total int64
	for i := 1; i <= n; i++ {
		p := fmt.Sprintf("%s-%05d-of-%s.gguf", m[1], i, m[3])
		if st, err := os.Stat(p); err == nil {
			total += st.Size()
		}
	}
	return total
}
