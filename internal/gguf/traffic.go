package gguf

import (
	"fmt"
	"math/bits"
	"regexp"
	"strings"
)

// Tensor names and metadata keys that TokenTraffic looks at.
const (
	TensorTokenEmbd = "token_embd.weight" // the token-embedding table, ne = [n_embd, n_vocab]
	TensorOutput    = "output.weight"     // the output (logits) projection; absent when tied to token_embd
	KeyArchitecture = "general.architecture"
	// The MoE keys are "<arch>.expert_count" and "<arch>.expert_used_count".
	keyExpertCount = ".expert_count"
	keyExpertUsed  = ".expert_used_count"
)

// legacyExpert matches the per-expert FFN tensors of early MoE conversions
// (blk.N.ffn_gate.E.weight, one tensor per expert E) that predate the stacked
// blk.N.ffn_gate_exps.weight.
var legacyExpert = regexp.MustCompile(`\.ffn_(gate|up|down)\.[0-9]+\.weight$`)

// IsExpertTensor reports whether the tensor named name holds MoE expert weights,
// of which a token reads only expert_used_count of expert_count: the stacked
// expert tensors (blk.N.ffn_gate_exps.weight, ffn_up_exps, ffn_down_exps,
// ffn_gate_up_exps and their biases and scales, any name containing "_exps") and
// the legacy per-expert ones (blk.N.ffn_gate.E.weight). Shared experts
// (ffn_*_shexp) and the router (ffn_gate_inp) run for every token and are not
// expert tensors.
func IsExpertTensor(name string) bool {
	return strings.Contains(name, "_exps") || legacyExpert.MatchString(name)
}

// Traffic is the weight data a decoder reads from memory to generate one token,
// the denominator of the memory-bandwidth roofline: at batch size 1, decoding is
// bound by streaming the weights, so tokens/s ≤ bandwidth / PerToken.
//
// PerToken is the sum of all tensor sizes except:
//
//   - token_embd.weight: embedding a token reads one row of the table (n_embd
//     values), not the n_vocab × n_embd matrix, so only one row's bytes count
//     (its size / n_vocab). With a large vocabulary the table is a sizeable share
//     of the file: 1.05 GB of Llama-3.1-8B's 16 GB in F16 (128256 × 4096 × 2
//     bytes); counting it in full would put the roofline about 6.5% too low.
//     When output.weight is absent (tied embeddings, as in Llama-3.2-1B and
//     Gemma), token_embd is also the output projection, multiplied in full for
//     every token's logits, and counts in full.
//   - MoE expert tensors (see IsExpertTensor): a token is routed to
//     expert_used_count of the expert_count experts, so each counts
//     size × expert_used_count / expert_count (rounded down).
//
// KV-cache reads (which grow with the context) and activations are not included:
// PerToken is a lower bound on the bytes moved per token, so the roofline it
// gives is an upper bound on tokens per second.
type Traffic struct {
	PerToken int64 // bytes read per generated token
	Weights  int64 // all tensor data in the file
	// Embedding is the token_embd.weight bytes included in PerToken: one row, or
	// the whole table when TiedEmbeddings. 0 when there is no token_embd.weight.
	Embedding      int64
	TiedEmbeddings bool // token_embd.weight present and output.weight absent
	// Experts is the expert-tensor bytes included in PerToken (already scaled by
	// ExpertUsed/ExpertCount). ExpertCount and ExpertUsed are the model's
	// <arch>.expert_count and <arch>.expert_used_count; all three are 0 for a
	// dense model.
	Experts                 int64
	ExpertCount, ExpertUsed uint64
}

// TokenTraffic computes the bytes read per generated token from f's tensor
// directory and metadata (see Traffic). It fails for a tensor of unknown size, and
// for expert tensors without valid <arch>.expert_count and
// <arch>.expert_used_count (1 ≤ used ≤ count).
func TokenTraffic(f *File) (Traffic, error) {
	var tr Traffic
	_, hasOutput := f.Tensor(TensorOutput)
	experts := false
	for _, t := range f.Tensors {
		if IsExpertTensor(t.Name) {
			experts = true
			break
		}
	}
	if experts {
		arch, ok := f.String(KeyArchitecture)
		if !ok || arch == "" {
			return Traffic{}, fmt.Errorf("gguf: MoE expert tensors but no %s", KeyArchitecture)
		}
		count, ok1 := f.Uint(arch + keyExpertCount)
		used, ok2 := f.Uint(arch + keyExpertUsed)
		switch {
		case !ok1 || !ok2:
			return Traffic{}, fmt.Errorf("gguf: MoE expert tensors but no integer %s%s and %s%s",
				arch, keyExpertCount, arch, keyExpertUsed)
		case count == 0 || used == 0 || used > count:
			return Traffic{}, fmt.Errorf("gguf: %s%s = %d and %s%s = %d: want 1 ≤ used ≤ count",
				arch, keyExpertCount, count, arch, keyExpertUsed, used)
		}
		tr.ExpertCount, tr.ExpertUsed = count, used
	}

	const limit = 1 << 62
	var perToken, weights, embedding, expertBytes uint64
	for _, t := range f.Tensors {
		size, err := t.Size()
		if err != nil {
			return Traffic{}, fmt.Errorf("gguf: %w", err)
		}
		read := size
		switch {
		case t.Name == TensorTokenEmbd && !hasOutput:
			tr.TiedEmbeddings = true
			embedding = size
		case t.Name == TensorTokenEmbd:
			// One row of ne0 = n_embd values; a 1-D table counts in full.
			if len(t.Dims) > 1 && t.Dims[0] > 0 {
				if rows := t.Elements() / t.Dims[0]; rows > 0 {
					read = size / rows
				}
			}
			embedding = read
		case tr.ExpertCount > 0 && IsExpertTensor(t.Name):
			hi, lo := bits.Mul64(size, tr.ExpertUsed)
			read, _ = bits.Div64(hi, lo, tr.ExpertCount) // hi < count since used ≤ count
			expertBytes += read
		}
		weights += size
		perToken += read
		if weights > limit {
			return Traffic{}, fmt.Errorf("gguf: total tensor size overflows")
		}
	}
	tr.PerToken, tr.Weights = int64(perToken), int64(weights)
	tr.Embedding, tr.Experts = int64(embedding), int64(expertBytes)
	return tr, nil
}

// BytesPerToken is TokenTraffic(f).PerToken: the weight bytes a decoder reads per
// generated token, for the roofline (tokens/s ≤ memory bandwidth / BytesPerToken).
func BytesPerToken(f *File) (int64, error) {
	tr, err := TokenTraffic(f)
	if err != nil {
		return 0, err
	}
	return tr.PerToken, nil
}

// BytesPerTokenFile reads the GGUF header and tensor directory at path (not the
// tensor data) and returns BytesPerToken. Errors name the path.
func BytesPerTokenFile(path string) (int64, error) {
	f, err := ReadFile(path)
	if err != nil {
		return 0, err
	}
	n, err := BytesPerToken(f)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return n, nil
}
