// Command fuze benchmarks LLM inference stacks (Ollama, vLLM, llama.cpp, Triton) on the
// user's own GPUs and writes comparable results. See README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/fuze-ai/fuze/internal/cli"
)

func main() {
	// The first SIGINT/SIGTERM cancels the context: sweeps finish the current row,
	// flush and stop their servers. A second signal kills the process the default way.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
	}()
	os.Exit(cli.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
