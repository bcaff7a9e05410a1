package ollamastore

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
)

func TestVariants(t *testing.T) {
	names := []string{
		"tiny:latest",
		"LLM-FuZe-tiny-latest-cpu-ng2:latest",
		"LLM-FuZe-tiny-latest-cpu-ng3:latest",
		"LLM-FuZe-gemma3-4b-i-f16-nvidia-rtx-5090-ng34:latest",
		"notes-ng5:latest", // ends like a variant, but has no GPU label: not ours
		"LLM-FuZe-tiny-latest-cpu-ng2:latest",
	}
	all := []string{
		"LLM-FuZe-gemma3-4b-i-f16-nvidia-rtx-5090-ng34:latest",
		"LLM-FuZe-tiny-latest-cpu-ng2:latest",
		"LLM-FuZe-tiny-latest-cpu-ng3:latest",
	}
	if got := Variants(names, VariantFilter{}); !slices.Equal(got, all) {
		t.Errorf("all: %v", got)
	}
	if got := Variants(names, VariantFilter{Match: regexp.MustCompile(`-cpu-`), Keep: regexp.MustCompile(`ng3`)}); !slices.Equal(got, all[1:2]) {
		t.Errorf("match+keep: %v", got)
	}
	dir := t.TempDir()
	f1, f2 := filepath.Join(dir, "a.txt"), filepath.Join(dir, "b.txt")
	os.WriteFile(f1, []byte("LLM-FuZe-tiny-latest-cpu-ng2\n\n# comment\ntiny\n"), 0o644)
	os.WriteFile(f2, []byte("LLM-FuZe-gemma3-4b-i-f16-nvidia-rtx-5090-ng34:latest\n"), 0o644)
	created, err := ReadCreated(f1, f2)
	if err != nil {
		t.Fatal(err)
	}
	if got := Variants(names, VariantFilter{Created: created}); !slices.Equal(got, []string{all[0], all[1]}) {
		t.Errorf("created: %v", got)
	}
	if got := Variants(names, VariantFilter{Created: map[string]bool{}}); len(got) != 0 {
		t.Errorf("empty created list selects %v", got)
	}
	if _, err := ReadCreated(filepath.Join(dir, "missing.txt")); err == nil {
		t.Error("a missing created list gave no error")
	}
}
