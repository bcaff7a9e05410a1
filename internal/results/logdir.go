package results

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ResolveLogDir picks the directory run files go to. It tries want (DefaultLogDir when empty),
// then ${XDG_STATE_HOME:-$HOME/.local/state}/fuze-stack/logs, then $HOME/.fuze/stack/logs — the
// original stack scripts' fallbacks, used here for every command (the original wrapper had its
// own, different list). A candidate is accepted when it can be created and a probe file can be
// created and removed in it. env looks up environment variables (os.Getenv when nil).
//
// warning is empty when want itself is used; otherwise it names what was unusable and what is
// used. err names every candidate tried when none works.
func ResolveLogDir(want string, env func(string) string) (dir, warning string, err error) {
	cands := logDirCandidates(want, env)
	var failed []string
	for _, c := range cands {
		if perr := probeDir(c); perr != nil {
			failed = append(failed, fmt.Sprintf("%s (%v)", c, perr))
			continue
		}
		if len(failed) > 0 {
			warning = fmt.Sprintf("LOG_DIR %s unusable; using %s", strings.Join(failed, ", "), c)
		}
		return c, warning, nil
	}
	return "", "", fmt.Errorf("results: no usable log directory; tried %s", strings.Join(failed, ", "))
}

// logDirCandidates lists the directories ResolveLogDir tries, in order, without duplicates.
// The home-based fallbacks are left out when HOME is unset (they would be relative paths).
func logDirCandidates(want string, env func(string) string) []string {
	if env == nil {
		env = os.Getenv
	}
	if want == "" {
		want = DefaultLogDir
	}
	cands := []string{filepath.Clean(want)}
	home := env("HOME")
	state := env("XDG_STATE_HOME")
	if state == "" && home != "" {
		state = filepath.Join(home, ".local", "state")
	}
	if state != "" {
		cands = append(cands, filepath.Join(state, "fuze-stack", "logs"))
	}
	if home != "" {
		cands = append(cands, filepath.Join(home, ".fuze", "stack", "logs"))
	}
	out := cands[:0]
	seen := map[string]bool{}
	for _, c := range cands {
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	return out
}

// probeDir creates dir and checks that a file can be created and removed in it.
func probeDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".wtest-*")
	if err != nil {
		return err
	}
	name := f.Name()
	cerr := f.Close()
	rerr := os.Remove(name)
	if cerr != nil {
		return cerr
	}
	return rerr
}
