// Package ollamaapi is a small client for Ollama's native REST API
// (https://github.com/ollama/ollama/blob/main/docs/api.md): model listing, show, blob upload,
// create, delete, pull and streamed generation. It owns its HTTP client and never retries:
// a silent retry would corrupt latency and throughput figures.
package ollamaapi

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// Client talks to one Ollama daemon.
type Client struct {
	BaseURL string // e.g. "http://127.0.0.1:11434"
	HTTP    *http.Client
}

// New returns a client for hostPort ("127.0.0.1:11434" or a full http URL).
func New(hostPort string) *Client {
	base := hostPort
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	return &Client{BaseURL: strings.TrimRight(base, "/"), HTTP: &http.Client{}}
}

// StatusError is an HTTP error answered by the daemon, with its {"error": ...} message.
type StatusError struct {
	Endpoint   string
	StatusCode int
	Message    string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s: HTTP %d: %s", e.Endpoint, e.StatusCode, e.Message)
}

func (c *Client) do(ctx context.Context, method, path string, body io.Reader, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, body)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, c.BaseURL+path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: reading response: %w", method, c.BaseURL+path, err)
	}
	if err := statusError(c.BaseURL+path, resp.StatusCode, data); err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: malformed JSON response: %w", method, c.BaseURL+path, err)
	}
	return nil
}

func statusError(endpoint string, code int, body []byte) error {
	if code < 400 {
		return nil
	}
	var e struct {
		Error string `json:"error"`
	}
	msg := strings.TrimSpace(string(body))
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		msg = e.Error
	}
	return &StatusError{Endpoint: endpoint, StatusCode: code, Message: msg}
}

func jsonBody(v any) io.Reader {
	b, _ := json.Marshal(v) // only our own request structs: cannot fail
	return bytes.NewReader(b)
}

// ModelDetails is the "details" object of /api/tags and /api/show.
type ModelDetails struct {
	Format            string `json:"format"`
	Family            string `json:"family"`
	ParameterSize     string `json:"parameter_size"`
	QuantizationLevel string `json:"quantization_level"`
}

// Model is one entry of /api/tags.
type Model struct {
	Name    string       `json:"name"`
	Model   string       `json:"model"`
	Size    int64        `json:"size"`
	Digest  string       `json:"digest"`
	Details ModelDetails `json:"details"`
}

// Tags lists the models the daemon has (GET /api/tags).
func (c *Client) Tags(ctx context.Context) ([]Model, error) {
	var out struct {
		Models []Model `json:"models"`
	}
	if err := c.do(ctx, http.MethodGet, "/api/tags", nil, &out); err != nil {
		return nil, err
	}
	return out.Models, nil
}

// Version returns the daemon's version string (GET /api/version).
func (c *Client) Version(ctx context.Context) (string, error) {
	var out struct {
		Version string `json:"version"`
	}
	err := c.do(ctx, http.MethodGet, "/api/version", nil, &out)
	return out.Version, err
}

// ShowResponse is the part of /api/show that fuze reads.
type ShowResponse struct {
	Parameters string         `json:"parameters"`
	Details    ModelDetails   `json:"details"`
	ModelInfo  map[string]any `json:"model_info"`
}

// Show describes a model (POST /api/show).
func (c *Client) Show(ctx context.Context, model string) (*ShowResponse, error) {
	var out ShowResponse
	if err := c.do(ctx, http.MethodPost, "/api/show", jsonBody(map[string]string{"model": model}), &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// BlockCount returns the model's transformer block count from model_info
// ("<arch>.block_count"), the number of repeating layers Ollama can offload.
func (s *ShowResponse) BlockCount() (int, bool) {
	arch, _ := s.ModelInfo["general.architecture"].(string)
	if v, ok := s.ModelInfo[arch+".block_count"].(float64); ok && v > 0 {
		return int(v), true
	}
	for k, v := range s.ModelInfo {
		if f, ok := v.(float64); ok && strings.HasSuffix(k, ".block_count") && f > 0 {
			return int(f), true
		}
	}
	return 0, false
}

// PushBlob uploads a file as a blob (POST /api/blobs/sha256:<digest>) and returns its digest
// in Ollama's "sha256:<hex>" form.
func (c *Client) PushBlob(ctx context.Context, path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	digest := "sha256:" + hex.EncodeToString(h.Sum(nil))
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.BaseURL+"/api/blobs/"+digest, f)
	if err != nil {
		return "", err
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return "", fmt.Errorf("upload %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if err := statusError(c.BaseURL+"/api/blobs", resp.StatusCode, body); err != nil {
		return "", fmt.Errorf("upload %s: %w", path, err)
	}
	return digest, nil
}

// CreateRequest is the body of POST /api/create.
type CreateRequest struct {
	Model      string            `json:"model"`
	From       string            `json:"from,omitempty"`
	Files      map[string]string `json:"files,omitempty"`
	Template   string            `json:"template,omitempty"`
	Parameters map[string]any    `json:"parameters,omitempty"`
	Stream     *bool             `json:"stream,omitempty"`
}

// Create creates a model (POST /api/create, not streamed).
func (c *Client) Create(ctx context.Context, req CreateRequest) error {
	noStream := false
	req.Stream = &noStream
	var out struct {
		Status string `json:"status"`
		Error  string `json:"error"`
	}
	if err := c.do(ctx, http.MethodPost, "/api/create", jsonBody(req), &out); err != nil {
		return fmt.Errorf("create %s: %w", req.Model, err)
	}
	if out.Error != "" {
		return fmt.Errorf("create %s: %s", req.Model, out.Error)
	}
	return nil
}

// CreateFromGGUF uploads a GGUF file and creates model name from it.
func (c *Client) CreateFromGGUF(ctx context.Context, name, ggufPath string) error {
	digest, err := c.PushBlob(ctx, ggufPath)
	if err != nil {
		return err
	}
	return c.Create(ctx, CreateRequest{Model: name, Files: map[string]string{"model.gguf": digest}})
}

// Delete removes a model (DELETE /api/delete).
func (c *Client) Delete(ctx context.Context, model string) error {
	return c.do(ctx, http.MethodDelete, "/api/delete", jsonBody(map[string]string{"model": model}), nil)
}

// Pull pulls a model (POST /api/pull, not streamed).
func (c *Client) Pull(ctx context.Context, model string) error {
	noStream := false
	var out struct {
		Error string `json:"error"`
	}
	if err := c.do(ctx, http.MethodPost, "/api/pull", jsonBody(map[string]any{"model": model, "stream": &noStream}), &out); err != nil {
		return fmt.Errorf("pull %s: %w", model, err)
	}
	if out.Error != "" {
		return fmt.Errorf("pull %s: %s", model, out.Error)
	}
	return nil
}

// GenerateRequest is the body of POST /api/generate. Runtime settings go inside Options:
// Ollama ignores num_gpu, num_predict, num_ctx and temperature at the top level (the bug
// that made the original's sweep measure nothing).
type GenerateRequest struct {
	Model     string         `json:"model"`
	Prompt    string         `json:"prompt"`
	Stream    bool           `json:"stream"`
	Raw       bool           `json:"raw,omitempty"`
	KeepAlive string         `json:"keep_alive,omitempty"`
	Options   map[string]any `json:"options,omitempty"`
}

// GenerateChunk is one NDJSON object of a generate response. Durations are nanoseconds.
type GenerateChunk struct {
	Model              string `json:"model"`
	Response           string `json:"response"`
	Done               bool   `json:"done"`
	DoneReason         string `json:"done_reason,omitempty"`
	TotalDuration      int64  `json:"total_duration,omitempty"`
	LoadDuration       int64  `json:"load_duration,omitempty"`
	PromptEvalCount    int    `json:"prompt_eval_count,omitempty"`
	PromptEvalDuration int64  `json:"prompt_eval_duration,omitempty"`
	EvalCount          int    `json:"eval_count,omitempty"`
	EvalDuration       int64  `json:"eval_duration,omitempty"`
	Error              string `json:"error,omitempty"`
}

// ErrIncomplete reports a stream that ended without a done:true object.
var ErrIncomplete = errors.New("stream ended before done")

// Generate sends req and calls onChunk for every NDJSON object as it arrives, with the
// time it was read. It returns the final (done) chunk. An {"error":...} object in the stream
// or an HTTP error status is returned as an error.
func (c *Client) Generate(ctx context.Context, req GenerateRequest, onChunk func(GenerateChunk, time.Time)) (*GenerateChunk, error) {
	endpoint := c.BaseURL + "/api/generate"
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, jsonBody(req))
	if err != nil {
		return nil, err
	}
	hreq.Header.Set("Content-Type", "application/json")
	resp, err := c.HTTP.Do(hreq)
	if err != nil {
		return nil, fmt.Errorf("POST %s: %w", endpoint, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return nil, statusError(endpoint, resp.StatusCode, body)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		at := time.Now()
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var chunk GenerateChunk
		if err := json.Unmarshal(line, &chunk); err != nil {
			return nil, fmt.Errorf("POST %s: malformed JSON in stream: %q", endpoint, truncate(string(line), 120))
		}
		if chunk.Error != "" {
			return nil, &StatusError{Endpoint: endpoint, StatusCode: resp.StatusCode, Message: chunk.Error}
		}
		if onChunk != nil {
			onChunk(chunk, at)
		}
		if chunk.Done {
			return &chunk, nil
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("POST %s: reading stream: %w", endpoint, err)
	}
	return nil, fmt.Errorf("POST %s: %w", endpoint, ErrIncomplete)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// RunningModel is one entry of GET /api/ps: a loaded model and how much of it is in VRAM.
type RunningModel struct {
	Name          string `json:"name"`
	Model         string `json:"model"`
	Size          int64  `json:"size"`
	SizeVRAM      int64  `json:"size_vram"`
	ContextLength int    `json:"context_length"`
}

// PS lists the loaded models (GET /api/ps).
func (c *Client) PS(ctx context.Context) ([]RunningModel, error) {
	var out struct {
		Models []RunningModel `json:"models"`
	}
	if err := c.do(ctx, http.MethodGet, "/api/ps", nil, &out); err != nil {
		return nil, err
	}
	return out.Models, nil
}
