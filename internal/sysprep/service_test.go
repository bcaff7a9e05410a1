package sysprep

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fuze-ai/fuze/internal/ollamaapi"
	"github.com/fuze-ai/fuze/internal/ollamatest"
)

// fakeSystemd is systemctl on a host where the stock unit and one of the original's test
// units run; `enable --now ollama-persist.service` "starts" the daemon: an Ollama-like HTTP
// server on the persistent port, owned by this test process.
type fakeSystemd struct {
	t    *testing.T
	port int

	mu     sync.Mutex
	units  map[string]string // unit -> "LoadState ActiveState UnitFileState"
	daemon *httptest.Server
}

func (s *fakeSystemd) systemctl(args []string) FakeResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch args[0] {
	case "show":
		st := strings.Fields(s.units[args[1]] + " not-found inactive disabled")
		pid := 0
		if args[1] == UnitName && st[1] == "active" {
			pid = os.Getpid()
		}
		return FakeResult{Stdout: fmt.Sprintf("LoadState=%s\nActiveState=%s\nUnitFileState=%s\nMainPID=%d\n", st[0], st[1], st[2], pid)}
	case "disable":
		s.units[args[2]] = "loaded inactive disabled"
	case "enable":
		if args[1] == "--now" && args[2] == UnitName {
			s.units[UnitName] = "loaded active enabled"
			s.startDaemon()
		}
	}
	return FakeResult{}
}

func (s *fakeSystemd) startDaemon() {
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(s.port))
	if err != nil {
		s.t.Error(err)
		return
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"version":"0.0.0-unit","models":[]}`)
	}))
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	s.daemon = srv
	s.t.Cleanup(srv.Close)
}

func changes(calls []string) []string {
	var out []string
	for _, c := range calls {
		if !strings.HasPrefix(c, "systemctl show ") {
			out = append(out, c)
		}
	}
	return out
}

func TestServiceCleanupSystemd(t *testing.T) {
	sd := &fakeSystemd{t: t, port: freePort(t), units: map[string]string{
		StockUnit:               "loaded active enabled",
		"ollama-test-a.service": "loaded active enabled",
	}}
	f := &Fake{Programs: map[string]func([]string) FakeResult{"systemctl": sd.systemctl}}
	h := testHost(t, f)
	h.SystemdDir = t.TempDir() // systemd runs
	writeFile(t, filepath.Join(h.UnitDir, "ollama-test-a.service"), "[Service]\n")
	writeFile(t, filepath.Join(h.UnitDir, "ollama-test-a.service.d", "override.conf"), "[Service]\n")
	bin := filepath.Join(t.TempDir(), "ollama")
	writeFile(t, bin, "#!/bin/sh\n")
	store := filepath.Join(t.TempDir(), "models", "ollama")
	opts := ServiceOptions{Host: h, Bin: bin, ModelsDir: store, Port: sd.port, StateDir: t.TempDir(), ReadyTimeout: 5 * time.Second}

	// Dry run: reports, changes nothing.
	var out bytes.Buffer
	opts.DryRun, opts.Out = true, &out
	if err := ServiceCleanup(context.Background(), opts); err != nil {
		t.Fatalf("dry run: %v\n%s", err, out.String())
	}
	if c := changes(f.Calls()); len(c) > 0 {
		t.Fatalf("dry run ran %q", c)
	}
	for _, want := range []string{"would run systemctl disable --now ollama.service", "would write " + filepath.Join(h.UnitDir, UnitName), "would run systemctl enable --now " + UnitName} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("dry run lacks %q:\n%s", want, out.String())
		}
	}
	if _, err := os.Stat(filepath.Join(h.UnitDir, UnitName)); err == nil {
		t.Fatal("dry run wrote the unit")
	}

	out.Reset()
	opts.DryRun = false
	if err := ServiceCleanup(context.Background(), opts); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	want := []string{
		"systemctl disable --now ollama-test-a.service",
		"systemctl disable --now ollama.service",
		"systemctl daemon-reload",
		"systemctl enable --now " + UnitName,
	}
	if got := changes(f.Calls()); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("ran\n%s\nwant\n%s\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"), out.String())
	}
	unit, err := os.ReadFile(filepath.Join(h.UnitDir, UnitName))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		`Environment="OLLAMA_MODELS=` + store + `"`,
		`Environment="OLLAMA_HOST=127.0.0.1:` + strconv.Itoa(sd.port) + `"`,
		"ExecStart=" + bin + " serve",
		"User=ollama",
		"SupplementaryGroups=video\n",
		"Restart=always",
	} {
		if !strings.Contains(string(unit), line) {
			t.Errorf("unit lacks %q:\n%s", line, unit)
		}
	}
	for _, gone := range []string{"ollama-test-a.service", "ollama-test-a.service.d"} {
		if _, err := os.Lstat(filepath.Join(h.UnitDir, gone)); err == nil {
			t.Errorf("%s not removed", gone)
		}
	}
	if st, err := os.Stat(store); err != nil || !st.IsDir() {
		t.Errorf("store not created: %v", err)
	}
	if !strings.Contains(out.String(), fmt.Sprintf(":%d  pid %d (", sd.port, os.Getpid())) || !strings.Contains(out.String(), "Ollama 0.0.0-unit answering") {
		t.Errorf("listeners:\n%s", out.String())
	}

	// Second run: everything in place, nothing changes.
	n := len(f.Calls())
	out.Reset()
	if err := ServiceCleanup(context.Background(), opts); err != nil {
		t.Fatalf("second run: %v\n%s", err, out.String())
	}
	if got := changes(f.Calls()[n:]); len(got) > 0 {
		t.Fatalf("second run ran %q\n%s", got, out.String())
	}
	if !strings.Contains(out.String(), "kept: "+UnitName+" active") {
		t.Errorf("second run:\n%s", out.String())
	}
}

// noSystemdHost is the real machine's /proc and ports, with systemd reported absent.
func noSystemdHost(t *testing.T) Host {
	h := testHost(t, &Fake{})
	h.UID = os.Geteuid()
	return h
}

func TestServiceCleanupProcessDryRun(t *testing.T) {
	state := t.TempDir()
	var out bytes.Buffer
	opts := ServiceOptions{Host: noSystemdHost(t), Bin: "/nonexistent/ollama", ModelsDir: t.TempDir(), Port: freePort(t),
		TestPorts: []int{freePort(t)}, StateDir: state, DryRun: true, Out: &out}
	if err := ServiceCleanup(context.Background(), opts); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "would start OLLAMA_HOST=127.0.0.1:") || !strings.Contains(out.String(), "free\n") {
		t.Errorf("output:\n%s", out.String())
	}
	if _, err := os.Stat(filepath.Join(state, PIDFileName)); err == nil {
		t.Error("dry run wrote a pid file")
	}
}

// The process path for real: a real `ollama serve` becomes the persistent daemon, a second
// run keeps it, a stray Ollama on a test port is stopped, a foreign listener is reported
// with its owner and left alone.
func TestServiceCleanupProcessRealOllama(t *testing.T) {
	bin := ollamatest.Binary(t)
	stray := ollamatest.Start(t)
	_, strayPortStr, _ := net.SplitHostPort(stray.Addr)
	strayPort, _ := strconv.Atoi(strayPortStr)
	foreign, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer foreign.Close()
	foreignPort := foreign.Addr().(*net.TCPAddr).Port

	state := t.TempDir()
	t.Cleanup(func() { StopSupervised(state) })
	home := t.TempDir()
	opts := ServiceOptions{
		Host:      noSystemdHost(t),
		Bin:       bin,
		ModelsDir: filepath.Join(t.TempDir(), "store"),
		Port:      freePort(t),
		TestPorts: []int{strayPort, foreignPort},
		StateDir:  state,
		Environ:   []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "CUDA_VISIBLE_DEVICES=", "OLLAMA_NOPRUNE=1"},
	}
	var out bytes.Buffer
	opts.Out = &out
	if err := ServiceCleanup(context.Background(), opts); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	pid := readPIDFile(t, state)
	if l, _ := PortListener(opts.Port); l.PID != pid {
		t.Fatalf("persistent port held by %+v, pid file says %d\n%s", l, pid, out.String())
	}
	if v, err := ollamaapi.New(net.JoinHostPort("127.0.0.1", strconv.Itoa(opts.Port))).Version(context.Background()); err != nil || v == "" {
		t.Fatalf("daemon not answering: %q %v", v, err)
	}
	select {
	case <-stray.Process.Done():
	case <-time.After(15 * time.Second):
		t.Fatalf("stray test daemon still running\n%s", out.String())
	}
	if !strings.Contains(out.String(), fmt.Sprintf("stop stray Ollama test daemon pid %d (ollama) on :%d", stray.Process.PID(), strayPort)) {
		t.Errorf("stray not reported:\n%s", out.String())
	}
	if !strings.Contains(out.String(), fmt.Sprintf(":%d held by pid %d (", foreignPort, os.Getpid())) {
		t.Errorf("foreign listener not reported with its owner:\n%s", out.String())
	}
	if c, err := net.Dial("tcp", foreign.Addr().String()); err != nil {
		t.Errorf("foreign listener gone: %v", err)
	} else {
		c.Close()
	}

	// Idempotent: the daemon fuze started is kept.
	out.Reset()
	if err := ServiceCleanup(context.Background(), opts); err != nil {
		t.Fatalf("second run: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), fmt.Sprintf("kept: Ollama pid %d", pid)) || readPIDFile(t, state) != pid {
		t.Errorf("second run:\n%s", out.String())
	}
	if !strings.Contains(out.String(), fmt.Sprintf(":%d  free", strayPort)) {
		t.Errorf("stray port not free on the second run:\n%s", out.String())
	}

	// A foreign listener on the persistent port: reported with its owner, not killed.
	other := opts
	other.Port, other.TestPorts, other.StateDir = foreignPort, nil, t.TempDir()
	out.Reset()
	err = ServiceCleanup(context.Background(), other)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("held by pid %d (", os.Getpid())) || !strings.Contains(err.Error(), "not touched") {
		t.Fatalf("err = %v\n%s", err, out.String())
	}
	if c, err := net.Dial("tcp", foreign.Addr().String()); err != nil {
		t.Errorf("foreign listener killed: %v", err)
	} else {
		c.Close()
	}
	if _, err := os.Stat(filepath.Join(other.StateDir, PIDFileName)); err == nil {
		t.Error("pid file written although nothing was started")
	}

	stopped, err := StopSupervised(state)
	if !stopped || err != nil {
		t.Fatalf("StopSupervised: %v %v", stopped, err)
	}
	if processAlive(pid) {
		t.Fatalf("daemon %d still alive", pid)
	}
	if l, _ := PortListener(opts.Port); !l.Free {
		t.Fatalf("persistent port still held by %s", l.Owner())
	}
}

func readPIDFile(t *testing.T, dir string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, PIDFileName))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || !processAlive(pid) {
		t.Fatalf("pid file %q: %v alive=%v", b, err, processAlive(pid))
	}
	return pid
}
