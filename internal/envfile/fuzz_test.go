package envfile

import (
	"bytes"
	"errors"
	"os"
	"testing"
)

// FuzzParse checks that Parse never panics, that errors are *SyntaxError with
// a plausible line, and that for every accepted file Write(assignments) parses
// back to the same assignments (so Write can re-emit anything Parse accepts).
func FuzzParse(f *testing.F) {
	for _, p := range fixtureFiles(f) {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, tc := range parseCases {
		f.Add([]byte(tc.body))
	}
	for _, tc := range errorCases {
		f.Add([]byte(tc.body))
	}
	for _, v := range writeValues {
		f.Add([]byte("K='" + v + "'\n"))
	}

	f.Fuzz(func(t *testing.T, body []byte) {
		file, err := Parse("fuzz.env", bytes.NewReader(body))
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %T %v, want *SyntaxError", err, err)
			}
			if se.Line < 1 || se.Line > bytes.Count(body, []byte("\n"))+1 {
				t.Fatalf("error line %d out of range: %v", se.Line, err)
			}
			if bytes.ContainsAny([]byte(err.Error()), "\r\n") {
				t.Fatalf("Error() not one line: %q", err.Error())
			}
			return
		}
		var buf bytes.Buffer
		if err := Write(&buf, file.Assignments); err != nil {
			t.Fatalf("Write of parsed assignments: %v", err)
		}
		back, err := Parse("written.env", &buf)
		if err != nil {
			t.Fatalf("Parse(Write(...)): %v\nwritten:\n%s", err, buf.Bytes())
		}
		if len(back.Assignments) != len(file.Assignments) {
			t.Fatalf("%d assignments back, want %d", len(back.Assignments), len(file.Assignments))
		}
		for i, a := range back.Assignments {
			if w := file.Assignments[i]; a.Key != w.Key || a.Value != w.Value {
				t.Fatalf("assignment %d: %q=%q back, want %q=%q", i, a.Key, a.Value, w.Key, w.Value)
			}
		}
		got, want := back.Map(), file.Map()
		for k, v := range want {
			if got[k] != v {
				t.Fatalf("Map()[%s] = %q back, want %q", k, got[k], v)
			}
		}
		if len(got) != len(want) {
			t.Fatalf("Map() has %d keys back, want %d", len(got), len(want))
		}
	})
}
