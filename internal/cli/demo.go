package cli

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/fuze-ai/fuze/internal/bench"
	"github.com/fuze-ai/fuze/internal/envfile"
	"github.com/fuze-ai/fuze/internal/gguf"
	"github.com/fuze-ai/fuze/internal/knobs"
	"github.com/fuze-ai/fuze/internal/ollamaapi"
	"github.com/fuze-ai/fuze/internal/server"
	"github.com/fuze-ai/fuze/internal/stackname"
)

type demoFlags struct {
	ollamaBin string
	dir       string
	template  string
}

func newDemoCommand(s streams) *cobra.Command {
	var f demoFlags
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Benchmark a real Ollama on this machine with a synthetic model (what `make demo` runs)",
		Long: `demo runs the Ollama benchmark for real on this machine: it writes a synthetic
model (the small preset), starts an isolated persistent Ollama daemon on a free port with its own model store,
renders the explore env template for the model, runs ` + "`fuze stack @env ollama`" + ` against it
(fuze starts and stops its own test daemon), tunes what matters on a CPU (num_thread,
num_batch, KV-cache type), prints each knob's effect with its confidence interval (or says
that none was significant), where the CSV is and a table of baseline vs best tokens/sec, and
stops every process it started.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runDemo(cmd.Context(), s, f) },
	}
	cmd.Flags().StringVar(&f.ollamaBin, "ollama", os.Getenv("FUZE_OLLAMA"), "ollama binary (default $FUZE_OLLAMA, else ollama on PATH)")
	cmd.Flags().StringVar(&f.dir, "dir", "", "work directory for the model store and logs (default .cache/demo/<timestamp> under the repository)")
	cmd.Flags().StringVar(&f.template, "template", "", "env template (default the explore template of the repository)")
	return cmd
}

func runDemo(ctx context.Context, s streams, f demoFlags) error {
	root := repoRoot()
	if f.ollamaBin == "" {
		f.ollamaBin = "ollama"
	}
	bin, err := server.LookPath(f.ollamaBin)
	if err != nil {
		return fmt.Errorf("demo needs an ollama binary: %v (run `make demo`, which builds one)", err)
	}
	if f.dir == "" {
		f.dir = filepath.Join(root, ".cache", "demo", time.Now().Format("20060102_150405"))
	}
	if f.template == "" {
		f.template = filepath.Join(root, "factory", "LLM", "refinery", "stack", "env", "templates", "FuZeCORE-explore.env.template")
	}
	store, logDir := filepath.Join(f.dir, "models"), filepath.Join(f.dir, "logs")
	for _, d := range []string{store, logDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}

	model := filepath.Join(f.dir, "fuze-small.gguf")
	fmt.Fprintf(s.err, "== writing the small synthetic model: %s\n", model)
	preset, _ := gguf.LookupPreset("small")
	synth, err := gguf.NewSynth(gguf.SynthOptions{Shape: preset.Shape, Type: preset.Type, Seed: 1, Name: "fuze-small"})
	if err != nil {
		return err
	}
	if _, err := synth.WriteFile(ctx, model); err != nil {
		return err
	}

	port, err := server.FreePort()
	if err != nil {
		return err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	env := append(os.Environ(), "OLLAMA_HOST="+addr, "OLLAMA_MODELS="+store, "HOME="+f.dir, "CUDA_VISIBLE_DEVICES=")
	daemon, err := server.Start(server.Spec{Name: "demo persistent ollama on " + addr, Path: bin, Args: []string{"serve"}, Env: env,
		LogPath: filepath.Join(logDir, "ollama_persistent.log")})
	if err != nil {
		return err
	}
	defer daemon.Stop(10 * time.Second)
	client := ollamaapi.New(addr)
	if err := daemon.WaitReady(ctx, time.Minute, 100*time.Millisecond, func(ctx context.Context) error {
		_, err := client.Tags(ctx)
		return err
	}); err != nil {
		return err
	}
	const tag = "fuze-small:latest"
	fmt.Fprintf(s.err, "== persistent Ollama on %s (pid %d, store %s); creating %s\n", addr, daemon.PID(), store, tag)
	if err := client.CreateFromGGUF(ctx, tag, model); err != nil {
		return err
	}

	envPath := filepath.Join(f.dir, "LLM-FuZe-fuze-small-latest.env")
	if err := renderTemplate(f.template, envPath, tag); err != nil {
		return err
	}
	testPort, err := server.FreePort()
	if err != nil {
		return err
	}
	// The demo's own settings sit above the rendered profile: where its daemon is, and a
	// short search that fits a CPU: on a CPU endpoint the Ollama planner tunes num_thread,
	// num_batch and the KV-cache type (CPU_TUNE), pruning significant losers (EXHAUSTIVE=0).
	overrides := map[string]string{
		"PERSISTENT_PORT":   strconv.Itoa(port),
		"TEST_PORT_A":       strconv.Itoa(testPort),
		"OLLAMA_MODELS_DIR": store,
		"OLLAMA_BIN":        bin,
		"LOG_DIR":           logDir,
		"BENCH_NUM_PREDICT": "32",
		"BENCH_NUM_CTX":     "1024",
		"CPU_TUNE":          "1",
		"EXHAUSTIVE":        "0",
		"TUNE_ROUNDS":       "3",
		"TIMEOUT_GEN":       "120",
		"DEBUG_BENCH":       "0",
		"PUBLISH_BEST":      "0",
		"HOME":              f.dir,
	}
	profile, err := envfile.ParseFile(envPath)
	if err != nil {
		return err
	}
	cfg := knobs.Resolve(os.Environ(), knobs.Layer{Name: envPath, Vars: profile.Map()}, knobs.Layer{Name: "demo settings", Vars: overrides})
	if err := cfg.Validate(); err != nil {
		return err
	}
	fmt.Fprintf(s.err, "== profile %s (from %s)\n", envPath, f.template)
	_, err = bench.RunStack(ctx, s.out, s.err, cfg, repoRoot(), stackname.Ollama)
	return err
}

// renderTemplate writes a template with __MODEL_TAG__ replaced by the tag, regex
// metacharacters escaped (the tag lands inside INCLUDE_MODELS='^…$').
func renderTemplate(template, dest, tag string) error {
	raw, err := os.ReadFile(template)
	if err != nil {
		return fmt.Errorf("env template: %w", err)
	}
	out := strings.ReplaceAll(string(raw), "__MODEL_TAG__", regexp.QuoteMeta(tag))
	return os.WriteFile(dest, []byte(out), 0o644)
}

// repoRoot is FUZE_ROOT, else the nearest directory above the working directory holding
// factory/LLM/refinery, else the working directory.
func repoRoot() string {
	if r := os.Getenv("FUZE_ROOT"); r != "" {
		return r
	}
	wd, err := os.Getwd()
	if err != nil {
		return "."
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if st, err := os.Stat(filepath.Join(dir, "factory", "LLM", "refinery")); err == nil && st.IsDir() {
			return dir
		}
		if filepath.Dir(dir) == dir {
			return wd
		}
	}
}
