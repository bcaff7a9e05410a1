package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/fuze-ai/fuze/internal/knobs"
	"github.com/fuze-ai/fuze/internal/results"
	"github.com/fuze-ai/fuze/internal/stackname"
	"github.com/fuze-ai/fuze/internal/sysprep"
)

// sysprepHost describes the machine the system commands inspect and change; tests replace
// it with fakes.
var sysprepHost = sysprep.DefaultHost

// configFunc and environConfig (ollama_manage.go) supply the knobs: the process environment
// for `fuze preflight`, the env-file-resolved configuration for `fuze stack @x.env preflight`.

func fixedConfig(cfg *knobs.Config) configFunc { return func() *knobs.Config { return cfg } }

// checkoutRoot is the fuze checkout: FUZE_ROOT from the knobs, else repoRoot().
func checkoutRoot(cfg *knobs.Config) string {
	if r := cfg.Get("FUZE_ROOT"); r != "" {
		return r
	}
	return repoRoot()
}

// runUtility runs one of ust.sh's utilities by name (`fuze stack [@env] <utility> args...`)
// with the resolved knobs.
func runUtility(ctx context.Context, s streams, cfg *knobs.Config, name string, args []string) error {
	if canonical, ok := utilityAliases[name]; ok {
		name = canonical
	}
	var cmd *cobra.Command
	switch name {
	case "preflight":
		cmd = preflightCommand(s, fixedConfig(cfg))
	case "gpu-prepare":
		cmd = gpuPrepareCommand(s, fixedConfig(cfg))
	case "migrate-logs":
		cmd = migrateLogsCommand(s, fixedConfig(cfg))
	case "clean":
		cmd = cleanCommand(s, fixedConfig(cfg))
	case "analyze":
		cmd = newAnalyzeCommand(s)
	default:
		return usageErrorf("unknown utility: %s (utilities: preflight, gpu-prepare, migrate-logs, clean, analyze)", name)
	}
	return runSubcommand(ctx, s, cmd, args)
}

// runOllamaSystem runs `fuze stack [@env] ollama install|service-cleanup args...`; handled is
// false for the other Ollama commands.
func runOllamaSystem(ctx context.Context, s streams, cfg *knobs.Config, command string, args []string) (handled bool, err error) {
	if c, ok := findStackCommand(stackname.Ollama, command); ok {
		command = c.name
	}
	switch command {
	case "install":
		return true, runSubcommand(ctx, s, ollamaInstallCommand(s, fixedConfig(cfg)), args)
	case "service-cleanup":
		return true, runSubcommand(ctx, s, serviceCleanupCommand(s, fixedConfig(cfg)), args)
	}
	return false, nil
}

// runSubcommand runs a command's cobra definition with ust-style arguments, so that
// `fuze stack <utility> args` and `fuze <utility> args` behave the same.
func runSubcommand(ctx context.Context, s streams, cmd *cobra.Command, args []string) error {
	if args == nil {
		args = []string{} // nil would make cobra read os.Args
	}
	cmd.SetArgs(args)
	cmd.SetIn(s.in)
	cmd.SetOut(s.out)
	cmd.SetErr(s.err)
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	return cmd.ExecuteContext(ctx)
}

// ---- preflight ----

func newPreflightCommand(s streams) *cobra.Command { return preflightCommand(s, environConfig) }

func preflightCommand(s streams, cfg configFunc) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "preflight",
		Aliases: []string{"check", "doctor"},
		Short:   "Check the machine: system, GPU/driver/CUDA, stack binaries, ports, model stores, logs",
		Long: `Check the machine: system, GPU/driver/CUDA, the binaries of each stack with their
versions, the persistent and test ports (free, or held by whom), systemd units, the Ollama
store and GGUF folder, and the log directory. Each check is ok, warn or error.

A missing ollama binary is an error (the Ollama stack is fuze's core); the other stacks'
missing binaries are warnings.

EXIT STATUS
  0  no check is an error (warnings allowed)
  1  at least one check is an error`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runPreflight(cmd.Context(), s, cfg(), asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the checks as JSON")
	return cmd
}

func runPreflight(ctx context.Context, s streams, cfg *knobs.Config, asJSON bool) error {
	rep := sysprep.Preflight(ctx, sysprep.PreflightOptions{Host: sysprepHost(), Get: cfg.Get, RepoRoot: checkoutRoot(cfg)})
	var err error
	if asJSON {
		err = rep.WriteJSON(s.out)
	} else {
		err = rep.WriteText(s.out, sysprep.IsTerminal(s.out) && cfg.Get("NO_COLOR") == "")
	}
	if err != nil {
		return err
	}
	if n := rep.Count(sysprep.StatusError); n > 0 {
		return fmt.Errorf("preflight found %d error(s)", n)
	}
	return nil
}

// ---- gpu-prepare ----

func newGPUPrepareCommand(s streams) *cobra.Command { return gpuPrepareCommand(s, environConfig) }

func gpuPrepareCommand(s streams, _ configFunc) *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:     "gpu-prepare",
		Aliases: []string{"gpu", "gpu-setup"},
		Short:   "Install the NVIDIA driver and CUDA toolkit when an NVIDIA GPU is present (apt; root)",
		Long: `Detect an NVIDIA GPU (nvidia-smi, else the PCI bus). Without one there is nothing to do
(exit 0). With one, on Debian or Ubuntu, install the NVIDIA driver (Ubuntu: ubuntu-drivers;
Debian: nvidia-driver from non-free) and the CUDA toolkit through apt when they are missing;
on other systems, say what to install. Installing needs root; --dry-run prints the exact
apt-get commands without changing anything.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return sysprep.GPUPrepare(cmd.Context(), sysprep.GPUPrepareOptions{Host: sysprepHost(), DryRun: dryRun, Out: s.out})
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the plan; change nothing")
	return cmd
}

// ---- migrate-logs ----

func newMigrateLogsCommand(s streams) *cobra.Command { return migrateLogsCommand(s, environConfig) }

func migrateLogsCommand(s streams, cfg configFunc) *cobra.Command {
	var (
		dryRun  bool
		dest    string
		sources []string
	)
	cmd := &cobra.Command{
		Use:     "migrate-logs",
		Aliases: []string{"logs", "log-migrate"},
		Short:   "Move the original's log folders into LOG_DIR and leave symlinks behind",
		Long: `Move every file of the original's log folders (factory/LLM/refinery/stack/logs and
factory/LLM/refinery/logs in the checkout) into LOG_DIR, then replace each emptied folder by a
symlink to LOG_DIR. Nothing is overwritten: a name that exists in LOG_DIR gets a
YYYYmmdd_HHMMSS_ prefix. A folder that already links to LOG_DIR is skipped, so a second run
changes nothing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runMigrateLogs(s, cfg(), dest, sources, dryRun)
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print what would move; change nothing")
	cmd.Flags().StringVar(&dest, "dest", "", "destination (default: LOG_DIR)")
	cmd.Flags().StringArrayVar(&sources, "from", nil, "legacy folder to migrate (repeatable; default: the original's two)")
	return cmd
}

func runMigrateLogs(s streams, cfg *knobs.Config, dest string, sources []string, dryRun bool) error {
	if dest == "" {
		dir, warning, err := results.ResolveLogDir(cfg.Get("LOG_DIR"), cfg.Get)
		if err != nil {
			return err
		}
		if warning != "" {
			fmt.Fprintf(s.err, "! %s\n", warning)
		}
		dest = dir
	}
	if len(sources) == 0 {
		sources = sysprep.LegacyLogDirs(checkoutRoot(cfg))
	}
	_, err := sysprep.MigrateLogs(sysprep.MigrateOptions{Dest: dest, Sources: sources, DryRun: dryRun, Out: s.out})
	return err
}
