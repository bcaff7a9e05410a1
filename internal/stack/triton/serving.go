package triton

import (
	"net/http"

	"github.com/fuze-ai/fuze/internal/arrival"
)

// Serving (`fuze stack Triton serving`): Triton's concurrency is its model configuration's
// (dynamic batching, max_batch_size, instance groups; for TensorRT-LLM and vLLM backends their
// own scheduler settings), which fuze neither writes nor restarts, so the driver is not a
// stack.ServingPlanner: SERVING_PARALLEL_SET is ignored and the server is served as it is
// configured. It has no tokenize endpoint either: prompts are sized at about 4 characters a
// token (the level's input_tokens_* columns stay 0, as generate_stream reports no prompt
// count).

// defaultTransport carries the driver's requests when the configuration sets none: Go's
// default one, with chunks timed at the kernel's receipt (internal/arrival).
var defaultTransport = arrival.Transport()

// transport is the configuration's transport, or defaultTransport.
func (d *Driver) transport() http.RoundTripper {
	if d.cfg.Transport != nil {
		return d.cfg.Transport
	}
	return defaultTransport
}

// CloseIdleConnections implements stack.IdleCloser: the driver's transport.
func (d *Driver) CloseIdleConnections() {
	if c, ok := d.transport().(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
