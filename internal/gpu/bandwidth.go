package gpu

// bandwidth is the peak memory bandwidth in bytes/s of known GPUs, from the
// vendor data sheets, keyed by Label of the name nvidia-smi reports. The keys
// are exact labels, not prefixes: a laptop 4090 ("nvidia-4090-laptop") or a
// PCIe A100 must not silently get the desktop or SXM figure.
var bandwidth = map[string]float64{
	"nvidia-b200":           8e12,
	"nvidia-h200":           4.8e12,   // "NVIDIA H200" (SXM)
	"nvidia-h200-nvl":       4.8e12,   // "NVIDIA H200 NVL"
	"nvidia-h100-nvl":       3.9e12,   // "NVIDIA H100 NVL"
	"nvidia-h100-80gb":      3.35e12,  // "NVIDIA H100 80GB HBM3" (SXM5)
	"nvidia-h100-pcie":      2.0e12,   // "NVIDIA H100 PCIe"
	"nvidia-a100-80gb":      2.039e12, // "NVIDIA A100-SXM4-80GB"
	"nvidia-a100-80gb-pcie": 1.935e12, // "NVIDIA A100 80GB PCIe"
	"nvidia-a100-40gb":      1.555e12, // "NVIDIA A100-SXM4-40GB"
	"nvidia-a100-pcie-40gb": 1.555e12, // "NVIDIA A100-PCIE-40GB"
	"nvidia-l40s":           864e9,    // "NVIDIA L40S"
	"nvidia-l4":             300e9,    // "NVIDIA L4"
	"nvidia-a10":            600e9,    // "NVIDIA A10"
	"nvidia-t4":             320e9,    // "Tesla T4"
	"nvidia-6000ada":        960e9,    // "NVIDIA RTX 6000 Ada Generation"
	"nvidia-5090":           1.792e12, // "NVIDIA GeForce RTX 5090"
	"nvidia-5060ti":         448e9,    // "NVIDIA GeForce RTX 5060 Ti" (16 GB and 8 GB alike)
	"nvidia-4090":           1.008e12, // "NVIDIA GeForce RTX 4090"
	"nvidia-3090ti":         1.008e12, // "NVIDIA GeForce RTX 3090 Ti"
	"nvidia-3090":           936e9,    // "NVIDIA GeForce RTX 3090"
}

// PeakBandwidth returns the peak memory bandwidth in bytes/s of the GPU with
// this nvidia-smi name (or label: labels normalise to themselves), for a
// roofline estimate. ok is false for GPUs not in the table.
func PeakBandwidth(name string) (bytesPerSec float64, ok bool) {
	bw, ok := bandwidth[Label(name)]
	return bw, ok
}
