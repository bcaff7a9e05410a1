package triton

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Flavour is the request shape a model's backend understands through the generate
// extension. The extension passes every request key that names a model input as that input
// tensor and every other key as a request parameter, so the keys depend on the backend:
//
//   - vllm: Triton's vLLM backend. Inputs text_input, stream, exclude_input_in_output,
//     sampling_parameters (a JSON string of vLLM SamplingParams: max_tokens, ignore_eos,
//     temperature…), return_num_output_tokens (r24.12+: num_output_tokens per response).
//   - tensorrtllm: the TensorRT-LLM ensemble or tensorrt_llm_bls model. Inputs text_input,
//     max_tokens (required), stream, min_tokens, end_id/pad_id (default: the tokenizer's),
//     temperature, top_k, exclude_input_in_output, return_num_output_tokens (newer
//     ensembles).
//   - llmapi: TensorRT-LLM's LLM-API (PyTorch) model. Inputs text_input, streaming,
//     sampling_param_max_tokens, sampling_param_temperature, sampling_param_top_k,
//     sampling_param_exclude_input_from_output.
//   - generic: any other model with a text_input: stream, max_tokens and temperature are
//     sent and the model takes what it knows.
type Flavour string

// The request flavours.
const (
	FlavourVLLM    Flavour = "vllm"
	FlavourTRTLLM  Flavour = "tensorrtllm"
	FlavourLLMAPI  Flavour = "llmapi"
	FlavourGeneric Flavour = "generic"
)

// ParseFlavour reads the TRITON_BACKEND value: "" or "auto" detects from the model.
func ParseFlavour(s string) (Flavour, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "auto":
		return "", nil
	case "vllm":
		return FlavourVLLM, nil
	case "tensorrtllm", "tensorrt_llm", "trtllm", "tensorrt-llm":
		return FlavourTRTLLM, nil
	case "llmapi", "llm-api", "pytorch":
		return FlavourLLMAPI, nil
	case "generic":
		return FlavourGeneric, nil
	}
	return "", fmt.Errorf("TRITON_BACKEND=%q: want auto, vllm, tensorrtllm, llmapi or generic", s)
}

// modelInfo is what fuze learnt about one model on one server.
type modelInfo struct {
	Flavour    Flavour
	FlavourWhy string          // how the flavour was chosen, for the sample
	Inputs     map[string]bool // input names from the model metadata
	Outputs    map[string]bool
	Required   []string // non-optional config inputs (when the config is known)
	Backend    string   // config "backend" ("" when unknown)
	Platform   string   // metadata/config "platform" (e.g. "ensemble")
	// From the model configuration extension; ConfigKnown is false when it was unavailable.
	ConfigKnown  bool
	Decoupled    bool
	MaxBatchSize int
}

// detectFlavour chooses the request flavour from the model's input names (the model
// metadata of the core protocol, which every server answers), then from its backend name.
func detectFlavour(inputs map[string]bool, backend string) (Flavour, string) {
	switch {
	case inputs["sampling_parameters"]:
		return FlavourVLLM, "detected: the model metadata lists the input sampling_parameters (Triton vLLM backend)"
	case inputs["sampling_param_max_tokens"]:
		return FlavourLLMAPI, "detected: the model metadata lists the input sampling_param_max_tokens (TensorRT-LLM LLM API model)"
	case inputs["max_tokens"]:
		return FlavourTRTLLM, "detected: the model metadata lists the input max_tokens (TensorRT-LLM ensemble/BLS)"
	case backend == "vllm":
		return FlavourVLLM, "detected: the model config names backend vllm"
	case backend == "tensorrtllm":
		return FlavourTRTLLM, "detected: the model config names backend tensorrtllm"
	}
	return FlavourGeneric, "detected: no known LLM backend input (sampling_parameters, max_tokens, sampling_param_max_tokens); sending stream, max_tokens and temperature as parameters"
}

// params are the generate request's "parameters" for one request of maxTokens tokens. Keys
// that name a model input become input tensors; the rest become request parameters.
func (mi *modelInfo) params(maxTokens int, temperature float64, stream bool) map[string]any {
	p := map[string]any{}
	set := func(name string, v any) {
		if mi.Inputs[name] {
			p[name] = v
		}
	}
	switch mi.Flavour {
	case FlavourVLLM:
		sp := map[string]any{"max_tokens": maxTokens, "ignore_eos": true, "temperature": temperature}
		b, _ := json.Marshal(sp)
		p["sampling_parameters"] = string(b)
		p["stream"] = stream
		// Streaming requires it; without it the prompt would be counted as output.
		p["exclude_input_in_output"] = true
		set("return_num_output_tokens", true)
	case FlavourTRTLLM:
		p["max_tokens"] = maxTokens
		p["stream"] = stream
		set("min_tokens", maxTokens) // a fixed output length, as ignore_eos does elsewhere
		set("exclude_input_in_output", true)
		set("return_num_output_tokens", true)
		if temperature > 0 {
			set("temperature", temperature)
		} else {
			set("top_k", 1) // greedy; TensorRT-LLM takes temperature only as a sampling setting
		}
	case FlavourLLMAPI:
		p["sampling_param_max_tokens"] = maxTokens
		p["streaming"] = stream
		set("sampling_param_exclude_input_from_output", true)
		if temperature > 0 {
			set("sampling_param_temperature", temperature)
		} else {
			set("sampling_param_top_k", 1)
		}
	default:
		p["stream"] = stream
		p["max_tokens"] = maxTokens
		p["temperature"] = temperature
	}
	return p
}

// generateBody is the generate extension request object.
func (mi *modelInfo) generateBody(prompt string, maxTokens int, temperature float64, stream bool) map[string]any {
	return map[string]any{"text_input": prompt, "parameters": mi.params(maxTokens, temperature, stream)}
}

// perfInputs are the input tensors of a non-streaming request, for perf_analyzer's
// --input-data (perf_analyzer sends model inputs only, no request parameters over HTTP).
// missing lists required model inputs fuze does not know how to fill.
func (mi *modelInfo) perfInputs(prompt string, maxTokens int, temperature float64) (inputs map[string]any, missing []string) {
	inputs = map[string]any{"text_input": prompt}
	for k, v := range mi.params(maxTokens, temperature, false) {
		if mi.Inputs[k] {
			inputs[k] = v
		}
	}
	for _, r := range mi.Required {
		if _, ok := inputs[r]; !ok {
			missing = append(missing, r)
		}
	}
	sort.Strings(missing)
	return inputs, missing
}
