package results

import (
	"math"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/fuze-ai/fuze/internal/stackname"
)

// Header is the run CSV header, the seed's 16 columns in the seed's order.
var Header = []string{
	"ts", "endpoint", "unit", "suffix", "base_model", "variant_label", "model_tag",
	"num_gpu", "num_ctx", "batch", "num_predict", "tokens_per_sec",
	"gpu_label", "gpu_name", "gpu_uuid", "gpu_mem_mib",
}

// NumColumns is the width of every run CSV row.
const NumColumns = 16

// TimeLayout is the one format of the ts column for all stacks: RFC 3339, second precision,
// always a numeric offset (+00:00, never Z), as `date -Iseconds` writes it.
const TimeLayout = "2006-01-02T15:04:05-07:00"

// RunTSLayout is the run timestamp in file names (date +%Y%m%d_%H%M%S, local time).
const RunTSLayout = "20060102_150405"

// DefaultLogDir is LOG_DIR when the user sets none.
const DefaultLogDir = "/var/log/fuze-stack"

// Row is one line of a run CSV. The setting columns are strings because values such as
// "default" and "NA" appear in them.
type Row struct {
	TS           time.Time
	Endpoint     string
	Unit         string
	Suffix       string
	BaseModel    string
	VariantLabel string
	ModelTag     string
	NumGPU       string
	NumCtx       string
	Batch        string
	NumPredict   string
	TokensPerSec float64
	GPULabel     string
	GPUName      string
	GPUUUID      string
	GPUMemMiB    int
}

// Fields returns the row as exactly NumColumns CSV fields in Header order. A zero TS gives an
// empty ts; a non-finite TokensPerSec is written as 0.00; GPUMemMiB <= 0 gives an empty field.
func (r Row) Fields() []string {
	return []string{
		formatTS(r.TS),
		r.Endpoint,
		r.Unit,
		r.Suffix,
		r.BaseModel,
		r.VariantLabel,
		r.ModelTag,
		r.NumGPU,
		r.NumCtx,
		r.Batch,
		r.NumPredict,
		formatTPS(r.TokensPerSec),
		r.GPULabel,
		r.GPUName,
		r.GPUUUID,
		formatMem(r.GPUMemMiB),
	}
}

func formatTS(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(TimeLayout)
}

func formatTPS(v float64) string {
	return strconv.FormatFloat(finite(v), 'f', 2, 64)
}

func formatMem(m int) string {
	if m <= 0 {
		return ""
	}
	return strconv.Itoa(m)
}

func finite(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}

// CanonicalStack maps a stack name as users write it ("vllm", "VLLM", "llamacpp", "triton")
// to its canonical spelling (internal/stackname): ollama, vLLM, llama.cpp or Triton.
func CanonicalStack(name string) (string, bool) {
	st, ok := stackname.Lookup(name)
	return st.Name, ok
}

// FilePrefix is the run file prefix of a stack: ollama, vllm, llamacpp or triton.
func FilePrefix(stack string) (string, bool) {
	st, ok := stackname.Lookup(stack)
	return st.FilePrefix, ok
}

// runFileRE matches a run CSV base name: <prefix>_bench_<YYYYmmdd_HHMMSS>[_N].csv.
var runFileRE = regexp.MustCompile(`^([a-z]+)_bench_([0-9]{8}_[0-9]{6})(?:_[0-9]+)?\.csv$`)

// StackFromFileName returns the canonical stack of a run CSV from its name (a base name or a
// path): ollama_bench_*.csv → ollama, vllm_bench_ → vLLM, llamacpp_bench_ → llama.cpp,
// triton_bench_ → Triton.
func StackFromFileName(name string) (string, bool) {
	base := filepath.Base(name)
	if !strings.HasSuffix(base, ".csv") {
		return "", false
	}
	for _, s := range stackname.All() {
		p := s.FilePrefix + "_bench_"
		if strings.HasPrefix(base, p) && len(base) > len(p)+len(".csv") {
			return s.Name, true
		}
	}
	return "", false
}

// RunTSFromFileName returns the YYYYmmdd_HHMMSS run timestamp in a run CSV name, ignoring the
// _N suffix CreateRun adds when two runs start in the same second.
func RunTSFromFileName(name string) (string, bool) {
	m := runFileRE.FindStringSubmatch(filepath.Base(name))
	if m == nil {
		return "", false
	}
	if _, ok := StackFromFileName(name); !ok {
		return "", false
	}
	return m[2], true
}
