package ollamastore

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"syscall"
)

// Test hooks: tests make them fail with EXDEV to take the cross-filesystem paths on one
// file system.
var (
	renameFile = os.Rename
	linkFile   = os.Link
)

// crossDevice reports an error that a rename or hard link across file systems gives.
func crossDevice(err error) bool { return errors.Is(err, syscall.EXDEV) }

// errCorrupt is returned by copyFile when the content does not have the expected sha256.
var errCorrupt = errors.New("sha256 mismatch")

// hashFile returns the hex sha256 of a file and its size.
func hashFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", n, fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// tempPattern names the temporary file a write to dst goes through; it starts with a
// dot so that neither Ollama (blobs are sha256-*) nor a *.gguf glob ever picks it up.
func tempPattern(dst string) string { return "." + filepath.Base(dst) + ".fuze-tmp-*" }

// copyFile copies src to dst through a temporary file in dst's directory: written, synced,
// given src's mode, times and (when permitted) owner, then renamed over dst; the directory is
// synced. With wantSHA set the copy is checked while it is written and nothing is renamed
// into place on a mismatch (errCorrupt). It returns the bytes copied.
func copyFile(src, dst, wantSHA string) (int64, error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return 0, err
	}
	dir := filepath.Dir(dst)
	tmp, err := os.CreateTemp(dir, tempPattern(dst))
	if err != nil {
		return 0, err
	}
	tmpName := tmp.Name()
	fail := func(err error) (int64, error) {
		tmp.Close()
		os.Remove(tmpName)
		return 0, err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), in)
	if err != nil {
		return fail(fmt.Errorf("copy %s to %s: %w", src, dst, err))
	}
	if wantSHA != "" && hex.EncodeToString(h.Sum(nil)) != wantSHA {
		return fail(fmt.Errorf("%s: %w (content is not sha256:%s)", src, errCorrupt, wantSHA))
	}
	if err := tmp.Chmod(st.Mode().Perm()); err != nil {
		return fail(err)
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && os.Geteuid() == 0 {
		_ = tmp.Chown(int(sys.Uid), int(sys.Gid)) // keep e.g. the ollama user's ownership
	}
	if err := tmp.Sync(); err != nil {
		return fail(fmt.Errorf("sync %s: %w", tmpName, err))
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmpName)
		return 0, err
	}
	_ = os.Chtimes(tmpName, st.ModTime(), st.ModTime()) // Ollama shows a manifest's mtime as "modified"
	if err := os.Rename(tmpName, dst); err != nil {
		os.Remove(tmpName)
		return 0, err
	}
	syncDir(dir)
	return n, nil
}

// linkInto hard-links src as dst, replacing dst atomically (link to a temporary name, then
// rename). Errors are those of link(2): EXDEV across file systems.
func linkInto(src, dst string) error {
	dir := filepath.Dir(dst)
	tmp, err := os.CreateTemp(dir, tempPattern(dst))
	if err != nil {
		return err
	}
	tmpName := tmp.Name()
	tmp.Close()
	os.Remove(tmpName) // link(2) wants a free name; CreateTemp just reserved a unique one
	if err := linkFile(src, tmpName); err != nil {
		return err
	}
	if err := os.Rename(tmpName, dst); err != nil {
		os.Remove(tmpName)
		return err
	}
	syncDir(dir)
	return nil
}

// syncDir makes renames in dir durable; not every file system supports it.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// writeFileAtomic replaces path with data through a synced temporary file; a file being
// replaced keeps its mode and (when permitted) owner.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	var owner *syscall.Stat_t
	if st, err := os.Stat(path); err == nil {
		perm = st.Mode().Perm()
		owner, _ = st.Sys().(*syscall.Stat_t)
	}
	tmp, err := os.CreateTemp(dir, tempPattern(path))
	if err != nil {
		return err
	}
	name := tmp.Name()
	fail := func(err error) error {
		tmp.Close()
		os.Remove(name)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fail(err)
	}
	if err := tmp.Chmod(perm); err != nil {
		return fail(err)
	}
	if owner != nil && os.Geteuid() == 0 {
		_ = tmp.Chown(int(owner.Uid), int(owner.Gid))
	}
	if err := tmp.Sync(); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(name)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(name, path); err != nil {
		os.Remove(name)
		return fmt.Errorf("write %s: %w", path, err)
	}
	syncDir(dir)
	return nil
}

// regularFiles lists the regular files under root (relative, slash-separated, sorted).
// A missing root gives none.
func regularFiles(root string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			if path == root && errors.Is(err, os.ErrNotExist) {
				return filepath.SkipDir
			}
			return err
		}
		if d.Type().IsRegular() {
			rel, _ := filepath.Rel(root, path)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	sort.Strings(out)
	return out, err
}

// pruneEmptyDirs removes the empty directories under root, deepest first, and root itself
// when it ends up empty and removeRoot is set.
func pruneEmptyDirs(root string, removeRoot bool) {
	var dirs []string
	_ = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() && (path != root || removeRoot) {
			dirs = append(dirs, path)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		_ = os.Remove(dirs[i]) // fails, harmlessly, on a directory that is not empty
	}
}
