package progress

import (
	"bytes"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/fuze-ai/fuze/internal/engine"
	"github.com/fuze-ai/fuze/internal/server"
)

// onTerminal runs f with the terminal side of a pseudo-terminal (240 columns) and returns what
// a terminal emulator would have received.
func onTerminal(t *testing.T, f func(tty *os.File)) string {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatalf("no pseudo-terminal: %v", err)
	}
	defer ptmx.Close()
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 40, Cols: 240}); err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	read := make(chan struct{})
	go func() {
		defer close(read)
		io.Copy(&got, ptmx) // ends with EIO once the terminal side is closed
	}()
	f(tty)
	tty.Close()
	select {
	case <-read:
	case <-time.After(10 * time.Second):
		t.Fatal("the pseudo-terminal's output never ended")
	}
	return got.String()
}

func terminalEnv(t *testing.T) {
	t.Setenv("NO_COLOR", "")
	t.Setenv("TERM", "xterm-256color")
}

func runSweep(con *Console, clk *clock) {
	s := con.Sweep()
	log := con.Writer()
	s.Report(engine.TuningStarted{Endpoint: ep, Target: tgt})
	s.Report(engine.ConfigurationStarted{Candidate: cand("base"), Baseline: true})
	clk.add(4 * time.Second)
	s.Report(engine.AttemptMeasured{Candidate: cand("base")})
	log.Write([]byte("✔ [A] base-as-is\n"))
	s.Report(engine.ConfigurationStarted{Candidate: cand("ng3"), Index: 1, Total: 3})
	clk.add(8 * time.Second)
	s.Report(engine.AttemptMeasured{Candidate: cand("ng3")})
	log.Write([]byte("✔ [A] optimized ng3\n"))
	clk.add(time.Second)
	s.Report(engine.ConfigurationStarted{Candidate: cand("ng2"), Index: 2, Total: 3})
	s.Wait(server.WaitStatus{Name: "llama-server A", Elapsed: 0, LastLine: "load_tensors: loading"})
	s.Wait(server.WaitStatus{Name: "llama-server A", Elapsed: 12 * time.Second, LastLine: "load_tensors: offloaded 33/33 layers"})
	s.Wait(server.WaitStatus{Name: "llama-server A", Elapsed: 13 * time.Second, Done: true})
	clk.add(24 * time.Second)
	s.Report(engine.AttemptMeasured{Candidate: cand("ng2")})
	log.Write([]byte("✔ [A] optimized ng2\n"))
	s.Report(engine.BestFound{Best: cand("ng3")})
	s.Close()
}

// On a terminal the sweep is a bar redrawn in place: i of N, elapsed, ETA, the wait's log
// line, and it ends showing the configurations measured; log lines stay whole above it.
func TestSweepBarOnATerminal(t *testing.T) {
	terminalEnv(t)
	clk := newClock()
	got := onTerminal(t, func(tty *os.File) {
		con := New(tty, clk.now)
		if con.Mode() != Bars {
			t.Errorf("a terminal without NO_COLOR: mode %v", con.Mode())
		}
		runSweep(con, clk)
	})
	for _, want := range []string{
		"\x1b[", // drawn in place
		"(0/3)", // the bar counts configurations measured
		"(1/3)",
		"[A] m-1: baseline (the server's default), elapsed 0s",
		"[A] m-1: configuration 1 of 3, elapsed 4s, ETA 12s",
		"[A] m-1: configuration 2 of 3, elapsed 13s, ETA 12s · waiting for llama-server A: 12s; log: load_tensors: offloaded 33/33 layers",
		"(2/3) [A] m-1: done, 2 of 3 configurations measured, elapsed 37s", // the final state stays
		"\x1b[2K\r✔ [A] optimized ng2\r\n",                                 // the bar is cleared for a log line, which is whole
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in\n%q", want, got)
		}
	}
	if i, j := strings.LastIndex(got, "done, 2 of 3"), strings.LastIndex(got, "optimized ng2"); i < j {
		t.Errorf("the final state is not below the last log line:\n%q", got)
	}
}

// NO_COLOR on a terminal: plain lines, no bar, no escape codes.
func TestNoColorOnATerminalIsPlainLines(t *testing.T) {
	terminalEnv(t)
	t.Setenv("NO_COLOR", "1")
	clk := newClock()
	got := onTerminal(t, func(tty *os.File) {
		con := New(tty, clk.now)
		if con.Mode() != Lines {
			t.Errorf("NO_COLOR=1: mode %v", con.Mode())
		}
		runSweep(con, clk)
	})
	want := strings.ReplaceAll(`[A] m-1: baseline (the server's default), elapsed 0s
✔ [A] base-as-is
[A] m-1: configuration 1 of 3, elapsed 4s, ETA 12s
✔ [A] optimized ng3
[A] m-1: configuration 2 of 3, elapsed 13s, ETA 12s
waiting for llama-server A: 0s; log: load_tensors: loading
waiting for llama-server A: 12s; log: load_tensors: offloaded 33/33 layers
llama-server A ready after 13s
✔ [A] optimized ng2
[A] m-1: done, 2 of 3 configurations measured, elapsed 37s
`, "\n", "\r\n") // the terminal's line discipline turns \n into \r\n
	if got != want {
		t.Fatalf("got:\n%q\nwant:\n%q", got, want)
	}
}

// Writing a file on a terminal: bytes written, rate, ETA, and the final state at 100%.
func TestWritingBarOnATerminal(t *testing.T) {
	terminalEnv(t)
	clk := newClock()
	got := onTerminal(t, func(tty *os.File) {
		w := New(tty, clk.now).Writing("m.gguf")
		const total = 10 << 30
		for _, n := range []int64{0, 1 << 30, 3 << 30, total} {
			clk.t = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(n / (256 << 20) * int64(time.Second)))
			w.Set(n, total)
		}
		w.Done(nil)
	})
	for _, want := range []string{
		"\x1b[",
		"  10% |██                  |  writing m.gguf: 1.0 GiB of 10.0 GiB, 256.0 MiB/s, ETA 36s", // by the injected clock
		" 100% |████████████████████|  wrote m.gguf: 10.0 GiB in 40s, 256.0 MiB/s",                // the last state
		"wrote m.gguf: 10.0 GiB in 40s, 256.0 MiB/s",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in\n%q", want, got)
		}
	}
	if !strings.HasSuffix(got, "\r\n") {
		t.Errorf("the final state does not end its line: %q", got)
	}
}

// A wait before any sweep is a spinner taken off when the server is ready; a sweep whose every
// candidate was measured ends full, after the last log line.
func TestSpinnerAndFullBarOnATerminal(t *testing.T) {
	terminalEnv(t)
	clk := newClock()
	got := onTerminal(t, func(tty *os.File) {
		con := New(tty, clk.now)
		s, log := con.Sweep(), con.Writer()
		s.Wait(server.WaitStatus{Name: "ollama test daemon A", Elapsed: 0})
		s.Wait(server.WaitStatus{Name: "ollama test daemon A", Elapsed: time.Second, LastLine: "Listening on 127.0.0.1:11435"})
		s.Wait(server.WaitStatus{Name: "ollama test daemon A", Elapsed: 2 * time.Second, Done: true})
		log.Write([]byte("== test daemon A\n"))
		s.Report(engine.TuningStarted{Endpoint: ep, Target: tgt})
		s.Report(engine.ConfigurationStarted{Candidate: cand("base"), Baseline: true})
		clk.add(5 * time.Second)
		s.Report(engine.AttemptMeasured{Candidate: cand("base")})
		s.Report(engine.ConfigurationStarted{Candidate: cand("ng1"), Index: 1, Total: 1})
		clk.add(5 * time.Second)
		s.Report(engine.AttemptMeasured{Candidate: cand("ng1")})
		log.Write([]byte("✔ [A] optimized ng1\n"))
		s.Report(engine.BestFound{Best: cand("ng1")})
		s.Close()
	})
	for _, want := range []string{
		"waiting for ollama test daemon A: 1s; log: Listening on 127.0.0.1:11435 \x1b[0K\x1b[2K\r== test daemon A\r\n",
		"(1/1) [A] m-1: done, 1 of 1 configurations measured, elapsed 10s \x1b[0K\r\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in\n%q", want, got)
		}
	}
	if !strings.HasSuffix(got, "100% |████████████████████| (1/1) [A] m-1: done, 1 of 1 configurations measured, elapsed 10s \x1b[0K\r\n") {
		t.Errorf("last state:\n%q", got)
	}
}
