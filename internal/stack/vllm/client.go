package vllm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/fuze-ai/fuze/internal/sse"
)

// CompletionRequest is the body of POST /v1/completions. IgnoreEOS and
// StreamOptions.ContinuousUsageStats are vLLM extras; other OpenAI-compatible servers
// (Ollama) ignore them.
type CompletionRequest struct {
	Model         string         `json:"model"`
	Prompt        string         `json:"prompt"`
	MaxTokens     int            `json:"max_tokens"`
	Temperature   float64        `json:"temperature"`
	Seed          *int           `json:"seed,omitempty"`
	Stream        bool           `json:"stream"`
	StreamOptions *StreamOptions `json:"stream_options,omitempty"`
	IgnoreEOS     bool           `json:"ignore_eos,omitempty"`
}

// StreamOptions asks for usage in the stream: a last chunk with the totals (include_usage)
// and, on vLLM, the running totals on every chunk (continuous_usage_stats), which say how
// many tokens each chunk carried.
type StreamOptions struct {
	IncludeUsage         bool `json:"include_usage"`
	ContinuousUsageStats bool `json:"continuous_usage_stats,omitempty"`
}

// Usage is the OpenAI usage object.
type Usage struct {
	PromptTokens     int  `json:"prompt_tokens"`
	CompletionTokens *int `json:"completion_tokens"`
	TotalTokens      int  `json:"total_tokens"`
}

// APIError is an error the server answered: an HTTP error status, or an error object sent
// inside the stream (Status 0).
type APIError struct {
	Endpoint string
	Status   int
	Message  string
	Type     string
	Code     string
}

func (e *APIError) Error() string {
	where := "error in the stream"
	if e.Status != 0 {
		where = fmt.Sprintf("HTTP %d", e.Status)
	}
	msg := e.Message
	if e.Type != "" {
		msg = e.Type + ": " + msg
	}
	return fmt.Sprintf("%s: %s: %s", e.Endpoint, where, msg)
}

// ErrMalformed marks an answer that does not follow the protocol.
var ErrMalformed = errors.New("malformed answer")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// parseError reads the error bodies vLLM has used: {"object":"error","message":…,"type":…,
// "code":…} (older releases) and {"error":{"message":…,"type":…,"code":…}} (newer releases and
// every streamed error); also {"error":"…"} and FastAPI's {"detail":…}. ok is false when body
// is none of them.
func parseError(body []byte) (msg, typ, code string, ok bool) {
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil {
		return "", "", "", false
	}
	str := func(raw json.RawMessage) string {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
		return strings.TrimSpace(string(raw))
	}
	fields := func(m map[string]json.RawMessage) (string, string, string) {
		var code string
		if c, ok := m["code"]; ok && string(c) != "null" {
			code = str(c)
		}
		var typ string
		if t, ok := m["type"]; ok && string(t) != "null" {
			typ = str(t)
		}
		return str(m["message"]), typ, code
	}
	if raw, ok := top["error"]; ok && string(raw) != "null" {
		var inner map[string]json.RawMessage
		if json.Unmarshal(raw, &inner) == nil {
			m, t, c := fields(inner)
			return m, t, c, true
		}
		return str(raw), "", "", true
	}
	if o, ok := top["object"]; ok && str(o) == "error" {
		m, t, c := fields(top)
		return m, t, c, true
	}
	if d, ok := top["detail"]; ok {
		return str(d), "", "", true
	}
	return "", "", "", false
}

func statusError(endpoint string, status int, body []byte) *APIError {
	e := &APIError{Endpoint: endpoint, Status: status}
	if m, t, c, ok := parseError(body); ok {
		e.Message, e.Type, e.Code = m, t, c
	} else {
		e.Message = clip(strings.TrimSpace(string(body)), 300)
	}
	return e
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// StreamResult is what one streamed completion delivered, as the client saw it.
type StreamResult struct {
	Start     time.Time
	FirstByte time.Duration // first event, since Start
	End       time.Duration // the [DONE] sentinel, since Start
	// TokenTimes holds one arrival time (since Start) per generated token: a chunk that
	// carried k tokens contributes k entries at its arrival. Tokens per chunk come from the
	// running usage totals when the server sends them (vLLM's continuous_usage_stats), else
	// each chunk with text counts one (a token whose text the server holds back, or a
	// merged chunk, then shows only in the final usage: see DecodeTimes).
	TokenTimes   []time.Duration
	Chunks       int    // chunks with a choice
	TextChunks   int    // chunks with non-empty text
	PerChunk     bool   // token counts per chunk came from running usage totals
	Usage        *Usage // the last usage the stream carried (the totals)
	FinishReason string
	TextBytes    int
}

// Stream sends req (streamed) to the OpenAI-compatible server at baseURL and reads the
// answer to the end. It fails on an HTTP error, an error object in the stream, a chunk that
// is not the documented JSON, or a stream that ends without "data: [DONE]". It does not
// require usage: the caller decides what a measurement needs.
// onTokens, when not nil, is called as each chunk is read with the output tokens it carried.
func Stream(ctx context.Context, hc *http.Client, baseURL string, req CompletionRequest, onTokens func(int)) (*StreamResult, error) {
	req.Stream = true
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	endpoint := strings.TrimRight(baseURL, "/") + "/v1/completions"
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "text/event-stream")
	start := time.Now()
	resp, err := hc.Do(hreq)
	if err != nil {
		return nil, fmt.Errorf("POST %s: %w", endpoint, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return nil, statusError(endpoint, resp.StatusCode, data)
	}
	return readStream(endpoint, resp.Body, start, nil, onTokens)
}

// chunk is one streamed completion chunk, or an error object (Error, an "error" Object or
// Detail set: see parseError).
type chunk struct {
	Object  string `json:"object"`
	Choices []struct {
		Index        int     `json:"index"`
		Text         *string `json:"text"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage  *Usage          `json:"usage"`
	Error  json.RawMessage `json:"error"`
	Detail json.RawMessage `json:"detail"`
}

// mayBeError says whether a chunk decoded as ch could be one of the error bodies parseError
// reads (only those are parsed a second time).
func (ch *chunk) mayBeError() bool {
	return (len(ch.Error) > 0 && string(ch.Error) != "null") || ch.Object == "error" || len(ch.Detail) > 0
}

// readStream reads an SSE completion stream. now stamps arrivals (nil: time.Now); onTokens
// (nil: none) hears each chunk's token count as it is read.
func readStream(endpoint string, body io.Reader, start time.Time, now func() time.Time, onTokens func(int)) (*StreamResult, error) {
	res := &StreamResult{Start: start}
	rd := sse.NewReader(body)
	rd.Now = now
	rd.RawData = true // every event is decoded from its bytes: no string copy of each
	counted := 0      // tokens attributed to chunks so far
	for {
		ev, err := rd.Next()
		if err == io.EOF {
			return res, malformed("the stream ended without data: [DONE] (%d chunks)", res.Chunks)
		}
		if err != nil {
			return res, fmt.Errorf("reading the stream of %s: %w", endpoint, err)
		}
		at := ev.At.Sub(start)
		if res.FirstByte == 0 {
			res.FirstByte = at
		}
		if ev.Done() {
			res.End = at
			return res, nil
		}
		data := ev.Raw
		// One decode per chunk: only what may be an error object is parsed again as one.
		var ch chunk
		var uerr error
		if !fastChunk(data, &ch) {
			ch = chunk{}
			uerr = json.Unmarshal(data, &ch)
		}
		if uerr != nil || ev.Type == "error" || ch.mayBeError() {
			if m, t, c, ok := parseError(data); ok || ev.Type == "error" {
				if !ok {
					m = clip(string(data), 300)
				}
				return res, &APIError{Endpoint: endpoint, Message: m, Type: t, Code: c}
			}
		}
		if uerr != nil {
			return res, malformed("chunk %d is not a completion chunk (%v): %s", res.Chunks+1, uerr, clip(string(data), 200))
		}
		if ch.Choices == nil && ch.Usage == nil {
			return res, malformed("chunk %d has neither choices nor usage: %s", res.Chunks+1, clip(string(data), 200))
		}
		if len(ch.Choices) > 0 {
			c := ch.Choices[0]
			if c.Text == nil {
				return res, malformed("chunk %d has a choice without text: %s", res.Chunks+1, clip(string(data), 200))
			}
			res.Chunks++
			k := 0
			if ch.Usage != nil && ch.Usage.CompletionTokens != nil && *ch.Usage.CompletionTokens > 0 {
				// Running totals: this chunk carried the difference (possibly several
				// tokens merged, or a token whose text is held back mid-character). A
				// zero total is no running total: Ollama puts zero usage on every chunk.
				res.PerChunk = true
				k = *ch.Usage.CompletionTokens - counted
				if k < 0 {
					return res, malformed("usage.completion_tokens went down from %d to %d", counted, *ch.Usage.CompletionTokens)
				}
			} else if *c.Text != "" {
				k = 1
			}
			if *c.Text != "" {
				res.TextChunks++
				res.TextBytes += len(*c.Text)
			}
			for range k {
				res.TokenTimes = append(res.TokenTimes, at)
			}
			if onTokens != nil {
				onTokens(k)
			}
			counted += k
			if c.FinishReason != nil && *c.FinishReason != "" {
				res.FinishReason = *c.FinishReason
			}
		}
		if ch.Usage != nil {
			res.Usage = ch.Usage
		}
	}
}

// DecodeTimes returns one arrival time per output token for a stream whose usage reports
// tokens: the client-side token times, reconciled with the count when they disagree (the
// decode rate is then usage tokens over the time from the first to the last token). It
// fails when usage is missing or when there is no decode time to measure.
func (r *StreamResult) DecodeTimes() (times []time.Duration, note string, err error) {
	if r.Usage == nil || r.Usage.CompletionTokens == nil {
		return nil, "", malformed("no usage in the stream (stream_options.include_usage not honoured): the token count is unknown")
	}
	n := *r.Usage.CompletionTokens
	got := len(r.TokenTimes)
	switch {
	case n < 2:
		return nil, "", malformed("usage reports %d output tokens: a decode rate needs at least 2", n)
	case got == 0:
		return nil, "", malformed("usage reports %d output tokens but no chunk carried text", n)
	}
	times = slices.Clone(r.TokenTimes)
	if got != n {
		note = fmt.Sprintf("usage reports %d output tokens, the chunks accounted for %d; the decode rate counts %d tokens between the first and the last", n, got, n)
		if got < n {
			for range n - got {
				times = append(times, times[got-1])
			}
		} else {
			times = append(times[:n-1], times[got-1])
		}
	}
	if times[n-1] <= times[0] {
		if r.Chunks < 2 {
			return nil, "", malformed("all %d output tokens arrived at once (%d chunks): the answer was not streamed token by token", n, r.Chunks)
		}
		// Streamed in several chunks that one read took in at once: the client was behind the
		// stream (a loaded client, or a server faster than it reads), not a malformed answer.
		if note != "" {
			note += "; "
		}
		note += fmt.Sprintf("all %d chunks were read at once: the client was behind the stream", r.Chunks)
	}
	return times, note, nil
}

// Health asks GET /health; nil when it answers 200.
func Health(ctx context.Context, hc *http.Client, baseURL string) error {
	endpoint := strings.TrimRight(baseURL, "/") + "/health"
	resp, err := get(ctx, hc, endpoint)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return statusError(endpoint, resp.StatusCode, data)
	}
	return nil
}

// Models lists the model ids of GET /v1/models ({"object":"list","data":[{"id":…},…]}).
func Models(ctx context.Context, hc *http.Client, baseURL string) ([]string, error) {
	endpoint := strings.TrimRight(baseURL, "/") + "/v1/models"
	resp, err := get(ctx, hc, endpoint)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", endpoint, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, statusError(endpoint, resp.StatusCode, data)
	}
	var list struct {
		Object string `json:"object"`
		Data   []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := json.Unmarshal(data, &list); err != nil || list.Data == nil {
		return nil, malformed("GET %s: not a model list: %s", endpoint, clip(string(data), 200))
	}
	ids := make([]string, 0, len(list.Data))
	for _, m := range list.Data {
		ids = append(ids, m.ID)
	}
	return ids, nil
}

func get(ctx context.Context, hc *http.Client, endpoint string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", endpoint, err)
	}
	return resp, nil
}
