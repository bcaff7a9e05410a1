package results

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// blocked returns a path under a regular file, which MkdirAll cannot create even as root.
func blocked(t *testing.T, base string) string {
	t.Helper()
	f := filepath.Join(base, "file")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(f, "sub")
}

func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestResolveLogDir(t *testing.T) {
	tmp := t.TempDir()
	bad := blocked(t, tmp)
	home := filepath.Join(tmp, "home")
	xdg := filepath.Join(tmp, "xdg")

	t.Run("want usable", func(t *testing.T) {
		want := filepath.Join(tmp, "logs")
		dir, warn, err := ResolveLogDir(want, envMap(map[string]string{"HOME": home}))
		if err != nil || dir != want || warn != "" {
			t.Fatalf("got %q, %q, %v", dir, warn, err)
		}
		if st, err := os.Stat(want); err != nil || !st.IsDir() {
			t.Fatalf("not created: %v", err)
		}
		if ents, _ := os.ReadDir(want); len(ents) != 0 {
			t.Errorf("probe file left behind: %v", ents)
		}
	})
	t.Run("XDG fallback", func(t *testing.T) {
		dir, warn, err := ResolveLogDir(bad, envMap(map[string]string{"HOME": home, "XDG_STATE_HOME": xdg}))
		want := filepath.Join(xdg, "fuze-stack", "logs")
		if err != nil || dir != want {
			t.Fatalf("got %q, %v; want %q", dir, err, want)
		}
		if !strings.Contains(warn, bad) || !strings.Contains(warn, want) {
			t.Errorf("warning %q should name %s and %s", warn, bad, want)
		}
	})
	t.Run("local state default", func(t *testing.T) {
		dir, _, err := ResolveLogDir(bad, envMap(map[string]string{"HOME": home}))
		if want := filepath.Join(home, ".local", "state", "fuze-stack", "logs"); err != nil || dir != want {
			t.Fatalf("got %q, %v; want %q", dir, err, want)
		}
	})
	t.Run("home fallback", func(t *testing.T) {
		badXDG := filepath.Join(bad, "xdg")
		dir, warn, err := ResolveLogDir(bad, envMap(map[string]string{"HOME": home, "XDG_STATE_HOME": badXDG}))
		want := filepath.Join(home, ".fuze", "stack", "logs")
		if err != nil || dir != want {
			t.Fatalf("got %q, %v; want %q", dir, err, want)
		}
		if !strings.Contains(warn, bad) || !strings.Contains(warn, badXDG) || !strings.Contains(warn, want) {
			t.Errorf("warning %q should name both unusable dirs and %s", warn, want)
		}
	})
	t.Run("none usable", func(t *testing.T) {
		badHome := filepath.Join(bad, "home")
		_, _, err := ResolveLogDir(bad, envMap(map[string]string{"HOME": badHome}))
		if err == nil {
			t.Fatal("no error")
		}
		for _, p := range []string{bad, filepath.Join(badHome, ".local", "state", "fuze-stack", "logs"), filepath.Join(badHome, ".fuze", "stack", "logs")} {
			if !strings.Contains(err.Error(), p) {
				t.Errorf("error %q does not name %s", err, p)
			}
		}
	})
}

func TestLogDirCandidates(t *testing.T) {
	got := logDirCandidates("", envMap(map[string]string{"HOME": "/h"}))
	want := []string{DefaultLogDir, "/h/.local/state/fuze-stack/logs", "/h/.fuze/stack/logs"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	got = logDirCandidates("/h/.fuze/stack/logs/", envMap(map[string]string{"HOME": "/h", "XDG_STATE_HOME": "/s"}))
	want = []string{"/h/.fuze/stack/logs", "/s/fuze-stack/logs"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := logDirCandidates("/x", envMap(nil)); !reflect.DeepEqual(got, []string{"/x"}) {
		t.Errorf("no HOME: got %q", got)
	}
}
