package stack

import "strconv"

// CommandLiner is implemented by drivers that can say how to run a configuration by hand: the
// exact server command line (llama-server, vLLM), or the daemon environment and request
// options (Ollama). The engine prints it for the tuning search's best, so the result is usable.
type CommandLiner interface {
	ServerCommand(ep Endpoint, t Target, c Candidate) string
}

// TuneValues is a tuning set's values to loop over: the set itself, or one empty value ("not
// set": the server's own) when the set is empty, so that a product over several sets still
// yields candidates when some of them are not swept.
func TuneValues(xs []string) []string {
	if len(xs) == 0 {
		return []string{""}
	}
	return xs
}

// TuneInts is TuneValues for a set of numbers, written in decimal.
func TuneInts(xs []int) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = strconv.Itoa(x)
	}
	return TuneValues(out)
}
