// Package cli builds fuze's command tree. Each command is a constructor returning a
// *cobra.Command whose RunE calls a plain function with injected writers, so every
// command runs in-process in tests.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fuze-ai/fuze/internal/knobs"
	_ "github.com/fuze-ai/fuze/internal/stack/all" // every stack driver registers itself
)

// Version is set at build time with -ldflags "-X github.com/fuze-ai/fuze/internal/cli.Version=...".
var Version = "0.1.0-dev"

// Exit codes, documented in `fuze --help`.
const (
	ExitOK          = 0
	ExitFailure     = 1
	ExitUsage       = 2
	ExitInterrupted = 130
)

// usageError marks errors caused by the command line itself (exit status 2).
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

func usageErrorf(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// streams carries the writers every command prints to.
type streams struct {
	in       io.Reader
	out, err io.Writer
}

// Main runs fuze with args and returns the process exit status.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	s := streams{in: stdin, out: stdout, err: stderr}
	root := newRootCommand(s)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	if errors.Is(err, context.Canceled) {
		fmt.Fprintln(stderr, "fuze: interrupted; rows measured so far are on disk and started servers were stopped")
		return ExitInterrupted
	}
	fmt.Fprintf(stderr, "fuze: %s\n", oneLine(err.Error()))
	var ue usageError
	var ie *knobs.InvalidError
	switch {
	case errors.Is(err, context.Canceled):
		return ExitInterrupted
	case errors.As(err, &ue), errors.As(err, &ie), isCobraUsageError(err):
		return ExitUsage
	default:
		return ExitFailure
	}
}

// oneLine keeps error output to a single line, as the brief requires.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}

// isCobraUsageError recognises cobra's own argument and flag errors.
func isCobraUsageError(err error) bool {
	msg := err.Error()
	for _, prefix := range []string{"unknown command", "unknown flag", "unknown shorthand flag",
		"flag needs an argument", "invalid argument", "accepts ", "requires at least", "requires at most"} {
		if strings.HasPrefix(msg, prefix) || strings.Contains(msg, " "+prefix) {
			return true
		}
	}
	return false
}

func newRootCommand(s streams) *cobra.Command {
	root := &cobra.Command{
		Use:   "fuze",
		Short: "Benchmark LLM inference stacks (Ollama, vLLM, llama.cpp, Triton) on your own GPUs",
		Long: `fuze starts each inference stack's servers pinned to a GPU, sweeps their settings,
measures every attempt the same way and writes comparable rows (the 16-column CSV)
from which it derives the best configuration per model.

EXIT STATUS
  0    success
  1    a failure (the message names what failed)
  2    bad command line or bad input file
  130  interrupted (Ctrl-C); rows already measured are on disk`,
		SilenceErrors: true,
		SilenceUsage:  true,
		Version:       Version,
	}
	root.SetVersionTemplate("fuze {{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(
		newVersionCommand(s),
		newStackCommand(s),
		newSynthCommand(s),
		newKnobsCommand(s),
		newDemoCommand(s),
		newBenchCommand(s),
		newEnvCommand(s),
		newCollectCommand(s),
		newSummaryCommand(s),
		newAnalyzeCommand(s),
		newOllamaCommand(s),
		newPreflightCommand(s),
		newGPUPrepareCommand(s),
		newMigrateLogsCommand(s),
		newCleanCommand(s),
		newCompareCommand(s),
		newHTMLReportCommand(s),
	)
	return root
}

func newVersionCommand(s streams) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print fuze's version",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintf(s.out, "fuze %s\n", Version)
			return err
		},
	}
}
