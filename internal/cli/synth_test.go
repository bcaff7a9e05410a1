package cli

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fuze-ai/fuze/internal/gguf"
)

func runSynthArgs(ctx context.Context, args ...string) (string, error) {
	var out, errb bytes.Buffer
	cmd := newSynthCommand(streams{in: strings.NewReader(""), out: &out, err: &errb})
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SilenceErrors = true
	cmd.SilenceUsage = true
	err := cmd.ExecuteContext(ctx)
	return out.String(), err
}

func TestSynthCommand(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.gguf")
	out, err := runSynthArgs(context.Background(), "--preset", "tiny", "--type", "q8_0", "--seed", "3", "-o", path, "--name", "my-model")
	if err != nil {
		t.Fatal(err)
	}
	f, err := gguf.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if name, _ := f.String("general.name"); name != "my-model" {
		t.Errorf("general.name = %q", name)
	}
	if ft, _ := f.Uint("general.file_type"); ft != 7 {
		t.Errorf("file_type = %d", ft)
	}
	if strings.Count(out, "\n") != 1 || !strings.HasPrefix(out, path+": ") || !strings.Contains(out, "21 tensors") ||
		!strings.Contains(out, "parameters") || !strings.Contains(out, "bytes") {
		t.Errorf("output %q", out)
	}

	// Shape flags override the preset; the default output name is <preset>-<type>.gguf.
	t.Chdir(dir)
	if _, err := runSynthArgs(context.Background(), "--layers", "3", "--vocab", "400", "--tied-embeddings"); err != nil {
		t.Fatal(err)
	}
	f, err = gguf.ReadFile(filepath.Join(dir, "tiny-f16.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := f.Uint("llama.block_count"); n != 3 {
		t.Errorf("block_count %d", n)
	}
	if n, _ := f.Uint("llama.vocab_size"); n != 400 {
		t.Errorf("vocab_size %d", n)
	}
	if _, ok := f.Tensor("output.weight"); ok {
		t.Errorf("--tied-embeddings wrote output.weight")
	}
	if name, _ := f.String("general.name"); name != "fuze-synth-tiny" {
		t.Errorf("default name %q", name)
	}
}

func TestSynthCommandBadFlags(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bad.gguf")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--preset", "huge"}, "invalid --preset"},
		{[]string{"--type", "q4_0"}, "invalid --type"},
		{[]string{"--dim", "0"}, "invalid --dim"},
		{[]string{"--layers", "-2"}, "invalid --layers"},
		{[]string{"--ffn", "0"}, "invalid --ffn"},
		{[]string{"--ctx", "0"}, "invalid --ctx"},
		{[]string{"--heads", "3"}, "invalid --heads"},
		{[]string{"--kv-heads", "3"}, "invalid --kv-heads"},
		{[]string{"--vocab", "100"}, "invalid --vocab"},
		{[]string{"--type", "q8_0", "--dim", "48", "--heads", "4", "--kv-heads", "2"}, "invalid --dim"},
		{[]string{"--type", "q8_0", "--ffn", "100"}, "invalid --ffn"},
		{[]string{"--heads", "32", "--kv-heads", "8", "--dim", "32"}, "invalid --heads"}, // head_dim 1 is odd
	} {
		_, err := runSynthArgs(context.Background(), append(c.args, "-o", path)...)
		var ue usageError
		if err == nil || !errors.As(err, &ue) || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: err = %v, want a usage error containing %q", c.args, err, c.want)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("files left behind: %v", ents)
	}

	// Interrupted: context.Canceled (exit 130), no file.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := runSynthArgs(ctx, "-o", path); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	// Unwritable directory: a plain failure (exit 1), not a usage error.
	_, err := runSynthArgs(context.Background(), "-o", filepath.Join(dir, "missing", "x.gguf"))
	var ue usageError
	if err == nil || errors.As(err, &ue) {
		t.Fatalf("missing dir: %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("files left behind: %v", ents)
	}
}
