package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The seed's generator entry point, relative to the repository root.
const generateEnvsScript = "factory/LLM/refinery/stack/env/generate-envs.sh"

// seedTree is a repository root in a temporary folder (FUZE_ROOT) whose scripts are the
// repository's own, linked: scripts/ (fuze.sh), the generator and its templates. bin/fuze is
// this test binary, which runs as fuze (TestMain), so scripts/fuze.sh finds it and builds
// nothing. Files the script writes land in the temporary tree.
func seedTree(t *testing.T) string {
	t.Helper()
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(repo, generateEnvsScript)); err != nil {
		t.Fatalf("the generator entry point is missing: %v", err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	envDir := filepath.Join(root, "factory", "LLM", "refinery", "stack", "env")
	for _, dir := range []string{envDir, filepath.Join(root, "bin")} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{
		filepath.Join(root, "scripts"):            filepath.Join(repo, "scripts"),
		filepath.Join(envDir, "generate-envs.sh"): filepath.Join(repo, generateEnvsScript),
		filepath.Join(envDir, "templates"):        filepath.Join(repo, "factory", "LLM", "refinery", "stack", "env", "templates"),
		filepath.Join(root, "bin", "fuze"):        exe,
	} {
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

type scriptResult struct {
	code           int
	stdout, stderr string
}

// runGenerateEnvs runs `bash generate-envs.sh args...` from root with a clean environment.
func runGenerateEnvs(t *testing.T, root string, args ...string) scriptResult {
	t.Helper()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatalf("bash is needed to run the seed's shell entry points: %v", err)
	}
	cmd := exec.Command(bash, append([]string{generateEnvsScript}, args...)...)
	cmd.Dir = root
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "FUZE_ROOT=" + root, runAsFuze + "=1", "NO_COLOR=1"}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	res := scriptResult{stdout: out.String(), stderr: errOut.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("bash %s %q: %v", generateEnvsScript, args, err)
	}
	return res
}

// fakeOllama answers /api/tags with tags: what `fuze env generate` asks the daemon for.
func fakeOllama(t *testing.T, tags ...string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/tags" {
			http.NotFound(w, r)
			return
		}
		var models []map[string]string
		for _, tag := range tags {
			models = append(models, map[string]string{"name": tag, "model": tag})
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"models": models})
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func envFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.env"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range m {
		m[i] = filepath.Base(m[i])
	}
	return m
}

func readText(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestGenerateEnvsScript runs the seed's generator as a user calls it, flag by flag as the seed
// documents them: --mode, --include, --host, --overwrite, --dry-run, --promote --all and
// --promote --model, and the original's --template/--dest pair.
func TestGenerateEnvsScript(t *testing.T) {
	root := seedTree(t)
	host := fakeOllama(t, "gemma3:4b-it-fp16", "llama3.1:8b", "qwen2.5:0.5b",
		"LLM-FuZe-gemma3-4b-i-f16-nvidia-5090-ng34:latest") // a baked variant: never an env file
	envDir := filepath.Join(root, "factory", "LLM", "refinery", "stack", "env")
	explore, preprod, prod := filepath.Join(envDir, "explore"), filepath.Join(envDir, "preprod"), filepath.Join(envDir, "prod")
	gemma := "LLM-FuZe-gemma3-4b-it-fp16.env"
	all := []string{gemma, "LLM-FuZe-llama3.1-8b.env", "LLM-FuZe-qwen2.5-0.5b.env"}

	// --dry-run (both modes by default): the plan, nothing written.
	r := runGenerateEnvs(t, root, "--dry-run", "--host", host)
	if r.code != 0 {
		t.Fatalf("--dry-run: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, dir := range []string{explore, preprod} {
		for _, name := range all {
			if !strings.Contains(r.stdout, "plan write : "+filepath.Join(dir, name)+"  (MODEL_TAG=") {
				t.Errorf("--dry-run does not plan %s:\n%s", filepath.Join(dir, name), r.stdout)
			}
		}
	}
	if strings.Contains(r.stdout, "ng34") || strings.Count(r.stdout, "plan write") != 6 || strings.Count(r.stdout, "Summary: models=3 written=0 skipped=0") != 2 {
		t.Errorf("--dry-run output:\n%s", r.stdout)
	}
	if _, err := os.Stat(explore); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("--dry-run created %s (%v)", explore, err)
	}

	// --mode explore --include: only the matching models, only explore.
	r = runGenerateEnvs(t, root, "--mode", "explore", "--include", "^(gemma|qwen)", "--host", host)
	if r.code != 0 {
		t.Fatalf("--mode explore: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if got := envFiles(t, explore); !slices.Equal(got, []string{gemma, "LLM-FuZe-qwen2.5-0.5b.env"}) {
		t.Errorf("explore files %q", got)
	}
	if _, err := os.Stat(preprod); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("--mode explore wrote preprod files (%v)", err)
	}
	body := readText(t, filepath.Join(explore, gemma))
	if !strings.Contains(body, "INCLUDE_MODELS='^gemma3:4b-it-fp16$'\n") || !strings.Contains(body, "ALIAS_SUFFIX=-explore\n") {
		t.Errorf("explore env file:\n%s", body)
	}

	// Existing files are kept, unless --overwrite.
	if err := os.WriteFile(filepath.Join(explore, gemma), []byte("# edited\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = runGenerateEnvs(t, root, "--mode=explore", "--include=gemma", "--host="+host)
	if r.code != 0 || !strings.Contains(r.stdout, "skip (exists): "+filepath.Join(explore, gemma)) || readText(t, filepath.Join(explore, gemma)) != "# edited\n" {
		t.Errorf("without --overwrite: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runGenerateEnvs(t, root, "--mode", "explore", "--include", "gemma", "--host", host, "--overwrite")
	if r.code != 0 || !strings.Contains(r.stdout, "wrote       : "+filepath.Join(explore, gemma)) || readText(t, filepath.Join(explore, gemma)) != body {
		t.Errorf("--overwrite: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// --mode preprod: every base model; the tag's regex metacharacters are escaped.
	r = runGenerateEnvs(t, root, "--mode", "preprod", "--host", host)
	if r.code != 0 || !slices.Equal(envFiles(t, preprod), all) {
		t.Fatalf("--mode preprod: exit %d, files %q\n%s%s", r.code, envFiles(t, preprod), r.stdout, r.stderr)
	}
	if body := readText(t, filepath.Join(preprod, "LLM-FuZe-llama3.1-8b.env")); !strings.Contains(body, `INCLUDE_MODELS='^llama3\.1:8b$'`) || !strings.Contains(body, "ALIAS_SUFFIX=-preprod\n") {
		t.Errorf("preprod env file:\n%s", body)
	}

	// --promote --model: the matching preprod files, copied as they are; then --all.
	r = runGenerateEnvs(t, root, "--promote", "--model", "^gemma3:", "--model", "qwen2")
	if r.code != 0 || !slices.Equal(envFiles(t, prod), []string{gemma, "LLM-FuZe-qwen2.5-0.5b.env"}) || !strings.Contains(r.stdout, "Promotion summary: copied=2") {
		t.Fatalf("--promote --model: exit %d, prod %q\n%s%s", r.code, envFiles(t, prod), r.stdout, r.stderr)
	}
	if readText(t, filepath.Join(prod, gemma)) != readText(t, filepath.Join(preprod, gemma)) {
		t.Error("--promote changed the env file")
	}
	r = runGenerateEnvs(t, root, "--promote", "--all")
	if r.code != 0 || !slices.Equal(envFiles(t, prod), all) || !strings.Contains(r.stdout, "Promotion summary: copied=3") {
		t.Errorf("--promote --all: exit %d, prod %q\n%s%s", r.code, envFiles(t, prod), r.stdout, r.stderr)
	}

	// The original's --template FILE --dest DIR: one template into one directory.
	dest := filepath.Join(root, "custom")
	r = runGenerateEnvs(t, root, "--template", filepath.Join(envDir, "templates", "FuZeCORE-preprod.env.template"), "--dest", dest, "--include", "qwen", "--host", host)
	if r.code != 0 || !slices.Equal(envFiles(t, dest), []string{"LLM-FuZe-qwen2.5-0.5b.env"}) {
		t.Errorf("--template --dest: exit %d, files %q\n%s%s", r.code, envFiles(t, dest), r.stdout, r.stderr)
	}

	// -h: the usage, naming every flag.
	r = runGenerateEnvs(t, root, "-h")
	for _, flag := range []string{"--mode explore|preprod|both", "--include REGEX", "--host HOST:PORT", "--overwrite", "--dry-run", "--promote --all", "--promote --model REGEX", "--template FILE --dest DIR"} {
		if r.code != 0 || !strings.Contains(r.stdout, flag) {
			t.Errorf("-h: exit %d, usage lacks %s:\n%s", r.code, flag, r.stdout)
		}
	}
}

func TestGenerateEnvsScriptErrors(t *testing.T) {
	root := seedTree(t)
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"--bogus"}, 2, "unknown argument: --bogus"},
		{[]string{"--mode"}, 2, "--mode needs a value"},
		{[]string{"--all"}, 2, "--all goes with --promote"},
		{[]string{"--model", "x"}, 2, "--model goes with --promote"},
		{[]string{"--promote"}, 2, "--promote needs --all or --model REGEX"},
		{[]string{"--promote", "--all", "--dry-run"}, 2, "--promote takes only --all or --model REGEX"},
		{[]string{"--mode", "prod", "--host", "127.0.0.1:1"}, 2, `--mode "prod"`},
		{[]string{"--template", "t.env.template", "--host", "127.0.0.1:1"}, 2, "--template and --dest go together"},
		{[]string{"--include", "(", "--host", "127.0.0.1:1"}, 2, "bad regular expression"},
		{[]string{"--host", closedPort(t)}, 1, "Ollama daemon on"},
	} {
		r := runGenerateEnvs(t, root, tc.args...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.msg) || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
			t.Errorf("%q: exit %d (want %d), stderr %q (want one line with %q)", tc.args, r.code, tc.code, r.stderr, tc.msg)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(root, "factory", "LLM", "refinery", "stack", "env")); len(ents) != 2 {
		t.Errorf("failed calls wrote files: %v", ents)
	}
}

// closedPort is a loopback HOST:PORT nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
