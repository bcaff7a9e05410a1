package llamafake

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"strings"
)

// Exchange is one request/response recorded from a real llama-server, in the format of
// ../testdata/*.json and ../testdata/real/*.json.
type Exchange struct {
	Source  string `json:"source"`
	Request struct {
		Method string          `json:"method"`
		Path   string          `json:"path"`
		Body   json.RawMessage `json:"body,omitempty"`
	} `json:"request"`
	Response struct {
		Status      int    `json:"status"`
		ContentType string `json:"content_type"`
		Body        string `json:"body"`
	} `json:"response"`
}

// ReadExchange reads one recorded exchange.
func ReadExchange(path string) (Exchange, error) {
	var e Exchange
	b, err := os.ReadFile(path)
	if err != nil {
		return e, err
	}
	if err := json.Unmarshal(b, &e); err != nil {
		return e, fmt.Errorf("%s: %w", path, err)
	}
	return e, nil
}

// Replay is what a replaying fake answers: the recorded 503 of /health (for every request)
// while "loading", the recorded 200 of /health once loaded, and the recorded completion for
// every POST /completion (the warm-up's too). Log is printed as the model loader's output;
// nil: the fake's own loader lines (per Options.CPUBuild).
type Replay struct {
	Loading, Ready, Completion Exchange
	Log                        []byte
}

// LoadReplay reads the exchanges prefix+"health_loading.json", prefix+"health_ready.json" and
// prefix+"completion_stream.json", and the loader log prefix+"server.log" when there is one
// (e.g. prefix "testdata/real/h100_").
func LoadReplay(prefix string) (*Replay, error) {
	r := &Replay{}
	var err error
	for _, f := range []struct {
		name string
		into *Exchange
	}{{"health_loading.json", &r.Loading}, {"health_ready.json", &r.Ready}, {"completion_stream.json", &r.Completion}} {
		if *f.into, err = ReadExchange(prefix + f.name); err != nil {
			return nil, err
		}
	}
	if r.Log, err = os.ReadFile(prefix + "server.log"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return r, nil
}

// writeRecorded writes a recorded response; a server-sent event stream event by event, each
// flushed, as the server sends them.
func writeRecorded(w http.ResponseWriter, e Exchange) int {
	w.Header().Set("Content-Type", e.Response.ContentType)
	stream := strings.HasPrefix(e.Response.ContentType, "text/event-stream")
	if stream {
		w.Header().Set("Connection", "close")
	}
	w.WriteHeader(e.Response.Status)
	f, _ := w.(http.Flusher)
	if !stream || f == nil {
		io.WriteString(w, e.Response.Body)
		return e.Response.Status
	}
	rest := e.Response.Body
	for rest != "" {
		ev, after, found := strings.Cut(rest, "\n\n")
		if found {
			ev += "\n\n"
		}
		if _, err := io.WriteString(w, ev); err != nil {
			break
		}
		f.Flush()
		rest = after
	}
	return e.Response.Status
}

// replay answers r from the recorded exchanges.
func (s *Server) replay(w http.ResponseWriter, r *http.Request) int {
	rp := s.opt.Replay
	switch {
	case !s.loaded() || s.opt.Mode == "never-ready":
		return writeRecorded(w, rp.Loading)
	case r.URL.Path == "/health":
		return writeRecorded(w, rp.Ready)
	case r.URL.Path == "/completion" && r.Method == http.MethodPost:
		body, _ := io.ReadAll(r.Body)
		s.opt.Record(map[string]any{"request": json.RawMessage(body)})
		return writeRecorded(w, rp.Completion)
	}
	return writeError(w, 404, "File Not Found", "not_found_error")
}
