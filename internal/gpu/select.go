package gpu

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Defaults of the MATCH_GPU_A and MATCH_GPU_B knobs (the original author's
// RTX 5090 + RTX 3090 Ti box). On other hosts they match nothing and Select
// falls back to index order, with a warning.
const (
	DefaultMatchA = "5090"
	DefaultMatchB = "3090 Ti"
)

// SelectOptions say which GPUs should serve endpoints A and B.
type SelectOptions struct {
	MatchA, MatchB string // case-insensitive substrings of the GPU name; "" = no preference
	UUIDA, UUIDB   string // UUIDs or UUID prefixes ("GPU-1234"); they win over MatchA/MatchB
}

// OptionsFromEnv reads MATCH_GPU_A, MATCH_GPU_B, UUID_A and UUID_B through
// getenv (os.Getenv, or a fake), applying the defaults to unset or empty
// MATCH_GPU_* variables.
func OptionsFromEnv(getenv func(string) string) SelectOptions {
	return SelectOptions{
		MatchA: cmp.Or(getenv("MATCH_GPU_A"), DefaultMatchA),
		MatchB: cmp.Or(getenv("MATCH_GPU_B"), DefaultMatchB),
		UUIDA:  getenv("UUID_A"),
		UUIDB:  getenv("UUID_B"),
	}
}

// Selection is the GPU of each endpoint. B is nil on a single-GPU host; both
// are nil on a host without GPUs, where the caller runs endpoint A on the CPU
// with label CPULabel. A and B are never the same GPU, and B != nil implies
// A != nil.
type Selection struct {
	A, B *GPU
	// Split asks drivers for a third endpoint, "A+B", whose server spreads a model over both
	// GPUs (SPLIT_ENDPOINTS); it has no effect without B.
	Split bool
	// ReserveMiB is memory per GPU that servers are told not to use (RESERVE_GPU_MEMORY_MIB),
	// so that a model that fits one big GPU does not, as on the smaller cards it is meant for.
	ReserveMiB int
	// Only names the endpoints to measure by suffix (ENDPOINTS: "A", "B", "A+B"; empty: all),
	// so that drivers start no server for an endpoint that is not measured.
	Only []string
}

// Wants reports whether the endpoint with this suffix is to be measured.
func (s Selection) Wants(suffix string) bool {
	return len(s.Only) == 0 || slices.ContainsFunc(s.Only, func(o string) bool { return strings.EqualFold(o, suffix) })
}

// Select picks the GPUs of endpoints A and B:
//
//   - UUIDA / UUIDB pin an endpoint to the GPU whose UUID starts with the
//     value (case-insensitive). A value that matches no GPU, or several, or
//     both endpoints pinned to one GPU, is an error.
//   - Otherwise the endpoint takes the first GPU, in index order, whose name
//     contains MatchA / MatchB (case-insensitive) and that the other endpoint
//     does not use.
//   - An endpoint whose match finds no unused GPU (none matches, or only the
//     GPU of the other endpoint does) takes the first unused GPU in index
//     order, with a warning. When no unused GPU is left, B is nil (with a
//     warning if MatchB asked for one); A is resolved before B.
//
// Warnings are returned for the caller to print. Every selected GPU has a
// Label and a UUID; a GPU without them is an error, never "nvidia-unknown"
// or an empty CUDA_VISIBLE_DEVICES.
func Select(gpus []GPU, opts SelectOptions) (Selection, []string, error) {
	gpus = slices.Clone(gpus)
	slices.SortStableFunc(gpus, func(a, b GPU) int { return cmp.Compare(a.Index, b.Index) })

	var sel Selection
	var warnings []string
	var err error
	if sel.A, err = byUUID(gpus, "UUID_A", opts.UUIDA); err != nil {
		return Selection{}, nil, err
	}
	if sel.B, err = byUUID(gpus, "UUID_B", opts.UUIDB); err != nil {
		return Selection{}, nil, err
	}
	if sel.A != nil && sel.A == sel.B {
		return Selection{}, nil, fmt.Errorf("UUID_A=%q and UUID_B=%q are the same %s; A and B need different GPUs",
			opts.UUIDA, opts.UUIDB, sel.A)
	}

	if sel.A == nil && len(gpus) > 0 {
		var w string
		sel.A, w = byName(gpus, "MATCH_GPU_A", opts.MatchA, sel.B)
		if sel.A == nil {
			// Only possible when UUID_B pinned the one and only GPU.
			return Selection{}, nil, fmt.Errorf("UUID_B=%q pins the only GPU, %s; endpoint A needs a GPU first (set UUID_A instead)",
				opts.UUIDB, sel.B)
		}
		warnings = appendNonEmpty(warnings, w)
	}
	if sel.B == nil && len(gpus) > 0 {
		var w string
		sel.B, w = byName(gpus, "MATCH_GPU_B", opts.MatchB, sel.A)
		warnings = appendNonEmpty(warnings, w)
	}

	for _, g := range []*GPU{sel.A, sel.B} {
		if g == nil {
			continue
		}
		if g.Label == "" {
			g.Label = Label(g.Name)
		}
		if g.Label == "" {
			return Selection{}, nil, fmt.Errorf("%s: name %q gives no GPU label", g, g.Name)
		}
		if g.UUID == "" {
			return Selection{}, nil, fmt.Errorf("%s: nvidia-smi reported no UUID, so the GPU cannot be pinned", g)
		}
	}
	return sel, warnings, nil
}

// byUUID returns the GPU whose UUID starts with prefix, nil for an empty
// prefix.
func byUUID(gpus []GPU, knob, prefix string) (*GPU, error) {
	if prefix == "" {
		return nil, nil
	}
	var found *GPU
	for i := range gpus {
		if gpus[i].UUID != "" && hasPrefixFold(gpus[i].UUID, prefix) {
			if found != nil {
				return nil, fmt.Errorf("%s=%q is ambiguous: it matches %s and %s", knob, prefix, found, &gpus[i])
			}
			found = &gpus[i]
		}
	}
	if found == nil {
		return nil, fmt.Errorf("%s=%q matches no GPU%s", knob, prefix, listUUIDs(gpus))
	}
	return found, nil
}

// byName returns the first GPU other than used whose name contains match, or
// else the first GPU other than used, with a warning; nil when every GPU is
// used.
func byName(gpus []GPU, knob, match string, used *GPU) (*GPU, string) {
	var fallback *GPU
	matchedUsed := false
	for i := range gpus {
		g := &gpus[i]
		isMatch := match != "" && strings.Contains(strings.ToLower(g.Name), strings.ToLower(match))
		if g == used {
			matchedUsed = matchedUsed || isMatch
			continue
		}
		if isMatch {
			return g, ""
		}
		if fallback == nil {
			fallback = g
		}
	}
	if match == "" {
		return fallback, ""
	}
	why := "matched no GPU"
	if matchedUsed {
		why = fmt.Sprintf("matched only %s, already used by the other endpoint", used)
	}
	if fallback == nil {
		return nil, fmt.Sprintf("%s=%q %s; no other GPU is left, so endpoint B is disabled", knob, match, why)
	}
	return fallback, fmt.Sprintf("%s=%q %s; using %s", knob, match, why, fallback)
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

func listUUIDs(gpus []GPU) string {
	if len(gpus) == 0 {
		return " (no GPUs found)"
	}
	var b strings.Builder
	b.WriteString(" (have")
	for i, g := range gpus {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, " %s %s", g.UUID, g)
	}
	b.WriteString(")")
	return b.String()
}

func appendNonEmpty(s []string, v string) []string {
	if v == "" {
		return s
	}
	return append(s, v)
}
