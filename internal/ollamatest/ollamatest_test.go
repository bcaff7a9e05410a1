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
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, prompt := range []string{"Tell me a 1-sentence fun fact about GPUs.", "hello", "Ünïcödé ✓ 123"} {
		final, err := srv.Client.Generate(ctx, ollamaapi.GenerateRequest{
			Model: "fuze-tiny:latest", Prompt: prompt, Stream: true,
			Options: map[string]any{"num_predict": 32, "temperature": 0, "num_ctx": 512},
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if final.EvalCount != 32 || final.DoneReason != "length" {
			t.Fatalf("prompt %q: eval_count %d done_reason %q, want 32 \"length\"", prompt, final.EvalCount, final.DoneReason)
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
