package gpu

import "strings"

// CPULabel is the label of an endpoint that runs on no GPU.
const CPULabel = "cpu"

// Words dropped from GPU names when building a label.
var dropWords = map[string]bool{
	// Brand and product-line words: they carry no information that the model
	// number does not.
	"nvidia": true, "geforce": true, "rtx": true, "gtx": true,
	"tesla": true, "quadro": true,
	// Filler.
	"gpu": true, "generation": true,
	// SXM is the reference form factor of datacenter parts (nvidia-smi even
	// omits it for the H100 SXM: "NVIDIA H100 80GB HBM3"), so it is dropped;
	// PCIe and NVL are kept because they are different products with
	// different bandwidth and power.
	"sxm": true, "sxm2": true, "sxm3": true, "sxm4": true, "sxm5": true, "sxm6": true,
}

// Words glued to the word before them: "3090 Ti" is one model, "3090ti".
var suffixWords = map[string]bool{"ti": true, "super": true, "ada": true}

// Label returns the normalised label of an nvidia-smi GPU name, for use in
// CSV rows, Ollama tag names and file names. The rule, applied to every stack:
//
//  1. lowercase the name and split it into words at every character outside
//     [a-z0-9] (spaces, '-', '_', ...);
//  2. drop brand words (nvidia, geforce, rtx, gtx, tesla, quadro), filler
//     (gpu, generation), memory-type words (hbm*, gddr*) and the SXM form
//     factor (sxm, sxm2…sxm6); keep everything else, including pcie and nvl;
//  3. glue the model suffixes ti, super and ada to the word before them;
//  4. join the remaining words with '-' and prefix "nvidia-".
//
// Examples: "NVIDIA GeForce RTX 3090 Ti" → "nvidia-3090ti",
// "NVIDIA H100 80GB HBM3" → "nvidia-h100-80gb", "NVIDIA A100-SXM4-80GB" →
// "nvidia-a100-80gb", "NVIDIA H100 PCIe" → "nvidia-h100-pcie",
// "NVIDIA RTX 6000 Ada Generation" → "nvidia-6000ada", "Tesla T4" →
// "nvidia-t4".
//
// The result matches ^nvidia(-[a-z0-9]+)+$, so it is safe in tag and file
// names, and Label(Label(x)) == Label(x). When nothing is left after step 2
// (an empty or "[N/A]" name, or just "NVIDIA") Label returns "": callers must
// treat that as an error, never invent "nvidia-unknown".
// nvidia-smi placeholders such as "[N/A]" count as empty names.
func Label(name string) string {
	words := strings.FieldsFunc(strings.ToLower(value(name)), func(r rune) bool {
		return (r < 'a' || r > 'z') && (r < '0' || r > '9')
	})
	var kept []string
	for _, w := range words {
		switch {
		case dropWords[w], strings.HasPrefix(w, "hbm"), strings.HasPrefix(w, "gddr"):
			continue
		case suffixWords[w] && len(kept) > 0:
			kept[len(kept)-1] += w
		default:
			kept = append(kept, w)
		}
	}
	if len(kept) == 0 {
		return ""
	}
	return "nvidia-" + strings.Join(kept, "-")
}
