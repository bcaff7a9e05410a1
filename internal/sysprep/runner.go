package sysprep

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// Cmd is one program to run.
type Cmd struct {
	Name   string
	Args   []string
	Env    []string  // added to the current environment (KEY=VALUE)
	Stdout io.Writer // nil discards
	Stderr io.Writer // nil discards
}

// String renders the command as a shell line: env assignments, program, quoted arguments.
func (c Cmd) String() string {
	parts := make([]string, 0, len(c.Env)+1+len(c.Args))
	for _, e := range c.Env {
		parts = append(parts, shellQuote(e))
	}
	parts = append(parts, shellQuote(c.Name))
	for _, a := range c.Args {
		parts = append(parts, shellQuote(a))
	}
	return strings.Join(parts, " ")
}

func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,+@%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Runner runs external programs. It satisfies gpu.Runner (Output), so the same runner serves
// the nvidia-smi inventory.
type Runner interface {
	// Output runs name and returns its standard output; on a failed exit the error is (or
	// wraps) an *exec.ExitError, and a program that is not installed wraps exec.ErrNotFound.
	Output(ctx context.Context, name string, args ...string) ([]byte, error)
	// Run runs c, streaming its output to c.Stdout and c.Stderr.
	Run(ctx context.Context, c Cmd) error
	// LookPath finds a program on PATH, like exec.LookPath.
	LookPath(name string) (string, error)
}

// ExecRunner is the Runner that really runs programs. The zero value is ready to use.
type ExecRunner struct {
	// Command builds the command; nil means exec.CommandContext. Tests set it to re-execute
	// the test binary as a fake systemctl or apt-get.
	Command func(ctx context.Context, name string, args ...string) *exec.Cmd
	// LookPathFunc replaces exec.LookPath when set.
	LookPathFunc func(name string) (string, error)
}

func (r ExecRunner) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	if r.Command != nil {
		return r.Command(ctx, name, args...)
	}
	return exec.CommandContext(ctx, name, args...)
}

// Output implements Runner.
func (r ExecRunner) Output(ctx context.Context, name string, args ...string) ([]byte, error) {
	return r.command(ctx, name, args...).Output()
}

// Run implements Runner. apt-get and dpkg never stop to ask questions: DEBIAN_FRONTEND is
// noninteractive for every command run this way.
func (r ExecRunner) Run(ctx context.Context, c Cmd) error {
	cmd := r.command(ctx, c.Name, c.Args...)
	base := cmd.Env
	if base == nil {
		base = os.Environ()
	}
	cmd.Env = append(append(base, "DEBIAN_FRONTEND=noninteractive"), c.Env...)
	cmd.Stdout, cmd.Stderr = c.Stdout, c.Stderr
	return cmd.Run()
}

// LookPath implements Runner.
func (r ExecRunner) LookPath(name string) (string, error) {
	if r.LookPathFunc != nil {
		return r.LookPathFunc(name)
	}
	return exec.LookPath(name)
}

// combined runs name and returns its standard output and error together (version banners go
// to either).
func combined(ctx context.Context, r Runner, name string, args ...string) ([]byte, error) {
	var b bytes.Buffer
	err := r.Run(ctx, Cmd{Name: name, Args: args, Stdout: &b, Stderr: &b})
	return b.Bytes(), err
}

// FakeResult is what a fake program prints and how it exits.
type FakeResult struct {
	Stdout, Stderr string
	Exit           int
}

// FakeExitError is the error of a fake program that exits non-zero.
type FakeExitError struct {
	Name   string
	Code   int
	Stderr []byte
}

func (e *FakeExitError) Error() string { return fmt.Sprintf("%s: exit status %d", e.Name, e.Code) }

// Fake is a recording Runner for tests. Programs maps a program's name (or full path) to its
// behaviour; a program not in the map is not installed. Every call is recorded as its
// command line (Cmd.String) in Calls, also for programs that are not installed.
type Fake struct {
	Programs map[string]func(args []string) FakeResult

	mu    sync.Mutex
	calls []string
}

// Calls returns the command lines run so far, in order.
func (f *Fake) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *Fake) program(name string) (func([]string) FakeResult, bool) {
	if p, ok := f.Programs[name]; ok {
		return p, true
	}
	p, ok := f.Programs[filepath.Base(name)]
	return p, ok
}

func (f *Fake) call(c Cmd) (FakeResult, error) {
	f.mu.Lock()
	f.calls = append(f.calls, c.String())
	f.mu.Unlock()
	p, ok := f.program(c.Name)
	if !ok {
		return FakeResult{}, &exec.Error{Name: c.Name, Err: exec.ErrNotFound}
	}
	res := p(c.Args)
	if res.Exit != 0 {
		return res, &FakeExitError{Name: c.Name, Code: res.Exit, Stderr: []byte(res.Stderr)}
	}
	return res, nil
}

// Output implements Runner.
func (f *Fake) Output(_ context.Context, name string, args ...string) ([]byte, error) {
	res, err := f.call(Cmd{Name: name, Args: args})
	return []byte(res.Stdout), err
}

// Run implements Runner.
func (f *Fake) Run(_ context.Context, c Cmd) error {
	res, err := f.call(c)
	if c.Stdout != nil {
		io.WriteString(c.Stdout, res.Stdout)
	}
	if c.Stderr != nil {
		io.WriteString(c.Stderr, res.Stderr)
	}
	return err
}

// LookPath implements Runner: an installed fake program is found under its own name.
func (f *Fake) LookPath(name string) (string, error) {
	if _, ok := f.program(name); ok {
		if strings.ContainsRune(name, '/') {
			return name, nil
		}
		return "/fake/bin/" + name, nil
	}
	return "", &exec.Error{Name: name, Err: exec.ErrNotFound}
}

// notInstalled reports whether err says the program does not exist.
func notInstalled(err error) bool {
	return errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist)
}
