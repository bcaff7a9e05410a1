package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/fuze-ai/fuze/internal/ollamatest"

	"github.com/fuze-ai/fuze/internal/knobs"
	"github.com/fuze-ai/fuze/internal/sysprep"
)

// useFakeHost points the system commands at a machine without GPU, systemd or stack binaries
// (programs maps the installed fakes) and returns its temporary root.
func useFakeHost(t *testing.T, programs map[string]func([]string) sysprep.FakeResult) *sysprep.Fake {
	t.Helper()
	dir := t.TempDir()
	osRelease := filepath.Join(dir, "os-release")
	if err := os.WriteFile(osRelease, []byte("ID=debian\nPRETTY_NAME=\"Debian GNU/Linux 12\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f := &sysprep.Fake{Programs: programs}
	saved := sysprepHost
	sysprepHost = func() sysprep.Host {
		return sysprep.Host{
			Runner:     f,
			PCIDevices: filepath.Join(dir, "pci"),
			OSRelease:  osRelease,
			SystemdDir: filepath.Join(dir, "no-systemd"),
			UnitDir:    filepath.Join(dir, "units"),
			Meminfo:    "/proc/meminfo",
			CUDAHome:   filepath.Join(dir, "no-cuda"),
			UID:        os.Geteuid(),
			Kernel:     "6.1.0-test",
		}
	}
	t.Cleanup(func() { sysprepHost = saved })
	return f
}

// systemConfig is a configuration whose ports are free and whose paths are temporary.
func systemConfig(t *testing.T, extra ...string) *knobs.Config {
	t.Helper()
	env := []string{
		"HOME=" + t.TempDir(),
		"LOG_DIR=" + t.TempDir(),
		"FUZE_ROOT=" + t.TempDir(),
		"OLLAMA_MODELS_DIR=" + filepath.Join(t.TempDir(), "store"),
		"GGUF_DEST_DIR=" + t.TempDir(),
		"PERSISTENT_PORT=" + strconv.Itoa(ollamatest.FreePort(t)),
		"TEST_PORT_A=" + strconv.Itoa(ollamatest.FreePort(t)),
		"TEST_PORT_B=" + strconv.Itoa(ollamatest.FreePort(t)),
		"PORT_A=" + strconv.Itoa(ollamatest.FreePort(t)),
		"PORT_B=" + strconv.Itoa(ollamatest.FreePort(t)),
		"NO_COLOR=1",
	}
	return knobs.Resolve(append(env, extra...))
}

func testStreams() (streams, *bytes.Buffer, *bytes.Buffer) {
	var out, errOut bytes.Buffer
	return streams{in: strings.NewReader(""), out: &out, err: &errOut}, &out, &errOut
}

func TestPreflightUtilityJSONAndExitStatus(t *testing.T) {
	useFakeHost(t, map[string]func([]string) sysprep.FakeResult{})
	s, out, _ := testStreams()
	cfg := systemConfig(t, "OLLAMA_BIN="+filepath.Join(t.TempDir(), "ollama"))
	err := runUtility(context.Background(), s, cfg, "doctor", []string{"--json"})
	var ue usageError
	if err == nil || errors.As(err, &ue) || !strings.Contains(err.Error(), "preflight found 1 error(s)") {
		t.Fatalf("err = %v (ollama is missing: a failure, not a usage error)", err)
	}
	var doc struct {
		Checks []sysprep.Check `json:"checks"`
	}
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("JSON: %v\n%s", err, out.String())
	}
	found := false
	for _, c := range doc.Checks {
		if c.Name == "ollama" && c.Status == sysprep.StatusError {
			found = true
		}
	}
	if !found {
		t.Errorf("no ollama error in %+v", doc.Checks)
	}
}

func TestPreflightCommandOK(t *testing.T) {
	useFakeHost(t, map[string]func([]string) sysprep.FakeResult{
		"ollama": func([]string) sysprep.FakeResult { return sysprep.FakeResult{Stdout: "ollama version is 0.17.4\n"} },
	})
	s, out, _ := testStreams()
	cmd := preflightCommand(s, fixedConfig(systemConfig(t, "OLLAMA_BIN=ollama")))
	if err := runSubcommand(context.Background(), s, cmd, nil); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "✔ ollama") || !strings.Contains(out.String(), "0.17.4") || strings.Contains(out.String(), "\x1b[") {
		t.Errorf("output:\n%s", out.String())
	}
}

func TestSysprepCommandsUsage(t *testing.T) {
	useFakeHost(t, nil)
	s, _, _ := testStreams()
	cfg := systemConfig(t)
	var ue usageError
	if err := runUtility(context.Background(), s, cfg, "preflight", []string{"--bogus"}); !errors.As(err, &ue) {
		t.Errorf("bad flag: %v", err)
	}
	if err := runUtility(context.Background(), s, cfg, "frobnicate", nil); !errors.As(err, &ue) {
		t.Errorf("unknown utility: %v", err)
	}
	// clean and analyze are dispatched to their commands (a bad flag reaches their parser).
	for _, name := range []string{"clean", "cleanup", "clean-bench", "analyze", "summary"} {
		if err := runUtility(context.Background(), s, cfg, name, []string{"--bogus"}); !errors.As(err, &ue) || !strings.Contains(err.Error(), "bogus") {
			t.Errorf("%s: %v", name, err)
		}
	}
	if handled, err := runOllamaSystem(context.Background(), s, cfg, "benchmark", nil); handled || err != nil {
		t.Errorf("benchmark handled=%v err=%v", handled, err)
	}
	for name, cmd := range map[string]func(streams) string{
		"preflight":       func(s streams) string { return newPreflightCommand(s).Name() },
		"gpu-prepare":     func(s streams) string { return newGPUPrepareCommand(s).Name() },
		"migrate-logs":    func(s streams) string { return newMigrateLogsCommand(s).Name() },
		"install":         func(s streams) string { return newOllamaInstallCommand(s).Name() },
		"service-cleanup": func(s streams) string { return newServiceCleanupCommand(s).Name() },
	} {
		if got := cmd(s); got != name {
			t.Errorf("command %q named %q", name, got)
		}
	}
}

func TestMigrateLogsUtilityTwice(t *testing.T) {
	useFakeHost(t, nil)
	cfg := systemConfig(t)
	root, dest := cfg.Get("FUZE_ROOT"), cfg.Get("LOG_DIR")
	legacy := filepath.Join(root, "factory", "LLM", "refinery", "stack", "logs")
	if err := os.MkdirAll(legacy, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(legacy, "ollama_bench_1.csv"), []byte("x"), 0o644)
	s, out, _ := testStreams()
	if err := runUtility(context.Background(), s, cfg, "logs", nil); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "Summary: moved 1 files into "+dest) || !strings.Contains(out.String(), "linked: "+legacy) {
		t.Fatalf("first run:\n%s", out.String())
	}
	out.Reset()
	if err := runUtility(context.Background(), s, cfg, "migrate-logs", nil); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "Summary: moved 0 files") {
		t.Fatalf("second run:\n%s", out.String())
	}
	if target, err := os.Readlink(legacy); err != nil || target != dest {
		t.Errorf("link %q %v", target, err)
	}
}

func TestGPUPrepareUtilityNoGPU(t *testing.T) {
	useFakeHost(t, nil)
	s, out, _ := testStreams()
	if err := runUtility(context.Background(), s, systemConfig(t), "gpu", []string{"--dry-run"}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "No NVIDIA GPU detected") {
		t.Errorf("output:\n%s", out.String())
	}
}

func TestServiceCleanupAndInstallDryRuns(t *testing.T) {
	useFakeHost(t, nil)
	cfg := systemConfig(t, "OLLAMA_BIN="+filepath.Join(t.TempDir(), "ollama"), "OLLAMA_VERSION=0.17.4")
	script := filepath.Join(cfg.Get("FUZE_ROOT"), "scripts", "ensure-ollama.sh")
	os.MkdirAll(filepath.Dir(script), 0o755)
	os.WriteFile(script, []byte("#!/bin/sh\n"), 0o755)

	s, out, _ := testStreams()
	handled, err := runOllamaSystem(context.Background(), s, cfg, "svc-clean", []string{"--dry-run"})
	if !handled || err != nil {
		t.Fatalf("handled=%v err=%v\n%s", handled, err, out.String())
	}
	if !strings.Contains(out.String(), "would start OLLAMA_HOST=127.0.0.1:"+cfg.Get("PERSISTENT_PORT")+" OLLAMA_MODELS="+cfg.Get("OLLAMA_MODELS_DIR")) {
		t.Errorf("service-cleanup dry run:\n%s", out.String())
	}

	out.Reset()
	handled, err = runOllamaSystem(context.Background(), s, cfg, "install", []string{"--from-source", "--dry-run"})
	if !handled || err != nil {
		t.Fatalf("handled=%v err=%v\n%s", handled, err, out.String())
	}
	if !strings.Contains(out.String(), "would run OLLAMA_VERSION=0.17.4 bash "+script) || !strings.Contains(out.String(), "would start") {
		t.Errorf("install dry run:\n%s", out.String())
	}
	if _, err := os.Stat(cfg.Get("OLLAMA_BIN")); err == nil {
		t.Error("dry run installed a binary")
	}
}
