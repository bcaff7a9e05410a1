package triton

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/fuze-ai/fuze/internal/sse"
)

// client speaks Triton's HTTP/REST protocol (KServe v2 plus Triton's extensions) to one
// server.
type client struct {
	addr string // host:port
	hc   *http.Client
}

func (d *Driver) newClient(addr string) *client {
	return &client{addr: addr, hc: &http.Client{Transport: d.transport()}}
}

func (c *client) url(path string) string { return "http://" + c.addr + path }

func modelPath(model string) string { return "/v2/models/" + url.PathEscape(model) }

// StatusError is an HTTP error answer, with the message of Triton's {"error": "..."} body
// when there is one.
type StatusError struct {
	Method  string
	Path    string
	Code    int
	Message string
}

func (e *StatusError) Error() string {
	if e.Message != "" {
		return fmt.Sprintf("%s %s: HTTP %d: %s", e.Method, e.Path, e.Code, e.Message)
	}
	return fmt.Sprintf("%s %s: HTTP %d", e.Method, e.Path, e.Code)
}

func statusError(method, path string, code int, body []byte) *StatusError {
	se := &StatusError{Method: method, Path: path, Code: code}
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		se.Message = e.Error
	} else if s := strings.TrimSpace(string(body)); s != "" {
		se.Message = snippet(s, 200)
	}
	return se
}

// get returns the body of a 200 answer, else a *StatusError or the transport error.
func (c *client) get(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url(path), nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, statusError(http.MethodGet, path, resp.StatusCode, body)
	}
	return body, nil
}

// ServerReady is KServe v2 server readiness: GET /v2/health/ready answers 200 when ready.
func (c *client) ServerReady(ctx context.Context) error {
	_, err := c.get(ctx, "/v2/health/ready")
	return err
}

// ModelReady is KServe v2 model readiness: GET /v2/models/<m>/ready answers 200 when ready.
func (c *client) ModelReady(ctx context.Context, model string) error {
	_, err := c.get(ctx, modelPath(model)+"/ready")
	return err
}

// Tensor is one input or output of the model metadata.
type Tensor struct {
	Name     string  `json:"name"`
	Datatype string  `json:"datatype"`
	Shape    []int64 `json:"shape"`
}

// Metadata is the KServe v2 model metadata (GET /v2/models/<m>).
type Metadata struct {
	Name     string   `json:"name"`
	Versions []string `json:"versions"`
	Platform string   `json:"platform"`
	Inputs   []Tensor `json:"inputs"`
	Outputs  []Tensor `json:"outputs"`
}

// Metadata fetches the model metadata.
func (c *client) Metadata(ctx context.Context, model string) (*Metadata, error) {
	body, err := c.get(ctx, modelPath(model))
	if err != nil {
		return nil, err
	}
	var md Metadata
	if err := json.Unmarshal(body, &md); err != nil {
		return nil, fmt.Errorf("model metadata of %s is not the KServe v2 JSON: %w", model, err)
	}
	return &md, nil
}

// ConfigTensor is one input or output of a model configuration.
type ConfigTensor struct {
	Name     string `json:"name"`
	DataType string `json:"data_type"`
	Optional bool   `json:"optional"`
}

// ModelConfig is the part of Triton's model configuration (GET /v2/models/<m>/config, the
// model configuration extension: model_config.proto as JSON) that fuze uses.
type ModelConfig struct {
	Name         string         `json:"name"`
	Platform     string         `json:"platform"`
	Backend      string         `json:"backend"`
	MaxBatchSize flexInt        `json:"max_batch_size"`
	Input        []ConfigTensor `json:"input"`
	Output       []ConfigTensor `json:"output"`
	Transaction  *struct {
		Decoupled bool `json:"decoupled"`
	} `json:"model_transaction_policy"`
}

// Decoupled reports whether the model may send any number of responses per request
// (streaming LLM backends are).
func (mc *ModelConfig) Decoupled() bool { return mc.Transaction != nil && mc.Transaction.Decoupled }

// Config fetches the model configuration.
func (c *client) Config(ctx context.Context, model string) (*ModelConfig, error) {
	body, err := c.get(ctx, modelPath(model)+"/config")
	if err != nil {
		return nil, err
	}
	var mc ModelConfig
	if err := json.Unmarshal(body, &mc); err != nil {
		return nil, fmt.Errorf("model config of %s is not JSON: %w", model, err)
	}
	return &mc, nil
}

// flexInt decodes a JSON number or a number in a string (protobuf JSON writes 64-bit
// integers as strings).
type flexInt int64

func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		*f = 0
		return nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return err
	}
	*f = flexInt(n)
	return nil
}

// GenerateStream posts body to the generate extension's streaming endpoint
// (POST /v2/models/<m>/generate_stream) and calls onEvent for every server-sent event as it
// arrives. An answer that is not 200 is a *StatusError (Triton answers errors found before
// inference starts as application/json). It returns when the stream ends.
func (c *client) GenerateStream(ctx context.Context, model string, body any, onFirstByte func(time.Time), onEvent func(sse.Event) error) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	path := modelPath(model) + "/generate_stream"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url(path), bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if onFirstByte != nil {
		onFirstByte(time.Now())
	}
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return statusError(http.MethodPost, path, resp.StatusCode, raw)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "text/event-stream") {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return fmt.Errorf("%w: %s answered Content-Type %q, not text/event-stream: %s", errMalformed, path, ct, snippet(string(raw), 200))
	}
	r := sse.NewReader(resp.Body)
	for {
		ev, err := r.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := onEvent(ev); err != nil {
			return err
		}
	}
}

// errMalformed marks answers that are not the documented protocol.
var errMalformed = errors.New("malformed answer")

// NotHTTPError says that an endpoint accepts TCP connections but does not answer HTTP/1.1.
type NotHTTPError struct {
	Addr  string
	Kind  string // "http2" (an HTTP/2 frame: a gRPC port), "closed", "silent", "other"
	First []byte // the first bytes it sent
}

func (e *NotHTTPError) Error() string {
	switch e.Kind {
	case "http2":
		return fmt.Sprintf("%s is not an HTTP/1.1 endpoint: it answered an HTTP request with an HTTP/2 frame (% x), as a gRPC port does — Triton serves gRPC on 8001 and HTTP on 8000 by default", e.Addr, e.First)
	case "closed":
		return fmt.Sprintf("%s is not an HTTP endpoint: it closed the connection without an HTTP answer (a gRPC or other non-HTTP port)", e.Addr)
	case "silent":
		return fmt.Sprintf("%s is not an HTTP endpoint: it accepted the connection but sent no HTTP answer", e.Addr)
	default:
		return fmt.Sprintf("%s is not an HTTP endpoint: it answered with non-HTTP bytes %q", e.Addr, e.First)
	}
}

// probeHTTP sends a minimal HTTP/1.1 request to addr and classifies the first bytes of the
// answer. It returns nil when the peer speaks HTTP/1.x or cannot be reached at all (the
// caller's own error says that better), else a *NotHTTPError.
func probeHTTP(ctx context.Context, addr string, wait time.Duration) error {
	d := net.Dialer{Timeout: wait}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(wait))
	if _, err := io.WriteString(conn, "GET /v2/health/ready HTTP/1.1\r\nHost: "+addr+"\r\nConnection: close\r\n\r\n"); err != nil {
		return &NotHTTPError{Addr: addr, Kind: "closed"}
	}
	buf := make([]byte, 64)
	n, err := io.ReadAtLeast(conn, buf, 9)
	first := buf[:n]
	if n == 0 {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return &NotHTTPError{Addr: addr, Kind: "silent"}
		}
		return &NotHTTPError{Addr: addr, Kind: "closed"}
	}
	if bytes.HasPrefix(first, []byte("HTTP/")) || bytes.HasPrefix([]byte("HTTP/"), first) {
		return nil
	}
	if isHTTP2Frame(first) {
		return &NotHTTPError{Addr: addr, Kind: "http2", First: first[:9]}
	}
	return &NotHTTPError{Addr: addr, Kind: "other", First: first}
}

// isHTTP2Frame reports whether b starts with an HTTP/2 frame header (RFC 9113 §4.1) of a
// connection-level frame a server sends first: SETTINGS (its connection preface, §3.4),
// GOAWAY, WINDOW_UPDATE or PING on stream 0.
func isHTTP2Frame(b []byte) bool {
	if len(b) < 9 {
		return false
	}
	length := int(b[0])<<16 | int(b[1])<<8 | int(b[2])
	typ := b[3]
	stream := (uint32(b[5])<<24 | uint32(b[6])<<16 | uint32(b[7])<<8 | uint32(b[8])) & 0x7fffffff
	switch typ {
	case 0x4, 0x6, 0x7, 0x8:
	default:
		return false
	}
	return stream == 0 && length <= 1<<14
}

func snippet(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
