package profile

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/fuze-ai/fuze/internal/envfile"
)

func templatePath(t *testing.T, mode string) string {
	t.Helper()
	p := Layout{Root: filepath.Join("..", "..")}.Template(mode)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("shipped template missing: %v", err)
	}
	return p
}

func TestGenerateRendersEscapedTagAndSkipsExisting(t *testing.T) {
	dest := t.TempDir()
	var out bytes.Buffer
	tags := []string{"llama3.1:8b", "gemma3:4b-it-fp16", "other/x:latest"}
	o := GenerateOptions{Template: templatePath(t, "explore"), Dest: dest, Include: regexp.MustCompile(`llama|gemma`)}
	res, err := Generate(&out, tags, o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Considered != 2 || res.Written != 2 || res.Skipped != 0 {
		t.Fatalf("%+v\n%s", res, out.String())
	}
	path := filepath.Join(dest, "LLM-FuZe-llama3.1-8b.env")
	f, err := envfile.ParseFile(path)
	if err != nil {
		t.Fatal(err)
	}
	inc, _ := f.Lookup("INCLUDE_MODELS")
	re := regexp.MustCompile(inc)
	if inc != `^llama3\.1:8b$` || !re.MatchString("llama3.1:8b") || re.MatchString("llama3x1:8b") {
		t.Fatalf("INCLUDE_MODELS=%q", inc)
	}
	if EmbeddedTag(f) != "llama3.1:8b" {
		t.Fatalf("embedded tag %q", EmbeddedTag(f))
	}
	if v, _ := f.Lookup("ALIAS_SUFFIX"); v != "-explore" {
		t.Fatalf("ALIAS_SUFFIX %q", v)
	}
	// Second run: existing files are kept; a dry run with --overwrite plans without writing.
	out.Reset()
	res, _ = Generate(&out, tags, o)
	if res.Skipped != 2 || !strings.Contains(out.String(), "skip (exists): "+path) {
		t.Fatalf("%+v\n%s", res, out.String())
	}
	out.Reset()
	os.WriteFile(path, []byte("EDITED=1\n"), 0o644)
	o.Overwrite, o.DryRun = true, true
	Generate(&out, tags, o)
	if got, _ := os.ReadFile(path); string(got) != "EDITED=1\n" || !strings.Contains(out.String(), "plan write : "+path+"  (MODEL_TAG=llama3.1:8b)") {
		t.Fatalf("dry run wrote or did not plan:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "Summary: models=2 written=0 skipped=0 dest="+dest+" template=FuZeCORE-explore.env.template") {
		t.Fatalf("summary line:\n%s", out.String())
	}
}

func TestDiscoverSortsAndFilters(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	if _, err := Generate(&out, []string{"zeta:1", "alpha:2", "tiny:latest"}, GenerateOptions{Template: templatePath(t, "preprod"), Dest: filepath.Join(dir, "preprod")}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o644)
	all, err := Discover(dir, nil)
	if err != nil || len(all) != 3 || !strings.HasSuffix(all[0], "LLM-FuZe-alpha-2.env") || !strings.HasSuffix(all[2], "LLM-FuZe-zeta-1.env") {
		t.Fatalf("%v %v", all, err)
	}
	// By embedded tag (the file name has '-' where the tag has ':').
	got, _ := Discover(dir, []*regexp.Regexp{regexp.MustCompile(`^tiny:latest$`)})
	if len(got) != 1 || !strings.HasSuffix(got[0], "LLM-FuZe-tiny-latest.env") {
		t.Fatalf("%v", got)
	}
	os.WriteFile(filepath.Join(dir, "bad.env"), []byte("X=$(rm -rf /)\n"), 0o644)
	if _, err := Discover(dir, nil); err == nil || !strings.Contains(err.Error(), "bad.env:1") {
		t.Fatalf("a bad env file must be named: %v", err)
	}
}

func TestPromoteCopiesAsIs(t *testing.T) {
	dir := t.TempDir()
	from, to := filepath.Join(dir, "preprod"), filepath.Join(dir, "prod")
	var out bytes.Buffer
	Generate(&out, []string{"a:1", "b:2"}, GenerateOptions{Template: templatePath(t, "preprod"), Dest: from})
	out.Reset()
	n, err := Promote(&out, from, to, []*regexp.Regexp{regexp.MustCompile(`^b:2$`)})
	if err != nil || n != 1 {
		t.Fatal(n, err)
	}
	src, _ := os.ReadFile(filepath.Join(from, "LLM-FuZe-b-2.env"))
	dst, _ := os.ReadFile(filepath.Join(to, "LLM-FuZe-b-2.env"))
	if !bytes.Equal(src, dst) {
		t.Fatal("promotion changed the file")
	}
	if !strings.Contains(out.String(), "Promotion summary: copied=1 from="+from+" to="+to) {
		t.Fatal(out.String())
	}
}
