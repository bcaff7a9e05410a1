package sysprep

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// OfficialInstaller is Ollama's install script.
const OfficialInstaller = "https://ollama.com/install.sh"

// InstallOptions configures Install.
type InstallOptions struct {
	Host Host
	// FromSource builds Ollama from its Go module with the checkout's scripts/ensure-ollama.sh
	// (the recipe the tests use) instead of running the official installer.
	FromSource bool
	RepoRoot   string // the fuze checkout holding scripts/ensure-ollama.sh
	Version    string // OLLAMA_VERSION for the source build; "" keeps the script's default
	Dest       string // where the binary goes (OLLAMA_BIN)
	// InstallerURL replaces OfficialInstaller (tests); HTTPClient the default client.
	InstallerURL string
	HTTPClient   *http.Client
	DryRun       bool
	Out          io.Writer
	// Service is run after the install so that install and service-cleanup agree; Host,
	// Bin, DryRun, Restart and Out are filled in by Install.
	Service ServiceOptions
}

// Install installs or upgrades Ollama, then runs ServiceCleanup: one persistent daemon on
// the persistent port with the configured store, restarted when the binary changed.
func Install(ctx context.Context, o InstallOptions) error {
	if o.Out == nil {
		o.Out = io.Discard
	}
	var (
		bin     string
		changed bool
		err     error
	)
	if o.FromSource {
		bin, changed, err = installFromSource(ctx, o)
	} else {
		bin, changed, err = installOfficial(ctx, o)
	}
	if err != nil {
		return err
	}
	svc := o.Service
	svc.Host, svc.Bin, svc.DryRun, svc.Out = o.Host, bin, o.DryRun, o.Out
	svc.Restart = svc.Restart || changed
	return ServiceCleanup(ctx, svc)
}

func installFromSource(ctx context.Context, o InstallOptions) (string, bool, error) {
	script := filepath.Join(o.RepoRoot, "scripts", "ensure-ollama.sh")
	if _, err := os.Stat(script); err != nil {
		return "", false, fmt.Errorf("install --from-source runs scripts/ensure-ollama.sh of the fuze checkout, not found under %s (run fuze from the checkout or set FUZE_ROOT)", o.RepoRoot)
	}
	build := Cmd{Name: "bash", Args: []string{script}}
	if o.Version != "" {
		build.Env = []string{"OLLAMA_VERSION=" + o.Version}
	}
	if o.DryRun {
		fmt.Fprintf(o.Out, "  would run %s (builds Ollama from its Go module)\n", build)
		fmt.Fprintf(o.Out, "  would install the built binary as %s (temporary file, then rename)\n", o.Dest)
		return o.Dest, false, nil
	}
	if err := checkWritable(filepath.Dir(o.Dest)); err != nil {
		return "", false, fmt.Errorf("installing %s needs write access to %s (%v): run it as root (sudo -E fuze ollama install --from-source) or set OLLAMA_BIN to a path you own", o.Dest, filepath.Dir(o.Dest), err)
	}
	fmt.Fprintf(o.Out, "== %s\n", build)
	var stdout bytes.Buffer
	build.Stdout, build.Stderr = &stdout, o.Out
	if err := o.Host.runner().Run(ctx, build); err != nil {
		return "", false, fmt.Errorf("build Ollama (%s): %w", build, err)
	}
	built := lastLine(stdout.String())
	if st, err := os.Stat(built); err != nil || st.IsDir() {
		return "", false, fmt.Errorf("%s printed %q, not the path of the built ollama binary", script, built)
	}
	changed, err := installBinary(built, o.Dest)
	if err != nil {
		return "", false, rootHint(err, "install "+o.Dest)
	}
	out, _ := combined(ctx, o.Host.runner(), o.Dest, "--version")
	version := OllamaVersion(out)
	if changed {
		fmt.Fprintf(o.Out, "✔ installed %s (ollama %s, built from %s)\n", o.Dest, version, built)
	} else {
		fmt.Fprintf(o.Out, "✔ %s already is this build (ollama %s)\n", o.Dest, version)
	}
	return o.Dest, changed, nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// checkWritable creates dir if needed and checks that a file can be created in it.
func checkWritable(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".fuze-wtest-*")
	if err != nil {
		return err
	}
	f.Close()
	return os.Remove(f.Name())
}

// installBinary copies src to dst through a temporary file in dst's directory and a rename,
// so a running daemon keeps its old binary and nobody sees a half-written one. It reports
// false when dst already has src's content.
func installBinary(src, dst string) (bool, error) {
	if same, _ := sameContent(src, dst); same {
		return false, nil
	}
	in, err := os.Open(src)
	if err != nil {
		return false, err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return false, err
	}
	_, err = io.Copy(tmp, in)
	if err == nil {
		err = tmp.Chmod(0o755)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), dst)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return false, err
	}
	return true, nil
}

func sameContent(a, b string) (bool, error) {
	sa, err := os.Stat(a)
	if err != nil {
		return false, err
	}
	sb, err := os.Stat(b)
	if err != nil {
		return false, err
	}
	if os.SameFile(sa, sb) {
		return true, nil
	}
	if sa.Size() != sb.Size() {
		return false, nil
	}
	fa, err := os.Open(a)
	if err != nil {
		return false, err
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return false, err
	}
	defer fb.Close()
	ba, bb := make([]byte, 1<<20), make([]byte, 1<<20)
	for {
		na, ea := io.ReadFull(fa, ba)
		nb, _ := io.ReadFull(fb, bb)
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			return false, nil
		}
		if ea != nil {
			return true, nil
		}
	}
}

// installOfficial runs Ollama's official installer, after checking quickly that this machine
// can reach it.
func installOfficial(ctx context.Context, o InstallOptions) (string, bool, error) {
	url := o.InstallerURL
	if url == "" {
		url = OfficialInstaller
	}
	client := o.HTTPClient
	if client == nil {
		client = &http.Client{}
	}
	if err := reachable(ctx, client, url); err != nil {
		return "", false, fmt.Errorf("the official Ollama installer %s is not reachable from this machine (%v): use `fuze ollama install --from-source`, which builds Ollama from its Go module", url, err)
	}
	if o.DryRun {
		fmt.Fprintf(o.Out, "  would download %s and run it with sh (it installs ollama and its own %s, which service-cleanup then replaces by %s)\n", url, StockUnit, UnitName)
		return o.Dest, true, nil
	}
	if !o.Host.Root() {
		return "", false, errors.New("the official Ollama installer writes system paths and needs root: run `sudo fuze ollama install` (or `fuze ollama install --from-source` with OLLAMA_BIN set to a path you own)")
	}
	script, err := download(ctx, client, url)
	if err != nil {
		return "", false, fmt.Errorf("download %s: %w", url, err)
	}
	defer os.Remove(script)
	run := Cmd{Name: "sh", Args: []string{script}, Stdout: o.Out, Stderr: o.Out}
	fmt.Fprintf(o.Out, "== sh %s (from %s)\n", script, url)
	if err := o.Host.runner().Run(ctx, run); err != nil {
		return "", false, fmt.Errorf("official Ollama installer: %w", err)
	}
	bin := o.Dest
	if _, err := os.Stat(bin); err != nil {
		if p, lerr := o.Host.runner().LookPath("ollama"); lerr == nil {
			fmt.Fprintf(o.Out, "! the installer put ollama at %s, not at OLLAMA_BIN %s: the service uses %s\n", p, o.Dest, p)
			bin = p
		}
	}
	return bin, true, nil
}

// reachable sends a HEAD request with a 5 s limit.
func reachable(ctx context.Context, client *http.Client, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode >= 400 {
		return fmt.Errorf("HTTP %s", resp.Status)
	}
	return nil
}

func download(ctx context.Context, client *http.Client, url string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("HTTP %s", resp.Status)
	}
	f, err := os.CreateTemp("", "ollama-install-*.sh")
	if err != nil {
		return "", err
	}
	_, err = io.Copy(f, resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}
