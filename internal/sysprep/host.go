package sysprep

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fuze-ai/fuze/internal/server"
)

// Host is the machine the utilities inspect and change. DefaultHost describes the real one;
// tests point every path at temporary folders and the Runner at a fake.
type Host struct {
	Runner     Runner
	PCIDevices string // PCI devices in sysfs (vendor and class files per device)
	OSRelease  string // os-release file
	SystemdDir string // exists when systemd is the init system
	UnitDir    string // where service-cleanup writes its unit
	Meminfo    string // meminfo file
	CUDAHome   string // CUDA toolkit prefix searched for bin/nvcc when nvcc is not on PATH
	UID        int    // effective user id; 0 is root
	Kernel     string // kernel release (uname -r)
	// LookupUser returns a user's uid and primary gid; LookupGroup reports whether a group
	// exists. Nil means the real user database.
	LookupUser  func(name string) (uid, gid int, ok bool)
	LookupGroup func(name string) bool
}

// DefaultHost describes the machine fuze runs on.
func DefaultHost() Host {
	return Host{
		Runner:     ExecRunner{},
		PCIDevices: "/sys/bus/pci/devices",
		OSRelease:  "/etc/os-release",
		SystemdDir: "/run/systemd/system",
		UnitDir:    "/etc/systemd/system",
		Meminfo:    "/proc/meminfo",
		CUDAHome:   "/usr/local/cuda",
		UID:        os.Geteuid(),
		Kernel:     kernelRelease(),
	}
}

func (h Host) runner() Runner {
	if h.Runner == nil {
		return ExecRunner{}
	}
	return h.Runner
}

// Root reports whether fuze runs as root.
func (h Host) Root() bool { return h.UID == 0 }

// Systemd reports whether systemd is the running init system.
func (h Host) Systemd() bool {
	if h.SystemdDir == "" {
		return false
	}
	st, err := os.Stat(h.SystemdDir)
	return err == nil && st.IsDir()
}

func (h Host) lookupUser(name string) (uid, gid int, ok bool) {
	if h.LookupUser != nil {
		return h.LookupUser(name)
	}
	u, err := user.Lookup(name)
	if err != nil {
		return 0, 0, false
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	return uid, gid, err1 == nil && err2 == nil
}

func (h Host) groupExists(name string) bool {
	if h.LookupGroup != nil {
		return h.LookupGroup(name)
	}
	_, err := user.LookupGroup(name)
	return err == nil
}

func kernelRelease() string {
	var u syscall.Utsname
	if syscall.Uname(&u) != nil {
		return ""
	}
	b := make([]byte, 0, len(u.Release))
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		b = append(b, byte(c))
	}
	return string(b)
}

// OSInfo is what os-release says about the distribution.
type OSInfo struct {
	ID, IDLike, VersionID, PrettyName string
}

// ReadOSRelease parses an os-release file (KEY=value lines, values optionally quoted).
func ReadOSRelease(path string) (OSInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return OSInfo{}, err
	}
	defer f.Close()
	var o OSInfo
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok || strings.HasPrefix(k, "#") {
			continue
		}
		if uq, err := strconv.Unquote(v); err == nil {
			v = uq
		} else {
			v = strings.Trim(v, `'"`)
		}
		switch k {
		case "ID":
			o.ID = v
		case "ID_LIKE":
			o.IDLike = v
		case "VERSION_ID":
			o.VersionID = v
		case "PRETTY_NAME":
			o.PrettyName = v
		}
	}
	if o.PrettyName == "" {
		o.PrettyName = strings.TrimSpace(o.ID + " " + o.VersionID)
	}
	return o, sc.Err()
}

func (o OSInfo) family() []string { return append([]string{o.ID}, strings.Fields(o.IDLike)...) }

// Ubuntu reports an Ubuntu or Ubuntu-based distribution.
func (o OSInfo) Ubuntu() bool {
	for _, id := range o.family() {
		if id == "ubuntu" {
			return true
		}
	}
	return false
}

// Debian reports a Debian-family distribution (Debian, Ubuntu and their derivatives): apt.
func (o OSInfo) Debian() bool {
	for _, id := range o.family() {
		if id == "debian" || id == "ubuntu" {
			return true
		}
	}
	return false
}

// NVIDIAPCIDevices lists the PCI slots of NVIDIA display controllers (vendor 0x10de, class
// 0x03xxxx) under a sysfs PCI devices directory.
func NVIDIAPCIDevices(dir string) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		vendor, _ := os.ReadFile(filepath.Join(dir, e.Name(), "vendor"))
		class, _ := os.ReadFile(filepath.Join(dir, e.Name(), "class"))
		if strings.TrimSpace(string(vendor)) == "0x10de" && strings.HasPrefix(strings.TrimSpace(string(class)), "0x03") {
			out = append(out, e.Name())
		}
	}
	return out
}

// Listener is who listens on a loopback TCP port.
type Listener struct {
	Port    int
	Free    bool
	PID     int    // 0 when the owner could not be identified (another user's process, not root)
	Command string // the owner's command name (/proc/PID/comm)
}

// Owner names the listener for messages: "pid 123 (ollama)" or "an unknown process".
func (l Listener) Owner() string {
	if l.PID > 0 {
		return fmt.Sprintf("pid %d (%s)", l.PID, l.Command)
	}
	return "an unknown process"
}

// PortListener reports who listens on 127.0.0.1:port.
func PortListener(port int) (Listener, error) {
	l := Listener{Port: port}
	err := server.CheckPortFree(net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err == nil {
		l.Free = true
		return l, nil
	}
	if !strings.Contains(err.Error(), "already in use") {
		return l, err
	}
	l.PID, l.Command = server.ListenerOwner(port)
	return l, nil
}

// procComm returns a process's command name, "" when it does not exist.
func procComm(pid int) string {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "comm"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// procCmdline returns a process's arguments.
func procCmdline(pid int) []string {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return nil
	}
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
}

// processAlive reports whether pid exists and is not a zombie.
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses, which may itself contain ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return true
	}
	return s[i+2] != 'Z' && s[i+2] != 'X'
}

// isOllamaProcess reports whether pid runs an Ollama binary: its command name is "ollama"
// or the (truncated) base name of bin, or its first argument's base name is.
func isOllamaProcess(pid int, bin string) bool {
	names := map[string]bool{"ollama": true}
	if bin != "" {
		b := filepath.Base(bin)
		names[b] = true
		if len(b) > 15 { // the kernel truncates comm to 15 bytes
			names[b[:15]] = true
		}
	}
	if names[procComm(pid)] {
		return true
	}
	args := procCmdline(pid)
	return len(args) > 0 && names[filepath.Base(args[0])]
}

// stopProcess sends TERM to pid (to its whole process group when it leads one, so Ollama's
// runners go too), waits up to grace, then sends KILL.
func stopProcess(pid int, grace time.Duration) error {
	target := pid
	if pgid, err := syscall.Getpgid(pid); err == nil && pgid == pid {
		target = -pid
	}
	if err := syscall.Kill(target, syscall.SIGTERM); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return nil
		}
		return fmt.Errorf("stop pid %d: %w", pid, err)
	}
	if waitGone(pid, grace) {
		return nil
	}
	_ = syscall.Kill(target, syscall.SIGKILL)
	if waitGone(pid, 5*time.Second) {
		return nil
	}
	return fmt.Errorf("pid %d still running after SIGKILL", pid)
}

func waitGone(pid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for processAlive(pid) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond) // polling another process's exit
	}
	return true
}

// writeFileAtomic writes data to path through a temporary file in the same directory.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	if werr == nil {
		werr = f.Chmod(mode)
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		os.Remove(tmp)
	}
	return werr
}

// rootHint adds "run as root" to a permission error.
func rootHint(err error, what string) error {
	if errors.Is(err, os.ErrPermission) {
		return fmt.Errorf("%s: %w (needs root: run it with sudo)", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}
