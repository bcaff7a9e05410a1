package envfile

import (
	"bytes"
	"fmt"
	"strings"
)

// maxValue caps an expanded value. Linux refuses to exec with an environment
// string longer than MAX_ARG_STRLEN (128 KiB), so such a value could never
// reach a child anyway; the cap also stops files like K=x$K$K on every line
// from growing exponentially.
const maxValue = 128 << 10

// parser is a hand-written scanner over the file's bytes that follows bash's
// rules for the small subset of the language env files use.
type parser struct {
	name   string
	src    []byte
	pos    int
	line   int // line of src[pos], 1-based
	lookup func(string) (string, bool)
	vars   map[string]string // assigned so far in this file
	out    []Assignment
}

func (p *parser) errorf(line int, format string, args ...any) error {
	return &SyntaxError{File: p.name, Line: line, Msg: fmt.Sprintf(format, args...)}
}

// load normalises the input: BOM and CR-before-LF removal (documented
// differences from bash), and a NUL check (bash cannot hold NUL in a value).
func (p *parser) load(src []byte) error {
	src = bytes.TrimPrefix(src, []byte("\xef\xbb\xbf"))
	if i := bytes.IndexByte(src, 0); i >= 0 {
		return p.errorf(1+bytes.Count(src[:i], []byte("\n")), "NUL byte; env files are text")
	}
	src = bytes.ReplaceAll(src, []byte("\r\n"), []byte("\n"))
	p.src = bytes.TrimSuffix(src, []byte("\r"))
	return nil
}

// skipContinuations drops backslash-newline pairs: bash removes them before
// splitting words, everywhere except inside single quotes and comments.
func (p *parser) skipContinuations() {
	for p.pos+1 < len(p.src) && p.src[p.pos] == '\\' && p.src[p.pos+1] == '\n' {
		p.pos += 2
		p.line++
	}
}

// peek returns the next byte after line continuations; ok is false at EOF.
func (p *parser) peek() (c byte, ok bool) {
	p.skipContinuations()
	return p.peekRaw()
}

// peekRaw returns the next byte as is (for single quotes, comments, and the
// byte after an escaping backslash).
func (p *parser) peekRaw() (c byte, ok bool) {
	if p.pos >= len(p.src) {
		return 0, false
	}
	return p.src[p.pos], true
}

// next consumes one byte, tracking lines.
func (p *parser) next() byte {
	c := p.src[p.pos]
	p.pos++
	if c == '\n' {
		p.line++
	}
	return c
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' }

// atWordEnd reports whether the next byte ends a word (blank, newline, EOF).
func (p *parser) atWordEnd() bool {
	c, ok := p.peek()
	return !ok || isBlank(c) || c == '\n'
}

func (p *parser) skipBlanks() {
	for {
		c, ok := p.peek()
		if !ok || !isBlank(c) {
			return
		}
		p.next()
	}
}

// skipComment consumes up to (not including) the newline. Comments are read
// raw: a trailing backslash does not continue a comment.
func (p *parser) skipComment() {
	for {
		c, ok := p.peekRaw()
		if !ok || c == '\n' {
			return
		}
		p.next()
	}
}

// readName consumes a bash name [A-Za-z_][A-Za-z0-9_]* ("" if none).
func (p *parser) readName() string {
	var b strings.Builder
	for {
		c, ok := p.peek()
		if !ok || !(isNameChar(c) && (b.Len() > 0 || isNameStart(c))) {
			return b.String()
		}
		b.WriteByte(p.next())
	}
}

// wordText returns the raw text of the word starting at start, for messages.
func (p *parser) wordText(start int) string {
	end := start
	for end < len(p.src) && end-start < 40 && !strings.ContainsRune(" \t\n;&|<>", rune(p.src[end])) {
		end++
	}
	return string(p.src[start:end])
}

// get resolves a variable reference: earlier in the file, then lookup.
func (p *parser) get(name string) (string, bool) {
	if v, ok := p.vars[name]; ok {
		return v, true
	}
	if p.lookup != nil {
		return p.lookup(name)
	}
	return "", false
}

func (p *parser) parse() error {
	for {
		p.skipBlanks()
		c, ok := p.peek()
		switch {
		case !ok:
			return nil
		case c == '\n':
			p.next()
		case c == '#':
			p.skipComment()
		default:
			if err := p.command(); err != nil {
				return err
			}
		}
	}
}

// command parses one line's simple command: assignments separated by blanks,
// or `export` followed by assignments and bare names.
//
// Order matters for $VAR in later words. Plain assignments are expanded and
// performed one by one, left to right (K=1 L=$K gives L=1). export is a
// command: all its arguments are expanded first, then it assigns them in
// order (`export K=1 L=$K` gives L the value K had before the line; a K+=x
// argument still appends to the K assigned just before it).
func (p *parser) command() error {
	line, start := p.line, p.pos
	name := p.readName()
	export := name == "export" && p.atWordEnd()
	var pending []pendingAssignment // export's arguments, applied at the end
	if !export {
		if name == "" || !p.atAssignOp() {
			return p.notAssignment(line, start, name)
		}
		a, err := p.assignment(line, name, false)
		if err != nil {
			return err
		}
		if err := p.apply(a); err != nil {
			return err
		}
	}
	for {
		p.skipBlanks()
		c, ok := p.peek()
		if c == '#' { // words end only at blanks, so this # starts a word
			p.skipComment()
			ok = false
		}
		if !ok || c == '\n' {
			for _, a := range pending {
				if err := p.apply(a); err != nil {
					return err
				}
			}
			return nil
		}
		if strings.IndexByte(";&|<>()", c) >= 0 {
			return p.metaError(p.line, c)
		}
		line, start := p.line, p.pos
		name := p.readName()
		switch {
		case name != "" && p.atAssignOp():
			a, err := p.assignment(line, name, export)
			if err != nil {
				return err
			}
			if export {
				pending = append(pending, a)
			} else if err := p.apply(a); err != nil {
				return err
			}
		case export && c == '-':
			return p.errorf(line, "export option %q is not supported; env files are data", p.wordText(start))
		case export && name != "" && p.atWordEnd():
			// `export NAME` marks an existing variable for export; under
			// set -a every variable the file sets is exported anyway.
		case export:
			return p.errorf(line, "export argument %q is not NAME or NAME=value", p.wordText(start))
		default:
			return p.errorf(line, "unquoted whitespace in a value: bash would run %q as a command; quote the value", p.wordText(start))
		}
	}
}

// atAssignOp reports whether the next bytes are = or += (after a name).
func (p *parser) atAssignOp() bool {
	p.skipContinuations()
	rest := p.src[p.pos:]
	return bytes.HasPrefix(rest, []byte("=")) || bytes.HasPrefix(rest, []byte("+="))
}

func (p *parser) notAssignment(line, start int, name string) error {
	if name != "" {
		i := p.pos
		for i < len(p.src) && isBlank(p.src[i]) {
			i++
		}
		if i > p.pos && i < len(p.src) && p.src[i] == '=' {
			return p.errorf(line, "spaces around = in %q: bash would run %s as a command; write %s=value", p.wordText(start)+" =", name, name)
		}
	}
	return p.errorf(line, "not an assignment: bash would run %q as a command; env files are data", p.wordText(start))
}

// pendingAssignment is a parsed, expanded assignment not yet performed.
type pendingAssignment struct {
	name, value string // value as written, before += appends it
	appendOp    bool
	line        int
}

// assignment parses `=value` or `+=value` after name.
func (p *parser) assignment(line int, name string, export bool) (pendingAssignment, error) {
	a := pendingAssignment{name: name, line: line}
	if name == "_" {
		return a, p.errorf(line, "assignment to _ is not supported: bash overwrites $_ after every command")
	}
	a.appendOp = p.src[p.pos] == '+'
	if a.appendOp {
		p.next()
	}
	p.next() // '='
	if c, ok := p.peek(); ok && c == '(' {
		return a, p.errorf(line, "array assignment %s=(...) is not supported; env files hold strings", name)
	}
	var b strings.Builder
	if err := p.unquoted(&b, line, false, export); err != nil {
		return a, err
	}
	a.value = b.String()
	return a, nil
}

// apply performs an assignment and records it.
func (p *parser) apply(a pendingAssignment) error {
	value := a.value
	if a.appendOp {
		prev, _ := p.get(a.name)
		value = prev + value
		if len(value) > maxValue {
			return p.errorf(a.line, "value of %s is longer than %d bytes (the limit for one environment variable)", a.name, maxValue)
		}
	}
	p.vars[a.name] = value
	p.out = append(p.out, Assignment{Key: a.name, Value: value, Line: a.line})
	return nil
}

// unquoted reads unquoted text into b. At top level (inBrace false) it is the
// value word and ends before a blank, newline or EOF. Inside ${V-...} it is the
// default word: blanks and newlines are literal and it ends by consuming '}'.
// openLine is where the value or the ${ started.
func (p *parser) unquoted(b *strings.Builder, openLine int, inBrace, export bool) error {
	// Tilde expansion happens at the start of the word and after an unquoted
	// ':' (assignment words); track both to reject it.
	atStart, afterColon := true, false
	for {
		line := p.line
		c, ok := p.peek()
		if !ok {
			if inBrace {
				return p.errorf(openLine, "unterminated ${...}")
			}
			return nil
		}
		if !inBrace && (isBlank(c) || c == '\n') {
			return nil
		}
		wasStart, wasColon := atStart, afterColon
		atStart, afterColon = false, false
		switch c {
		case '}':
			p.next()
			if inBrace {
				return nil
			}
			b.WriteByte(c)
		case '\\':
			p.next()
			// The escaped byte is taken raw (a newline here was already
			// removed as a continuation); a lone backslash at EOF stays.
			if e, ok := p.peekRaw(); ok {
				b.WriteByte(p.next())
				afterColon = e == ':'
			} else {
				b.WriteByte('\\')
			}
		case '\'':
			if err := p.singleQuoted(b); err != nil {
				return err
			}
		case '"':
			p.next()
			if err := p.doubleQuoted(b, line, false, export); err != nil {
				return err
			}
		case '$':
			if err := p.dollar(b, false, export); err != nil {
				return err
			}
		case '`':
			return p.errorf(line, "command substitution `...` needs a shell; env files are data")
		case ';', '&', '|', '<', '>', '(', ')':
			return p.metaError(line, c)
		case '~':
			if wasStart || wasColon {
				return p.errorf(line, "tilde expansion ~ needs a shell (bash replaces it with a home directory); quote it: '~'")
			}
			b.WriteByte(p.next())
		case '{':
			if export {
				return p.errorf(line, "unquoted { in an export argument: bash applies brace expansion there; quote it")
			}
			b.WriteByte(p.next())
		default:
			b.WriteByte(p.next())
			afterColon = c == ':'
		}
	}
}

func (p *parser) metaError(line int, c byte) error {
	p.next()
	next, _ := p.peek()
	switch {
	case (c == '<' || c == '>') && next == '(':
		return p.errorf(line, "process substitution %c(...) needs a shell; env files are data", c)
	case c == '<' || c == '>':
		return p.errorf(line, "unquoted %c is a redirection and needs a shell; quote the value", c)
	case c == '|':
		return p.errorf(line, "unquoted | is a pipe and needs a shell; quote the value")
	case c == ';' || c == '&':
		return p.errorf(line, "unquoted %c separates commands and needs a shell; quote the value", c)
	default:
		return p.errorf(line, "unquoted %c needs a shell (subshell or array); quote the value", c)
	}
}

// singleQuoted reads '...' (everything literal, may span lines).
func (p *parser) singleQuoted(b *strings.Builder) error {
	line := p.line
	p.next()
	for {
		c, ok := p.peekRaw()
		if !ok {
			return p.errorf(line, "unterminated single quote")
		}
		p.next()
		if c == '\'' {
			return nil
		}
		b.WriteByte(c)
	}
}

// doubleQuoted reads the inside of "..." after the opening quote (inBrace
// false), or a ${V-...} default word inside double quotes (inBrace true),
// which ends at '}', may contain nested "...", and where bash also lets \}
// escape the brace. A backslash escapes only $ ` " \ (and }); otherwise it
// stays. line is where the construct opened.
func (p *parser) doubleQuoted(b *strings.Builder, line int, inBrace, export bool) error {
	for {
		cline := p.line
		c, ok := p.peek()
		if !ok {
			if inBrace {
				return p.errorf(line, "unterminated ${...}")
			}
			return p.errorf(line, "unterminated double quote")
		}
		switch {
		case c == '"' && !inBrace:
			p.next()
			return nil
		case c == '}' && inBrace:
			p.next()
			return nil
		case c == '"': // nested quotes inside "${V:-"..."}"
			p.next()
			if err := p.doubleQuoted(b, cline, false, export); err != nil {
				return err
			}
		case c == '\'' && inBrace:
			// bash keeps these quotes in the value yet still uses them to
			// match the closing brace; too subtle to rely on.
			return p.errorf(cline, "single quote inside \"${...}\" needs a shell; env files are data")
		case c == '\\':
			p.next()
			e, ok := p.peekRaw()
			if !ok {
				continue // EOF: reported as unterminated above
			}
			if !(e == '$' || e == '`' || e == '"' || e == '\\' || (inBrace && e == '}')) {
				b.WriteByte('\\')
			}
			b.WriteByte(p.next())
		case c == '$':
			if err := p.dollar(b, true, export); err != nil {
				return err
			}
		case c == '`':
			return p.errorf(cline, "command substitution `...` needs a shell; env files are data")
		default:
			b.WriteByte(p.next())
		}
	}
}

// dollar expands what starts at '$'. quoted is whether we are inside "...".
func (p *parser) dollar(b *strings.Builder, quoted, export bool) error {
	line := p.line
	p.next() // '$'
	c, ok := p.peek()
	switch {
	case !ok:
		b.WriteByte('$')
	case c == '(':
		p.next()
		if c2, _ := p.peek(); c2 == '(' {
			return p.errorf(line, "arithmetic expansion $((...)) needs a shell; env files are data")
		}
		return p.errorf(line, "command substitution $(...) needs a shell; env files are data")
	case c == '[':
		return p.errorf(line, "arithmetic expansion $[...] needs a shell; env files are data")
	case c == '{':
		p.next()
		return p.braced(b, line, quoted, export)
	case c == '\'' && !quoted:
		return p.errorf(line, "ANSI-C quoting $'...' is not supported; use '...' (newlines may be literal)")
	case c == '"' && !quoted:
		return p.errorf(line, "locale translation $\"...\" is not supported; use \"...\"")
	case isNameStart(c):
		name := p.readName()
		if name == "_" {
			return p.errorf(line, "special parameter $_ needs a shell; env files are data")
		}
		v, _ := p.get(name)
		b.WriteString(v)
		return p.checkLen(b, line)
	case isSpecialParam(c):
		return p.errorf(line, "special parameter $%c needs a shell; env files are data", c)
	default:
		b.WriteByte('$') // e.g. "a$", "$ ", "$/": bash keeps the $
	}
	return nil
}

func isSpecialParam(c byte) bool {
	return ('0' <= c && c <= '9') || strings.IndexByte("@*#?$!-", c) >= 0
}

// braced expands ${NAME}, ${NAME-word} or ${NAME:-word}, after "${".
func (p *parser) braced(b *strings.Builder, line int, quoted, export bool) error {
	c, ok := p.peek()
	switch {
	case !ok:
		return p.errorf(line, "unterminated ${...}")
	case c == '#' || c == '!':
		return p.errorf(line, "parameter expansion ${%c...} needs a shell; env files are data", c)
	case isSpecialParam(c):
		return p.errorf(line, "special parameter ${%c} needs a shell; env files are data", c)
	}
	name := p.readName()
	if name == "" {
		return p.errorf(line, "bad substitution: ${%c...}", c)
	}
	if name == "_" {
		return p.errorf(line, "special parameter ${_} needs a shell; env files are data")
	}
	unsupported := func(op string) error {
		return p.errorf(line, "parameter expansion ${%s%s...} needs a shell (only ${VAR}, ${VAR-default} and ${VAR:-default} are supported)", name, op)
	}
	colon := false
	c, ok = p.peek()
	switch {
	case !ok:
		return p.errorf(line, "unterminated ${...}")
	case isBlank(c) || c == '\n':
		return p.errorf(line, "bad substitution: blank after ${%s", name)
	case c == '}':
		p.next()
		v, _ := p.get(name)
		b.WriteString(v)
		return p.checkLen(b, line)
	case c == ':':
		p.next()
		c2, ok := p.peek()
		if !ok {
			return p.errorf(line, "unterminated ${...}")
		}
		if c2 != '-' {
			return unsupported(":" + string(c2))
		}
		colon = true
	case c != '-':
		return unsupported(string(c))
	}
	p.next() // '-'
	// The default word is always parsed, even when unused, so that whether a
	// file is accepted never depends on the values in it.
	var def strings.Builder
	var err error
	if quoted {
		err = p.doubleQuoted(&def, line, true, export)
	} else {
		err = p.unquoted(&def, line, true, export)
	}
	if err != nil {
		return err
	}
	if v, set := p.get(name); set && !(colon && v == "") {
		b.WriteString(v)
	} else {
		b.WriteString(def.String())
	}
	return p.checkLen(b, line)
}

// checkLen stops a value that expansions grew past maxValue.
func (p *parser) checkLen(b *strings.Builder, line int) error {
	if b.Len() > maxValue {
		return p.errorf(line, "expanded value is longer than %d bytes (the limit for one environment variable)", maxValue)
	}
	return nil
}
