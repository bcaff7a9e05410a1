// Package all links every stack driver into the binary: each registers itself with
// internal/stack when imported. A new stack is one more line here.
package all

import (
	_ "github.com/fuze-ai/fuze/internal/stack/llamacpp"
	_ "github.com/fuze-ai/fuze/internal/stack/ollama"
	_ "github.com/fuze-ai/fuze/internal/stack/triton"
	_ "github.com/fuze-ai/fuze/internal/stack/vllm"
)
