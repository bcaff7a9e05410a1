package sysprep

import (
	"bufio"
	"context"
	"fmt"
	"github.com/fuze-ai/fuze/internal/ollamatest"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fuze-ai/fuze/internal/knobs"
)

const testKernel = "6.1.0-test-amd64"

// testHost is a Debian machine without systemd, running as root, whose paths are temporary
// folders and whose programs are f's.
func testHost(t *testing.T, f Runner) Host {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"pci", "units"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(dir, "os-release"), "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n")
	writeFile(t, filepath.Join(dir, "meminfo"), "MemTotal:       65843720 kB\nMemFree:        1000 kB\n")
	return Host{
		Runner:      f,
		PCIDevices:  filepath.Join(dir, "pci"),
		OSRelease:   filepath.Join(dir, "os-release"),
		SystemdDir:  filepath.Join(dir, "no-systemd"),
		UnitDir:     filepath.Join(dir, "units"),
		Meminfo:     filepath.Join(dir, "meminfo"),
		CUDAHome:    filepath.Join(dir, "no-cuda"),
		UID:         0,
		Kernel:      testKernel,
		LookupUser:  func(string) (int, int, bool) { return os.Getuid(), os.Getgid(), true },
		LookupGroup: func(name string) bool { return name == "video" },
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// addNVIDIAPCI adds an NVIDIA VGA controller to the host's fake sysfs.
func addNVIDIAPCI(t *testing.T, h Host) {
	writeFile(t, filepath.Join(h.PCIDevices, "0000:01:00.0", "vendor"), "0x10de\n")
	writeFile(t, filepath.Join(h.PCIDevices, "0000:01:00.0", "class"), "0x030000\n")
	writeFile(t, filepath.Join(h.PCIDevices, "0000:00:1f.0", "vendor"), "0x8086\n")
	writeFile(t, filepath.Join(h.PCIDevices, "0000:00:1f.0", "class"), "0x060100\n")
}

func freePort(t *testing.T) int { return ollamatest.FreePort(t) }

func out(s string) func([]string) FakeResult {
	return func([]string) FakeResult { return FakeResult{Stdout: s} }
}

const smiQuery = "0, NVIDIA H100 80GB HBM3, GPU-11111111-2222-3333-4444-555555555555, 81559, 0, 570.133.07, 00000000:01:00.0, 700.00\n"

// nvidiaSMI answers the inventory query and the plain banner.
func nvidiaSMI(args []string) FakeResult {
	if len(args) > 0 && strings.HasPrefix(args[0], "--query-gpu=") {
		return FakeResult{Stdout: smiQuery}
	}
	return FakeResult{Stdout: "| NVIDIA-SMI 570.133.07   Driver Version: 570.133.07   CUDA Version: 12.8 |\n"}
}

// fakeOllamaAPI listens on a free loopback port and answers /api/version and /api/tags like
// an Ollama daemon.
func fakeOllamaAPI(t *testing.T) (*httptest.Server, int) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/version":
			fmt.Fprint(w, `{"version":"0.0.0-fake"}`)
		case "/api/tags":
			fmt.Fprint(w, `{"models":[]}`)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, srv.Listener.Addr().(*net.TCPAddr).Port
}

// config resolves knobs from KEY=VALUE pairs over the registry's defaults.
func config(kv ...string) func(string) string { return knobs.Resolve(kv).Get }

// ---- helper process: the test binary re-executed as a fake program ----

// helperRunner runs every program as this test binary (TestHelperProcess), which records its
// command line in record; programs in missing are not installed.
func helperRunner(record string, missing ...string) ExecRunner {
	isMissing := func(name string) bool {
		for _, m := range missing {
			if filepath.Base(name) == m {
				return true
			}
		}
		return false
	}
	return ExecRunner{
		Command: func(ctx context.Context, name string, args ...string) *exec.Cmd {
			if isMissing(name) {
				return exec.CommandContext(ctx, "fuze-test-not-installed-"+filepath.Base(name))
			}
			cmd := exec.CommandContext(ctx, os.Args[0], append([]string{"-test.run=^TestHelperProcess$", "--", name}, args...)...)
			cmd.Env = append(os.Environ(), "FUZE_SYSPREP_HELPER=1", "FUZE_SYSPREP_RECORD="+record)
			return cmd
		},
		LookPathFunc: func(name string) (string, error) {
			if isMissing(name) {
				return "", &exec.Error{Name: name, Err: exec.ErrNotFound}
			}
			return "/fake/bin/" + name, nil
		},
	}
}

func readRecord(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines
}

// TestHelperProcess is not a test: it is the fake systemctl / apt-get / apt-cache /
// dpkg-query that helperRunner runs. It appends "name args… [DEBIAN_FRONTEND=…]" to the record
// file and answers like the real program on a Debian host with the driver packages available.
func TestHelperProcess(t *testing.T) {
	if os.Getenv("FUZE_SYSPREP_HELPER") != "1" {
		return
	}
	args := os.Args
	for len(args) > 0 && args[0] != "--" {
		args = args[1:]
	}
	name, rest := filepath.Base(args[1]), args[2:]
	line := strings.Join(append([]string{name}, rest...), " ")
	if name == "apt-get" {
		line += " [DEBIAN_FRONTEND=" + os.Getenv("DEBIAN_FRONTEND") + "]"
	}
	f, err := os.OpenFile(os.Getenv("FUZE_SYSPREP_RECORD"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		os.Exit(3)
	}
	fmt.Fprintln(f, line)
	f.Close()
	switch name {
	case "apt-cache":
		fmt.Printf("%s:\n  Installed: (none)\n  Candidate: 1.0-1\n", rest[len(rest)-1])
	case "dpkg-query":
		fmt.Fprintf(os.Stderr, "dpkg-query: no packages found matching %s\n", rest[len(rest)-1])
		os.Exit(1)
	case "apt-get":
		fmt.Println("Reading package lists... Done")
	}
	os.Exit(0)
}
