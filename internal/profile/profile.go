// Package profile owns env profiles: the explore/preprod templates, generating one env file
// per model from them, promoting preprod profiles to prod, and discovering and filtering the
// profiles a benchmark run uses. Env files are data (package envfile), never executed.
package profile

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/fuze-ai/fuze/internal/envfile"
)

// Layout is where the seed keeps its env files, relative to the repository root.
type Layout struct {
	Root string // FUZE_ROOT
}

// EnvDir is factory/LLM/refinery/stack/env.
func (l Layout) EnvDir() string {
	return filepath.Join(l.Root, "factory", "LLM", "refinery", "stack", "env")
}

// ModeDir is the directory of a mode's env files (explore, preprod, prod).
func (l Layout) ModeDir(mode string) string { return filepath.Join(l.EnvDir(), mode) }

// Template is the template of a mode: explore (aggressive) or preprod (conservative).
func (l Layout) Template(mode string) string {
	return filepath.Join(l.EnvDir(), "templates", "FuZeCORE-"+mode+".env.template")
}

// Modes that have templates.
var Modes = []string{"explore", "preprod"}

// Placeholder is replaced by the model tag when a template is rendered.
const Placeholder = "__MODEL_TAG__"

var separatorRun = regexp.MustCompile(`[/:]+`)

// FileName is the env file name of a model: <ALIAS_PREFIX of the template><tag with runs of
// '/' or ':' replaced by '-'>.env, as the original generator named them.
func FileName(prefix, tag string) string {
	return prefix + separatorRun.ReplaceAllString(tag, "-") + ".env"
}

// Render fills a template for tag. The tag lands inside INCLUDE_MODELS='^…$', so its regex
// metacharacters are escaped: "llama3.1:8b" must not also match "llama3x1:8b".
func Render(template []byte, tag string) []byte {
	return []byte(strings.ReplaceAll(string(template), Placeholder, regexp.QuoteMeta(tag)))
}

// TemplatePrefix is the ALIAS_PREFIX a template sets (default LLM-FuZe-).
func TemplatePrefix(path string) (string, error) {
	f, err := envfile.ParseFile(path)
	if err != nil {
		return "", err
	}
	if p, ok := f.Lookup("ALIAS_PREFIX"); ok && p != "" {
		return p, nil
	}
	return "LLM-FuZe-", nil
}

// GenerateOptions controls Generate.
type GenerateOptions struct {
	Template  string
	Dest      string
	Include   *regexp.Regexp
	Overwrite bool
	DryRun    bool
}

// GenerateResult counts what Generate did.
type GenerateResult struct {
	Considered, Written, Skipped int
}

// Generate writes one env file per model tag into Dest, printing `skip (exists)`,
// `plan write` and `wrote` lines and a summary line to out, as the original generator did.
func Generate(out io.Writer, tags []string, o GenerateOptions) (GenerateResult, error) {
	var res GenerateResult
	tmpl, err := os.ReadFile(o.Template)
	if err != nil {
		return res, fmt.Errorf("env template: %w", err)
	}
	prefix, err := TemplatePrefix(o.Template)
	if err != nil {
		return res, err
	}
	if !o.DryRun {
		if err := os.MkdirAll(o.Dest, 0o755); err != nil {
			return res, err
		}
	}
	for _, tag := range tags {
		if o.Include != nil && !o.Include.MatchString(tag) {
			continue
		}
		res.Considered++
		path := filepath.Join(o.Dest, FileName(prefix, tag))
		if _, err := os.Stat(path); err == nil && !o.Overwrite {
			fmt.Fprintf(out, "skip (exists): %s\n", path)
			res.Skipped++
			continue
		}
		if o.DryRun {
			fmt.Fprintf(out, "plan write : %s  (MODEL_TAG=%s)\n", path, tag)
			continue
		}
		if err := writeAtomic(path, Render(tmpl, tag)); err != nil {
			return res, err
		}
		fmt.Fprintf(out, "wrote       : %s\n", path)
		res.Written++
	}
	fmt.Fprintf(out, "Summary: models=%d written=%d skipped=%d dest=%s template=%s\n",
		res.Considered, res.Written, res.Skipped, o.Dest, filepath.Base(o.Template))
	return res, nil
}

func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// EmbeddedTag is the model tag a profile is for: its INCLUDE_MODELS value with the anchors
// and the regex escaping of Render removed ("" when it has none).
func EmbeddedTag(f *envfile.File) string {
	v, ok := f.Lookup("INCLUDE_MODELS")
	if !ok {
		return ""
	}
	v = strings.TrimSuffix(strings.TrimPrefix(v, "^"), "$")
	return unquoteMeta(v)
}

func unquoteMeta(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Matches reports whether any of res matches the profile's file name or its embedded tag.
func Matches(path string, f *envfile.File, res []*regexp.Regexp) bool {
	if len(res) == 0 {
		return true
	}
	tag := EmbeddedTag(f)
	for _, re := range res {
		if re.MatchString(filepath.Base(path)) || (tag != "" && re.MatchString(tag)) {
			return true
		}
	}
	return false
}

// Discover lists the *.env files under dir (recursively), sorted, and keeps those matching
// any of res (all when res is empty). A file that does not parse is an error naming it.
func Discover(dir string, res []*regexp.Regexp) ([]string, error) {
	var all []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(d.Name(), ".env") {
			all = append(all, path)
		}
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	sort.Strings(all)
	var out []string
	for _, path := range all {
		f, err := envfile.ParseFile(path)
		if err != nil {
			return nil, err
		}
		if Matches(path, f, res) {
			out = append(out, path)
		}
	}
	return out, nil
}

// Promote copies preprod profiles to prod as they are (the seed's "as-is": no rewriting),
// all of them or those matching any of res. It prints `promoted:` lines and a summary.
func Promote(out io.Writer, from, to string, res []*regexp.Regexp) (int, error) {
	files, err := Discover(from, res)
	if err != nil {
		return 0, err
	}
	if err := os.MkdirAll(to, 0o755); err != nil {
		return 0, err
	}
	n := 0
	for _, src := range files {
		data, err := os.ReadFile(src)
		if err != nil {
			return n, err
		}
		dst := filepath.Join(to, filepath.Base(src))
		if err := writeAtomic(dst, data); err != nil {
			return n, err
		}
		fmt.Fprintf(out, "promoted: %s\n", dst)
		n++
	}
	fmt.Fprintf(out, "Promotion summary: copied=%d from=%s to=%s\n", n, from, to)
	return n, nil
}
