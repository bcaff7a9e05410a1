// Package knobs owns the registry of every environment variable ("knob") that
// configures fuze — the ones the original FuZe bash scripts read, the ones fuze
// added — and their resolution from built-in defaults, the process environment
// and env files (@file.env), in that order of increasing precedence.
//
// Every knob has one entry: its name, the default this implementation uses,
// a one-line meaning, the stacks it affects and the kind of value it takes.
// Knobs the original defined but never read (EARLY_STOP_DELTA, SERVICE_HOME, …)
// are listed too, so old env files keep loading without warnings.
//
// # Stacks
//
// Knob.Stacks uses this fixed set (see Stacks):
//
//	all        every stack benchmark (BENCH_NUM_CTX, LOG_DIR, …)
//	bench      the orchestrator (./benchmark.sh, fuze bench)
//	ollama     the Ollama benchmark and its management commands
//	           (install, service-cleanup, store-cleanup, cleanup-variants, export-gguf)
//	vllm       the vLLM benchmark
//	llama.cpp  the llama.cpp benchmark
//	triton     the Triton benchmark
//	env        the env file generator (templates → env/{explore,preprod}, promotion)
//	report     collect, summaries and analysis of the CSVs
//	system     preflight, gpu-prepare, migrate-logs, clean
//
// # Values
//
// An empty value counts as unset and gives the default, as `${VAR:-default}`
// did in the original scripts. A few knobs have a different default per stack
// (CTX is 4096 for vLLM but 1024 for llama.cpp); Knob.StackDefaults holds those
// and Config.WithStack selects them.
//
// Pattern knobs name a family of variables: "VLLM_MODEL_<alias>" matches
// VLLM_MODEL_ followed by letters, digits and underscores (see Matches).
package knobs

import (
	"fmt"
	"github.com/fuze-ai/fuze/internal/stackname"
	"math"
	"net"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Kind says what values a knob takes.
type Kind string

// The kinds of knob values.
const (
	KindInt      Kind = "int"           // a decimal integer
	KindFloat    Kind = "float"         // a decimal number
	KindBool01   Kind = "bool01"        // 0 or 1
	KindString   Kind = "string"        // any text
	KindRegex    Kind = "regex"         // an extended regular expression (empty: no filter)
	KindList     Kind = "list"          // words separated by whitespace and/or commas
	KindIntList  Kind = "int-list"      // integers separated by whitespace and/or commas
	KindPath     Kind = "path"          // a file or directory (relative: to FUZE_ROOT where the Doc says so)
	KindSeconds  Kind = "duration-secs" // a number of seconds ≥ 0
	KindHostPort Kind = "host:port"     // HOST:PORT
)

// Kinds lists every Kind.
func Kinds() []Kind {
	return []Kind{KindInt, KindFloat, KindBool01, KindString, KindRegex, KindList, KindIntList,
		KindPath, KindSeconds, KindHostPort}
}

// The tools a knob can affect besides the stacks.
const (
	StackAll    = "all"
	StackBench  = "bench"
	StackEnv    = "env"
	StackReport = "report"
	StackSystem = "system"
)

// The stacks' knob scopes, as spelled in internal/stackname.
var (
	StackOllama   = stackname.ByName(stackname.Ollama).KnobScope
	StackVLLM     = stackname.ByName(stackname.VLLM).KnobScope
	StackLlamaCpp = stackname.ByName(stackname.LlamaCpp).KnobScope
	StackTriton   = stackname.ByName(stackname.Triton).KnobScope
)

// Stacks lists the values Knob.Stacks may hold, in documentation order.
func Stacks() []string {
	return []string{StackAll, StackBench, StackOllama, StackVLLM, StackLlamaCpp, StackTriton,
		StackEnv, StackReport, StackSystem}
}

// ParseStack maps a stack name as users write it (ollama, Ollama, vLLM, VLLM,
// llama.cpp, llamacpp, llama-cpp, Triton, bench, …) to one of Stacks.
func ParseStack(s string) (string, bool) {
	if st, ok := stackname.Lookup(s); ok {
		return st.KnobScope, true
	}
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "all":
		return StackAll, true
	case "bench", "benchmark", "orchestrator", "wrapper":
		return StackBench, true
	case "env", "generator", "generate-envs":
		return StackEnv, true
	case "report", "summary", "analyze":
		return StackReport, true
	case "system":
		return StackSystem, true
	}
	return "", false
}

// Knob is one registered environment variable.
type Knob struct {
	Name    string // exact name, or a pattern such as "VLLM_MODEL_<alias>"
	Default string // value when unset or empty; "" where there is none or it is computed (the Doc says how)
	Doc     string // one line: meaning, and where it differs from the original
	Stacks  []string
	Kind    Kind
	// StackDefaults overrides Default for the named stacks (e.g. CTX: llama.cpp 1024).
	StackDefaults map[string]string
}

// IsPattern reports whether the knob names a family of variables ("…<alias>").
func (k Knob) IsPattern() bool { return strings.Contains(k.Name, "<") }

// DefaultFor is the knob's default for stack ("" stack: the general default).
func (k Knob) DefaultFor(stack string) string {
	if d, ok := k.StackDefaults[stack]; ok {
		return d
	}
	return k.Default
}

// Affects reports whether the knob is listed for stack, directly or through "all".
func (k Knob) Affects(stack string) bool {
	return slices.Contains(k.Stacks, stack) || (stack != StackAll && slices.Contains(k.Stacks, StackAll))
}

// Check reports whether value is valid for the knob's kind. An empty value is
// always valid (it means unset). The error says what is wanted, e.g. "want 0 or 1".
func (k Knob) Check(value string) error {
	if value == "" {
		return nil
	}
	return checkKind(k.Kind, value)
}

func checkKind(kind Kind, value string) error {
	v := strings.TrimSpace(value)
	switch kind {
	case KindInt:
		if _, err := strconv.Atoi(v); err != nil {
			return fmt.Errorf("want an integer")
		}
	case KindFloat:
		if _, err := parseFloat(v); err != nil {
			return fmt.Errorf("want a number")
		}
	case KindBool01:
		if v != "0" && v != "1" {
			return fmt.Errorf("want 0 or 1")
		}
	case KindSeconds:
		if f, err := parseFloat(v); err != nil || f < 0 {
			return fmt.Errorf("want a number of seconds ≥ 0")
		}
	case KindIntList:
		for _, f := range splitList(v) {
			if _, err := strconv.Atoi(f); err != nil {
				return fmt.Errorf("want integers separated by spaces or commas (%q is not one)", f)
			}
		}
	case KindRegex:
		if _, err := regexp.Compile(value); err != nil {
			return fmt.Errorf("want a regular expression: %v", err)
		}
	case KindHostPort:
		host, port, err := net.SplitHostPort(v)
		if err != nil || host == "" {
			return fmt.Errorf("want HOST:PORT")
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("want HOST:PORT with a port from 1 to 65535")
		}
	}
	return nil
}

func parseFloat(s string) (float64, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, err
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("not finite")
	}
	return f, nil
}

// splitList splits on whitespace and commas, dropping empty items.
func splitList(s string) []string {
	f := strings.FieldsFunc(s, func(r rune) bool {
		return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\v' || r == '\f'
	})
	if len(f) == 0 {
		return nil
	}
	return f
}

var (
	byName   map[string]int // exact names → index in registry
	patterns []int          // indexes of pattern knobs
)

func init() {
	byName = make(map[string]int, len(registry))
	for i, k := range registry {
		if _, dup := byName[k.Name]; dup {
			panic("knobs: duplicate knob " + k.Name)
		}
		byName[k.Name] = i
		if k.IsPattern() {
			patterns = append(patterns, i)
		}
	}
}

// All returns every registered knob, sorted by name. The slice is a copy.
func All() []Knob {
	out := make([]Knob, len(registry))
	for i, k := range registry {
		out[i] = k.clone()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// ForStack returns the knobs that affect stack (listed for it or for "all"),
// sorted by name.
func ForStack(stack string) []Knob {
	var out []Knob
	for _, k := range All() {
		if k.Affects(stack) {
			out = append(out, k)
		}
	}
	return out
}

// Lookup returns the knob registered under exactly name (a pattern knob only by
// its pattern name, e.g. "VLLM_MODEL_<alias>").
func Lookup(name string) (Knob, bool) {
	if i, ok := byName[name]; ok {
		return registry[i].clone(), true
	}
	return Knob{}, false
}

// Matches returns the knob that governs the variable name: the exact entry if
// there is one, else the pattern entry whose fixed prefix it starts with and
// whose <placeholder> part is one or more letters, digits or underscores
// (VLLM_MODEL_mistral_7b → "VLLM_MODEL_<alias>").
func Matches(name string) (Knob, bool) {
	if k, ok := Lookup(name); ok {
		return k, true
	}
	for _, i := range patterns {
		if matchPattern(registry[i].Name, name) {
			return registry[i].clone(), true
		}
	}
	return Knob{}, false
}

func matchPattern(pattern, name string) bool {
	lt := strings.IndexByte(pattern, '<')
	gt := strings.IndexByte(pattern, '>')
	if lt < 0 || gt < lt {
		return false
	}
	prefix, suffix := pattern[:lt], pattern[gt+1:]
	if !strings.HasPrefix(name, prefix) || !strings.HasSuffix(name, suffix) || len(name) <= len(prefix)+len(suffix) {
		return false
	}
	for _, r := range name[len(prefix) : len(name)-len(suffix)] {
		if !(r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

func (k Knob) clone() Knob {
	k.Stacks = slices.Clone(k.Stacks)
	if k.StackDefaults != nil {
		m := make(map[string]string, len(k.StackDefaults))
		for s, d := range k.StackDefaults {
			m[s] = d
		}
		k.StackDefaults = m
	}
	return k
}
