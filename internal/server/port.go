package server

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// CheckPortFree returns an error naming addr's port and, when it can be found, the process
// listening on it, if something already listens there. fuze never benchmarks a server it did
// not start by accident.
func CheckPortFree(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err == nil {
		l.Close()
		return nil
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("port check %s: %w", addr, err)
	}
	// Servers that set SO_REUSEPORT (llama-server) leave TIME_WAIT sockets with that option on
	// their port after closing connections; they fail our test bind but not the next server's.
	// A port where nothing accepts connections is free for a server.
	if c, derr := net.DialTimeout("tcp", addr, time.Second); derr == nil {
		c.Close()
	} else if errors.Is(derr, syscall.ECONNREFUSED) {
		return nil
	}
	_, port, _ := net.SplitHostPort(addr)
	owner := "an unknown process"
	if p, _ := strconv.Atoi(port); p > 0 {
		if pid, comm := ListenerOwner(p); pid > 0 {
			owner = fmt.Sprintf("pid %d (%s)", pid, comm)
		}
	}
	return fmt.Errorf("port %s is already in use by %s; stop it or choose another port", port, owner)
}

// ListenerOwner finds the pid and command name of the process listening on a TCP port, from
// /proc (0 when unknown, e.g. another user's process without root).
func ListenerOwner(port int) (pid int, comm string) {
	inodes := map[string]bool{}
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(table)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || fields[3] != "0A" { // 0A = LISTEN
				continue
			}
			local := fields[1]
			i := strings.LastIndexByte(local, ':')
			if p, err := strconv.ParseInt(local[i+1:], 16, 32); err == nil && int(p) == port {
				inodes["socket:["+fields[9]+"]"] = true
			}
		}
		f.Close()
	}
	if len(inodes) == 0 {
		return 0, ""
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, fd := range procs {
		target, err := os.Readlink(fd)
		if err != nil || !inodes[target] {
			continue
		}
		pidDir := filepath.Dir(filepath.Dir(fd))
		name, _ := os.ReadFile(filepath.Join(pidDir, "comm"))
		pid, _ = strconv.Atoi(filepath.Base(pidDir))
		return pid, strings.TrimSpace(string(name))
	}
	return 0, ""
}

// FreePort returns a loopback TCP port that nothing listens on right now (the kernel's pick).
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// LookPath resolves a binary given as a path (it must exist) or as a name on PATH.
func LookPath(bin string) (string, error) {
	if strings.ContainsRune(bin, '/') {
		if _, err := os.Stat(bin); err != nil {
			return "", err
		}
		return bin, nil
	}
	return exec.LookPath(bin)
}
