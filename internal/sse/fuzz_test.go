package sse

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
)

// FuzzReader checks the Reader against a literal transcription of the standard's parsing
// algorithm (§9.2.6, plus the documented leniency at the end of the stream), and that:
// Next never panics and gives no error but io.EOF for an in-memory stream, io.EOF is sticky,
// there are never more events than "data" lines, a read error is returned as it is after a
// prefix of the events, and the read buffer stays proportional to the longest line rather
// than to the stream (bounded memory). The seed corpus is testdata/fuzz/FuzzReader.
func FuzzReader(f *testing.F) {
	f.Add([]byte("data: {\"choices\":[{\"text\":\" ok\"}]}\n\ndata: [DONE]\n\n"))
	f.Add([]byte("\xef\xbb\xbf: ping\r\nid: 1\r\nevent: error\r\ndata: {\"error\":\"x\"}\r\n\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		want, pendingAtEnd := referenceEvents(in)
		dataLines := 0
		for _, l := range splitLines(bytes.TrimPrefix(in, bom)) {
			if name, _ := splitField(l); string(name) == "data" {
				dataLines++
			}
		}

		rd := NewReader(bytes.NewReader(in))
		var got []ev
		for {
			e, err := rd.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("in-memory stream of %d bytes: error %v", len(in), err)
			}
			if e.Done() != (e.Data == "[DONE]") {
				t.Fatalf("Done() = %v for data %q", e.Done(), e.Data)
			}
			got = append(got, ev{e.Type, e.Data, e.ID})
			if len(got) > len(in)+1 {
				t.Fatalf("%d events from %d bytes: not terminating", len(got), len(in))
			}
		}
		for range 2 {
			if _, err := rd.Next(); err != io.EOF {
				t.Fatalf("Next after io.EOF: %v, want io.EOF again", err)
			}
		}
		if len(got) > dataLines {
			t.Fatalf("%d events from %d data lines: %q", len(got), dataLines, got)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("events\n got %q\nwant %q (reference parser)", got, want)
		}
		// Memory: the buffer grows only to hold one partial line, never the stream.
		longest := 0
		for _, l := range splitLines(in) {
			longest = max(longest, len(l))
		}
		if limit := max(4096, 2*(longest+4)); cap(rd.store) > limit {
			t.Fatalf("read buffer grew to %d bytes for a longest line of %d (limit %d)", cap(rd.store), longest, limit)
		}

		// The same stream broken off by a read error: the error comes back as it is, after the
		// events completed by a blank line; the one being built is dropped, never half-sent.
		broken := errors.New("connection reset by peer")
		rd = NewReader(io.MultiReader(bytes.NewReader(in), &failing{broken}))
		var before []ev
		for {
			e, err := rd.Next()
			if err != nil {
				if !errors.Is(err, broken) {
					t.Fatalf("stream ending in a read error: got %v, want the read error", err)
				}
				break
			}
			before = append(before, ev{e.Type, e.Data, e.ID})
			if len(before) > len(want) {
				t.Fatalf("broken stream: %d events, more than the whole stream's %d", len(before), len(want))
			}
		}
		complete := want
		if pendingAtEnd {
			complete = want[:len(want)-1]
		}
		if len(before) != len(complete) || len(before) > 0 && !reflect.DeepEqual(before, complete) {
			t.Fatalf("broken stream: events %q, want %q", before, complete)
		}
		if _, err := rd.Next(); !errors.Is(err, broken) {
			t.Fatalf("Next after a read error: %v, want the read error again", err)
		}
	})
}

type failing struct{ err error }

func (f *failing) Read([]byte) (int, error) { return 0, f.err }

// splitLines splits a stream at "\r\n", "\n" and "\r"; a last line without a terminator is
// a line too.
func splitLines(in []byte) [][]byte {
	var lines [][]byte
	start := 0
	for i := 0; i < len(in); i++ {
		switch in[i] {
		case '\n':
			lines = append(lines, in[start:i])
			start = i + 1
		case '\r':
			lines = append(lines, in[start:i])
			if i+1 < len(in) && in[i+1] == '\n' {
				i++
			}
			start = i + 1
		}
	}
	if start < len(in) {
		lines = append(lines, in[start:])
	}
	return lines
}

// splitField is the standard's "collect the field name and value" step.
func splitField(line []byte) (name, value []byte) {
	i := bytes.IndexByte(line, ':')
	if i < 0 {
		return line, nil
	}
	value = line[i+1:]
	if len(value) > 0 && value[0] == ' ' {
		value = value[1:]
	}
	return line[:i], value
}

// referenceEvents is the standard's algorithm as written: a data buffer that every "data"
// line appends value+LF to, dispatched on a blank line when not empty, with its last LF
// removed; the event type buffer reset on every blank line; the last event ID buffer set by
// an "id" without NUL. The reader's leniency: the pending buffer is dispatched at the end;
// pendingAtEnd says whether the last event is that one.
func referenceEvents(in []byte) (events []ev, pendingAtEnd bool) {
	var out []ev
	var data, typ, lastID string
	dispatch := func() {
		if data != "" {
			out = append(out, ev{typ, data[:len(data)-1], lastID})
		}
		data, typ = "", ""
	}
	for _, line := range splitLines(bytes.TrimPrefix(in, bom)) {
		switch {
		case len(line) == 0:
			dispatch()
		case line[0] == ':':
		default:
			name, value := splitField(line)
			switch string(name) {
			case "data":
				data += string(value) + "\n"
			case "event":
				typ = string(value)
			case "id":
				if bytes.IndexByte(value, 0) < 0 {
					lastID = string(value)
				}
			}
		}
	}
	n := len(out)
	dispatch()
	return out, len(out) > n
}
