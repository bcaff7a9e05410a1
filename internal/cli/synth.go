package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fuze-ai/fuze/internal/gguf"
	"github.com/fuze-ai/fuze/internal/progress"
)

// synthFlags are the flags of `fuze synth`.
type synthFlags struct {
	preset, typ, output, name        string
	dim, layers, ffn, heads, kvHeads int
	vocab, ctx                       int
	tied                             bool
	seed                             uint64
}

func newSynthCommand(s streams) *cobra.Command {
	var f synthFlags
	var names []string
	for _, p := range gguf.Presets() {
		names = append(names, p.Name)
	}
	cmd := &cobra.Command{
		Use:   "synth [flags]",
		Short: "Write a llama-architecture GGUF model with random weights",
		Long: `synth writes a llama-architecture GGUF model with random weights that Ollama and
llama.cpp load and run exactly as fast as a real model of the same shape. Greedy
decoding never ends early: the end-of-sequence token never wins.

Presets:` + presetHelp() + `
Shape flags override the preset. The file is written to a temporary name and
renamed when complete; an error or Ctrl-C leaves no file behind. Progress (bytes
written, rate, ETA) goes to stderr: a bar on a terminal, a line per tenth of the
file otherwise or with NO_COLOR.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			changed := func(name string) bool { return cmd.Flags().Changed(name) }
			return runSynth(cmd.Context(), s, f, changed)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.preset, "preset", "tiny", "model shape: "+strings.Join(names, ", "))
	fl.StringVar(&f.typ, "type", "", "matrix type: f32, f16 or q8_0 (default: the preset's, f16)")
	fl.StringVarP(&f.output, "output", "o", "", "output file (default <preset>-<type>.gguf in the current directory)")
	fl.StringVar(&f.name, "name", "", "general.name written into the model (default fuze-synth-<preset>)")
	fl.Uint64Var(&f.seed, "seed", 1, "random seed; the same seed and flags give the same file")
	fl.IntVar(&f.dim, "dim", 0, "embedding length (overrides the preset)")
	fl.IntVar(&f.layers, "layers", 0, "number of layers (overrides the preset)")
	fl.IntVar(&f.ffn, "ffn", 0, "feed-forward length (overrides the preset)")
	fl.IntVar(&f.heads, "heads", 0, "attention heads (overrides the preset)")
	fl.IntVar(&f.kvHeads, "kv-heads", 0, "key/value heads (overrides the preset)")
	fl.IntVar(&f.vocab, "vocab", 0, fmt.Sprintf("vocabulary size, at least %d (overrides the preset)", gguf.MinVocab))
	fl.IntVar(&f.ctx, "ctx", 0, "training context length (overrides the preset)")
	fl.BoolVar(&f.tied, "tied-embeddings", false, "omit output.weight and reuse token_embd.weight (overrides the preset)")
	return cmd
}

func presetHelp() string {
	var b strings.Builder
	for _, p := range gguf.Presets() {
		sh := p.Shape
		fmt.Fprintf(&b, "\n  %-9s dim %d, %d layers, ffn %d, %d heads, %d kv heads, vocab %d, ctx %d: %s",
			p.Name, sh.Dim, sh.Layers, sh.FFN, sh.Heads, sh.KVHeads, sh.Vocab, sh.Context, p.About)
	}
	return b.String() + "\n"
}

// runSynth validates the flags, writes the model and prints one summary line.
func runSynth(ctx context.Context, s streams, f synthFlags, changed func(string) bool) error {
	if ctx == nil {
		ctx = context.Background()
	}
	p, ok := gguf.LookupPreset(f.preset)
	if !ok {
		var names []string
		for _, q := range gguf.Presets() {
			names = append(names, q.Name)
		}
		return usageErrorf("invalid --preset %q: want one of %s", f.preset, strings.Join(names, ", "))
	}
	typ := p.Type
	if changed("type") {
		t, ok := gguf.ParseType(f.typ)
		if !ok {
			return usageErrorf("invalid --type %q: want f32, f16 or q8_0", f.typ)
		}
		typ = t
	}
	sh := p.Shape
	for _, o := range []struct {
		flag string
		src  int
		dst  *int
	}{
		{"dim", f.dim, &sh.Dim}, {"layers", f.layers, &sh.Layers}, {"ffn", f.ffn, &sh.FFN},
		{"heads", f.heads, &sh.Heads}, {"kv-heads", f.kvHeads, &sh.KVHeads},
		{"vocab", f.vocab, &sh.Vocab}, {"ctx", f.ctx, &sh.Context},
	} {
		if changed(o.flag) {
			*o.dst = o.src
		}
	}
	if changed("tied-embeddings") {
		sh.TiedEmbeddings = f.tied
	}
	if err := sh.Validate(typ); err != nil {
		var se *gguf.ShapeError
		if errors.As(err, &se) {
			return usageErrorf("invalid --%s: %s", se.Field, se.Msg)
		}
		return usageError{err}
	}
	name := f.name
	if !changed("name") {
		name = "fuze-synth-" + p.Name
	}
	out := f.output
	if !changed("output") {
		out = p.Name + "-" + gguf.TypeName(typ) + ".gguf"
	}
	if out == "" {
		return usageErrorf("invalid --output: empty path")
	}
	// Progress on stderr, fed by the writer: a bar on a terminal, a line per tenth otherwise.
	writing := progress.New(s.err, nil).Writing(out)
	m, err := gguf.NewSynth(gguf.SynthOptions{Shape: sh, Type: typ, Seed: f.seed, Name: name, Progress: writing.Set})
	if err != nil {
		return usageError{err}
	}
	size, err := m.WriteFile(ctx, out)
	writing.Done(err)
	if err != nil {
		return fmt.Errorf("synth %s: %w", out, err)
	}
	return printSynth(s.out, out, size, len(m.Tensors()), m.Params())
}

func printSynth(w io.Writer, path string, size int64, tensors int, params uint64) error {
	_, err := fmt.Fprintf(w, "%s: %s (%d bytes), %d tensors, %s parameters (%d)\n",
		path, humanBytes(size), size, tensors, humanCount(params), params)
	return err
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n), -1
	for v >= unit && i < 4 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGTP"[i])
}

func humanCount(n uint64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2fB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1fK", float64(n)/1e3)
	}
	return fmt.Sprintf("%d", n)
}
