package server

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// recorder is a fake systemctl/journalctl that records calls and plays a unit state.
type recorder struct {
	calls []string
	state string
}

func (r *recorder) run(_ context.Context, name string, args ...string) ([]byte, error) {
	r.calls = append(r.calls, name+" "+strings.Join(args, " "))
	switch {
	case name == "systemctl" && args[0] == "is-active":
		return []byte(r.state + "\n"), nil
	case name == "journalctl":
		return []byte("loading model\nError: out of memory\n"), nil
	case name == "systemctl" && args[0] == "reset-failed":
		return []byte("Unit not loaded"), errors.New("exit status 1")
	}
	return nil, nil
}

func TestSystemdUnitLifecycle(t *testing.T) {
	dir := t.TempDir()
	rec := &recorder{state: "active"}
	sd := Systemd{UnitDir: dir, Run: rec.run}
	spec := Spec{Name: "ollama test daemon A", Path: "/usr/local/bin/ollama", Args: []string{"serve"},
		Env:     []string{"PATH=/usr/bin", "OLLAMA_HOST=127.0.0.1:11435", "OLLAMA_MODELS=/FuZe/models/ollama", "CUDA_VISIBLE_DEVICES=GPU-abc", "SECRET=x"},
		LogPath: "/var/log/fuze-stack/ollama_a.log"}
	u, err := sd.Start(context.Background(), "ollama-test-a.service", "Ollama (TEST A on :11435)", spec)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "ollama-test-a.service"))
	if err != nil {
		t.Fatal(err)
	}
	unit := string(raw)
	for _, want := range []string{"Description=Ollama (TEST A on :11435)", `Environment="CUDA_VISIBLE_DEVICES=GPU-abc"`,
		`Environment="OLLAMA_HOST=127.0.0.1:11435"`, "ExecStart=/usr/local/bin/ollama serve", "Restart=no", "StandardOutput=append:/var/log/fuze-stack/ollama_a.log"} {
		if !strings.Contains(unit, want) {
			t.Errorf("unit lacks %q:\n%s", want, unit)
		}
	}
	if strings.Contains(unit, "SECRET") || strings.Contains(unit, "PATH=") {
		t.Errorf("unit captured unrelated environment:\n%s", unit)
	}
	if got := strings.Join(rec.calls, "; "); got != "systemctl daemon-reload; systemctl reset-failed ollama-test-a.service; systemctl start ollama-test-a.service" {
		t.Fatalf("calls: %s", got)
	}
	if u.Unit() != "ollama-test-a.service" {
		t.Fatal(u.Unit())
	}
	if err := u.WaitReady(context.Background(), time.Second, time.Millisecond, func(context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
	rec.state = "failed"
	err = u.WaitReady(context.Background(), time.Second, time.Millisecond, func(context.Context) error { return errors.New("refused") })
	if !errors.Is(err, ErrExited) || !strings.Contains(err.Error(), "out of memory") || !strings.Contains(err.Error(), "is failed") {
		t.Fatalf("want the unit's failure with its journal: %v", err)
	}
	rec.calls = nil
	if err := u.Stop(time.Second); err != nil || rec.calls[0] != "systemctl stop ollama-test-a.service" {
		t.Fatalf("stop: %v %v", err, rec.calls)
	}
}
