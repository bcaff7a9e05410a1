package cli

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fuze-ai/fuze/internal/envfile"
	"github.com/fuze-ai/fuze/internal/knobs"
)

// stackUsage is the `fuze stack` (ust.sh) synopsis, printed with usage errors.
const stackUsage = `usage: fuze stack [@FILE.env|FILE.env]... <stack|utility> [command] [args...]

stacks (default command: benchmark):
  ollama|Ollama        benchmark|bench, install, service-cleanup (svc-clean), store-cleanup (store),
                       export-gguf (export), cleanup-variants (variants)
  vllm|vLLM|VLLM       benchmark|bench, install
  llama.cpp|llamacpp|llama-cpp
                       benchmark|bench, import-gguf (import-from-ollama, import), install
  triton|Triton        benchmark|bench, install
utilities:
  gpu-prepare (gpu, gpu-setup), preflight (check, doctor), migrate-logs (logs, log-migrate),
  clean (cleanup, clean-bench), analyze (analysis, summary)`

func newStackCommand(s streams) *cobra.Command {
	return &cobra.Command{
		Use:   "stack [@FILE.env]... <stack|utility> [command] [args...]",
		Short: "Run one stack's command with env files applied (the original ust.sh)",
		Long: `Run one stack's command with env files applied (the original ust.sh).

Leading arguments that start with @ or end in .env are env files, parsed as data (never
executed) and applied in order over the process environment: later files win.

` + stackUsage,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
				return cmd.Help()
			}
			return runStack(cmd.Context(), s, args)
		},
	}
}

// stackCommand is a resolved `fuze stack` invocation.
type stackCommand struct {
	envFiles []string
	stack    string // canonical: ollama, vLLM, llama.cpp, Triton; or "" for a utility
	utility  string // canonical utility name
	command  string // canonical command of the stack
	args     []string
}

var stackAliases = map[string]string{
	"ollama": "ollama", "Ollama": "ollama",
	"vllm": "vLLM", "vLLM": "vLLM", "VLLM": "vLLM",
	"llama.cpp": "llama.cpp", "llamacpp": "llama.cpp", "llama-cpp": "llama.cpp",
	"triton": "Triton", "Triton": "Triton",
}

var utilityAliases = map[string]string{
	"gpu": "gpu-prepare", "gpu-prepare": "gpu-prepare", "gpu-setup": "gpu-prepare",
	"preflight": "preflight", "check": "preflight", "doctor": "preflight",
	"logs": "migrate-logs", "log-migrate": "migrate-logs", "migrate-logs": "migrate-logs",
	"clean": "clean", "cleanup": "clean", "clean-bench": "clean",
	"analyze": "analyze", "analysis": "analyze", "summary": "analyze",
}

var stackCommands = map[string]map[string]string{
	"ollama": {
		"bench": "benchmark", "benchmark": "benchmark", "install": "install",
		"service-cleanup": "service-cleanup", "svc-clean": "service-cleanup",
		"store-cleanup": "store-cleanup", "store": "store-cleanup",
		"export-gguf": "export-gguf", "export": "export-gguf",
		"cleanup-variants": "cleanup-variants", "variants": "cleanup-variants",
	},
	"vLLM": {"bench": "benchmark", "benchmark": "benchmark", "install": "install"},
	"llama.cpp": {
		"bench": "benchmark", "benchmark": "benchmark", "install": "install",
		"import-gguf": "import-gguf", "import-from-ollama": "import-gguf", "import": "import-gguf",
	},
	"Triton": {"bench": "benchmark", "benchmark": "benchmark", "install": "install"},
}

// parseStackArgs splits ust.sh-style arguments.
func parseStackArgs(args []string) (stackCommand, error) {
	var sc stackCommand
	for len(args) > 0 && (strings.HasPrefix(args[0], "@") || strings.HasSuffix(args[0], ".env")) {
		sc.envFiles = append(sc.envFiles, strings.TrimPrefix(args[0], "@"))
		args = args[1:]
	}
	if len(args) == 0 {
		return sc, usageErrorf("no stack or utility given (see `fuze stack --help`)")
	}
	if u, ok := utilityAliases[args[0]]; ok {
		sc.utility, sc.args = u, args[1:]
		return sc, nil
	}
	st, ok := stackAliases[args[0]]
	if !ok {
		return sc, usageErrorf("unknown stack: %s (stacks: ollama, vLLM, llama.cpp, Triton; utilities: preflight, gpu-prepare, migrate-logs, clean, analyze)", args[0])
	}
	sc.stack, sc.command, sc.args = st, "benchmark", args[1:]
	if len(args) > 1 {
		c, ok := stackCommands[st][args[1]]
		if !ok {
			return sc, usageErrorf("unknown %s command: %s", st, args[1])
		}
		sc.command, sc.args = c, args[2:]
	}
	return sc, nil
}

// loadConfig resolves knobs: defaults < process environment < env files in order.
func loadConfig(files []string, environ []string, warn func(string)) (*knobs.Config, error) {
	var layers []knobs.Layer
	for _, path := range files {
		f, err := envfile.ParseFile(path)
		if err != nil {
			return nil, usageError{err}
		}
		layers = append(layers, knobs.Layer{Name: path, Vars: f.Map()})
	}
	cfg := knobs.Resolve(environ, layers...)
	for _, name := range cfg.Unknown() {
		warn(fmt.Sprintf("%s (from %s) is not a fuze knob; passed to the stack's processes as is", name, cfg.Source(name)))
	}
	if err := cfg.Validate(); err != nil {
		return nil, usageError{err}
	}
	return cfg, nil
}

func runStack(ctx context.Context, s streams, args []string) error {
	sc, err := parseStackArgs(args)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(sc.envFiles, os.Environ(), func(msg string) { fmt.Fprintf(s.err, "! %s\n", msg) })
	if err != nil {
		return err
	}
	if sc.utility != "" {
		// As ust.sh exported every env file key, utilities that read the environment
		// themselves see the files' values too.
		for _, kv := range cfg.Environ() {
			if k, v, ok := strings.Cut(kv, "="); ok && os.Getenv(k) != v {
				os.Setenv(k, v)
			}
		}
	}
	switch {
	case sc.command == "benchmark" && stackBenchmarks[sc.stack] != nil:
		_, err := stackBenchmarks[sc.stack](ctx, s, cfg)
		return err
	case sc.stack == "ollama" && (sc.command == "store-cleanup" || sc.command == "cleanup-variants" || sc.command == "export-gguf"):
		return runOllamaManage(ctx, s, cfg, sc.command, sc.args)
	case sc.stack == "llama.cpp" && sc.command == "import-gguf":
		// The original's llama.cpp import and Ollama export were one script.
		return runOllamaManage(ctx, s, cfg, "export-gguf", sc.args)
	case sc.stack == "ollama" && (sc.command == "install" || sc.command == "service-cleanup"):
		_, err := runOllamaSystem(ctx, s, cfg, sc.command, sc.args)
		return err
	case sc.utility != "":
		return runUtility(ctx, s, cfg, sc.utility, sc.args)
	case sc.command == "install" && stackInstalls[sc.stack] != nil:
		return stackInstalls[sc.stack](ctx, s, cfg, sc.args)
	default:
		return notBuilt(sc.stack + " " + sc.command)
	}
}

// notBuilt reports a command of the original interface that this version does not do yet:
// never a silent success.
func notBuilt(what string) error {
	return fmt.Errorf("%s is not implemented in this version of fuze yet", what)
}

// stackBenchmarks are the stacks' benchmark runs; each returns its run CSV's path.
var stackBenchmarks = map[string]func(context.Context, streams, *knobs.Config) (string, error){
	"ollama":    runOllamaBenchmark,
	"llama.cpp": runLlamaCppBenchmark,
	"vLLM":      runVLLMBenchmark,
	"Triton":    runTritonBenchmark,
}
