package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/fuze-ai/fuze/internal/knobs"
	"github.com/fuze-ai/fuze/internal/results"
	"github.com/fuze-ai/fuze/internal/sysprep"
)

// ---- ollama install / service-cleanup ----

// newOllamaInstallCommand is `fuze ollama install`.
func newOllamaInstallCommand(s streams) *cobra.Command { return ollamaInstallCommand(s, environConfig) }

func ollamaInstallCommand(s streams, cfg configFunc) *cobra.Command {
	var fromSource, dryRun bool
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Install or upgrade Ollama, then leave one persistent daemon (service-cleanup)",
		Long: `Install or upgrade Ollama into OLLAMA_BIN, then run service-cleanup so that exactly
one persistent daemon serves PERSISTENT_PORT with OLLAMA_MODELS=OLLAMA_MODELS_DIR.

Without --from-source the official installer is used; it needs the network (checked first,
5 s) and root. --from-source builds Ollama from its Go module with the checkout's
scripts/ensure-ollama.sh (version: OLLAMA_VERSION) and copies the binary into place
(temporary file, then rename); writing a system path needs root.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runOllamaInstall(cmd.Context(), s, cfg(), fromSource, dryRun)
		},
	}
	cmd.Flags().BoolVar(&fromSource, "from-source", false, "build Ollama from its Go module (scripts/ensure-ollama.sh)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print what would be done; change nothing")
	return cmd
}

func runOllamaInstall(ctx context.Context, s streams, cfg *knobs.Config, fromSource, dryRun bool) error {
	svc, err := serviceOptions(s, cfg, dryRun)
	if err != nil {
		return err
	}
	return sysprep.Install(ctx, sysprep.InstallOptions{
		Host:       svc.Host,
		FromSource: fromSource,
		RepoRoot:   checkoutRoot(cfg),
		Version:    cfg.Get("OLLAMA_VERSION"),
		Dest:       cfg.Get("OLLAMA_BIN"),
		DryRun:     dryRun,
		Out:        s.out,
		Service:    svc,
	})
}

// newServiceCleanupCommand is `fuze ollama service-cleanup`.
func newServiceCleanupCommand(s streams) *cobra.Command {
	return serviceCleanupCommand(s, environConfig)
}

func serviceCleanupCommand(s streams, cfg configFunc) *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:     "service-cleanup",
		Aliases: []string{"svc-clean"},
		Short:   "Leave exactly one persistent Ollama daemon; stop stray test daemons",
		Long: `Leave exactly one persistent Ollama daemon on PERSISTENT_PORT with
OLLAMA_MODELS=OLLAMA_MODELS_DIR, stop stray Ollama daemons on TEST_PORT_A/B, and print who
listens on each port. Idempotent; an idle port is not an error.

When systemd runs and fuze runs as root, the daemon is the unit ollama-persist.service
(the packaged ollama.service is stopped and disabled, the original's ollama-test-a/-b units
removed). Otherwise fuze starts ollama serve detached, with ollama-persist.pid and
ollama-persist.log in LOG_DIR, and keeps it on later runs. A listener that is not Ollama is
reported with its owner and never killed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			svc, err := serviceOptions(s, cfg(), dryRun)
			if err != nil {
				return err
			}
			return sysprep.ServiceCleanup(cmd.Context(), svc)
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print what would be done; change nothing")
	return cmd
}

// serviceOptions maps the knobs onto service-cleanup's options.
func serviceOptions(s streams, cfg *knobs.Config, dryRun bool) (sysprep.ServiceOptions, error) {
	var ports [3]int
	for i, name := range []string{"PERSISTENT_PORT", "TEST_PORT_A", "TEST_PORT_B"} {
		p, err := cfg.Int(name)
		if err != nil {
			return sysprep.ServiceOptions{}, usageError{err}
		}
		ports[i] = p
	}
	logDir, warning, err := results.ResolveLogDir(cfg.Get("LOG_DIR"), cfg.Get)
	if err != nil {
		return sysprep.ServiceOptions{}, err
	}
	if warning != "" {
		fmt.Fprintf(s.err, "! %s\n", warning)
	}
	host := sysprepHost()
	bin := cfg.Get("OLLAMA_BIN")
	if found := sysprep.OllamaBinary(host.Runner, bin); found != "" {
		bin = found
	}
	return sysprep.ServiceOptions{
		Host:      host,
		Bin:       bin,
		ModelsDir: cfg.Get("OLLAMA_MODELS_DIR"),
		Port:      ports[0],
		TestPorts: ports[1:],
		StateDir:  logDir,
		Environ:   cfg.Environ(),
		DryRun:    dryRun,
		Out:       s.out,
	}, nil
}
