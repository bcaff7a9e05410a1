package ollamatest

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/fuze-ai/fuze/internal/ollamaapi"
)

// The synthetic tiny model loads in real Ollama and greedy decoding runs to the requested
// length: end-of-sequence never wins.
func TestTinyModelGenerates32Tokens(t *testing.T) {
	srv := StartWithTiny(t, "fuze-tiny:latest")
	// A bound against a hung server, not a speed requirement: a busy 2-core machine decodes
	// the tiny model at a few tokens/s.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	for _, tc := range []struct {
		prompt string
		n      int
	}{{"Tell me a 1-sentence fun fact about GPUs.", 32}, {"hello", 32}, {"Ünïcödé ✓ 123", 32},
		// Long enough for Ollama's guard against a token repeated 30 times to cut a looping
		// model short: the synthetic model walks the vocabulary instead.
		{"a", 300}, {"zzzz zzzz", 300}} {
		prompt := tc.prompt
		final, err := srv.Client.Generate(ctx, ollamaapi.GenerateRequest{
			Model: "fuze-tiny:latest", Prompt: prompt, Stream: true,
			Options: map[string]any{"num_predict": tc.n, "temperature": 0, "num_ctx": 1024},
		}, nil)
		if err != nil {
			t.Fatalf("prompt %q: %v", prompt, err)
		}
		if final.EvalCount != tc.n || final.DoneReason != "length" {
			t.Fatalf("prompt %q: eval_count %d done_reason %q, want %d \"length\"", prompt, final.EvalCount, final.DoneReason, tc.n)
		}
		if final.EvalDuration <= 0 || final.PromptEvalCount <= 0 {
			t.Fatalf("prompt %q: missing timings: %+v", prompt, final)
		}
	}
	show, err := srv.Client.Show(ctx, "fuze-tiny:latest")
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := show.BlockCount(); !ok || n != 2 {
		t.Fatalf("block count %d %v, want 2", n, ok)
	}
}

func TestServerStopsAtCleanup(t *testing.T) {
	var addr string
	t.Run("server", func(t *testing.T) {
		addr = Start(t).Addr
	})
	// The subtest's cleanup has run: nothing may listen there any more.
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatalf("ollama still listening on %s after cleanup", addr)
	}
}

// The presets a CPU can run generate 1024 tokens on real Ollama, in raw mode as the driver
// asks (the larger presets share their construction, and run on the GPU machine).
func TestPresetsGenerate1024Tokens(t *testing.T) {
	srv := Start(t)
	for _, preset := range []string{"tiny", "small"} {
		name := "fuze-" + preset + ":latest"
		srv.CreateModel(t, name, PresetGGUF(t, preset))
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute) // a bound against a hung server
		final, err := srv.Client.Generate(ctx, ollamaapi.GenerateRequest{
			Model: name, Prompt: "[fuze run x attempt 1] Once upon a time", Stream: true, Raw: true,
			Options: map[string]any{"num_predict": 1024, "temperature": 0, "num_ctx": 2048},
		}, nil)
		cancel()
		if err != nil {
			t.Fatalf("%s: %v", preset, err)
		}
		if final.EvalCount != 1024 || final.DoneReason != "length" {
			t.Fatalf("%s: eval_count %d done_reason %q, want 1024 \"length\"", preset, final.EvalCount, final.DoneReason)
		}
	}
}
