package gpu

import (
	"slices"
	"strings"
	"testing"
)

func TestSelect(t *testing.T) {
	defaults := SelectOptions{MatchA: DefaultMatchA, MatchB: DefaultMatchB}
	g := func(index int, name, uuid string) GPU {
		return GPU{Index: index, Name: name, UUID: uuid, Label: Label(name)}
	}
	two5090s := []GPU{
		g(0, "NVIDIA GeForce RTX 5090", "GPU-aaaa0000"),
		g(1, "NVIDIA GeForce RTX 5090", "GPU-bbbb1111"),
		g(2, "NVIDIA GeForce RTX 3090 Ti", "GPU-cccc2222"),
	}
	const none = -1
	tests := []struct {
		name     string
		gpus     []GPU
		opts     SelectOptions
		a, b     int      // expected indexes, none for nil
		warnings []string // exact
		err      string   // substring; "" = no error
	}{
		{name: "author's box, defaults", gpus: box, opts: defaults, a: 1, b: 0},
		{name: "no GPU", opts: defaults, a: none, b: none},
		{name: "no GPU, no options", a: none, b: none},
		{name: "single GPU, no options", gpus: []GPU{gpu5090}, a: 0, b: none},
		{name: "single GPU, defaults", gpus: []GPU{gpu5090}, opts: defaults, a: 0, b: none,
			warnings: []string{`MATCH_GPU_B="3090 Ti" matched no GPU; no other GPU is left, so endpoint B is disabled`}},
		{name: "H100 x2, defaults fall back to index order", gpus: h100x2, opts: defaults, a: 0, b: 1,
			warnings: []string{
				`MATCH_GPU_A="5090" matched no GPU; using GPU 0 (NVIDIA H100 80GB HBM3)`,
				`MATCH_GPU_B="3090 Ti" matched no GPU; using GPU 1 (NVIDIA H100 80GB HBM3)`,
			}},
		{name: "H100 x2, no options", gpus: h100x2, a: 0, b: 1},
		{name: "matches are case-insensitive", gpus: box, opts: SelectOptions{MatchA: "rtx 5090", MatchB: "3090 TI"}, a: 1, b: 0},
		{name: "input order does not matter", gpus: []GPU{h100x2[1], h100x2[0]}, a: 0, b: 1},
		{name: "both match the same GPU: B takes the next unused one", gpus: box,
			opts: SelectOptions{MatchA: "5090", MatchB: "5090"}, a: 1, b: 0,
			warnings: []string{`MATCH_GPU_B="5090" matched only GPU 1 (NVIDIA GeForce RTX 5090), already used by the other endpoint; using GPU 0 (NVIDIA GeForce RTX 3090 Ti)`}},
		{name: "both match the same GPU, single GPU: no B", gpus: []GPU{gpu5090},
			opts: SelectOptions{MatchA: "5090", MatchB: "5090"}, a: 0, b: none,
			warnings: []string{`MATCH_GPU_B="5090" matched only GPU 0 (NVIDIA GeForce RTX 5090), already used by the other endpoint; no other GPU is left, so endpoint B is disabled`}},
		{name: "both match two identical GPUs: no warning", gpus: two5090s,
			opts: SelectOptions{MatchA: "5090", MatchB: "5090"}, a: 0, b: 1},
		{name: "B matches, A falls back to the first GPU which is B's match", gpus: box,
			opts: SelectOptions{MatchA: "H100", MatchB: "3090"}, a: 0, b: 1, // the 3090 Ti is taken by A
			warnings: []string{
				`MATCH_GPU_A="H100" matched no GPU; using GPU 0 (NVIDIA GeForce RTX 3090 Ti)`,
				`MATCH_GPU_B="3090" matched only GPU 0 (NVIDIA GeForce RTX 3090 Ti), already used by the other endpoint; using GPU 1 (NVIDIA GeForce RTX 5090)`,
			}},
		{name: "UUID_A wins over MATCH_GPU_A", gpus: two5090s,
			opts: SelectOptions{MatchA: "5090", MatchB: "3090 Ti", UUIDA: "GPU-bbbb1111"}, a: 1, b: 2},
		{name: "UUID prefix, case-insensitive", gpus: two5090s,
			opts: SelectOptions{UUIDA: "gpu-CCCC", UUIDB: "GPU-aa"}, a: 2, b: 0},
		{name: "UUID_B pinned: A's name match skips it", gpus: box,
			opts: SelectOptions{MatchA: "5090", UUIDB: box[1].UUID[:12]}, a: 0, b: 1,
			warnings: []string{`MATCH_GPU_A="5090" matched only GPU 1 (NVIDIA GeForce RTX 5090), already used by the other endpoint; using GPU 0 (NVIDIA GeForce RTX 3090 Ti)`}},
		{name: "UUID_A pinned, B falls back", gpus: h100x2,
			opts: SelectOptions{MatchB: "3090 Ti", UUIDA: h100x2[1].UUID}, a: 1, b: 0,
			warnings: []string{`MATCH_GPU_B="3090 Ti" matched no GPU; using GPU 0 (NVIDIA H100 80GB HBM3)`}},
		{name: "unknown UUID_A", gpus: box, opts: SelectOptions{UUIDA: "GPU-ffff"},
			err: `UUID_A="GPU-ffff" matches no GPU (have GPU-3a9d0b6c-1f2e-4d5c-8b7a-6e5f4d3c2b1a GPU 0 (NVIDIA GeForce RTX 3090 Ti), GPU-7c2a9f4e`},
		{name: "unknown UUID_B", gpus: box, opts: SelectOptions{UUIDB: "GPU-ffff"}, err: `UUID_B="GPU-ffff" matches no GPU`},
		{name: "UUID without GPUs", opts: SelectOptions{UUIDA: "GPU-1"}, err: `UUID_A="GPU-1" matches no GPU (no GPUs found)`},
		{name: "ambiguous UUID prefix", gpus: box, opts: SelectOptions{UUIDA: "GPU-"}, err: `UUID_A="GPU-" is ambiguous`},
		{name: "UUID_A and UUID_B on one GPU", gpus: box, opts: SelectOptions{UUIDA: "GPU-3a9d", UUIDB: "GPU-3a9d0b6c"},
			err: `are the same GPU 0 (NVIDIA GeForce RTX 3090 Ti)`},
		{name: "UUID_B pins the only GPU", gpus: []GPU{gpu5090}, opts: SelectOptions{UUIDB: gpu5090.UUID},
			err: `UUID_B="GPU-7c2a9f4e-3b1d-4a8e-9f0c-5d6e7f8a9b0c" pins the only GPU`},
		{name: "selected GPU without a name", gpus: []GPU{{Index: 0, UUID: "GPU-x"}}, err: `GPU 0 (): name "" gives no GPU label`},
		{name: "selected GPU without a UUID", gpus: []GPU{{Index: 0, Name: "NVIDIA L4"}}, err: `GPU 0 (NVIDIA L4): nvidia-smi reported no UUID`},
		{name: "unselected GPU without a name is fine", gpus: append(slices.Clone(box), GPU{Index: 2, UUID: "GPU-x"}), opts: defaults, a: 1, b: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := slices.Clone(tt.gpus)
			sel, warnings, err := Select(tt.gpus, tt.opts)
			if !slices.Equal(in, tt.gpus) {
				t.Errorf("Select modified its input")
			}
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Select error = %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Select: %v", err)
			}
			if got := indexOf(sel.A); got != tt.a {
				t.Errorf("A = GPU %d, want %d", got, tt.a)
			}
			if got := indexOf(sel.B); got != tt.b {
				t.Errorf("B = GPU %d, want %d", got, tt.b)
			}
			if sel.A != nil && sel.A == sel.B || sel.A != nil && sel.B != nil && sel.A.UUID == sel.B.UUID {
				t.Errorf("A and B are the same GPU")
			}
			for _, g := range []*GPU{sel.A, sel.B} {
				if g != nil && (g.Label == "" || g.CUDAVisibleDevices() == "") {
					t.Errorf("selected %v has label %q, CUDA_VISIBLE_DEVICES %q", g, g.Label, g.CUDAVisibleDevices())
				}
			}
			if !slices.Equal(warnings, tt.warnings) {
				t.Errorf("warnings:\n%q\nwant\n%q", warnings, tt.warnings)
			}
		})
	}
}

func indexOf(g *GPU) int {
	if g == nil {
		return -1
	}
	return g.Index
}

func TestSelectFillsLabel(t *testing.T) {
	sel, _, err := Select([]GPU{{Index: 3, Name: "NVIDIA H200", UUID: "GPU-x"}}, SelectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sel.A.Label != "nvidia-h200" {
		t.Errorf("A.Label = %q, want nvidia-h200", sel.A.Label)
	}
}

func TestOptionsFromEnv(t *testing.T) {
	env := map[string]string{"MATCH_GPU_B": "H100", "UUID_A": "GPU-12"}
	got := OptionsFromEnv(func(k string) string { return env[k] })
	want := SelectOptions{MatchA: "5090", MatchB: "H100", UUIDA: "GPU-12"}
	if got != want {
		t.Errorf("OptionsFromEnv = %+v, want %+v", got, want)
	}
}
