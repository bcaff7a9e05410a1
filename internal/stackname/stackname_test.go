package stackname

import "testing"

func TestLookupEverySpelling(t *testing.T) {
	for _, s := range All() {
		for _, spelling := range append([]string{s.Name, s.FilePrefix, s.KnobScope, " " + s.Name + " "}, s.Aliases...) {
			got, ok := Lookup(spelling)
			if !ok || got.Name != s.Name {
				t.Errorf("Lookup(%q) = %q, %v; want %q", spelling, got.Name, ok, s.Name)
			}
		}
	}
	if _, ok := Lookup("sglang"); ok {
		t.Error("an unknown stack was found")
	}
}

// No two stacks share a spelling: a lookup could not tell them apart.
func TestSpellingsAreUnique(t *testing.T) {
	seen := map[string]string{}
	for _, s := range All() {
		for _, spelling := range append([]string{s.Name, s.FilePrefix, s.KnobScope}, s.Aliases...) {
			k := lower(spelling)
			if other, ok := seen[k]; ok && other != s.Name {
				t.Errorf("%q names both %s and %s", spelling, other, s.Name)
			}
			seen[k] = s.Name
		}
	}
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func TestOrderAndList(t *testing.T) {
	if got := List(); got != "ollama, llama.cpp, vLLM, Triton" {
		t.Fatalf("List() = %q", got)
	}
}
