package server

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Handle is a supervised server: a process fuze started, or a systemd unit it runs.
type Handle interface {
	Name() string
	// Unit is what the CSV "unit" column says: "proc" or the systemd unit's name.
	Unit() string
	WaitReady(ctx context.Context, timeout, interval time.Duration, probe func(context.Context) error) error
	// ExitError is non-nil once the server has died on its own.
	ExitError() error
	Stop(grace time.Duration) error
}

// Unit implements Handle for a Process.
func (p *Process) Unit() string { return "proc" }

// Systemctl runs systemctl (and journalctl); tests replace it.
type Systemctl func(ctx context.Context, name string, args ...string) ([]byte, error)

func execSystemctl(ctx context.Context, name string, args ...string) ([]byte, error) {
	return exec.CommandContext(ctx, name, args...).CombinedOutput()
}

// Systemd runs servers as transient-looking units written to UnitDir, the way the original
// ran its Ollama test daemons (ollama-test-a.service …). Unlike the original, units are stopped
// when the run ends instead of being left enabled, running and holding GPU memory.
type Systemd struct {
	UnitDir string    // default /etc/systemd/system
	Run     Systemctl // default: the real systemctl
}

// SystemdUsable reports whether fuze should use systemd: running as root on a host where
// systemd is the init system.
func SystemdUsable() bool {
	if os.Geteuid() != 0 {
		return false
	}
	st, err := os.Stat("/run/systemd/system")
	return err == nil && st.IsDir()
}

// UnitFile renders the unit for spec (the seed's unit content).
func UnitFile(spec Spec, description string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[Unit]\nDescription=%s\nAfter=network-online.target\nWants=network-online.target\n\n[Service]\n", description)
	for _, kv := range spec.Env {
		// Only the variables that configure the server: the unit must not capture the
		// caller's whole environment.
		if k, _, ok := strings.Cut(kv, "="); ok && (strings.HasPrefix(k, "OLLAMA_") || k == "CUDA_VISIBLE_DEVICES" || k == "HOME") {
			fmt.Fprintf(&b, "Environment=%q\n", kv)
		}
	}
	args := append([]string{spec.Path}, spec.Args...)
	fmt.Fprintf(&b, "ExecStart=%s\nRestart=no\n", strings.Join(args, " "))
	if spec.LogPath != "" {
		fmt.Fprintf(&b, "StandardOutput=append:%s\nStandardError=append:%s\n", spec.LogPath, spec.LogPath)
	}
	b.WriteString("\n[Install]\nWantedBy=multi-user.target\n")
	return b.String()
}

// SystemdUnit is a server running as a systemd unit.
type SystemdUnit struct {
	sd   Systemd
	name string // e.g. ollama-test-a.service
	spec Spec
}

// Start writes unit (name like "ollama-test-a.service"), reloads systemd and starts it.
func (sd Systemd) Start(ctx context.Context, unit, description string, spec Spec) (*SystemdUnit, error) {
	if sd.UnitDir == "" {
		sd.UnitDir = "/etc/systemd/system"
	}
	if sd.Run == nil {
		sd.Run = execSystemctl
	}
	u := &SystemdUnit{sd: sd, name: unit, spec: spec}
	path := filepath.Join(sd.UnitDir, unit)
	if err := os.WriteFile(path, []byte(UnitFile(spec, description)), 0o644); err != nil {
		return nil, fmt.Errorf("write unit %s: %w", path, err)
	}
	for _, args := range [][]string{{"daemon-reload"}, {"reset-failed", unit}, {"start", unit}} {
		out, err := sd.Run(ctx, "systemctl", args...)
		// reset-failed fails for a unit that never failed: that is fine.
		if err != nil && args[0] != "reset-failed" {
			return nil, fmt.Errorf("systemctl %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
	}
	return u, nil
}

// Name implements Handle.
func (u *SystemdUnit) Name() string { return u.spec.Name }

// Unit implements Handle.
func (u *SystemdUnit) Unit() string { return u.name }

// ExitError implements Handle: the unit is no longer active.
func (u *SystemdUnit) ExitError() error {
	out, _ := u.sd.Run(context.Background(), "systemctl", "is-active", u.name)
	state := strings.TrimSpace(string(out))
	if state == "active" || state == "activating" || state == "reloading" {
		return nil
	}
	msg := fmt.Sprintf("%s (unit %s) is %s", u.spec.Name, u.name, state)
	if last := u.lastLines(5); len(last) > 0 {
		msg += "; last log lines: " + strings.Join(last, " | ")
	}
	return fmt.Errorf("%w: %s", ErrExited, msg)
}

// LastLines returns up to n of the unit's last non-empty log lines (from the journal).
func (u *SystemdUnit) LastLines(n int) []string { return u.lastLines(n) }

func (u *SystemdUnit) lastLines(n int) []string {
	out, err := u.sd.Run(context.Background(), "journalctl", "-u", u.name, "-n", fmt.Sprint(n), "--no-pager", "-o", "cat")
	if err != nil {
		return nil
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

// WaitReady implements Handle.
func (u *SystemdUnit) WaitReady(ctx context.Context, timeout, interval time.Duration, probe func(context.Context) error) error {
	return WaitFor(ctx, u.spec.Name+" (unit "+u.name+")", timeout, interval, probe, u.ExitError, func() []string { return u.lastLines(3) })
}

// Stop implements Handle: systemctl stop (systemd sends TERM, then KILL to the whole cgroup).
func (u *SystemdUnit) Stop(grace time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), grace+10*time.Second)
	defer cancel()
	if out, err := u.sd.Run(ctx, "systemctl", "stop", u.name); err != nil {
		return fmt.Errorf("systemctl stop %s: %v: %s", u.name, err, strings.TrimSpace(string(out)))
	}
	return nil
}
