package sysprep

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fuze-ai/fuze/internal/ollamaapi"
)

// Names of what service-cleanup manages.
const (
	UnitName      = "ollama-persist.service" // fuze's persistent unit
	StockUnit     = "ollama.service"         // the unit the official installer creates
	PIDFileName   = "ollama-persist.pid"     // supervised daemon, in ServiceOptions.StateDir
	DaemonLogName = "ollama-persist.log"
	ServiceUser   = "ollama"
)

// The original's per-GPU test units; the Go benchmark starts its test daemons itself.
var legacyTestUnits = []string{"ollama-test-a.service", "ollama-test-b.service"}

// ServiceOptions configures ServiceCleanup.
type ServiceOptions struct {
	Host      Host
	Bin       string // ollama binary the daemon runs (OLLAMA_BIN, resolved)
	ModelsDir string // OLLAMA_MODELS of the daemon (OLLAMA_MODELS_DIR)
	Port      int    // PERSISTENT_PORT
	TestPorts []int  // TEST_PORT_A, TEST_PORT_B: stray Ollama daemons there are stopped
	StateDir  string // pid file and log of the supervised daemon (LOG_DIR)
	Environ   []string
	DryRun    bool
	Restart   bool // restart the daemon fuze owns (after installing a new binary)
	// ReadyTimeout bounds the wait for /api/version after a start (default 30 s).
	ReadyTimeout time.Duration
	Out          io.Writer
}

type svc struct {
	ServiceOptions
	r Runner
}

// ServiceCleanup leaves exactly one persistent Ollama daemon on 127.0.0.1:Port (see the
// package comment for the rule), stops stray Ollama daemons on the test ports, and prints who
// listens on each port. It is idempotent: a daemon fuze already owns is kept. A port nothing
// listens on is not an error; a listener that is not Ollama on the persistent port is.
func ServiceCleanup(ctx context.Context, o ServiceOptions) error {
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.ReadyTimeout <= 0 {
		o.ReadyTimeout = 30 * time.Second
	}
	if o.Port <= 0 {
		return fmt.Errorf("service-cleanup: no persistent port")
	}
	s := &svc{ServiceOptions: o, r: o.Host.runner()}
	systemd := o.Host.Systemd() && o.Host.Root()
	mode := "supervised process (pid file " + s.pidFile() + ")"
	switch {
	case systemd:
		mode = "systemd unit " + UnitName
	case o.Host.Systemd():
		mode += "; not root, so no systemd unit"
	}
	fmt.Fprintf(o.Out, "== persistent Ollama on %s, store %s: %s\n", s.addr(), o.ModelsDir, mode)
	if o.DryRun {
		fmt.Fprintln(o.Out, "   (dry run: nothing is changed)")
	}
	var errs []error
	if systemd {
		errs = append(errs, s.systemd(ctx))
	} else {
		errs = append(errs, s.process(ctx))
	}
	errs = append(errs, s.strays())
	s.listeners(ctx)
	return errors.Join(errs...)
}

func (s *svc) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)) }

func (s *svc) pidFile() string { return filepath.Join(s.StateDir, PIDFileName) }

func (s *svc) ok(format string, args ...any) {
	fmt.Fprintf(s.Out, "✔ "+format+"\n", args...)
}

func (s *svc) warn(format string, args ...any) {
	fmt.Fprintf(s.Out, "! "+format+"\n", args...)
}

// do runs a change, or only announces it in a dry run.
func (s *svc) do(desc string, fn func() error) error {
	if s.DryRun {
		fmt.Fprintf(s.Out, "  would %s\n", desc)
		return nil
	}
	if err := fn(); err != nil {
		fmt.Fprintf(s.Out, "✖ %s: %v\n", desc, err)
		return fmt.Errorf("%s: %w", desc, err)
	}
	s.ok("%s", desc)
	return nil
}

func (s *svc) systemctl(ctx context.Context, args ...string) error {
	c := Cmd{Name: "systemctl", Args: args, Stdout: s.Out, Stderr: s.Out}
	return s.do("run "+c.String(), func() error { return s.r.Run(ctx, c) })
}

func (s *svc) binOK() error {
	if s.Bin == "" {
		return errors.New("no ollama binary (OLLAMA_BIN): fuze ollama install [--from-source]")
	}
	if st, err := os.Stat(s.Bin); err != nil || st.IsDir() {
		return fmt.Errorf("ollama binary %s not found: fuze ollama install [--from-source]", s.Bin)
	}
	return nil
}

// ownPID returns the pid of the daemon fuze started (pid file) when it still runs Ollama.
func (s *svc) ownPID() (pid int, stale bool) {
	b, err := os.ReadFile(s.pidFile())
	if err != nil {
		return 0, false
	}
	pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	if pid > 0 && processAlive(pid) && isOllamaProcess(pid, s.Bin) {
		return pid, false
	}
	return 0, true
}

func (s *svc) answersOllama(ctx context.Context, timeout time.Duration) (string, bool) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	v, err := ollamaapi.New(s.addr()).Version(ctx)
	return v, err == nil
}

// process keeps or starts the supervised daemon.
func (s *svc) process(ctx context.Context) error {
	pid, stale := s.ownPID()
	if stale {
		s.do("remove stale pid file "+s.pidFile(), func() error { return os.Remove(s.pidFile()) })
	}
	l, err := PortListener(s.Port)
	if err != nil {
		return err
	}
	if pid > 0 {
		if !l.Free && l.PID == pid && !s.Restart {
			s.ok("kept: Ollama pid %d, started by fuze (%s), serves :%d", pid, s.pidFile(), s.Port)
			return s.waitReady(ctx, pid)
		}
		why := "restart after install"
		if l.PID != pid {
			why = "it does not serve :" + strconv.Itoa(s.Port)
		}
		if err := s.do(fmt.Sprintf("stop Ollama pid %d started by fuze (%s)", pid, why), func() error {
			err := stopProcess(pid, 10*time.Second)
			os.Remove(s.pidFile())
			return err
		}); err != nil {
			return err
		}
		if s.DryRun && l.PID == pid {
			l = Listener{Port: s.Port, Free: true}
		} else if l, err = PortListener(s.Port); err != nil {
			return err
		}
	}
	if !l.Free {
		// A listener whose owner is known not to be Ollama is not asked (it may never answer).
		if l.PID > 0 && !isOllamaProcess(l.PID, s.Bin) {
			return fmt.Errorf("port %d is held by %s, which is not an Ollama: not touched; stop it or set PERSISTENT_PORT", s.Port, l.Owner())
		}
		if v, ok := s.answersOllama(ctx, 3*time.Second); ok {
			s.warn(":%d is served by Ollama %s that fuze did not start (%s): kept as the persistent daemon", s.Port, v, l.Owner())
			return nil
		}
		return fmt.Errorf("port %d is held by %s, which is not an Ollama: not touched; stop it or set PERSISTENT_PORT", s.Port, l.Owner())
	}
	return s.start(ctx)
}

// daemonEnv is the supervised daemon's environment: the caller's, with OLLAMA_HOST and
// OLLAMA_MODELS set for the persistent port and store.
func (s *svc) daemonEnv() []string {
	base := s.Environ
	if base == nil {
		base = os.Environ()
	}
	env := make([]string, 0, len(base)+2)
	for _, kv := range base {
		if strings.HasPrefix(kv, "OLLAMA_HOST=") || strings.HasPrefix(kv, "OLLAMA_MODELS=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "OLLAMA_HOST="+s.addr(), "OLLAMA_MODELS="+s.ModelsDir)
}

// start launches `ollama serve` detached in its own session, writes the pid file and waits
// until the daemon answers.
func (s *svc) start(ctx context.Context) error {
	logPath := filepath.Join(s.StateDir, DaemonLogName)
	desc := fmt.Sprintf("start OLLAMA_HOST=%s OLLAMA_MODELS=%s %s serve (log %s, pid file %s)", s.addr(), s.ModelsDir, s.Bin, logPath, s.pidFile())
	if s.DryRun {
		return s.do(desc, nil)
	}
	if err := s.binOK(); err != nil {
		return err
	}
	for _, dir := range []string{s.ModelsDir, s.StateDir} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return rootHint(err, "create "+dir)
		}
	}
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return rootHint(err, "daemon log")
	}
	cmd := exec.Command(s.Bin, "serve")
	cmd.Env = s.daemonEnv()
	cmd.Dir = s.StateDir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own session: the daemon outlives fuze and its terminal; stopping it signals its
	// process group, runners included.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	logFile.Close()
	if err != nil {
		return fmt.Errorf("start %s serve: %w", s.Bin, err)
	}
	pid := cmd.Process.Pid
	go cmd.Wait() // reaps the daemon should it exit while fuze still runs
	if err := writeFileAtomic(s.pidFile(), []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		_ = stopProcess(pid, 5*time.Second)
		return rootHint(err, "pid file")
	}
	if err := s.waitReady(ctx, pid); err != nil {
		return err
	}
	s.ok("started Ollama pid %d on :%d (store %s, log %s, pid file %s)", pid, s.Port, s.ModelsDir, logPath, s.pidFile())
	return nil
}

// waitReady polls /api/version until the daemon answers; pid > 0 is watched for an early exit.
func (s *svc) waitReady(ctx context.Context, pid int) error {
	deadline := time.Now().Add(s.ReadyTimeout)
	for {
		if _, ok := s.answersOllama(ctx, time.Second); ok {
			return nil
		}
		if pid > 0 && !processAlive(pid) {
			return fmt.Errorf("ollama serve (pid %d) exited; last log lines: %s", pid, lastLines(filepath.Join(s.StateDir, DaemonLogName), 5))
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			hint := "see " + filepath.Join(s.StateDir, DaemonLogName)
			if pid == 0 {
				hint = "check: systemctl status " + UnitName + "; journalctl -u " + UnitName
			}
			return fmt.Errorf("ollama on %s NOT UP after %s (%s)", s.addr(), s.ReadyTimeout, hint)
		}
		time.Sleep(100 * time.Millisecond) // polling another process's readiness
	}
}

func lastLines(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log)"
	}
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines[max(0, len(lines)-n):], " | ")
}

func loaded(props map[string]string) bool {
	ls := props["LoadState"]
	return ls != "" && ls != "not-found"
}

func running(props map[string]string) bool {
	switch props["ActiveState"] {
	case "active", "activating", "reloading":
		return true
	}
	return false
}

// systemd installs and starts fuze's unit, after removing what competes with it.
func (s *svc) systemd(ctx context.Context) error {
	var errs []error
	// A daemon supervised by an earlier non-systemd run gives way to the unit.
	if pid, stale := s.ownPID(); pid > 0 || stale {
		errs = append(errs, s.do(fmt.Sprintf("stop the supervised daemon of %s (systemd takes over)", s.pidFile()), func() error {
			var err error
			if pid > 0 {
				err = stopProcess(pid, 10*time.Second)
			}
			os.Remove(s.pidFile())
			return err
		}))
	}
	reload := false
	for _, u := range legacyTestUnits {
		props, err := unitProps(ctx, s.r, u)
		if err != nil {
			errs = append(errs, fmt.Errorf("systemctl show %s: %w", u, err))
			continue
		}
		if loaded(props) && (running(props) || props["UnitFileState"] == "enabled") {
			errs = append(errs, s.systemctl(ctx, "disable", "--now", u))
		}
		for _, p := range []string{filepath.Join(s.Host.UnitDir, u), filepath.Join(s.Host.UnitDir, u+".d")} {
			if _, err := os.Lstat(p); err == nil {
				errs = append(errs, s.do("remove "+p, func() error { return os.RemoveAll(p) }))
				reload = true
			}
		}
	}
	if props, err := unitProps(ctx, s.r, StockUnit); err != nil {
		errs = append(errs, fmt.Errorf("systemctl show %s: %w", StockUnit, err))
	} else if loaded(props) && (running(props) || props["UnitFileState"] == "enabled") {
		errs = append(errs, s.systemctl(ctx, "disable", "--now", StockUnit))
	}

	// The service user and the store it owns.
	uid, gid, haveUser := s.Host.lookupUser(ServiceUser)
	if !haveUser {
		c := Cmd{Name: "useradd", Args: []string{"-r", "-s", "/bin/false", "-U", "-m", "-d", "/usr/share/ollama", ServiceUser}, Stdout: s.Out, Stderr: s.Out}
		if err := s.do("run "+c.String(), func() error { return s.r.Run(ctx, c) }); err != nil {
			return errors.Join(append(errs, err)...)
		}
		uid, gid, haveUser = s.Host.lookupUser(ServiceUser)
	}
	if _, err := os.Stat(s.ModelsDir); err != nil || haveUser {
		errs = append(errs, s.do(fmt.Sprintf("ensure store %s (owner %s, mode 0755)", s.ModelsDir, ServiceUser), func() error {
			if err := os.MkdirAll(s.ModelsDir, 0o755); err != nil {
				return err
			}
			if haveUser {
				if st, err := os.Stat(s.ModelsDir); err == nil {
					if sys, ok := st.Sys().(*syscall.Stat_t); !ok || int(sys.Uid) != uid || int(sys.Gid) != gid {
						if err := os.Chown(s.ModelsDir, uid, gid); err != nil {
							return err
						}
					}
				}
			}
			return os.Chmod(s.ModelsDir, 0o755)
		}))
	}

	// The unit file: rewritten only when its content changes.
	path := filepath.Join(s.Host.UnitDir, UnitName)
	if st, err := os.Lstat(path); err == nil && st.Mode()&os.ModeSymlink != 0 {
		if target, _ := os.Readlink(path); target == os.DevNull {
			errs = append(errs, s.systemctl(ctx, "unmask", UnitName))
		}
	}
	content := s.unitFile()
	old, _ := os.ReadFile(path)
	changed := string(old) != content
	if changed {
		if err := s.binOK(); err != nil && !s.DryRun {
			return errors.Join(append(errs, err)...)
		}
		errs = append(errs, s.do("write "+path, func() error { return writeFileAtomic(path, []byte(content), 0o644) }))
		reload = true
	} else {
		s.ok("%s unchanged", path)
	}
	if reload {
		errs = append(errs, s.systemctl(ctx, "daemon-reload"))
	}

	props, err := unitProps(ctx, s.r, UnitName)
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("systemctl show %s: %w", UnitName, err))...)
	}
	mainPID, _ := strconv.Atoi(props["MainPID"])
	active := props["ActiveState"] == "active"

	// Whatever else holds the port keeps the unit from binding it.
	l, err := PortListener(s.Port)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	if !l.Free && (l.PID == 0 || l.PID != mainPID) {
		if l.PID > 0 && isOllamaProcess(l.PID, s.Bin) {
			errs = append(errs, s.do(fmt.Sprintf("stop Ollama %s on :%d, not run by %s", l.Owner(), s.Port, UnitName), func() error {
				return stopProcess(l.PID, 10*time.Second)
			}))
		} else {
			return errors.Join(append(errs, fmt.Errorf("port %d is held by %s, not by %s: not touched; stop it or set PERSISTENT_PORT", s.Port, l.Owner(), UnitName))...)
		}
	}
	if props["ActiveState"] == "failed" {
		errs = append(errs, s.systemctl(ctx, "reset-failed", UnitName))
	}
	switch {
	case active && !changed && !s.Restart:
		s.ok("kept: %s active (pid %d)", UnitName, mainPID)
		if props["UnitFileState"] != "enabled" {
			errs = append(errs, s.systemctl(ctx, "enable", UnitName))
		}
	case active:
		errs = append(errs, s.systemctl(ctx, "restart", UnitName))
		if props["UnitFileState"] != "enabled" {
			errs = append(errs, s.systemctl(ctx, "enable", UnitName))
		}
	default:
		errs = append(errs, s.systemctl(ctx, "enable", "--now", UnitName))
	}
	if !s.DryRun {
		errs = append(errs, s.waitReady(ctx, 0))
	}
	return errors.Join(errs...)
}

// unitFile renders ollama-persist.service.
func (s *svc) unitFile() string {
	var b strings.Builder
	fmt.Fprintf(&b, `[Unit]
Description=Ollama (persistent on :%d, managed by fuze)
After=network-online.target
Wants=network-online.target

[Service]
User=%s
Group=%s
`, s.Port, ServiceUser, ServiceUser)
	var groups []string
	for _, g := range []string{"video", "render"} {
		if s.Host.groupExists(g) {
			groups = append(groups, g)
		}
	}
	if len(groups) > 0 {
		fmt.Fprintf(&b, "SupplementaryGroups=%s\n", strings.Join(groups, " "))
	}
	fmt.Fprintf(&b, `Environment="OLLAMA_MODELS=%s"
Environment="OLLAMA_HOST=%s"
ExecStart=%s serve
Restart=always
RestartSec=2
LimitMEMLOCK=infinity
TasksMax=infinity

[Install]
WantedBy=multi-user.target
`, unitEscape(s.ModelsDir), s.addr(), unitQuote(s.Bin))
	return b.String()
}

func unitEscape(v string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "%", "%%").Replace(v)
}

func unitQuote(path string) string {
	if strings.ContainsAny(path, " \t\"\\%") {
		return `"` + unitEscape(path) + `"`
	}
	return path
}

// strays stops Ollama daemons on the test ports; any other listener is reported, never killed.
func (s *svc) strays() error {
	var errs []error
	var ports []int
	for _, p := range s.TestPorts {
		if p > 0 && p != s.Port && !slices.Contains(ports, p) {
			ports = append(ports, p)
		}
	}
	for _, port := range ports {
		l, err := PortListener(port)
		switch {
		case err != nil:
			s.warn(":%d: %v", port, err)
		case l.Free:
			s.ok(":%d free", port)
		case l.PID == 0:
			s.warn(":%d in use by a process whose owner is not visible (not root): not stopped", port)
		case isOllamaProcess(l.PID, s.Bin):
			pid := l.PID
			errs = append(errs, s.do(fmt.Sprintf("stop stray Ollama test daemon %s on :%d", l.Owner(), port), func() error {
				if err := stopProcess(pid, 10*time.Second); err != nil {
					return rootHint(err, "stop")
				}
				return nil
			}))
		default:
			s.warn(":%d held by %s, not an Ollama: left running (the benchmark's servers cannot start there)", port, l.Owner())
		}
	}
	return errors.Join(errs...)
}

// listeners prints who listens on the persistent and test ports.
func (s *svc) listeners(ctx context.Context) {
	fmt.Fprintln(s.Out, "Listeners:")
	ports := []int{s.Port}
	for _, p := range s.TestPorts {
		if p > 0 && !slices.Contains(ports, p) {
			ports = append(ports, p)
		}
	}
	for _, port := range ports {
		l, err := PortListener(port)
		switch {
		case err != nil:
			fmt.Fprintf(s.Out, "  :%d  %v\n", port, err)
		case l.Free:
			fmt.Fprintf(s.Out, "  :%d  free\n", port)
		default:
			line := fmt.Sprintf("  :%d  %s", port, l.Owner())
			if port == s.Port {
				if v, ok := s.answersOllama(ctx, time.Second); ok {
					line += ", Ollama " + v + " answering"
				}
			}
			fmt.Fprintln(s.Out, line)
		}
	}
}

// StopSupervised stops the daemon recorded in stateDir's pid file (when it still runs
// Ollama) and removes the pid file; it reports whether a daemon was stopped.
func StopSupervised(stateDir string) (bool, error) {
	s := &svc{ServiceOptions: ServiceOptions{StateDir: stateDir}}
	pid, _ := s.ownPID()
	defer os.Remove(s.pidFile())
	if pid == 0 {
		return false, nil
	}
	return true, stopProcess(pid, 10*time.Second)
}
