// Package envfile owns reading and writing the project's "env files": bash
// fragments of KEY=value lines that the original scripts loaded with
// `set -a; source FILE`. The package parses them as data — it never runs a
// shell — and yields exactly the variables bash would have exported, or a
// *SyntaxError naming file:line for any construct whose value would depend on
// running a shell (command substitution, arithmetic, redirections, tilde
// expansion, commands other than assignments, ...).
//
// What is supported (as bash does it):
//   - blank lines, full-line and trailing `# comments` (a # starts a comment
//     only at the start of a word, so K=a#b and K=#x keep the #);
//   - KEY=value and KEY+=value (append), several on one line (K=1 L=2), an
//     optional leading `export`; `export NAME` without a value is a no-op;
//   - values made of unquoted text with backslash escapes, 'single quoted' and
//     "double quoted" segments (both may span lines), backslash-newline line
//     continuations;
//   - $VAR, ${VAR}, ${VAR-default} and ${VAR:-default}. Plain assignments on
//     one line happen left to right (K=1 L=$K gives L=1); export expands all
//     its arguments before assigning, so `export K=1 L=$K` gives L the old K.
//
// Deliberate differences from bash (the files are data, and results must be
// deterministic):
//   - $VAR resolves to a value assigned earlier in the same file, else through
//     the lookup passed to ParseWithEnv, else to "". The process environment is
//     never read, and bash's own variables (HOME, PWD, RANDOM, BASH_VERSION, …)
//     are not emulated.
//   - A trailing "\r" is removed from every line (CRLF files work; bash would
//     keep the "\r" in the value). Write never relies on a CR before a newline.
//   - A UTF-8 byte order mark at the start is skipped (bash would try to run
//     the first line as a command).
//   - Some valid bash is rejected instead of emulated: tilde expansion, $'…' and
//     $"…" quoting, unquoted ; & | < > ( ) even inside ${…}, unquoted { in an
//     export argument (brace expansion), single quotes inside "${V:-…}", the
//     special parameters ($1, $@, $?, $_, …), other ${…} forms (${#V},
//     ${V:=d}, ${V/a/b}, …), arrays, assignments to _, NUL bytes, and values
//     longer than 128 KiB (Linux cannot pass such an environment string to
//     a child; the cap also stops exponential growth through $K$K).
//
// Input is scanned byte by byte: every character with a meaning to bash is
// ASCII, and UTF-8 multi-byte sequences never contain ASCII bytes, so values
// keep their bytes exactly (even invalid UTF-8).
package envfile

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// Assignment is one KEY=value the file performs, with the value after quote
// removal and expansion (for KEY+=v, Value is the resulting full value).
type Assignment struct {
	Key   string
	Value string
	Line  int // 1-based line where the assignment starts
}

// File is a parsed env file.
type File struct {
	Path        string
	Assignments []Assignment // in file order; a key may repeat
}

// SyntaxError reports a line that is not plain data. Error() is one line:
// "FILE:LINE: MSG".
type SyntaxError struct {
	File string
	Line int
	Msg  string
}

func (e *SyntaxError) Error() string {
	// Messages quote offending text with %q, but keep the one-line promise
	// even if a caller builds a SyntaxError by hand.
	msg := strings.NewReplacer("\r", `\r`, "\n", `\n`).Replace(e.Msg)
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, msg)
}

// Parse reads an env file from r. name is used in errors and as File.Path.
// References to variables not assigned earlier in the file expand to "".
func Parse(name string, r io.Reader) (*File, error) {
	return ParseWithEnv(name, r, nil)
}

// ParseWithEnv is Parse where a reference to a variable not assigned earlier in
// the file is resolved by lookup (e.g. values from earlier env layers); lookup
// may be nil. It also decides whether ${V-d} sees V as set, and the starting
// value for V+=x.
func ParseWithEnv(name string, r io.Reader, lookup func(string) (string, bool)) (*File, error) {
	src, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read env file %s: %w", name, err)
	}
	p := &parser{name: name, line: 1, lookup: lookup, vars: map[string]string{}}
	if err := p.load(src); err != nil {
		return nil, err
	}
	if err := p.parse(); err != nil {
		return nil, err
	}
	return &File{Path: name, Assignments: p.out}, nil
}

// ParseFile parses the env file at path. A missing or unreadable file gives an
// error wrapping the *os.PathError (which names the path).
func ParseFile(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("env file: %w", err)
	}
	defer fh.Close()
	return Parse(path, fh)
}

// Map returns the variables the file exports; the last assignment of a key wins.
func (f *File) Map() map[string]string {
	m := make(map[string]string, len(f.Assignments))
	for _, a := range f.Assignments {
		m[a.Key] = a.Value
	}
	return m
}

// Lookup returns the value of the last assignment of key.
func (f *File) Lookup(key string) (string, bool) {
	for i := len(f.Assignments) - 1; i >= 0; i-- {
		if f.Assignments[i].Key == key {
			return f.Assignments[i].Value, true
		}
	}
	return "", false
}

// Write writes assignments as KEY='value' lines, one per assignment, that both
// Parse and bash (`set -a; source`) read back to the same keys and values.
// Values are single-quoted (a ' is written as '\”); a CR directly before a
// newline is split off with ” so the reader's CRLF stripping cannot eat it.
// Nothing is written if a key is not a valid name (or is "_") or a value holds
// a NUL byte (it could not be an environment value).
func Write(w io.Writer, assignments []Assignment) error {
	var b strings.Builder
	for _, a := range assignments {
		if !isName(a.Key) || a.Key == "_" {
			return fmt.Errorf("envfile: invalid key %q", a.Key)
		}
		if strings.IndexByte(a.Value, 0) >= 0 {
			return fmt.Errorf("envfile: value of %s contains a NUL byte", a.Key)
		}
		v := strings.ReplaceAll(a.Value, "'", `'\''`)
		v = strings.ReplaceAll(v, "\r\n", "\r''\n")
		b.WriteString(a.Key)
		b.WriteString("='")
		b.WriteString(v)
		b.WriteString("'\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func isName(s string) bool {
	if s == "" || !isNameStart(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isNameChar(s[i]) {
			return false
		}
	}
	return true
}

func isNameStart(c byte) bool {
	return c == '_' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}

func isNameChar(c byte) bool { return isNameStart(c) || ('0' <= c && c <= '9') }
