package stack

// CommandLiner is implemented by drivers that can say how to run a configuration by hand: the
// exact server command line (llama-server, vLLM), or the daemon environment and request
// options (Ollama). The engine prints it for the tuning search's best, so the result is usable.
type CommandLiner interface {
	ServerCommand(ep Endpoint, t Target, c Candidate) string
}
