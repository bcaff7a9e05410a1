// Package sse reads server-sent event streams (the text/event-stream format of the HTML
// Living Standard, §9.2) as the streaming LLM APIs send them: OpenAI-compatible servers
// (vLLM, llama-server, Ollama's /v1) and Triton's generate_stream. Every event carries the time
// it arrived, which is what time-to-first-token and decode-rate measurements are made of.
//
// Lines may end in "\n", "\r\n" or a lone "\r"; ":" lines are comments; "data:" lines of one
// event are joined with "\n"; a blank line dispatches the event. One deliberate leniency: an
// event still pending when the stream ends without its final blank line (or newline) is
// dispatched rather than dropped, because servers that omit it would otherwise lose their
// last chunk (often the usage or the [DONE] sentinel).
package sse

import (
	"bytes"
	"errors"
	"io"
	"time"
)

// Event is one dispatched event.
type Event struct {
	Type string    // the "event:" field; "" when the event had none (the spec's "message")
	Data string    // the "data:" lines, joined with "\n" ("" when the Reader's RawData is set)
	ID   string    // the last "id:" seen on the stream so far
	At   time.Time // when the bytes that completed the event arrived
	// Raw is the same bytes as Data in the Reader's own buffer: valid only until the next call
	// of Next. A client that decodes every event reads Raw with RawData set, sparing a copy
	// and an allocation per event on the timed path.
	Raw []byte
}

// Done reports whether the event is the OpenAI-style end-of-stream sentinel "data: [DONE]".
func (e Event) Done() bool { return e.Data == "[DONE]" || string(e.Raw) == "[DONE]" }

// MaxLine bounds one line; a longer one is an error rather than unbounded memory.
const MaxLine = 16 << 20

var bom = []byte("\xef\xbb\xbf")

// ErrLineTooLong is returned when a line exceeds MaxLine bytes.
var ErrLineTooLong = errors.New("sse: line too long")

// Reader yields the events of a stream. It reads only as much as it needs, so an event is
// returned as soon as its bytes have arrived.
type Reader struct {
	r io.Reader
	// Now stamps arrivals; nil means time.Now.
	Now func() time.Time
	// RawData leaves Event.Data empty: the caller reads Event.Raw before its next call of Next.
	RawData bool

	store  []byte    // read buffer
	buf    []byte    // bytes read but not consumed (a window of store)
	at     time.Time // arrival of the latest read
	rerr   error     // sticky error of the underlying reader
	skipLF bool      // the previous line ended in "\r": a leading "\n" belongs to it
	bomOK  bool      // the leading byte-order mark (if any) has been dealt with

	data    []byte
	hasData bool
	typ     string
	lastID  string
}

// NewReader returns a Reader of r.
func NewReader(r io.Reader) *Reader { return &Reader{r: r} }

// Next returns the next event. At the end of the stream it returns io.EOF; a read error
// (a cancelled request, a reset connection) is returned as it is, and the event being built
// when it happened is dropped.
func (r *Reader) Next() (Event, error) {
	for {
		line, eof, err := r.line()
		if err != nil {
			return Event{}, err
		}
		if eof {
			if r.hasData {
				return r.dispatch(), nil
			}
			return Event{}, io.EOF
		}
		if len(line) == 0 {
			if r.hasData {
				return r.dispatch(), nil
			}
			r.typ = ""
			continue
		}
		r.field(line)
	}
}

func (r *Reader) dispatch() Event {
	e := Event{Type: r.typ, Raw: r.data, ID: r.lastID, At: r.at}
	if !r.RawData {
		e.Data = string(r.data)
	}
	r.data, r.hasData, r.typ = r.data[:0], false, ""
	return e
}

// field processes one non-blank line.
func (r *Reader) field(line []byte) {
	if line[0] == ':' {
		return // comment (keep-alives)
	}
	name, value := line, []byte(nil)
	if i := bytes.IndexByte(line, ':'); i >= 0 {
		name, value = line[:i], line[i+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	switch string(name) {
	case "data":
		if r.hasData {
			r.data = append(r.data, '\n')
		}
		r.data = append(r.data, value...)
		r.hasData = true
	case "event":
		r.typ = string(value)
	case "id":
		if bytes.IndexByte(value, 0) < 0 {
			r.lastID = string(value)
		}
	}
	// "retry" and unknown fields are ignored, as the standard says.
}

// line returns the next line without its terminator. eof is true when the stream ended and
// no bytes are left; a last line without a terminator is returned as a line first.
func (r *Reader) line() (line []byte, eof bool, err error) {
	for {
		if r.skipLF && len(r.buf) > 0 {
			if r.buf[0] == '\n' {
				r.buf = r.buf[1:]
			}
			r.skipLF = false
		}
		if !r.bomOK && (len(r.buf) >= len(bom) || r.rerr != nil || !bytes.HasPrefix(bom, r.buf)) {
			r.buf = bytes.TrimPrefix(r.buf, bom)
			r.bomOK = true
		}
		if r.bomOK {
			if i := bytes.IndexAny(r.buf, "\r\n"); i >= 0 {
				line = r.buf[:i]
				r.skipLF = r.buf[i] == '\r'
				r.buf = r.buf[i+1:]
				return line, false, nil
			}
		}
		if r.rerr != nil {
			if len(r.buf) > 0 {
				line, r.buf = r.buf, nil
				return line, false, nil
			}
			if r.rerr == io.EOF {
				return nil, true, nil
			}
			return nil, false, r.rerr
		}
		if len(r.buf) > MaxLine {
			return nil, false, ErrLineTooLong
		}
		r.fill()
	}
}

// fill reads once from the underlying reader and stamps the arrival.
func (r *Reader) fill() {
	if len(r.store) == 0 {
		r.store = make([]byte, 4096)
	}
	n := copy(r.store, r.buf) // unconsumed bytes to the front (copy handles the overlap)
	if n == len(r.store) {
		grown := make([]byte, 2*len(r.store))
		copy(grown, r.store[:n])
		r.store = grown
	}
	m, err := r.r.Read(r.store[n:])
	r.buf = r.store[:n+m]
	if m > 0 || err != nil {
		r.at = r.now()
	}
	if err != nil {
		r.rerr = err
	}
}

func (r *Reader) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}
