package sse

import (
	"errors"
	"io"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// chunks is a reader that returns one chunk per Read, as a network stream does.
type chunks struct {
	parts []string
	err   error // returned after the last part (io.EOF when nil)
	reads int
}

func (c *chunks) Read(p []byte) (int, error) {
	c.reads++
	if len(c.parts) == 0 {
		if c.err != nil {
			return 0, c.err
		}
		return 0, io.EOF
	}
	n := copy(p, c.parts[0])
	c.parts[0] = c.parts[0][n:]
	if c.parts[0] == "" {
		c.parts = c.parts[1:]
	}
	return n, nil
}

type ev struct{ Type, Data, ID string }

func readAll(t *testing.T, r io.Reader) ([]ev, error) {
	t.Helper()
	rd := NewReader(r)
	var out []ev
	for {
		e, err := rd.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, ev{e.Type, e.Data, e.ID})
	}
}

func TestEvents(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []ev
	}{
		{"two events", "data: a\n\ndata: b\n\n", []ev{{"", "a", ""}, {"", "b", ""}}},
		{"crlf", "data: a\r\n\r\ndata: b\r\n\r\n", []ev{{"", "a", ""}, {"", "b", ""}}},
		{"lone cr", "data: a\r\rdata: b\r\r", []ev{{"", "a", ""}, {"", "b", ""}}},
		{"mixed endings", "data: a\r\ndata: b\rdata: c\n\r\n", []ev{{"", "a\nb\nc", ""}}},
		{"multi-line data", "data: {\"a\":\ndata: 1}\n\n", []ev{{"", "{\"a\":\n1}", ""}}},
		{"no space after colon", "data:x\n\n", []ev{{"", "x", ""}}},
		{"only one space stripped", "data:  x \n\n", []ev{{"", " x ", ""}}},
		{"field without colon", "data\n\n", []ev{{"", "", ""}}},
		{"empty data line then data", "data:\ndata: b\n\n", []ev{{"", "\nb", ""}}},
		{"comments ignored", ": keep-alive\n\n:x\ndata: a\n: mid\n\n", []ev{{"", "a", ""}}},
		{"blank lines without data dispatch nothing", "\n\n\nevent: ping\n\ndata: a\n\n", []ev{{"", "a", ""}}},
		{"event type", "event: error\ndata: {\"error\":{\"message\":\"boom\"}}\n\n", []ev{{"error", "{\"error\":{\"message\":\"boom\"}}", ""}}},
		{"type resets after dispatch", "event: x\ndata: 1\n\ndata: 2\n\n", []ev{{"x", "1", ""}, {"", "2", ""}}},
		{"id persists", "id: 7\ndata: 1\n\ndata: 2\n\nid\ndata: 3\n\n", []ev{{"", "1", "7"}, {"", "2", "7"}, {"", "3", ""}}},
		{"id with NUL ignored", "id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n", []ev{{"", "a", "1"}, {"", "b", "1"}}},
		{"retry and unknown fields ignored", "retry: 10\nfoo: bar\ndata: a\n\n", []ev{{"", "a", ""}}},
		{"bom", "\xef\xbb\xbfdata: a\n\n", []ev{{"", "a", ""}}},
		{"missing final blank line", "data: a\n\ndata: [DONE]\n", []ev{{"", "a", ""}, {"", "[DONE]", ""}}},
		{"missing final newline", "data: a\n\ndata: [DONE]", []ev{{"", "a", ""}, {"", "[DONE]", ""}}},
		{"trailing comment only", "data: a\n\n: bye", []ev{{"", "a", ""}}},
		{"empty stream", "", nil},
		{"error object mid-stream", "data: {\"choices\":[{\"text\":\"x\"}]}\n\ndata: {\"error\":{\"message\":\"oom\",\"code\":500}}\n\ndata: [DONE]\n\n",
			[]ev{{"", `{"choices":[{"text":"x"}]}`, ""}, {"", `{"error":{"message":"oom","code":500}}`, ""}, {"", "[DONE]", ""}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The same events whatever the chunking: whole, one byte per read, and every
			// two-way split (mid-line, mid-terminator, between "\r" and "\n").
			readers := map[string]io.Reader{
				"whole":      strings.NewReader(tc.in),
				"byte":       iotest.OneByteReader(strings.NewReader(tc.in)),
				"data-eof":   iotest.DataErrReader(strings.NewReader(tc.in)),
				"half-reads": iotest.HalfReader(strings.NewReader(tc.in)),
			}
			for i := 1; i < len(tc.in); i++ {
				readers["split@"+strconv.Itoa(i)] = &chunks{parts: []string{tc.in[:i], tc.in[i:]}}
			}
			for name, r := range readers {
				got, err := readAll(t, r)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if !reflect.DeepEqual(got, tc.want) {
					t.Fatalf("%s: got %q, want %q", name, got, tc.want)
				}
			}
		})
	}
}

func TestDone(t *testing.T) {
	if !(Event{Data: "[DONE]"}).Done() || (Event{Data: "[DONE] "}).Done() || (Event{Data: `{"x":1}`}).Done() {
		t.Fatal("Done must match exactly data: [DONE]")
	}
}

// An event is stamped with the arrival of the read that completed it, and is returned
// without waiting for the next read.
func TestArrivalTimes(t *testing.T) {
	base := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	src := &chunks{parts: []string{"data: a\n", "\ndata: b\n\ndata: c\n", "\n", ": keep-alive\n\n", "data: [DONE]\n\n"}}
	rd := NewReader(src)
	rd.Now = func() time.Time { return base.Add(time.Duration(src.reads) * time.Second) }
	want := []struct {
		data  string
		at    int
		reads int
	}{
		{"a", 2, 2}, // completed by the second read
		{"b", 2, 2}, // arrived in the same read: no further read needed
		{"c", 3, 3},
		{"[DONE]", 5, 5},
	}
	for _, w := range want {
		e, err := rd.Next()
		if err != nil {
			t.Fatal(err)
		}
		if e.Data != w.data || !e.At.Equal(base.Add(time.Duration(w.at)*time.Second)) || src.reads != w.reads {
			t.Fatalf("event %q at +%s after %d reads, want %q at +%ds after %d", e.Data, e.At.Sub(base), src.reads, w.data, w.at, w.reads)
		}
	}
	if _, err := rd.Next(); err != io.EOF {
		t.Fatalf("want io.EOF, got %v", err)
	}
}

// A stream that breaks is an error, not a short stream: the pending event is dropped.
func TestReadErrorDropsPendingEvent(t *testing.T) {
	broken := errors.New("connection reset")
	got, err := readAll(t, &chunks{parts: []string{"data: a\n\n", "data: {\"partial\":"}, err: broken})
	if !errors.Is(err, broken) {
		t.Fatalf("want the read error, got %v", err)
	}
	if !reflect.DeepEqual(got, []ev{{"", "a", ""}}) {
		t.Fatalf("events before the error: %q", got)
	}
}

func TestLineTooLong(t *testing.T) {
	r := io.MultiReader(strings.NewReader("data: "), &repeat{b: 'x', n: MaxLine + 10})
	if _, err := NewReader(r).Next(); !errors.Is(err, ErrLineTooLong) {
		t.Fatalf("want ErrLineTooLong, got %v", err)
	}
}

type repeat struct {
	b byte
	n int
}

func (r *repeat) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.EOF
	}
	n := min(len(p), r.n)
	for i := range p[:n] {
		p[i] = r.b
	}
	r.n -= n
	return n, nil
}

// Chunking never changes the events.
func FuzzChunking(f *testing.F) {
	f.Add("data: a\r\n\r\ndata: b\rdata: c\r\r: x\nevent: e\ndata: [DONE]", uint8(3))
	f.Add("\xef\xbb\xbfdata:1\n\nid: 2\ndata\n\n", uint8(1))
	f.Fuzz(func(t *testing.T, in string, step uint8) {
		whole, err1 := readAll(t, strings.NewReader(in))
		var parts []string
		n := int(step%16) + 1
		for s := in; s != ""; {
			k := min(n, len(s))
			parts = append(parts, s[:k])
			s = s[k:]
		}
		split, err2 := readAll(t, &chunks{parts: parts})
		if (err1 == nil) != (err2 == nil) || !reflect.DeepEqual(whole, split) {
			t.Fatalf("whole %q (%v) != chunked by %d %q (%v)", whole, err1, n, split, err2)
		}
	})
}

// With RawData the events carry their bytes only (Raw, the same as Data would be), and the
// [DONE] sentinel is still seen.
func TestRawData(t *testing.T) {
	in := "data: {\"a\":1}\ndata: x\n\nevent: error\ndata: oops\n\ndata: [DONE]\n\n"
	plain, raw := NewReader(strings.NewReader(in)), NewReader(iotest.OneByteReader(strings.NewReader(in)))
	raw.RawData = true
	for i := 0; ; i++ {
		p, perr := plain.Next()
		r, rerr := raw.Next()
		if perr != rerr {
			t.Fatalf("event %d: errors %v and %v", i, perr, rerr)
		}
		if perr == io.EOF {
			break
		}
		if r.Data != "" || string(r.Raw) != p.Data || r.Type != p.Type || r.Done() != p.Done() {
			t.Errorf("event %d: raw %+v, plain %+v", i, r, p)
		}
		if i == 2 && !r.Done() {
			t.Error("[DONE] not seen with RawData")
		}
	}
}
