package envfile

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// bashPathOrEmpty returns the bash binary, or "" when there is none (Linux CI
// always has one); callers then skip the comparison with real bash.
func bashPathOrEmpty() string {
	p, err := exec.LookPath("bash")
	if err != nil {
		return ""
	}
	return p
}

// bashSource runs `set -a; source FILE` in a bash with an empty environment
// and returns the exported variables that sourcing added or changed (the
// environment is dumped with env -0 before and after, in the same shell).
// Anything bash prints to stderr, or a failing status, is returned as an error.
func bashSource(t *testing.T, bash string, body []byte) (map[string]string, error) {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "in.env")
	before := filepath.Join(dir, "before")
	after := filepath.Join(dir, "after")
	if err := os.WriteFile(file, body, 0o600); err != nil {
		t.Fatal(err)
	}
	script := `env -0 >"$2" || exit 90; set -a; source "$1" || exit 91; set +a; env -0 >"$3" || exit 92`
	cmd := exec.Command("env", "-i", "PATH=/usr/bin:/bin", bash, "-c", script, "_", file, before, after)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil || stderr.Len() > 0 {
		return nil, fmt.Errorf("bash: %v: %s", err, stderr.String())
	}
	b, a := readEnv0(t, before), readEnv0(t, after)
	diff := map[string]string{}
	for k, v := range a {
		if old, ok := b[k]; k != "_" && (!ok || old != v) {
			diff[k] = v
		}
	}
	return diff, nil
}

func readEnv0(t *testing.T, path string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, kv := range strings.Split(string(data), "\x00") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// checkAgainstBash asserts that bash exports exactly want when sourcing body.
func checkAgainstBash(t *testing.T, bash string, body []byte, want map[string]string) {
	t.Helper()
	got, err := bashSource(t, bash, body)
	if err != nil {
		t.Fatalf("bash rejected input %q: %v", body, err)
	}
	if !maps.Equal(got, want) {
		t.Errorf("input %q:\n bash exports %q\n want         %q", body, got, want)
	}
}
