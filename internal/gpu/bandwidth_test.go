package gpu

import "testing"

func TestPeakBandwidth(t *testing.T) {
	tests := []struct {
		name string
		want float64
		ok   bool
	}{
		{"NVIDIA H100 80GB HBM3", 3.35e12, true},
		{"NVIDIA H100 PCIe", 2.0e12, true},
		{"NVIDIA H100 NVL", 3.9e12, true},
		{"NVIDIA H200", 4.8e12, true},
		{"NVIDIA A100-SXM4-80GB", 2.039e12, true},
		{"NVIDIA A100-SXM4-40GB", 1.555e12, true},
		{"NVIDIA GeForce RTX 5090", 1.792e12, true},
		{"NVIDIA GeForce RTX 3090 Ti", 1.008e12, true},
		{"NVIDIA GeForce RTX 3090", 936e9, true},
		{"NVIDIA GeForce RTX 5060 Ti", 448e9, true},
		{"NVIDIA RTX 6000 Ada Generation", 960e9, true},
		{"Tesla T4", 320e9, true},
		{"NVIDIA B200", 8e12, true},
		{"nvidia-l40s", 864e9, true}, // a label works too
		{"NVIDIA GeForce RTX 4090 Laptop GPU", 0, false},
		{"NVIDIA GeForce RTX 4070 SUPER", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		got, ok := PeakBandwidth(tt.name)
		if got != tt.want || ok != tt.ok {
			t.Errorf("PeakBandwidth(%q) = %g, %v; want %g, %v", tt.name, got, ok, tt.want, tt.ok)
		}
	}
	for label := range bandwidth {
		if Label(label) != label {
			t.Errorf("bandwidth key %q is not a label (Label gives %q)", label, Label(label))
		}
	}
}
