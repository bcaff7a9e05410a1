// Package gpu owns everything FuZe knows about the host's NVIDIA GPUs: the
// inventory (read from nvidia-smi's CSV query, never from NVML, so the binary
// stays pure Go), the one label normalisation used by every stack (labels end
// up in Ollama tag names, file names and the gpu_label CSV column), the choice
// of the GPUs behind endpoints A and B, and a table of peak memory bandwidths
// for roofline estimates.
//
// The package runs nvidia-smi through the Runner interface so tests can fake
// it; it never sets environment variables or starts servers itself — callers
// put GPU.CUDAVisibleDevices() into a server's environment.
//
// Fixes against the original scripts: a missing or unnamed GPU never becomes
// "nvidia-unknown" or "nvidia-" (Label returns "" and Select fails), A and B
// are never the same GPU, a single-GPU host gets no endpoint B (instead of B
// with CUDA_VISIBLE_DEVICES=""), and GPUs are pinned by UUID, which is stable
// where CUDA's device numbering is not.
package gpu
