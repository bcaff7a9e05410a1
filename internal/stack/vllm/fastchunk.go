package vllm

import (
	"bytes"
	"unicode/utf8"
)

// fastChunk decodes data into ch when it is a plain completion chunk, the event a server
// streams per token, several times faster than encoding/json: under a serving load the
// client's decoding is what limits how many streamed tokens it takes in (bench/). It accepts
// only what encoding/json decodes into the same chunk without error, and returns false for
// anything else — an error object (error, detail), a key that differs from a field's name only
// in case, a repeated field, a number that is not a plain integer, an escape or invalid UTF-8
// in a string it keeps, a value of another type, invalid JSON — which the caller then decodes
// with encoding/json. Values of fields it does not keep are checked and skipped. The fuzz test
// holds it to encoding/json's result.
func fastChunk(data []byte, ch *chunk) bool {
	p := parser{b: data}
	*ch = chunk{}
	var seen [3]bool
	ok := p.object(func(key []byte) bool {
		switch {
		case string(key) == "object":
			if seen[0] {
				return false
			}
			seen[0] = true
			s, isNull, ok := p.keptString()
			if ok && !isNull {
				ch.Object = s
			}
			return ok
		case string(key) == "choices":
			if seen[1] {
				return false
			}
			seen[1] = true
			return p.choices(ch)
		case string(key) == "usage":
			if seen[2] {
				return false
			}
			seen[2] = true
			return p.usage(ch)
		case bytes.EqualFold(key, []byte("object")), bytes.EqualFold(key, []byte("choices")), bytes.EqualFold(key, []byte("usage")),
			bytes.EqualFold(key, []byte("error")), bytes.EqualFold(key, []byte("detail")):
			return false // a case variant, or an error object: encoding/json decides
		}
		return p.skip()
	})
	if !ok {
		return false
	}
	p.ws()
	return p.i == len(p.b)
}

type parser struct {
	b []byte
	i int
}

func (p *parser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *parser) peek() byte {
	p.ws()
	if p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

func (p *parser) lit(s string) bool {
	if bytes.HasPrefix(p.b[p.i:], []byte(s)) {
		p.i += len(s)
		return true
	}
	return false
}

// object reads {"key": value, …}, calling field after each key with the cursor before the
// value; field reads (or skips) the value.
func (p *parser) object(field func(key []byte) bool) bool {
	if p.peek() != '{' {
		return false
	}
	p.i++
	if p.peek() == '}' {
		p.i++
		return true
	}
	for {
		if p.peek() != '"' {
			return false
		}
		key, ok := p.rawString()
		if !ok || bytes.IndexByte(key, '\\') >= 0 {
			return false // an escaped key might name a field: encoding/json decides
		}
		if p.peek() != ':' {
			return false
		}
		p.i++
		p.ws()
		if !field(key) {
			return false
		}
		switch p.peek() {
		case ',':
			p.i++
		case '}':
			p.i++
			return true
		default:
			return false
		}
	}
}

// rawString reads a string token and returns its bytes between the quotes, validated (escapes,
// no control characters) but not unescaped.
func (p *parser) rawString() ([]byte, bool) {
	p.i++ // '"'
	start := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			s := p.b[start:p.i]
			p.i++
			return s, true
		case c == '\\':
			if p.i+1 >= len(p.b) {
				return nil, false
			}
			switch p.b[p.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				p.i += 2
			case 'u':
				if p.i+6 > len(p.b) {
					return nil, false
				}
				for _, h := range p.b[p.i+2 : p.i+6] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return nil, false
					}
				}
				p.i += 6
			default:
				return nil, false
			}
		case c < 0x20:
			return nil, false
		default:
			p.i++
		}
	}
	return nil, false
}

// keptString reads a string (or null) whose value is kept: no escapes, valid UTF-8.
func (p *parser) keptString() (s string, isNull, ok bool) {
	switch p.peek() {
	case 'n':
		return "", true, p.lit("null")
	case '"':
		raw, ok := p.rawString()
		if !ok || bytes.IndexByte(raw, '\\') >= 0 || !utf8.Valid(raw) {
			return "", false, false
		}
		return string(raw), false, true
	}
	return "", false, false
}

// int reads a plain integer (or null: ok, unchanged).
func (p *parser) int(dst *int) bool {
	if p.peek() == 'n' {
		return p.lit("null")
	}
	start := p.i
	if p.i < len(p.b) && p.b[p.i] == '-' {
		p.i++
	}
	digits := p.i
	for p.i < len(p.b) && '0' <= p.b[p.i] && p.b[p.i] <= '9' {
		p.i++
	}
	n := p.i - digits
	if n == 0 || n > 15 || (n > 1 && p.b[digits] == '0') {
		return false
	}
	if p.i < len(p.b) {
		switch p.b[p.i] {
		case '.', 'e', 'E':
			return false
		}
	}
	v := 0
	for _, c := range p.b[digits:p.i] {
		v = v*10 + int(c-'0')
	}
	if p.b[start] == '-' {
		v = -v
	}
	*dst = v
	return true
}

func (p *parser) choices(ch *chunk) bool {
	switch p.peek() {
	case 'n':
		return p.lit("null")
	case '[':
	default:
		return false
	}
	p.i++
	ch.Choices = ch.Choices[:0]
	if ch.Choices == nil {
		ch.Choices = make([]struct {
			Index        int     `json:"index"`
			Text         *string `json:"text"`
			FinishReason *string `json:"finish_reason"`
		}, 0, 1)
	}
	if p.peek() == ']' {
		p.i++
		return true
	}
	for {
		ch.Choices = append(ch.Choices, struct {
			Index        int     `json:"index"`
			Text         *string `json:"text"`
			FinishReason *string `json:"finish_reason"`
		}{})
		c := &ch.Choices[len(ch.Choices)-1]
		var seen [3]bool
		ok := p.object(func(key []byte) bool {
			switch {
			case string(key) == "index":
				if seen[0] {
					return false
				}
				seen[0] = true
				return p.int(&c.Index)
			case string(key) == "text", string(key) == "finish_reason":
				i := 1
				dst := &c.Text
				if key[0] == 'f' {
					i, dst = 2, &c.FinishReason
				}
				if seen[i] {
					return false
				}
				seen[i] = true
				s, isNull, ok := p.keptString()
				if ok && !isNull {
					*dst = &s
				}
				return ok
			case bytes.EqualFold(key, []byte("index")), bytes.EqualFold(key, []byte("text")), bytes.EqualFold(key, []byte("finish_reason")):
				return false
			}
			return p.skip()
		})
		if !ok {
			return false
		}
		switch p.peek() {
		case ',':
			p.i++
		case ']':
			p.i++
			return true
		default:
			return false
		}
	}
}

func (p *parser) usage(ch *chunk) bool {
	if p.peek() == 'n' {
		return p.lit("null")
	}
	u := &Usage{}
	var seen [3]bool
	ok := p.object(func(key []byte) bool {
		switch {
		case string(key) == "prompt_tokens":
			if seen[0] {
				return false
			}
			seen[0] = true
			return p.int(&u.PromptTokens)
		case string(key) == "completion_tokens":
			if seen[1] {
				return false
			}
			seen[1] = true
			if p.peek() == 'n' {
				return p.lit("null")
			}
			var n int
			if !p.int(&n) {
				return false
			}
			u.CompletionTokens = &n
			return true
		case string(key) == "total_tokens":
			if seen[2] {
				return false
			}
			seen[2] = true
			return p.int(&u.TotalTokens)
		case bytes.EqualFold(key, []byte("prompt_tokens")), bytes.EqualFold(key, []byte("completion_tokens")), bytes.EqualFold(key, []byte("total_tokens")):
			return false
		}
		return p.skip()
	})
	if ok {
		ch.Usage = u
	}
	return ok
}

// skip checks and skips any JSON value.
func (p *parser) skip() bool {
	switch c := p.peek(); {
	case c == '{':
		return p.object(func([]byte) bool { return p.skip() })
	case c == '[':
		p.i++
		if p.peek() == ']' {
			p.i++
			return true
		}
		for {
			if !p.skip() {
				return false
			}
			switch p.peek() {
			case ',':
				p.i++
			case ']':
				p.i++
				return true
			default:
				return false
			}
		}
	case c == '"':
		_, ok := p.rawString()
		return ok
	case c == 't':
		return p.lit("true")
	case c == 'f':
		return p.lit("false")
	case c == 'n':
		return p.lit("null")
	case c == '-' || ('0' <= c && c <= '9'):
		return p.number()
	}
	return false
}

// number checks and skips a JSON number.
func (p *parser) number() bool {
	if p.b[p.i] == '-' {
		p.i++
	}
	digits := func() int {
		n := 0
		for p.i < len(p.b) && '0' <= p.b[p.i] && p.b[p.i] <= '9' {
			p.i++
			n++
		}
		return n
	}
	start := p.i
	n := digits()
	if n == 0 || (n > 1 && p.b[start] == '0') {
		return false
	}
	if p.i < len(p.b) && p.b[p.i] == '.' {
		p.i++
		if digits() == 0 {
			return false
		}
	}
	if p.i < len(p.b) && (p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		p.i++
		if p.i < len(p.b) && (p.b[p.i] == '+' || p.b[p.i] == '-') {
			p.i++
		}
		if digits() == 0 {
			return false
		}
	}
	return true
}
