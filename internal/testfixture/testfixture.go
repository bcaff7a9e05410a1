// Package testfixture finds the files tests read in the repository's top-level testdata/
// folder (testdata/SOURCES.md says where each comes from). A fixture that is missing fails the
// test: every test a fresh clone holds runs, none is skipped for want of a file.
package testfixture

import (
	"os"
	"path/filepath"
	"testing"
)

// Path returns testdata/<elem...> of the module (the directory holding go.mod, found from the
// working directory up, which is the package directory under go test), failing the test when
// it does not exist.
func Path(t testing.TB, elem ...string) string {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatalf("testfixture: %v", err)
	}
	p := filepath.Join(append([]string{root, "testdata"}, elem...)...)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("fixture missing: %v (testdata/SOURCES.md lists the fixtures and where they come from)", err)
	}
	return p
}

// Repo returns <elem...> relative to the module root — a file committed outside testdata/,
// such as the GPU results in results/gpu — failing the test when it does not exist.
func Repo(t testing.TB, elem ...string) string {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatalf("testfixture: %v", err)
	}
	p := filepath.Join(append([]string{root}, elem...)...)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("committed file missing: %v", err)
	}
	return p
}

// Original returns testdata/original/<name>: a file of the original bash system.
func Original(t testing.TB, name string) string {
	t.Helper()
	return Path(t, "original", name)
}

// OriginalDir returns testdata/original, the folder of the original system's files.
func OriginalDir(t testing.TB) string {
	t.Helper()
	return Path(t, "original")
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", &os.PathError{Op: "find go.mod above", Path: dir, Err: os.ErrNotExist}
		}
	}
}
