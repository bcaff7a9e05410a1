package cli

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fuze-ai/fuze/internal/stack/llamacpp"

	"github.com/fuze-ai/fuze/internal/envfile"
	"github.com/fuze-ai/fuze/internal/gguf"
	"github.com/fuze-ai/fuze/internal/knobs"
	"github.com/fuze-ai/fuze/internal/ollamaapi"
	"github.com/fuze-ai/fuze/internal/ollamastore"
	"github.com/fuze-ai/fuze/internal/ollamatest"
)

// manageResult is what one management command printed and returned.
type manageResult struct {
	out, err string
	e        error
}

// usage reports whether the error would exit with status 2.
func (r manageResult) usage() bool {
	var ue usageError
	return errors.As(r.e, &ue)
}

// runManage runs `fuze stack ollama <command> args…` in-process with the given knobs.
func runManage(t *testing.T, env []string, stdin, command string, args ...string) manageResult {
	t.Helper()
	var out, errb bytes.Buffer
	s := streams{in: strings.NewReader(stdin), out: &out, err: &errb}
	err := runOllamaManage(context.Background(), s, knobs.Resolve(env), command, args)
	return manageResult{out.String(), errb.String(), err}
}

// synthSeed writes the tiny synthetic model with its own seed, so models get distinct blobs.
func synthSeed(t *testing.T, seed uint64) string {
	t.Helper()
	p, _ := gguf.LookupPreset("tiny")
	s, err := gguf.NewSynth(gguf.SynthOptions{Shape: p.Shape, Type: p.Type, Seed: seed, Name: "fuze-tiny"})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "m.gguf")
	if _, err := s.WriteFile(context.Background(), path); err != nil {
		t.Fatal(err)
	}
	return path
}

func createVariant(t *testing.T, srv *ollamatest.Server, name, from string, ng int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := srv.Client.Create(ctx, ollamaapi.CreateRequest{Model: name, From: from, Parameters: map[string]any{"num_gpu": ng}}); err != nil {
		t.Fatal(err)
	}
}

func modelNames(t *testing.T, srv *ollamatest.Server) []string {
	t.Helper()
	ms, err := srv.Client.Tags(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range ms {
		out = append(out, m.Name)
	}
	slices.Sort(out)
	return out
}

func TestOllamaExportCommand(t *testing.T) {
	srv := ollamatest.Start(t)
	srv.CreateModel(t, "tiny", synthSeed(t, 1))
	srv.CreateModel(t, "example.com/team/two:q8", synthSeed(t, 2))
	createVariant(t, srv, "LLM-FuZe-tiny-cpu-ng3", "tiny:latest", 3)

	dir := t.TempDir()
	dest, envOut, logDir := filepath.Join(dir, "gguf"), filepath.Join(dir, "llama.cpp", "models.env"), filepath.Join(dir, "logs")
	env := []string{"LOG_DIR=" + logDir, "OLLAMA_MODELS_DIR=" + srv.Models, "RUN_TS=20250102_030405"}
	args := []string{"--dest", dest, "--host", srv.Addr, "--env-out", envOut}

	r := runManage(t, env, "", "export-gguf", args...)
	if r.e != nil {
		t.Fatalf("%v\n%s%s", r.e, r.out, r.err)
	}
	t.Log(r.out)
	if !strings.Contains(r.out, "Summary: found=3 kept=2 exported=2 up-to-date=0 failed=0") {
		t.Errorf("output:\n%s", r.out)
	}
	// Both GGUFs, hard links of the store's blobs.
	files := map[string]string{"tiny:latest": "tiny-latest.gguf", "example.com/team/two:q8": "example.com-team-two-q8.gguf"}
	for model, file := range files {
		st, err := os.Stat(filepath.Join(dest, file))
		if err != nil {
			t.Fatal(err)
		}
		store := ollamastore.Store{Dir: srv.Models}
		e, err := store.Lookup(model)
		if err != nil {
			t.Fatal(err)
		}
		blob, _, _ := store.ModelBlob(e)
		if bst, err := os.Stat(blob); err != nil || !os.SameFile(st, bst) {
			t.Errorf("%s is not a hard link of the blob %s (%v)", file, blob, err)
		}
		if _, err := gguf.ReadFile(filepath.Join(dest, file)); err != nil {
			t.Errorf("%s (%s): %v", file, model, err)
		}
	}
	if m, _ := filepath.Glob(filepath.Join(dest, "*")); len(m) != 2 {
		t.Errorf("DEST holds %v (the variant must not be exported)", m)
	}
	// models.env parses with the expected keys and paths.
	f, err := envfile.ParseFile(envOut)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"LLAMACPP_PATH_tiny_latest":             filepath.Join(dest, "tiny-latest.gguf"),
		"LLAMACPP_PATH_example_com_team_two_q8": filepath.Join(dest, "example.com-team-two-q8.gguf"),
		"LLAMACPP_TAG_tiny_latest":              "tiny:latest",
		"LLAMACPP_TAG_example_com_team_two_q8":  "example.com/team/two:q8",
	}
	if got := f.Map(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("models.env = %v, want %v", got, want)
	}
	// The llama.cpp driver takes this models.env: both GGUFs, named by their Ollama tags so
	// that both stacks' rows of a model meet in the summaries.
	lc := llamacpp.Config{ModelsEnv: envOut, PathVars: map[string]string{}}
	models, _, err := lc.Models()
	if err != nil {
		t.Fatal(err)
	}
	byTag := map[string]string{}
	for _, m := range models {
		byTag[m.Tag] = m.Path
	}
	if byTag["tiny:latest"] != want["LLAMACPP_PATH_tiny_latest"] || byTag["example.com/team/two:q8"] != want["LLAMACPP_PATH_example_com_team_two_q8"] {
		t.Errorf("llama.cpp driver's models from models.env: %+v", models)
	}
	// The ledger.
	ledger := filepath.Join(logDir, "ollama_export_20250102_030405.csv")
	recs := readCSV(t, ledger)
	if strings.Join(recs[0], ",") != "ts,model,alias,blob,dest,method,bytes,status" || len(recs) != 4 {
		t.Fatalf("ledger %q", recs)
	}
	methods := map[string]string{}
	for _, rec := range recs[1:] {
		methods[rec[1]] = rec[5] + " " + rec[7]
	}
	if methods["tiny:latest"] != "link exported" || methods["LLM-FuZe-tiny-cpu-ng3:latest"] != "none filtered:baked variant" {
		t.Errorf("ledger rows %v", methods)
	}

	// Second run skips both.
	env[2] = "RUN_TS=20250102_030406"
	r = runManage(t, env, "", "export-gguf", args...)
	if r.e != nil || !strings.Contains(r.out, "exported=0 up-to-date=2 failed=0") {
		t.Errorf("second run: %v\n%s", r.e, r.out)
	}

	// Daemon down: the store's manifests are the list.
	r = runManage(t, env, "", "export-gguf", "--dest", dest, "--host", fmt.Sprintf("127.0.0.1:%d", ollamatest.FreePort(t)), "--env-out", envOut)
	if r.e != nil || !strings.Contains(r.err, "does not answer") || !strings.Contains(r.out, "up-to-date=2") {
		t.Errorf("daemon down: %v\n%s%s", r.e, r.out, r.err)
	}

	// Dry run into a new DEST: nothing written but the ledger.
	dry := filepath.Join(dir, "dry")
	env[2] = "RUN_TS=20250102_030407"
	r = runManage(t, env, "", "export-gguf", "--dest", dry, "--host", srv.Addr, "--env-out", filepath.Join(dir, "dry.env"), "--dry-run")
	if r.e != nil || !strings.Contains(r.out, "DRY  link tiny:latest") {
		t.Errorf("dry run: %v\n%s", r.e, r.out)
	}
	for _, p := range []string{dry, filepath.Join(dir, "dry.env")} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("dry run wrote %s", p)
		}
	}

	// Command-line errors are usage errors naming the flag.
	r = runManage(t, env, "", "export-gguf", "--include", "(", "--dest", dest)
	if !r.usage() || !strings.Contains(r.e.Error(), "--include") {
		t.Errorf("bad regex: %v", r.e)
	}
	r = runManage(t, env, "", "export-gguf", "--bogus")
	if !r.usage() {
		t.Errorf("unknown flag: %v", r.e)
	}
	r = runManage(t, []string{"OLLAMA_MODELS_DIR=" + filepath.Join(dir, "nostore"), "LOG_DIR=" + logDir}, "", "export-gguf",
		"--dest", dest, "--host", fmt.Sprintf("127.0.0.1:%d", ollamatest.FreePort(t)), "--env-out", envOut)
	if r.e == nil || !strings.Contains(r.e.Error(), "nostore") {
		t.Errorf("missing store: %v", r.e)
	}
}

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func TestOllamaVariantsCommand(t *testing.T) {
	srv := ollamatest.Start(t)
	srv.CreateModel(t, "tiny", synthSeed(t, 1))
	variants := []string{"LLM-FuZe-tiny-latest-cpu-ng2", "LLM-FuZe-tiny-latest-cpu-ng3", "LLM-FuZe-tiny-latest-nvidia-rtx-5090-ng4"}
	for i, v := range variants {
		createVariant(t, srv, v, "tiny:latest", i+2)
	}
	tagged := func(names ...string) []string {
		var out []string
		for _, n := range names {
			out = append(out, n+":latest")
		}
		return out
	}
	hosts := []string{"--hosts", srv.Addr}
	listed := func(out string) []string {
		var got []string
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "  ") {
				got = append(got, strings.TrimSpace(l))
			}
		}
		return got
	}

	// Dry run (default): exactly the variants, nothing removed.
	r := runManage(t, nil, "", "cleanup-variants", hosts...)
	if r.e != nil || !slices.Equal(listed(r.out), tagged(variants...)) || !strings.Contains(r.out, "[dry-run] would remove 3 model(s)") {
		t.Fatalf("dry run: %v\n%s", r.e, r.out)
	}
	if got := modelNames(t, srv); len(got) != 4 {
		t.Fatalf("dry run removed models: %v", got)
	}
	// --keep, --match.
	r = runManage(t, nil, "", "cleanup-variants", append(hosts, "--keep", "ng3$|ng3:")...)
	if !slices.Equal(listed(r.out), tagged(variants[0], variants[2])) {
		t.Errorf("--keep: %v", listed(r.out))
	}
	r = runManage(t, nil, "", "cleanup-variants", append(hosts, "--match", "-cpu-")...)
	if !slices.Equal(listed(r.out), tagged(variants[0], variants[1])) {
		t.Errorf("--match: %v", listed(r.out))
	}
	// Two created lists: with the flag twice, and as a shell glob expands (extra arguments).
	dir := t.TempDir()
	f1, f2 := filepath.Join(dir, "ollama_created_1.txt"), filepath.Join(dir, "ollama_created_2.txt")
	os.WriteFile(f1, []byte(variants[0]+"\n"), 0o644)
	os.WriteFile(f2, []byte(variants[2]+":latest\ntiny\n"), 0o644)
	for _, args := range [][]string{{"--from-created", f1, "--from-created", f2}, {"--from-created", f1, f2}} {
		r = runManage(t, nil, "", "cleanup-variants", append(hosts, args...)...)
		if r.e != nil || !slices.Equal(listed(r.out), tagged(variants[0], variants[2])) {
			t.Errorf("%v: %v %v", args, r.e, listed(r.out))
		}
	}
	// --force asks; anything but "yes" removes nothing.
	r = runManage(t, nil, "no\n", "cleanup-variants", append(hosts, "--force")...)
	if r.e == nil || !strings.Contains(r.e.Error(), "not confirmed") || len(modelNames(t, srv)) != 4 {
		t.Errorf("unconfirmed: %v", r.e)
	}
	// "yes" on stdin with a created list removes just that one.
	r = runManage(t, nil, "yes\n", "cleanup-variants", append(hosts, "--force", "--from-created", f1)...)
	if r.e != nil || !strings.Contains(r.out, "- removed: "+variants[0]+":latest") {
		t.Errorf("confirmed: %v\n%s", r.e, r.out)
	}
	// --force --yes removes the rest but the kept one; the base model stays.
	r = runManage(t, nil, "", "cleanup-variants", append(hosts, "--force", "--yes", "--keep", "ng3")...)
	if r.e != nil || !strings.Contains(r.out, "Summary: candidates=1 removed=1") {
		t.Errorf("force: %v\n%s", r.e, r.out)
	}
	if got := modelNames(t, srv); !slices.Equal(got, []string{variants[1] + ":latest", "tiny:latest"}) {
		t.Errorf("left: %v", got)
	}
	// Errors: a bad regex (usage), a missing list, an unreachable host, a stray argument.
	if r = runManage(t, nil, "", "cleanup-variants", append(hosts, "--keep", "[")...); !r.usage() || !strings.Contains(r.e.Error(), "--keep") {
		t.Errorf("bad regex: %v", r.e)
	}
	if r = runManage(t, nil, "", "cleanup-variants", append(hosts, "--from-created", filepath.Join(dir, "none.txt"))...); r.e == nil || !strings.Contains(r.e.Error(), "none.txt") {
		t.Errorf("missing list: %v", r.e)
	}
	if r = runManage(t, nil, "", "cleanup-variants", "--hosts", fmt.Sprintf("127.0.0.1:%d", ollamatest.FreePort(t))); r.e == nil || !strings.Contains(r.e.Error(), "unreachable") {
		t.Errorf("unreachable: %v", r.e)
	}
	if r = runManage(t, nil, "", "cleanup-variants", "stray"); !r.usage() {
		t.Errorf("stray argument: %v", r.e)
	}
}

func TestOllamaStoreCleanupCommand(t *testing.T) {
	srv := ollamatest.Start(t)
	srv.CreateModel(t, "tiny", synthSeed(t, 1))
	alt := filepath.Join(t.TempDir(), "alt")
	srv2 := ollamatest.Start(t, "OLLAMA_MODELS="+alt)
	srv2.CreateModel(t, "tiny", synthSeed(t, 1)) // the same weights: a duplicate blob
	srv2.CreateModel(t, "third", synthSeed(t, 3))
	args := []string{"--canon", srv.Models, "--alt", alt}

	r := runManage(t, nil, "", "store-cleanup", append(args, "--dry-run")...)
	if r.e != nil || !strings.Contains(r.out, "[dry-run] would merge") {
		t.Fatalf("dry run: %v\n%s%s", r.e, r.out, r.err)
	}
	if got := modelNames(t, srv); len(got) != 1 {
		t.Fatalf("dry run merged: %v", got)
	}
	r = runManage(t, nil, "", "store-cleanup", args...)
	t.Log(r.out, r.err)
	if r.e != nil || !strings.Contains(r.out, "merged ") || !strings.Contains(r.err, "[blobs]") {
		t.Fatalf("merge: %v\n%s%s", r.e, r.out, r.err)
	}
	// tiny was created in both stores: its manifests differ only in where the layer came
	// from, so they count as the same model; ALT ends up empty and is removed.
	if strings.Contains(r.err, "differs") {
		t.Errorf("same model reported as differing:\n%s", r.err)
	}
	if _, err := os.Stat(alt); err == nil {
		t.Errorf("empty ALT %s not removed", alt)
	}
	if got := modelNames(t, srv); !slices.Equal(got, []string{"third:latest", "tiny:latest"}) {
		t.Errorf("CANON lists %v", got)
	}
	r = runManage(t, nil, "", "store-cleanup", args...)
	if r.e != nil || !strings.Contains(r.out, "nothing to do") {
		t.Errorf("second run: %v\n%s", r.e, r.out)
	}
	if r = runManage(t, nil, "", "store-cleanup", "--canon", srv.Models, "--alt", filepath.Join(alt, "missing")); r.e != nil || !strings.Contains(r.out, "nothing to do") {
		t.Errorf("missing ALT: %v %s", r.e, r.out)
	}
}

func TestOllamaManageDispatch(t *testing.T) {
	// install is a system command (runOllamaSystem), not a store command: a clear usage error.
	r := runManage(t, nil, "", "install")
	if r.e == nil || !strings.Contains(r.e.Error(), "unknown ollama command: install") {
		t.Errorf("install: %v", r.e)
	}
	var out bytes.Buffer
	cmd := newOllamaCommand(streams{in: strings.NewReader(""), out: &out, err: &out})
	cmd.SetArgs([]string{"--help"})
	cmd.SetOut(&out)
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{"store-cleanup", "cleanup-variants", "export-gguf"} {
		if !strings.Contains(out.String(), sub) {
			t.Errorf("help lacks %s:\n%s", sub, out.String())
		}
	}
}
