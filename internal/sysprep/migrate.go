package sysprep

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// LegacyLogDirs are the original's log folders inside a checkout: the stack scripts' and the
// refinery's.
func LegacyLogDirs(repoRoot string) []string {
	return []string{
		filepath.Join(repoRoot, "factory", "LLM", "refinery", "stack", "logs"),
		filepath.Join(repoRoot, "factory", "LLM", "refinery", "logs"),
	}
}

// MigrateOptions configures MigrateLogs.
type MigrateOptions struct {
	Dest    string   // LOG_DIR, already resolved
	Sources []string // legacy folders
	DryRun  bool
	Now     func() time.Time // the rename prefix's clock; nil means time.Now
	Out     io.Writer
}

// MigrateResult counts what MigrateLogs did (or would do, in a dry run).
type MigrateResult struct {
	Moved  int
	Linked int
}

// MigrateLogs moves every entry of each source folder into Dest and then replaces the emptied
// folder by a symlink to Dest. It never overwrites: an entry whose name exists in Dest gets a
// YYYYmmdd_HHMMSS_ prefix (and a counter should that exist too). A source that already
// resolves to Dest (the symlink left by an earlier run) or lies inside it is skipped, so a
// second run changes nothing — the original renamed every file of Dest on its second run.
// Subfolders (debug_<TS>) move as a whole; across filesystems entries are copied, then removed.
func MigrateLogs(o MigrateOptions) (MigrateResult, error) {
	var res MigrateResult
	if o.Out == nil {
		o.Out = io.Discard
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	verb, linkVerb := "moved", "linked"
	if o.DryRun {
		verb, linkVerb = "would move", "would link"
	}
	if o.Dest == "" {
		return res, errors.New("migrate-logs: no destination (LOG_DIR)")
	}
	if !o.DryRun {
		if err := os.MkdirAll(o.Dest, 0o755); err != nil {
			return res, rootHint(err, "migrate-logs: create "+o.Dest)
		}
	}
	dest := realPath(o.Dest)
	var errs []error
	for _, src := range o.Sources {
		st, err := os.Lstat(src)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		real := realPath(src)
		if real == dest || within(real, dest) || within(dest, real) {
			fmt.Fprintf(o.Out, "skip: %s already leads to %s\n", src, o.Dest)
			continue
		}
		if st.Mode()&fs.ModeSymlink != 0 {
			fmt.Fprintf(o.Out, "skip: %s is a symlink to %s, not to %s; left alone\n", src, real, o.Dest)
			continue
		}
		if !st.IsDir() {
			fmt.Fprintf(o.Out, "skip: %s is not a directory\n", src)
			continue
		}
		entries, err := os.ReadDir(src)
		if err != nil {
			errs = append(errs, rootHint(err, "migrate-logs: read "+src))
			continue
		}
		stamp := now().Format("20060102_150405")
		left := 0
		taken := map[string]bool{} // names a dry run would have used
		for _, e := range entries {
			name := freeName(o.Dest, e.Name(), stamp, taken)
			taken[name] = true
			from, to := filepath.Join(src, e.Name()), filepath.Join(o.Dest, name)
			if !o.DryRun {
				if err := moveEntry(from, to); err != nil {
					errs = append(errs, rootHint(err, "migrate-logs: move "+from))
					left++
					continue
				}
			}
			res.Moved++
			if name == e.Name() {
				fmt.Fprintf(o.Out, "%s: %s -> %s\n", verb, from, to)
			} else {
				fmt.Fprintf(o.Out, "%s: %s -> %s (renamed: %s exists)\n", verb, from, to, e.Name())
			}
		}
		if left > 0 {
			fmt.Fprintf(o.Out, "kept: %s still holds %d entries; not linked\n", src, left)
			continue
		}
		if !o.DryRun {
			if err := os.Remove(src); err != nil {
				errs = append(errs, rootHint(err, "migrate-logs: remove emptied "+src))
				continue
			}
			if err := os.Symlink(o.Dest, src); err != nil {
				errs = append(errs, rootHint(err, "migrate-logs: link "+src))
				continue
			}
		}
		res.Linked++
		fmt.Fprintf(o.Out, "%s: %s -> %s\n", linkVerb, src, o.Dest)
	}
	if o.DryRun {
		fmt.Fprintf(o.Out, "Summary: would move %d files into %s (dry run: nothing changed)\n", res.Moved, o.Dest)
	} else {
		fmt.Fprintf(o.Out, "Summary: moved %d files into %s\n", res.Moved, o.Dest)
	}
	return res, errors.Join(errs...)
}

// realPath resolves symlinks and makes path absolute; an unresolvable path stays as given.
func realPath(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	if r, err := filepath.EvalSymlinks(path); err == nil {
		return r
	}
	return filepath.Clean(path)
}

// within reports whether path lies strictly inside dir.
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// freeName returns name when dir has no such entry, else stamp_name, else stamp_N_name.
func freeName(dir, name, stamp string, taken map[string]bool) string {
	free := func(n string) bool {
		if taken[n] {
			return false
		}
		_, err := os.Lstat(filepath.Join(dir, n))
		return errors.Is(err, fs.ErrNotExist)
	}
	if free(name) {
		return name
	}
	if n := stamp + "_" + name; free(n) {
		return n
	}
	for i := 1; ; i++ {
		if n := stamp + "_" + strconv.Itoa(i) + "_" + name; free(n) {
			return n
		}
	}
}

// moveEntry renames from to to (which must not exist); across filesystems it copies the file
// or tree and then removes the original.
func moveEntry(from, to string) error {
	err := os.Rename(from, to)
	if err == nil || !errors.Is(err, syscall.EXDEV) {
		return err
	}
	if err := copyTree(from, to); err != nil {
		os.RemoveAll(to)
		return err
	}
	return os.RemoveAll(from)
}

func copyTree(from, to string) error {
	return filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		target := filepath.Join(to, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.Mkdir(target, info.Mode().Perm())
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case d.Type().IsRegular():
			return copyFile(path, target, info)
		default:
			return nil // sockets and fifos are not logs
		}
	})
}

func copyFile(from, to string, info fs.FileInfo) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, info.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Chtimes(to, info.ModTime(), info.ModTime())
}
