// Package stackname is the one place a stack's names are spelled: its canonical name (file
// names' stack column, summaries), the prefix of its run files, the scope its knobs are filed
// under, and the aliases users type. Everything that names stacks — CLI dispatch and help,
// `bench --stack`, results file names, knob scopes, preflight — reads this table, so a
// spelling cannot drift. It imports nothing of fuze's, so results, knobs and reports can use
// it without depending on the drivers.
//
// A new stack is one line in the table below plus its driver package, which registers its
// factory under the same name (stack.Register).
package stackname

import (
	"slices"
	"strings"
	"sync"
)

// Stack is one inference stack's names.
type Stack struct {
	Name       string   // canonical: aggregate stack column, summaries, messages
	FilePrefix string   // run files: <FilePrefix>_bench_<TS>.csv
	KnobScope  string   // Knob.Stacks value for knobs that affect only this stack
	Aliases    []string // what users may type (`fuze stack <alias>`, `bench --stack`), first as shown in help
}

// The canonical names, for code that refers to one stack.
const (
	Ollama   = "ollama"
	LlamaCpp = "llama.cpp"
	VLLM     = "vLLM"
	Triton   = "Triton"
)

// table is every stack, in the order bench runs them by default (the original's discovery
// order).
var table = []Stack{
	{Name: Ollama, FilePrefix: "ollama", KnobScope: "ollama", Aliases: []string{"ollama", "Ollama"}},
	{Name: LlamaCpp, FilePrefix: "llamacpp", KnobScope: "llama.cpp", Aliases: []string{"llama.cpp", "llamacpp", "llama-cpp"}},
	{Name: VLLM, FilePrefix: "vllm", KnobScope: "vllm", Aliases: []string{"vllm", "vLLM", "VLLM"}},
	{Name: Triton, FilePrefix: "triton", KnobScope: "triton", Aliases: []string{"triton", "Triton"}},
}

// mu guards table against RegisterForTest.
var mu sync.RWMutex

// All returns every stack in the default run order.
func All() []Stack {
	mu.RLock()
	defer mu.RUnlock()
	return slices.Clone(table)
}

// RegisterForTest appends a stack to the table for the duration of a test (a scripted stack
// run through the CLI) and returns the function that removes it.
func RegisterForTest(s Stack) (remove func()) {
	mu.Lock()
	table = append(table, s)
	mu.Unlock()
	return func() {
		mu.Lock()
		defer mu.Unlock()
		table = slices.DeleteFunc(table, func(x Stack) bool { return x.Name == s.Name })
	}
}

// Names returns the canonical names in the default run order.
func Names() []string {
	all := All()
	out := make([]string, len(all))
	for i, s := range all {
		out[i] = s.Name
	}
	return out
}

// Lookup finds a stack by its name, file prefix, knob scope or any alias, ignoring case and
// surrounding space.
func Lookup(name string) (Stack, bool) {
	n := strings.ToLower(strings.TrimSpace(name))
	for _, s := range All() {
		if n == strings.ToLower(s.Name) || n == s.FilePrefix || n == s.KnobScope {
			return s, true
		}
		for _, a := range s.Aliases {
			if n == strings.ToLower(a) {
				return s, true
			}
		}
	}
	return Stack{}, false
}

// ByName returns the stack with canonical name n; it panics on a name not in the table (a
// programming error, caught by any test that runs the code).
func ByName(n string) Stack {
	for _, s := range All() {
		if s.Name == n {
			return s
		}
	}
	panic("stackname: no stack named " + n)
}

// List is the canonical names joined for messages: "ollama, llama.cpp, vLLM, Triton".
func List() string { return strings.Join(Names(), ", ") }
