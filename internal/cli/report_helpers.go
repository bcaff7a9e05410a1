package cli

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/fuze-ai/fuze/internal/knobs"
	"github.com/fuze-ai/fuze/internal/results"
)

// reportFilters compiles STACK_RE, MODEL_RE, HOST_RE and GPU_RE; a bad one is a usage error
// naming the knob.
func reportFilters(cfg *knobs.Config) (results.Filters, error) {
	var f results.Filters
	for _, k := range []struct {
		name string
		dst  **regexp.Regexp
	}{{"STACK_RE", &f.Stack}, {"MODEL_RE", &f.Model}, {"HOST_RE", &f.Host}, {"GPU_RE", &f.GPU}} {
		re, err := cfg.Regexp(k.name)
		if err != nil {
			return f, usageError{err}
		}
		*k.dst = re
	}
	return f, nil
}

// knobPath is a path knob; a relative value is relative to root.
func knobPath(cfg *knobs.Config, name, root string) string {
	p := cfg.Get(name)
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(root, p)
}

// readLogDir is the directory to read run CSVs from: flag when given; else LOG_DIR when it
// holds run CSVs; else the directory the benchmarks fall back to when LOG_DIR is unusable.
func readLogDir(s streams, cfg *knobs.Config, flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	want := cfg.Get("LOG_DIR")
	if files, err := results.FindRunCSVs(want, ""); err == nil && len(files) > 0 {
		return want, nil
	}
	dir, warning, err := results.ResolveLogDir(want, cfg.Get)
	if err != nil {
		return want, nil // nothing usable: report what is (not) in LOG_DIR itself
	}
	if warning != "" {
		fmt.Fprintf(s.err, "! %s\n", warning)
	}
	return dir, nil
}

// splitStacks splits a --stacks value on commas and spaces.
func splitStacks(v string) []string {
	return strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
}

// shortHostname is `hostname -s`.
func shortHostname() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "unknown"
	}
	if i := strings.IndexByte(h, '.'); i > 0 {
		h = h[:i]
	}
	return h
}

func printWarnings(s streams, warnings []string) {
	for _, w := range warnings {
		fmt.Fprintf(s.err, "! %s\n", w)
	}
}

// giveToSudoUser hands files fuze wrote into the repository back to the user who ran sudo
// (SUDO_USER), so a run under sudo leaves no root-owned aggregate or best CSVs. It does
// nothing unless running as root with SUDO_USER set; a failure is a warning.
func giveToSudoUser(s streams, paths ...string) {
	name := os.Getenv("SUDO_USER")
	if name == "" || os.Geteuid() != 0 {
		return
	}
	u, err := user.Lookup(name)
	if err != nil {
		fmt.Fprintf(s.err, "! SUDO_USER=%s: %v; files stay owned by root\n", name, err)
		return
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return
	}
	for _, p := range paths {
		if err := os.Chown(p, uid, gid); err != nil {
			fmt.Fprintf(s.err, "! %v\n", err)
		}
	}
}
