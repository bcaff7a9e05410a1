package ollamastore

import (
	"bytes"
	"encoding/csv"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/fuze-ai/fuze/internal/envfile"
)

func rowsByModel(rows []ExportRow) map[string]ExportRow {
	out := map[string]ExportRow{}
	for _, r := range rows {
		out[r.Model] = r
	}
	return out
}

func TestExportRealStore(t *testing.T) {
	srv := startStore(t)
	st := Store{Dir: srv.Models}
	dest := filepath.Join(t.TempDir(), "gguf")
	var log bytes.Buffer
	opts := ExportOptions{Store: st, Dest: dest, Log: &log}

	rows, err := Export(opts)
	if err != nil {
		t.Fatal(err)
	}
	byModel := rowsByModel(rows)
	if len(rows) != 3 {
		t.Fatalf("rows %+v", rows)
	}
	for name, file := range map[string]string{modelA: "tiny-latest.gguf", modelB: "example.com-team-two-q8.gguf"} {
		r := byModel[name]
		if r.Status != StatusExported || r.Method != MethodLink || r.Dest != filepath.Join(dest, file) {
			t.Errorf("%s: %+v", name, r)
		}
		e, _ := st.Lookup(name)
		blob, _, _ := st.ModelBlob(e)
		bs, _ := os.Stat(blob)
		ds, err := os.Stat(r.Dest)
		if err != nil || !os.SameFile(bs, ds) {
			t.Errorf("%s: %s is not a hard link of %s (%v)", name, r.Dest, blob, err)
		}
		if r.Bytes != bs.Size() || r.Blob != blob {
			t.Errorf("%s: bytes %d blob %s, want %d %s", name, r.Bytes, r.Blob, bs.Size(), blob)
		}
	}
	if r := byModel[variant]; r.Status != StatusFiltered+":baked variant" || r.Dest != "" {
		t.Errorf("variant: %+v", r)
	}
	if _, err := os.Stat(filepath.Join(dest, FileAlias(variant)+".gguf")); err == nil {
		t.Error("the baked variant was exported")
	}
	if m, _ := filepath.Glob(filepath.Join(dest, "*")); len(m) != 2 {
		t.Errorf("DEST holds %v", m)
	}

	// Second run: nothing to do.
	rows, err = Export(opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{modelA, modelB} {
		if r := rowsByModel(rows)[n]; r.Status != StatusExists || r.Method != MethodSkip {
			t.Errorf("second run %s: %+v", n, r)
		}
	}

	// Include / exclude.
	o2 := opts
	o2.Dest = filepath.Join(t.TempDir(), "inc")
	o2.Include = regexp.MustCompile(`tiny`)
	o2.Exclude = regexp.MustCompile(`ng3`)
	rows, _ = Export(o2)
	got := rowsByModel(rows)
	if got[modelA].Status != StatusExported || !strings.HasPrefix(got[modelB].Status, StatusFiltered) ||
		got[variant].Status != StatusFiltered+":matched by --exclude" {
		t.Errorf("include/exclude rows %+v", rows)
	}

	// Dry run: the plan, no file.
	o3 := opts
	o3.Dest = filepath.Join(t.TempDir(), "dry")
	o3.DryRun = true
	rows, _ = Export(o3)
	if r := rowsByModel(rows)[modelA]; r.Status != StatusDryRun || r.Method != MethodLink {
		t.Errorf("dry run: %+v", r)
	}
	if _, err := os.Stat(o3.Dest); err == nil {
		t.Error("dry run created DEST")
	}
}

func TestExportCopyAcrossFileSystems(t *testing.T) {
	srv := startStore(t)
	linkFile = func(string, string) error { return &os.LinkError{Op: "link", Err: syscall.EXDEV} }
	t.Cleanup(func() { linkFile = os.Link })
	dest := t.TempDir()
	opts := ExportOptions{Store: Store{Dir: srv.Models}, Dest: dest, Include: regexp.MustCompile(`^tiny:`)}
	rows, err := Export(opts)
	if err != nil {
		t.Fatal(err)
	}
	r := rowsByModel(rows)[modelA]
	if r.Status != StatusExported || r.Method != MethodCopy {
		t.Fatalf("%+v", r)
	}
	bs, _ := os.Stat(r.Blob)
	ds, _ := os.Stat(r.Dest)
	if os.SameFile(bs, ds) || sha256File(t, r.Blob) != sha256File(t, r.Dest) || r.Bytes != bs.Size() {
		t.Errorf("copy %s differs from blob %s, or is a link", r.Dest, r.Blob)
	}
	if tmp, _ := filepath.Glob(filepath.Join(dest, ".*")); len(tmp) > 0 {
		t.Errorf("temporary files left: %v", tmp)
	}

	// A valid copy is up to date; a damaged one is exported again; --overwrite re-exports.
	rows, _ = Export(opts)
	if r := rowsByModel(rows)[modelA]; r.Status != StatusExists {
		t.Errorf("valid copy not kept: %+v", r)
	}
	if err := os.Truncate(r.Dest, 100); err != nil {
		t.Fatal(err)
	}
	rows, _ = Export(opts)
	if r := rowsByModel(rows)[modelA]; r.Status != StatusExported || sha256File(t, r.Dest) != sha256File(t, r.Blob) {
		t.Errorf("damaged copy not replaced: %+v", r)
	}
	opts.Overwrite = true
	rows, _ = Export(opts)
	if r := rowsByModel(rows)[modelA]; r.Status != StatusExported || r.Method != MethodCopy {
		t.Errorf("overwrite: %+v", r)
	}

	// GGUF_CLEAN: old *.gguf go, other files stay.
	stray := filepath.Join(dest, "old-model.gguf")
	notes := filepath.Join(dest, "notes.txt")
	for _, p := range []string{stray, notes} {
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	opts.Clean, opts.Overwrite = true, false
	rows, _ = Export(opts)
	if _, err := os.Stat(stray); err == nil {
		t.Error("GGUF_CLEAN kept an old .gguf")
	}
	if _, err := os.Stat(notes); err != nil {
		t.Error("GGUF_CLEAN removed a file that is not a .gguf")
	}
	if r := rowsByModel(rows)[modelA]; r.Status != StatusExported {
		t.Errorf("after clean: %+v", r)
	}
}

func TestExportRejectsNonGGUFBlob(t *testing.T) {
	store := t.TempDir()
	writeManifest(t, store, "bad:latest", map[string][]byte{"config": []byte(`{}`), "model": []byte("not a gguf file at all")}, "model")
	writeManifest(t, store, "remote:latest", map[string][]byte{"config": []byte(`{"remote":1}`)}, "")
	rows, err := Export(ExportOptions{Store: Store{Dir: store}, Dest: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	got := rowsByModel(rows)
	if r := got["bad:latest"]; !r.Failed() || !strings.Contains(r.Status, "not a usable GGUF") || r.OK() {
		t.Errorf("bad: %+v", r)
	}
	if r := got["remote:latest"]; !strings.HasPrefix(r.Status, StatusFiltered+":no local weights") {
		t.Errorf("remote: %+v", r)
	}
	// A name the daemon lists but the store lacks.
	rows, _ = Export(ExportOptions{Store: Store{Dir: store}, Dest: t.TempDir(), Models: []string{"ghost"}})
	if len(rows) != 1 || !strings.Contains(rows[0].Status, "no manifest in") {
		t.Errorf("ghost: %+v", rows)
	}
}

func TestLedgerAndModelsEnv(t *testing.T) {
	dir := t.TempDir()
	keep := filepath.Join(dir, "other.gguf")
	os.WriteFile(keep, []byte("x"), 0o644)
	envPath := filepath.Join(dir, "llama.cpp", "models.env")
	os.MkdirAll(filepath.Dir(envPath), 0o755)
	// A previous file: an old trailing-underscore key of a model exported again, another
	// model's mapping whose file exists, and one whose file is gone.
	os.WriteFile(envPath, []byte("export LLAMACPP_PATH_tiny_latest_="+keep+"\n"+
		"export LLAMACPP_PATH_other=\""+keep+"\"\nLLAMACPP_PATH_gone="+filepath.Join(dir, "gone.gguf")+"\nUNRELATED=1\n"), 0o644)
	rows := []ExportRow{
		{Model: "tiny:latest", Alias: "tiny-latest", Dest: "/g/tiny-latest.gguf", Method: MethodLink, Status: StatusExported, Bytes: 10},
		{Model: "example.com/team/two:q8", Alias: "example.com-team-two-q8", Dest: "/g/it's.gguf", Method: MethodSkip, Status: StatusExists},
		{Model: "x:1", Alias: "x-1", Status: StatusFailed + ":boom, really"},
	}
	written, warn, err := WriteModelsEnv(envPath, rows, []string{"header"})
	if err != nil || warn != "" {
		t.Fatal(err, warn)
	}
	f, err := envfile.ParseFile(envPath)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"LLAMACPP_PATH_tiny_latest":             "/g/tiny-latest.gguf",
		"LLAMACPP_PATH_example_com_team_two_q8": "/g/it's.gguf",
		"LLAMACPP_PATH_other":                   keep,
		// The tag each GGUF came from, so llama.cpp rows name the same model as Ollama's.
		"LLAMACPP_TAG_tiny_latest":             "tiny:latest",
		"LLAMACPP_TAG_example_com_team_two_q8": "example.com/team/two:q8",
	}
	got := f.Map()
	if len(got) != len(want) || len(written) != len(want) {
		t.Fatalf("models.env = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if bash, err := exec.LookPath("bash"); err == nil {
		out, err := exec.Command(bash, "-c", `set -a; . "$1"; printf %s "$LLAMACPP_PATH_example_com_team_two_q8"`, "x", envPath).Output()
		if err != nil || string(out) != "/g/it's.gguf" {
			t.Errorf("bash reads %q (%v)", out, err)
		}
	}

	var buf bytes.Buffer
	if err := WriteLedger(&buf, rows); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(recs[0], ",") != LedgerHeader || len(recs) != 4 || recs[1][5] != "link" || recs[1][6] != "10" || recs[3][7] != "failed:boom, really" {
		t.Errorf("ledger %q", recs)
	}
	p, err := WriteLedgerFile(dir, "20250101_000000", rows)
	if err != nil || filepath.Base(p) != "ollama_export_20250101_000000.csv" {
		t.Errorf("ledger file %s %v", p, err)
	}
}

func TestAliasAndKey(t *testing.T) {
	for name, want := range map[string][2]string{
		"gemma3:4b-it-fp16":       {"gemma3-4b-it-fp16", "LLAMACPP_PATH_gemma3_4b_it_fp16"},
		"tiny:latest":             {"tiny-latest", "LLAMACPP_PATH_tiny_latest"},
		"example.com/team/two:q8": {"example.com-team-two-q8", "LLAMACPP_PATH_example_com_team_two_q8"},
	} {
		if a := FileAlias(name); a != want[0] || EnvKey(a) != want[1] {
			t.Errorf("%s: alias %q key %q, want %v", name, a, EnvKey(a), want)
		}
	}
	for name, skip := range map[string]bool{"llama4:16x17b": true, "deepseek-r1:70b": true, "mixtral:8x7b": true,
		"nomic-embed-text:latest": true, "gemma3:4b": false} {
		if (autoFilterReason(name) != "") != skip {
			t.Errorf("autoFilter(%s) = %q", name, autoFilterReason(name))
		}
	}
}
