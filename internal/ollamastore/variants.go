package ollamastore

import (
	"bufio"
	"fmt"
	"github.com/fuze-ai/fuze/internal/naming"
	"os"
	"regexp"
	"sort"
	"strings"
)

// VariantFilter selects baked variants for removal. Only names naming.IsVariant accepts
// (<alias>-<gpu label>-ng<N>[:tag]) are ever candidates: the filters narrow that set.
type VariantFilter struct {
	Match *regexp.Regexp // candidates must match (nil: every variant)
	Keep  *regexp.Regexp // names matching are kept (nil: none)
	// Created restricts candidates to these names (Canonical form, see ReadCreated);
	// nil: no restriction, empty: nothing.
	Created map[string]bool
}

// Variants returns the names (as given, sorted, without duplicates) that the filter selects.
func Variants(names []string, f VariantFilter) []string {
	seen := map[string]bool{}
	var out []string
	for _, n := range names {
		switch {
		case seen[n], !naming.IsVariant(n):
			continue
		case f.Match != nil && !f.Match.MatchString(n):
			continue
		case f.Keep != nil && f.Keep.MatchString(n):
			continue
		case f.Created != nil && !f.Created[ParseName(n).Canonical()]:
			continue
		}
		seen[n] = true
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// ReadCreated reads created-variant lists (the benchmark's ollama_created_<TS>.txt): one
// model name per line, ":latest" optional, blank lines and # comments ignored. Several files
// are merged. The names come back in Canonical form.
func ReadCreated(paths ...string) (map[string]bool, error) {
	out := map[string]bool{}
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("created list: %w", err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			out[ParseName(line).Canonical()] = true
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("created list %s: %w", p, err)
		}
	}
	return out, nil
}
