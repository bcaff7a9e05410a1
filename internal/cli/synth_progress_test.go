package cli

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
)

// synthTo runs `fuze synth` with stderr on errw and returns stdout.
func synthTo(t *testing.T, errw io.Writer, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	cmd := newSynthCommand(streams{in: strings.NewReader(""), out: &out, err: errw})
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(errw)
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// Off a terminal, synth's progress is plain lines on stderr, the last one the total written;
// stdout keeps its one summary line.
func TestSynthProgressPlainLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.gguf")
	var errb bytes.Buffer
	out := synthTo(t, &errb, "--preset", "small", "-o", path) // 56 MiB

	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(errb.String(), "\n"), "\n")
	last := lines[len(lines)-1]
	if len(lines) < 5 || !strings.HasPrefix(last, "wrote "+path+": "+humanBytes(st.Size())+" in ") {
		t.Errorf("last line %q (file %d bytes)", last, st.Size())
	}
	for _, l := range lines[:len(lines)-1] {
		if !strings.HasPrefix(l, "writing "+path+": ") || !strings.Contains(l, "%), ") || !strings.Contains(l, "ETA ") {
			t.Errorf("step line %q", l)
		}
	}
	if strings.ContainsAny(errb.String(), "\x1b\r") || strings.Count(out, "\n") != 1 {
		t.Errorf("stderr %q, stdout %q", errb.String(), out)
	}
}

// On a terminal, a bar: the bytes written of the total, the rate and ETA while it runs, the
// final state at 100%; NO_COLOR=1 on the same terminal gives the plain lines.
func TestSynthProgressOnATerminal(t *testing.T) {
	for _, noColor := range []string{"", "1"} {
		t.Setenv("NO_COLOR", noColor)
		t.Setenv("TERM", "xterm-256color")
		ptmx, tty, err := pty.Open()
		if err != nil {
			t.Fatalf("no pseudo-terminal: %v", err)
		}
		if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 40, Cols: 200}); err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		read := make(chan struct{})
		go func() { defer close(read); io.Copy(&got, ptmx) }()
		path := filepath.Join(t.TempDir(), "m.gguf")
		synthTo(t, tty, "--preset", "small", "-o", path) // 56 MiB: several redraws of the bar
		tty.Close()
		select {
		case <-read:
		case <-time.After(10 * time.Second):
			t.Fatal("the pseudo-terminal's output never ended")
		}
		ptmx.Close()
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		s := got.String()
		final := "wrote " + path + ": " + humanBytes(st.Size()) + " in "
		if noColor != "" {
			if strings.Contains(s, "\x1b") || !strings.Contains(s, "\r\n"+final) && !strings.HasPrefix(s, final) {
				t.Errorf("NO_COLOR=1 on a terminal:\n%q", s)
			}
			continue
		}
		for _, want := range []string{"\x1b[", "|  writing " + path + ": ", " of " + humanBytes(st.Size()), "ETA ", " 100% |████████████████████|  " + final} {
			if !strings.Contains(s, want) {
				t.Errorf("missing %q in\n%q", want, s)
			}
		}
		if !strings.HasSuffix(s, "\r\n") {
			t.Errorf("the bar's last state does not end its line: %q", s)
		}
	}
}
