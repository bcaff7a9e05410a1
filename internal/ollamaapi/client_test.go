package ollamaapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// streamServer answers /api/generate with the given NDJSON lines, flushing each one, as
// Ollama does; status is the HTTP status.
func streamServer(t *testing.T, status int, lines ...string) *Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.WriteHeader(status)
		for _, l := range lines {
			fmt.Fprintln(w, l)
			w.(http.Flusher).Flush()
		}
	}))
	t.Cleanup(srv.Close)
	return New(srv.URL)
}

func TestGenerateStreamsChunksAndFinal(t *testing.T) {
	c := streamServer(t, 200,
		`{"model":"m","response":"a","done":false}`,
		`{"model":"m","response":"b","done":false}`,
		`{"model":"m","response":"","done":true,"done_reason":"length","eval_count":2,"eval_duration":4000000,"prompt_eval_count":5,"prompt_eval_duration":1000000,"load_duration":7}`)
	var got []string
	var last time.Time
	final, err := c.Generate(context.Background(), GenerateRequest{Model: "m", Stream: true}, func(ch GenerateChunk, at time.Time) {
		if at.Before(last) {
			t.Error("chunk timestamps go backwards")
		}
		last = at
		got = append(got, ch.Response)
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, "|") != "a|b|" || final.EvalCount != 2 || final.EvalDuration != 4000000 || final.DoneReason != "length" {
		t.Fatalf("chunks %q final %+v", got, final)
	}
}

func TestGenerateFailures(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		lines  []string
		check  func(error) bool
		want   string
	}{
		{"http 500 with error body", 500, []string{`{"error":"model requires more system memory (9.1 GiB) than is available (2.0 GiB)"}`},
			func(err error) bool { var se *StatusError; return errors.As(err, &se) && se.StatusCode == 500 }, "more system memory"},
		{"http 404 not json", 404, []string{`404 page not found`},
			func(err error) bool { var se *StatusError; return errors.As(err, &se) && se.StatusCode == 404 }, "404 page not found"},
		{"error object mid-stream", 200, []string{`{"response":"a","done":false}`, `{"error":"llama runner process has terminated: signal: killed"}`},
			func(err error) bool { var se *StatusError; return errors.As(err, &se) }, "llama runner process has terminated"},
		{"garbage line", 200, []string{`{"response":"a","done":false}`, `<html>oops</html>`},
			func(err error) bool { return err != nil }, "malformed JSON in stream"},
		{"stream ends early", 200, []string{`{"response":"a","done":false}`},
			func(err error) bool { return errors.Is(err, ErrIncomplete) }, "stream ended before done"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := streamServer(t, tc.status, tc.lines...)
			_, err := c.Generate(context.Background(), GenerateRequest{Model: "m", Stream: true}, nil)
			if err == nil || !tc.check(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is not one line: %q", err)
			}
		})
	}
}

func TestGenerateSendsOptionsInsideOptions(t *testing.T) {
	var body string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		body = string(raw)
		fmt.Fprintln(w, `{"done":true,"eval_count":1,"eval_duration":1}`)
	}))
	defer srv.Close()
	_, err := New(srv.URL).Generate(context.Background(), GenerateRequest{Model: "m", Options: map[string]any{"num_gpu": 7, "num_predict": 64}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(body, `"options":{"num_gpu":7,"num_predict":64}`) || strings.Contains(body, `"num_gpu":7,"model"`) {
		t.Fatalf("request body %s", body)
	}
}

func TestBlockCount(t *testing.T) {
	s := &ShowResponse{ModelInfo: map[string]any{"general.architecture": "llama", "llama.block_count": float64(32)}}
	if n, ok := s.BlockCount(); !ok || n != 32 {
		t.Fatalf("%d %v", n, ok)
	}
	if _, ok := (&ShowResponse{}).BlockCount(); ok {
		t.Fatal("empty model_info must not give a block count")
	}
}
