package sysprep

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// snapshot maps every path under dir (relative) to its content ("<dir>" for folders).
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	snap := map[string]string{}
	err := filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if info.IsDir() {
			snap[rel] = "<dir>"
			return nil
		}
		b, err := os.ReadFile(path)
		snap[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

func keys(m map[string]string) []string {
	var k []string
	for key := range m {
		k = append(k, key)
	}
	sort.Strings(k)
	return k
}

func TestMigrateLogsTwiceRenamesNothing(t *testing.T) {
	root := t.TempDir()
	legacy := LegacyLogDirs(root)
	dest := filepath.Join(t.TempDir(), "fuze-stack")
	writeFile(t, filepath.Join(legacy[0], "ollama_bench_20250913_010101.csv"), "stack")
	writeFile(t, filepath.Join(legacy[0], "wrapper_1.log"), "legacy wrapper")
	writeFile(t, filepath.Join(legacy[0], "debug_20250913_010101", "req.json"), "{}")
	writeFile(t, filepath.Join(legacy[1], "ollama_bench_20250913_010101.csv"), "refinery")
	writeFile(t, filepath.Join(dest, "wrapper_1.log"), "already in LOG_DIR")

	first := time.Date(2025, 1, 2, 3, 4, 5, 0, time.Local)
	var out bytes.Buffer
	res, err := MigrateLogs(MigrateOptions{Dest: dest, Sources: legacy, Now: func() time.Time { return first }, Out: &out})
	if err != nil {
		t.Fatal(err)
	}
	if res.Moved != 4 || res.Linked != 2 {
		t.Fatalf("first run %+v\n%s", res, out.String())
	}
	want := map[string]string{
		".":                                "<dir>",
		"ollama_bench_20250913_010101.csv": "stack",
		"20250102_030405_ollama_bench_20250913_010101.csv": "refinery",
		"wrapper_1.log":                  "already in LOG_DIR",
		"20250102_030405_wrapper_1.log":  "legacy wrapper",
		"debug_20250913_010101":          "<dir>",
		"debug_20250913_010101/req.json": "{}",
	}
	got := snapshot(t, dest)
	if strings.Join(keys(got), "\n") != strings.Join(keys(want), "\n") {
		t.Fatalf("LOG_DIR after the first run:\n%v\nwant\n%v\n%s", keys(got), keys(want), out.String())
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	for _, l := range legacy {
		if target, err := os.Readlink(l); err != nil || target != dest {
			t.Errorf("%s: link %q %v", l, target, err)
		}
	}
	for _, line := range []string{
		"moved: " + filepath.Join(legacy[0], "wrapper_1.log") + " -> " + filepath.Join(dest, "20250102_030405_wrapper_1.log") + " (renamed: wrapper_1.log exists)",
		"linked: " + legacy[1] + " -> " + dest,
		"Summary: moved 4 files into " + dest,
	} {
		if !strings.Contains(out.String(), line+"\n") {
			t.Errorf("output lacks %q:\n%s", line, out.String())
		}
	}

	// Second run, a second later: the sources now lead to LOG_DIR and are skipped.
	out.Reset()
	res, err = MigrateLogs(MigrateOptions{Dest: dest, Sources: legacy, Now: func() time.Time { return first.Add(time.Second) }, Out: &out})
	if err != nil {
		t.Fatal(err)
	}
	if res.Moved != 0 || res.Linked != 0 || strings.Contains(out.String(), "moved:") {
		t.Fatalf("second run %+v:\n%s", res, out.String())
	}
	if after := snapshot(t, dest); strings.Join(keys(after), "\n") != strings.Join(keys(got), "\n") {
		t.Fatalf("second run changed LOG_DIR: %v", keys(after))
	}
	for _, l := range legacy {
		if target, err := os.Readlink(l); err != nil || target != dest {
			t.Errorf("%s: link %q %v after the second run", l, target, err)
		}
	}
	if !strings.Contains(out.String(), "Summary: moved 0 files into "+dest) {
		t.Errorf("second run output:\n%s", out.String())
	}
}

func TestMigrateLogsDryRun(t *testing.T) {
	root := t.TempDir()
	legacy := LegacyLogDirs(root)
	dest := t.TempDir()
	writeFile(t, filepath.Join(legacy[0], "a.csv"), "a")
	writeFile(t, filepath.Join(dest, "a.csv"), "kept")
	before := snapshot(t, root)
	var out bytes.Buffer
	res, err := MigrateLogs(MigrateOptions{Dest: dest, Sources: legacy, DryRun: true, Out: &out,
		Now: func() time.Time { return time.Date(2025, 1, 2, 3, 4, 5, 0, time.Local) }})
	if err != nil || res.Moved != 1 || res.Linked != 1 {
		t.Fatalf("%+v %v", res, err)
	}
	if after := snapshot(t, root); len(after) != len(before) || after[filepath.Join("factory", "LLM", "refinery", "stack", "logs", "a.csv")] != "a" {
		t.Fatalf("dry run changed the sources: %v", keys(after))
	}
	if got := snapshot(t, dest); got["a.csv"] != "kept" || len(got) != 2 {
		t.Fatalf("dry run changed LOG_DIR: %v", got)
	}
	if !strings.Contains(out.String(), "would move: "+filepath.Join(legacy[0], "a.csv")+" -> "+filepath.Join(dest, "20250102_030405_a.csv")) ||
		!strings.Contains(out.String(), "Summary: would move 1 files") {
		t.Errorf("output:\n%s", out.String())
	}
}

// A source that is LOG_DIR itself (LOG_DIR pointed at the old folder) is left alone.
func TestMigrateLogsSourceIsDest(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.csv"), "a")
	var out bytes.Buffer
	res, err := MigrateLogs(MigrateOptions{Dest: dir, Sources: []string{dir}, Out: &out})
	if err != nil || res.Moved != 0 {
		t.Fatalf("%+v %v\n%s", res, err, out.String())
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "a.csv")); string(b) != "a" {
		t.Fatal("file touched")
	}
}
