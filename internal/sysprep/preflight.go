package sysprep

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fuze-ai/fuze/internal/gpu"
	"github.com/fuze-ai/fuze/internal/ollamaapi"
	"github.com/fuze-ai/fuze/internal/results"
	"github.com/fuze-ai/fuze/internal/stackname"
)

// Status is a preflight check's verdict.
type Status string

// The verdicts, from best to worst.
const (
	StatusOK    Status = "ok"
	StatusWarn  Status = "warn"
	StatusError Status = "error"
)

// Check is one preflight finding.
type Check struct {
	Section string `json:"section"`
	Name    string `json:"name"`
	Status  Status `json:"status"`
	Message string `json:"message"`
}

// Report is the result of Preflight.
type Report struct {
	Checks []Check `json:"checks"`
}

// Count returns how many checks have status st.
func (r Report) Count(st Status) int {
	n := 0
	for _, c := range r.Checks {
		if c.Status == st {
			n++
		}
	}
	return n
}

// Failed reports whether any check is an error.
func (r Report) Failed() bool { return r.Count(StatusError) > 0 }

// Preflight sections, in report order.
const (
	SectionSystem   = "System"
	SectionGPU      = "GPU / driver / CUDA"
	SectionBinaries = "Binaries"
	SectionServices = "Services / ports"
	SectionStores   = "Model stores"
	SectionLogs     = "Logs"
)

// PreflightOptions configures Preflight.
type PreflightOptions struct {
	Host Host
	// Get returns a knob's effective value (knobs.Config.Get): OLLAMA_BIN, OLLAMA_MODELS_DIR,
	// GGUF_DEST_DIR, LOG_DIR, the ports, LLAMACPP_BIN, VLLM_BIN, VLLM_PYTHON, PYTHON_BIN,
	// TRITON_HTTP_A/B, and HOME/XDG_STATE_HOME for the log directory's fallbacks.
	Get func(string) string
	// RepoRoot is the fuze checkout whose legacy log folders are looked at ("" skips them).
	RepoRoot string
	// Timeout bounds each external command and HTTP probe (default 10 s).
	Timeout time.Duration
}

type preflight struct {
	PreflightOptions
	r      Runner
	report Report
}

func (p *preflight) add(section, name string, st Status, format string, args ...any) {
	p.report.Checks = append(p.report.Checks, Check{Section: section, Name: name, Status: st, Message: fmt.Sprintf(format, args...)})
}

// Preflight inspects the machine and returns one check per finding. A missing ollama binary
// is an error (the Ollama stack is fuze's core); missing binaries of the other stacks are
// warnings.
func Preflight(ctx context.Context, o PreflightOptions) Report {
	if o.Get == nil {
		o.Get = os.Getenv
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	p := &preflight{PreflightOptions: o, r: o.Host.runner()}
	p.system()
	p.gpu(ctx)
	p.binaries(ctx)
	p.services(ctx)
	p.stores()
	p.logs()
	return p.report
}

func (p *preflight) system() {
	const s = SectionSystem
	if osi, err := ReadOSRelease(p.Host.OSRelease); err != nil {
		p.add(s, "os", StatusWarn, "unknown (%v)", err)
	} else {
		p.add(s, "os", StatusOK, "%s", osi.PrettyName)
	}
	p.add(s, "kernel", StatusOK, "%s %s", runtime.GOOS, p.Host.Kernel)
	p.add(s, "cpus", StatusOK, "%d", runtime.NumCPU())
	if kb, err := memTotalKiB(p.Host.Meminfo); err != nil {
		p.add(s, "memory", StatusWarn, "unknown (%v)", err)
	} else {
		p.add(s, "memory", StatusOK, "%.1f GiB", float64(kb)/(1<<20))
	}
	if p.Host.Root() {
		p.add(s, "user", StatusOK, "root")
	} else {
		p.add(s, "user", StatusOK, "uid %d, not root: install, gpu-prepare and service-cleanup's systemd unit need sudo", p.Host.UID)
	}
}

func memTotalKiB(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
			return strconv.ParseInt(f[1], 10, 64)
		}
	}
	return 0, fmt.Errorf("no MemTotal in %s", path)
}

var (
	cudaVersionRE = regexp.MustCompile(`CUDA Version:\s*([0-9.]+)`)
	nvccRE        = regexp.MustCompile(`release ([0-9.]+)`)
)

func (p *preflight) ctx(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(parent, p.Timeout)
}

func (p *preflight) gpu(parent context.Context) {
	const s = SectionGPU
	ctx, cancel := p.ctx(parent)
	defer cancel()
	gpus, err := gpu.Inventory(ctx, p.r)
	hasGPU := len(gpus) > 0
	switch {
	case err != nil:
		hasGPU = true
		p.add(s, "nvidia-smi", StatusError, "%v: the driver is installed but not working (reboot after a driver install, or run fuze gpu-prepare)", err)
	case hasGPU:
		for _, g := range gpus {
			label := g.Label
			if label == "" {
				label = "no label"
			}
			p.add(s, fmt.Sprintf("gpu %d", g.Index), StatusOK, "%s, %d MiB, %s, %s", g.Name, g.MemoryMiB, label, g.UUID)
		}
		msg := gpus[0].Driver
		if out, err := p.r.Output(ctx, "nvidia-smi"); err == nil {
			if m := cudaVersionRE.FindSubmatch(out); m != nil {
				msg += ", CUDA " + string(m[1]) + " (driver API)"
			}
		}
		p.add(s, "driver", StatusOK, "%s", msg)
	default:
		if pci := NVIDIAPCIDevices(p.Host.PCIDevices); len(pci) > 0 {
			hasGPU = true
			p.add(s, "gpu", StatusWarn, "NVIDIA PCI device %s but no working nvidia-smi: install the driver (fuze gpu-prepare)", strings.Join(pci, ", "))
		} else {
			p.add(s, "gpu", StatusWarn, "no NVIDIA GPU detected: only CPU endpoints can be benchmarked (vLLM and Triton need a GPU)")
		}
	}
	nvcc := p.findNVCC()
	switch {
	case nvcc != "":
		out, err := combined(ctx, p.r, nvcc, "--version")
		if m := nvccRE.FindSubmatch(out); err == nil && m != nil {
			p.add(s, "cuda toolkit", StatusOK, "nvcc %s (%s)", m[1], nvcc)
		} else {
			p.add(s, "cuda toolkit", StatusWarn, "%s --version failed: %v", nvcc, errOrOutput(err, out))
		}
	case hasGPU:
		p.add(s, "cuda toolkit", StatusWarn, "nvcc not found: building llama.cpp with CUDA needs the CUDA toolkit (fuze gpu-prepare)")
	default:
		p.add(s, "cuda toolkit", StatusOK, "not installed (not needed without a GPU)")
	}
}

// findNVCC returns nvcc's path: on PATH, else under CUDAHome; "" when absent.
func (p *preflight) findNVCC() string { return findNVCC(p.Host) }

func findNVCC(h Host) string {
	if path, err := h.runner().LookPath("nvcc"); err == nil {
		return path
	}
	if h.CUDAHome != "" {
		path := filepath.Join(h.CUDAHome, "bin", "nvcc")
		if st, err := os.Stat(path); err == nil && !st.IsDir() {
			return path
		}
	}
	return ""
}

func errOrOutput(err error, out []byte) string {
	if line := firstLine(string(out)); line != "" {
		return line
	}
	if err != nil {
		return err.Error()
	}
	return "no version in its output"
}

func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	return ""
}

var (
	ollamaVersionRE = regexp.MustCompile(`client version is (\S+)`)
	ollamaServerRE  = regexp.MustCompile(`version is (\S+)`)
	llamaVersionRE  = regexp.MustCompile(`(?m)^version:\s*(.+)$`)
	semverRE        = regexp.MustCompile(`(?m)^v?[0-9]+\.[0-9]+[0-9A-Za-z.+-]*$`)
)

// OllamaVersion reads the version out of `ollama --version`, which prints "ollama version is
// X" when a daemon answers and "Warning: client version is X" otherwise (the client's own
// version wins when both appear).
func OllamaVersion(out []byte) string {
	if m := ollamaVersionRE.FindSubmatch(out); m != nil {
		return string(m[1])
	}
	if m := ollamaServerRE.FindSubmatch(out); m != nil {
		return string(m[1])
	}
	return ""
}

// resolveBin returns the binary configured by knob (a path or a name), else the first of
// names found on PATH, and how it was found.
func resolveBin(r Runner, configured string, names ...string) (path, note string) {
	if configured != "" {
		if strings.ContainsRune(configured, '/') {
			if st, err := os.Stat(configured); err == nil && !st.IsDir() {
				return configured, ""
			}
			note = configured + " absent; "
		} else if p, err := r.LookPath(configured); err == nil {
			return p, ""
		}
	}
	for _, n := range names {
		if p, err := r.LookPath(n); err == nil {
			return p, note + "found on PATH"
		}
	}
	return "", note
}

// OllamaBinary resolves OLLAMA_BIN, falling back to ollama on PATH as the benchmark does.
func OllamaBinary(r Runner, configured string) string {
	p, _ := resolveBin(r, configured, "ollama")
	return p
}

func (p *preflight) binaries(parent context.Context) {
	const s = SectionBinaries
	ctx, cancel := p.ctx(parent)
	defer cancel()

	if bin, note := resolveBin(p.r, p.Get("OLLAMA_BIN"), "ollama"); bin == "" {
		p.add(s, stackname.Ollama, StatusError, "not found (OLLAMA_BIN=%s, not on PATH): fuze ollama install [--from-source]", p.Get("OLLAMA_BIN"))
	} else {
		out, err := combined(ctx, p.r, bin, "--version")
		if v := OllamaVersion(out); v != "" {
			p.add(s, stackname.Ollama, StatusOK, "%s (%s%s)", v, bin, paren(note))
		} else {
			p.add(s, stackname.Ollama, StatusError, "%s --version: %s", bin, errOrOutput(err, out))
		}
	}

	if bin, note := resolveBin(p.r, p.Get("LLAMACPP_BIN"), "llama-server"); bin == "" {
		p.add(s, stackname.LlamaCpp, StatusWarn, "llama-server not found (LLAMACPP_BIN unset or absent): the llama.cpp stack cannot run")
	} else {
		out, err := combined(ctx, p.r, bin, "--version")
		v := ""
		if m := llamaVersionRE.FindSubmatch(out); m != nil {
			v = strings.TrimSpace(string(m[1]))
		}
		if v == "" {
			p.add(s, stackname.LlamaCpp, StatusWarn, "%s --version: %s", bin, errOrOutput(err, out))
		} else {
			p.add(s, stackname.LlamaCpp, StatusOK, "%s (%s%s)", v, bin, paren(note))
		}
	}

	p.vllm(parent)

	for _, b := range []struct{ name, hint string }{
		{"tritonserver", "Triton servers are yours to start (TRITON_START_CMD, or its container)"},
		{"perf_analyzer", "the Triton benchmark needs it (the Triton SDK container, or pip's tritonclient)"},
	} {
		if path, err := p.r.LookPath(b.name); err == nil {
			p.add(s, b.name, StatusOK, "%s", path)
		} else {
			p.add(s, b.name, StatusWarn, "not found: %s", b.hint)
		}
	}
}

func paren(note string) string {
	if note == "" {
		return ""
	}
	return "; " + strings.TrimSuffix(note, "; ")
}

// vllm finds vLLM: VLLM_BIN, else the vllm command, else `import vllm` in VLLM_PYTHON or
// PYTHON_BIN. Importing vLLM loads torch, so it gets a longer timeout.
func (p *preflight) vllm(parent context.Context) {
	const s = SectionBinaries
	ctx, cancel := context.WithTimeout(parent, 6*p.Timeout)
	defer cancel()
	if bin, note := resolveBin(p.r, p.Get("VLLM_BIN"), "vllm"); bin != "" {
		out, err := combined(ctx, p.r, bin, "--version")
		if v := lastMatch(semverRE, out); err == nil && v != "" {
			p.add(s, stackname.VLLM, StatusOK, "%s (%s%s)", v, bin, paren(note))
			return
		}
	}
	py := p.Get("VLLM_PYTHON")
	if py == "" {
		py = p.Get("PYTHON_BIN")
	}
	if py == "" {
		py = "python3"
	}
	if path, _ := resolveBin(p.r, py); path != "" {
		out, err := p.r.Output(ctx, path, "-c", "import vllm; print(vllm.__version__)")
		if v := lastMatch(semverRE, out); err == nil && v != "" {
			p.add(s, stackname.VLLM, StatusOK, "%s (python module, %s)", v, path)
			return
		}
	}
	p.add(s, stackname.VLLM, StatusWarn, "not found (no vllm command, no vllm module in %s): the vLLM stack cannot run", py)
}

func lastMatch(re *regexp.Regexp, out []byte) string {
	all := re.FindAll(out, -1)
	if len(all) == 0 {
		return ""
	}
	return strings.TrimSpace(string(all[len(all)-1]))
}

type portRole struct {
	name, knobs string
	port        int
}

func (p *preflight) port(name string) (int, error) {
	v := p.Get(name)
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n <= 0 || n > 65535 {
		return 0, fmt.Errorf("%s=%q is not a port", name, v)
	}
	return n, nil
}

func (p *preflight) services(parent context.Context) {
	const s = SectionServices
	ctx, cancel := p.ctx(parent)
	defer cancel()
	if persistent, err := p.port("PERSISTENT_PORT"); err != nil {
		p.add(s, "persistent", StatusError, "%v", err)
	} else {
		p.persistentPort(ctx, persistent)
	}
	// Test ports of the Ollama stack and the vLLM/llama.cpp server ports (the same numbers by
	// default): one line per distinct port.
	var roles []portRole
	seen := map[int]int{}
	for _, r := range []struct{ label, knob string }{
		{"test port A", "TEST_PORT_A"}, {"test port B", "TEST_PORT_B"},
		{"server port A", "PORT_A"}, {"server port B", "PORT_B"},
	} {
		n, err := p.port(r.knob)
		if err != nil {
			p.add(s, r.label, StatusError, "%v", err)
			continue
		}
		if i, ok := seen[n]; ok {
			roles[i].knobs += "/" + r.knob
			continue
		}
		seen[n] = len(roles)
		roles = append(roles, portRole{r.label, r.knob, n})
	}
	for _, r := range roles {
		l, err := PortListener(r.port)
		switch {
		case err != nil:
			p.add(s, r.name, StatusWarn, ":%d (%s): %v", r.port, r.knobs, err)
		case l.Free:
			p.add(s, r.name, StatusOK, ":%d (%s) free", r.port, r.knobs)
		case l.PID > 0 && isOllamaProcess(l.PID, ""):
			p.add(s, r.name, StatusWarn, ":%d (%s) held by a stray Ollama, %s: fuze ollama service-cleanup stops it", r.port, r.knobs, l.Owner())
		default:
			p.add(s, r.name, StatusWarn, ":%d (%s) in use by %s: the benchmark's servers cannot start there", r.port, r.knobs, l.Owner())
		}
	}
	for _, knob := range []string{"TRITON_HTTP_A", "TRITON_HTTP_B"} {
		p.tritonPort(knob)
	}
	p.units(ctx)
}

func (p *preflight) persistentPort(ctx context.Context, port int) {
	const s = SectionServices
	l, err := PortListener(port)
	switch {
	case err != nil:
		p.add(s, "persistent", StatusWarn, ":%d: %v", port, err)
	case l.Free:
		p.add(s, "persistent", StatusWarn, ":%d free: no persistent Ollama daemon (fuze ollama service-cleanup starts one)", port)
	default:
		vctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		v, verr := ollamaapi.New(net.JoinHostPort("127.0.0.1", strconv.Itoa(port))).Version(vctx)
		if verr != nil {
			p.add(s, "persistent", StatusError, ":%d held by %s, which does not answer as Ollama (%v): the Ollama benchmark cannot use it", port, l.Owner(), verr)
			return
		}
		p.add(s, "persistent", StatusOK, ":%d Ollama %s answering, %s", port, v, l.Owner())
	}
}

func (p *preflight) tritonPort(knob string) {
	const s = SectionServices
	addr := p.Get(knob)
	host, portStr, err := net.SplitHostPort(addr)
	port, perr := strconv.Atoi(portStr)
	name := "triton " + strings.ToLower(strings.TrimPrefix(knob, "TRITON_HTTP_"))
	if err != nil || perr != nil {
		p.add(s, name, StatusError, "%s=%q is not host:port", knob, addr)
		return
	}
	if host != "" && host != "localhost" && !net.ParseIP(host).IsLoopback() {
		p.add(s, name, StatusOK, "%s (%s) is remote: not checked", addr, knob)
		return
	}
	l, err := PortListener(port)
	switch {
	case err != nil:
		p.add(s, name, StatusWarn, "%s (%s): %v", addr, knob, err)
	case l.Free:
		p.add(s, name, StatusOK, "%s (%s) free: start Triton there before benchmarking it", addr, knob)
	default:
		p.add(s, name, StatusOK, "%s (%s) served by %s", addr, knob, l.Owner())
	}
}

// Units fuze knows: its persistent unit, the packaged one, and the original's test units.
var knownUnits = []string{UnitName, StockUnit, "ollama-test-a.service", "ollama-test-b.service"}

func (p *preflight) units(ctx context.Context) {
	const s = SectionServices
	if !p.Host.Systemd() {
		p.add(s, "systemd", StatusOK, "not running: service-cleanup supervises a background ollama serve")
		return
	}
	active := map[string]bool{}
	for _, u := range knownUnits {
		props, err := unitProps(ctx, p.r, u)
		if err != nil {
			p.add(s, u, StatusWarn, "systemctl show: %v", err)
			continue
		}
		if props["LoadState"] == "not-found" || props["LoadState"] == "" {
			continue
		}
		state := props["ActiveState"] + ", " + props["UnitFileState"]
		active[u] = props["ActiveState"] == "active"
		switch {
		case strings.HasPrefix(u, "ollama-test-") && active[u]:
			p.add(s, u, StatusWarn, "%s: the original's test unit holds a test port (fuze ollama service-cleanup removes it)", state)
		default:
			p.add(s, u, StatusOK, "%s", state)
		}
	}
	if active[UnitName] && active[StockUnit] {
		p.add(s, "units", StatusWarn, "%s and %s are both active; one cannot bind the port (fuze ollama service-cleanup keeps %s)", UnitName, StockUnit, UnitName)
	}
}

// unitProps returns a unit's LoadState, ActiveState, UnitFileState and MainPID.
func unitProps(ctx context.Context, r Runner, unit string) (map[string]string, error) {
	out, err := r.Output(ctx, "systemctl", "show", unit, "-p", "LoadState", "-p", "ActiveState", "-p", "UnitFileState", "-p", "MainPID")
	if err != nil {
		return nil, err
	}
	props := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
			props[k] = v
		}
	}
	return props, nil
}

func (p *preflight) stores() {
	const s = SectionStores
	dir := p.Get("OLLAMA_MODELS_DIR")
	st, err := os.Stat(dir)
	switch {
	case err != nil && os.IsNotExist(err):
		p.add(s, "ollama store", StatusWarn, "%s (OLLAMA_MODELS_DIR) absent: service-cleanup creates it", dir)
	case err != nil:
		p.add(s, "ollama store", StatusError, "%s: %v", dir, err)
	case !st.IsDir():
		p.add(s, "ollama store", StatusError, "%s (OLLAMA_MODELS_DIR) is not a directory", dir)
	default:
		size, _ := treeSize(dir)
		manifests := countFiles(filepath.Join(dir, "manifests"), func(string) bool { return true })
		msg := fmt.Sprintf("%s: %d model(s), %s, %s", dir, manifests, humanBytes(size), ownerMode(st))
		if syscall.Access(dir, 2 /* W_OK */) == nil {
			msg += ", writable"
		} else {
			msg += ", not writable by uid " + strconv.Itoa(p.Host.UID)
		}
		p.add(s, "ollama store", StatusOK, "%s", msg)
	}
	gguf := p.Get("GGUF_DEST_DIR")
	if st, err := os.Stat(gguf); err != nil || !st.IsDir() {
		p.add(s, "gguf dir", StatusWarn, "%s (GGUF_DEST_DIR) absent: fuze ollama export-gguf creates it for llama.cpp", gguf)
	} else {
		n := countFiles(gguf, func(name string) bool { return strings.HasSuffix(name, ".gguf") })
		size, _ := treeSize(gguf)
		p.add(s, "gguf dir", StatusOK, "%s: %d GGUF file(s), %s", gguf, n, humanBytes(size))
	}
}

func ownerMode(st os.FileInfo) string {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return "mode " + st.Mode().Perm().String()
	}
	return fmt.Sprintf("owner %d:%d, mode %04o", sys.Uid, sys.Gid, st.Mode().Perm())
}

func treeSize(dir string) (int64, error) {
	var total int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // unreadable parts are left out of the total
		}
		if d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				total += info.Size()
			}
		}
		return nil
	})
	return total, err
}

func countFiles(dir string, match func(string) bool) int {
	n := 0
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && match(d.Name()) {
			n++
		}
		return nil
	})
	return n
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func (p *preflight) logs() {
	const s = SectionLogs
	dir, warning, err := results.ResolveLogDir(p.Get("LOG_DIR"), p.Get)
	switch {
	case err != nil:
		p.add(s, "log dir", StatusError, "%v", err)
	case warning != "":
		p.add(s, "log dir", StatusWarn, "%s", warning)
	default:
		p.add(s, "log dir", StatusOK, "%s", dir)
	}
	if p.RepoRoot == "" {
		return
	}
	for _, legacy := range LegacyLogDirs(p.RepoRoot) {
		st, err := os.Lstat(legacy)
		if err != nil || !st.IsDir() {
			continue // absent, or already a link into LOG_DIR
		}
		if entries, _ := os.ReadDir(legacy); len(entries) > 0 {
			p.add(s, "legacy logs", StatusWarn, "%s holds %d entries: fuze migrate-logs moves them into LOG_DIR", legacy, len(entries))
		}
	}
}

// WriteText prints the report grouped by section, one aligned line per check, then a
// verdict line. color adds ANSI colours to the status marks.
func (r Report) WriteText(w io.Writer, color bool) error {
	width := 0
	for _, c := range r.Checks {
		width = max(width, len(c.Name))
	}
	var b strings.Builder
	section := ""
	for _, c := range r.Checks {
		if c.Section != section {
			if section != "" {
				b.WriteByte('\n')
			}
			section = c.Section
			b.WriteString("== " + section + "\n")
		}
		fmt.Fprintf(&b, "  %s %-*s  %s\n", mark(c.Status, color), width, c.Name, c.Message)
	}
	b.WriteByte('\n')
	errs, warns := r.Count(StatusError), r.Count(StatusWarn)
	switch {
	case errs > 0:
		fmt.Fprintf(&b, "Preflight found %d error(s) and %d warning(s)\n", errs, warns)
	case warns > 0:
		fmt.Fprintf(&b, "Preflight completed with %d warning(s)\n", warns)
	default:
		b.WriteString("Preflight OK: all key prerequisites look good\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Marks of the console style: ✔ ok, ! warning, ✖ error.
func mark(st Status, color bool) string {
	sym, code := "✔", "32"
	switch st {
	case StatusWarn:
		sym, code = "!", "33"
	case StatusError:
		sym, code = "✖", "31"
	}
	if !color {
		return sym
	}
	return "\x1b[" + code + "m" + sym + "\x1b[0m"
}

// WriteJSON prints the report as one JSON object: the checks and the count per status.
func (r Report) WriteJSON(w io.Writer) error {
	checks := r.Checks
	if checks == nil {
		checks = []Check{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Checks  []Check        `json:"checks"`
		Summary map[Status]int `json:"summary"`
	}{checks, map[Status]int{StatusOK: r.Count(StatusOK), StatusWarn: r.Count(StatusWarn), StatusError: r.Count(StatusError)}})
}
