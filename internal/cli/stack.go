package cli

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fuze-ai/fuze/internal/bench"
	"github.com/fuze-ai/fuze/internal/envfile"
	"github.com/fuze-ai/fuze/internal/knobs"
	"github.com/fuze-ai/fuze/internal/stackname"
)

// stackUsage is the `fuze stack` (ust.sh) synopsis, printed with usage errors: the stacks
// and their commands come from internal/stackname and stackExtras.
func stackUsage() string {
	var b strings.Builder
	b.WriteString("usage: fuze stack [@FILE.env|FILE.env]... <stack|utility> [command] [args...]\n\nstacks (default command: benchmark):\n")
	const indent = "                       "
	for _, st := range stackname.All() {
		cmds := []string{"benchmark|bench", "serving"}
		for _, c := range stackExtras[st.Name] {
			if len(c.aliases) > 0 {
				cmds = append(cmds, c.name+" ("+strings.Join(c.aliases, ", ")+")")
			} else {
				cmds = append(cmds, c.name)
			}
		}
		names := strings.Join(st.Aliases, "|")
		if len(names) < len(indent)-2 {
			fmt.Fprintf(&b, "  %-21s", names)
		} else {
			fmt.Fprintf(&b, "  %s\n%s", names, indent)
		}
		line := len(indent)
		for i, c := range cmds {
			if i > 0 {
				b.WriteString(",")
				line++
				if line+len(c)+1 > 100 {
					b.WriteString("\n" + indent)
					line = len(indent)
				} else {
					b.WriteString(" ")
					line++
				}
			}
			b.WriteString(c)
			line += len(c)
		}
		b.WriteString("\n")
	}
	b.WriteString(`utilities:
  gpu-prepare (gpu, gpu-setup), preflight (check, doctor), migrate-logs (logs, log-migrate),
  clean (cleanup, clean-bench), analyze (analysis, summary)`)
	return b.String()
}

func newStackCommand(s streams) *cobra.Command {
	return &cobra.Command{
		Use:   "stack [@FILE.env]... <stack|utility> [command] [args...]",
		Short: "Run one stack's command with env files applied (the original ust.sh)",
		Long: `Run one stack's command with env files applied (the original ust.sh).

Leading arguments that start with @ or end in .env are env files, parsed as data (never
executed) and applied in order over the process environment: later files win.

` + stackUsage(),
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

var utilityAliases = map[string]string{
	"gpu": "gpu-prepare", "gpu-prepare": "gpu-prepare", "gpu-setup": "gpu-prepare",
	"preflight": "preflight", "check": "preflight", "doctor": "preflight",
	"logs": "migrate-logs", "log-migrate": "migrate-logs", "migrate-logs": "migrate-logs",
	"clean": "clean", "cleanup": "clean", "clean-bench": "clean",
	"analyze": "analyze", "analysis": "analyze", "summary": "analyze",
}

// stackCmd is one command of a stack besides benchmark and serving, which every registered
// stack has.
type stackCmd struct {
	name    string
	aliases []string
	run     func(ctx context.Context, s streams, cfg *knobs.Config, args []string) error
}

// stackExtras are the stacks' commands besides benchmark, by canonical stack name (set in
// init: the Ollama commands themselves resolve aliases through it).
var stackExtras map[string][]stackCmd

func init() { stackExtras = stackCommandTable() }

func stackCommandTable() map[string][]stackCmd {
	return map[string][]stackCmd{
		stackname.Ollama: {
			{name: "install", run: ollamaSystemCommand("install")},
			{name: "service-cleanup", aliases: []string{"svc-clean"}, run: ollamaSystemCommand("service-cleanup")},
			{name: "store-cleanup", aliases: []string{"store"}, run: ollamaManageCommand("store-cleanup")},
			{name: "export-gguf", aliases: []string{"export"}, run: ollamaManageCommand("export-gguf")},
			{name: "cleanup-variants", aliases: []string{"variants"}, run: ollamaManageCommand("cleanup-variants")},
		},
		stackname.LlamaCpp: {
			// The original's llama.cpp import and Ollama export were one script.
			{name: "import-gguf", aliases: []string{"import-from-ollama", "import"}, run: ollamaManageCommand("export-gguf")},
			{name: "install", run: runLlamaCppInstall},
		},
		stackname.VLLM:   {{name: "install", run: runVLLMInstall}},
		stackname.Triton: {{name: "install", run: runTritonInstall}},
	}
}

func ollamaManageCommand(command string) func(context.Context, streams, *knobs.Config, []string) error {
	return func(ctx context.Context, s streams, cfg *knobs.Config, args []string) error {
		return runOllamaManage(ctx, s, cfg, command, args)
	}
}

func ollamaSystemCommand(command string) func(context.Context, streams, *knobs.Config, []string) error {
	return func(ctx context.Context, s streams, cfg *knobs.Config, args []string) error {
		_, err := runOllamaSystem(ctx, s, cfg, command, args)
		return err
	}
}

// findStackCommand resolves a command name or alias of a stack; "benchmark" for bench,
// "serving" for the serving benchmark.
func findStackCommand(st, name string) (stackCmd, bool) {
	if name == "benchmark" || name == "bench" {
		return stackCmd{name: "benchmark"}, true
	}
	if name == "serving" { // every stack serves through the engine
		return stackCmd{name: "serving"}, true
	}
	for _, c := range stackExtras[st] {
		if c.name == name || slices.Contains(c.aliases, name) {
			return c, true
		}
	}
	return stackCmd{}, false
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
	info, ok := stackname.Lookup(args[0])
	if !ok || !slices.Contains(info.Aliases, args[0]) {
		return sc, usageErrorf("unknown stack: %s (stacks: %s; utilities: preflight, gpu-prepare, migrate-logs, clean, analyze)", args[0], stackname.List())
	}
	sc.stack, sc.command, sc.args = info.Name, "benchmark", args[1:]
	if len(args) > 1 {
		c, ok := findStackCommand(info.Name, args[1])
		if !ok {
			return sc, usageErrorf("unknown %s command: %s", info.Name, args[1])
		}
		sc.command, sc.args = c.name, args[2:]
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
	case sc.utility != "":
		return runUtility(ctx, s, cfg, sc.utility, sc.args)
	case sc.command == "benchmark":
		_, err := bench.RunStack(ctx, s.out, s.err, cfg, repoRoot(), sc.stack)
		return err
	case sc.command == "serving":
		_, err := bench.RunServing(ctx, s.out, s.err, cfg, repoRoot(), sc.stack)
		return err
	default:
		c, _ := findStackCommand(sc.stack, sc.command)
		return c.run(ctx, s, cfg, sc.args)
	}
}
