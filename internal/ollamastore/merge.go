package ollamastore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// MergeOptions tunes Merge.
type MergeOptions struct {
	// DryRun reports what would happen and changes nothing (no sha256 is computed).
	DryRun bool
	// Progress receives progress lines (the command passes stderr); nil: none.
	Progress io.Writer
}

// Report says what a merge did (or, dry, would do).
type Report struct {
	Canon, Alt string
	DryRun     bool
	AltMissing bool // ALT does not exist: nothing to do
	SameStore  bool // ALT is CANON (same directory, maybe through a symlink): nothing to do

	BlobsMoved     int // renamed into CANON (same file system)
	BlobsCopied    int // copied into CANON and removed from ALT (across file systems)
	BlobsDeduped   int // in both stores: CANON's copy verified by sha256, ALT's removed
	BlobsRepaired  int // CANON's copy failed its sha256 and was replaced by ALT's verified copy
	ManifestsMoved int // renamed or copied into CANON
	// ManifestsIdentical counts manifests in both stores that describe the same model (same
	// bytes, or the same config and layers): ALT's removed.
	ManifestsIdentical int
	Bytes              int64 // bytes moved or copied into CANON

	// Conflicts names manifests present in both stores with different content: both are
	// kept (CANON's stays in use, ALT's stays in ALT) for a person to decide.
	Conflicts []string
	// Problems lists what was left in ALT and why (corrupt blobs, stray files, manifests
	// whose blobs CANON lacks), one line each.
	Problems []string
	// Repaired names CANON blobs that failed their sha256 and were replaced by ALT's copy.
	Repaired []string
	// AltRemoved: ALT was empty after the merge and was removed.
	AltRemoved bool
}

// Changed reports whether the merge moved, copied, removed or repaired anything.
func (r Report) Changed() bool {
	return r.BlobsMoved+r.BlobsCopied+r.BlobsDeduped+r.BlobsRepaired+r.ManifestsMoved+r.ManifestsIdentical > 0 || r.AltRemoved
}

// Summary is the one-line outcome.
func (r Report) Summary() string {
	verb := "merged"
	if r.DryRun {
		verb = "would merge"
	}
	switch {
	case r.AltMissing:
		return fmt.Sprintf("no ALT store at %s: nothing to do", r.Alt)
	case r.SameStore:
		return fmt.Sprintf("ALT %s is CANON %s: nothing to do", r.Alt, r.Canon)
	case !r.Changed():
		s := fmt.Sprintf("nothing to do: %s holds nothing CANON %s lacks", r.Alt, r.Canon)
		if n := len(r.Conflicts) + len(r.Problems); n > 0 {
			s += fmt.Sprintf(" (%d differing manifest(s) and %d problem(s) left in ALT, listed above)", len(r.Conflicts), len(r.Problems))
		}
		return s
	}
	return fmt.Sprintf("%s %s into %s: blobs moved=%d copied=%d deduped=%d repaired=%d, manifests moved=%d identical=%d, %d bytes; differing manifests kept=%d, problems=%d",
		verb, r.Alt, r.Canon, r.BlobsMoved, r.BlobsCopied, r.BlobsDeduped, r.BlobsRepaired,
		r.ManifestsMoved, r.ManifestsIdentical, r.Bytes, len(r.Conflicts), len(r.Problems))
}

var blobNameRE = regexp.MustCompile(`^sha256-([0-9a-f]{64})$`)

// Merge moves the ALT store's blobs/ and manifests/ into CANON: renamed on one file system,
// copied (temporary file, fsync, rename) then removed across file systems. A blob present in
// both is kept once, after CANON's copy passed its sha256 (a failing CANON copy is replaced by
// ALT's when that one passes; when both fail both stay and it is reported). A manifest present
// in both is removed from ALT when identical, else kept in both and reported. Blobs go first
// and a manifest moves only when CANON has every blob it references, so CANON never names a
// blob it lacks. Running it again changes nothing.
func Merge(canon, alt string, opts MergeOptions) (Report, error) {
	r := Report{Canon: canon, Alt: alt, DryRun: opts.DryRun}
	var err error
	if r.Canon, err = filepath.Abs(canon); err != nil {
		return r, err
	}
	if r.Alt, err = filepath.Abs(alt); err != nil {
		return r, err
	}
	ast, err := os.Stat(r.Alt)
	if errors.Is(err, os.ErrNotExist) {
		r.AltMissing = true
		return r, nil
	}
	if err != nil {
		return r, fmt.Errorf("ALT store: %w", err)
	}
	if !ast.IsDir() {
		return r, fmt.Errorf("ALT store %s is not a directory", r.Alt)
	}
	if cst, err := os.Stat(r.Canon); err == nil {
		if !cst.IsDir() {
			return r, fmt.Errorf("CANON store %s is not a directory", r.Canon)
		}
		if os.SameFile(cst, ast) {
			r.SameStore = true
			return r, nil
		}
	}
	if err := checkNesting(r.Canon, r.Alt); err != nil {
		return r, err
	}
	m := &merger{r: &r, canon: Store{Dir: r.Canon}, alt: Store{Dir: r.Alt}, opts: opts}
	if !opts.DryRun {
		for _, d := range []string{m.canon.BlobsDir(), m.canon.ManifestsDir()} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return r, fmt.Errorf("CANON store: %w", err)
			}
		}
	}
	if err := m.blobs(); err != nil {
		return r, err
	}
	if err := m.manifests(); err != nil {
		return r, err
	}
	if !opts.DryRun {
		pruneEmptyDirs(m.alt.BlobsDir(), true)
		pruneEmptyDirs(m.alt.ManifestsDir(), true)
		if os.Remove(r.Alt) == nil {
			r.AltRemoved = true
		}
	}
	return r, nil
}

// checkNesting refuses stores where walking one would walk the other's files.
func checkNesting(canon, alt string) error {
	real := func(p string) string {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			return r
		}
		return p
	}
	c, a := real(canon), real(alt)
	within := func(p, dir string) bool { return p == dir || strings.HasPrefix(p, dir+string(filepath.Separator)) }
	for _, sec := range []string{"blobs", "manifests"} {
		if within(c, filepath.Join(a, sec)) || within(a, filepath.Join(c, sec)) {
			return fmt.Errorf("CANON %s and ALT %s overlap: one lies inside the other's %s/", canon, alt, sec)
		}
	}
	return nil
}

type merger struct {
	r          *Report
	canon, alt Store
	opts       MergeOptions
	// altBlobs: blob names ALT holds (a dry run counts them as already in CANON).
	altBlobs map[string]bool
	prog     progress
}

func (m *merger) problem(format string, args ...any) {
	m.r.Problems = append(m.r.Problems, fmt.Sprintf(format, args...))
}

// move renames src to dst, or copies and removes src across file systems. wantSHA, when
// set, is checked on the copy path (a rename does not read the data).
func (m *merger) move(src, dst, wantSHA string) (copied bool, n int64, err error) {
	st, err := os.Stat(src)
	if err != nil {
		return false, 0, err
	}
	if err := renameFile(src, dst); err == nil {
		return false, st.Size(), nil
	} else if !crossDevice(err) {
		return false, 0, err
	}
	n, err = copyFile(src, dst, wantSHA)
	if err != nil {
		return true, 0, err
	}
	if err := os.Remove(src); err != nil {
		return true, n, fmt.Errorf("copied %s but cannot remove it from ALT: %w", src, err)
	}
	return true, n, nil
}

func (m *merger) blobs() error {
	files, err := regularFiles(m.alt.BlobsDir())
	if err != nil {
		return fmt.Errorf("ALT blobs: %w", err)
	}
	m.altBlobs = map[string]bool{}
	m.prog = progress{w: m.opts.Progress, section: "blobs", total: len(files)}
	for _, name := range files {
		m.blob(name)
		m.prog.step(m.r)
	}
	m.prog.done(m.r)
	return nil
}

func (m *merger) blob(name string) {
	src := filepath.Join(m.alt.BlobsDir(), filepath.FromSlash(name))
	match := blobNameRE.FindStringSubmatch(name)
	if match == nil {
		m.problem("left in ALT: %s is not a content-addressed blob (an interrupted download?)", src)
		return
	}
	m.altBlobs[name] = true
	sum := match[1]
	dst := filepath.Join(m.canon.BlobsDir(), name)
	sst, serr := os.Stat(src)
	dstSt, derr := os.Stat(dst)
	switch {
	case serr != nil:
		m.problem("left in ALT: %v", serr)
	case derr == nil && os.SameFile(sst, dstSt): // hard links of one file
		m.dedup(src)
	case derr == nil:
		m.duplicate(src, dst, sum)
	case !errors.Is(derr, os.ErrNotExist):
		m.problem("left in ALT: %s: %v", src, derr)
	case m.opts.DryRun:
		m.r.BlobsMoved++
		m.r.Bytes += sst.Size()
	default:
		copied, n, err := m.move(src, dst, sum)
		if err != nil {
			if errors.Is(err, errCorrupt) {
				m.problem("left in ALT: %s is corrupt (its content does not match its sha256 name)", src)
			} else {
				m.problem("left in ALT: %s: %v", src, err)
			}
			return
		}
		if copied {
			m.r.BlobsCopied++
		} else {
			m.r.BlobsMoved++
		}
		m.r.Bytes += n
	}
}

// duplicate handles a blob both stores hold.
func (m *merger) duplicate(src, dst, sum string) {
	if m.opts.DryRun {
		m.r.BlobsDeduped++ // pending the sha256 check a real run does
		return
	}
	got, _, err := hashFile(dst)
	if err != nil {
		m.problem("left in ALT: %s (cannot check CANON's copy: %v)", src, err)
		return
	}
	if got == sum {
		m.dedup(src)
		return
	}
	// CANON's copy is corrupt: keep whichever copy is good.
	altSum, _, err := hashFile(src)
	if err != nil || altSum != sum {
		m.problem("corrupt in both stores, both kept: %s and %s do not match sha256:%s", dst, src, sum)
		return
	}
	_, n, err := m.move(src, dst, sum)
	if err != nil {
		m.problem("CANON's %s is corrupt and replacing it with ALT's failed: %v", dst, err)
		return
	}
	m.r.BlobsRepaired++
	m.r.Bytes += n
	m.r.Repaired = append(m.r.Repaired, dst)
}

func (m *merger) dedup(src string) {
	if m.opts.DryRun {
		m.r.BlobsDeduped++
		return
	}
	if err := os.Remove(src); err != nil {
		m.problem("left in ALT: duplicate %s: %v", src, err)
		return
	}
	m.r.BlobsDeduped++
}

func (m *merger) manifests() error {
	files, err := regularFiles(m.alt.ManifestsDir())
	if err != nil {
		return fmt.Errorf("ALT manifests: %w", err)
	}
	m.prog = progress{w: m.opts.Progress, section: "manifests", total: len(files)}
	for _, rel := range files {
		m.manifest(rel)
		m.prog.step(m.r)
	}
	m.prog.done(m.r)
	return nil
}

// sameManifest reports whether two manifests describe the same model: the same bytes, or
// the same config and layers (media type, digest, size). Ollama records where a layer came
// from ("from": a path or a model name) when it creates a model, so one model created in two
// stores differs only there.
func sameManifest(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	var ma, mb Manifest
	if json.Unmarshal(a, &ma) != nil || json.Unmarshal(b, &mb) != nil {
		return false
	}
	return ma.SchemaVersion == mb.SchemaVersion && ma.MediaType == mb.MediaType &&
		ma.Config == mb.Config && slices.Equal(ma.Layers, mb.Layers)
}

// manifestName shows a manifest's path as a model name when it has Ollama's four levels.
func manifestName(rel string) string {
	p := strings.Split(rel, "/")
	if len(p) == 4 {
		return Name{Host: p[0], Namespace: p[1], Model: p[2], Tag: p[3]}.String()
	}
	return rel
}

func (m *merger) manifest(rel string) {
	src := filepath.Join(m.alt.ManifestsDir(), filepath.FromSlash(rel))
	dst := filepath.Join(m.canon.ManifestsDir(), filepath.FromSlash(rel))
	name := manifestName(rel)
	srcData, err := os.ReadFile(src)
	if err != nil {
		m.problem("left in ALT: manifest %s: %v", src, err)
		return
	}
	if dstData, err := os.ReadFile(dst); err == nil {
		if !sameManifest(srcData, dstData) {
			m.r.Conflicts = append(m.r.Conflicts, name)
			return
		}
		if !m.opts.DryRun {
			if err := os.Remove(src); err != nil {
				m.problem("left in ALT: identical manifest %s: %v", src, err)
				return
			}
		}
		m.r.ManifestsIdentical++
		return
	} else if !errors.Is(err, os.ErrNotExist) {
		m.problem("left in ALT: manifest %s (CANON's copy unreadable: %v)", src, err)
		return
	}
	var man Manifest
	if err := json.Unmarshal(srcData, &man); err != nil {
		m.problem("left in ALT: %s is not a valid manifest: %v", src, err)
		return
	}
	for _, d := range man.Digests() {
		blob, err := m.canon.BlobPath(d)
		if err != nil {
			m.problem("left in ALT: manifest %s: %v", name, err)
			return
		}
		if _, err := os.Stat(blob); err == nil || (m.opts.DryRun && m.altBlobs[filepath.Base(blob)]) {
			continue
		}
		m.problem("left in ALT: manifest %s references %s, which CANON lacks", name, d)
		return
	}
	if m.opts.DryRun {
		m.r.ManifestsMoved++
		return
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		m.problem("left in ALT: manifest %s: %v", name, err)
		return
	}
	if _, n, err := m.move(src, dst, ""); err != nil {
		m.problem("left in ALT: manifest %s: %v", name, err)
	} else {
		m.r.ManifestsMoved++
		m.r.Bytes += n
	}
}

// progress prints "[section] done/total (pct%) …" lines: every 200 files or once a second,
// and once at the end of the section.
type progress struct {
	w        io.Writer
	section  string
	total, n int
	last     time.Time
}

func (p *progress) line(r *Report) {
	pct := 100
	if p.total > 0 {
		pct = p.n * 100 / p.total
	}
	fmt.Fprintf(p.w, "[%s] %d/%d (%d%%) blobs moved=%d copied=%d deduped=%d repaired=%d manifests moved=%d identical=%d differing=%d problems=%d\n",
		p.section, p.n, p.total, pct, r.BlobsMoved, r.BlobsCopied, r.BlobsDeduped, r.BlobsRepaired,
		r.ManifestsMoved, r.ManifestsIdentical, len(r.Conflicts), len(r.Problems))
}

func (p *progress) step(r *Report) {
	p.n++
	if p.w == nil || p.n == p.total {
		return
	}
	if now := time.Now(); p.n%200 == 0 || now.Sub(p.last) >= time.Second {
		p.last = now
		p.line(r)
	}
}

func (p *progress) done(r *Report) {
	if p.w != nil {
		p.line(r)
	}
}
