package vllm

import (
	"fmt"
	"io"
	"path"
	"strings"
)

// Model is one entry of the model list: the tag it is known by, its alias, and the Hugging
// Face model (id or local directory) vLLM actually serves for it.
type Model struct {
	Tag    string
	Alias  string
	HF     string
	Source string // where HF comes from, for the printed mapping
	// Mismatch is set for the built-in entries served with the original's defaults, whose
	// Hugging Face model is not the model the tag names.
	Mismatch bool
}

// BuiltinModels are the original's entries (tag|alias|default Hugging Face model). The
// defaults are what the original served, which are not the models the tags name: they are
// kept for compatibility, but printed as such, and the CSV names the served model.
var BuiltinModels = []Model{
	{Tag: "llama4:16x17b", Alias: "llama4-16x17b", HF: "meta-llama/Llama-3.1-8B-Instruct", Mismatch: true},
	{Tag: "deepseek-r1:70b", Alias: "deepseek-r1-70b", HF: "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B", Mismatch: true},
	{Tag: "llama4:128x17b", Alias: "llama4-128x17b", HF: "meta-llama/Llama-3.1-70B-Instruct", Mismatch: true},
}

// OverrideVar is the variable overriding the Hugging Face model of alias: VLLM_MODEL_ and
// the alias with every character other than a letter or digit as "_".
func OverrideVar(alias string) string {
	var b strings.Builder
	b.WriteString("VLLM_MODEL_")
	for _, r := range alias {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// Lookup reads a variable: its value and where it was set, ok false when it is not set.
type Lookup func(name string) (value, source string, ok bool)

// ResolveModels builds the model list from MODELS entries ("tag|alias|hf_model", or a bare
// Hugging Face id, which is then its own tag and whose last path element is the alias), or
// from BuiltinModels when there are none; VLLM_MODEL_<alias> overrides the Hugging Face
// model of any entry. Errors name MODELS and the entry.
func ResolveModels(entries []string, lookup Lookup) ([]Model, error) {
	var models []Model
	if len(entries) == 0 {
		for _, m := range BuiltinModels {
			m.Source = "built-in default"
			models = append(models, m)
		}
	}
	for _, e := range entries {
		parts := strings.Split(e, "|")
		var m Model
		switch len(parts) {
		case 1:
			m = Model{Tag: e, Alias: path.Base(e), HF: e}
		case 3:
			m = Model{Tag: strings.TrimSpace(parts[0]), Alias: strings.TrimSpace(parts[1]), HF: strings.TrimSpace(parts[2])}
		default:
			return nil, fmt.Errorf("MODELS entry %q: want tag|alias|hf_model (or a Hugging Face model id alone)", e)
		}
		if m.Tag == "" || m.Alias == "" || m.HF == "" {
			return nil, fmt.Errorf("MODELS entry %q: want tag|alias|hf_model with none of them empty", e)
		}
		m.Source = "MODELS"
		models = append(models, m)
	}
	for i := range models {
		name := OverrideVar(models[i].Alias)
		if v, src, ok := lookup(name); ok && strings.TrimSpace(v) != "" {
			models[i].HF = strings.TrimSpace(v)
			models[i].Source = name + " (from " + src + ")"
			models[i].Mismatch = false
		}
	}
	return models, nil
}

// PrintModels writes the alias → served model mapping: what each row's base_model will be.
func PrintModels(w io.Writer, models []Model) {
	fmt.Fprintln(w, "vLLM models (tag | alias -> served model = CSV base_model and model_tag):")
	for _, m := range models {
		fmt.Fprintf(w, "  %s | %s -> %s  [%s]\n", m.Tag, m.Alias, m.HF, m.Source)
		if m.Mismatch {
			fmt.Fprintf(w, "  ! %s is not the model %s names (the original's default); set %s or MODELS to serve another\n", m.HF, m.Tag, OverrideVar(m.Alias))
		}
	}
}
