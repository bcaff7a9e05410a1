package gpu

import (
	"regexp"
	"testing"
)

func TestLabel(t *testing.T) {
	tests := []struct{ name, want string }{
		{"NVIDIA GeForce RTX 5090", "nvidia-5090"},
		{"NVIDIA GeForce RTX 3090 Ti", "nvidia-3090ti"},
		{"NVIDIA GeForce RTX 3090", "nvidia-3090"},
		{"NVIDIA GeForce RTX 5060 Ti", "nvidia-5060ti"},
		{"NVIDIA GeForce RTX 4070 SUPER", "nvidia-4070super"},
		{"NVIDIA GeForce RTX 4090", "nvidia-4090"},
		{"NVIDIA GeForce RTX 4090 Laptop GPU", "nvidia-4090-laptop"},
		{"NVIDIA GeForce GTX 1080 Ti", "nvidia-1080ti"},
		{"NVIDIA H100 80GB HBM3", "nvidia-h100-80gb"},
		{"NVIDIA H100 PCIe", "nvidia-h100-pcie"},
		{"NVIDIA H100 NVL", "nvidia-h100-nvl"},
		{"NVIDIA H200", "nvidia-h200"},
		{"NVIDIA H200 NVL", "nvidia-h200-nvl"},
		{"NVIDIA B200", "nvidia-b200"},
		{"NVIDIA GH200 480GB", "nvidia-gh200-480gb"},
		{"NVIDIA A100-SXM4-80GB", "nvidia-a100-80gb"},
		{"NVIDIA A100-SXM4-40GB", "nvidia-a100-40gb"},
		{"NVIDIA A100-PCIE-40GB", "nvidia-a100-pcie-40gb"},
		{"NVIDIA A100 80GB PCIe", "nvidia-a100-80gb-pcie"},
		{"Tesla V100-SXM2-16GB", "nvidia-v100-16gb"},
		{"NVIDIA L40S", "nvidia-l40s"},
		{"NVIDIA L4", "nvidia-l4"},
		{"NVIDIA A10", "nvidia-a10"},
		{"NVIDIA A10G", "nvidia-a10g"},
		{"Tesla T4", "nvidia-t4"},
		{"NVIDIA RTX A6000", "nvidia-a6000"},
		{"NVIDIA RTX 6000 Ada Generation", "nvidia-6000ada"},
		{"Quadro RTX 8000", "nvidia-8000"},
		{"NVIDIA TITAN RTX", "nvidia-titan"},
		{"NVIDIA RTX PRO 6000 Blackwell Workstation Edition", "nvidia-pro-6000-blackwell-workstation-edition"},
		{"  nvidia   GEFORCE rtx 5090  ", "nvidia-5090"},
		{"NVIDIA GeForce RTX 5090 (TM) ™", "nvidia-5090-tm"},
		{"NVIDIA GeForce RTX 3090 Ti, rev. 2", "nvidia-3090ti-rev-2"},
		// Labels are names too, and normalise to themselves.
		{"nvidia-3090ti", "nvidia-3090ti"},
		{"nvidia-h100-80gb", "nvidia-h100-80gb"},
		// Nothing usable: "" for the caller to reject, never "nvidia-unknown" or "nvidia-".
		{"", ""},
		{"   ", ""},
		{"[N/A]", ""},
		{"[Not Supported]", ""},
		{"NVIDIA", ""},
		{"NVIDIA GeForce RTX", ""},
	}
	for _, tt := range tests {
		if got := Label(tt.name); got != tt.want {
			t.Errorf("Label(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
}

var labelRE = regexp.MustCompile(`^nvidia(-[a-z0-9]+)+$`)

func FuzzLabel(f *testing.F) {
	for _, s := range []string{"NVIDIA GeForce RTX 3090 Ti", "NVIDIA A100-SXM4-80GB", "ti", "NVIDIA --", "[N/A]", "Ü 5090"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		l := Label(name)
		if l == "" {
			return
		}
		if !labelRE.MatchString(l) {
			t.Fatalf("Label(%q) = %q, not of the form %s", name, l, labelRE)
		}
		if again := Label(l); again != l {
			t.Fatalf("Label(Label(%q)) = %q, want %q", name, again, l)
		}
	})
}
