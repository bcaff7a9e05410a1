package llamacpp

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/fuze-ai/fuze/internal/arrival"
)

// The llama-server protocol this driver relies on (README and server.cpp of its examples/server,
// later tools/server):
//
//   - GET /health: 503 {"error":{"code":503,"message":"Loading model","type":"unavailable_error"}}
//     while the model loads, then 200 {"status":"ok"}.
//   - POST /completion with "stream": true answers text/event-stream: one "data: {json}" event
//     per token, {"content": "<piece>", "stop": false, …}, then a final event with
//     "stop": true and "timings" {prompt_n, prompt_ms, predicted_n, predicted_ms,
//     predicted_per_second, …}, "tokens_predicted", "tokens_evaluated", "stop_type"
//     (none|eos|limit|word). An error after the stream started comes as an "error: {json}"
//     event; before it, as an HTTP status with {"error":{"code","message","type"}}.
//   - predicted_ms runs from the first generated token to the end of generation and
//     predicted_n counts every generated token, so predicted_n / predicted_ms × 1000 is the
//     server's own predicted_per_second, the rate the CSV carries.

// CompletionRequest is the body of POST /completion.
type CompletionRequest struct {
	Prompt      string  `json:"prompt"`
	NPredict    int     `json:"n_predict"`
	Temperature float64 `json:"temperature"`
	Seed        int     `json:"seed"`
	Stream      bool    `json:"stream"`
	// CachePrompt false: the whole prompt is evaluated on every request (the server's
	// default, true, would reuse the common prefix of the previous request).
	CachePrompt bool `json:"cache_prompt"`
	// IgnoreEOS: generate exactly NPredict tokens, whatever the model.
	IgnoreEOS bool `json:"ignore_eos"`
}

// Timings is the "timings" object of a completion.
type Timings struct {
	PromptN             int     `json:"prompt_n"`
	PromptMS            float64 `json:"prompt_ms"`
	PromptPerTokenMS    float64 `json:"prompt_per_token_ms"`
	PromptPerSecond     float64 `json:"prompt_per_second"`
	PredictedN          int     `json:"predicted_n"`
	PredictedMS         float64 `json:"predicted_ms"`
	PredictedPerTokenMS float64 `json:"predicted_per_token_ms"`
	PredictedPerSecond  float64 `json:"predicted_per_second"`
}

// Chunk is one streamed event of /completion (a partial answer or the final one).
type Chunk struct {
	Content         string   `json:"content"`
	Stop            bool     `json:"stop"`
	StopType        string   `json:"stop_type"`
	TokensPredicted int      `json:"tokens_predicted"`
	TokensEvaluated int      `json:"tokens_evaluated"`
	TokensCached    int      `json:"tokens_cached"`
	Truncated       bool     `json:"truncated"`
	Timings         *Timings `json:"timings"`
}

// APIError is an error answer of the server.
type APIError struct {
	Status  int    // HTTP status; 0 for an error event inside a stream
	Code    int    `json:"code"`
	Message string `json:"message"`
	Type    string `json:"type"`
}

func (e *APIError) Error() string {
	if e.Status == 0 {
		return fmt.Sprintf("llama-server error event: %s (%s, code %d)", e.Message, e.Type, e.Code)
	}
	if e.Message == "" {
		return fmt.Sprintf("llama-server answered HTTP %d", e.Status)
	}
	return fmt.Sprintf("llama-server answered HTTP %d: %s (%s)", e.Status, e.Message, e.Type)
}

// errMalformed marks answers that are not the documented protocol.
var errMalformed = errors.New("malformed answer")

func malformedf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errMalformed, fmt.Sprintf(format, args...))
}

// The client opens a connection per request and closes it right after, with SO_LINGER 0 (a
// reset, not a FIN): no connection of a finished server is left in TIME_WAIT on the endpoint's
// port. (A streamed answer is ended by the server closing the connection, which would otherwise
// leave a TIME_WAIT socket on the server's side of the port for a minute.) No connection is kept
// alive: llama-server closes kept-alive connections on its own, and a POST sent on one it has
// just closed fails ("server closed idle connection", EOF) without Go retrying it — on an H200
// 4 of 192 requests of a serving run at 8 and 32 streams failed so. `vllm bench serve` also
// opens a connection per request.
var (
	httpTransport = &http.Transport{
		DisableKeepAlives: true,
		// Chunks are timed at the kernel's receipt of their bytes (internal/arrival).
		DialContext: (&arrival.Dialer{Control: func(tc *net.TCPConn) { _ = tc.SetLinger(0) }}).DialContext,
	}
	httpClient = &http.Client{Transport: httpTransport}
)

// closeConns closes any connection of the client still open once a request is over.
func closeConns() { httpTransport.CloseIdleConnections() }

// apiError reads an error body.
func apiError(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	e := &APIError{Status: resp.StatusCode}
	var wrapper struct {
		Error *APIError `json:"error"`
	}
	if json.Unmarshal(body, &wrapper) == nil && wrapper.Error != nil {
		e.Code, e.Message, e.Type = wrapper.Error.Code, wrapper.Error.Message, wrapper.Error.Type
	} else {
		e.Message = strings.TrimSpace(string(body))
		if len(e.Message) > 200 {
			e.Message = e.Message[:200] + "…"
		}
	}
	return e
}

// health is GET /health: nil once the server answers 200.
func health(ctx context.Context, addr string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/health", nil)
	if err != nil {
		return err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer closeConns()
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return apiError(resp)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return nil
}

// completion is POST /completion. For a streamed request, onChunk sees every event with the
// time it arrived. It returns the final answer and its raw JSON.
func completion(ctx context.Context, addr string, body CompletionRequest, onChunk func(c *Chunk, at time.Time)) (*Chunk, []byte, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/completion", bytes.NewReader(b))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer closeConns()
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, nil, apiError(resp)
	}
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if ct != "text/event-stream" {
		// Not streamed (an older server, or stream=false): one JSON object.
		raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
		if err != nil {
			return nil, nil, err
		}
		var c Chunk
		if err := json.Unmarshal(raw, &c); err != nil {
			return nil, raw, malformedf("answer is not a completion object: %v", err)
		}
		if onChunk != nil {
			onChunk(&c, time.Now())
		}
		return &c, raw, nil
	}
	return readStream(resp.Body, onChunk)
}

// readStream parses the server-sent events of a streamed completion up to the final event.
// An event is dispatched at the blank line that ends it (the server ends every event with
// "\n\n"); one cut off by the end of the stream is not an answer.
func readStream(r io.Reader, onChunk func(c *Chunk, at time.Time)) (*Chunk, []byte, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	events := 0
	var field, data string
	for sc.Scan() {
		at := time.Now()
		line := sc.Text()
		if strings.HasPrefix(line, ":") {
			continue // comment
		}
		if line != "" {
			f, v, ok := strings.Cut(line, ":")
			if !ok {
				return nil, nil, malformedf("stream line %q is not a server-sent event", clip(line))
			}
			v = strings.TrimPrefix(v, " ")
			if field != "" && f == field {
				data += "\n" + v
			} else {
				field, data = f, v
			}
			continue
		}
		f, value := field, data
		field, data = "", ""
		switch f {
		case "data":
			if value == "[DONE]" {
				continue
			}
			var c Chunk
			if err := json.Unmarshal([]byte(value), &c); err != nil {
				return nil, nil, malformedf("stream event %d is not JSON: %v", events+1, err)
			}
			events++
			if onChunk != nil {
				onChunk(&c, at)
			}
			if c.Stop {
				return &c, []byte(value), nil
			}
		case "error":
			e := &APIError{}
			if err := json.Unmarshal([]byte(value), e); err != nil || e.Message == "" {
				e.Message = clip(value)
			}
			return nil, nil, e
		}
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("stream cut after %d events: %w", events, err)
	}
	return nil, nil, fmt.Errorf("stream ended after %d events without a final (\"stop\": true) event: %w", events, io.ErrUnexpectedEOF)
}

func clip(s string) string {
	if len(s) > 120 {
		return s[:120] + "…"
	}
	return s
}
