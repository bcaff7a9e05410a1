package triton

import "net/http"

// Serving (`fuze stack Triton serving`): Triton's concurrency is its model configuration's
// (dynamic batching, max_batch_size, instance groups; for TensorRT-LLM and vLLM backends their
// own scheduler settings), which fuze neither writes nor restarts, so the driver is not a
// stack.ServingPlanner: SERVING_PARALLEL_SET is ignored and the server is served as it is
// configured. It has no tokenize endpoint either: prompts are sized at about 4 characters a
// token (the level's input_tokens_* columns stay 0, as generate_stream reports no prompt
// count).

// CloseIdleConnections implements stack.IdleCloser: the driver's transport, or Go's default
// one that it uses when none is set.
func (d *Driver) CloseIdleConnections() {
	tr := d.cfg.Transport
	if tr == nil {
		tr = http.DefaultTransport
	}
	if c, ok := tr.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
