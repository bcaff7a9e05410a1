package gguf

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// zeroData writes each tensor's size in zero bytes.
func zeroData(_ context.Context, _ int, t TensorInfo, w io.Writer) error {
	size, err := t.Size()
	if err != nil {
		return err
	}
	_, err = w.Write(make([]byte, size))
	return err
}

// writeRead writes a GGUF with the package's writer and parses it back.
func writeRead(t *testing.T, kv []KV, tensors []TensorInfo) *File {
	t.Helper()
	var buf bytes.Buffer
	if _, err := WriteTo(context.Background(), &buf, kv, tensors, zeroData); err != nil {
		t.Fatal(err)
	}
	f, err := Read(bytes.NewReader(buf.Bytes()), "test.gguf")
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func traffic(t *testing.T, f *File) Traffic {
	t.Helper()
	tr, err := TokenTraffic(f)
	if err != nil {
		t.Fatal(err)
	}
	n, err := BytesPerToken(f)
	if err != nil || n != tr.PerToken {
		t.Fatalf("BytesPerToken = %d, %v; TokenTraffic.PerToken = %d", n, err, tr.PerToken)
	}
	return tr
}

// denseTensors is a one-block llama with n_embd 32 and a 100-token vocabulary.
func denseTensors(tied bool) []TensorInfo {
	ts := []TensorInfo{
		{Name: "token_embd.weight", Dims: []uint64{32, 100}, Type: F16},      // 6400 bytes, a row is 64
		{Name: "blk.0.attn_norm.weight", Dims: []uint64{32}, Type: F32},      // 128
		{Name: "blk.0.attn_q.weight", Dims: []uint64{32, 32}, Type: Q8_0},    // 32 rows × 1 block × 34 = 1088
		{Name: "blk.0.ffn_down.weight", Dims: []uint64{256, 32}, Type: Q4_K}, // 32 rows × 1 block × 144 = 4608
		{Name: "output_norm.weight", Dims: []uint64{32}, Type: F32},          // 128
	}
	if !tied {
		ts = append(ts, TensorInfo{Name: "output.weight", Dims: []uint64{32, 100}, Type: Q8_0}) // 100 × 34 = 3400
	}
	return ts
}

var denseKV = []KV{{"general.architecture", "llama"}, {"llama.embedding_length", uint32(32)}}

func TestTokenTrafficDenseUntied(t *testing.T) {
	tr := traffic(t, writeRead(t, denseKV, denseTensors(false)))
	want := Traffic{
		Weights:   6400 + 128 + 1088 + 4608 + 128 + 3400, // 15752
		PerToken:  64 + 128 + 1088 + 4608 + 128 + 3400,   // 9416: one embedding row
		Embedding: 64,
	}
	if tr != want {
		t.Errorf("TokenTraffic = %+v\nwant           %+v", tr, want)
	}
}

func TestTokenTrafficDenseTied(t *testing.T) {
	tr := traffic(t, writeRead(t, denseKV, denseTensors(true)))
	want := Traffic{
		Weights:        6400 + 128 + 1088 + 4608 + 128, // 12352
		PerToken:       6400 + 128 + 1088 + 4608 + 128, // the table is the output projection: read in full
		Embedding:      6400,
		TiedEmbeddings: true,
	}
	if tr != want {
		t.Errorf("TokenTraffic = %+v\nwant           %+v", tr, want)
	}
}

// moe is a one-block MoE model: 8 experts, 2 used per token, plus a shared expert.
func moe(count, used any) ([]KV, []TensorInfo) {
	kv := []KV{{"general.architecture", "qwen3moe"}}
	if count != nil {
		kv = append(kv, KV{"qwen3moe.expert_count", count})
	}
	if used != nil {
		kv = append(kv, KV{"qwen3moe.expert_used_count", used})
	}
	return kv, []TensorInfo{
		{Name: "token_embd.weight", Dims: []uint64{256, 10}, Type: Q4_K},             // 10 × 144 = 1440, a row is 144
		{Name: "blk.0.attn_norm.weight", Dims: []uint64{256}, Type: F32},             // 1024
		{Name: "blk.0.ffn_gate_inp.weight", Dims: []uint64{256, 8}, Type: F32},       // router: 8192, read in full
		{Name: "blk.0.ffn_gate_exps.weight", Dims: []uint64{256, 64, 8}, Type: Q8_0}, // 512 rows × 8 blocks × 34 = 139264
		{Name: "blk.0.ffn_up_exps.weight", Dims: []uint64{256, 64, 8}, Type: Q8_0},   // 139264
		{Name: "blk.0.ffn_down_exps.weight", Dims: []uint64{64, 256, 8}, Type: Q8_0}, // 2048 rows × 2 blocks × 34 = 139264
		{Name: "blk.0.ffn_gate_shexp.weight", Dims: []uint64{256, 64}, Type: F16},    // shared expert: 32768, in full
		{Name: "output_norm.weight", Dims: []uint64{256}, Type: F32},                 // 1024
		{Name: "output.weight", Dims: []uint64{256, 10}, Type: F16},                  // 5120
	}
}

func TestTokenTrafficMoE(t *testing.T) {
	const perExpertTensor = 139264 * 2 / 8 // 34816
	want := Traffic{
		Weights:     1440 + 1024 + 8192 + 3*139264 + 32768 + 1024 + 5120,         // 467360
		PerToken:    144 + 1024 + 8192 + 3*perExpertTensor + 32768 + 1024 + 5120, // 152720
		Embedding:   144,
		Experts:     3 * perExpertTensor, // 104448
		ExpertCount: 8, ExpertUsed: 2,
	}
	if want.Weights != 467360 || want.PerToken != 152720 {
		t.Fatalf("test arithmetic: %+v", want)
	}
	// Any integer type is accepted for the expert counts.
	for _, keys := range [][2]any{{uint32(8), uint32(2)}, {int32(8), int32(2)}, {uint64(8), uint8(2)}} {
		kv, ts := moe(keys[0], keys[1])
		if tr := traffic(t, writeRead(t, kv, ts)); tr != want {
			t.Errorf("%T/%T keys: TokenTraffic = %+v\nwant %+v", keys[0], keys[1], tr, want)
		}
	}
	// All experts used: nothing is saved.
	kv, ts := moe(uint32(8), uint32(8))
	if tr := traffic(t, writeRead(t, kv, ts)); tr.PerToken != 144+1024+8192+3*139264+32768+1024+5120 || tr.Experts != 3*139264 {
		t.Errorf("8 of 8 experts: %+v", tr)
	}
}

// Early MoE conversions store one tensor per expert: blk.N.ffn_gate.E.weight.
func TestTokenTrafficLegacyExperts(t *testing.T) {
	kv := []KV{{"general.architecture", "llama"}, {"llama.expert_count", uint32(4)}, {"llama.expert_used_count", uint32(2)}}
	ts := []TensorInfo{{Name: "token_embd.weight", Dims: []uint64{16, 50}, Type: F32}} // 3200, a row is 64
	for e := 0; e < 4; e++ {
		for _, m := range []string{"gate", "up", "down"} {
			ts = append(ts, TensorInfo{Name: "blk.0.ffn_" + m + "." + string(rune('0'+e)) + ".weight", Dims: []uint64{16, 16}, Type: F32}) // 1024
		}
	}
	tr := traffic(t, writeRead(t, kv, ts))
	want := Traffic{Weights: 3200 + 12*1024, PerToken: 3200 + 6*1024, Embedding: 3200, TiedEmbeddings: true,
		Experts: 6 * 1024, ExpertCount: 4, ExpertUsed: 2}
	if tr != want {
		t.Errorf("TokenTraffic = %+v\nwant           %+v", tr, want)
	}
}

func TestTokenTrafficErrors(t *testing.T) {
	for _, tc := range []struct {
		name        string
		count, used any
		arch        bool
		want        string
	}{
		{"no keys", nil, nil, true, "no integer qwen3moe.expert_count and qwen3moe.expert_used_count"},
		{"no used", uint32(8), nil, true, "no integer"},
		{"string count", "8", uint32(2), true, "no integer"},
		{"used > count", uint32(2), uint32(8), true, "want 1 ≤ used ≤ count"},
		{"used 0", uint32(8), uint32(0), true, "want 1 ≤ used ≤ count"},
		{"count 0", uint32(0), uint32(0), true, "want 1 ≤ used ≤ count"},
		{"negative", int32(8), int32(-1), true, "no integer"},
		{"no architecture", uint32(8), uint32(2), false, "no general.architecture"},
	} {
		kv, ts := moe(tc.count, tc.used)
		if !tc.arch {
			kv = kv[1:]
		}
		_, err := TokenTraffic(writeRead(t, kv, ts))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
		if _, err2 := BytesPerToken(writeRead(t, kv, ts)); err2 == nil {
			t.Errorf("%s: BytesPerToken succeeded", tc.name)
		}
	}
	// A directory built by hand with a tensor of unknown size.
	f := &File{Tensors: []TensorInfo{{Name: "x", Dims: []uint64{4}, Type: TensorType(99)}}}
	if _, err := TokenTraffic(f); err == nil {
		t.Error("unknown tensor type: no error")
	}
	// Expert keys on a dense model are ignored.
	kv := append(append([]KV(nil), denseKV...), KV{"llama.expert_count", uint32(8)})
	if tr := traffic(t, writeRead(t, kv, denseTensors(false))); tr.ExpertCount != 0 || tr.PerToken != 9416 {
		t.Errorf("dense with expert_count: %+v", tr)
	}
}

func TestIsExpertTensor(t *testing.T) {
	for name, want := range map[string]bool{
		"blk.0.ffn_gate_exps.weight":    true,
		"blk.12.ffn_up_exps.weight":     true,
		"blk.3.ffn_down_exps.weight":    true,
		"blk.3.ffn_down_exps.bias":      true,
		"blk.0.ffn_gate_up_exps.weight": true,
		"blk.0.ffn_gate.7.weight":       true,
		"blk.10.ffn_down.15.weight":     true,
		"blk.0.ffn_gate_shexp.weight":   false,
		"blk.0.ffn_gate_inp.weight":     false,
		"blk.0.ffn_gate.weight":         false,
		"blk.0.exp_probs_b.bias":        false,
		"token_embd.weight":             false,
		"output.weight":                 false,
	} {
		if got := IsExpertTensor(name); got != want {
			t.Errorf("IsExpertTensor(%q) = %v", name, got)
		}
	}
}

// A synthetic model: bytes per token is the tensor data less all but one row of
// the embedding table, or all of it when the embeddings are tied.
func TestTokenTrafficSynth(t *testing.T) {
	for _, tied := range []bool{false, true} {
		sh := tinyPreset(t).Shape
		sh.TiedEmbeddings = tied
		s, err := NewSynth(SynthOptions{Shape: sh, Type: Q8_0})
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "m.gguf")
		if _, err := WriteFile(context.Background(), path, s.KV(), s.Tensors(), zeroData); err != nil {
			t.Fatal(err)
		}
		f, err := ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		tr := traffic(t, f)
		var sum int64
		for _, ti := range s.Tensors() {
			n, _ := ti.Size()
			sum += int64(n)
		}
		embd := int64(sh.Vocab) * int64(sh.Dim/32) * 34 // Q8_0
		row := int64(sh.Dim/32) * 34
		want := Traffic{Weights: sum, PerToken: sum - embd + row, Embedding: row}
		if tied {
			want = Traffic{Weights: sum, PerToken: sum, Embedding: embd, TiedEmbeddings: true}
		}
		if tr != want {
			t.Errorf("tied=%v: TokenTraffic = %+v\nwant %+v", tied, tr, want)
		}
		if tr.Weights > f.Size-f.DataOffset {
			t.Errorf("tied=%v: %d bytes of weights in a %d-byte data section", tied, tr.Weights, f.Size-f.DataOffset)
		}
		n, err := BytesPerTokenFile(path)
		if err != nil || n != want.PerToken {
			t.Errorf("tied=%v: BytesPerTokenFile = %d, %v; want %d", tied, n, err, want.PerToken)
		}
	}
}

func TestBytesPerTokenFileErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.gguf")
	if _, err := BytesPerTokenFile(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	// An MoE file without expert keys: the error names the file.
	kv, ts := moe(nil, nil)
	path := filepath.Join(dir, "moe.gguf")
	if _, err := WriteFile(context.Background(), path, kv, ts, zeroData); err != nil {
		t.Fatal(err)
	}
	if _, err := BytesPerTokenFile(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("MoE without keys: %v", err)
	}
}
