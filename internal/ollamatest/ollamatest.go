// Package ollamatest starts real Ollama servers for tests: `ollama serve` on a free loopback
// port with an isolated model store and home, stopped (whole process group) at test cleanup,
// also when the test fails.
//
// The binary comes from FUZE_TEST_OLLAMA (set by `make test`), else from the repository's
// .cache/ollama build (scripts/ensure-ollama.sh), else from PATH. When none is found the test
// is skipped with a message saying how to get one — unless FUZE_REQUIRE_OLLAMA=1, which makes it
// a failure (`make test` and CI set it, so they cannot pass without a real server).
package ollamatest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"testing"
	"time"

	"github.com/fuze-ai/fuze/internal/gguf"
	"github.com/fuze-ai/fuze/internal/ollamaapi"
	"github.com/fuze-ai/fuze/internal/server"
)

// Server is a running test Ollama.
type Server struct {
	Addr    string // host:port it listens on
	Models  string // its OLLAMA_MODELS directory
	LogPath string
	Client  *ollamaapi.Client
	Process *server.Process
}

// Binary returns the path of a real ollama binary, or skips/fails the test.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("FUZE_TEST_OLLAMA"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("FUZE_TEST_OLLAMA=%s: %v", p, err)
		}
		return p
	}
	if p := cachedBuild(); p != "" {
		return p
	}
	if p, err := exec.LookPath("ollama"); err == nil {
		return p
	}
	msg := "no ollama binary: run `make ollama` (builds it into .cache/) or set FUZE_TEST_OLLAMA"
	if os.Getenv("FUZE_REQUIRE_OLLAMA") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// cachedBuild finds .cache/ollama/v*/bin/ollama in the enclosing repository.
func cachedBuild() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			matches, _ := filepath.Glob(filepath.Join(dir, ".cache", "ollama", "v*", "bin", "ollama"))
			sort.Strings(matches)
			if len(matches) > 0 {
				return matches[len(matches)-1]
			}
			return ""
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

var listeningRE = regexp.MustCompile(`Listening on (\S+)`)

// Start starts `ollama serve` for the test and waits until /api/tags answers.
// extraEnv entries (KEY=VALUE) are added to the server's environment.
func Start(t testing.TB, extraEnv ...string) *Server {
	t.Helper()
	bin := Binary(t)
	dir := t.TempDir()
	models := filepath.Join(dir, "models")
	logPath := filepath.Join(dir, "ollama.log")
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + dir, // ollama writes its key pair under $HOME/.ollama
		"OLLAMA_HOST=127.0.0.1:0",
		"OLLAMA_MODELS=" + models,
		"OLLAMA_NOPRUNE=1",
		"OLLAMA_KEEP_ALIVE=5m",
		"CUDA_VISIBLE_DEVICES=", // tests run on the CPU even on a GPU host
	}
	env = append(env, extraEnv...)
	proc, err := server.Start(server.Spec{Name: "test ollama", Path: bin, Args: []string{"serve"}, Env: env, LogPath: logPath})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = proc.Stop(10 * time.Second)
		if t.Failed() {
			t.Logf("ollama log (%s), last lines:\n%s", logPath, joinLines(proc.LastLines(40)))
		}
	})
	s := &Server{Models: models, LogPath: logPath, Process: proc}
	ctx := context.Background()
	err = proc.WaitReady(ctx, 60*time.Second, 100*time.Millisecond, func(ctx context.Context) error {
		if s.Addr == "" {
			m := proc.FindInLog(listeningRE)
			if m == nil {
				return fmt.Errorf("no \"Listening on\" line yet")
			}
			s.Addr = m[1]
			s.Client = ollamaapi.New(s.Addr)
		}
		_, err := s.Client.Tags(ctx)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// CreateModel creates model name on the server from a GGUF file.
func (s *Server) CreateModel(t testing.TB, name, ggufPath string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := s.Client.CreateFromGGUF(ctx, name, ggufPath); err != nil {
		t.Fatalf("create %s from %s: %v", name, ggufPath, err)
	}
}

// URL returns the server's base URL.
func (s *Server) URL() string { return "http://" + s.Addr }

func joinLines(lines []string) string {
	out := ""
	for _, l := range lines {
		out += l + "\n"
	}
	return out
}

// TinyGGUF writes fuze's tiny synthetic model (the `fuze synth --preset tiny` file) into a
// temporary directory and returns its path.
func TinyGGUF(t testing.TB) string { return PresetGGUF(t, "tiny") }

// PresetGGUF writes the synthetic model of a `fuze synth` preset into a temporary directory
// and returns its path.
func PresetGGUF(t testing.TB, preset string) string {
	t.Helper()
	p, ok := gguf.LookupPreset(preset)
	if !ok {
		t.Fatalf("no %s preset", preset)
	}
	s, err := gguf.NewSynth(gguf.SynthOptions{Shape: p.Shape, Type: p.Type, Seed: 1, Name: "fuze-" + preset})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), preset+".gguf")
	if _, err := s.WriteFile(context.Background(), path); err != nil {
		t.Fatal(err)
	}
	return path
}

// StartWithTiny starts a test Ollama holding the tiny model under name.
func StartWithTiny(t testing.TB, name string) *Server {
	t.Helper()
	srv := Start(t)
	srv.CreateModel(t, name, TinyGGUF(t))
	return srv
}

// FreePort returns a free loopback port or fails the test.
func FreePort(t testing.TB) int {
	t.Helper()
	p, err := server.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}
