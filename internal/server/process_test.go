package server

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// alive reports whether pid exists (signal 0 probes without delivering anything).
func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

func TestStopKillsWholeGroup(t *testing.T) {
	dir := t.TempDir()
	childPID := filepath.Join(dir, "child.pid")
	// The shell forks a child that ignores TERM, like an engine process that would keep GPU
	// memory pinned if only the launcher were killed.
	script := `trap '' TERM; sleep 300 & echo $! > "$1"; echo ready; wait`
	p, err := Start(Spec{Name: "group", Path: "/bin/sh", Args: []string{"-c", script, "sh", childPID}, LogPath: filepath.Join(dir, "log")})
	if err != nil {
		t.Fatal(err)
	}
	err = p.WaitReady(context.Background(), 10*time.Second, 10*time.Millisecond, func(context.Context) error {
		if _, err := os.Stat(childPID); err != nil {
			return err
		}
		if !strings.Contains(strings.Join(p.LastLines(5), "\n"), "ready") {
			return errors.New("not ready")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(childPID)
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(200 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	default:
		t.Fatal("Stop returned before the process exited")
	}
	// The child is reaped by init asynchronously; poll until it is gone.
	deadline := time.Now().Add(5 * time.Second)
	for alive(pid) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond) // polling an external process, not ordering our own goroutines
	}
	if alive(pid) {
		t.Fatalf("child %d survived Stop", pid)
	}
	log, _ := os.ReadFile(filepath.Join(dir, "log"))
	if !strings.Contains(string(log), "ready") {
		t.Fatalf("log file lacks the process output: %q", log)
	}
}

func TestWaitReadyReportsEarlyExit(t *testing.T) {
	p, err := Start(Spec{Name: "crasher", Path: "/bin/sh", Args: []string{"-c", "echo loading model; echo 'fatal: out of memory' >&2; exit 3"}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(time.Second)
	err = p.WaitReady(context.Background(), 30*time.Second, 10*time.Millisecond, func(context.Context) error {
		return errors.New("connection refused")
	})
	if !errors.Is(err, ErrExited) {
		t.Fatalf("want ErrExited, got %v", err)
	}
	for _, want := range []string{"crasher", "exit status 3", "fatal: out of memory"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestWaitReadyTimeout(t *testing.T) {
	p, err := Start(Spec{Name: "silent", Path: "/bin/sh", Args: []string{"-c", "echo starting; exec sleep 300"}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(time.Second)
	err = p.WaitReady(context.Background(), 150*time.Millisecond, 10*time.Millisecond, func(context.Context) error {
		return errors.New("connection refused")
	})
	if err == nil || !strings.Contains(err.Error(), "silent not ready after 150ms") || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("unexpected error: %v", err)
	}
}

func TestWaitReadyCancelled(t *testing.T) {
	p, err := Start(Spec{Name: "silent", Path: "/bin/sh", Args: []string{"-c", "exec sleep 300"}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	err = p.WaitReady(ctx, time.Minute, time.Millisecond, func(context.Context) error {
		calls++
		if calls == 3 {
			cancel()
		}
		return errors.New("not yet")
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("want context.Canceled, got %v", err)
	}
}

func TestStartMissingBinary(t *testing.T) {
	_, err := Start(Spec{Name: "ghost", Path: "/nonexistent/server"})
	if err == nil || !strings.Contains(err.Error(), "ghost") || !strings.Contains(err.Error(), "/nonexistent/server") {
		t.Fatalf("unexpected error: %v", err)
	}
}

func TestTailBufferKeepsWholeLines(t *testing.T) {
	tb := newTailBuffer(32)
	for i := 0; i < 20; i++ {
		tb.Write([]byte("line " + strconv.Itoa(i) + "\n"))
	}
	got := string(tb.Bytes())
	if !strings.HasPrefix(got, "line ") || !strings.HasSuffix(got, "line 19\n") || len(got) > 32 {
		t.Fatalf("tail = %q", got)
	}
}

func TestCheckPortFreeNamesOwner(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	addr := l.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	err = CheckPortFree(addr)
	if err == nil {
		t.Fatal("want an error for a port in use")
	}
	// This test process is the listener: the error names the port and our pid.
	for _, want := range []string{"port " + port + " is already in use", "pid " + strconv.Itoa(os.Getpid())} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	l.Close()
	if err := CheckPortFree(addr); err != nil {
		t.Fatalf("freed port: %v", err)
	}
}
