package sysprep

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/fuze-ai/fuze/internal/ollamatest"
)

func TestInstallOfficialUnreachable(t *testing.T) {
	var out bytes.Buffer
	err := Install(context.Background(), InstallOptions{
		Host:         testHost(t, &Fake{}),
		InstallerURL: "http://127.0.0.1:" + strconv.Itoa(freePort(t)) + "/install.sh",
		Dest:         filepath.Join(t.TempDir(), "ollama"),
		DryRun:       true,
		Out:          &out,
	})
	if err == nil || !strings.Contains(err.Error(), "not reachable from this machine") || !strings.Contains(err.Error(), "--from-source") {
		t.Fatalf("err = %v", err)
	}
}

func TestInstallOfficialDryRun(t *testing.T) {
	var heads int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead {
			heads++
		}
	}))
	defer srv.Close()
	var out bytes.Buffer
	h := testHost(t, &Fake{})
	h.UID = 1000
	err := Install(context.Background(), InstallOptions{
		Host:         h,
		InstallerURL: srv.URL + "/install.sh",
		Dest:         filepath.Join(t.TempDir(), "ollama"),
		DryRun:       true,
		Out:          &out,
		Service:      ServiceOptions{ModelsDir: t.TempDir(), Port: freePort(t), StateDir: t.TempDir()},
	})
	if err != nil || heads != 1 {
		t.Fatalf("err %v, %d HEAD requests\n%s", err, heads, out.String())
	}
	if !strings.Contains(out.String(), "would download "+srv.URL+"/install.sh") || !strings.Contains(out.String(), "would start OLLAMA_HOST=") {
		t.Errorf("output:\n%s", out.String())
	}
}

func TestInstallOfficialNeedsRoot(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	h := testHost(t, &Fake{})
	h.UID = 1000
	err := Install(context.Background(), InstallOptions{Host: h, InstallerURL: srv.URL, Dest: filepath.Join(t.TempDir(), "ollama")})
	if err == nil || !strings.Contains(err.Error(), "needs root") || !strings.Contains(err.Error(), "sudo") {
		t.Fatalf("err = %v", err)
	}
}

func TestInstallFromSourceNoCheckout(t *testing.T) {
	err := Install(context.Background(), InstallOptions{Host: testHost(t, &Fake{}), FromSource: true, RepoRoot: t.TempDir(), Dest: "/x/ollama"})
	if err == nil || !strings.Contains(err.Error(), "scripts/ensure-ollama.sh") {
		t.Fatalf("err = %v", err)
	}
}

func TestInstallFromSourceUnwritableDest(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "scripts", "ensure-ollama.sh"), "#!/bin/sh\n")
	notDir := filepath.Join(t.TempDir(), "file")
	writeFile(t, notDir, "")
	f := &Fake{}
	err := Install(context.Background(), InstallOptions{Host: testHost(t, f), FromSource: true, RepoRoot: root, Dest: filepath.Join(notDir, "ollama")})
	if err == nil || !strings.Contains(err.Error(), "needs write access") || !strings.Contains(err.Error(), "root") {
		t.Fatalf("err = %v", err)
	}
	if len(f.Calls()) > 0 {
		t.Errorf("built anyway: %q", f.Calls())
	}
}

// --from-source: the build script (a fake printing the real binary's path) runs with
// OLLAMA_VERSION, the binary is copied to OLLAMA_BIN, and service-cleanup starts it as the
// persistent daemon; a second install changes nothing and keeps the daemon.
func TestInstallFromSource(t *testing.T) {
	built := ollamatest.Binary(t)
	root := t.TempDir()
	script := filepath.Join(root, "scripts", "ensure-ollama.sh")
	writeFile(t, script, "#!/bin/sh\n")
	f := &Fake{Programs: map[string]func([]string) FakeResult{
		"bash":   func([]string) FakeResult { return FakeResult{Stdout: built + "\n", Stderr: "== building\n"} },
		"ollama": out("Warning: client version is 0.17.4\n"),
	}}
	h := testHost(t, f)
	h.UID = os.Geteuid()
	dest := filepath.Join(t.TempDir(), "bin", "ollama")
	state := t.TempDir()
	t.Cleanup(func() { StopSupervised(state) })
	opts := InstallOptions{
		Host: h, FromSource: true, RepoRoot: root, Version: "0.17.4", Dest: dest,
		Service: ServiceOptions{
			ModelsDir: filepath.Join(t.TempDir(), "store"), Port: freePort(t), StateDir: state,
			Environ: []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "CUDA_VISIBLE_DEVICES="},
		},
	}

	var buf bytes.Buffer
	opts.DryRun, opts.Out = true, &buf
	if err := Install(context.Background(), opts); err != nil {
		t.Fatalf("dry run: %v\n%s", err, buf.String())
	}
	if !strings.Contains(buf.String(), "would run OLLAMA_VERSION=0.17.4 bash "+script) || len(f.Calls()) != 0 {
		t.Fatalf("dry run ran %q:\n%s", f.Calls(), buf.String())
	}

	buf.Reset()
	opts.DryRun = false
	if err := Install(context.Background(), opts); err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	if c := f.Calls(); len(c) == 0 || c[0] != "OLLAMA_VERSION=0.17.4 bash "+script {
		t.Fatalf("calls %q", c)
	}
	if same, err := sameContent(built, dest); !same || err != nil {
		t.Fatalf("%s is not a copy of %s: %v", dest, built, err)
	}
	if st, _ := os.Stat(dest); st.Mode().Perm() != 0o755 {
		t.Errorf("mode %v", st.Mode())
	}
	if !strings.Contains(buf.String(), "✔ installed "+dest+" (ollama 0.17.4") || !strings.Contains(buf.String(), "started Ollama pid") {
		t.Fatalf("output:\n%s", buf.String())
	}
	pid := readPIDFile(t, state)
	if args := procCmdline(pid); len(args) == 0 || args[0] != dest {
		t.Errorf("daemon runs %q, not the installed %s", args, dest)
	}

	buf.Reset()
	if err := Install(context.Background(), opts); err != nil {
		t.Fatalf("second install: %v\n%s", err, buf.String())
	}
	if !strings.Contains(buf.String(), dest+" already is this build") || !strings.Contains(buf.String(), "kept: Ollama pid "+strconv.Itoa(pid)) {
		t.Fatalf("second install:\n%s", buf.String())
	}
	if stopped, err := StopSupervised(state); !stopped || err != nil {
		t.Fatalf("StopSupervised %v %v", stopped, err)
	}
}
