package triton

import (
	"fmt"
	"strings"
)

// Model is one TRITON_MODELS entry: the name Triton serves it under and the alias written to
// the CSV's base_model column.
type Model struct {
	Name  string // Triton model name (URL path segment, CSV model_tag)
	Alias string // CSV base_model
}

// ParseModels parses TRITON_MODELS entries, each "name|alias" (the alias defaults to the
// name when the entry has no "|"). The knob is a list, so entries are already split on
// whitespace and commas; names must be usable as one URL path segment.
func ParseModels(entries []string) ([]Model, error) {
	var out []Model
	seen := map[string]bool{}
	aliasOf := map[string]string{} // alias → name
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		name, alias, hasAlias := strings.Cut(e, "|")
		name, alias = strings.TrimSpace(name), strings.TrimSpace(alias)
		switch {
		case name == "":
			return nil, fmt.Errorf("TRITON_MODELS entry %q: empty model name (want name|alias)", e)
		case strings.Contains(alias, "|"):
			return nil, fmt.Errorf("TRITON_MODELS entry %q: more than one '|' (want name|alias)", e)
		case strings.ContainsAny(name, "/?#%"):
			return nil, fmt.Errorf("TRITON_MODELS entry %q: %q is not a Triton model name", e, name)
		case hasAlias && alias == "":
			return nil, fmt.Errorf("TRITON_MODELS entry %q: empty alias after '|'", e)
		}
		if !hasAlias {
			alias = name
		}
		if seen[name] {
			continue
		}
		if other, dup := aliasOf[alias]; dup {
			return nil, fmt.Errorf("TRITON_MODELS: alias %q is given to both %q and %q", alias, other, name)
		}
		seen[name] = true
		aliasOf[alias] = name
		out = append(out, Model{Name: name, Alias: alias})
	}
	return out, nil
}
