package llamacpp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fuze-ai/fuze/internal/measure"
	"github.com/fuze-ai/fuze/internal/server"
	"github.com/fuze-ai/fuze/internal/stack/llamacpp/llamafake"
)

// transcript is one recorded exchange with a real llama-server (testdata/README.md).
type transcript struct {
	Source  string `json:"source"`
	Request struct {
		Method string          `json:"method"`
		Path   string          `json:"path"`
		Body   json.RawMessage `json:"body"`
	} `json:"request"`
	Response struct {
		Status      int    `json:"status"`
		ContentType string `json:"content_type"`
		Body        string `json:"body"`
	} `json:"response"`
}

func loadTranscript(t *testing.T, name string) transcript {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var tr transcript
	if err := json.Unmarshal(b, &tr); err != nil {
		t.Fatal(err)
	}
	return tr
}

// replay serves a transcript's response (whatever the request) and keeps the request body.
func replay(t *testing.T, tr transcript, got *[]byte) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if got != nil {
			*got, _ = io.ReadAll(r.Body)
		}
		w.Header().Set("Content-Type", tr.Response.ContentType)
		w.WriteHeader(tr.Response.Status)
		io.WriteString(w, tr.Response.Body)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func newSample() *measure.Sample {
	return &measure.Sample{Outcome: measure.OK, Settings: map[string]string{}}
}

// The recorded stream gives a sample whose decode rate is exactly the server's own.
func TestRecordedStream(t *testing.T) {
	tr := loadTranscript(t, "completion_stream.json")
	var sent []byte
	addr := replay(t, tr, &sent)
	var req CompletionRequest
	json.Unmarshal(tr.Request.Body, &req)
	chunks := 0
	final, raw, err := completion(context.Background(), addr, req, func(c *Chunk, _ time.Time) { chunks++ })
	if err != nil {
		t.Fatal(err)
	}
	if string(sent) != compactJSON(t, tr.Request.Body) {
		t.Errorf("request body\n%s\nwant (as recorded)\n%s", sent, compactJSON(t, tr.Request.Body))
	}
	if chunks != strings.Count(tr.Response.Body, "data: ") || !final.Stop || final.StopType != "limit" || len(raw) == 0 {
		t.Errorf("%d chunks, final %+v", chunks, final)
	}
	s := newSample()
	fillFromFinal(s, final, req.NPredict)
	tm := final.Timings
	if s.Outcome != measure.OK || s.ServerOutputTokens != req.NPredict || s.ServerPromptTokens != tm.PromptN || len(s.Notes) != 0 {
		t.Fatalf("%+v", s)
	}
	want := float64(tm.PredictedN) / tm.PredictedMS * 1000
	if got := measure.Derive(s).ServerDecodeTPS; math.Abs(got-want) > 1e-6*want || math.Abs(got-tm.PredictedPerSecond) > 1e-6*want {
		t.Errorf("decode %.6f tok/s, server timings say %.6f (predicted_per_second %.6f)", got, want, tm.PredictedPerSecond)
	}
	if got := s.PrefillTokensPerSec(); math.Abs(got-tm.PromptPerSecond) > 1e-6*got {
		t.Errorf("prefill %.3f, server %.3f", got, tm.PromptPerSecond)
	}

	// The same stream without timings is a malformed answer with its reason.
	noTimings := tr
	i := strings.LastIndex(tr.Response.Body, `,"timings":{`)
	noTimings.Response.Body = tr.Response.Body[:i] + "}\n\n"
	final, _, err = completion(context.Background(), replay(t, noTimings, nil), req, nil)
	if err != nil {
		t.Fatal(err)
	}
	s = newSample()
	fillFromFinal(s, final, req.NPredict)
	if s.Outcome != measure.ErrMalformed || !strings.Contains(s.Error, "no timings") || measure.Derive(s).DecodeTPS != 0 {
		t.Errorf("%s: %s", s.Outcome, s.Error)
	}

	// A stream cut before its final event.
	cut := tr
	cut.Response.Body = tr.Response.Body[:strings.Index(tr.Response.Body, `"stop":true`)-40]
	_, _, err = completion(context.Background(), replay(t, cut, nil), req, nil)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("cut stream: %v", err)
	}
	// An error event inside the stream (how the server reports a failure after it started).
	ev := tr
	ev.Response.Body = "error: {\"code\":500,\"message\":\"input is too large to process. increase the physical batch size\",\"type\":\"server_error\"}\n\n"
	_, _, err = completion(context.Background(), replay(t, ev, nil), req, nil)
	var ae *APIError
	if !errors.As(err, &ae) || !strings.Contains(ae.Message, "input is too large") {
		t.Errorf("error event: %v", err)
	}
}

func compactJSON(t *testing.T, b []byte) string {
	var v any
	json.Unmarshal(b, &v)
	out, _ := json.Marshal(v)
	// encoding/json sorts map keys; compare in the order CompletionRequest marshals.
	var req CompletionRequest
	json.Unmarshal(out, &req)
	out, _ = json.Marshal(req)
	return string(out)
}

func TestRecordedErrors(t *testing.T) {
	tr := loadTranscript(t, "health_loading.json")
	err := health(context.Background(), replay(t, tr, nil))
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 503 || ae.Code != 503 || ae.Message != "Loading model" || ae.Type != "unavailable_error" {
		t.Errorf("loading: %v", err)
	}
	if err := health(context.Background(), replay(t, loadTranscript(t, "health_ready.json"), nil)); err != nil {
		t.Errorf("ready: %v", err)
	}
	tr = loadTranscript(t, "completion_no_prompt.json")
	_, _, err = completion(context.Background(), replay(t, tr, nil), CompletionRequest{}, nil)
	if !errors.As(err, &ae) || ae.Status != 400 || !strings.Contains(ae.Message, "key 'prompt' not found") {
		t.Errorf("no prompt: %v", err)
	}
	s := newSample()
	s.SetFailure((&Driver{}).classify(nil, err))
	if s.Outcome != measure.ErrHTTP || !strings.Contains(s.Error, "HTTP 400") {
		t.Errorf("%s: %s", s.Outcome, s.Error)
	}
}

// The fake answers as the recorded server did: the same status and body for /health while
// loading and once ready, the same error for a request without a prompt, and streamed events
// with the same fields.
func TestFakeMatchesTranscripts(t *testing.T) {
	fake := llamafake.NewServer(llamafake.Options{ModelPath: "/m/tiny.gguf", CtxSize: 256, NGL: 99, EOSAfter: 3})
	srv := httptest.NewServer(fake)
	defer srv.Close()
	do := func(method, path, body string) (int, string, string) {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
	}
	check := func(name string, status int, ct, body string) {
		tr := loadTranscript(t, name)
		if status != tr.Response.Status || ct != tr.Response.ContentType || body != tr.Response.Body {
			t.Errorf("%s: fake %d %q %s\nrecorded %d %q %s", name, status, ct, body, tr.Response.Status, tr.Response.ContentType, tr.Response.Body)
		}
	}
	st, ct, body := do("GET", "/health", "")
	check("health_loading.json", st, ct, body)
	fake.Load()
	st, ct, body = do("GET", "/health", "")
	check("health_ready.json", st, ct, body)
	tr := loadTranscript(t, "completion_no_prompt.json")
	st, ct, body = do("POST", "/completion", string(tr.Request.Body))
	check("completion_no_prompt.json", st, ct, body)

	tr = loadTranscript(t, "completion_stream.json")
	st, ct, body = do("POST", "/completion", string(tr.Request.Body))
	if st != 200 || ct != tr.Response.ContentType {
		t.Fatalf("%d %q", st, ct)
	}
	fakeEvents, realEvents := events(t, body), events(t, tr.Response.Body)
	if len(fakeEvents) != 9 { // 8 tokens (ignore_eos) + the final event
		t.Errorf("%d events", len(fakeEvents))
	}
	if got, want := keys(fakeEvents[0]), keys(realEvents[0]); got != want {
		t.Errorf("partial event keys %s, recorded %s", got, want)
	}
	last, realLast := fakeEvents[len(fakeEvents)-1], realEvents[len(realEvents)-1]
	for _, k := range []string{"", "timings", "generation_settings"} {
		f, r := last, realLast
		if k != "" {
			f, r = last[k].(map[string]any), realLast[k].(map[string]any)
		}
		if got, want := keys(f), keys(r); got != want {
			t.Errorf("final event %s keys\n%s\nrecorded\n%s", k, got, want)
		}
	}
	for _, k := range []string{"stop", "stop_type", "tokens_predicted", "content", "model", "id_slot"} {
		if last[k] != realLast[k] {
			t.Errorf("final %s: fake %v, recorded %v", k, last[k], realLast[k])
		}
	}
	gs, rgs := last["generation_settings"].(map[string]any), realLast["generation_settings"].(map[string]any)
	for _, k := range []string{"n_predict", "seed", "temperature", "ignore_eos", "stream", "max_tokens"} {
		if gs[k] != rgs[k] {
			t.Errorf("generation_settings.%s: fake %v, recorded %v", k, gs[k], rgs[k])
		}
	}
	// Without ignore_eos the fake model stops early, with stop_type eos.
	_, _, body = do("POST", "/completion", `{"prompt":"hi","n_predict":8,"stream":true}`)
	ev := events(t, body)
	if l := ev[len(ev)-1]; l["stop_type"] != "eos" || l["tokens_predicted"] != 3.0 {
		t.Errorf("without ignore_eos: %v", l)
	}
	// The prompt cache: the same prompt again evaluates one token unless cache_prompt is false.
	for _, tc := range []struct {
		cache string
		want  float64
	}{{"true", 1}, {"false", 3}} {
		_, _, body = do("POST", "/completion", `{"prompt":"hi there","n_predict":1,"stream":true,"cache_prompt":`+tc.cache+`}`)
		ev := events(t, body)
		if n := ev[len(ev)-1]["timings"].(map[string]any)["prompt_n"]; n != tc.want {
			t.Errorf("cache_prompt %s: prompt_n %v, want %v", tc.cache, n, tc.want)
		}
	}
}

func events(t *testing.T, body string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, part := range strings.Split(body, "\n\n") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		var m map[string]any
		d := json.NewDecoder(bytes.NewReader([]byte(strings.TrimPrefix(part, "data: "))))
		if err := d.Decode(&m); err != nil {
			t.Fatalf("event %q: %v", part, err)
		}
		out = append(out, m)
	}
	return out
}

func keys(m map[string]any) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return strings.Join(ks, ",")
}

// A streamed answer ends with the server closing the connection. With llama-server's
// SO_REUSEPORT listener, the TIME_WAIT socket this leaves on its port makes a plain test bind
// fail for a minute although the next llama-server can bind: the driver's port check must not
// report such a port as taken (found against a real llama-server: each candidate waited a
// minute), and the driver's own connections must leave no TIME_WAIT on the port at all.
func TestPortReuseAfterServerClosedConnections(t *testing.T) {
	for _, driverClient := range []bool{false, true} {
		ln, err := llamafake.Listen("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		fake := llamafake.NewServer(llamafake.Options{ModelPath: "/m/x.gguf", CtxSize: 256})
		fake.Load()
		hs := &http.Server{Handler: fake}
		go hs.Serve(ln)
		body := `{"prompt":"hi","n_predict":2,"stream":true}`
		if driverClient {
			if _, _, err := completion(context.Background(), addr, CompletionRequest{Prompt: "hi", NPredict: 2, Stream: true}, nil); err != nil {
				t.Fatal(err)
			}
		} else {
			// An ordinary client that reads until the server closes the connection.
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(c, "POST /completion HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", addr, len(body), body)
			if b, _ := io.ReadAll(c); !bytes.Contains(b, []byte(`"stop":true`)) {
				t.Fatalf("answer %q", b)
			}
			c.Close()
		}
		if err := server.CheckPortFree(addr); err == nil || !strings.Contains(err.Error(), "already in use by pid") {
			t.Errorf("a listening server: %v", err)
		}
		hs.Close()
		// Closed connections may leave SO_REUSEPORT TIME_WAIT sockets on the port: the port is
		// still free for the next server.
		if err := server.CheckPortFree(addr); err != nil {
			t.Errorf("driver client %v: port of a stopped server: %v", driverClient, err)
		}
		// The next llama-server binds.
		ln2, err := llamafake.Listen(addr)
		if err != nil {
			t.Errorf("driver client %v: rebind: %v", driverClient, err)
		} else {
			ln2.Close()
		}
	}
}

// fillFromFinal records what fromFinal reads from a final answer on s, as the engine does.
func fillFromFinal(s *measure.Sample, final *Chunk, numPredict int) {
	sc, err := fromFinal(final, numPredict)
	s.SetServer(sc)
	s.Notes = append(s.Notes, sc.Notes...)
	if err != nil {
		s.SetFailure(err)
	}
}

// llama-server closes connections it had kept alive on its own; a POST sent on one it has just
// closed fails without Go retrying it (an H200 serving run lost 4 of 192 requests so). The
// server here answers with keep-alive and then, as soon as the next request arrives on the same
// connection, closes it unanswered: every request of the driver must still succeed, each on a
// connection of its own.
func TestNoRequestOnAKeptAliveConnection(t *testing.T) {
	tr := loadTranscript(t, "completion_stream.json")
	var req CompletionRequest
	json.Unmarshal(tr.Request.Body, &req)
	var mu sync.Mutex
	conns, reused := 0, 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		c, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		mu.Lock()
		conns++
		mu.Unlock()
		fmt.Fprintf(rw, "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n%s", tr.Response.ContentType, len(tr.Response.Body), tr.Response.Body)
		rw.Flush()
		if _, err := rw.Reader.Peek(1); err == nil {
			mu.Lock()
			reused++
			mu.Unlock()
		}
		c.Close()
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	const streams, perStream = 4, 5
	var wg sync.WaitGroup
	errs := make(chan error, streams*perStream)
	for range streams {
		wg.Go(func() {
			for range perStream {
				if _, _, err := completion(context.Background(), addr, req, nil); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("request failed: %v", err)
	}
	if conns != streams*perStream || reused != 0 {
		t.Errorf("%d requests on %d connections, %d sent on a connection kept alive", streams*perStream, conns, reused)
	}
}
