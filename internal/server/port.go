package server

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
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
	_, port, _ := net.SplitHostPort(addr)
	owner := "an unknown process"
	if p, _ := strconv.Atoi(port); p > 0 {
		if who := listenerOwner(p); who != "" {
			owner = who
		}
	}
	return fmt.Errorf("port %s is already in use by %s; stop it or choose another port", port, owner)
}

// listenerOwner finds "pid N (command)" of the process listening on a TCP port, from /proc.
func listenerOwner(port int) string {
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
		return ""
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, fd := range procs {
		target, err := os.Readlink(fd)
		if err != nil || !inodes[target] {
			continue
		}
		pidDir := filepath.Dir(filepath.Dir(fd))
		comm, _ := os.ReadFile(filepath.Join(pidDir, "comm"))
		return fmt.Sprintf("pid %s (%s)", filepath.Base(pidDir), strings.TrimSpace(string(comm)))
	}
	return ""
}
