package envfile

import (
	"bytes"
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/fuze-ai/fuze/internal/testfixture"
)

// fixtureFiles lists the original system's env files and templates in testdata/original
// (testdata/SOURCES.md).
func fixtureFiles(t testing.TB) []string {
	t.Helper()
	fixturesDir := testfixture.OriginalDir(t)
	var files []string
	for _, pat := range []string{"*.env", "*.env.template"} {
		m, err := filepath.Glob(filepath.Join(fixturesDir, pat))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) == 0 {
		t.Fatalf("no *.env or *.env.template files in %s", fixturesDir)
	}
	return files
}

func TestFixturesParse(t *testing.T) {
	files := fixtureFiles(t)
	bash := bashPathOrEmpty()
	parsed := map[string]*File{}
	for _, path := range files {
		f, err := ParseFile(path)
		if err != nil {
			t.Errorf("ParseFile(%s): %v", path, err)
			continue
		}
		if f.Path != path {
			t.Errorf("Path = %q, want %q", f.Path, path)
		}
		parsed[filepath.Base(path)] = f
		if bash != "" {
			body, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			checkAgainstBash(t, bash, body, f.Map())
		}
	}
	if bash == "" {
		t.Log("bash not on PATH; fixture values not compared with bash")
	}

	const explore = "100 95 90 85 80 75 70 65 60 55 50 45 40 35 30 25 20 15 10"
	checks := []struct{ file, key, want string }{
		{"LLM-FuZe-gemma3-4b-it-fp16.env", "INCLUDE_MODELS", "^gemma3:4b-it-fp16$"},
		{"LLM-FuZe-gemma3-4b-it-fp16.env", "NG_PERCENT_SET", explore},
		{"LLM-FuZe-gemma3-4b-it-fp16.env", "ALIAS_PREFIX", "LLM-FuZe-"},
		{"LLM-FuZe-gemma3-4b-it-fp16.env", "FAST_MODE", "1"}, // has a trailing comment
		{"LLM-FuZe-gemma3-4b-it-fp16.env", "KEEP_FAILED_VARIANTS", "1"},
		{"FuZeCORE-explore.env.template", "INCLUDE_MODELS", "^__MODEL_TAG__$"},
		{"FuZeCORE-explore.env.template", "ALIAS_SUFFIX", "-explore"},
		{"FuZeCORE-preprod.env.template", "NG_PERCENT_SET", "100 90 75 60 50 40 30 20 10"},
		{"FuZeCORE-preprod.env.template", "ALIAS_PREFIX", "LLM-FuZe-"},
		{"FuZeCORE-preprod.env.template", "EXHAUSTIVE", "0"},
		{"FuZeCORE-preprod.env.template", "LOG_DIR", "/var/log/fuze-stack"},
	}
	for _, c := range checks {
		f := parsed[c.file]
		if f == nil {
			t.Errorf("fixture %s missing or unparsed", c.file)
			continue
		}
		if got, ok := f.Lookup(c.key); !ok || got != c.want {
			t.Errorf("%s: %s = %q (set %v), want %q", c.file, c.key, got, ok, c.want)
		}
	}
	if f := parsed["LLM-FuZe-gemma3-4b-it-fp16.env"]; f != nil {
		if n := len(f.Assignments); n != 18 {
			t.Errorf("gemma fixture: %d assignments, want 18", n)
		}
		if a := f.Assignments[3]; a.Key != "INCLUDE_MODELS" || a.Line != 11 {
			t.Errorf("gemma fixture: 4th assignment %+v, want INCLUDE_MODELS on line 11", a)
		}
	}
}

// m builds a map from alternating keys and values.
func m(kv ...string) map[string]string {
	out := map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// parseCases are inputs the parser accepts. want is the expected Map. Each is
// also sourced by real bash, which must export exactly want — except where
// bashWant (a documented difference) or bashFails is set.
var parseCases = []struct {
	name, body string
	want       map[string]string
	bashWant   map[string]string // bash differs on purpose: what bash exports
	bashFails  bool              // bash reports an error on purpose
}{
	{name: "plain", body: "K=v\n", want: m("K", "v")},
	{name: "no final newline", body: "K=v", want: m("K", "v")},
	{name: "single quotes", body: "K='a b # c $X \\'\n", want: m("K", `a b # c $X \`)},
	{name: "double quotes", body: "K=\"a  b\"\n", want: m("K", "a  b")},
	{name: "adjacent segments", body: `K=a'b'"c"d` + "\n", want: m("K", "abcd")},
	{name: "inline comment", body: "K=a # comment\n", want: m("K", "a")},
	{name: "inline comment after tab", body: "K=a\t# comment\n", want: m("K", "a")},
	{name: "hash inside value", body: "K=a#b\n", want: m("K", "a#b")},
	{name: "hash at value start", body: "K=#x\n", want: m("K", "#x")},
	{name: "escaped hash no space", body: "K=\\#x\n", want: m("K", "#x")},
	{name: "escaped space", body: "K=a\\ b\\\tc\n", want: m("K", "a b\tc")},
	{name: "multi-line single", body: "K='line1\nline2'\nL=x\n", want: m("K", "line1\nline2", "L", "x")},
	{name: "multi-line double", body: "K=\"line1\n  line2\"\n", want: m("K", "line1\n  line2")},
	{name: "export", body: "export K=1\n", want: m("K", "1")},
	{name: "export spaces and tabs", body: "  export \t K=1\nexport\tL=2\n", want: m("K", "1", "L", "2")},
	{name: "export bare name", body: "export K\n", want: m()},
	{name: "export after assignment", body: "K=1\nexport K\n", want: m("K", "1")},
	{name: "export several", body: "export K=1 L M=2 # c\n", want: m("K", "1", "M", "2")},
	{name: "export alone", body: "export\n", want: m()},
	{name: "braced reference", body: "A=x\nK=${A}y\n", want: m("A", "x", "K", "xy")},
	{name: "plain reference", body: "A=x\nK=$A/y\n", want: m("A", "x", "K", "x/y")},
	{name: "reference in double quotes", body: "A=x\nK=\"$A ${A}\"\n", want: m("A", "x", "K", "x x")},
	{name: "reference in single quotes", body: "A=x\nK='$A'\n", want: m("A", "x", "K", "$A")},
	{name: "unset reference", body: "K=a${ENVFILE_UNSET}b$ENVFILE_UNSET\n", want: m("K", "ab")},
	{name: "name ends at non-name char", body: "A=x\nK=$A-$A.$Ab\n", want: m("A", "x", "K", "x-x.")},
	{name: "default unset", body: "K=${X:-d} L=${X-d}\n", want: m("K", "d", "L", "d")},
	{name: "default empty", body: "X=\nK=${X:-d} L=${X-d}\n", want: m("X", "", "K", "d", "L", "")},
	{name: "default set", body: "X=v\nK=${X:-d} L=${X-d}\n", want: m("X", "v", "K", "v", "L", "v")},
	{name: "default nested", body: "Y=y\nK=${X:-${Y:-z}} L=${X:-${Z:-z}}\n", want: m("Y", "y", "K", "y", "L", "z")},
	{name: "default quoted", body: "K=${X:-'a b'} L=${X:-\"c d\"}e\n", want: m("K", "a b", "L", "c de")},
	{name: "default with blanks and hash", body: "K=${X:-a #b}c\n", want: m("K", "a #bc")},
	{name: "default in double quotes", body: "K=\"${X:-a b}\" L=\"${X:-a\\}b}\" M=\"${X:-\\x}\"\n", want: m("K", "a b", "L", "a}b", "M", `\x`)},
	{name: "default nested quotes", body: "K=\"${X:-\"a b\"}\"\n", want: m("K", "a b")},
	{name: "default escape unquoted", body: "K=${X:-a\\}b\\x}\n", want: m("K", "a}bx")},
	{name: "default empty word", body: "K=${X:-} L=${X-}\n", want: m("K", "", "L", "")},
	{name: "empty values", body: "K=\nL=''\nM=\"\"\n", want: m("K", "", "L", "", "M", "")},
	{name: "empty value then comment", body: "K= # nothing\n", want: m("K", "")},
	{name: "empty value then assignment", body: "K= L=2\n", want: m("K", "", "L", "2")},
	{name: "trailing whitespace", body: "K=v  \t\nL='w'\t \n", want: m("K", "v", "L", "w")},
	{name: "leading whitespace", body: "\t K=1\n", want: m("K", "1")},
	{name: "comments and blank lines", body: "# top\n\n   \n\t\n  # indented\n\t# tab\nK=1\n#K=2\n", want: m("K", "1")},
	{name: "comment ending in backslash", body: "# c \\\nK=1\n", want: m("K", "1")},
	{name: "continuation in value", body: "K=a\\\nb\n", want: m("K", "ab")},
	{name: "continuation between words", body: "K=1 \\\nL=2\n", want: m("K", "1", "L", "2")},
	{name: "continuation inside name", body: "Y=q\nK=$Y\\\nY.\n", want: m("Y", "q", "K", ".")},
	{name: "continuation in double quotes", body: "K=\"a\\\nb\"\n", want: m("K", "ab")},
	{name: "continuation kept in single quotes", body: "K='a\\\nb'\n", want: m("K", "a\\\nb")},
	{name: "backslash n in double quotes", body: `K="\n"` + "\n", want: m("K", `\n`)},
	{name: "double quote escapes", body: "K=\"\\$a \\\" \\\\ \\` \\q \\'\"\n", want: m("K", "$a \" \\ ` \\q \\'")},
	{name: "unquoted escapes", body: `K=\a\$b\"\'\\` + "\n", want: m("K", `a$b"'\`)},
	{name: "lone backslash at EOF", body: `K=a\`, want: m("K", `a\`)},
	{name: "unicode", body: "K=héllo→✓ L='日本 語' M=\"ü ß\"\n", want: m("K", "héllo→✓", "L", "日本 語", "M", "ü ß")},
	{name: "invalid utf-8 kept", body: "K=a\xffb\n", want: m("K", "a\xffb")},
	{name: "equals in value", body: "K=a=b=c L='x=y'\n", want: m("K", "a=b=c", "L", "x=y")},
	{name: "two on one line", body: "K=1 L=2\n", want: m("K", "1", "L", "2")},
	{name: "tab separated", body: "K=1\tL=2\t\n", want: m("K", "1", "L", "2")},
	{name: "left to right", body: "K=1 L=$K\n", want: m("K", "1", "L", "1")},
	{name: "export expands first", body: "K=0\nexport K=a L=$K K+=b M=${K}x\n", want: m("K", "ab", "L", "0", "M", "0x")},
	{name: "append", body: "K=a\nK+=b\nexport K+=c\nL+=x\n", want: m("K", "abc", "L", "x")},
	{name: "last wins", body: "K=1\nK=2\n", want: m("K", "2")},
	{name: "literal dollar", body: "K=a$ L=\"b$\" M=$/ N=\"$ \" O=$\n", want: m("K", "a$", "L", "b$", "M", "$/", "N", "$ ", "O", "$")},
	{name: "glob chars literal", body: "K=*.txt L=a?[b]\n", want: m("K", "*.txt", "L", "a?[b]")},
	{name: "braces literal", body: "K={a,b} L=a} M=x{1..3}\n", want: m("K", "{a,b}", "L", "a}", "M", "x{1..3}")},
	{name: "tilde not expanded", body: "K=a~b L=a=~/b M='~' N=\"~/x\" O=\\~\n", want: m("K", "a~b", "L", "a=~/b", "M", "~", "N", "~/x", "O", "~")},
	{name: "quote in single quotes", body: `K='it'\''s'` + "\n", want: m("K", "it's")},
	{name: "quotes inside quotes", body: "K=\"it's\" L='say \"hi\"'\n", want: m("K", "it's", "L", `say "hi"`)},
	{name: "underscore names", body: "_A1=x a_b=y\n", want: m("_A1", "x", "a_b", "y")},
	{name: "keyword-like names", body: "export=1 if=2\n", want: m("export", "1", "if", "2")},
	{name: "empty file", body: "", want: m()},
	{name: "multi-line double with refs", body: "A=x\nK=\"1 $A\n2 ${A:-n}\\\n3\"\n", want: m("A", "x", "K", "1 x\n2 x3")},
	{name: "special chars quoted", body: "K='a;b|c&d<e>f(g)`h`$(i)' L=\"a;b|c&d<e>f(g)\"\n", want: m("K", "a;b|c&d<e>f(g)`h`$(i)", "L", "a;b|c&d<e>f(g)")},
	// Deliberate differences from bash:
	// CRLF: bash keeps the \r in every value; a Windows-edited file should
	// still give the intended values, so the parser strips it.
	{name: "CRLF", body: "K=a\r\nL='x'\r\n# c\r\nM=\"y\" # c\r\n", want: m("K", "a", "L", "x", "M", "y"),
		bashWant: m("K", "a\r", "L", "x\r", "M", "y")},
	// BOM: bash treats the BOM as part of the first word and fails to run it
	// as a command; the parser skips it.
	{name: "BOM", body: "\xef\xbb\xbfK=1\nL=2\n", want: m("K", "1", "L", "2"), bashFails: true},
}

func TestAgainstBash(t *testing.T) {
	bash := bashPathOrEmpty()
	for _, tc := range parseCases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse("in.env", strings.NewReader(tc.body))
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.body, err)
			}
			if got := f.Map(); !maps.Equal(got, tc.want) {
				t.Errorf("Parse(%q).Map() = %q, want %q", tc.body, got, tc.want)
			}
			if bash == "" {
				t.Fatal("bash not on PATH: the parser is checked against bash itself")
			}
			if tc.bashFails {
				if _, err := bashSource(t, bash, []byte(tc.body)); err == nil {
					t.Errorf("bash accepted %q; the documented difference is gone", tc.body)
				}
				return
			}
			want := tc.want
			if tc.bashWant != nil {
				want = tc.bashWant
			}
			checkAgainstBash(t, bash, []byte(tc.body), want)
		})
	}
	if len(parseCases) < 40 {
		t.Errorf("only %d cases", len(parseCases))
	}
}

// errorCases are inputs the parser must reject: line is the reported line and
// msg a substring of the message naming the construct.
var errorCases = []struct {
	name, body string
	line       int
	msg        string
}{
	{"command substitution", "K=$(date)\n", 1, "command substitution $(...)"},
	{"command substitution in double quotes", "A=1\nK=\"x $(date)\"\n", 2, "command substitution $(...)"},
	{"backticks", "A=1\n\nK=`date`\n", 3, "command substitution `...`"},
	{"backticks in double quotes", "K=\"`date`\"\n", 1, "command substitution `...`"},
	{"spaces around equals", "K = v\n", 1, "spaces around ="},
	{"space before equals", "A=1\nK =v\n", 2, "spaces around ="},
	{"command", "echo hi\n", 1, `would run "echo"`},
	{"source", "source other.env\n", 1, `would run "source"`},
	{"dot", ". other.env\n", 1, `would run "."`},
	{"if", "if true; then K=1; fi\n", 1, `would run "if"`},
	{"array element", "K[0]=1\n", 1, "not an assignment"},
	{"unterminated single quote", "A=1\nK='abc\n\nL=2\n", 2, "unterminated single quote"},
	{"unterminated double quote", "A=1\nB=2\nK=\"abc\nL=2\n", 3, "unterminated double quote"},
	{"unterminated double quote escape at EOF", "K=\"abc\\", 1, "unterminated double quote"},
	{"array assignment", "K=(a b)\n", 1, "array assignment"},
	{"arithmetic", "K=$((1+2))\n", 1, "arithmetic expansion $((...))"},
	{"old arithmetic", "K=$[1+2]\n", 1, "arithmetic expansion $[...]"},
	{"command after value", "K=a b\n", 1, `would run "b"`},
	{"escaped hash after value", "K=a \\#x\n", 1, `would run "\\#x"`},
	{"command after assignments", "K=1 L=2 cmd\n", 1, `would run "cmd"`},
	{"bare name after assignment", "K=1 L\n", 1, `would run "L"`},
	{"export after assignment", "K=1 export L=2\n", 1, `would run "export"`},
	{"semicolon", "K=a;b\n", 1, "unquoted ;"},
	{"semicolon after value", "K=1; L=2\n", 1, "unquoted ;"},
	{"and", "K=a&&b\n", 1, "unquoted &"},
	{"background", "K=a &\n", 1, "unquoted &"},
	{"pipe", "K=a|b\n", 1, "unquoted |"},
	{"redirect out", "K=a>f\n", 1, "redirection"},
	{"redirect in", "K=a<f\n", 1, "redirection"},
	{"process substitution", "K=<(ls)\n", 1, "process substitution"},
	{"paren in value", "K=a(b)\n", 1, "unquoted ("},
	{"tilde", "K=~/x\n", 1, "tilde expansion"},
	{"tilde after colon", "K=/a:~/x\n", 1, "tilde expansion"},
	{"tilde in default", "K=${X:-~}\n", 1, "tilde expansion"},
	{"positional", "K=$1\n", 1, "special parameter $1"},
	{"all args", "K=\"$@\"\n", 1, "special parameter $@"},
	{"status", "K=$?\n", 1, "special parameter $?"},
	{"pid", "K=$$\n", 1, "special parameter $$"},
	{"underscore param", "K=$_\n", 1, "special parameter $_"},
	{"braced positional", "K=${1}\n", 1, "special parameter ${1}"},
	{"length", "K=${#X}\n", 1, "${#...}"},
	{"indirect", "K=${!X}\n", 1, "${!...}"},
	{"substitution", "K=${X/a/b}\n", 1, "${X/...}"},
	{"assign default", "K=${X:=d}\n", 1, "${X:=...}"},
	{"alternate", "K=${X:+a}\n", 1, "${X:+...}"},
	{"suffix removal", "K=${X%.txt}\n", 1, "${X%...}"},
	{"bad substitution", "K=${}\n", 1, "bad substitution"},
	{"unterminated brace", "K=${X", 1, "unterminated ${...}"},
	{"blank in brace", "K=${X }\n", 1, "bad substitution"},
	{"unterminated default", "A=1\nK=${X:-abc\nL=1\n", 2, "unterminated ${...}"},
	{"ansi-c quoting", "K=$'a\\nb'\n", 1, "ANSI-C quoting"},
	{"locale quoting", "K=$\"a\"\n", 1, "locale translation"},
	{"export option", "export -n K\n", 1, "export option"},
	{"export invalid name", "export K=a b-c\n", 1, `export argument "b-c"`},
	{"export brace expansion", "export K={a,b}\n", 1, "brace expansion"},
	{"assign underscore", "_=x\n", 1, "assignment to _"},
	{"single quote in double-quoted default", "K=\"${X:-'a'}\"\n", 1, "single quote inside"},
	{"append without name", "+=x\n", 1, "not an assignment"},
	{"NUL byte", "K=1\nL=a\x00b\n", 2, "NUL byte"},
	{"line after multi-line value", "K='a\nb\nc'\nL=$(x)\n", 4, "command substitution"},
	{"line after continuation", "K=a\\\nb$(x)\n", 2, "command substitution"},
	{"CRLF line numbers", "K=1\r\nL=2\r\nM=`x`\r\n", 3, "command substitution"},
}

func TestSyntaxErrors(t *testing.T) {
	for _, tc := range errorCases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse("dir/in.env", strings.NewReader(tc.body))
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, want error", tc.body, f.Assignments)
			}
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%q) error %T %v, want *SyntaxError", tc.body, err, err)
			}
			if se.File != "dir/in.env" || se.Line != tc.line {
				t.Errorf("Parse(%q): error at %s:%d, want dir/in.env:%d (%v)", tc.body, se.File, se.Line, tc.line, err)
			}
			if !strings.Contains(se.Msg, tc.msg) {
				t.Errorf("Parse(%q): message %q does not mention %q", tc.body, se.Msg, tc.msg)
			}
			s := err.Error()
			if prefix := "dir/in.env:" + strconv.Itoa(tc.line) + ": "; !strings.HasPrefix(s, prefix) {
				t.Errorf("Error() = %q, want prefix %q", s, prefix)
			}
			if strings.ContainsAny(s, "\n\r") {
				t.Errorf("Error() = %q is not one line", s)
			}
		})
	}
}

func TestSyntaxErrorOneLine(t *testing.T) {
	e := &SyntaxError{File: "f.env", Line: 7, Msg: "bad\nthing\r"}
	if got, want := e.Error(), `f.env:7: bad\nthing\r`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	// A message quoting an unsupported operator that is a newline.
	_, err := Parse("x.env", strings.NewReader("K=${X\n}\n"))
	if err == nil || strings.Contains(err.Error(), "\n") {
		t.Errorf("err = %v, want a one-line error", err)
	}
}

func TestParseFile(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.env")
	_, err := ParseFile(missing)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("ParseFile(missing) = %v, want fs.ErrNotExist naming %s", err, missing)
	}
	_, err = ParseFile(dir) // a directory: opens, but reading fails
	if err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("ParseFile(dir) = %v, want an error naming %s", err, dir)
	}
	bad := filepath.Join(dir, "bad.env")
	if err := os.WriteFile(bad, []byte("A=1\nK=$(x)\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = ParseFile(bad)
	var se *SyntaxError
	if !errors.As(err, &se) || se.File != bad || se.Line != 2 {
		t.Errorf("ParseFile(bad) = %v, want SyntaxError at %s:2", err, bad)
	}
}

func TestParseWithEnv(t *testing.T) {
	env := map[string]string{"HOME": "/h", "EMPTY": "", "BASE": "b"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	body := "K=$HOME/x\nL=${EMPTY-d}${EMPTY:-e}${NOPE-n}\nBASE+=c\nM=$BASE\n"
	f, err := ParseWithEnv("in.env", strings.NewReader(body), lookup)
	if err != nil {
		t.Fatal(err)
	}
	want := m("K", "/h/x", "L", "en", "BASE", "bc", "M", "bc")
	if got := f.Map(); !maps.Equal(got, want) {
		t.Errorf("with env: %q, want %q", got, want)
	}
	// Without a lookup the process environment is never consulted.
	t.Setenv("HOME", "/should/not/be/read")
	f, err = Parse("in.env", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	want = m("K", "/x", "L", "den", "BASE", "c", "M", "c")
	if got := f.Map(); !maps.Equal(got, want) {
		t.Errorf("without env: %q, want %q", got, want)
	}
}

func TestMapAndLookup(t *testing.T) {
	f, err := Parse("in.env", strings.NewReader("K=1\nL=x\nK=2 # again\n"))
	if err != nil {
		t.Fatal(err)
	}
	wantA := []Assignment{{"K", "1", 1}, {"L", "x", 2}, {"K", "2", 3}}
	if !slices.Equal(f.Assignments, wantA) {
		t.Errorf("Assignments = %+v, want %+v", f.Assignments, wantA)
	}
	if v, ok := f.Lookup("K"); !ok || v != "2" {
		t.Errorf("Lookup(K) = %q, %v; want 2, true", v, ok)
	}
	if v, ok := f.Lookup("NOPE"); ok || v != "" {
		t.Errorf("Lookup(NOPE) = %q, %v; want \"\", false", v, ok)
	}
	if got := f.Map(); !maps.Equal(got, m("K", "2", "L", "x")) {
		t.Errorf("Map() = %q", got)
	}
	// Line is where an assignment starts, even after multi-line values.
	f, err = Parse("in.env", strings.NewReader("A='1\n2' B=3\n\nC=\"x\ny\"\\\n D=4\n"))
	if err != nil {
		t.Fatal(err)
	}
	var lines []int
	for _, a := range f.Assignments {
		lines = append(lines, a.Line)
	}
	if want := []int{1, 2, 4, 6}; !slices.Equal(lines, want) {
		t.Errorf("lines = %v, want %v", lines, want)
	}
}

var writeValues = []string{
	"", "plain", "with space", "it's", "''", `"dq"`, "$HOME ${X} $(date) `x`", `back\slash\`,
	"line1\nline2\n", "# not a comment", "a #b", "tab\there", "~/x", "a;b|c&d<e>f(g)",
	"héllo→✓", "\xff\xfe", "trailing\r", "crlf\r\nin value", "\r\n", "=", "\\\n", "'\\''", "!x", "*",
}

func TestWriteRoundTrip(t *testing.T) {
	var in []Assignment
	want := map[string]string{}
	for i, v := range writeValues {
		k := "K" + strconv.Itoa(i)
		in = append(in, Assignment{Key: k, Value: v})
		want[k] = v
	}
	in = append(in, Assignment{Key: "K0", Value: "repeated"}) // a key may repeat
	want["K0"] = "repeated"
	var buf bytes.Buffer
	if err := Write(&buf, in); err != nil {
		t.Fatal(err)
	}
	f, err := Parse("written.env", bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatalf("Parse(Write output): %v\n%s", err, buf.Bytes())
	}
	if len(f.Assignments) != len(in) {
		t.Fatalf("%d assignments back, want %d", len(f.Assignments), len(in))
	}
	for i, a := range f.Assignments {
		if a.Key != in[i].Key || a.Value != in[i].Value {
			t.Errorf("assignment %d = %q=%q, want %q=%q", i, a.Key, a.Value, in[i].Key, in[i].Value)
		}
	}
	if got := buf.String(); !strings.HasPrefix(got, "K0=''\nK1='plain'\nK2='with space'\nK3='it'\\''s'\n") {
		t.Errorf("unexpected format:\n%s", got)
	}
	bash := bashPathOrEmpty()
	if bash == "" {
		t.Fatal("bash not on PATH: the written file is checked against bash itself")
	}
	checkAgainstBash(t, bash, buf.Bytes(), want)
}

func TestWriteRejects(t *testing.T) {
	for _, a := range []Assignment{
		{Key: "", Value: "x"}, {Key: "1K", Value: "x"}, {Key: "K-L", Value: "x"}, {Key: "K L", Value: "x"},
		{Key: "_", Value: "x"}, {Key: "K=", Value: "x"}, {Key: "K", Value: "a\x00b"},
	} {
		var buf bytes.Buffer
		err := Write(&buf, []Assignment{{Key: "OK", Value: "1"}, a})
		if err == nil {
			t.Errorf("Write(%q=%q) succeeded", a.Key, a.Value)
		}
		if buf.Len() != 0 {
			t.Errorf("Write(%q=%q) wrote %q before failing", a.Key, a.Value, buf.String())
		}
	}
}

func TestValueSizeLimit(t *testing.T) {
	// Each line quadruples K; bash would happily build a 4^20-byte value.
	body := "K=abcd\n" + strings.Repeat("K=$K$K${K}${K:-x}\n", 20)
	_, err := Parse("big.env", strings.NewReader(body))
	var se *SyntaxError
	if !errors.As(err, &se) || !strings.Contains(se.Msg, "longer than") {
		t.Fatalf("err = %v, want a value-size SyntaxError", err)
	}
	body = "K=abcd\n" + strings.Repeat("K+=$K\n", 20)
	if _, err = Parse("big.env", strings.NewReader(body)); !errors.As(err, &se) {
		t.Fatalf("append: err = %v, want a value-size SyntaxError", err)
	}
	// A long literal value at the limit is fine.
	long := strings.Repeat("x", maxValue)
	f, err := Parse("long.env", strings.NewReader("K="+long+"\nL=$K\n"))
	if err != nil || f.Map()["L"] != long {
		t.Fatalf("value of exactly maxValue bytes: err %v", err)
	}
}
