package profile

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/fuze-ai/fuze/internal/envfile"
)

// Tuned is a tuning search's best configuration of a model (a `<run>.tuning.json` "best"
// entry): the settings as the driver names them.
type Tuned struct {
	Model    string
	Stack    string
	Settings map[string]string
	Source   string // what it came from, for the profile's comment
}

// knobOf maps a tuned setting to the knob that makes the next run use it: a one-value tuning
// set, or the base knob for values every request already carries.
var knobOf = map[string]string{
	"OLLAMA_FLASH_ATTENTION": "OLLAMA_FLASH_ATTENTION_SET",
	"OLLAMA_KV_CACHE_TYPE":   "OLLAMA_KV_CACHE_TYPE_SET",
	"OLLAMA_NUM_PARALLEL":    "OLLAMA_NUM_PARALLEL_SET",
	"num_batch":              "NUM_BATCH_SET",
	"num_thread":             "NUM_THREAD_SET",
	"num_ctx":                "BENCH_NUM_CTX",
	"flash_attn":             "LLAMACPP_FLASH_ATTN_SET",
	"cache_type":             "LLAMACPP_CACHE_TYPE_SET",
	"batch_size":             "BATCH",
	"ubatch_size":            "LLAMACPP_UBATCH_SET",
	"threads":                "LLAMACPP_THREADS_SET",
	"enable_prefix_caching":  "VLLM_PREFIX_CACHING_SET",
	"max_num_batched_tokens": "VLLM_MAX_NUM_BATCHED_TOKENS_SET",
	"kv_cache_dtype":         "VLLM_KV_CACHE_DTYPE_SET",
}

const (
	tunedBegin = "# >>> fuze tuned"
	tunedEnd   = "# <<< fuze tuned"
)

// TunedAssignments are the knob assignments that reproduce t (settings without a knob, such
// as the offload, are left to the profile's sweep), sorted by knob.
func TunedAssignments(t Tuned) []envfile.Assignment {
	var out []envfile.Assignment
	for name, v := range t.Settings {
		if k, ok := knobOf[name]; ok && v != "" {
			out = append(out, envfile.Assignment{Key: k, Value: v})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// ApplyTuned writes each tuned configuration into every profile under dir whose model tag is
// its model: a block at the end of the file (later assignments win, as in bash), replacing
// the block an earlier ApplyTuned wrote. It prints one line per profile and returns how many
// it changed.
func ApplyTuned(out io.Writer, dir string, tuned []Tuned, dryRun bool) (int, error) {
	files, err := Discover(dir, nil)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, path := range files {
		f, err := envfile.ParseFile(path)
		if err != nil {
			return n, err
		}
		tag := EmbeddedTag(f)
		for _, t := range tuned {
			if t.Model != tag {
				continue
			}
			as := TunedAssignments(t)
			if len(as) == 0 {
				continue
			}
			var b strings.Builder
			fmt.Fprintf(&b, "%s: %s best of %s\n", tunedBegin, t.Stack, t.Source)
			if err := envfile.Write(&b, as); err != nil {
				return n, err
			}
			b.WriteString(tunedEnd + "\n")
			words := make([]string, len(as))
			for i, a := range as {
				words[i] = a.Key + "=" + a.Value
			}
			fmt.Fprintf(out, "tuned: %s ← %s\n", filepath.Base(path), strings.Join(words, " "))
			if dryRun {
				continue
			}
			raw, err := os.ReadFile(path)
			if err != nil {
				return n, err
			}
			if err := writeAtomic(path, []byte(withoutTuned(string(raw))+b.String())); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

// withoutTuned is an env file's text without the block ApplyTuned wrote, ending in a newline.
func withoutTuned(s string) string {
	if i := strings.Index(s, tunedBegin); i >= 0 {
		rest := s[i:]
		if j := strings.Index(rest, tunedEnd); j >= 0 {
			s = s[:i] + strings.TrimPrefix(rest[j+len(tunedEnd):], "\n")
		}
	}
	if s != "" && !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	return s
}
