package gguf

import (
	"context"
	"fmt"
	"io"
	"math/bits"
	"runtime"
	"strconv"
)

// Shape is the architecture of a synthetic llama model.
type Shape struct {
	Dim     int // embedding length (n_embd)
	Layers  int // block count
	FFN     int // feed-forward length
	Heads   int // attention heads
	KVHeads int // key/value heads (grouped-query attention)
	Vocab   int // vocabulary size, at least MinVocab
	Context int // training context length (llama.context_length)

	// TiedEmbeddings omits output.weight; engines then use token_embd.weight as the
	// output projection (as Llama-3.2-1B does).
	TiedEmbeddings bool
	RopeBase       float32 // llama.rope.freq_base; 0 means 10000
	RMSEps         float32 // llama.attention.layer_norm_rms_epsilon; 0 means 1e-5
}

// HeadDim is the per-head dimension, Dim/Heads.
func (s Shape) HeadDim() int { return s.Dim / s.Heads }

// KVDim is the width of the K and V projections, HeadDim*KVHeads.
func (s Shape) KVDim() int { return s.HeadDim() * s.KVHeads }

func (s Shape) ropeBase() float32 {
	if s.RopeBase == 0 {
		return 10000
	}
	return s.RopeBase
}

func (s Shape) rmsEps() float32 {
	if s.RMSEps == 0 {
		return 1e-5
	}
	return s.RMSEps
}

// Preset is a named synthetic model shape with its default tensor type.
type Preset struct {
	Name  string
	Shape Shape
	Type  TensorType
	About string
}

var presets = []Preset{
	{Name: "tiny", Type: F16, About: "under 1 MB, for tests on CPU",
		Shape: Shape{Dim: 64, Layers: 2, FFN: 192, Heads: 4, KVHeads: 2, Vocab: 320, Context: 2048, RopeBase: 10000}},
	{Name: "small", Type: F16, About: "~56 MB, for CPU demos: decoding, not request overhead, dominates its timings",
		Shape: Shape{Dim: 512, Layers: 8, FFN: 1536, Heads: 8, KVHeads: 4, Vocab: 4096, Context: 4096, RopeBase: 10000}},
	// Llama-3.2-1B ties its embeddings; this preset does not, so that greedy decoding walks
	// the vocabulary (the successor chain) and never repeats a token: Ollama cuts a generation
	// after 30 repeats, which stopped the tied preset at "Ollama alone" on an H200.
	{Name: "llama-1b", Type: F16, About: "Llama-3.2-1B shape with an untied output projection, ~3 GB in F16",
		Shape: Shape{Dim: 2048, Layers: 16, FFN: 8192, Heads: 32, KVHeads: 8, Vocab: 128256, Context: 8192, RopeBase: 500000}},
	{Name: "llama-8b", Type: F16, About: "Llama-3.1-8B shape, ~16 GB in F16",
		Shape: Shape{Dim: 4096, Layers: 32, FFN: 14336, Heads: 32, KVHeads: 8, Vocab: 128256, Context: 8192, RopeBase: 500000}},
}

// Presets lists the synthetic model presets.
func Presets() []Preset { return append([]Preset(nil), presets...) }

// LookupPreset returns the preset called name.
func LookupPreset(name string) (Preset, bool) {
	for _, p := range presets {
		if p.Name == name {
			return p, true
		}
	}
	return Preset{}, false
}

// ParseType parses a tensor type name accepted for synthetic models: f32, f16, q8_0.
func ParseType(s string) (TensorType, bool) {
	switch s {
	case "f32", "F32":
		return F32, true
	case "f16", "F16":
		return F16, true
	case "q8_0", "Q8_0":
		return Q8_0, true
	}
	return 0, false
}

// TypeName is the lower-case name of the synthesisable types ("f32", "f16", "q8_0").
func TypeName(t TensorType) string {
	switch t {
	case F32:
		return "f32"
	case F16:
		return "f16"
	case Q8_0:
		return "q8_0"
	}
	return t.String()
}

// fileType is general.file_type (llama_ftype) for an all-t model.
func fileType(t TensorType) uint32 {
	switch t {
	case F16:
		return 1
	case Q8_0:
		return 7
	}
	return 0
}

// ShapeError reports an invalid shape. Field is the name of the offending setting
// as the fuze synth flags spell it: dim, layers, ffn, heads, kv-heads, vocab, ctx, type.
type ShapeError struct {
	Field string
	Msg   string
}

func (e *ShapeError) Error() string { return e.Field + ": " + e.Msg }

// Vocabulary layout. The SentencePiece ("llama") tokenizer used by Ollama and
// llama.cpp needs <unk>, <s>, </s> and the 256 byte-fallback tokens <0x00>..<0xFF>
// so that any text tokenizes; the rest are ordinary pieces.
const (
	TokenUnk        = 0
	TokenBOS        = 1
	TokenEOS        = 2
	firstByteToken  = 3
	firstTextToken  = firstByteToken + 256
	numLogitPairs   = 4
	MinVocab        = firstTextToken + 2*numLogitPairs // 267
	maxVocab        = 1 << 22
	weightScale     = 0.02
	blockTargetSize = 1 << 20 // bytes of encoded rows generated per work item
)

// SentencePiece token types (llama_token_type).
const (
	tokNormal  = 1
	tokUnknown = 2
	tokControl = 3
	tokByte    = 6
)

// Validate checks that s is a loadable llama shape with matrices of type t.
func (s Shape) Validate(t TensorType) error {
	for _, f := range []struct {
		name   string
		v, max int
	}{
		{"dim", s.Dim, 1 << 16}, {"layers", s.Layers, 1024}, {"ffn", s.FFN, 1 << 18},
		{"heads", s.Heads, 1024}, {"kv-heads", s.KVHeads, 1024}, {"vocab", s.Vocab, maxVocab},
		{"ctx", s.Context, 1 << 24},
	} {
		if f.v <= 0 {
			return &ShapeError{f.name, fmt.Sprintf("must be positive, got %d", f.v)}
		}
		if f.v > f.max {
			return &ShapeError{f.name, fmt.Sprintf("%d is larger than the supported maximum %d", f.v, f.max)}
		}
	}
	switch {
	case s.Dim%s.Heads != 0:
		return &ShapeError{"heads", fmt.Sprintf("dim %d is not divisible by heads %d", s.Dim, s.Heads)}
	case s.Heads%s.KVHeads != 0:
		return &ShapeError{"kv-heads", fmt.Sprintf("heads %d is not divisible by kv-heads %d", s.Heads, s.KVHeads)}
	case s.HeadDim()%2 != 0:
		return &ShapeError{"heads", fmt.Sprintf("head dimension dim/heads = %d must be even (RoPE rotates pairs)", s.HeadDim())}
	case s.Vocab < MinVocab:
		return &ShapeError{"vocab", fmt.Sprintf("%d is too small: at least %d (3 control tokens, 256 byte tokens, %d text tokens)",
			s.Vocab, MinVocab, 2*numLogitPairs)}
	}
	switch t {
	case F32, F16:
	case Q8_0:
		if s.Dim%32 != 0 {
			return &ShapeError{"dim", fmt.Sprintf("%d must be a multiple of 32 for q8_0 (its row length)", s.Dim)}
		}
		if s.FFN%32 != 0 {
			return &ShapeError{"ffn", fmt.Sprintf("%d must be a multiple of 32 for q8_0 (ffn_down's row length)", s.FFN)}
		}
	default:
		return &ShapeError{"type", fmt.Sprintf("%s is not supported (want f32, f16 or q8_0)", t)}
	}
	return nil
}

// SynthOptions configures a synthetic model.
type SynthOptions struct {
	Shape Shape
	Type  TensorType // F32, F16 or Q8_0 for the matrices; norms are always F32
	Seed  uint64
	Name  string // general.name; "" gives "fuze-synth"
	// Progress, when set, is told the bytes written as WriteTo and WriteFile write the model.
	Progress Progress
}

// Synth is a synthetic llama model: metadata, tensor directory and a deterministic
// generator of the tensor data (random weights from Seed).
type Synth struct {
	opts    SynthOptions
	kv      []KV
	tensors []TensorInfo
	fills   []fillKind
	params  uint64
}

type fillKind uint8

const (
	fillOnes      fillKind = iota // RMSNorm weights
	fillRandom                    // uniform in ±weightScale
	fillLogits                    // the output projection: random rows, with EOS-guard rows (see outputRow)
	fillEmbed                     // untied token embeddings: random rows, embedScale times larger
	fillSuccessor                 // untied output projection: the successor chain (see successorRow)
	fillSmall                     // block matrices of untied models: layerScale times smaller
)

// Untied models are built so that greedy decoding walks through the vocabulary instead of
// falling into a loop: engines cut a generation short when one token repeats many times
// (Ollama stops after 30 identical tokens), which would make the requested output length
// unreachable. Large embeddings and small block weights keep the final hidden state close to
// the current token's embedding, and the output row of token u is the embedding of the token
// before u in a chain over the vocabulary, so the next token is always the current one's
// successor. Weight values do not change how fast a model runs: only shapes and types do.
const (
	embedScale = 50  // token_embd values in ±1
	layerScale = 0.1 // block matrices in ±0.002
)

// NewSynth validates o and builds the model description.
func NewSynth(o SynthOptions) (*Synth, error) {
	if err := o.Shape.Validate(o.Type); err != nil {
		return nil, err
	}
	if o.Name == "" {
		o.Name = "fuze-synth"
	}
	s := &Synth{opts: o}
	sh := o.Shape
	dim, kvDim, ffn, vocab := uint64(sh.Dim), uint64(sh.KVDim()), uint64(sh.FFN), uint64(sh.Vocab)
	add := func(name string, t TensorType, fill fillKind, dims ...uint64) {
		ti := TensorInfo{Name: name, Dims: dims, Type: t}
		s.tensors = append(s.tensors, ti)
		s.fills = append(s.fills, fill)
		s.params += ti.Elements()
	}
	// Tied embeddings cannot carry the successor chain (a row would have to predict itself), so
	// tied models keep plain random weights.
	embedFill, blockFill := fillEmbed, fillSmall
	if sh.TiedEmbeddings {
		embedFill, blockFill = fillLogits, fillRandom
	}
	add("token_embd.weight", o.Type, embedFill, dim, vocab)
	for l := 0; l < sh.Layers; l++ {
		p := "blk." + strconv.Itoa(l) + "."
		add(p+"attn_norm.weight", F32, fillOnes, dim)
		add(p+"attn_q.weight", o.Type, blockFill, dim, dim)
		add(p+"attn_k.weight", o.Type, blockFill, dim, kvDim)
		add(p+"attn_v.weight", o.Type, blockFill, dim, kvDim)
		add(p+"attn_output.weight", o.Type, blockFill, dim, dim)
		add(p+"ffn_norm.weight", F32, fillOnes, dim)
		add(p+"ffn_gate.weight", o.Type, blockFill, dim, ffn)
		add(p+"ffn_up.weight", o.Type, blockFill, dim, ffn)
		add(p+"ffn_down.weight", o.Type, blockFill, ffn, dim)
	}
	add("output_norm.weight", F32, fillOnes, dim)
	if !sh.TiedEmbeddings {
		add("output.weight", o.Type, fillSuccessor, dim, vocab)
	}

	tokens, scores, types := Vocabulary(sh.Vocab)
	u := func(n int) uint32 { return uint32(n) }
	s.kv = []KV{
		{"general.architecture", "llama"},
		{"general.type", "model"},
		{"general.name", o.Name},
		{"general.description", fmt.Sprintf("synthetic llama model with random weights (fuze synth, seed %d)", o.Seed)},
		{"general.file_type", fileType(o.Type)},
		{"general.quantization_version", uint32(2)},
		{KeyAlignment, uint32(DefaultAlignment)},
		{"llama.context_length", u(sh.Context)},
		{"llama.embedding_length", u(sh.Dim)},
		{"llama.block_count", u(sh.Layers)},
		{"llama.feed_forward_length", u(sh.FFN)},
		{"llama.attention.head_count", u(sh.Heads)},
		{"llama.attention.head_count_kv", u(sh.KVHeads)},
		{"llama.attention.layer_norm_rms_epsilon", sh.rmsEps()},
		{"llama.rope.freq_base", sh.ropeBase()},
		{"llama.rope.dimension_count", u(sh.HeadDim())},
		{"llama.vocab_size", u(sh.Vocab)},
		{"tokenizer.ggml.model", "llama"},
		{"tokenizer.ggml.tokens", tokens},
		{"tokenizer.ggml.scores", scores},
		{"tokenizer.ggml.token_type", types},
		{"tokenizer.ggml.bos_token_id", uint32(TokenBOS)},
		{"tokenizer.ggml.eos_token_id", uint32(TokenEOS)},
		{"tokenizer.ggml.unknown_token_id", uint32(TokenUnk)},
		{"tokenizer.ggml.add_bos_token", true},
		{"tokenizer.ggml.add_eos_token", false},
	}
	return s, nil
}

// KV returns the model's metadata.
func (s *Synth) KV() []KV { return s.kv }

// Tensors returns the tensor directory (offsets are assigned when writing).
func (s *Synth) Tensors() []TensorInfo { return s.tensors }

// Params is the number of parameters (tensor elements).
func (s *Synth) Params() uint64 { return s.params }

// WriteTo streams the model to w and returns the bytes written. Memory use is
// bounded (a few MiB per CPU, at most 8 CPUs) whatever the model size.
func (s *Synth) WriteTo(ctx context.Context, w io.Writer) (int64, error) {
	return writeTo(ctx, w, s.kv, s.tensors, s.newGenerator().tensorData, s.opts.Progress)
}

// WriteFile writes the model to path atomically (see the package's WriteFile) and
// returns its size. On error or cancellation no file is left behind.
func (s *Synth) WriteFile(ctx context.Context, path string) (int64, error) {
	return writeFile(ctx, path, s.kv, s.tensors, s.newGenerator().tensorData, s.opts.Progress)
}

// Vocabulary returns n SentencePiece tokens with their scores and types:
//
//	0 <unk> (unknown), 1 <s> (BOS, control), 2 </s> (EOS, control),
//	3..258 <0x00>..<0xFF> (byte fallback, type byte),
//	259.. ordinary pieces: "▁", the printable ASCII characters, "▁" + letter or
//	digit, then lower-case bigrams and trigrams with and without "▁", then
//	"▁w<n>" fillers.
//
// All tokens are unique, non-empty, valid UTF-8, and none is a text that
// llama.cpp treats as end-of-generation (<|eot_id|>, <|endoftext|>, …), so the
// only EOG token is </s>. Scores decrease with the id like real SentencePiece
// log-probabilities, so short pieces merge first.
func Vocabulary(n int) (tokens []string, scores []float32, types []int32) {
	tokens = make([]string, 0, n)
	scores = make([]float32, 0, n)
	types = make([]int32, 0, n)
	push := func(tok string, score float32, typ int32) bool {
		if len(tokens) == n {
			return false
		}
		tokens, scores, types = append(tokens, tok), append(scores, score), append(types, typ)
		return true
	}
	push("<unk>", 0, tokUnknown)
	push("<s>", 0, tokControl)
	push("</s>", 0, tokControl)
	for b := 0; b < 256; b++ {
		push(fmt.Sprintf("<0x%02X>", b), 0, tokByte)
	}
	k := 0
	text := func(s string) bool { k++; return push(s, -float32(k), tokNormal) }
	const sp = "▁"
	lower := "abcdefghijklmnopqrstuvwxyz"
	alnum := lower + "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	ok := text(sp)
	for c := byte('!'); ok && c <= '~'; c++ {
		ok = text(string(c))
	}
	for i := 0; ok && i < len(alnum); i++ {
		ok = text(sp + alnum[i:i+1])
	}
	for _, prefix := range []string{"", sp} {
		for i := 0; ok && i < 26; i++ {
			for j := 0; ok && j < 26; j++ {
				ok = text(prefix + lower[i:i+1] + lower[j:j+1])
			}
		}
	}
	for _, prefix := range []string{"", sp} {
		for i := 0; ok && i < 26; i++ {
			for j := 0; ok && j < 26; j++ {
				for l := 0; ok && l < 26; l++ {
					ok = text(prefix + lower[i:i+1] + lower[j:j+1] + lower[l:l+1])
				}
			}
		}
	}
	for i := 0; ok; i++ {
		ok = text(sp + "w" + strconv.Itoa(i))
	}
	return tokens, scores, types
}

// LogitPairs returns the token ids (a, b) whose output rows are exact negatives of
// each other (row b = -row a). See outputRow.
func LogitPairs() [][2]int {
	p := make([][2]int, numLogitPairs)
	for i := range p {
		p[i] = [2]int{firstTextToken + 2*i, firstTextToken + 2*i + 1}
	}
	return p
}

// ZeroLogitTokens are the token ids whose output rows are all zeros: <unk>, <s>
// and </s>, the only non-text tokens in the vocabulary.
func ZeroLogitTokens() []int { return []int{TokenUnk, TokenBOS, TokenEOS} }

// outputRow fills row r (token id r) of the output projection.
//
// Greedy decoding must never stop early, i.e. </s> (the only end-of-generation
// token: the vocabulary has no <|eot_id|>-like texts) must never be the argmax.
// The logit of token r is dot(h, row r) where h is the final RMS-normalised hidden
// state. We make:
//
//   - the rows of </s>, <s> and <unk> all zeros, so their logits are exactly 0
//     (and the engine never emits a control token that renders as nothing);
//   - numLogitPairs pairs of rows (v, -v) with independent random v. Negation is
//     exact in F32, F16 and in Q8_0 (same scale, symmetric rounding), and a dot
//     product with a negated vector is the exact negation in floating point
//     (round-to-nearest is sign-symmetric), so each pair's logits are x and -x and
//     the larger is |x| >= 0.
//
// So the maximum logit is >= max_k |x_k| >= 0 = logit(</s>). It equals 0 only if h
// is orthogonal to all the random v_k, which has probability zero (h is the
// normalised state, never the zero vector). Ties would matter because llama.cpp's
// greedy sampler and Ollama's both keep the lowest index on equal logits (strict >)
// and </s> has id 2; with any |x_k| > 0 some pair token strictly beats it. A
// repeat penalty keeps the argument: it divides positive logits by the penalty
// (still > 0) and multiplies </s>'s 0 (still 0).
func (s *Synth) outputRow(ti, r int, row []float32) {
	switch {
	case r < firstByteToken:
		clear(row)
	case r >= firstTextToken && r < firstTextToken+2*numLogitPairs && (r-firstTextToken)%2 == 1:
		s.randomRow(ti, r-1, row)
		for i := range row {
			row[i] = -row[i]
		}
	default:
		s.randomRow(ti, r, row)
	}
}

// successorRow fills row r of an untied output projection. Control tokens get zero rows and
// the logit pairs their (v, -v) rows, exactly as outputRow (so the end-of-sequence guarantee
// holds for any hidden state); every other token u gets the embedding row of its predecessor
// in the chain of such tokens, so that the current token's successor has the largest logit.
func (s *Synth) successorRow(ti, r int, row []float32) {
	first, last := firstTextToken+2*numLogitPairs, s.opts.Shape.Vocab-1
	switch {
	case r < firstByteToken || (r >= firstTextToken && r < first):
		s.outputRow(ti, r, row)
		return
	}
	// The chain: byte tokens then text tokens after the pairs, wrapping around.
	pred := r - 1
	switch r {
	case firstByteToken:
		pred = last
	case first:
		pred = firstTextToken - 1
	}
	s.randomRow(embedTensor, pred, row)
	scaleRow(row, embedScale)
}

// embedTensor is token_embd.weight's index: the first tensor written.
const embedTensor = 0

func scaleRow(row []float32, k float32) {
	for i := range row {
		row[i] *= k
	}
}

// randomRow fills row with uniform values in [-weightScale, weightScale) from a
// generator seeded by (seed, tensor index, row): deterministic for a seed whatever
// the parallelism.
func (s *Synth) randomRow(ti, r int, row []float32) {
	st := splitmix(splitmix(s.opts.Seed^0x5851f42d4c957f2d) + uint64(ti)<<32 + uint64(r))
	const k = 2 * weightScale / (1 << 24)
	i := 0
	for ; i+1 < len(row); i += 2 {
		u := wyrand(&st)
		row[i] = float32(u>>40)*k - weightScale
		row[i+1] = float32(u>>8&0xffffff)*k - weightScale
	}
	if i < len(row) {
		row[i] = float32(wyrand(&st)>>40)*k - weightScale
	}
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

func wyrand(s *uint64) uint64 {
	*s += 0xa0761d6478bd642f
	hi, lo := bits.Mul64(*s, *s^0xe7037ed1a0b428db)
	return hi ^ lo
}

// fillRows encodes rows [first, first+n) of tensor ti into buf.
func (s *Synth) fillRows(ti, first, n int, row []float32, buf []byte) ([]byte, error) {
	t := s.tensors[ti]
	var err error
	for r := first; r < first+n; r++ {
		switch s.fills[ti] {
		case fillOnes:
			for i := range row {
				row[i] = 1
			}
		case fillRandom:
			s.randomRow(ti, r, row)
		case fillLogits:
			s.outputRow(ti, r, row)
		case fillEmbed:
			s.randomRow(ti, r, row)
			scaleRow(row, embedScale)
		case fillSmall:
			s.randomRow(ti, r, row)
			scaleRow(row, layerScale)
		case fillSuccessor:
			s.successorRow(ti, r, row)
		}
		if buf, err = Encode(buf, t.Type, row); err != nil {
			return buf, err
		}
	}
	return buf, nil
}

// generator streams the tensors of one write. Its scratch buffers (at most
// workers+1, each about blockTargetSize bytes plus one row of float32) are reused
// across tensors, so a whole model is written with a few MiB of allocations.
type generator struct {
	s       *Synth
	workers int
	free    chan *scratch
	made    int
}

type scratch struct {
	buf []byte
	row []float32
}

func (s *Synth) newGenerator() *generator {
	workers := min(runtime.GOMAXPROCS(0), 8)
	return &generator{s: s, workers: workers, free: make(chan *scratch, workers+1)}
}

// get returns a scratch for rows of rowLen values, or nil when all are in use.
func (g *generator) get(rowLen int, wait bool, stop <-chan struct{}) *scratch {
	var sc *scratch
	select {
	case sc = <-g.free:
	default:
		if g.made < cap(g.free) {
			g.made++
			sc = &scratch{}
		} else if wait {
			select {
			case sc = <-g.free:
			case <-stop:
				return nil
			}
		} else {
			return nil
		}
	}
	if len(sc.row) < rowLen {
		sc.row = make([]float32, rowLen)
	}
	return sc
}

// tensorData streams tensor ti: rows are generated in blocks of about
// blockTargetSize bytes by up to min(GOMAXPROCS, 8) goroutines and written in
// order. At most workers+1 blocks exist at once.
func (g *generator) tensorData(ctx context.Context, ti int, t TensorInfo, w io.Writer) error {
	s := g.s
	rowLen := int(t.Dims[0])
	rows := int(t.Elements()) / rowLen
	rowBytes := rowLen / int(t.Type.BlockSize()) * int(t.Type.TypeSize())
	perBlock := max(1, blockTargetSize/rowBytes)
	nBlocks := (rows + perBlock - 1) / perBlock

	if g.workers <= 1 || nBlocks == 1 {
		sc := g.get(rowLen, true, nil)
		defer func() { g.free <- sc }()
		for b := 0; b < nBlocks; b++ {
			if err := ctx.Err(); err != nil {
				return err
			}
			first := b * perBlock
			buf, err := s.fillRows(ti, first, min(perBlock, rows-first), sc.row[:rowLen], sc.buf[:0])
			sc.buf = buf
			if err != nil {
				return err
			}
			if _, err := w.Write(buf); err != nil {
				return err
			}
		}
		return nil
	}

	type job struct {
		sc   *scratch
		err  error
		done chan struct{}
	}
	queue := make(chan *job, g.workers)
	stop := make(chan struct{})
	go func() {
		defer close(queue)
		for b := 0; b < nBlocks; b++ {
			sc := g.get(rowLen, true, stop)
			if sc == nil {
				return
			}
			j := &job{sc: sc, done: make(chan struct{})}
			first := b * perBlock
			go func() {
				sc.buf, j.err = s.fillRows(ti, first, min(perBlock, rows-first), sc.row[:rowLen], sc.buf[:0])
				close(j.done)
			}()
			select {
			case queue <- j:
			case <-stop:
				<-j.done
				g.free <- sc
				return
			}
		}
	}()

	var err error
	for j := range queue {
		<-j.done
		if err == nil {
			err = j.err
		}
		if err == nil {
			err = ctx.Err()
		}
		if err == nil {
			_, err = w.Write(j.sc.buf)
		}
		g.free <- j.sc
		if err != nil {
			select {
			case <-stop:
			default:
				close(stop)
			}
		}
	}
	return err
}
