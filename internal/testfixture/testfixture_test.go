package testfixture

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
)

// TestSourcesListsEveryFixture keeps testdata/SOURCES.md honest: every file under testdata/
// has a row in its table, and every row names a file that is there.
func TestSourcesListsEveryFixture(t *testing.T) {
	root := Path(t)
	doc, err := os.ReadFile(Path(t, "SOURCES.md"))
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, m := range regexp.MustCompile("(?m)^\\| `([^`]+)` \\|").FindAllStringSubmatch(string(doc), -1) {
		listed = append(listed, m[1])
	}
	if len(listed) == 0 {
		t.Fatal("SOURCES.md has no table rows")
	}
	var present []string
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err == nil && rel != "SOURCES.md" {
			present = append(present, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range present {
		if !slices.Contains(listed, f) {
			t.Errorf("testdata/%s is not listed in testdata/SOURCES.md", f)
		}
	}
	for _, f := range listed {
		if !slices.Contains(present, f) {
			t.Errorf("testdata/SOURCES.md lists %s, which is not in testdata/", f)
		}
	}
	if got := Original(t, "benchmarks.csv"); filepath.Base(filepath.Dir(got)) != "original" {
		t.Errorf("Original: %s", got)
	}
}
