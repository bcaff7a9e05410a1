package gguf

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	parser "github.com/gpustack/gguf-parser-go"
)

func tinyPreset(t testing.TB) Preset {
	p, ok := LookupPreset("tiny")
	if !ok {
		t.Fatal("no tiny preset")
	}
	return p
}

func writeSynth(t testing.TB, o SynthOptions) (string, *Synth) {
	t.Helper()
	m, err := NewSynth(o)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "m.gguf")
	n, err := m.WriteFile(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Size() != n {
		t.Fatalf("stat %v; WriteFile said %d bytes", err, n)
	}
	return path, m
}

func TestSynthTiny(t *testing.T) {
	p := tinyPreset(t)
	for _, typ := range []TensorType{F32, F16, Q8_0} {
		t.Run(typ.String(), func(t *testing.T) {
			path, m := writeSynth(t, SynthOptions{Shape: p.Shape, Type: typ, Seed: 7, Name: "tiny-test"})
			f, err := ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if f.Size >= 1<<20 {
				t.Errorf("tiny %s is %d bytes, want < 1 MiB", typ, f.Size)
			}
			wantTensors := 2 + 9*p.Shape.Layers + 1
			if len(f.Tensors) != wantTensors || len(m.Tensors()) != wantTensors {
				t.Fatalf("%d tensors, want %d", len(f.Tensors), wantTensors)
			}
			for key, want := range map[string]uint64{
				"llama.block_count": 2, "llama.context_length": 2048, "llama.embedding_length": 64,
				"llama.feed_forward_length": 192, "llama.attention.head_count": 4,
				"llama.attention.head_count_kv": 2, "llama.rope.dimension_count": 16, "llama.vocab_size": 320,
				"general.file_type": uint64(fileType(typ)), "tokenizer.ggml.eos_token_id": TokenEOS,
				"tokenizer.ggml.bos_token_id": TokenBOS, "general.alignment": 32,
			} {
				if got, ok := f.Uint(key); !ok || got != want {
					t.Errorf("%s = %d (%v), want %d", key, got, ok, want)
				}
			}
			if v, _ := f.Get("llama.attention.layer_norm_rms_epsilon"); v != float32(1e-5) {
				t.Errorf("rms eps %v", v)
			}
			var params uint64
			for _, ti := range f.Tensors {
				params += ti.Elements()
				want := typ
				if len(ti.Dims) == 1 {
					want = F32
				}
				if ti.Type != want {
					t.Errorf("%s is %s, want %s", ti.Name, ti.Type, want)
				}
			}
			if params != m.Params() {
				t.Errorf("params %d vs %d", params, m.Params())
			}
			for name, dims := range map[string][]uint64{
				"token_embd.weight": {64, 320}, "output.weight": {64, 320}, "output_norm.weight": {64},
				"blk.1.attn_norm.weight": {64}, "blk.1.attn_q.weight": {64, 64}, "blk.1.attn_k.weight": {64, 32},
				"blk.1.attn_v.weight": {64, 32}, "blk.1.attn_output.weight": {64, 64}, "blk.1.ffn_norm.weight": {64},
				"blk.1.ffn_gate.weight": {64, 192}, "blk.1.ffn_up.weight": {64, 192}, "blk.1.ffn_down.weight": {192, 64},
			} {
				ti, ok := f.Tensor(name)
				if !ok || len(ti.Dims) != len(dims) || ti.Dims[0] != dims[0] || (len(dims) == 2 && ti.Dims[1] != dims[1]) {
					t.Errorf("%s: %v (found %v), want dims %v", name, ti.Dims, ok, dims)
				}
			}

			// The independent parser agrees.
			gf, err := parser.ParseGGUFFile(path)
			if err != nil {
				t.Fatal(err)
			}
			a := gf.Architecture()
			if a.Architecture != "llama" || a.BlockCount != 2 || a.MaximumContextLength != 2048 ||
				a.EmbeddingLength != 64 || a.AttentionHeadCount != 4 || a.VocabularyLength != 320 {
				t.Errorf("architecture %+v", a)
			}
			tk := gf.Tokenizer()
			if tk.Model != "llama" || tk.TokensLength != 320 || tk.EOSTokenID != TokenEOS || tk.BOSTokenID != TokenBOS || tk.UnknownTokenID != TokenUnk {
				t.Errorf("tokenizer %+v", tk)
			}
			if gf.Header.TensorCount != uint64(wantTensors) || len(gf.TensorInfos) != wantTensors {
				t.Errorf("parser sees %d tensors", gf.Header.TensorCount)
			}
			for i, ti := range gf.TensorInfos {
				if ti.Name != f.Tensors[i].Name || uint32(ti.Type) != uint32(f.Tensors[i].Type) || ti.Offset != f.Tensors[i].Offset {
					t.Errorf("parser tensor %d: %s %v @%d", i, ti.Name, ti.Type, ti.Offset)
				}
			}
			if uint64(gf.ModelParameters) != m.Params() {
				t.Errorf("parser counts %d parameters, we %d", gf.ModelParameters, m.Params())
			}
		})
	}
}

func TestPresetParams(t *testing.T) {
	// Parameter counts of the real models: Llama-3.1-8B, and Llama-3.2-1B plus the output
	// projection it ties to its embeddings (128256 × 2048) and the preset does not.
	for name, want := range map[string]uint64{"llama-1b": 1_235_814_400 + 128256*2048, "llama-8b": 8_030_261_248} {
		p, ok := LookupPreset(name)
		if !ok {
			t.Fatalf("no preset %s", name)
		}
		m, err := NewSynth(SynthOptions{Shape: p.Shape, Type: p.Type})
		if err != nil {
			t.Fatal(err)
		}
		if m.Params() != want {
			t.Errorf("%s: %d parameters, want %d", name, m.Params(), want)
		}
	}
}

func fileHash(t *testing.T, path string) [32]byte {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func TestSynthDeterministic(t *testing.T) {
	// Big enough that the larger tensors span several row blocks (parallel path).
	sh := Shape{Dim: 512, Layers: 1, FFN: 2048, Heads: 8, KVHeads: 2, Vocab: 4096, Context: 512}
	o := SynthOptions{Shape: sh, Type: F16, Seed: 99}
	a, _ := writeSynth(t, o)
	b, _ := writeSynth(t, o)
	if fileHash(t, a) != fileHash(t, b) {
		t.Fatal("same seed, different files")
	}
	prev := runtime.GOMAXPROCS(1)
	c, _ := writeSynth(t, o)
	runtime.GOMAXPROCS(prev)
	if fileHash(t, a) != fileHash(t, c) {
		t.Fatal("GOMAXPROCS=1 gives a different file")
	}
	o.Seed = 100
	d, _ := writeSynth(t, o)
	if fileHash(t, a) == fileHash(t, d) {
		t.Fatal("different seeds, same file")
	}
}

// readRows decodes tensor name of file path into rows of ne0 values.
func readRows(t *testing.T, path, name string) [][]float32 {
	t.Helper()
	f, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ti, ok := f.Tensor(name)
	if !ok {
		t.Fatalf("no tensor %s", name)
	}
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	sr, err := f.TensorReader(fh, ti)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(sr)
	if err != nil {
		t.Fatal(err)
	}
	vals, err := Decode(nil, ti.Type, raw)
	if err != nil {
		t.Fatal(err)
	}
	n := int(ti.Dims[0])
	var rows [][]float32
	for i := 0; i < len(vals); i += n {
		rows = append(rows, vals[i:i+n])
	}
	return rows
}

// TestSynthEOSGuard checks the property that keeps greedy decoding from ending:
// the rows of </s>, <s>, <unk> in the output projection are zero, the pair rows
// are exact negatives, and for random hidden states the argmax is never </s>.
func TestSynthEOSGuard(t *testing.T) {
	p := tinyPreset(t)
	for _, c := range []struct {
		typ  TensorType
		tied bool
	}{{F32, false}, {F16, false}, {Q8_0, false}, {F16, true}, {Q8_0, true}} {
		sh := p.Shape
		sh.TiedEmbeddings = c.tied
		path, _ := writeSynth(t, SynthOptions{Shape: sh, Type: c.typ, Seed: 3})
		name := "output.weight"
		if c.tied {
			name = "token_embd.weight"
			if f, _ := ReadFile(path); f != nil {
				if _, ok := f.Tensor("output.weight"); ok {
					t.Fatalf("tied model has output.weight")
				}
			}
		}
		rows := readRows(t, path, name)
		if len(rows) != sh.Vocab {
			t.Fatalf("%s: %d rows", name, len(rows))
		}
		for _, id := range ZeroLogitTokens() {
			for _, x := range rows[id] {
				if x != 0 {
					t.Fatalf("%s %v: row %d not zero", c.typ, c.tied, id)
				}
			}
		}
		for _, pr := range LogitPairs() {
			if pr[0] <= TokenEOS || pr[1] <= TokenEOS {
				t.Fatalf("pair %v not after EOS", pr)
			}
			nonzero := false
			for i := range rows[pr[0]] {
				if rows[pr[1]][i] != -rows[pr[0]][i] {
					t.Fatalf("%s: row %d is not -row %d at %d", c.typ, pr[1], pr[0], i)
				}
				nonzero = nonzero || rows[pr[0]][i] != 0
			}
			if !nonzero {
				t.Fatalf("pair row %d is zero", pr[0])
			}
		}
		// Logits for random hidden states (float32 dot products, as engines compute).
		st := uint64(1)
		h := make([]float32, sh.Dim)
		for trial := 0; trial < 200; trial++ {
			for i := range h {
				h[i] = float32(wyrand(&st)>>40)/(1<<23) - 1
			}
			best, bestLogit := -1, float32(math.Inf(-1))
			for id, row := range rows {
				var s float32
				for i, w := range row {
					s += w * h[i]
				}
				if s > bestLogit { // strict: lowest index wins ties, like llama.cpp and Ollama
					best, bestLogit = id, s
				}
			}
			if best <= TokenEOS || bestLogit <= 0 {
				t.Fatalf("%s: argmax token %d with logit %g", c.typ, best, bestLogit)
			}
		}
	}
}

func TestVocabulary(t *testing.T) {
	eogTexts := []string{"<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<end_of_turn>",
		"<|endoftext|>", "<|eom_id|>", "<EOT>", "_<EOT>", "<|end_of_text|>", "<end_of_utterance>",
		"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "<|fim_repo|>", "<|repo_name|>", "<fim-repo>",
		"<REPO>", "<reponame>", "<|file_sep|>"}
	for _, n := range []int{MinVocab, 320, 128256} {
		tokens, scores, types := Vocabulary(n)
		if len(tokens) != n || len(scores) != n || len(types) != n {
			t.Fatalf("Vocabulary(%d): %d tokens %d scores %d types", n, len(tokens), len(scores), len(types))
		}
		seen := make(map[string]bool, n)
		for i, tok := range tokens {
			if tok == "" || !utf8.ValidString(tok) || seen[tok] {
				t.Fatalf("token %d %q empty, invalid or duplicate", i, tok)
			}
			seen[tok] = true
			for _, e := range eogTexts {
				if tok == e {
					t.Fatalf("token %d is the end-of-generation text %q", i, tok)
				}
			}
			switch {
			case i == TokenUnk:
				if tok != "<unk>" || types[i] != tokUnknown {
					t.Fatalf("token 0 = %q type %d", tok, types[i])
				}
			case i == TokenBOS || i == TokenEOS:
				if types[i] != tokControl {
					t.Fatalf("token %d %q type %d", i, tok, types[i])
				}
			case i < firstTextToken:
				if want := "<0x" + strings.ToUpper(string("0123456789abcdef"[(i-3)>>4])+string("0123456789abcdef"[(i-3)&15])) + ">"; tok != want || types[i] != tokByte {
					t.Fatalf("token %d = %q type %d, want %q", i, tok, types[i], want)
				}
			default:
				if types[i] != tokNormal || scores[i] >= 0 || scores[i] >= scores[i-1] && i > firstTextToken {
					t.Fatalf("token %d %q type %d score %g", i, tok, types[i], scores[i])
				}
			}
		}
		if tokens[TokenBOS] != "<s>" || tokens[TokenEOS] != "</s>" || tokens[firstByteToken+10] != "<0x0A>" {
			t.Fatalf("special tokens %q %q %q", tokens[TokenBOS], tokens[TokenEOS], tokens[firstByteToken+10])
		}
	}
}

func TestShapeValidate(t *testing.T) {
	good := tinyPreset(t).Shape
	if err := good.Validate(Q8_0); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		mod   func(*Shape)
		typ   TensorType
		field string
	}{
		{func(s *Shape) { s.Dim = 0 }, F16, "dim"},
		{func(s *Shape) { s.Layers = -1 }, F16, "layers"},
		{func(s *Shape) { s.FFN = 0 }, F16, "ffn"},
		{func(s *Shape) { s.Context = 0 }, F16, "ctx"},
		{func(s *Shape) { s.Heads = 3 }, F16, "heads"},
		{func(s *Shape) { s.Dim, s.Heads, s.KVHeads = 60, 20, 4 }, F16, "heads"}, // head_dim 3 is odd
		{func(s *Shape) { s.KVHeads = 3 }, F16, "kv-heads"},
		{func(s *Shape) { s.Vocab = MinVocab - 1 }, F16, "vocab"},
		{func(s *Shape) { s.Vocab = 1 << 30 }, F16, "vocab"},
		{func(s *Shape) { s.Dim, s.Heads, s.KVHeads = 48, 4, 2 }, Q8_0, "dim"},
		{func(s *Shape) { s.FFN = 100 }, Q8_0, "ffn"},
		{func(*Shape) {}, Q4_0, "type"},
	} {
		s := good
		c.mod(&s)
		err := s.Validate(c.typ)
		var se *ShapeError
		if !errors.As(err, &se) || se.Field != c.field {
			t.Errorf("%+v %s: err %v, want field %s", s, c.typ, err, c.field)
		}
		if _, err := NewSynth(SynthOptions{Shape: s, Type: c.typ}); err == nil {
			t.Errorf("NewSynth accepted %+v", s)
		}
	}
}

type cancelAfter struct {
	n      int64
	cancel context.CancelFunc
}

func (c *cancelAfter) Write(p []byte) (int, error) {
	if c.n -= int64(len(p)); c.n < 0 {
		c.cancel()
	}
	return len(p), nil
}

func TestSynthCancel(t *testing.T) {
	sh := Shape{Dim: 512, Layers: 2, FFN: 2048, Heads: 8, KVHeads: 2, Vocab: 4096, Context: 512}
	m, err := NewSynth(SynthOptions{Shape: sh, Type: F32, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n, err := m.WriteTo(ctx, &cancelAfter{n: 3 << 20, cancel: cancel})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if n > 16<<20 {
		t.Errorf("kept writing %d bytes after cancel", n)
	}
	// WriteFile with a cancelled context leaves nothing.
	dir := t.TempDir()
	if _, err := m.WriteFile(ctx, filepath.Join(dir, "x.gguf")); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	// Cancel mid-file.
	ctx2, cancel2 := context.WithCancel(context.Background())
	go func() { time.Sleep(20 * time.Millisecond); cancel2() }()
	big, _ := NewSynth(SynthOptions{Shape: Shape{Dim: 2048, Layers: 64, FFN: 8192, Heads: 16, KVHeads: 4, Vocab: 32000, Context: 512}, Type: F16})
	if _, err := big.WriteFile(ctx2, filepath.Join(dir, "y.gguf")); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("left behind: %v", ents)
	}
}

// peakHeap samples the live heap while f runs and returns the peak and total
// bytes allocated.
func peakHeap(f func()) (peak, total uint64) {
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var p atomic.Uint64
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		for {
			metrics.Read(s)
			if v := s[0].Value.Uint64(); v > p.Load() {
				p.Store(v)
			}
			select {
			case <-done:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	f()
	close(done)
	<-stopped
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	return p.Load(), after.TotalAlloc - before.TotalAlloc
}

// TestSynthStreamingMemory writes ~200 MB of tensor data and checks that memory
// stays flat.
func TestSynthStreamingMemory(t *testing.T) {
	sh := Shape{Dim: 1024, Layers: 5, FFN: 4096, Heads: 16, KVHeads: 4, Vocab: 16384, Context: 512}
	m, err := NewSynth(SynthOptions{Shape: sh, Type: F16, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	peak, total := peakHeap(func() {
		n, err = m.WriteTo(context.Background(), io.Discard)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %d MB; peak live heap %.1f MB, allocated %.1f MB", n>>20, float64(peak)/(1<<20), float64(total)/(1<<20))
	if n < 190<<20 {
		t.Fatalf("only %d bytes written", n)
	}
	if peak > 64<<20 || total > 64<<20 {
		t.Errorf("memory not flat: peak %d, allocated %d bytes", peak, total)
	}
}

// In untied models the output projection maps each token's embedding to its successor, so
// greedy decoding walks the vocabulary and never repeats a token (engines stop generations
// that repeat one token many times).
func TestSynthSuccessorChain(t *testing.T) {
	for _, typ := range []TensorType{F32, F16, Q8_0} {
		p, _ := LookupPreset("tiny")
		s, err := NewSynth(SynthOptions{Shape: p.Shape, Type: typ, Seed: 7})
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "m.gguf")
		if _, err := s.WriteFile(context.Background(), path); err != nil {
			t.Fatal(err)
		}
		emb, out := readRows(t, path, "token_embd.weight"), readRows(t, path, "output.weight")
		skip := map[int]bool{}
		for _, pr := range LogitPairs() {
			skip[pr[0]], skip[pr[1]] = true, true
		}
		var chain []int
		for id := firstByteToken; id < len(emb); id++ {
			if !skip[id] {
				chain = append(chain, id)
			}
		}
		for i, tok := range chain {
			want := chain[(i+1)%len(chain)]
			best, bestLogit := -1, float32(0)
			for u, row := range out {
				var dot float32
				for k := range row {
					dot += row[k] * emb[tok][k]
				}
				if best < 0 || dot > bestLogit {
					best, bestLogit = u, dot
				}
			}
			if best != want {
				t.Fatalf("%s: token %d: argmax %d, want its successor %d", TypeName(typ), tok, best, want)
			}
		}
	}
}

// Every preset has an untied output projection, so that greedy decoding walks the vocabulary
// (the successor chain) and engines' guards against a repeated token never cut it short.
func TestPresetsAreUntied(t *testing.T) {
	for _, p := range Presets() {
		if p.Shape.TiedEmbeddings {
			t.Errorf("preset %s ties its embeddings: a tied model cannot carry the successor chain", p.Name)
		}
	}
}

// Progress is told the bytes that reached the file, in order, up to the file's size, and the
// file is the one written without it.
func TestSynthProgress(t *testing.T) {
	sh := Shape{Dim: 512, Layers: 1, FFN: 2048, Heads: 8, KVHeads: 2, Vocab: 4096, Context: 512}
	var calls []int64
	var total int64
	o := SynthOptions{Shape: sh, Type: F16, Seed: 99, Progress: func(written, size int64) {
		if total != 0 && size != total {
			t.Errorf("total changed from %d to %d", total, size)
		}
		total = size
		calls = append(calls, written)
	}}
	path, _ := writeSynth(t, o)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if total != st.Size() || len(calls) < 3 || calls[len(calls)-1] != st.Size() {
		t.Fatalf("total %d, file %d bytes, %d calls ending at %d", total, st.Size(), len(calls), calls[len(calls)-1])
	}
	for i := 1; i < len(calls); i++ {
		if calls[i] < calls[i-1] {
			t.Fatalf("written went back: %v", calls)
		}
	}
	o.Progress = nil
	plain, _ := writeSynth(t, o)
	if fileHash(t, path) != fileHash(t, plain) {
		t.Fatal("progress changed the file")
	}
}
