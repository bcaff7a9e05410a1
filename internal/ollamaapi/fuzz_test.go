package ollamaapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// maxStreamLine is the longest NDJSON line Generate reads (its scanner's buffer, newline
// included); a longer one is an error, not unbounded memory.
const maxStreamLine = 1 << 20

// spaces pads the first line of a body up to the stream's line limit.
var spaces = bytes.Repeat([]byte{' '}, maxStreamLine+256)

// roundTrip answers every request with status and pad spaces followed by body, without a
// network.
type roundTrip struct {
	status int
	pad    int
	body   []byte
}

func (rt roundTrip) RoundTrip(req *http.Request) (*http.Response, error) {
	return &http.Response{
		StatusCode: rt.status, Status: http.StatusText(rt.status), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:  http.Header{"Content-Type": {"application/x-ndjson"}},
		Body:    io.NopCloser(io.MultiReader(bytes.NewReader(spaces[:rt.pad]), bytes.NewReader(rt.body))),
		Request: req,
	}, nil
}

// FuzzGenerateStream feeds /api/generate response bodies to Generate and checks it against a
// line-by-line model of the NDJSON stream: blank lines skipped, every object handed to onChunk
// in order and nothing after the done:true one (which is returned), an {"error":...} object or
// an HTTP error status a *StatusError with that message, a line that is not JSON a one-line
// "malformed JSON" error, a line over 1 MiB an error rather than unbounded memory, and a stream
// without done:true ErrIncomplete. Never a panic. status selects an HTTP error status when odd;
// huge in 512..1023 pads the body with a line of about 1 MiB of spaces, on both sides of the
// limit. The seed corpus is testdata/fuzz/FuzzGenerateStream.
func FuzzGenerateStream(f *testing.F) {
	f.Add([]byte(`{"model":"m","response":"a","done":false}`+"\n"+
		`{"model":"m","response":"","done":true,"done_reason":"length","eval_count":2,"eval_duration":4000000}`+"\n"), uint16(0), uint16(0))
	f.Add([]byte(`{"error":"model requires more system memory (9.1 GiB) than is available (2.0 GiB)"}`), uint16(1), uint16(0))
	f.Add([]byte(`{"model":"m","done":true,"eval_count":1,"eval_duration":1}`), uint16(0), uint16(512+255))
	f.Fuzz(func(t *testing.T, body []byte, status, huge uint16) {
		code := http.StatusOK
		if status%2 == 1 {
			code = 400 + int(status/2)%200
		}
		pad := 0
		if huge>>9 == 1 {
			pad = maxStreamLine - 256 + int(huge&511)
		}
		c := &Client{BaseURL: "http://ollama.invalid", HTTP: &http.Client{Transport: roundTrip{code, pad, body}}}

		var got []GenerateChunk
		var last time.Time
		final, err := c.Generate(context.Background(), GenerateRequest{Model: "m", Stream: true}, func(ch GenerateChunk, at time.Time) {
			if at.Before(last) {
				t.Errorf("chunk times go backwards: %v after %v", at, last)
			}
			last = at
			got = append(got, ch)
		})
		if (final == nil) == (err == nil) {
			t.Fatalf("final %+v and error %v: want exactly one", final, err)
		}

		if code >= 400 {
			var se *StatusError
			if !errors.As(err, &se) || se.StatusCode != code || len(got) != 0 {
				t.Fatalf("HTTP %d: error %v, %d chunks; want a *StatusError and no chunks", code, err, len(got))
			}
			head := append(spaces[:pad:pad], body...)
			head = head[:min(len(head), 64<<10)]
			want := strings.TrimSpace(string(head))
			var e struct {
				Error string `json:"error"`
			}
			if json.Unmarshal(head, &e) == nil && e.Error != "" {
				want = e.Error
			}
			if se.Message != want {
				t.Fatalf("HTTP %d: message %q, want %q", code, se.Message, want)
			}
			return
		}

		// The model: lines as bufio.Scanner splits them, each read in turn.
		var want []GenerateChunk
		var wantErr string
		var wantFinal *GenerateChunk
		// The padding only lengthens the first line: it is all spaces, which TrimSpace drops.
		rawLines := ndjsonLines(body)
		if pad > 0 && len(rawLines) == 0 {
			rawLines = [][]byte{nil}
		}
	lines:
		for i, raw := range rawLines {
			if n := len(raw); n >= maxStreamLine || i == 0 && n+pad >= maxStreamLine {
				wantErr = "reading stream"
				break
			}
			line := bytes.TrimSpace(bytes.TrimSuffix(raw, []byte("\r")))
			if len(line) == 0 {
				continue
			}
			var ch GenerateChunk
			switch {
			case json.Unmarshal(line, &ch) != nil:
				wantErr = "malformed JSON in stream"
				break lines
			case ch.Error != "":
				wantErr = "error object"
				var se *StatusError
				if !errors.As(err, &se) || se.Message != ch.Error || se.StatusCode != code {
					t.Fatalf("stream with %q: error %v, want a *StatusError with that message", line, err)
				}
				break lines
			}
			want = append(want, ch)
			if ch.Done {
				wantFinal = &ch
				break
			}
		}
		if len(got) != len(want) {
			t.Fatalf("%d chunks, want %d (error %v)", len(got), len(want), err)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("chunk %d: %+v, want %+v", i, got[i], want[i])
			}
		}
		switch {
		case wantFinal != nil:
			if err != nil || *final != *wantFinal {
				t.Fatalf("final %+v, error %v; want %+v", final, err, *wantFinal)
			}
		case wantErr == "error object":
		case wantErr != "":
			if err == nil || !strings.Contains(err.Error(), wantErr) || strings.ContainsAny(err.Error(), "\r\n") {
				t.Fatalf("error %v, want a one-line error containing %q", err, wantErr)
			}
			if wantErr == "reading stream" && !errors.Is(err, bufio.ErrTooLong) {
				t.Fatalf("error %v, want bufio.ErrTooLong", err)
			}
		default:
			if !errors.Is(err, ErrIncomplete) {
				t.Fatalf("stream without done: error %v, want ErrIncomplete", err)
			}
		}
	})
}

// ndjsonLines splits like bufio.ScanLines but keeps a line's "\r", whose byte counts
// towards the scanner's limit.
func ndjsonLines(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			out = append(out, b)
			break
		}
		out = append(out, b[:i])
		b = b[i+1:]
	}
	return out
}
